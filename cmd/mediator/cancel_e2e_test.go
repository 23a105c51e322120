package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 18, item 4: after an agent cancels a request, it gets no response
// for it (before: mcp-go answered with a "context canceled" error result),
// over stdio and HTTP; the upstream is told, and the session goes on.
func TestE2ENoAnswerAfterCancel(t *testing.T) {
	t.Parallel()
	// Each transport's upstream reports to files of its own.
	setup := func(t *testing.T) (dir, config string, started func() bool, cancelled func()) {
		dir = t.TempDir()
		cancelFile := filepath.Join(dir, "cancelled")
		config = fakeConfig(t, "    args: [--cancel-file, "+cancelFile+"]\n")
		started = func() bool { return fileHasText(cancelFile+".started", "started") }
		cancelled = func() {
			t.Helper()
			waitFor(t, 20*time.Second, func() bool { return fileHasText(cancelFile, "cancelled") }, "the upstream saw the cancellation")
			// The agent's reason reaches the upstream, for the
			// mediator's own id of the request.
			b, err := os.ReadFile(cancelFile + ".notification")
			if err != nil {
				t.Fatalf("the upstream's record of the notification: %v", err)
			}
			if !strings.Contains(string(b), `"reason":"the user pressed stop"`) || !strings.Contains(string(b), `"requestId":"mediator-`) {
				t.Errorf("the upstream got %s; want the agent's reason for the mediator's request id", b)
			}
		}
		return dir, config, started, cancelled
	}

	t.Run("stdio", func(t *testing.T) {
		dir, config, started, waitCancelled := setup(t)
		cfg := filepath.Join(dir, "mediator.yaml")
		if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startStdioPeer(t, dir, binary(t), "stdio", "--config", cfg, "--db", filepath.Join(dir, "stdio.db"))
		if _, err := fmt.Fprint(p.in, `{"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"fake__sleep","arguments":{"seconds":30}}}`+"\n"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, started, "the upstream started the call")
		if _, err := fmt.Fprint(p.in, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"the user pressed stop"}}`+"\n"); err != nil {
			t.Fatal(err)
		}
		waitCancelled()
		// Lines come in order: an answer to "slow" would be read (and
		// skipped) before the ping's.
		time.Sleep(500 * time.Millisecond)
		if got := p.call("ping", `{}`); got.Error != nil {
			t.Fatalf("ping after the cancel: %+v", got.Error)
		}
		if strings.Contains(p.skipped, `"id":"slow"`) {
			t.Errorf("the cancelled request was answered: %s", p.skipped)
		}
	})

	t.Run("http", func(t *testing.T) {
		_, config, started, waitCancelled := setup(t)
		p := startServe(t, config)
		sid, _ := rawSession(t, p.URL, `{}`)
		type answer struct {
			status int
			body   string
		}
		done := make(chan answer, 1)
		go func() {
			status, _, body := rawRequest(t, "POST", p.URL, "", sid,
				`{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"fake__sleep","arguments":{"seconds":30}}}`,
				map[string]string{"Mcp-Protocol-Version": "2025-11-25"})
			done <- answer{status, body}
		}()
		waitFor(t, 20*time.Second, started, "the upstream started the call")
		if status, _, body := rawRequest(t, "POST", p.URL, "", sid,
			`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":41,"reason":"the user pressed stop"}}`,
			map[string]string{"Mcp-Protocol-Version": "2025-11-25"}); status != 202 {
			t.Fatalf("posting the cancellation: HTTP %d %q", status, body)
		}
		waitCancelled()
		select {
		case a := <-done:
			if strings.Contains(a.body, `"id":41`) {
				t.Errorf("the cancelled request was answered: HTTP %d %q", a.status, a.body)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the cancelled request's HTTP exchange did not end")
		}
		if r, _ := httpCall(t, p.URL, sid, 42, "tools/call", `{"name":"fake__echo","arguments":{"text":"still here"}}`); r.Error != nil || !strings.Contains(string(r.Result), "still here") {
			t.Errorf("a call after the cancel: %+v %s", r.Error, r.Result)
		}
	})
}

func fileHasText(path, text string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), text)
}
