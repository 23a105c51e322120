package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
)

// The bad-input list of issue 3, and its neighbours: each token is refused
// with an error of the right kind, whose one-line reason never echoes it.
func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	kid := key.KID()
	ec, rs := ecKey(t), rsaKey(t)
	_, otherEd, _ := ed25519.GenerateKey(rand.Reader)
	jwksFile := writeFile(t, "keys.json", ecJWKS(t, "ec-1", &ec.PublicKey))
	pemFile := writeFile(t, "rsa.pem", publicPEM(t, &rs.PublicKey))
	v := newVerifier(t, key, WithJWKSFile(jwksFile), WithPEMFile(pemFile))
	if err := v.Revoke(t.Context(), mediator.Revocation{JTI: "revoked-jti", Reason: "leaked in a log"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []mediator.Revocation{{TaskID: "revoked-task"}, {AgentID: "revoked-agent"}} {
		r.At = t0
		if err := v.Revoke(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	good := claimsAt(t0)
	ed := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodEdDSA, key.priv, kid, c) }
	hugeHeader := b64([]byte(`{"alg":"EdDSA","x":"` + strings.Repeat("A", 1<<20) + `"}`))
	goodParts := strings.Split(ed(good), ".")
	tampered := goodParts[0] + "." + b64([]byte(`{"iss":"mcp-mediator","aud":"mcp-mediator","sub":"admin","jti":"x","exp":9999999999}`)) + "." + goodParts[2]

	cases := []struct {
		name  string
		token string
		kind  error
		want  string // in the reason
	}{
		{"alg none: an unsigned token", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, good),
			ErrAlgorithm, `alg 'none' is not accepted`},
		{"HS256 signed with the public key (key confusion)", sign(t, jwt.SigningMethodHS256, []byte(key.Public()), kid, good),
			ErrAlgorithm, `alg 'HS256' is not accepted`},
		{"HS256 signed with the RSA public key PEM (key confusion)", sign(t, jwt.SigningMethodHS256, publicPEM(t, &rs.PublicKey), "", good),
			ErrAlgorithm, `alg 'HS256'`},
		{"ES384 is not on the list", sign(t, jwt.SigningMethodES384, mustEC384(t), "", good), ErrAlgorithm, `alg 'ES384'`},
		{"PS256 with the trusted RSA key: not on the list", sign(t, jwt.SigningMethodPS256, rs, "", good), ErrAlgorithm, `alg 'PS256'`},
		{"own kid with ES256: key type does not fit the alg", sign(t, jwt.SigningMethodES256, ec, kid, good), ErrAlgorithm, "mediator tokens are EdDSA"},
		{"EC kid with EdDSA: key type does not fit the alg", sign(t, jwt.SigningMethodEdDSA, otherEd, "ec-1", good), ErrAlgorithm, `kid 'ec-1' verifies ES256, not alg 'EdDSA'`},
		{"wrong aud", ed(with(good, "aud", "someone-else")), ErrAudience, `'someone-else' does not include 'mcp-mediator'`},
		{"aud missing", ed(with(good, "aud", nil)), ErrAudience, "audience"},
		{"aud list without us", ed(with(good, "aud", []string{"a", "b"})), ErrAudience, `'a,b'`},
		{"wrong iss", ed(with(good, "iss", "evil")), ErrIssuer, `issuer 'evil' is not 'mcp-mediator'`},
		{"iss missing", ed(with(good, "iss", nil)), ErrIssuer, "auth.issuer"},
		{"expired beyond the leeway", ed(with(good, "exp", t0.Add(-31*time.Second).Unix())), ErrExpired,
			"token expired at 2026-11-22T09:59:29Z (leeway 30s): mint a new one with `mediator token mint`"},
		{"exp missing", ed(with(good, "exp", nil)), ErrExpired, "no exp"},
		{"exp as a JSON string", ed(with(good, "exp", "9999999999")), ErrClaims, "token claim exp is a JSON"},
		{"exp as a boolean", ed(with(good, "exp", true)), ErrClaims, "token claim exp is a JSON"},
		{"exp as an object", ed(with(good, "exp", map[string]any{"n": 1})), ErrClaims, "token claim exp is a JSON"},
		{"nbf as a JSON string", ed(with(good, "nbf", "0")), ErrClaims, "token claim nbf is a JSON string, not a number"},
		{"iat as a JSON string", ed(with(good, "iat", "1790000000")), ErrClaims, "token claim iat is a JSON"},
		{"iat as a boolean", ed(with(good, "iat", false)), ErrClaims, "token claim iat is a JSON"},
		{"nbf in the future beyond the leeway", ed(with(good, "nbf", t0.Add(31*time.Second).Unix())), ErrNotYetValid, "not valid before 2026-11-22T10:00:31Z"},
		{"iat in the future beyond the leeway", ed(with(good, "iat", t0.Add(time.Minute).Unix())), ErrNotYetValid, "issued in the future"},
		{"lifetime over the max", ed(with(good, "exp", t0.Add(61*time.Minute).Unix())), ErrLifetime, "lifetime 1h1m0s (exp - iat) exceeds the maximum 1h0m0s"},
		{"lifetime over the max without iat", ed(with(good, "iat", nil, "exp", t0.Add(2*time.Hour).Unix())), ErrLifetime, "expires in 2h0m0s"},
		{"1 MiB header", hugeHeader + ".e30.c2ln", ErrMalformed, "over the 8192-byte limit"},
		{"revoked jti", ed(with(good, "jti", "revoked-jti")), ErrRevoked, `token id 'revoked-jti' revoked at`},
		{"revoked task", ed(with(good, "task", "revoked-task")), ErrRevoked, `task 'revoked-task' revoked`},
		{"revoked agent", ed(with(good, "sub", "revoked-agent")), ErrRevoked, `agent 'revoked-agent' revoked`},
		{"revoked agent without iat", ed(with(good, "sub", "revoked-agent", "iat", nil)), ErrRevoked, "revoked"},
		{"garbage", "not a token at all", ErrMalformed, "not a compact JWT"},
		{"garbage in three parts", "a.b.c", ErrMalformed, "malformed token"},
		{"empty parts", "..", ErrMalformed, "malformed"},
		{"header not JSON", b64([]byte("hello")) + ".e30.c2ln", ErrMalformed, "malformed"},
		{"non-canonical base64 padding", goodParts[0] + "=." + goodParts[1] + "." + goodParts[2], ErrMalformed, "malformed"},
		{"roles of the wrong type", ed(with(good, "roles", "admin")), ErrMalformed, "roles"},
		{"missing jti", ed(with(good, "jti", nil)), ErrClaims, "no jti"},
		{"missing sub", ed(with(good, "sub", nil)), ErrClaims, "no sub"},
		{"confidence above 1", ed(with(good, "confidence", 1.5)), ErrClaims, "confidence 1.5"},
		{"unknown trust ceiling", ed(with(good, "trust_ceiling", "supreme")), ErrClaims, "trust_ceiling \"supreme\": use high, medium, low or none"},
		{"control characters in sub", ed(with(good, "sub", "agent\nforged log line")), ErrClaims, "control characters"},
		{"crit header", signWithHeader(t, key, kid, good, "crit", []string{"exp"}), ErrMalformed, "crit"},
		{"kid not a string", signWithHeader(t, key, kid, good, "kid", 7), ErrMalformed, "kid"},
		{"unknown kid", sign(t, jwt.SigningMethodEdDSA, otherEd, "nobody", good), ErrUnknownKey, `no trusted EdDSA key with kid 'nobody'`},
		{"another Ed25519 key claiming our kid", sign(t, jwt.SigningMethodEdDSA, otherEd, kid, good), ErrSignature, "signature does not verify"},
		{"another Ed25519 key without kid", sign(t, jwt.SigningMethodEdDSA, otherEd, "", good), ErrSignature, "signature does not verify"},
		{"payload swapped under a valid signature", tampered, ErrSignature, "signature does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := v.Authenticate(t.Context(), mediator.Credentials{Transport: "http", Bearer: tc.token})
			checkRefused(t, a, err, tc.kind, tc.want, tc.token)
		})
	}
}

