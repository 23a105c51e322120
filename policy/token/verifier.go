package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
)

// Defaults of the options.
const (
	DefaultIssuer      = "mcp-mediator"
	DefaultAudience    = "mcp-mediator"
	DefaultLeeway      = 30 * time.Second
	DefaultMaxLifetime = time.Hour
	// MaxTokenBytes bounds a bearer token. A longer one is refused before
	// any decoding, so a huge header costs nothing to refuse.
	MaxTokenBytes = 8 << 10
)

// Verifier authenticates agents. Over HTTP it verifies the bearer token
// (an agent passport JWT) and turns its claims into a mediator.Agent; over
// stdio it returns the configured stdio identity. It also mints tokens
// with the mediator's own key and revokes them. All methods are safe for
// concurrent use; Close stops its background work.
type Verifier struct {
	key         *Key
	issuer      string
	audience    string
	leeway      time.Duration
	maxLifetime time.Duration
	now         func() time.Time
	log         *slog.Logger
	parser      *jwt.Parser
	cacheSize   int
	cache       *verifiedCache

	anonymous *mediator.Agent
	stdio     *mediator.Agent

	jwksFile, pemFile, jwksURL string
	jwksRefresh                time.Duration
	static                     []verifyKey
	remote                     *remoteKeys

	store     mediator.RevocationStore
	revs      *revocations
	pollEvery time.Duration
	maxStale  time.Duration

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ mediator.Authenticator = (*Verifier)(nil)

// Option configures a Verifier.
type Option func(*Verifier)

// WithIssuer sets the required iss, also used by Mint (default DefaultIssuer).
func WithIssuer(iss string) Option { return func(v *Verifier) { v.issuer = iss } }

// WithAudience sets the audience aud must include, also used by Mint
// (default DefaultAudience).
func WithAudience(aud string) Option { return func(v *Verifier) { v.audience = aud } }

// WithLeeway sets the clock skew allowed on exp, nbf and iat (default
// DefaultLeeway).
func WithLeeway(d time.Duration) Option { return func(v *Verifier) { v.leeway = max(d, 0) } }

// WithMaxLifetime sets the longest lifetime accepted: exp - iat, or exp -
// now for a token without iat (default DefaultMaxLifetime). Mint refuses a
// longer TTL.
func WithMaxLifetime(d time.Duration) Option { return func(v *Verifier) { v.maxLifetime = d } }

// WithClock sets the clock (for tests).
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// WithLogger sets the logger (default slog.Default()). Tokens and keys are
// never logged.
func WithLogger(l *slog.Logger) Option {
	return func(v *Verifier) {
		if l != nil {
			v.log = l
		}
	}
}

// WithCacheSize sets how many verified tokens are remembered, so a token
// used for many calls has its signature checked once a minute rather than
// on every call (default DefaultCacheSize; 0 disables the cache). Expiry
// and revocation are checked on every call regardless.
func WithCacheSize(n int) Option { return func(v *Verifier) { v.cacheSize = n } }

// WithJWKSFile adds the public signing keys of a local JWK Set file.
func WithJWKSFile(path string) Option { return func(v *Verifier) { v.jwksFile = path } }

// WithPEMFile adds the public keys (or certificates) of a local PEM file.
// PEM keys have no kid: each is tried for tokens of its algorithm.
func WithPEMFile(path string) Option { return func(v *Verifier) { v.pemFile = path } }

// WithJWKSURL adds the keys of a remote JWK Set, fetched at New and
// refreshed in the background every refresh (DefaultJWKSRefresh when 0),
// and, rate-limited, when a token names an unknown kid. The URL must be
// https, or http to a loopback host.
func WithJWKSURL(url string, refresh time.Duration) Option {
	return func(v *Verifier) { v.jwksURL, v.jwksRefresh = url, refresh }
}

// WithAnonymous makes a request with no bearer token authenticate as a
// (nil: refused, the default). A request with an invalid token is refused
// all the same: the anonymous identity is never a fallback for a bad token.
func WithAnonymous(a *mediator.Agent) Option {
	return func(v *Verifier) { v.anonymous = cloneAgent(a) }
}

// WithStdioAgent sets the identity of stdio credentials (nil: refused).
func WithStdioAgent(a *mediator.Agent) Option { return func(v *Verifier) { v.stdio = cloneAgent(a) } }

// WithRevocationStore persists revocations in s and honours those made by
// other processes: New loads them all, and a background poll picks up new
// ones every interval (DefaultPollInterval when 0). When no poll has
// succeeded for DefaultMaxStale, tokens are refused until one does.
func WithRevocationStore(s mediator.RevocationStore, interval time.Duration) Option {
	return func(v *Verifier) { v.store, v.pollEvery = s, interval }
}

// New builds a Verifier that trusts key (the mediator's own key, which
// also mints; nil for none) and the key sources given as options. It loads
// the key files and the revocations now (within ctx), and starts the
// background JWKS refresh and revocation poll, which run until Close: they
// outlive ctx so that a server draining its last requests after a signal
// still sees new revocations.
func New(ctx context.Context, key *Key, opts ...Option) (*Verifier, error) {
	v := &Verifier{
		key: key, issuer: DefaultIssuer, audience: DefaultAudience,
		leeway: DefaultLeeway, maxLifetime: DefaultMaxLifetime, cacheSize: DefaultCacheSize,
		now: time.Now, log: slog.Default(), maxStale: DefaultMaxStale,
		revs: newRevocations(), done: make(chan struct{}),
	}
	for _, o := range opts {
		o(v)
	}
	if err := v.check(); err != nil {
		return nil, err
	}
	v.cache = newVerifiedCache(v.cacheSize)
	v.parser = jwt.NewParser(jwt.WithValidMethods(algorithms), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	ctx, v.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := v.loadKeys(ctx); err != nil {
		v.cancel()
		return nil, err
	}
	if err := v.startRevocations(ctx); err != nil {
		v.cancel()
		return nil, err
	}
	return v, nil
}

// check validates the settings.
func (v *Verifier) check() error {
	var errs []error
	if v.issuer == "" || v.audience == "" {
		errs = append(errs, errors.New("token: issuer and audience must be set"))
	}
	if v.maxLifetime <= 0 {
		errs = append(errs, errors.New("token: the maximum lifetime must be positive"))
	}
	for _, a := range []*mediator.Agent{v.anonymous, v.stdio} {
		if a != nil && a.ID == "" {
			errs = append(errs, errors.New("token: a configured identity needs an id"))
		}
	}
	return errors.Join(errs...)
}

// loadKeys reads the key files and starts the JWKS URL refresh.
func (v *Verifier) loadKeys(ctx context.Context) error {
	if v.jwksFile != "" {
		ks, err := loadJWKSFile(v.jwksFile, v.log)
		if err != nil {
			return err
		}
		v.static = append(v.static, ks...)
	}
	if v.pemFile != "" {
		ks, err := loadPEMFile(v.pemFile)
		if err != nil {
			return err
		}
		v.static = append(v.static, ks...)
	}
	if v.jwksURL != "" {
		every := v.jwksRefresh
		if every <= 0 {
			every = DefaultJWKSRefresh
		}
		var err error
		if v.remote, err = newRemoteKeys(ctx, v.jwksURL, every, v.log); err != nil {
			return err
		}
	}
	return nil
}

// startRevocations loads every stored revocation and starts the poll.
func (v *Verifier) startRevocations(ctx context.Context) error {
	if v.store == nil {
		close(v.done)
		return nil
	}
	if v.pollEvery <= 0 {
		v.pollEvery = DefaultPollInterval
	}
	p := &poller{store: v.store, index: v.revs, every: v.pollEvery, maxStale: v.maxStale, now: v.now, log: v.log}
	if err := p.poll(ctx); err != nil {
		return fmt.Errorf("token: load revocations: %w", err)
	}
	go p.run(ctx, v.done)
	return nil
}

// Close stops the background refresh and poll. Authenticate keeps working
// on what was loaded (but refuses tokens once the revocation list is stale).
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() {
		v.cancel()
		<-v.done
	})
	return nil
}

