package main

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// policyFragment writes the example model and the given rules to a temp dir
// and returns a config fragment pointing at them.
func policyFragment(t testing.TB, rules string) string {
	t.Helper()
	frag, _ := policyFiles(t, rules)
	return frag
}

// policyFiles is policyFragment, and the policy file's path, for a test
// that rewrites it.
func policyFiles(t testing.TB, rules string) (fragment, policyPath string) {
	t.Helper()
	dir := t.TempDir()
	model, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "policy", "model.conf"))
	if err != nil {
		t.Fatal(err)
	}
	mp, pp := filepath.Join(dir, "model.conf"), filepath.Join(dir, "policy.csv")
	if err := os.WriteFile(mp, model, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pp, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	return "policy: {model: " + yq(mp) + ", file: " + yq(pp) + "}\n", pp
}

// fakeConfig runs tools/testdata/fakeupstream as the stdio upstream "fake"
// under a policy that allows all its tools.
func fakeConfig(t testing.TB, extra string) string {
	return policyFragment(t, "p, *, tool, fake__*, allow, fake-all\n") + `
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + `
    env: {FAKE_CONFIGURED: "yes"}
` + extra
}

// A hanging upstream times out with a clear error; the mediator stays
// responsive meanwhile.
func TestE2EUpstreamTimeout(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, "    timeout: 1s\n"))
	c := httpClient(t, p.URL)
	var wg sync.WaitGroup
	wg.Add(1)
	var slow *mcp.CallToolResult
	go func() {
		defer wg.Done()
		slow = callTool(t, c, "fake__sleep", map[string]any{"seconds": 30})
	}()
	time.Sleep(200 * time.Millisecond)
	c2 := httpClient(t, p.URL)
	if res := callTool(t, c2, "fake__echo", map[string]any{"text": "still here"}); res.IsError {
		t.Fatalf("mediator not responsive while an upstream call hangs: %s", resultText(res))
	}
	wg.Wait()
	if !slow.IsError || !strings.Contains(resultText(slow), "timeout") {
		t.Fatalf("hanging call: %+v (%s), want a timeout error", slow, resultText(slow))
	}
}

// The mediator's own environment (its secrets) never reaches a child.
func TestE2EEnvironmentNotLeaked(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, ""), "MEDIATOR_TEST_SECRET=hunter2-do-not-leak")
	c := httpClient(t, p.URL)
	out := resultText(callTool(t, c, "fake__env", nil))
	if strings.Contains(out, "hunter2") || strings.Contains(out, "MEDIATOR_TEST_SECRET") {
		t.Fatalf("secret leaked into the upstream's environment: %s", out)
	}
	if !strings.Contains(out, "FAKE_CONFIGURED=yes") || !strings.Contains(out, "PATH=") {
		t.Fatalf("configured env or PATH missing from the child: %s", out)
	}
}

// A child that dies mid-call fails that call clearly; it is restarted and
// the next call works.
func TestE2EUpstreamCrashAndRestart(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, ""))
	c := httpClient(t, p.URL)
	res := callTool(t, c, "fake__crash", nil)
	if !res.IsError || !strings.Contains(resultText(res), "unavailable") {
		t.Fatalf("call in flight when the child died: %s", resultText(res))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res = callTool(t, c, "fake__echo", map[string]any{"text": "back"})
		if !res.IsError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream not restarted: %s", resultText(res))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Progress notifications reach the calling agent with its own token, and a
// cancellation reaches the upstream.
func TestE2EProgressAndCancellation(t *testing.T) {
	t.Parallel()
	cancelFile := filepath.Join(t.TempDir(), "cancelled")
	cfg := policyFragment(t, "p, *, tool, fake__*, allow, fake-all\n") + `
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + `
    args: [--cancel-file, ` + cancelFile + `]
`
	p := startServe(t, cfg)
	c := httpClient(t, p.URL)
	var mu sync.Mutex
	var got []mcp.JSONRPCNotification
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, n)
	})
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "fake__progress", map[string]any{"steps": 3}
	req.Params.Meta = &mcp.Meta{ProgressToken: "agent-token-7"}
	if res, err := c.CallTool(t.Context(), req); err != nil || res.IsError {
		t.Fatalf("progress call: %v %+v", err, res)
	}
	mu.Lock()
	n := 0
	for _, x := range got {
		if x.Method == "notifications/progress" && x.Params.AdditionalFields["progressToken"] == "agent-token-7" {
			n++
		}
	}
	mu.Unlock()
	if n == 0 {
		t.Fatalf("no progress notification with the agent's token reached the agent: %+v", got)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	sreq := mcp.CallToolRequest{}
	sreq.Params.Name, sreq.Params.Arguments = "fake__sleep", map[string]any{"seconds": 30}
	_, _ = c.CallTool(ctx, sreq)
	waitFor(t, 20*time.Second, func() bool {
		b, _ := os.ReadFile(cancelFile)
		return strings.Contains(string(b), "cancelled")
	}, "the upstream never saw the agent's cancellation")
}

