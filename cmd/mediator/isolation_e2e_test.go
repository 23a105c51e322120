package main

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// childPid asks the fake upstream serving c's session which process it is.
func childPid(t *testing.T, c *client.Client) int {
	t.Helper()
	res := callTool(t, c, "fake__pid", nil)
	pid, err := strconv.Atoi(resultText(res))
	if res.IsError || err != nil {
		t.Fatalf("fake__pid: %q", resultText(res))
	}
	return pid
}

// legacyClient is an agent session of protocol 2025-11-25, which has
// sessions (Mcp-Session-Id) that end with a DELETE.
func legacyClient(t *testing.T, url string) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url)
	if err != nil {
		t.Fatal(err)
	}
	return initClient(t, client.NewClient(tr, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION)))
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// expectText calls tool with args and wants exactly text back.
func expectText(t *testing.T, c *client.Client, tool string, args map[string]any, text string) {
	t.Helper()
	if res := callTool(t, c, tool, args); res.IsError || resultText(res) != text {
		t.Fatalf("%s: %q (error %v), want %q", tool, resultText(res), res.IsError, text)
	}
}

// Issue 18, item 1: with isolation: session, each agent session gets an
// upstream session of its own (here a stdio child), so what one agent
// leaves in a stateful server is not there for another. The sessions are
// bounded: a cap per upstream (and per agent), an idle timeout, and the
// child is stopped when its agent session ends. Shared (the default), the
// same two agents see each other's state: that is what isolation is for.
func TestE2EIsolationSession(t *testing.T) {
	t.Parallel()
	t.Run("shared", func(t *testing.T) {
		t.Parallel()
		p := startServe(t, fakeConfig(t, ""))
		a, b := legacyClient(t, p.URL), legacyClient(t, p.URL)
		expectText(t, a, "fake__remember", map[string]any{"key": "k", "value": "alpha-secret"}, "remembered")
		if out := resultText(callTool(t, b, "fake__recall", map[string]any{"key": "k"})); out != "recalled alpha-secret" {
			t.Fatalf("shared upstream: B recalls %q; the shared child should hold A's value", out)
		}
		if childPid(t, a) != childPid(t, b) {
			t.Fatal("shared upstream: A and B are served by different children")
		}
	})
	t.Run("session", func(t *testing.T) {
		t.Parallel()
		p := startServe(t, fakeConfig(t, "    isolation: session\n    sessions: {max: 2, per_agent: 2, idle: 3s}\n"))
		a, b := legacyClient(t, p.URL), legacyClient(t, p.URL)
		expectText(t, a, "fake__remember", map[string]any{"key": "k", "value": "alpha-secret"}, "remembered")
		if out := resultText(callTool(t, b, "fake__recall", map[string]any{"key": "k"})); out != "nothing remembered" {
			t.Fatalf("isolated upstream: B recalls %q; want nothing (A's value is in A's own child)", out)
		}
		expectText(t, a, "fake__recall", map[string]any{"key": "k"}, "recalled alpha-secret")
		pidA, pidB := childPid(t, a), childPid(t, b)
		if pidA == pidB {
			t.Fatal("isolated upstream: A and B share a child")
		}

		// A stateless request (protocol 2026-07-28) without a token belongs
		// to no agent session: refused, saying what would do.
		if res := callTool(t, httpClient(t, p.URL), "fake__pid", nil); !res.IsError || !strings.Contains(resultText(res), "mediator token mint") {
			t.Fatalf("a stateless anonymous call to an isolated upstream: %q; want a refusal saying how to get a session", resultText(res))
		}
		// A third session is over sessions.max: refused, saying which limit.
		c := legacyClient(t, p.URL)
		if res := callTool(t, c, "fake__pid", nil); !res.IsError || !strings.Contains(resultText(res), "sessions.max") {
			t.Fatalf("a third agent session over sessions.max 2: %q; want a refusal naming sessions.max", resultText(res))
		}
		// A's session ends: its child is stopped, and C fits.
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, func() bool { return !alive(pidA) }, "A's child stopped after its session ended")
		pidC := childPid(t, c)
		if pidC == pidA || pidC == pidB {
			t.Fatalf("C got another session's child (%d; A %d, B %d)", pidC, pidA, pidB)
		}
		// B stays idle past sessions.idle: its child is stopped, and its next
		// call starts a fresh one, without the old state.
		expectText(t, b, "fake__remember", map[string]any{"key": "k", "value": "beta"}, "remembered")
		waitFor(t, 10*time.Second, func() bool { return !alive(pidB) }, "B's idle child stopped")
		if out := resultText(callTool(t, b, "fake__recall", map[string]any{"key": "k"})); out != "nothing remembered" {
			t.Fatalf("after B's idle child was stopped, B recalls %q; want a fresh child", out)
		}
		if childPid(t, b) == pidB {
			t.Fatal("B is still on its idle child")
		}
	})
}

// With isolation: session, each agent session's subscriptions live in its
// own upstream session: an update one agent's upstream session sends
// reaches only that agent, although the other subscribes to the same URI,
// and one agent's unsubscribe is forwarded to its own upstream session
// although the other still listens.
func TestE2EIsolatedSubscriptions(t *testing.T) {
	t.Parallel()
	p := startServe(t, policyFragment(t, "p, *, tool, fake__*, allow, fake-all\np, *, resource, fake://readme, allow, readme\n")+`
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: fake
    isolation: session
    command: `+buildTool(t, "tools/testdata/fakeupstream")+"\n")
	const uri = "fake://readme"
	a, b := newSubscriber(t, p.URL), newSubscriber(t, p.URL)
	a.subscription(t, false, uri)
	b.subscription(t, false, uri)
	touch := func(s *subscriber, want string) {
		t.Helper()
		if out := resultText(callTool(t, s.c, "fake__touch", nil)); !strings.Contains(out, want) {
			t.Fatalf("touch: %q, want %q", out, want)
		}
	}
	touch(a, "1 subscribed sessions notified")
	if !a.got(uri, 10*time.Second) {
		t.Fatal("A got no update from its own upstream session")
	}
	if b.got(uri, 300*time.Millisecond) {
		t.Fatal("B got the update A's own upstream session sent")
	}
	a.subscription(t, true, uri) // forwarded to A's session, though B listens
	touch(a, "0 subscribed sessions notified")
	touch(b, "1 subscribed sessions notified")
	if !b.got(uri, 10*time.Second) {
		t.Fatal("B got no update from its own upstream session")
	}
	if a.got(uri, 300*time.Millisecond) {
		t.Fatal("A got B's update")
	}
}
