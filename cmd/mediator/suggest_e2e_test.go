package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A developer registers a tool server and is told what policy would let
// agents use it: upstream add prints the tools' hints and drafted lines;
// policy suggest drafts them from the running mediator's live catalog with
// cases; once appended and reloaded, the read-only tool runs and the one
// without hints waits for a human.
func TestE2EUpstreamAddSuggestsPolicy(t *testing.T) {
	t.Parallel()
	fake := buildTool(t, "tools/testdata/fakeupstream")
	const base = "p, *, tool, nothing__*, allow, placeholder\n"
	polCfg, polPath := policyFiles(t, base)
	p := startServe(t, polCfg+"agent: {id: e2e-agent}\nadmin: {allowed_commands: ["+fake+"]}\napprovals: {hold: 1s}\n")
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	run := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, code := runMediator(t, p.Dir, append(args, "--server", p.Admin, "--config", cfg)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out, errOut
	}

	out, _ := run("upstream", "add", "fake", "--command", fake, "--risk", "echo=low")
	for _, want := range []string{
		// fake__echo says read-only, and (mcp-go's default, MCP's
		// too) open-world: denied unless listed.
		"# fake__echo: read-only, open-world; risk low",
		"p, *, tool, fake__echo, deny, fake__echo-egress",
		// mcp-go gives a tool without annotations MCP's defaults:
		// destructive and open-world.
		"# fake__sleep: destructive, open-world",
		"p, *, tool, fake__sleep, deny, fake__sleep-egress",
		"mediator policy suggest --upstream fake",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("upstream add does not print %q:\n%s", want, out)
		}
	}

	tok, _ := run("token", "mint", "--agent", "e2e-agent")
	c := tokenClient(t, p.URL, strings.TrimSpace(tok))
	if contains(toolNames(t, c), "fake__echo") {
		t.Fatal("fake__echo is listed before any rule allows it")
	}

	casesPath := filepath.Join(t.TempDir(), "fake-cases.yaml")
	lines, errOut := run("policy", "suggest", "--upstream", "fake", "--cases", casesPath, "--allow-egress", "fake__env", "--allow-egress", "fake__echo")
	if !strings.Contains(lines, "from the live catalog of the mediator at "+p.Admin) {
		t.Errorf("policy suggest does not say it read the live catalog:\n%s", lines)
	}
	if !strings.Contains(errOut, "cases are decided by the drafted rules") || strings.Contains(errOut, "FAIL") {
		t.Errorf("policy suggest's check:\n%s", errOut)
	}
	writeFile(t, polPath, base+lines)
	out, errOut, code := runMediator(t, p.Dir, "policy", "test", casesPath, "--config", cfg)
	if code != 0 {
		t.Fatalf("policy test of the drafted cases: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "PASS fake__echo: allow") || strings.Contains(out, "FAIL") {
		t.Fatalf("policy test of the drafted cases:\n%s", out)
	}
	if out, _ = run("policy", "reload"); !strings.Contains(out, "policy reloaded") {
		t.Fatalf("policy reload: %s", out)
	}
	waitFor(t, 10*time.Second, func() bool { return contains(toolNames(t, c), "fake__echo") }, "fake__echo listed after the reload")
	if res := callTool(t, c, "fake__echo", map[string]any{"text": "hi"}); res.IsError {
		t.Fatalf("fake__echo under the drafted policy: %s", resultText(res))
	}
	// Listed with --allow-egress: drafted by its other hint, destructive.
	pendingMeta(t, callTool(t, c, "fake__env", nil))
	if res := callTool(t, c, "fake__sleep", map[string]any{"seconds": 0}); !res.IsError || !strings.Contains(resultText(res), "fake__sleep-egress") {
		t.Fatalf("fake__sleep under the drafted policy: %s; want denied by fake__sleep-egress", resultText(res))
	}
}
