package token

import (
	"context"

	"github.com/golang-jwt/jwt/v5"
)

// keyFor is the jwt key function: it finds the trusted keys the token's
// kid may name and keeps those whose type serves the token's alg, so a key
// is never used with an algorithm it was not made for. The mediator's own
// key is checked first, without locks or allocation. remote reports
// whether a key may come from the JWKS URL, whose keys can be withdrawn.
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (key any, remote bool, err error) {
	alg := t.Method.Alg()
	kid, ok := t.Header["kid"].(string)
	if !ok && t.Header["kid"] != nil {
		return nil, false, fail(ErrMalformed, "malformed token: kid in the header is not a string")
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, false, fail(ErrMalformed, "token header lists crit extensions, which this mediator does not support: mint it without crit")
	}
	if v.key != nil && kid == v.key.kid {
		if alg != AlgEdDSA {
			return nil, false, fail(ErrAlgorithm, "token names the mediator's Ed25519 key (kid %s) but alg %s: mediator tokens are EdDSA",
				quote(kid), quote(alg))
		}
		return v.key.pub, false, nil
	}
	found, err := v.candidates(ctx, kid)
	if err != nil {
		return nil, false, err
	}
	var keys []jwt.VerificationKey
	for _, k := range found {
		if k.alg == alg {
			keys = append(keys, k.key)
			remote = remote || k.remote
		}
	}
	switch len(keys) {
	case 0:
		return nil, false, noKey(found, kid, alg)
	case 1:
		return keys[0], remote, nil
	}
	return jwt.VerificationKeySet{Keys: keys}, remote, nil
}

// noKey explains why none of the candidate keys can verify alg: a key
// with that very kid serves another algorithm, or no key fits at all.
func noKey(found []verifyKey, kid, alg string) error {
	for _, k := range found {
		if kid != "" && k.kid == kid {
			return fail(ErrAlgorithm, "the trusted key with kid %s verifies %s, not alg %s: sign with the key's own algorithm",
				quote(kid), k.alg, quote(alg))
		}
	}
	return fail(ErrUnknownKey, "no trusted %s key with kid %s: sign with the mediator's key (`mediator token mint`), "+
		"or add the issuer's key to auth.jwks_file, auth.pem_file or auth.jwks_url", alg, quote(kid))
}

// candidates returns the trusted keys kid may name: those with that kid,
// keys without a kid, and every key when the token has no kid.
func (v *Verifier) candidates(ctx context.Context, kid string) ([]verifyKey, error) {
	var out []verifyKey
	if v.key != nil && kid == "" {
		out = append(out, verifyKey{kid: v.key.kid, alg: AlgEdDSA, key: v.key.pub})
	}
	for _, k := range v.static {
		if kid == "" || k.kid == "" || k.kid == kid {
			out = append(out, k)
		}
	}
	if v.remote != nil {
		ks, err := v.remote.lookup(ctx, kid)
		if err != nil {
			return nil, err
		}
		out = append(out, ks...)
	}
	return out, nil
}
