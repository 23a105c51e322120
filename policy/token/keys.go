package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// ErrKeyFile is wrapped by every error about the mediator's own key file.
var ErrKeyFile = errors.New("mediator key file")

// maxKeyFileBytes bounds what LoadKey reads.
const maxKeyFileBytes = 64 << 10

// Key is the mediator's own Ed25519 signing key. Its public half verifies
// the tokens it mints and is published by JWKS so other services can
// verify them too. A Key is immutable and safe for concurrent use.
type Key struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	kid  string
}

// NewKey wraps an Ed25519 private key.
func NewKey(priv ed25519.PrivateKey) *Key {
	pub := priv.Public().(ed25519.PublicKey)
	return &Key{priv: priv, pub: pub, kid: Thumbprint(pub)}
}

// GenerateKey returns a fresh random Key (for tests and first start).
func GenerateKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	return NewKey(priv), nil
}

// KID is the key id: the key's RFC 7638 JWK thumbprint (SHA-256,
// base64url), set as "kid" in every token it signs.
func (k *Key) KID() string { return k.kid }

// Public returns the public key.
func (k *Key) Public() ed25519.PublicKey { return k.pub }

// Sign signs msg with the key (Ed25519), for what the mediator vouches
// for besides tokens: the signed checkpoints of its audit chain.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// JWKS returns the public JWK Set holding this key, as JSON, for services
// that verify the mediator's tokens.
func (k *Key) JWKS() ([]byte, error) {
	return json.MarshalIndent(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "x": b64(k.pub),
		"kid": k.kid, "alg": "EdDSA", "use": "sig",
	}}}, "", "  ")
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key.
func Thumbprint(pub ed25519.PublicKey) string {
	// The members, in lexicographic order, with no whitespace (RFC 7638 §3.2).
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + b64(pub) + `"}`))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// LoadOrCreateKey loads the key at path, or creates it there when no file
// exists: a new random Ed25519 key, PEM-encoded PKCS#8, mode 0600, written
// atomically (another process starting at the same moment loads the same
// key). created reports whether this call made it.
func LoadOrCreateKey(path string) (k *Key, created bool, err error) {
	k, err = LoadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if k, err = createKey(path); err != nil {
		return nil, false, err
	}
	if k != nil {
		return k, true, nil
	}
	// Another process created it first.
	k, err = LoadKey(path)
	return k, false, err
}

// LoadKey reads the PEM (PKCS#8) Ed25519 private key at path. It refuses a
// file that group or others may read or write: the key signs every token
// the mediator trusts.
func LoadKey(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	if err := checkKeyMode(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	return parsePrivateKey(path, data)
}

// checkKeyMode refuses key files that are not regular files private to
// their owner.
func checkKeyMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w %s: not a regular file", ErrKeyFile, path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w %s: mode %04o lets group or others read it; run `chmod 600 %s` "+
			"(and replace the key if anyone else may have read it)", ErrKeyFile, path, fi.Mode().Perm(), path)
	}
	return nil
}

func parsePrivateKey(path string, data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w %s: not a PEM \"PRIVATE KEY\" (PKCS#8) block; "+
			"remove the file to have the mediator create a new key", ErrKeyFile, path)
	}
	raw, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	priv, ok := raw.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w %s: holds a %T, want an Ed25519 key", ErrKeyFile, path, raw)
	}
	return NewKey(priv), nil
}

// createKey writes a new key to path unless a file appears there first,
// in which case it returns a nil Key and no error.
func createKey(path string) (*Key, error) {
	k, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("%w %s: encode: %w", ErrKeyFile, path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	tmp, err := os.CreateTemp(dir, ".mediator-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	defer os.Remove(tmp.Name())
	err = errors.Join(pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}), tmp.Sync(), tmp.Close())
	if err != nil {
		return nil, fmt.Errorf("%w %s: write: %w", ErrKeyFile, path, err)
	}
	// Link fails if path exists: the key is never replaced, only created.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	return k, nil
}
