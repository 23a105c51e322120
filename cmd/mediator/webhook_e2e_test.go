package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A held call reaches a Slack-style incoming webhook as a chat message
// with a Review button linking to its page; the webhook's URL, a secret
// given in url_env, never reaches the mediator's log, not even when a
// delivery fails.
func TestE2EWebhookSlackFormat(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		got <- body
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer hook.Close()
	for name, path := range map[string]string{"delivered": "/services/T0/B0/sekret-token", "failing": "/services/T0/B0/sekret-token/fail"} {
		t.Run(name, func(t *testing.T) {
			cfg := strings.Replace(approvalConfigHold(t, "1s"), "approvals: {hold: 1s}",
				"approvals: {hold: 1s, webhook: {url_env: SLACK_WEBHOOK_URL, format: slack, attempts: 2}}", 1)
			p := startServe(t, cfg, "SLACK_WEBHOOK_URL="+hook.URL+path)
			id, page := pendingMeta(t, callTool(t, httpClient(t, p.URL), "fake__echo", map[string]any{"text": "hello"}))
			var body []byte
			select {
			case body = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("no webhook delivery for the held call")
			}
			var msg struct {
				Text   string `json:"text"`
				Blocks []struct {
					Type     string `json:"type"`
					Elements []struct {
						URL string `json:"url"`
					} `json:"elements"`
				} `json:"blocks"`
			}
			if err := json.Unmarshal(body, &msg); err != nil {
				t.Fatalf("webhook body: %v\n%s", err, body)
			}
			if !strings.Contains(msg.Text, "finance-bot wants to call fake__echo ("+id+")") || len(msg.Blocks) != 2 ||
				len(msg.Blocks[1].Elements) != 1 || msg.Blocks[1].Elements[0].URL != page {
				t.Fatalf("webhook body lacks the call or the page link %s:\n%s", page, body)
			}
			if strings.HasSuffix(path, "/fail") {
				<-got // the retry
				waitFor(t, 10*time.Second, func() bool { return strings.Contains(p.stderr.String(), "webhook: giving up") },
					"the failed delivery logged")
			}
			if strings.Contains(p.stderr.String(), "sekret-token") {
				t.Fatalf("the webhook URL reached the log:\n%s", p.stderr.String())
			}
		})
	}
}
