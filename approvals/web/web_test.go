package web

import (
	"crypto/tls"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// A form's Origin must match scheme and host: the page's public URL when
// configured, else the request's (issue 14, finding 11: the scheme used
// to be ignored, so http://host passed for an https page).
func TestOrigin(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, public string
		secure, tls  bool
		origin       string
		want         bool
	}{
		{"same origin", "", false, false, "http://127.0.0.1:8080", true},
		{"another site", "", false, false, "http://evil.example", false},
		{"plain http for a TLS page", "", false, true, "http://127.0.0.1:8080", false},
		{"https over TLS", "", false, true, "https://127.0.0.1:8080", true},
		{"TLS ended at a proxy (SecureCookies)", "", true, false, "https://127.0.0.1:8080", true},
		{"http behind a TLS proxy", "", true, false, "http://127.0.0.1:8080", false},
		{"public URL decides", "https://approve.example.com/approvals", false, false, "https://approve.example.com", true},
		{"public URL: wrong scheme", "https://approve.example.com/approvals", false, false, "http://approve.example.com", false},
		{"public URL: the internal host is not it", "https://approve.example.com/approvals", false, false, "http://127.0.0.1:8080", false},
		{"not http(s)", "", false, false, "javascript://127.0.0.1:8080", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{cfg: Config{PublicURL: tc.public, SecureCookies: tc.secure}}
			r := httptest.NewRequest("POST", "http://127.0.0.1:8080/approvals/a/x/decide", nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := strings.EqualFold(tc.origin, h.origin(r)); got != tc.want {
				t.Errorf("Origin %q against %q: %v, want %v", tc.origin, h.origin(r), got, tc.want)
			}
		})
	}
}

func TestFromProxy(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("127.0.0.1/32")}
	cases := []struct {
		remote string
		want   bool
	}{
		{"10.0.0.7:5555", true},
		{"127.0.0.1:1", true},
		{"[::ffff:10.0.0.9]:80", true},
		{"10.0.1.7:5555", false},
		{"garbage", false},
	}
	for _, tc := range cases {
		if got := fromProxy(tc.remote, proxies); got != tc.want {
			t.Errorf("fromProxy(%q) = %v, want %v", tc.remote, got, tc.want)
		}
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiter(2, time.Hour)
	for range 2 {
		if !l.allow("k") {
			t.Fatal("refused before the limit")
		}
		l.fail("k")
	}
	if l.allow("k") {
		t.Fatal("allowed after the limit")
	}
	if !l.allow("other") {
		t.Fatal("one key's failures limited another")
	}
	l.reset("k")
	if !l.allow("k") {
		t.Fatal("still limited after a reset")
	}
}

func TestGrantFrom(t *testing.T) {
	t.Parallel()
	cases := []struct {
		form    url.Values
		approve bool
		wantNil bool
		wantErr bool
	}{
		{url.Values{}, true, true, false},
		{url.Values{"grant_minutes": {"5"}, "grant_pattern": {".*"}}, false, true, false},
		{url.Values{"grant_minutes": {"5"}, "grant_pattern": {".*"}}, true, false, false},
		{url.Values{"grant_minutes": {"x"}, "grant_pattern": {".*"}}, true, true, true},
		{url.Values{"grant_minutes": {"5"}}, true, true, true},
	}
	for i, tc := range cases {
		g, err := grantFrom(tc.form, tc.approve)
		if (g == nil) != tc.wantNil || (err != nil) != tc.wantErr {
			t.Errorf("case %d: grant %+v err %v", i, g, err)
		}
	}
}

func TestTemplatesParse(t *testing.T) {
	t.Parallel()
	if _, err := parseTemplates(); err != nil {
		t.Fatal(err)
	}
}

// The page offers no decision to an approver whom the decision would
// refuse: the agent's owner under another spelling (issue 14, finding 10).
func TestWhyNotUsesSameIdentity(t *testing.T) {
	pending := mediator.Approval{State: mediator.ApprovalPending, AgentID: "bot", AgentOwner: "alice",
		Decisions: []mediator.ApprovalDecision{{Approver: "bob"}}}
	for _, tc := range []struct {
		name string
		want bool // a reason not to decide
	}{
		{"alice", true}, {"Alice ", true}, {"alice\u200b", true}, {"\u0430lice", true},
		{"bob", true}, {"BOB", true}, {"carol", false},
	} {
		if got := whyNot(&user{Name: tc.name, Role: mediator.RoleApprover}, pending) != ""; got != tc.want {
			t.Errorf("whyNot(%q) refuses %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The address limit is a token bucket: 50 failures at once, then one more
// per interval; an address waits at most one interval, never a lock.
func TestAddressBucket(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := newBucket(50, 6*time.Second)
	b.now = func() time.Time { return now }
	for i := range 50 {
		if w := b.wait("10.0.0.1"); w != 0 {
			t.Fatalf("failure %d: wait %s before the burst is spent", i, w)
		}
		b.fail("10.0.0.1")
	}
	if w := b.wait("10.0.0.1"); w <= 0 || w > 6*time.Second {
		t.Fatalf("after 50 failures: wait %s, want (0, 6s]", w)
	}
	if w := b.wait("10.0.0.2"); w != 0 {
		t.Fatalf("another address waits %s", w)
	}
	now = now.Add(6 * time.Second)
	if w := b.wait("10.0.0.1"); w != 0 {
		t.Fatalf("after one interval: wait %s", w)
	}
	b.fail("10.0.0.1")
	if w := b.wait("10.0.0.1"); w <= 0 {
		t.Fatal("a failure right after the refill is not slowed")
	}
	now = now.Add(10 * time.Minute)
	if w := b.wait("10.0.0.1"); w != 0 || len(b.m) != 0 {
		t.Fatalf("after 10 minutes: wait %s, %d entries kept", w, len(b.m))
	}
}

// A template error answers 500 with nothing of the page, not a page cut
// off mid-form under 200.
func TestRenderTemplateError(t *testing.T) {
	t.Parallel()
	tmpl, err := parseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{tmpl: tmpl, log: slog.New(slog.DiscardHandler)}
	w := httptest.NewRecorder()
	h.render(w, 200, "detail.html", pageData{Title: "x", Body: "not a detail body"})
	if w.Code != 500 || strings.Contains(w.Body.String(), "<form") || !strings.Contains(w.Body.String(), "template error") {
		t.Fatalf("render of a broken page: %d\n%s", w.Code, w.Body.String())
	}
}
