package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of fetch_url.
const (
	fetchTimeout      = 10 * time.Second
	maxFetchBody      = 256 << 10 // 256 KiB
	maxFetchRedirects = 5
	maxURLLen         = 2048
)

// errBadURL wraps every rejection of a fetch_url address.
var errBadURL = errors.New("invalid URL")

// fetchResult is what fetch_url reports.
type fetchResult struct {
	URL         string // final URL, after redirects
	Status      string // e.g. "200 OK"
	StatusCode  int
	ContentType string
	Body        string // text, or a note when the body is not UTF-8
	Bytes       int    // bytes of body read
	Truncated   bool   // the body was longer than maxFetchBody
}

// fetcher performs fetch_url's HTTP GETs.
type fetcher struct {
	client    *http.Client
	userAgent string
}

// newFetcher returns a fetcher with fetch_url's timeout and redirect policy.
func newFetcher(userAgent string) *fetcher {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	return &fetcher{
		userAgent: userAgent,
		client: &http.Client{
			Transport: transport,
			Timeout:   fetchTimeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= maxFetchRedirects {
					return fmt.Errorf("stopped after %d redirects", maxFetchRedirects)
				}
				if err := checkURL(req.URL); err != nil {
					return fmt.Errorf("redirect refused: %w", err)
				}
				// The mediator's egress rules saw only the first URL's
				// host: a redirect elsewhere would take the request past
				// them, so it is not followed.
				if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
					return fmt.Errorf("redirect refused: %s leads to another host (%s); fetch that URL directly so that policy can decide it",
						via[0].URL.Host, req.URL.Host)
				}
				return nil
			},
		},
	}
}

// parseFetchURL parses and checks raw.
func parseFetchURL(raw string) (*url.URL, error) {
	if len(raw) > maxURLLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", errBadURL, maxURLLen)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadURL, err)
	}
	if err := checkURL(u); err != nil {
		return nil, err
	}
	return u, nil
}

// checkURL allows absolute http and https URLs with a host and no embedded
// credentials.
func checkURL(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return fmt.Errorf("%w: missing scheme; only http and https URLs are allowed", errBadURL)
	default:
		return fmt.Errorf("%w: scheme %q is not allowed; only http and https URLs are allowed", errBadURL, u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: missing host", errBadURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: URLs with embedded credentials are not allowed", errBadURL)
	}
	return nil
}

// Fetch GETs raw and returns the status and up to maxFetchBody bytes of the
// body.
func (f *fetcher) Fetch(ctx context.Context, raw string) (*fetchResult, error) {
	u, err := parseFetchURL(raw)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadURL, err)
	}
	req.Header.Set("User-Agent", f.userAgent)
	req.Header.Set("Accept", "text/*, application/json, application/xml;q=0.9, */*;q=0.5")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBody+1))
	if err != nil {
		return nil, fmt.Errorf("read response from %s: %w", u.Redacted(), err)
	}
	res := &fetchResult{
		URL:         resp.Request.URL.Redacted(),
		Status:      resp.Status,
		StatusCode:  resp.StatusCode,
		ContentType: resp.Header.Get("Content-Type"),
	}
	if len(data) > maxFetchBody {
		data = data[:maxFetchBody]
		res.Truncated = true
		// Do not report a multi-byte character cut in half as binary.
		if !utf8.Valid(data) {
			for k := 1; k < utf8.UTFMax && k < len(data); k++ {
				if utf8.Valid(data[:len(data)-k]) {
					data = data[:len(data)-k]
					break
				}
			}
		}
	}
	res.Bytes = len(data)
	if utf8.Valid(data) {
		res.Body = string(data)
	} else {
		res.Body = fmt.Sprintf("[binary content, %d bytes, not shown]", len(data))
	}
	return res, nil
}

// text renders r for the agent.
func (r *fetchResult) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %s\nURL: %s\n", r.Status, r.URL)
	if r.ContentType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\n", r.ContentType)
	}
	b.WriteString("\n")
	b.WriteString(r.Body)
	if r.Truncated {
		fmt.Fprintf(&b, "\n\n[truncated: the response was longer than %d bytes]", maxFetchBody)
	}
	return b.String()
}
