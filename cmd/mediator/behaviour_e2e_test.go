package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-mediator/mediator/policy/behaviour"
	"github.com/mcp-mediator/mediator/store"
)

// behaviourConfig runs the demo upstream under the example policy with a
// short learning period, as the anonymous agent drift-agent (writer,
// support).
func behaviourConfig(extra string) string {
	return `
agent: {id: drift-agent, roles: [writer, support]}
auth:
  anonymous: {id: drift-agent, roles: [writer, support]}
approvals: {hold: 1s}
behaviour:
  learn_calls: 30
  learn_for: 1ms
  teach_per_minute: 1000
  recover_calls: 100000
upstreams:
  - name: demo
    command: "@mediator"
    args: [demo-upstream, --root, ./sandbox]
    tools:
      read_file:       {risk: low,    data_class: internal}
      list_files:      {risk: low,    data_class: internal}
      write_file:      {risk: medium, data_class: internal}
      lookup_customer: {risk: medium, data_class: pii}
      echo:            {risk: low,    data_class: public}
` + extra
}

// The heart of issue 10, end to end through a real mediator and the demo
// upstream: the agent learns a baseline over real calls; then it drifts
// (a tool and a data class it never used, many distinct customers), its
// trust falls, its next sensitive call needs a human, then its writes are
// refused while reads still run. The trust level is stored: it survives a
// restart, and an operator's `agent trust set` restores it in the running
// mediator within about a second. Every change is an audit record.
func TestE2EBehaviourDriftLowersTrust(t *testing.T) {
	t.Parallel()
	p := startServe(t, behaviourConfig(""))
	c := httpClient(t, p.URL)
	learnBaseline(t, c, p)
	t.Logf("drift needs approval: %s", driftUntilApproval(t, c))
	// Sustained deviation lowers trust again: writes are refused.
	var refused string
	for i := range 8 {
		res := callTool(t, c, "demo__write_file", map[string]any{"path": fmt.Sprintf("notes/x%d.md", i), "content": "x"})
		if text := resultText(res); res.IsError && strings.Contains(text, "trust-low-read-only") {
			refused = text
			break
		}
	}
	if refused == "" {
		t.Fatal("a drifting agent's writes were never refused")
	}
	if !strings.Contains(refused, "trust") || !strings.Contains(refused, "mediator agent") {
		t.Errorf("the refusal does not say the agent's trust is the cause and how to act: %s", refused)
	}
	if res := callTool(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"}); res.IsError {
		t.Fatalf("at trust low a read-only tool was refused: %s", resultText(res))
	}

	// The chain holds the trust changes and each call's behaviour.
	recs := exportRecords(t, p.Dir, p.DB)
	var drops []string
	var scored int
	for _, r := range recs {
		if r.Method == behaviour.TrustChangeMethod {
			drops = append(drops, r.Decision.Reason)
		}
		if r.Method == "tools/call" && r.Behaviour != nil && r.Behaviour.Score >= 0.5 && len(r.Behaviour.Reasons) > 0 {
			scored++
		}
	}
	if len(drops) < 2 || !strings.Contains(strings.Join(drops, "\n"), "from high to medium") ||
		!strings.Contains(strings.Join(drops, "\n"), "from medium to low") {
		t.Fatalf("trust change records: %q", drops)
	}
	if !strings.Contains(strings.Join(drops, "\n"), "never used by this agent") {
		t.Errorf("a trust drop does not say why in plain words: %q", drops)
	}
	if scored == 0 {
		t.Error("no call record carries the behaviour score and reasons")
	}
	out, _, code := runMediator(t, p.Dir, "agent", "show", "drift-agent", "--db", p.DB)
	if code != 0 || !strings.Contains(out, "trust     low") || !strings.Contains(out, "recent deviations") ||
		!strings.Contains(out, "demo__lookup_customer never used") {
		t.Fatalf("agent show:\n%s", out)
	}

	// A restart keeps the lowered trust.
	p.stop(t)
	p2 := startServeIn(t, p.Dir, behaviourConfig(""))
	c2 := httpClient(t, p2.URL)
	if res := callTool(t, c2, "demo__write_file", map[string]any{"path": "notes/after.md", "content": "x"}); !res.IsError ||
		!strings.Contains(resultText(res), "trust-low-read-only") {
		t.Fatalf("after a restart the lowered trust was forgotten: %s", resultText(res))
	}
	// An operator restores it; the running mediator applies it within about a second.
	out, errOut, code := runMediator(t, p.Dir, "agent", "trust", "set", "drift-agent", "high", "--reason", "reviewed: a support test run", "--db", p.DB)
	if code != 0 {
		t.Fatalf("agent trust set: %d %s %s", code, out, errOut)
	}
	// Every mediator on the database reads trust changes every 500 ms.
	// (Polling with writes would not do: each refusal counts against the
	// agent, and three in ten lower its trust again.)
	time.Sleep(1500 * time.Millisecond)
	if res := callTool(t, c2, "demo__write_file", map[string]any{"path": "notes/restored.md", "content": "x"}); res.IsError {
		t.Fatalf("the operator's trust set did not apply within 1.5 s: %s", resultText(res))
	}
	recs = exportRecords(t, p2.Dir, p2.DB)
	last := recs[len(recs)-1]
	for _, r := range recs {
		if r.Method == behaviour.TrustChangeMethod && strings.Contains(r.Decision.Reason, "reviewed: a support test run") {
			last = r
		}
	}
	if !strings.Contains(last.Decision.Reason, "to high by operator") {
		t.Errorf("the operator's change is not recorded: %+v", last.Decision)
	}
	if _, _, code := runMediator(t, p.Dir, "audit", "verify", "--db", p.DB); code != 0 {
		t.Error("audit verify failed after trust changes")
	}
}