// checkRefused asserts a refusal of kind whose reason contains want, is
// one line, and does not quote the token.
func checkRefused(t *testing.T, a *mediator.Agent, err error, kind error, want, token string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted as %+v; want %v", a, kind)
	}
	if a != nil {
		t.Errorf("returned agent %+v with error", a)
	}
	if !errors.Is(err, mediator.ErrUnauthenticated) || !errors.Is(err, kind) {
		t.Errorf("err = %v; want it to wrap ErrUnauthenticated and %v", err, kind)
	}
	msg := err.Error()
	if !strings.Contains(msg, want) {
		t.Errorf("reason %q; want it to contain %q", msg, want)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("reason spans lines: %q", msg)
	}
	if len(msg) > 400 {
		t.Errorf("reason is %d bytes long", len(msg))
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 16 && strings.Contains(msg, part[:16]) {
			t.Errorf("reason quotes the token: %q", msg)
		}
	}
}

func signWithHeader(t *testing.T, key *Key, kid string, c jwt.MapClaims, name string, value any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = kid
	tok.Header[name] = value
	s, err := tok.SignedString(key.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Tokens at the edges of the rules, and from every key source, verify.
func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	ec, rs := ecKey(t), rsaKey(t)
	jwksFile := writeFile(t, "keys.json", ecJWKS(t, "ec-1", &ec.PublicKey))
	pemFile := writeFile(t, "rsa.pem", publicPEM(t, &rs.PublicKey))
	v := newVerifier(t, key, WithJWKSFile(jwksFile), WithPEMFile(pemFile))
	if err := v.Revoke(t.Context(), mediator.Revocation{AgentID: "agent-1", At: t0.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	good := claimsAt(t0)
	cases := []struct {
		name  string
		token string
	}{
		{"EdDSA, the mediator's key", sign(t, jwt.SigningMethodEdDSA, key.priv, key.KID(), good)},
		{"EdDSA without kid", sign(t, jwt.SigningMethodEdDSA, key.priv, "", good)},
		{"ES256 from the JWKS file", sign(t, jwt.SigningMethodES256, ec, "ec-1", good)},
		{"ES256 from the JWKS file without kid", sign(t, jwt.SigningMethodES256, ec, "", good)},
		{"RS256 from the PEM file, any kid", sign(t, jwt.SigningMethodRS256, rs, "idp-key-7", good)},
		{"RS256 from the PEM file without kid", sign(t, jwt.SigningMethodRS256, rs, "", good)},
		{"expired within the leeway", sign(t, jwt.SigningMethodEdDSA, key.priv, key.KID(), with(good, "exp", t0.Add(-29*time.Second).Unix()))},
		{"nbf within the leeway", sign(t, jwt.SigningMethodEdDSA, key.priv, key.KID(), with(good, "nbf", t0.Add(29*time.Second).Unix()))},
		{"lifetime exactly the max", sign(t, jwt.SigningMethodEdDSA, key.priv, key.KID(), with(good, "exp", t0.Add(time.Hour).Unix()))},
		{"aud as a list", sign(t, jwt.SigningMethodEdDSA, key.priv, key.KID(), with(good, "aud", []string{"other", DefaultAudience}))},
		{"issued after its agent's revocation", sign(t, jwt.SigningMethodEdDSA, key.priv, key.KID(), good)},
	}
	want := &mediator.Agent{ID: "agent-1", Version: "1.2.3", Roles: []string{"writer"}, Owner: "team-a",
		BusinessFunction: "support", Attrs: map[string]string{"region": "eu"}, Confidence: 0.9,
		TaskID: "task-1", TokenID: "jti-1"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := v.Authenticate(t.Context(), mediator.Credentials{Transport: "http", Bearer: tc.token})
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !reflect.DeepEqual(a, want) {
				t.Errorf("agent = %+v\nwant %+v", a, want)
			}
		})
	}
}

func TestAuthenticateIdentities(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	anon := &mediator.Agent{ID: "local-agent", Roles: []string{"writer"}}
	local := &mediator.Agent{ID: "stdio-agent", Owner: "me"}
	strict := newVerifier(t, key)
	open := newVerifier(t, key, WithAnonymous(anon), WithStdioAgent(local))
	http := func(bearer string) mediator.Credentials {
		return mediator.Credentials{Transport: "http", Bearer: bearer}
	}

	_, err := strict.Authenticate(t.Context(), http(""))
	checkRefused(t, nil, err, ErrNoToken, "no bearer token: send `Authorization: Bearer <token>`", "")
	_, err = strict.Authenticate(t.Context(), mediator.Credentials{Transport: "stdio"})
	checkRefused(t, nil, err, ErrNoIdentity, "agent.id", "")
	_, err = strict.Authenticate(t.Context(), mediator.Credentials{Transport: "carrier-pigeon"})
	checkRefused(t, nil, err, ErrNoIdentity, "unknown transport", "")

	a, err := open.Authenticate(t.Context(), http(""))
	if err != nil || !reflect.DeepEqual(a, anon) {
		t.Fatalf("no token with an anonymous identity = %+v, %v; want %+v", a, err, anon)
	}
	a.Roles[0] = "admin" // the caller's copy: must not leak into the next request
	if a, _ := open.Authenticate(t.Context(), http("")); a.Roles[0] != "writer" {
		t.Fatalf("anonymous identity was mutated through a returned agent: %+v", a)
	}
	_, err = open.Authenticate(t.Context(), http("garbage"))
	checkRefused(t, nil, err, ErrMalformed, "malformed", "garbage")
	expired := sign(t, jwt.SigningMethodEdDSA, key.priv, key.KID(), with(claimsAt(t0.Add(-time.Hour))))
	_, err = open.Authenticate(t.Context(), http(expired))
	checkRefused(t, nil, err, ErrExpired, "expired", expired)

	a, err = open.Authenticate(t.Context(), mediator.Credentials{Transport: "stdio"})
	if err != nil || !reflect.DeepEqual(a, local) {
		t.Fatalf("stdio = %+v, %v; want %+v", a, err, local)
	}
}

// A huge token is refused before it is decoded: the cost does not grow
// with its size.
func TestHugeTokenIsCheap(t *testing.T) {
	v := newVerifier(t, testKey(t))
	huge := strings.Repeat("A", 1<<20) + ".e30.c2ln"
	cred := mediator.Credentials{Transport: "http", Bearer: huge}
	allocs := testing.AllocsPerRun(20, func() { _, _ = v.Authenticate(t.Context(), cred) })
	if allocs > 8 {
		t.Fatalf("refusing a 1 MiB token costs %v allocations; want a handful (no decoding)", allocs)
	}
}

func TestNewRefusesBadSources(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	ec := ecKey(t)
	privDER, err := x509MarshalPKCS8(ec)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		opt  Option
		want string
	}{
		{"missing JWKS file", WithJWKSFile("/nonexistent/keys.json"), "auth.jwks_file"},
		{"JWKS file not JSON", WithJWKSFile(writeFile(t, "k.json", []byte("nope"))), "not a JWK Set"},
		{"JWKS file with only a shared secret", WithJWKSFile(writeFile(t, "k.json",
			jwksJSON(t, map[string]string{"kty": "oct", "k": b64([]byte("0123456789abcdef0123456789abcdef"))}))), "no usable signing key"},
		{"missing PEM file", WithPEMFile("/nonexistent/key.pem"), "auth.pem_file"},
		{"PEM file with a private key", WithPEMFile(writeFile(t, "k.pem", pemBlock("PRIVATE KEY", privDER))), "public key only"},
		{"PEM file without a key", WithPEMFile(writeFile(t, "k.pem", []byte("hello"))), "no PEM public key"},
		{"JWKS URL over plain http to a remote host", WithJWKSURL("http://keys.example.com/jwks.json", 0), "use https"},
		{"JWKS URL not a URL", WithJWKSURL("::", 0), "not an absolute URL"},
		{"anonymous without id", WithAnonymous(&mediator.Agent{}), "needs an id"},
		{"no max lifetime", WithMaxLifetime(0), "maximum lifetime"},
	}
	for _, tc := range cases {
		_, err := New(t.Context(), key, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v; want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestTokenB64Strictness(t *testing.T) {
	// jwt's strict decoding is what makes a verified token byte-identical
	// to the signed one: make sure the option is on.
	t.Parallel()
	key := testKey(t)
	v := newVerifier(t, key)
	tok := sign(t, jwt.SigningMethodEdDSA, key.priv, key.KID(), claimsAt(t0))
	parts := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	// Ed25519 signatures are 64 bytes: the last base64 character carries 2
	// unused bits. Setting one must not verify.
	last := parts[2][len(parts[2])-1]
	alt := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last) ^ 1
	mutated := parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] +
		string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[alt])
	if len(sig) != 64 {
		t.Fatalf("signature is %d bytes", len(sig))
	}
	if _, err := v.Verify(t.Context(), mutated); err == nil {
		t.Fatal("a token with non-canonical base64 in its signature verified")
	}
}

