// Package token authenticates agents with short-lived signed passports:
// JWTs whose claims say which agent is calling (sub), for which task
// (task), with which roles and attributes, and which can be revoked (jti).
// Verifier implements mediator.Authenticator.
//
// # Verification
//
// A bearer token is refused, with an *Error that wraps
// mediator.ErrUnauthenticated and names the cause and the fix, unless:
//   - it is at most MaxTokenBytes long (checked before any decoding) and a
//     compact JWS;
//   - its alg is EdDSA, ES256 or RS256 (HS256 and none are refused), and
//     the key it names (kid) is trusted and of the type that alg needs: the
//     mediator's own Ed25519 key, or a key from a JWK Set file, a PEM file
//     or a JWK Set URL refreshed in the background;
//   - the signature verifies;
//   - iss is the configured issuer and aud includes the configured
//     audience;
//   - exp is present and not past, nbf and iat are not in the future (each
//     within the leeway), and the lifetime (exp - iat, or exp - now without
//     iat) is within the maximum;
//   - sub (the agent id) and jti are present, and confidence is within 0..1;
//   - neither the token, its task nor its agent is revoked.
//
// A token that passed is remembered (WithCacheSize) so that its signature
// is not checked again on every call; expiry and revocation are.
//
// A request without a token is refused unless an anonymous identity is
// configured (WithAnonymous); a bad token is refused even then. stdio
// credentials get the configured stdio identity (WithStdioAgent).
//
// # Revocation
//
// Revocations are kept in memory and checked on every request. With a
// mediator.RevocationStore, New loads them all and a background poll picks
// up those written by other processes (such as `mediator token revoke`)
// about every second; Revoke writes to the store, then takes effect at
// once. If the poll fails for longer than DefaultMaxStale, every token is
// refused until it succeeds again: a revocation that cannot be seen must
// not be ignored.
//
// # Minting
//
// Mint signs claims with the mediator's own key (EdDSA; kid = the key's
// RFC 7638 thumbprint). The key lives in a PEM (PKCS#8) file of mode 0600,
// created on first use by LoadOrCreateKey; a key file that others may read
// is refused. Key.JWKS publishes the public key so other services can
// verify the mediator's tokens.
package token
