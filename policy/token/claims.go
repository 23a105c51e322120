package token

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
)

// Claims is the agent passport: the registered JWT claims plus what the
// mediator knows about the agent. sub is the agent id and jti the token id
// (both required); task binds the token to a task.
type Claims struct {
	jwt.RegisteredClaims
	// AgentVersion is the agent's software version.
	AgentVersion string `json:"agent_version,omitempty"`
	// Owner is the person or team responsible for the agent.
	Owner string `json:"owner,omitempty"`
	// Roles are the agent's roles, as policy sees them.
	Roles []string `json:"roles,omitempty"`
	// BusinessFunction is what the agent is for ("support", "marketing").
	BusinessFunction string `json:"business_function,omitempty"`
	// Attrs are free passport attributes.
	Attrs map[string]string `json:"attrs,omitempty"`
	// Confidence is the issuer's confidence in the agent, 0..1.
	Confidence float64 `json:"confidence,omitempty"`
	// Task is the id of the task the token is bound to.
	Task string `json:"task,omitempty"`
	// TrustCeiling is the highest behavioural trust level the issuer
	// allows the agent (high, medium, low or none); the mediator never
	// raises the agent above it.
	TrustCeiling string `json:"trust_ceiling,omitempty"`
}

// timeClaims are the NumericDate claims: RFC 7519 makes each a JSON number
// of seconds since the epoch.
var timeClaims = []string{"exp", "nbf", "iat"}

// UnmarshalJSON decodes a token's payload, refusing a time claim that is
// not a JSON number: the JWT library would read "exp": "9999999999" as a
// date, and an issuer that writes strings has a bug worth seeing.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return err
	}
	for _, name := range timeClaims {
		raw, ok := members[name]
		if !ok {
			continue
		}
		if raw = bytes.TrimSpace(raw); len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
			return fail(ErrClaims, "token claim %s is %s, not a number: a JWT time is a JSON number of seconds "+
				"since 1970 (RFC 7519 NumericDate); mint it with `mediator token mint`, or fix the issuer", name, jsonKind(raw))
		}
	}
	type plain Claims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// jsonKind names the JSON type of a raw value, for messages.
func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '"':
		return "a JSON string"
	case '{':
		return "a JSON object"
	case '[':
		return "a JSON array"
	case 't', 'f':
		return "a JSON boolean"
	case 'n':
		return "null"
	}
	return "not a JSON value"
}

// ClaimsFor returns the passport claims describing a, ready for Mint
// (a.TokenID, if set, becomes the jti).
func ClaimsFor(a mediator.Agent) Claims {
	c := Claims{
		AgentVersion: a.Version, Owner: a.Owner, Roles: slices.Clone(a.Roles),
		BusinessFunction: a.BusinessFunction, Attrs: maps.Clone(a.Attrs),
		Confidence: a.Confidence, Task: a.TaskID, TrustCeiling: a.TrustCeiling,
	}
	c.Subject, c.ID = a.ID, a.TokenID
	return c
}

// Agent returns the identity the passport describes. It shares c's Roles
// and Attrs.
func (c *Claims) Agent() *mediator.Agent {
	return &mediator.Agent{
		ID: c.Subject, Version: c.AgentVersion, Roles: c.Roles, Owner: c.Owner,
		BusinessFunction: c.BusinessFunction, Attrs: c.Attrs, Confidence: c.Confidence,
		TaskID: c.Task, TokenID: c.ID, TrustCeiling: c.TrustCeiling,
	}
}

