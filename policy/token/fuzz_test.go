package token

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
)

// FuzzVerify feeds arbitrary bearer tokens, seeded with a valid one and
// mutations of it. Verification must never panic, every refusal must wrap
// ErrUnauthenticated, and anything accepted must be the one token signed by
// the trusted key: a mutation either verifies to the same claims or fails.
func FuzzVerify(f *testing.F) {
	key := testKey(f)
	v := newVerifier(f, key)
	valid := sign(f, jwt.SigningMethodEdDSA, key.priv, key.KID(), claimsAt(t0))
	want, err := v.Verify(f.Context(), valid)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		valid,
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		"." + parts[1] + "." + parts[2],
		strings.ToUpper(valid),
		valid + "A",
		valid[:len(valid)-1],
		sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, key.KID(), claimsAt(t0)),
		sign(f, jwt.SigningMethodHS256, []byte(key.Public()), key.KID(), claimsAt(t0)),
		"eyJhbGciOiJFZERTQSJ9.e30.",
		"..",
		"",
		"\x00.\xff.\n",
		// Times that are not JSON numbers, validly signed.
		sign(f, jwt.SigningMethodEdDSA, key.priv, key.KID(), with(claimsAt(t0), "exp", "9999999999")),
		sign(f, jwt.SigningMethodEdDSA, key.priv, key.KID(), with(claimsAt(t0), "iat", true)),
		sign(f, jwt.SigningMethodEdDSA, key.priv, key.KID(), with(claimsAt(t0), "nbf", map[string]any{})),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(t.Context(), tok)
		if err != nil {
			if c != nil {
				t.Fatalf("refusal returned claims %+v", c)
			}
			checkKind(t, err)
			return
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("accepted a token with other claims than the only one signed:\n got %+v\nwant %+v", c, want)
		}
	})
}

func checkKind(t *testing.T, err error) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || ae.Kind == nil || !errors.Is(err, mediator.ErrUnauthenticated) {
		t.Fatalf("refusal %v (%T) is not an *Error wrapping ErrUnauthenticated", err, err)
	}
	if strings.ContainsAny(ae.Reason, "\n\r") {
		t.Fatalf("reason spans lines: %q", ae.Reason)
	}
}

// BenchmarkVerify measures verifying the mediator's own EdDSA token in
// full (signature included, cache off): the cost of a token's first call.
func BenchmarkVerify(b *testing.B) {
	benchVerify(b, WithCacheSize(0))
}

// BenchmarkVerifyCached measures the calls after the first with one token:
// the signature check is cached; expiry and revocation are still checked.
func BenchmarkVerifyCached(b *testing.B) {
	benchVerify(b)
}

func benchVerify(b *testing.B, opts ...Option) {
	key := testKey(b)
	v := newVerifier(b, key, append(opts, WithRevocationStore(&memStore{}, time.Hour))...)
	tok, err := v.Mint(ClaimsFor(agentFixture()), 15*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	cred := mediator.Credentials{Transport: "http", Bearer: tok}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Authenticate(b.Context(), cred); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefuseHugeToken measures refusing a 1 MiB bearer token.
func BenchmarkRefuseHugeToken(b *testing.B) {
	v := newVerifier(b, testKey(b))
	cred := mediator.Credentials{Transport: "http", Bearer: strings.Repeat("A", 1<<20) + ".e30.c2ln"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Authenticate(b.Context(), cred); err == nil {
			b.Fatal("accepted")
		}
	}
}
