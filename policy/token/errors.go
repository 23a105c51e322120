package token

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/mcp-mediator/mediator/mediator"
)

// Kinds of authentication failure. Every error Authenticate returns is an
// *Error that wraps mediator.ErrUnauthenticated and one of these, so callers
// and tests can tell the causes apart with errors.Is.
var (
	// ErrNoToken: the request carried no bearer token and no anonymous
	// identity is configured.
	ErrNoToken = errors.New("no bearer token")
	// ErrMalformed: not a compact JWS of acceptable size and shape.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm: an alg other than EdDSA, ES256 or RS256, or a key of
	// another type than the alg needs.
	ErrAlgorithm = errors.New("token algorithm not accepted")
	// ErrUnknownKey: no trusted key matches the token's kid and alg.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("invalid token signature")
	// ErrExpired: exp is missing or past (beyond the leeway).
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat lies in the future (beyond the leeway).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrLifetime: the token lives longer than the configured maximum.
	ErrLifetime = errors.New("token lifetime too long")
	// ErrIssuer: iss is missing or not the configured issuer.
	ErrIssuer = errors.New("wrong token issuer")
	// ErrAudience: aud is missing or does not name this mediator.
	ErrAudience = errors.New("wrong token audience")
	// ErrClaims: a passport claim is missing or invalid (sub, jti,
	// confidence, ...).
	ErrClaims = errors.New("invalid token claims")
	// ErrRevoked: the token, its task or its agent has been revoked.
	ErrRevoked = errors.New("token revoked")
	// ErrRevocationsStale: the revocation list could not be refreshed for
	// too long, so no token can be trusted (fail closed).
	ErrRevocationsStale = errors.New("revocation list stale")
	// ErrNoIdentity: a transport whose identity comes from config has none
	// configured.
	ErrNoIdentity = errors.New("no identity configured")
)

// ErrMint is wrapped by every error of Mint: the claims or TTL asked for
// cannot be signed.
var ErrMint = errors.New("cannot mint token")

// Error is an authentication failure. Its text is one line that names the
// cause and the fix, fit for an HTTP 401 and the audit log; it never holds
// the token.
type Error struct {
	// Kind is one of the sentinels above (ErrExpired, ErrRevoked, ...).
	Kind error
	// Reason is the one-line explanation.
	Reason string
}

// Error returns the reason alone: the HTTP gate adds "unauthenticated".
func (e *Error) Error() string { return e.Reason }

// AuthReason names the kind in one word, for metrics
// (mediator.AuthFailureReason).
func (e *Error) AuthReason() string {
	if r, ok := reasons[e.Kind]; ok {
		return r
	}
	return "other"
}

var reasons = map[error]string{
	ErrNoToken: "no_token", ErrMalformed: "malformed", ErrAlgorithm: "algorithm", ErrUnknownKey: "unknown_key",
	ErrSignature: "signature", ErrExpired: "expired", ErrNotYetValid: "not_yet_valid", ErrLifetime: "lifetime",
	ErrIssuer: "issuer", ErrAudience: "audience", ErrClaims: "claims", ErrRevoked: "revoked",
	ErrRevocationsStale: "revocations_stale", ErrNoIdentity: "no_identity",
}

// Unwrap makes errors.Is true for mediator.ErrUnauthenticated and for Kind.
func (e *Error) Unwrap() []error { return []error{mediator.ErrUnauthenticated, e.Kind} }

// fail builds an *Error of kind with a formatted reason.
func fail(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// quote renders an untrusted value for an error message: in single
// quotes (a reason also travels in a quoted WWW-Authenticate parameter),
// with control and non-ASCII characters escaped, cut to a short prefix.
func quote(s string) string {
	const max = 64
	cut := ""
	if p, ok := mediator.CutUTF8(s, max); ok {
		s, cut = p, "…"
	}
	q := strconv.QuoteToASCII(s)
	return "'" + q[1:len(q)-1] + "'" + cut
}