// checkPassport checks the mediator's own claims: the ids it keys on are
// present and printable, and confidence is a probability.
func (c *Claims) checkPassport() error {
	if c.Subject == "" {
		return fail(ErrClaims, "token has no sub (the agent id): mint it with `mediator token mint --agent ID`")
	}
	if c.ID == "" {
		return fail(ErrClaims, "token has no jti: every token needs a unique id so it can be revoked; mint it with `mediator token mint`")
	}
	if !(c.Confidence >= 0 && c.Confidence <= 1) {
		return fail(ErrClaims, "token confidence %g is outside 0..1: mint it with --confidence between 0 and 1", c.Confidence)
	}
	if c.TrustCeiling != "" {
		if _, err := mediator.ParseTrustLevel(c.TrustCeiling); err != nil {
			return fail(ErrClaims, "token claim trust_ceiling %q: use high, medium, low or none (mint it with --trust-ceiling)", cutClaim(c.TrustCeiling))
		}
	}
	for _, f := range []struct{ name, v string }{
		{"sub", c.Subject}, {"jti", c.ID}, {"task", c.Task}, {"owner", c.Owner},
	} {
		if !printable(f.v) {
			return fail(ErrClaims, "token claim %s holds control characters: mint it with a plain id", f.name)
		}
	}
	// The identities separation of duties compares: no invisible
	// characters, mixed scripts or look-alikes (mediator.CheckIdentity),
	// at mint and at every verification.
	for _, f := range []struct{ name, v string }{{"sub", c.Subject}, {"owner", c.Owner}} {
		if f.v == "" {
			continue
		}
		if err := mediator.CheckIdentity(f.v); err != nil {
			return fail(ErrClaims, "token claim %s: %v; mint the token with the plain name", f.name, err)
		}
	}
	for _, r := range c.Roles {
		if r == "" || !printable(r) {
			return fail(ErrClaims, "token roles hold an empty role or control characters: mint it with plain role names")
		}
	}
	return nil
}

// printable reports whether s has no control characters (which could forge
// lines in logs and policy explanations).
func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// checkTimes enforces exp (required), nbf, iat and the maximum lifetime at
// time now with the given leeway.
func (c *Claims) checkTimes(now time.Time, leeway, maxLifetime time.Duration) error {
	if c.ExpiresAt == nil {
		return fail(ErrExpired, "token has no exp: mint tokens that expire (`mediator token mint --ttl 15m`)")
	}
	exp := c.ExpiresAt.Time
	if now.After(exp.Add(leeway)) {
		return fail(ErrExpired, "token expired at %s (leeway %s): mint a new one with `mediator token mint`",
			stamp(exp), leeway)
	}
	if c.NotBefore != nil && now.Add(leeway).Before(c.NotBefore.Time) {
		return fail(ErrNotYetValid, "token not valid before %s (leeway %s): wait, or check the issuer's clock",
			stamp(c.NotBefore.Time), leeway)
	}
	if c.IssuedAt != nil && now.Add(leeway).Before(c.IssuedAt.Time) {
		return fail(ErrNotYetValid, "token issued in the future (iat %s, leeway %s): check the issuer's clock",
			stamp(c.IssuedAt.Time), leeway)
	}
	if c.IssuedAt != nil {
		if life := exp.Sub(c.IssuedAt.Time); life > maxLifetime {
			return fail(ErrLifetime, "token lifetime %s (exp - iat) exceeds the maximum %s (auth.max_lifetime): mint a shorter-lived token",
				life, maxLifetime)
		}
	} else if left := exp.Sub(now); left > maxLifetime+leeway {
		return fail(ErrLifetime, "token without iat expires in %s, beyond the maximum lifetime %s (auth.max_lifetime): mint a shorter-lived token",
			left.Round(time.Second), maxLifetime)
	}
	return nil
}

// checkAudience requires iss to be issuer and aud to include audience.
func (c *Claims) checkAudience(issuer, audience string) error {
	if c.Issuer != issuer {
		return fail(ErrIssuer, "token issuer %s is not %s (auth.issuer): mint it with this mediator, or set auth.issuer to its issuer",
			quote(c.Issuer), quote(issuer))
	}
	if !slices.Contains(c.Audience, audience) {
		aud := strings.Join(c.Audience, ",")
		return fail(ErrAudience, "token audience %s does not include %s (auth.audience): mint the token for this mediator",
			quote(aud), quote(audience))
	}
	return nil
}

// stamp formats a claim time for messages.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// cutClaim shortens a claim value quoted in an error.
func cutClaim(s string) string {
	if len(s) <= 32 {
		return s
	}
	p, _ := mediator.CutUTF8(s, 32)
	return p + "…"
}
