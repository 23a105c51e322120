package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
)

// jwksServer serves a JWK Set that the test can swap, on loopback.
type jwksServer struct {
	*httptest.Server
	body    atomic.Pointer[[]byte]
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(b []byte) { s.body.Store(&b) }

func edJWKS(t *testing.T, kid string, pub ed25519.PublicKey) []byte {
	return jwksJSON(t, map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig", "x": b64(pub)})
}

// The issuer rotates its key: the first token signed with the new key
// makes the verifier fetch the set again, and the old key stops working.
func TestJWKSURLKeyRotation(t *testing.T) {
	t.Parallel()
	ec := ecKey(t)
	pubB, privB, _ := ed25519.GenerateKey(rand.Reader)
	srv := newJWKSServer(t, ecJWKS(t, "key-a", &ec.PublicKey))
	v := newVerifier(t, testKey(t), WithJWKSURL(srv.URL+"/jwks.json", time.Hour))
	cred := func(tok string) mediator.Credentials { return mediator.Credentials{Transport: "http", Bearer: tok} }
	tokA := sign(t, jwt.SigningMethodES256, ec, "key-a", claimsAt(t0))
	tokB := sign(t, jwt.SigningMethodEdDSA, privB, "key-b", with(claimsAt(t0), "sub", "agent-b"))

	if a, err := v.Authenticate(t.Context(), cred(tokA)); err != nil || a.ID != "agent-1" {
		t.Fatalf("token signed with the served key: %+v, %v", a, err)
	}
	srv.set(edJWKS(t, "key-b", pubB))
	if a, err := v.Authenticate(t.Context(), cred(tokB)); err != nil || a.ID != "agent-b" {
		t.Fatalf("token signed with the rotated-in key: %+v, %v", a, err)
	}
	_, err := v.Authenticate(t.Context(), cred(tokA))
	checkRefused(t, nil, err, ErrUnknownKey, `kid 'key-a'`, tokA)

	// Unknown kids cannot make the verifier hammer the issuer.
	before := srv.fetches.Load()
	for range 20 {
		forged := sign(t, jwt.SigningMethodEdDSA, privB, "random-"+rand.Text(), claimsAt(t0))
		_, err := v.Authenticate(t.Context(), cred(forged))
		checkRefused(t, nil, err, ErrUnknownKey, "no trusted", forged)
	}
	if n := srv.fetches.Load() - before; n > 1 {
		t.Fatalf("20 tokens with unknown kids caused %d fetches; want at most 1 (rate limited)", n)
	}
}

// The background refresh picks up a new set without any token asking.
func TestJWKSURLBackgroundRefresh(t *testing.T) {
	t.Parallel()
	ec := ecKey(t)
	pubB, _, _ := ed25519.GenerateKey(rand.Reader)
	srv := newJWKSServer(t, ecJWKS(t, "key-a", &ec.PublicKey))
	v := newVerifier(t, nil, WithJWKSURL(srv.URL, 20*time.Millisecond))
	tokA := sign(t, jwt.SigningMethodES256, ec, "key-a", claimsAt(t0))
	if _, err := v.Verify(t.Context(), tokA); err != nil {
		t.Fatal(err)
	}
	srv.set(edJWKS(t, "key-b", pubB))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := v.Verify(t.Context(), tokA); err != nil {
			checkRefused(t, nil, err, ErrUnknownKey, "key-a", tokA)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the withdrawn key still verifies after the background refresh")
}

// A JWKS URL that is down, too large or not JSON does not stop the
// mediator; its tokens are refused, others still verify.
func TestJWKSURLUnusable(t *testing.T) {
	t.Parallel()
	ec := ecKey(t)
	huge := []byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxKeySourceBytes) + `"}`)
	for name, body := range map[string][]byte{"too large": huge, "not JSON": []byte("<html>")} {
		srv := newJWKSServer(t, body)
		key := testKey(t)
		v := newVerifier(t, key, WithJWKSURL(srv.URL, time.Hour))
		tok := sign(t, jwt.SigningMethodES256, ec, "key-a", claimsAt(t0))
		_, err := v.Verify(t.Context(), tok)
		checkRefused(t, nil, err, ErrUnknownKey, "key-a", tok)
		own, err := v.Mint(ClaimsFor(agentFixture()), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(t.Context(), own); err != nil {
			t.Errorf("%s: the mediator's own token is refused: %v", name, err)
		}
	}
}