// The cache spares the signature check, never the expiry or revocation
// checks, and callers cannot alter what it holds.
func TestVerifiedCache(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	key := testKey(t)
	v := newVerifier(t, key, WithClock(clk.now), WithLeeway(0), WithCacheSize(2))
	tok, err := v.Mint(ClaimsFor(agentFixture()), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	c1.Roles[0] = "admin"
	c1.Attrs["region"] = "us"
	c2, err := v.Verify(t.Context(), tok)
	if err != nil || c2.Roles[0] != "writer" || c2.Attrs["region"] != "eu" {
		t.Fatalf("second Verify = %+v, %v; the cached claims were altered through a returned copy", c2, err)
	}
	if err := v.Revoke(t.Context(), mediator.Revocation{JTI: c2.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(t.Context(), tok)
	checkRefused(t, nil, err, ErrRevoked, "revoked", tok)

	tok2, _ := v.Mint(ClaimsFor(agentFixture()), 10*time.Minute)
	if _, err := v.Verify(t.Context(), tok2); err != nil {
		t.Fatal(err)
	}
	clk.advance(10*time.Minute + time.Second)
	_, err = v.Verify(t.Context(), tok2)
	checkRefused(t, nil, err, ErrExpired, "expired", tok2)
	for range 10 { // more tokens than the cache holds
		tk, _ := v.Mint(ClaimsFor(agentFixture()), time.Minute)
		if _, err := v.Verify(t.Context(), tk); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.cache.m); n > 2 {
		t.Fatalf("cache holds %d entries; bound is 2", n)
	}
}
