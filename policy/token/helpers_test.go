package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
)

// t0 is the tests' "now".
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// clock is a settable clock for tests.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// testKey returns a fresh mediator key.
func testKey(t testing.TB) *Key {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newVerifier builds a Verifier on key with the clock at t0, closed at the
// end of the test.
func newVerifier(t testing.TB, key *Key, opts ...Option) *Verifier {
	t.Helper()
	opts = append([]Option{WithClock(func() time.Time { return t0 }),
		WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil)))}, opts...)
	v, err := New(context.Background(), key, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// claimsAt returns valid passport claims issued at now for 15 minutes.
func claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": DefaultIssuer, "aud": DefaultAudience, "sub": "agent-1", "jti": "jti-1",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
		"roles": []string{"writer"}, "task": "task-1", "owner": "team-a",
		"agent_version": "1.2.3", "business_function": "support",
		"attrs": map[string]string{"region": "eu"}, "confidence": 0.9,
	}
}

// with returns a copy of c with the given members set (a nil value
// deletes the member).
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

// sign signs claims with method and key, setting kid when not empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// ecKey and rsaKey are generated once: RSA generation is slow.
var (
	ecOnce, rsaOnce sync.Once
	ecPriv          *ecdsa.PrivateKey
	rsaPriv         *rsa.PrivateKey
)

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	ecOnce.Do(func() {
		var err error
		if ecPriv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	})
	return ecPriv
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaPriv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return rsaPriv
}

// writeFile writes data to name in a temp dir and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// publicPEM encodes a public key as a PEM "PUBLIC KEY" block.
func publicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ecJWKS returns a JWK Set holding pub under kid.
func ecJWKS(t testing.TB, kid string, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	return jwksJSON(t, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": b64(b[1:33]), "y": b64(b[33:])})
}

func jwksJSON(t testing.TB, keys ...map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memStore is an in-memory mediator.RevocationStore; fail makes every
// call fail.
type memStore struct {
	mu   sync.Mutex
	revs []mediator.Revocation
	fail atomic.Bool
}

var errStoreDown = &storeErr{}

type storeErr struct{}

func (*storeErr) Error() string { return "database unreachable" }

func (s *memStore) Revoke(_ context.Context, r mediator.Revocation) error {
	if s.fail.Load() {
		return errStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Seq = int64(len(s.revs) + 1)
	s.revs = append(s.revs, r)
	return nil
}

func (s *memStore) RevocationsSince(_ context.Context, after int64) ([]mediator.Revocation, error) {
	if s.fail.Load() {
		return nil, errStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []mediator.Revocation
	for _, r := range s.revs {
		if r.Seq > after {
			out = append(out, r)
		}
	}
	return out, nil
}

func mustEC384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func x509MarshalPKCS8(key any) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(key) }

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
