package token

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
)

// Mint signs c as a passport valid for ttl from now, with the mediator's
// own key (EdDSA, kid = the key's thumbprint). It sets iss and aud to the
// Verifier's, iat and nbf to now and exp to now + ttl, and a random jti
// unless c.ID is set. c.Subject (the agent id) is required; a ttl over the
// maximum lifetime is refused. Errors wrap ErrMint.
func (v *Verifier) Mint(c Claims, ttl time.Duration) (string, error) {
	return v.mint(c, ttl, v.audience)
}

// mint signs c for the audience aud.
func (v *Verifier) mint(c Claims, ttl time.Duration, aud string) (string, error) {
	if v.key == nil {
		return "", fmt.Errorf("%w: this verifier has no signing key", ErrMint)
	}
	if ttl <= 0 || ttl > v.maxLifetime {
		return "", fmt.Errorf("%w: ttl %s is outside (0, %s], the maximum lifetime (auth.max_lifetime): use a shorter --ttl",
			ErrMint, ttl, v.maxLifetime)
	}
	if c.ID == "" {
		c.ID = rand.Text()
	}
	iat := v.now().Truncate(time.Second) // iat has second precision; exp - iat is exactly ttl
	c.Issuer, c.Audience = v.issuer, jwt.ClaimStrings{aud}
	c.IssuedAt, c.NotBefore, c.ExpiresAt = jwt.NewNumericDate(iat), jwt.NewNumericDate(iat), jwt.NewNumericDate(iat.Add(ttl))
	if err := c.checkPassport(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMint, err)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &c)
	t.Header["kid"] = v.key.kid
	s, err := t.SignedString(v.key.priv)
	if err != nil {
		return "", fmt.Errorf("%w: sign: %w", ErrMint, err)
	}
	if len(s) > MaxTokenBytes {
		return "", fmt.Errorf("%w: the token would be %d bytes, over the %d-byte limit: give fewer roles or attributes",
			ErrMint, len(s), MaxTokenBytes)
	}
	return s, nil
}

// JWKS returns the public JWK Set of the mediator's own key, as JSON.
func (v *Verifier) JWKS() ([]byte, error) {
	if v.key == nil {
		return nil, errors.New("token: this verifier has no key of its own")
	}
	return v.key.JWKS()
}

// MaxLifetime returns the longest token lifetime accepted (and minted).
func (v *Verifier) MaxLifetime() time.Duration { return v.maxLifetime }

// Revoke withdraws credentials: one token (r.JTI), every token of a task
// (r.TaskID) or of an agent (r.AgentID) issued up to now. Exactly one must
// be set; a zero r.At is now. It is stored first (when a RevocationStore is
// configured, so every process sharing it follows within its poll
// interval), then takes effect in this process at once.
func (v *Verifier) Revoke(ctx context.Context, r mediator.Revocation) error {
	n := 0
	for _, s := range []string{r.JTI, r.TaskID, r.AgentID} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: name exactly one of a token id (jti), a task id or an agent id", ErrInvalidRevocation)
	}
	if r.At.IsZero() {
		r.At = v.now()
	}
	if v.store != nil {
		if err := v.store.Revoke(ctx, r); err != nil {
			return fmt.Errorf("token: store revocation: %w", err)
		}
	}
	r.Seq = 0 // the poll brings the stored Seq
	v.revs.apply(r)
	return nil
}