// A profile row corrupted in the database: the agent drops to the fallback
// trust (low), never to high, and the operator is told how to reset it.
func TestE2EBehaviourCorruptProfileFallsBack(t *testing.T) {
	t.Parallel()
	p := startServe(t, behaviourConfig(""))
	c := httpClient(t, p.URL)
	for range 3 {
		callTool(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"})
	}
	waitFor(t, 5*time.Second, func() bool {
		out, _, _ := runMediator(t, p.Dir, "agent", "list", "--db", p.DB)
		return strings.Contains(out, "drift-agent")
	}, "the baseline was not stored within 5s")
	p.stop(t)
	corruptProfile(t, p.DB, "drift-agent")
	p2 := startServeIn(t, p.Dir, behaviourConfig(""))
	c2 := httpClient(t, p2.URL)
	res := callTool(t, c2, "demo__write_file", map[string]any{"path": "notes/a.md", "content": "x"})
	if !res.IsError || !strings.Contains(resultText(res), "trust-low-read-only") {
		t.Fatalf("with an unreadable baseline the agent kept its trust: %s", resultText(res))
	}
	out, _, _ := runMediator(t, p.Dir, "agent", "show", "drift-agent", "--db", p.DB)
	if !strings.Contains(out, "UNREADABLE") || !strings.Contains(out, "mediator agent baseline reset drift-agent") {
		t.Fatalf("agent show does not name the unreadable baseline and the fix:\n%s", out)
	}
	if _, e, code := runMediator(t, p.Dir, "agent", "baseline", "reset", "drift-agent", "--reason", "corrupt row", "--db", p.DB); code != 0 {
		t.Fatalf("baseline reset: %s", e)
	}
	out, _, _ = runMediator(t, p.Dir, "agent", "show", "drift-agent", "--db", p.DB)
	if strings.Contains(out, "UNREADABLE") {
		t.Fatalf("after a reset the baseline is still unreadable:\n%s", out)
	}
}

// corruptProfile overwrites the agent's stored baseline with bytes that do
// not decode, as a damaged or hand-edited database would hold.
func corruptProfile(t *testing.T, db, agentID string) {
	t.Helper()
	st, err := store.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.MergeProfile(t.Context(), agentID, agentID, "", func([]byte) ([]byte, error) {
		return []byte(`{"v": 1, "calls": -5, "tools": "not a map"`), nil
	}); err != nil {
		t.Fatal(err)
	}
}

// learnBaseline makes the agent's usual calls (reading and listing the
// sandbox, one write) until its baseline is learned and stored.
func learnBaseline(t *testing.T, c *client.Client, p *mediatorProc) {
	t.Helper()
	files := []string{"notes/todo.md", "reports/q3-churn.csv", "README.txt"}
	for i := range 36 {
		res := callTool(t, c, "demo__read_file", map[string]any{"path": files[i%len(files)]})
		switch i % 6 {
		case 3:
			res = callTool(t, c, "demo__list_files", map[string]any{"path": "notes"})
		case 5:
			res = callTool(t, c, "demo__write_file", map[string]any{"path": "notes/learned.md", "content": "ok"})
		}
		if res.IsError {
			t.Fatalf("learning call %d (at trust high) failed: %s", i, resultText(res))
		}
	}
	waitFor(t, 5*time.Second, func() bool {
		out, _, code := runMediator(t, p.Dir, "agent", "show", "drift-agent", "--db", p.DB, "--json")
		return code == 0 && strings.Contains(out, `"learning": false`)
	}, "the baseline was not stored as learned within 5s")
}

// driftUntilApproval looks up customers, a tool and a data class the agent
// never used, until a lookup needs a human; it returns that refusal.
func driftUntilApproval(t *testing.T, c *client.Client) string {
	t.Helper()
	for _, q := range []string{"ada", "bob", "cy", "dee", "eve", "fay"} {
		res := callTool(t, c, "demo__lookup_customer", map[string]any{"query": q})
		if text := resultText(res); res.IsError && strings.Contains(text, "approval") {
			return text
		}
	}
	t.Fatal("after drifting, a sensitive call did not need approval")
	return ""
}

// The approval page shows the agent's trust and the behaviour reasons of
// the call being decided, in a real browser.
func TestBrowserApprovalShowsBehaviour(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t)
	p := startServe(t, behaviourConfig(""))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "alice", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	c := httpClient(t, p.URL)
	learnBaseline(t, c, p)
	driftUntilApproval(t, c)
	ctx := newChromium(t, chromium)
	signIn(t, ctx, p.Base, testPassword, "")
	openApproval(t, ctx, p, "demo__lookup_customer")
	trust, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("trust")))
	must(t, err)
	beh, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("behaviour")))
	must(t, err)
	if !strings.Contains(trust, "medium") || !strings.Contains(beh, "demo__lookup_customer never used by this agent") {
		t.Fatalf("the page shows trust %q and behaviour %q", trust, beh)
	}
	screenshot(t, ctx, "approval-behaviour.png")
}

