package token

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "mediator.key")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKey = %v, created %v; want a new key", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o; want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || k2.KID() != k1.KID() {
		t.Fatalf("second LoadOrCreateKey = kid %s, created %v, %v; want the same key %s loaded", k2.KID(), created, err, k1.KID())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("key directory holds %d entries; want only the key (no temp files left)", len(entries))
	}
}

// Processes starting at once agree on one key.
func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mediator.key")
	kids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			k, _, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = k.KID()
		})
	}
	wg.Wait()
	for _, kid := range kids {
		if kid != kids[0] {
			t.Fatalf("concurrent creators got different keys: %v", kids)
		}
	}
}

func TestLoadKeyRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	if _, _, err := LoadOrCreateKey(good); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey(t))
	cases := []struct {
		name string
		data []byte
		mode os.FileMode
		want string
	}{
		{"readable by others: the key signs every trusted token", data, 0o644, "chmod 600"},
		{"readable by group", data, 0o640, "mode 0640"},
		{"not PEM", []byte("hello"), 0o600, `not a PEM "PRIVATE KEY"`},
		{"not Ed25519", pemBlock("PRIVATE KEY", ecDER), 0o600, "want an Ed25519 key"},
		{"PEM of another type", pemBlock("PUBLIC KEY", []byte{1}), 0o600, "PKCS#8"},
	}
	for _, tc := range cases {
		p := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(p, tc.data, tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateKey(p)
		if !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want ErrKeyFile mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadKey(filepath.Join(dir, "missing.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadKey(missing) = %v; want not-exist", err)
	}
	if _, err := LoadKey(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("LoadKey(directory) = %v", err)
	}
}

// RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
func TestThumbprintRFC8037(t *testing.T) {
	t.Parallel()
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Thumbprint(ed25519.PublicKey(x)), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("Thumbprint = %s; want %s", got, want)
	}
}

// The published JWKS holds only public material, and a third-party
// verifier (keyfunc) accepts the mediator's tokens with it.
func TestJWKSVerifiesMintedTokens(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	v := newVerifier(t, key)
	raw, err := v.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS = %s, %v", raw, err)
	}
	k := set.Keys[0]
	if k["kid"] != key.KID() || k["alg"] != "EdDSA" || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["d"] != "" {
		t.Fatalf("JWKS key = %v", k)
	}
	tok, err := v.Mint(ClaimsFor(agentFixture()), 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Another verifier with the real clock: the token was minted at t0.
	parsed, err := jwt.Parse(tok, kf.Keyfunc, jwt.WithoutClaimsValidation(), jwt.WithValidMethods([]string{"EdDSA"}))
	if err != nil || !parsed.Valid {
		t.Fatalf("keyfunc verification of a minted token: %v", err)
	}
}
