package approvals

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestWebhook(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		handler   func(hits int32, w http.ResponseWriter)
		wantHits  int32
		wantValid bool
	}{
		{"delivered once on 200", func(int32, http.ResponseWriter) {}, 1, true},
		{"500 is retried a bounded number of times", func(_ int32, w http.ResponseWriter) { w.WriteHeader(500) }, 3, true},
		{"recovers after a failure", func(n int32, w http.ResponseWriter) {
			if n == 1 {
				w.WriteHeader(503)
			}
		}, 2, true},
		{"a hanging endpoint times out and is retried", func(int32, http.ResponseWriter) { time.Sleep(300 * time.Millisecond) }, 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			var valid atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				valid.Store(r.Header.Get(SignatureHeader) == Sign([]byte("s3cret"), r.Header.Get(TimestampHeader), body))
				tc.handler(hits.Add(1), w)
			}))
			defer srv.Close()
			w := NewWebhook(srv.URL, "s3cret", WithWebhookRetries(3, 10*time.Millisecond), WithWebhookTimeout(100*time.Millisecond))
			go w.Run(t.Context())
			start := time.Now()
			w.Notify(mediator.Approval{ID: "apr_1", Tool: "demo__transfer_funds"}, "http://x/approvals/a/apr_1")
			if time.Since(start) > 50*time.Millisecond {
				t.Fatal("Notify blocked")
			}
			deadline := time.Now().Add(3 * time.Second)
			for hits.Load() < tc.wantHits && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond) // no extra attempts
			if hits.Load() != tc.wantHits || valid.Load() != tc.wantValid {
				t.Fatalf("hits %d valid %v, want %d %v", hits.Load(), valid.Load(), tc.wantHits, tc.wantValid)
			}
		})
	}
}

func TestWebhookNeverBlocksWhenFull(t *testing.T) {
	t.Parallel()
	w := NewWebhook("http://127.0.0.1:1/", "s") // never run: the queue fills
	start := time.Now()
	for range 1000 {
		w.Notify(mediator.Approval{ID: "apr"}, "u")
	}
	if time.Since(start) > time.Second {
		t.Fatal("Notify blocked on a full queue")
	}
}

// The chat formats carry the facts and a link to the page, escape what
// an agent or upstream controls, and are still signed.
func TestWebhookChatFormats(t *testing.T) {
	t.Parallel()
	a := mediator.Approval{ID: "apr_9", AgentID: "bot <!channel> & co", Tool: "demo__transfer_funds", Server: "demo",
		Risk: mediator.RiskHigh, DataClass: mediator.DataFinancial, Rule: "funds-above-limit",
		Reason: "amount *5000* over [limit](http://evil.example)\u202e\n" + strings.Repeat("x", 500), Required: 2,
		Expires: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	page := "https://mediator.example.com/approvals/a/apr_9"
	cases := []struct {
		format WebhookFormat
		want   []string
		never  []string
	}{
		{FormatSlack, []string{`"text":"Approval needed: bot \u0026lt;!channel\u0026gt; \u0026amp; co wants to call demo__transfer_funds (apr_9)"`,
			"`demo__transfer_funds`", `"url":"` + page + `"`, "*Approvers*: `two must approve`", "*Rule*: `funds-above-limit`"},
			[]string{"<!channel>", "\u202e", strings.Repeat("x", 300)}},
		{FormatTeams, []string{`"contentType":"application/vnd.microsoft.card.adaptive"`, `"type":"Action.OpenUrl"`, `"url":"` + page + `"`,
			`"title":"Rule","value":"funds\\-above\\-limit"`, `amount \\*5000\\* over \\[limit\\]\\(http://evil\\.example\\)`},
			[]string{"\u202e", "*5000*", strings.Repeat("x", 300)}},
	}
	for _, tc := range cases {
		t.Run(string(tc.format), func(t *testing.T) {
			t.Parallel()
			got := make(chan []byte, 1)
			var valid atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				valid.Store(r.Header.Get(SignatureHeader) == Sign([]byte("k"), r.Header.Get(TimestampHeader), body))
				got <- body
			}))
			defer srv.Close()
			w := NewWebhook(srv.URL, "k", WithWebhookFormat(tc.format))
			go w.Run(t.Context())
			w.Notify(a, page)
			var body []byte
			select {
			case body = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("no delivery")
			}
			if !json.Valid(body) || !valid.Load() {
				t.Fatalf("body valid JSON %v, signed %v: %s", json.Valid(body), valid.Load(), body)
			}
			for _, s := range tc.want {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %s:\n%s", s, body)
				}
			}
			for _, s := range tc.never {
				if strings.Contains(string(body), s) {
					t.Errorf("body holds %q:\n%s", s, body)
				}
			}
		})
	}
}
