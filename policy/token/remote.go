package token

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// Bounds of the JWKS URL refresh.
const (
	// DefaultJWKSRefresh is how often the JWKS URL is fetched in the
	// background.
	DefaultJWKSRefresh = 10 * time.Minute
	// jwksUnknownKIDEvery bounds the extra fetches a token with an unknown
	// kid may cause (a key rotation is picked up by the first token signed
	// with the new key, at most this often).
	jwksUnknownKIDEvery = 30 * time.Second
	// jwksFetchTimeout bounds one fetch.
	jwksFetchTimeout = 10 * time.Second
	// jwksLookupWait bounds how long verifying one token may wait for an
	// unknown-kid fetch (the rate limit and the fetch together).
	jwksLookupWait = 3 * time.Second
)

// remoteKeys is a JWK Set fetched from a URL and refreshed in the
// background by keyfunc.
type remoteKeys struct {
	url     string
	storage jwkset.Storage
}

// newRemoteKeys starts fetching u. A failed first fetch is logged, not
// fatal: tokens signed by other keys still verify, and the refresh goes on.
func newRemoteKeys(ctx context.Context, u string, every time.Duration, log *slog.Logger) (*remoteKeys, error) {
	if err := checkJWKSURL(u); err != nil {
		return nil, err
	}
	noErr := true
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{u}, keyfunc.Override{
		Client:                    boundedClient(),
		HTTPTimeout:               jwksFetchTimeout,
		NoErrorReturnFirstHTTPReq: &noErr,
		RateLimitWaitMax:          jwksLookupWait,
		RefreshInterval:           every,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(jwksUnknownKIDEvery), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				log.Warn("cannot refresh the JWKS URL; keeping the keys already fetched", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: auth.jwks_url %s: %w", ErrKeySource, u, err)
	}
	return &remoteKeys{url: u, storage: kf.Storage()}, nil
}

// checkJWKSURL requires https, or plain http to a loopback host only:
// keys fetched in clear over a network could be swapped by anyone on the
// path.
func checkJWKSURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return fmt.Errorf("%w: auth.jwks_url %q is not an absolute URL", ErrKeySource, u)
	}
	switch {
	case p.Scheme == "https":
		return nil
	case p.Scheme == "http" && isLoopbackHost(p.Hostname()):
		return nil
	}
	return fmt.Errorf("%w: auth.jwks_url %q: use https (plain http only to a loopback host)", ErrKeySource, u)
}

// lookup returns the keys the token's kid names (fetching the set again,
// within the rate limit, when the kid is unknown), or every key when the
// token has no kid.
func (r *remoteKeys) lookup(ctx context.Context, kid string) ([]verifyKey, error) {
	if kid == "" {
		all, err := r.storage.KeyReadAll(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]verifyKey, 0, len(all))
		for _, j := range all {
			if k, err := jwkKey(j.Marshal()); err == nil {
				k.remote = true
				out = append(out, k)
			}
		}
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, jwksLookupWait)
	defer cancel()
	j, err := r.storage.KeyRead(ctx, kid)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		// The rate limiter refusing to wait also lands here: the kid is
		// unknown for now.
		return nil, nil
	}
	k, err := jwkKey(j.Marshal())
	if err != nil {
		return nil, fail(ErrAlgorithm, "key %s from auth.jwks_url is not usable for signatures: %v", quote(kid), err)
	}
	k.remote = true
	return []verifyKey{k}, nil
}

// boundedClient fetches a JWK Set with a time bound, no redirects and a
// size cap on the response.
func boundedClient() *http.Client {
	return &http.Client{
		Timeout:   jwksFetchTimeout,
		Transport: capTransport{base: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the JWKS URL redirected; configure the final URL in auth.jwks_url")
		},
	}
}

// capTransport caps response bodies at maxKeySourceBytes.
type capTransport struct{ base http.RoundTripper }

func (t capTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &capBody{rc: resp.Body, left: maxKeySourceBytes}
	return resp, nil
}

// capBody fails a read past its limit instead of truncating silently.
type capBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *capBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("JWKS response larger than %d bytes", maxKeySourceBytes)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *capBody) Close() error { return b.rc.Close() }

// isLoopbackHost reports whether host is "localhost" or a loopback address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
