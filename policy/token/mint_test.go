package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

func agentFixture() mediator.Agent {
	return mediator.Agent{ID: "billing-bot", Version: "2.0", Roles: []string{"writer", "support"}, Owner: "team-billing",
		BusinessFunction: "billing", Attrs: map[string]string{"region": "eu"}, Confidence: 0.95, TaskID: "task-42"}
}

func TestMintRoundTrip(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	v := newVerifier(t, key)
	in := agentFixture()
	tok, err := v.Mint(ClaimsFor(in), 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a, err := v.Authenticate(t.Context(), mediator.Credentials{Transport: "http", Bearer: tok})
	if err != nil {
		t.Fatalf("minted token refused: %v", err)
	}
	if a.TokenID == "" {
		t.Fatal("minted token has no jti")
	}
	in.TokenID = a.TokenID
	if !reflect.DeepEqual(*a, in) {
		t.Fatalf("agent = %+v\nwant %+v", *a, in)
	}
	header, claims := decodeParts(t, tok)
	if header["alg"] != "EdDSA" || header["kid"] != key.KID() || header["typ"] != "JWT" {
		t.Errorf("header = %v", header)
	}
	if claims["iss"] != DefaultIssuer || claims["iat"] != float64(t0.Unix()) || claims["nbf"] != float64(t0.Unix()) ||
		claims["exp"] != float64(t0.Add(15*time.Minute).Unix()) {
		t.Errorf("claims = %v", claims)
	}
	other, _ := v.Mint(ClaimsFor(agentFixture()), time.Minute)
	if _, c2 := decodeParts(t, other); c2["jti"] == claims["jti"] {
		t.Error("two minted tokens share a jti")
	}
}

func decodeParts(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	var h, c map[string]any
	for i, dst := range []*map[string]any{&h, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return h, c
}

func TestMintRefuses(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, testKey(t), WithMaxLifetime(time.Hour))
	good := ClaimsFor(agentFixture())
	noSub := good
	noSub.Subject = ""
	badConf := good
	badConf.Confidence = 2
	tooBig := good
	tooBig.Attrs = map[string]string{"blob": strings.Repeat("x", MaxTokenBytes)}
	cases := []struct {
		name string
		c    Claims
		ttl  time.Duration
		want string
	}{
		{"ttl over the max lifetime", good, 2 * time.Hour, "ttl 2h0m0s is outside (0, 1h0m0s]"},
		{"zero ttl", good, 0, "ttl 0s"},
		{"no agent id", noSub, time.Minute, "no sub"},
		{"confidence out of range", badConf, time.Minute, "confidence 2"},
		{"token over the size limit", tooBig, time.Minute, "over the 8192-byte limit"},
	}
	for _, tc := range cases {
		_, err := v.Mint(tc.c, tc.ttl)
		if !errors.Is(err, ErrMint) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Mint = %v; want ErrMint mentioning %q", tc.name, err, tc.want)
		}
	}
	noKey := newVerifier(t, nil)
	if _, err := noKey.Mint(good, time.Minute); !errors.Is(err, ErrMint) {
		t.Errorf("Mint without a key = %v", err)
	}
	if _, err := noKey.JWKS(); err == nil {
		t.Error("JWKS without a key succeeded")
	}
}
