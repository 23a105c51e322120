package token

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AdminAudienceSuffix makes the audience of admin tokens from the agent
// audience: "mcp-mediator" gives "mcp-mediator/admin".
const AdminAudienceSuffix = "/admin"

// AdminAudience is the audience of admin tokens. It is never an agent
// token's audience, so an admin token is refused where agents connect and
// an agent token is refused by the admin API.
func (v *Verifier) AdminAudience() string { return v.audience + AdminAudienceSuffix }

// MintAdmin signs c as an admin token valid for ttl: like Mint, with the
// mediator's own key, but for AdminAudience only.
func (v *Verifier) MintAdmin(c Claims, ttl time.Duration) (string, error) {
	return v.mint(c, ttl, v.AdminAudience())
}

// VerifyAdmin checks a token for the admin API. Only the mediator's own
// key is trusted (never a key from auth.pem_file, auth.jwks_file or
// auth.jwks_url, which vouch for agents, not administrators), the
// audience must be AdminAudience, and times and revocation are checked as
// for agents. Every error is an *Error wrapping
// mediator.ErrUnauthenticated.
func (v *Verifier) VerifyAdmin(ctx context.Context, raw string) (*Claims, error) {
	if err := checkShape(raw); err != nil {
		return nil, err
	}
	c := &Claims{}
	tok, err := v.parser.ParseWithClaims(raw, c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if v.key == nil || kid != v.key.kid {
			return nil, fail(ErrUnknownKey, "admin tokens must be signed by this mediator's own key (auth.key_file, kid %s); "+
				"a key of another issuer vouches for agents only: mint one with `mediator token mint --admin`", quote(v.keyID()))
		}
		if t.Method.Alg() != AlgEdDSA {
			return nil, fail(ErrAlgorithm, "admin token with alg %s: the mediator's tokens are EdDSA", quote(t.Method.Alg()))
		}
		return v.key.pub, nil
	})
	if err != nil {
		return nil, parseError(tok, err)
	}
	if !slices.Contains(c.Audience, v.AdminAudience()) {
		return nil, fail(ErrAudience, "token audience %s is not the admin audience %s: an agent token is not an admin token; "+
			"mint one with `mediator token mint --admin`", quote(strings.Join(c.Audience, ",")), quote(v.AdminAudience()))
	}
	if err := c.checkAudience(v.issuer, v.AdminAudience()); err != nil {
		return nil, err
	}
	if err := c.checkPassport(); err != nil {
		return nil, err
	}
	if err := c.checkTimes(v.now(), v.leeway, v.maxLifetime); err != nil {
		return nil, err
	}
	if err := v.checkRevoked(c, v.now()); err != nil {
		return nil, err
	}
	return c, nil
}

// refuseAdminToken refuses an admin token where an agent's is expected.
func (v *Verifier) refuseAdminToken(c *Claims) error {
	if slices.Contains(c.Audience, v.AdminAudience()) {
		return fail(ErrAudience, "this is an admin token (audience %s): it is accepted by the admin API only, never where agents connect; "+
			"mint an agent token with `mediator token mint --agent ID`", quote(v.AdminAudience()))
	}
	return nil
}

// checkShape refuses what is not worth parsing: an oversize token, or one
// that is not a compact JWT.
func checkShape(raw string) error {
	if len(raw) > MaxTokenBytes {
		return fail(ErrMalformed, "token is %d bytes, over the %d-byte limit: mint a smaller token", len(raw), MaxTokenBytes)
	}
	if strings.Count(raw, ".") != 2 {
		return fail(ErrMalformed, "malformed token: not a compact JWT (header.payload.signature); "+
			"send the token exactly as `mediator token mint` printed it")
	}
	return nil
}

func (v *Verifier) keyID() string {
	if v.key == nil {
		return ""
	}
	return v.key.kid
}