// An upstream's tools/list_changed refreshes the catalog and reaches agents
// (pinning warn: a new tool is served; strict withholds it, see
// TestE2ERugPullIsQuarantined).
func TestE2EListChanged(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, "    pinning: warn\n"))
	c, changed := listChangedClient(t, p.URL)
	if res := callTool(t, c, "fake__add_tool", map[string]any{"name": "late_tool"}); res.IsError {
		t.Fatalf("add_tool: %s", resultText(res))
	}
	waitFor(t, 20*time.Second, func() bool { return contains(toolNames(t, c), "fake__late_tool") },
		"the new upstream tool never appeared in tools/list")
	waitFor(t, 10*time.Second, func() bool { return changed()["notifications/tools/list_changed"] > 0 },
		"no notifications/tools/list_changed reached the agent")
	// Issue 18, item 6: one change, one notification, of its own kind.
	time.Sleep(time.Second)
	if got := changed(); len(got) != 1 || got["notifications/tools/list_changed"] != 1 {
		t.Errorf("one new tool sent the agent %v; want one notifications/tools/list_changed", got)
	}
}

// listChangedClient is an initialised client of the serve at url with a
// GET stream open (on which the server pushes notifications outside any
// call); changed counts the list_changed notifications it got, by method.
func listChangedClient(t *testing.T, url string) (c *client.Client, changed func() map[string]int) {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithContinuousListening()) //lint:ignore SA1019 the legacy GET stream is what 2025-11-25 clients use
	if err != nil {
		t.Fatal(err)
	}
	c = client.NewClient(tr)
	var mu sync.Mutex
	counts := map[string]int{}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if strings.HasSuffix(n.Method, "/list_changed") {
			mu.Lock()
			counts[n.Method]++
			mu.Unlock()
		}
	})
	initClient(t, c)
	return c, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(counts)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startRemoteUpstream runs the fake upstream as a streamable HTTP ("http")
// or SSE ("sse") server and returns its URL.
func startRemoteUpstream(t testing.TB, mode string) string {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(buildTool(t, "tools/testdata/fakeupstream"), "--mode", mode, "--addr-file", addrFile, "--name", "web")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if data, _ := os.ReadFile(addrFile); len(strings.TrimSpace(string(data))) > 0 {
			return strings.TrimSpace(string(data))
		}
	}
	t.Fatalf("the %s fake upstream did not report its URL", mode)
	return ""
}

// An agent on the 2026-07-28 revision calls tools and prompts of remote
// upstreams the mediator speaks 2025-11-25 with. The protocol
// keys of the agent's _meta (io.modelcontextprotocol/protocolVersion, ...)
// describe the agent's hop and are not forwarded: forwarding them made a
// streamable HTTP upstream refuse every call (-32020, its header and the
// request's version differ).
func TestE2ERemoteUpstreamOnAnotherRevision(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"http", "sse"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cfg := policyFragment(t, "p, *, *, web__*, allow, web-all\n") + `
agent: {id: remote-agent}
auth: {anonymous: {id: remote-agent}}
upstreams:
  - name: web
    transport: ` + mode + `
    url: ` + startRemoteUpstream(t, mode) + `
`
			c := httpClient(t, startServe(t, cfg).URL)
			if res := callTool(t, c, "web__echo", map[string]any{"text": "across revisions"}); res.IsError || !strings.Contains(resultText(res), "across revisions") {
				t.Fatalf("web__echo: %s", resultText(res))
			}
			req := mcp.GetPromptRequest{}
			req.Params.Name, req.Params.Arguments = "web__greet", map[string]string{"who": "ada"}
			if pr, err := c.GetPrompt(t.Context(), req); err != nil || len(pr.Messages) == 0 {
				t.Fatalf("web__greet: %v %v", pr, err)
			}
		})
	}
}
