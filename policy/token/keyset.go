package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/MicahParks/jwkset"
)

// The accepted signing algorithms. HS256 (a shared secret that every
// verifier could sign with) and "none" are refused, and so is everything
// else.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// algorithms lists the accepted signing algorithms (for jwt.WithValidMethods).
var algorithms = []string{AlgEdDSA, AlgES256, AlgRS256}

// ErrKeySource is wrapped by every error about a configured verification
// key source (JWKS file, PEM file, JWKS URL).
var ErrKeySource = errors.New("verification keys")

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// maxKeySourceBytes bounds a JWKS or PEM file and a JWKS URL response.
const maxKeySourceBytes = 1 << 20

// verifyKey is one trusted public key. kid is "" for a key that came
// without one (a PEM file): it is tried for any token of its algorithm.
type verifyKey struct {
	kid    string
	alg    string // the algorithm the key's type serves
	key    crypto.PublicKey
	remote bool // fetched from the JWKS URL (may be withdrawn)
}

// algFor returns the algorithm a public key can verify, or an error naming
// why the key is not acceptable.
func algFor(key crypto.PublicKey) (string, error) {
	switch k := key.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("Ed25519 key of the wrong size")
		}
		return AlgEdDSA, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA key on %s; only P-256 (ES256) is accepted", k.Curve.Params().Name)
		}
		return AlgES256, nil
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits; at least %d are required", k.N.BitLen(), minRSABits)
		}
		return AlgRS256, nil
	}
	return "", fmt.Errorf("%T is not an Ed25519, P-256 or RSA public key", key)
}

// publicOf returns the public half of key when it is a private key.
func publicOf(key any) any {
	if p, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		if _, isPub := key.(ed25519.PublicKey); !isPub {
			return p.Public()
		}
	}
	return key
}

// readBounded reads a key source file, refusing one over the size bound.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeySourceBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeySourceBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxKeySourceBytes)
	}
	return data, nil
}

// loadJWKSFile reads the public signing keys of a JWK Set file. Keys of
// other types or uses are skipped with a warning; a file without one usable
// key is an error.
func loadJWKSFile(path string, log *slog.Logger) ([]verifyKey, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("%w: auth.jwks_file %s: %w", ErrKeySource, path, err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: auth.jwks_file %s: not a JWK Set: %w", ErrKeySource, path, err)
	}
	var out []verifyKey
	for i, m := range set.Keys {
		k, err := jwkKey(m)
		if err != nil {
			log.Warn("skipping a key of auth.jwks_file", "file", path, "index", i, "kid", m.KID, "why", err.Error())
			continue
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: auth.jwks_file %s: no usable signing key (Ed25519, P-256 or RSA >= %d bits)",
			ErrKeySource, path, minRSABits)
	}
	return out, nil
}

// jwkKey turns one JWK into a verifyKey, checking its use and alg.
func jwkKey(m jwkset.JWKMarshal) (verifyKey, error) {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return verifyKey{}, fmt.Errorf("use %q is not sig", m.USE)
	}
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
	if err != nil {
		return verifyKey{}, err
	}
	key := publicOf(jwk.Key())
	alg, err := algFor(key)
	if err != nil {
		return verifyKey{}, err
	}
	if m.ALG != "" && string(m.ALG) != alg {
		return verifyKey{}, fmt.Errorf("alg %q does not fit a key that verifies %s", m.ALG, alg)
	}
	return verifyKey{kid: m.KID, alg: alg, key: key}, nil
}

// loadPEMFile reads the public keys of a PEM file: PUBLIC KEY (PKIX),
// RSA PUBLIC KEY (PKCS#1) or CERTIFICATE blocks. A private key is refused.
func loadPEMFile(path string) ([]verifyKey, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("%w: auth.pem_file %s: %w", ErrKeySource, path, err)
	}
	var out []verifyKey
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		key, err := pemPublicKey(block)
		if err != nil {
			return nil, fmt.Errorf("%w: auth.pem_file %s: %w", ErrKeySource, path, err)
		}
		alg, err := algFor(key)
		if err != nil {
			return nil, fmt.Errorf("%w: auth.pem_file %s: %w", ErrKeySource, path, err)
		}
		out = append(out, verifyKey{alg: alg, key: key})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: auth.pem_file %s: no PEM public key found", ErrKeySource, path)
	}
	return out, nil
}

func pemPublicKey(block *pem.Block) (crypto.PublicKey, error) {
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key or certificate "+
		"(give the public key only, e.g. `openssl pkey -in key.pem -pubout`)", block.Type)
}