// A task suspended for drift (three calls outside its scope) also lowers
// its agent's trust, recorded with that reason: the next task of the same
// agent starts at the lowered level.
func TestE2EBehaviourDriftSuspensionLowersTrust(t *testing.T) {
	t.Parallel()
	p := startServe(t, behaviourConfig(""))
	task := startTaskCLI(t, p, "--agent", "analyst", "--role", "writer", "--role", "support",
		"--purpose", "Summarise the team's notes", "--tools", "demo__read_file", "--constraint", "path:prefix=notes", "--ttl", "20m")
	c := tokenClient(t, p.URL, task.Token)
	if res := callTool(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"}); res.IsError {
		t.Fatalf("in-scope read: %s", resultText(res))
	}
	for i := range 3 {
		callTool(t, c, "demo__read_file", map[string]any{"path": fmt.Sprintf("reports/%d.csv", i)})
	}
	waitFor(t, 5*time.Second, func() bool {
		out, _, _ := runMediator(t, p.Dir, "agent", "show", "analyst", "--db", p.DB)
		return strings.Contains(out, "trust     medium") && strings.Contains(out, "was suspended after out-of-scope calls")
	}, "a drift suspension did not lower the agent's trust")
	task2 := startTaskCLI(t, p, "--agent", "analyst", "--role", "writer", "--role", "support",
		"--purpose", "Write the weekly note", "--tools", "demo__write_file", "--ttl", "20m")
	c2 := tokenClient(t, p.URL, task2.Token)
	res := callTool(t, c2, "demo__write_file", map[string]any{"path": "notes/week.md", "content": "x"})
	// At high trust the write runs alone (sandbox-write); at medium it
	// waits for a human (trust-medium-writes).
	if !res.IsError || !strings.Contains(resultText(res), "approval pending") {
		t.Fatalf("the agent's next task did not start at the lowered trust: %s", resultText(res))
	}
}

