package tools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/mcp-mediator/mediator/mediator"
)

// remoteTransport creates the streamable HTTP or SSE transport of a remote
// upstream. It sends the configured headers and nothing else: no agent
// credential ever reaches an upstream.
func (u *upstream) remoteTransport(c *conn) (transport.Interface, error) {
	hc, ht := boundedHTTPClient(u.r.maxMessage)
	c.http, c.hc = ht, hc
	headers := maps.Clone(u.cfg.Headers)
	if headers == nil {
		headers = map[string]string{}
	}
	if u.cfg.URL != redactURL(u.cfg.URL) {
		u.log.Warn("the upstream url holds credentials; prefer headers with ${VAR} expansion")
	}
	switch u.transport {
	case TransportSSE:
		t, err := transport.NewSSE(u.cfg.URL,
			transport.WithHeaders(headers),
			transport.WithHeaderFunc(traceHeaders),
			transport.WithHTTPClient(hc),
			transport.WithSSELogger(u.log),
			transport.WithEndpointTimeout(u.timeout),
			// Calls are bounded by their own context; this only has to be
			// longer than any of them.
			transport.WithResponseTimeout(u.timeout+time.Minute),
		)
		if err != nil {
			return nil, fmt.Errorf("sse transport: %w", err)
		}
		return t, nil
	default:
		t, err := transport.NewStreamableHTTP(u.cfg.URL,
			transport.WithHTTPHeaders(headers),
			transport.WithHTTPHeaderFunc(traceHeaders),
			transport.WithHTTPBasicClient(hc),
			transport.WithHTTPLogger(u.log),
			// The standalone GET stream carries list_changed notifications
			// on the 2025-11-25 protocol revision the registry speaks.
			//lint:ignore SA1019 deprecated only for 2026-07-28, which the registry does not speak
			transport.WithContinuousListening(),
		)
		if err != nil {
			return nil, fmt.Errorf("http transport: %w", err)
		}
		return t, nil
	}
}

// traceHeaders are the W3C trace context headers of an upstream request:
// the mediator's forward span, when tracing is on, so that the upstream's
// spans join the agent's trace.
func traceHeaders(ctx context.Context) map[string]string {
	tc := mediator.OutgoingTrace(ctx)
	if tc.Parent == "" {
		return nil
	}
	h := map[string]string{"traceparent": tc.Parent}
	if tc.State != "" {
		h["tracestate"] = tc.State
	}
	return h
}

// boundedHTTPClient returns a client for one remote connection. It bounds
// each JSON response body and each server-sent event to max bytes, uses no
// proxy from the process environment (the registry does not read it), and
// follows redirects only within the same origin, so configured credentials
// are never sent elsewhere.
func boundedHTTPClient(max int) (*http.Client, *http.Transport) {
	base := &http.Transport{
		DialContext:       (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2: true,
		// Every agent's call to this upstream shares this pool: without
		// enough idle connections, concurrent calls would each dial a new
		// one (the default keeps 2 per host).
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: &limitingTransport{base: base, max: max},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if o := via[0].URL; req.URL.Scheme != o.Scheme || req.URL.Host != o.Host {
				return fmt.Errorf("refusing redirect from %s to another origin %s", o.Host, req.URL.Host)
			}
			return nil
		},
	}, base
}

// limitingTransport bounds response bodies.
type limitingTransport struct {
	base http.RoundTripper
	max  int
}

func (t *limitingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var r io.Reader
	if ct == "text/event-stream" {
		l := newLineLimitReader(resp.Body, t.max, nil)
		l.failWith = fmt.Errorf("upstream sent an event line longer than %d bytes", t.max)
		r = l
	} else {
		r = &capReader{r: resp.Body, left: int64(t.max)}
	}
	resp.Body = readCloser{Reader: r, Closer: resp.Body}
	return resp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// capReader fails a body that is longer than its limit.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("upstream response is larger than the limit")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
