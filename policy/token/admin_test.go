package token

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
)

// Admin tokens are the mediator's own, for their own audience; agent
// tokens and tokens of other trusted issuers are not admin tokens, and an
// admin token is not an agent token (issue 14, finding 1).
func TestVerifyAdmin(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	other := ecKey(t)
	pemPath := writeFile(t, "other.pem", publicPEM(t, &other.PublicKey))
	v := newVerifier(t, key, WithPEMFile(pemPath))
	admin := ClaimsFor(mediator.Agent{ID: "ops", Roles: []string{"admin"}})
	adminTok, err := v.MintAdmin(admin, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	agentTok, err := v.Mint(admin, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	adminAud := DefaultAudience + AdminAudienceSuffix
	otherAdmin := sign(t, jwt.SigningMethodES256, other, "", with(claimsAt(t0), "aud", []string{DefaultAudience, adminAud}, "roles", []string{"admin"}))
	ownKeyWrongKid := sign(t, jwt.SigningMethodEdDSA, key.priv, "", with(claimsAt(t0), "aud", adminAud))
	cases := []struct {
		name    string
		tok     string
		admin   error // VerifyAdmin's error kind, nil for accepted
		agent   error // Verify's
		message string
	}{
		{"admin token", adminTok, nil, ErrAudience, "this is an admin token"},
		{"agent token with the admin role", agentTok, ErrAudience, nil, "not the admin audience"},
		{"another issuer's key, admin audience", otherAdmin, ErrUnknownKey, ErrAudience, "own key"},
		{"own key without its kid", ownKeyWrongKid, ErrUnknownKey, ErrAudience, "own key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.VerifyAdmin(t.Context(), tc.tok)
			if !errors.Is(err, tc.admin) || (tc.admin == nil) != (err == nil) {
				t.Errorf("VerifyAdmin = %v; want %v", err, tc.admin)
			}
			if err != nil && !strings.Contains(err.Error(), tc.message) {
				t.Errorf("VerifyAdmin error %q does not say %q", err, tc.message)
			}
			if err != nil && !errors.Is(err, mediator.ErrUnauthenticated) {
				t.Errorf("VerifyAdmin error does not wrap ErrUnauthenticated: %v", err)
			}
			_, err = v.Verify(t.Context(), tc.tok)
			if !errors.Is(err, tc.agent) || (tc.agent == nil) != (err == nil) {
				t.Errorf("Verify = %v; want %v", err, tc.agent)
			}
		})
	}
}