// The admin API lists and shows agents, sets trust (in force in the
// serving process at once) and acts on baselines; bad input is a 400 that
// names the fix, no token a 401.
func TestE2EAdminAgents(t *testing.T) {
	t.Parallel()
	p := startServe(t, behaviourConfig(""))
	c := httpClient(t, p.URL)
	if res := callTool(t, c, "demo__write_file", map[string]any{"path": "notes/a.md", "content": "x"}); res.IsError {
		t.Fatalf("write at trust high: %s", resultText(res))
	}
	admin := mintCLI(t, p.Dir, "--admin", "--config", filepath.Join(p.Dir, "mediator.yaml"))
	base := p.Admin + adminPrefix + "/agents"
	waitFor(t, 5*time.Second, func() bool {
		st, _, body := rawRequest(t, http.MethodGet, base, admin, "", "", nil)
		return st == http.StatusOK && strings.Contains(body, `"drift-agent"`)
	}, "GET /agents never listed the agent")
	if st, _, body := rawRequest(t, http.MethodGet, base+"/drift-agent", admin, "", "", nil); st != http.StatusOK ||
		!strings.Contains(body, `"profiles"`) || !strings.Contains(body, "demo__write_file") {
		t.Errorf("GET /agents/drift-agent: %d %s", st, body)
	}
	cases := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{http.MethodGet, "/nobody", "", http.StatusNotFound, "no baseline"},
		{http.MethodPost, "/drift-agent/trust", `{"level": "max", "reason": "x"}`, http.StatusBadRequest, "use high, medium, low or none"},
		{http.MethodPost, "/drift-agent/trust", `{"level": "low"}`, http.StatusBadRequest, "reason"},
		{http.MethodPost, "/drift-agent/trust", `{"level": "high", "ceiling": "low", "reason": "x"}`, http.StatusBadRequest, "above the ceiling"},
		{http.MethodPost, "/drift-agent/baseline", `{"action": "explode", "reason": "x"}`, http.StatusBadRequest, "use reset, freeze or unfreeze"},
		{http.MethodPost, "/drift-agent/baseline", `{"action": "freeze", "reason": "audit week"}`, http.StatusOK, `"freeze"`},
		{http.MethodPost, "/drift-agent/trust", `{"level": "low", "reason": "under review"}`, http.StatusOK, `"level":"low"`},
	}
	for _, tc := range cases {
		st, _, body := rawRequest(t, tc.method, base+tc.path, admin, "", tc.body, nil)
		if st != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %s; want %d with %q", tc.method, tc.path, tc.body, st, body, tc.status, tc.want)
		}
	}
	if st, _, _ := rawRequest(t, http.MethodGet, base, "", "", "", nil); st != http.StatusUnauthorized {
		t.Errorf("GET /agents without a token: %d, want 401", st)
	}
	// The serving process applies the admin's level at once.
	res := callTool(t, c, "demo__write_file", map[string]any{"path": "notes/b.md", "content": "x"})
	if !res.IsError || !strings.Contains(resultText(res), "trust-low-read-only") || !strings.Contains(resultText(res), "under review") {
		t.Fatalf("after the admin set trust low the write ran: %s", resultText(res))
	}
}

// A passport's trust_ceiling caps the agent from its first call: minted
// with --trust-ceiling medium, its writes wait for a human although its
// behaviour is clean; a ceiling that is not a level is refused at mint.
func TestE2EBehaviourPassportCeiling(t *testing.T) {
	t.Parallel()
	p := startServe(t, behaviourConfig(""))
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	tok := mintCLI(t, p.Dir, "--config", cfg, "--agent", "capped-bot", "--role", "writer", "--trust-ceiling", "medium")
	c := tokenClient(t, p.URL, tok)
	if res := callTool(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"}); res.IsError {
		t.Fatalf("read: %s", resultText(res))
	}
	res := callTool(t, c, "demo__write_file", map[string]any{"path": "notes/a.md", "content": "x"})
	if !res.IsError || !strings.Contains(resultText(res), "approval pending") {
		t.Fatalf("a write above the passport's ceiling ran alone: %s", resultText(res))
	}
	if _, errOut, code := runMediator(t, p.Dir, "token", "mint", "--config", cfg, "--server", noServer(t), "--agent", "x", "--trust-ceiling", "supreme"); code == 0 ||
		!strings.Contains(errOut, "use high, medium, low or none") {
		t.Errorf("mint with --trust-ceiling supreme: exit %d: %s", code, errOut)
	}
}
