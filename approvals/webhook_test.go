package approvals

import (
	"io"
	"net/http"
	"net/http/httptest"
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