// Authenticate returns the agent a request's credentials prove. Every
// error is an *Error wrapping mediator.ErrUnauthenticated.
func (v *Verifier) Authenticate(ctx context.Context, cred mediator.Credentials) (*mediator.Agent, error) {
	switch cred.Transport {
	case "stdio", mediator.TransportLocal: // the one local agent, known without a token
		if v.stdio == nil {
			return nil, fail(ErrNoIdentity, "no stdio identity configured: set agent.id in the config")
		}
		return cloneAgent(v.stdio), nil
	case "http":
	default:
		return nil, fail(ErrNoIdentity, "unknown transport %s: no way to authenticate it", quote(cred.Transport))
	}
	if cred.Bearer == "" {
		if v.anonymous != nil {
			return cloneAgent(v.anonymous), nil
		}
		return nil, fail(ErrNoToken, "no bearer token: send `Authorization: Bearer <token>` "+
			"(mint one with `mediator token mint --agent ID`)")
	}
	c, err := v.Verify(ctx, cred.Bearer)
	if err != nil {
		return nil, err
	}
	return c.Agent(), nil
}

// Verify checks a token (signature, algorithm, key, iss, aud, exp, nbf,
// iat, lifetime, passport claims, revocation) and returns its claims.
// Every error is an *Error wrapping mediator.ErrUnauthenticated.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if err := checkShape(raw); err != nil {
		return nil, err
	}
	now := v.now()
	c := v.cache.get(raw, now)
	if c == nil {
		var remote bool
		var err error
		if c, remote, err = v.verifyStatic(ctx, raw); err != nil {
			return nil, err
		}
		if !remote { // a JWKS URL key may be withdrawn: check it every time
			v.cache.put(raw, c, now)
		}
	}
	if err := c.checkTimes(now, v.leeway, v.maxLifetime); err != nil {
		return nil, err
	}
	if err := v.checkRevoked(c, now); err != nil {
		return nil, err
	}
	return c.clone(), nil
}

