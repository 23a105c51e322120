package main

import (
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// logListener is an agent session (protocol 2025-11-25, with its GET
// stream) that keeps the log messages it receives.
type logListener struct {
	c    *client.Client
	mu   sync.Mutex
	logs []map[string]any
}

func newLogListener(t *testing.T, url string) *logListener {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithContinuousListening()) //lint:ignore SA1019 the legacy GET stream is what 2025-11-25 clients use
	if err != nil {
		t.Fatal(err)
	}
	l := &logListener{c: client.NewClient(tr)}
	l.c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/message" {
			p := map[string]any{}
			for k, v := range n.Params.AdditionalFields {
				p[k] = v
			}
			if n.Params.Meta != nil {
				p["_meta"] = n.Params.Meta
			}
			l.mu.Lock()
			l.logs = append(l.logs, p)
			l.mu.Unlock()
		}
	})
	initClient(t, l.c)
	return l
}

func (l *logListener) setLevel(t *testing.T, level mcp.LoggingLevel) {
	t.Helper()
	req := mcp.SetLevelRequest{}
	req.Params.Level = level
	//lint:ignore SA1019 logging/setLevel is how 2025-11-25 clients choose a level
	if err := l.c.SetLevel(t.Context(), req); err != nil {
		t.Fatal(err)
	}
}

// got returns the log messages received from logger.
func (l *logListener) got(logger string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, p := range l.logs {
		if p["logger"] == logger {
			out = append(out, p)
		}
	}
	return out
}

// Issue 18, item 5: an agent's logging/setLevel decides what it receives
// and is forwarded upstream (a shared upstream session is asked for the
// most verbose level its agents want, and back when they leave); a log
// message between calls reaches the agents that asked for logs, at their
// levels; the logger name stays the upstream's, with the server in _meta.
func TestE2ELogLevels(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, ""))
	a, b, c := newLogListener(t, p.URL), newLogListener(t, p.URL), newLogListener(t, p.URL)
	level := func() string { return resultText(callTool(t, c.c, "fake__log_level", nil)) }
	if got := level(); got != "info" {
		t.Fatalf("the shared upstream session was asked for %q before any agent set a level; want info", got)
	}
	a.setLevel(t, mcp.LoggingLevelDebug)
	if got := level(); got != "debug" {
		t.Errorf("after A asked for debug, the shared upstream session is at %q; want debug", got)
	}
	b.setLevel(t, mcp.LoggingLevelError)

	// During a call: each agent gets its call's messages at its level.
	callTool(t, a.c, "fake__progress", map[string]any{"steps": 2, "linger_ms": 200})
	callTool(t, b.c, "fake__progress", map[string]any{"steps": 2, "linger_ms": 200})
	waitFor(t, 10*time.Second, func() bool { return len(a.got("worker")) == 2 }, "A's two info messages")
	for _, m := range a.got("worker") {
		meta, _ := m["_meta"].(map[string]any)
		if meta[mediator.ServerMetaKey] != "fake" {
			t.Errorf("log message %v: want the server named in _meta", m)
		}
	}
	if n := len(b.got("worker")); n != 0 {
		t.Errorf("B asked for error and above, and got %d info messages", n)
	}

	// Between calls: the agents that asked for logs, at their levels.
	callTool(t, a.c, "fake__log_later", map[string]any{"level": "warning", "delay_ms": 300})
	waitFor(t, 10*time.Second, func() bool { return len(a.got("later")) == 1 }, "A gets the warning sent between calls")
	callTool(t, a.c, "fake__log_later", map[string]any{"level": "critical", "delay_ms": 300})
	waitFor(t, 10*time.Second, func() bool { return len(b.got("later")) == 1 }, "B gets the critical message sent between calls")
	time.Sleep(300 * time.Millisecond)
	if n := len(b.got("later")); n != 1 {
		t.Errorf("B (error and above) got %d messages between calls; want only the critical one", n)
	}
	if n := len(c.got("later")); n != 0 {
		t.Errorf("C never asked for logs and got %d between calls", n)
	}

	// A leaves: the shared session is asked for less again.
	if err := a.c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return level() == "info" }, "the shared upstream session back at info once A left")
}
