package token

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// PastKeysFile is where the public halves of the mediator's earlier keys
// are kept after `mediator keys rotate`: a JWK Set beside the key file,
// so that what they signed (audit checkpoints) stays verifiable.
func PastKeysFile(keyPath string) string { return keyPath + ".past.jwks" }

// pastKey is one entry of the past keys' JWK Set.
type pastKey struct {
	Kty       string    `json:"kty"`
	Crv       string    `json:"crv"`
	X         string    `json:"x"`
	Kid       string    `json:"kid"`
	Alg       string    `json:"alg"`
	Use       string    `json:"use"`
	RotatedAt time.Time `json:"rotated_at"`
}

// RotateKey replaces the key at path with a new one, after adding the old
// one's public half to PastKeysFile(path). It returns both keys. A crash
// in between leaves the old key in force and also listed as past, which
// is harmless.
func RotateKey(path string, now time.Time) (old, fresh *Key, err error) {
	if old, err = LoadKey(path); err != nil {
		return nil, nil, err
	}
	past, err := readPastKeys(PastKeysFile(path))
	if err != nil {
		return nil, nil, err
	}
	past = append(past, pastKey{Kty: "OKP", Crv: "Ed25519", X: b64(old.pub), Kid: old.kid, Alg: "EdDSA", Use: "sig", RotatedAt: now.UTC()})
	data, err := json.MarshalIndent(map[string]any{"keys": past}, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	if err := replaceFile(PastKeysFile(path), data, 0o644); err != nil {
		return nil, nil, err
	}
	if fresh, err = GenerateKey(); err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(fresh.priv)
	if err != nil {
		return nil, nil, fmt.Errorf("%w %s: encode: %w", ErrKeyFile, path, err)
	}
	if err := replaceFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, nil, err
	}
	return old, fresh, nil
}

// PastKeys returns the public keys rotated out of keyPath, by kid (none
// when there is no past keys file).
func PastKeys(keyPath string) (map[string]ed25519.PublicKey, error) {
	list, err := readPastKeys(PastKeysFile(keyPath))
	if err != nil {
		return nil, err
	}
	out := map[string]ed25519.PublicKey{}
	for _, k := range list {
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize || k.Kty != "OKP" || k.Crv != "Ed25519" {
			return nil, fmt.Errorf("%w %s: key %q is not an Ed25519 public key", ErrKeyFile, PastKeysFile(keyPath), k.Kid)
		}
		pub := ed25519.PublicKey(x)
		if Thumbprint(pub) != k.Kid {
			return nil, fmt.Errorf("%w %s: key %q: kid is not its thumbprint", ErrKeyFile, PastKeysFile(keyPath), k.Kid)
		}
		out[k.Kid] = pub
	}
	return out, nil
}

func readPastKeys(path string) ([]pastKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	var set struct {
		Keys []pastKey `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w %s: not a JWK Set: %w", ErrKeyFile, path, err)
	}
	return set.Keys, nil
}

// replaceFile writes data to path atomically (temp file, sync, rename).
func replaceFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".mediator-tmp-*")
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	defer os.Remove(tmp.Name())
	if err := errors.Join(tmp.Chmod(mode), writeAll(tmp, data), tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("%w %s: write: %w", ErrKeyFile, path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	return nil
}

func writeAll(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}