// verifyStatic checks what does not change with time: the signature, the
// algorithm and key, the issuer, the audience and the passport claims.
// remote reports whether the key came from the JWKS URL.
func (v *Verifier) verifyStatic(ctx context.Context, raw string) (c *Claims, remote bool, err error) {
	c = &Claims{}
	tok, err := v.parser.ParseWithClaims(raw, c, func(t *jwt.Token) (any, error) {
		key, r, err := v.keyFor(ctx, t)
		remote = r
		return key, err
	})
	if err != nil {
		return nil, false, parseError(tok, err)
	}
	if err := v.refuseAdminToken(c); err != nil {
		return nil, false, err
	}
	if err := c.checkAudience(v.issuer, v.audience); err != nil {
		return nil, false, err
	}
	if err := c.checkPassport(); err != nil {
		return nil, false, err
	}
	return c, remote, nil
}

// checkRevoked refuses a revoked token, and every token while the
// revocation list is stale.
func (v *Verifier) checkRevoked(c *Claims, now time.Time) error {
	if v.store != nil {
		if d := v.revs.staleFor(now); d > v.maxStale {
			return fail(ErrRevocationsStale, "revocation list not refreshed for %s (is the database reachable?): "+
				"tokens are refused until it is", d.Round(time.Second))
		}
	}
	return v.revs.check(c)
}

// parseError turns a jwt parse failure into a reason that never quotes
// the token.
func parseError(tok *jwt.Token, err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	if tok != nil && tok.Header != nil {
		alg, _ := tok.Header["alg"].(string)
		if !slices.Contains(algorithms, alg) {
			return fail(ErrAlgorithm, "token alg %s is not accepted: sign with EdDSA, ES256 or RS256 (HS256 and none are refused)", quote(alg))
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fail(ErrSignature, "token signature does not verify: the token was altered, or signed by a key this mediator does not trust")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(ErrMalformed, "malformed token (%s): send the token exactly as it was minted", jwtDetail(err))
	}
	return fail(ErrMalformed, "unusable token (%s)", jwtDetail(err))
}

// jwtDetail shortens a jwt error (which never contains the token) to one
// line.
func jwtDetail(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func cloneAgent(a *mediator.Agent) *mediator.Agent {
	if a == nil {
		return nil
	}
	c := *a
	c.Roles = slices.Clone(a.Roles)
	c.Attrs = maps.Clone(a.Attrs)
	return &c
}
