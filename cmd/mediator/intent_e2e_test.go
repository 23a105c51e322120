package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/store"
)

// intentConfig serves the demo upstream under the example policy, with
// short approval holds so that calls put behind approval return at once.
// Behaviour is off: these tests expect the intent rules to decide, and a
// drift suspension would also lower the agent's trust (that is tested in
// behaviour_e2e_test.go).
const intentConfig = `
auth:
  leeway: 0s
approvals:
  hold: 100ms
behaviour: {enabled: false}
upstreams:
  - name: demo
    command: "@mediator"
    args: [demo-upstream, --root, {{DIR}}/sandbox]
    tools:
      read_file:  {risk: low, data_class: internal}
      list_files: {risk: low, data_class: internal}
      write_file: {risk: medium, data_class: internal}
      echo:       {risk: low, data_class: public}
`

// startTaskCLI runs `mediator task start --json` and returns the response.
func startTaskCLI(t *testing.T, p *mediatorProc, args ...string) taskStartResponse {
	t.Helper()
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	out, stderr, code := runMediator(t, p.Dir, append([]string{"task", "start", "--config", cfg, "--server", p.Admin, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("task start: exit %d: %s", code, stderr)
	}
	var resp taskStartResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Token == "" || resp.Task.ID == "" {
		t.Fatalf("task start output %q: %v", out, err)
	}
	return resp
}

// callWithPrompt calls a tool with prompt (a string or an object) in _meta.
func callWithPrompt(t *testing.T, c *client.Client, name string, args map[string]any, prompt any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	req.Params.Meta = mcp.NewMetaFromMap(map[string]any{mediator.PromptMetaKey: prompt})
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

// TestE2EIntent is issue 4 end to end: a task with a token, in-band
// narrowing, out-of-scope denials, drift suspension and resume, a capped
// 10 MiB prompt, complete_task revoking the token, and the chain view.
func TestE2EIntent(t *testing.T) {
	t.Parallel()
	p := startServe(t, intentConfig)
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	task := startTaskCLI(t, p, "--agent", "analyst", "--role", "writer", "--role", "support",
		"--purpose", "Summarise the team's notes", "--tools", "demo__read_file", "--tools", "demo__list_files",
		"--tools", "demo__echo", "--constraint", "path:prefix=notes", "--max-risk", "medium", "--ttl", "20m")
	if task.Task.Status != mediator.TaskActive || task.Task.Scope.Constraints[0].Values[0] != "notes" ||
		task.TokenExpiresAt == nil || task.TokenExpiresAt.After(task.Task.Expires.Add(time.Second)) {
		t.Fatalf("task %+v", task)
	}
	id := task.Task.ID
	c := tokenClient(t, p.URL, task.Token)
	names := toolNames(t, c)
	if !contains(names, mediator.ToolDeclareIntent) || !contains(names, mediator.ToolCompleteTask) {
		t.Fatalf("tools %v lack the mediator's own", names)
	}

	// Widening the token's task is refused; narrowing is accepted.
	res := callWithPrompt(t, c, mediator.ToolDeclareIntent, map[string]any{"purpose": "edit notes",
		"scope": map[string]any{"tools": []any{"demo__*"}}}, "edit my notes")
	if !res.IsError || !strings.Contains(resultText(res), "may only narrow") || !strings.Contains(resultText(res), "demo__write_file") {
		t.Fatalf("widening declaration: %v %s", res.IsError, resultText(res))
	}
	res = callWithPrompt(t, c, mediator.ToolDeclareIntent, map[string]any{"purpose": "read the todo list",
		"scope": map[string]any{"tools": []any{"demo__read_file", "demo__echo"}}}, "what is on my todo list?")
	if res.IsError {
		t.Fatalf("narrowing declaration: %s", resultText(res))
	}

	// In scope: runs. Out of scope: refused (destructive) or behind approval.
	if res := callWithPrompt(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"}, "what is on my todo list?"); res.IsError {
		t.Fatalf("in-scope read: %s", resultText(res))
	}
	res = callWithPrompt(t, c, "demo__read_file", map[string]any{"path": "notes/../../etc/passwd"}, "x")
	if !res.IsError || !strings.Contains(resultText(res), "approval") {
		t.Fatalf("escaping read: %s", resultText(res))
	}
	// The 10 MiB prompt: accepted, capped, recorded as truncated.
	huge := strings.Repeat("p", 10<<20)
	if res := callWithPrompt(t, c, "demo__echo", map[string]any{"message": "hi"}, map[string]any{"text": huge, "reasoning": "r"}); res.IsError {
		t.Fatalf("echo with a 10 MiB prompt: %s", resultText(res))
	}
	// Two more out-of-scope calls: the third suspends the task.
	for i := range 2 {
		res = callWithPrompt(t, c, "demo__write_file", map[string]any{"path": "notes/x.md", "content": "x"}, "x")
		if !res.IsError || !strings.Contains(resultText(res), "out-of-scope-destructive") {
			t.Fatalf("out-of-scope write %d: %s", i, resultText(res))
		}
	}
	res = callWithPrompt(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"}, "x")
	if !res.IsError || !strings.Contains(resultText(res), "suspended") || !strings.Contains(resultText(res), "task resume "+id) {
		t.Fatalf("call on a suspended task: %s", resultText(res))
	}
	out, stderr, code := runMediator(t, p.Dir, "task", "show", id, "--config", cfg, "--server", p.Admin)
	if code != 0 || !strings.Contains(out, "suspended (3 out-of-scope calls within 10m0s; by mediator)") ||
		!strings.Contains(out, "read the todo list") {
		t.Fatalf("task show: exit %d %q %s", code, out, stderr)
	}
	if out, stderr, code = runMediator(t, p.Dir, "task", "resume", id, "--reason", "reviewed", "--config", cfg, "--server", p.Admin); code != 0 {
		t.Fatalf("task resume: exit %d %q %s", code, out, stderr)
	}
	if res := callWithPrompt(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"}, "again"); res.IsError {
		t.Fatalf("read after resume: %s", resultText(res))
	}

	// complete_task ends the task and its token.
	if res := callWithPrompt(t, c, mediator.ToolCompleteTask, map[string]any{"summary": "listed the todos"}, "done"); res.IsError {
		t.Fatalf("complete_task: %s", resultText(res))
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		status, _, _ := postInitialize(t, p.URL, task.Token)
		if status == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the token still works after complete_task (status %d)", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, _, code = runMediator(t, p.Dir, "task", "list", "--config", cfg, "--server", p.Admin, "--agent", "analyst"); code != 0 ||
		!strings.Contains(out, id+"  analyst  completed") {
		t.Fatalf("task list: %q", out)
	}

	// The chain: every record of the task, in a tree, and as JSON.
	out, stderr, code = runMediator(t, p.Dir, "audit", "show", "--task", id, "--db", p.DB, "--json")
	if code != 0 {
		t.Fatalf("audit show --json: exit %d %s", code, stderr)
	}
	var v chainView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	var truncated, inScope, outScope, declared bool
	for _, r := range v.Records {
		switch {
		case r.Name == "demo__echo":
			truncated = r.PromptTruncated && len(r.Prompt) < 64<<10 && r.Reasoning == "r"
		case r.Name == "demo__read_file" && r.Intent != nil && r.Intent.Verdict == mediator.IntentInScope:
			inScope = r.Prompt != "" && r.Outcome == mediator.OutcomeOK
		case r.Name == "demo__write_file" && r.Intent != nil && r.Intent.Verdict == mediator.IntentOutOfScope:
			outScope = strings.Contains(strings.Join(r.Intent.Reasons, ";"), `tool "demo__write_file" not in scope`)
		case r.Name == mediator.ToolDeclareIntent && r.Outcome == mediator.OutcomeOK:
			declared = r.Prompt == "what is on my todo list?"
		}
	}
	if !truncated || !inScope || !outScope || !declared {
		t.Fatalf("records: truncated prompt %v, in-scope read %v, out-of-scope write %v, declaration %v\n%s",
			truncated, inScope, outScope, declared, out)
	}
	session := ""
	for _, r := range v.Records {
		if r.Name == mediator.ToolDeclareIntent {
			session = r.SessionID
		}
	}
	out, stderr, code = runMediator(t, p.Dir, "audit", "show", "--session", session, "--db", p.DB)
	if code != 0 || !strings.Contains(out, "task "+id+" [admin, completed]") || !strings.Contains(out, "intent: out_of_scope") ||
		!strings.Contains(out, "(truncated)") {
		t.Fatalf("audit show --session %q: exit %d\n%s%s", session, code, out, stderr)
	}
	if out, _, code = runMediator(t, p.Dir, "audit", "verify", "--db", p.DB); code != 0 {
		t.Fatalf("audit verify: %s", out)
	}
}

// TestE2EIntentJudge runs the LLM judge against a local OpenAI-compatible
// server: an allowed call the judge finds inconsistent goes to approval;
// a timeout applies the fallback; the opinion is recorded.
func TestE2EIntentJudge(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") != "Bearer judge-key" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		var body struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		user := body.Messages[len(body.Messages)-1].Content
		if strings.Contains(user, "slow") {
			time.Sleep(1500 * time.Millisecond)
		}
		score, why := 0.95, "reading notes fits the purpose"
		if strings.Contains(user, "bitcoin") {
			score, why = 0.05, "echoing a wallet address has nothing to do with notes"
		}
		content, _ := json.Marshal(map[string]any{"score": score, "rationale": why})
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "x", "object": "chat.completion", "model": "judge",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": string(content)}}}})
	}))
	t.Cleanup(model.Close)
	p := startServe(t, intentConfig+`
intent:
  judge:
    base_url: `+model.URL+`/v1
    model: judge
    api_key_env: JUDGE_KEY
    timeout: 500ms
`, "JUDGE_KEY=judge-key")
	task := startTaskCLI(t, p, "--agent", "analyst", "--role", "writer", "--purpose", "Summarise the team's notes",
		"--tools", "demo__*")
	c := tokenClient(t, p.URL, task.Token)
	if res := callWithPrompt(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"}, "summarise"); res.IsError {
		t.Fatalf("consistent call: %s", resultText(res))
	}
	if res := callWithPrompt(t, c, "demo__read_file", map[string]any{"path": "notes/todo.md"}, "summarise"); res.IsError {
		t.Fatalf("repeated call: %s", resultText(res))
	}
	res := callWithPrompt(t, c, "demo__echo", map[string]any{"message": "send bitcoin to 1abc"}, "x")
	if !res.IsError || !strings.Contains(resultText(res), "approval") {
		t.Fatalf("inconsistent call: %s", resultText(res))
	}
	res = callWithPrompt(t, c, "demo__list_files", map[string]any{"path": "slow"}, "x")
	if !res.IsError || !strings.Contains(resultText(res), "approval") {
		t.Fatalf("judge timeout: %s", resultText(res))
	}
	out, _, code := runMediator(t, p.Dir, "audit", "show", "--task", task.Task.ID, "--db", p.DB)
	for _, want := range []string{"judge 0.95 → allow", "[cached]", "judge 0.05 → approve", "rule intent.judge", "fallback: timeout"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("audit show lacks %q:\n%s", want, out)
		}
	}
	if n := requests.Load(); n != 3 {
		t.Fatalf("%d judge requests; want 3 (the repeated read is cached)", n)
	}
}

// The task commands work on the database when no mediator answers, and
// refuse bad scopes with a usage error naming the problem.
func TestTaskCLIWithoutServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "m.db")
	st, err := store.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	dead := "http://" + freeAddr(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--purpose", "p"}, "agent: required"},
		{[]string{"--agent", "a", "--purpose", "p", "--tools", "demo__[x"}, "invalid scope"},
		{[]string{"--agent", "a", "--purpose", "p", "--constraint", "n:max=-3"}, "negative"},
		{[]string{"--agent", "a", "--purpose", "p", "--constraint", "path:prefix=/srv/../etc"}, `".."`},
		{[]string{"--agent", "a", "--purpose", "p", "--constraint", "path"}, "constraint"},
		{[]string{"--agent", "a", "--purpose", "p", "--max-data-class", "secret"}, "max_data_class"},
	} {
		_, stderr, code := runMediator(t, dir, append([]string{"task", "start", "--db", db, "--server", dead}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("task start %v: exit %d %q; want 2 naming %q", tc.args, code, stderr, tc.want)
		}
	}
	out, stderr, code := runMediator(t, dir, "task", "start", "--db", db, "--server", dead, "--agent", "a", "--purpose", "p",
		"--tools", "demo__read_*", "--constraint", "path:prefix=reports")
	if code != 0 || strings.Count(strings.TrimSpace(out), ".") != 2 || !strings.Contains(stderr, "directly") {
		t.Fatalf("task start without a server: exit %d %q %s", code, out, stderr)
	}
	out, _, code = runMediator(t, dir, "task", "list", "--db", db, "--server", dead, "--json")
	var ts []mediator.Task
	if code != 0 || json.Unmarshal([]byte(out), &ts) != nil || len(ts) != 1 {
		t.Fatalf("task list: exit %d %q", code, out)
	}
	if _, stderr, code = runMediator(t, dir, "task", "resume", ts[0].ID, "--db", db, "--server", dead); code != 1 ||
		!strings.Contains(stderr, "task state") {
		t.Fatalf("resume of an active task: exit %d %s", code, stderr)
	}
	if out, stderr, code = runMediator(t, dir, "task", "end", ts[0].ID, "--db", db, "--server", dead); code != 0 {
		t.Fatalf("task end: exit %d %q %s", code, out, stderr)
	}
	if out, _, code = runMediator(t, dir, "task", "show", ts[0].ID, "--db", db, "--server", dead); code != 0 ||
		!strings.Contains(out, "completed (ended by mediator-cli; by mediator-cli)") {
		t.Fatalf("task show: exit %d %q", code, out)
	}
	if _, stderr, code = runMediator(t, dir, "task", "show", "task-nope", "--db", db, "--server", dead); code != 1 ||
		!strings.Contains(stderr, "unknown task") {
		t.Fatalf("unknown task: exit %d %s", code, stderr)
	}
}

// TestE2EIntentConstrainsEveryPathArgument is finding 4 of issue 14: a
// task constrained to path:prefix=<dir>/allowed was dodged by tools that
// take their paths under other names (cat_many {"paths"}, copy {"source",
// "destination"}, and stash {"target"}, which the operator classifies as a
// path), and an out-of-scope call was then allowed by a plain allow rule.
// Against a real upstream that reads and writes the files it is given.
func TestE2EIntentConstrainsEveryPathArgument(t *testing.T) {
	t.Parallel()
	p := startServe(t, policyFragment(t, "p, *, tool, fake__*, allow, fake-all\n")+`
auth: {leeway: 0s}
upstreams:
  - name: fake
    command: `+buildTool(t, "tools/testdata/fakeupstream")+`
    tools:
      stash: {paths: [target]}
`)
	allowed := filepath.Join(p.Dir, "allowed")
	if err := os.MkdirAll(allowed, 0o700); err != nil {
		t.Fatal(err)
	}
	public, secret := filepath.Join(allowed, "a.txt"), filepath.Join(p.Dir, "secret.txt")
	for f, text := range map[string]string{public: "public text", secret: "SECRET-VALUE"} {
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	task := startTaskCLI(t, p, "--agent", "analyst", "--purpose", "Read the files in allowed/",
		"--constraint", "path:prefix="+allowed, "--ttl", "10m")
	c := tokenClient(t, p.URL, task.Token)

	// In scope: every path argument inside the prefix, or none at all.
	for _, call := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"fake__cat", map[string]any{"path": public}, "public text"},
		{"fake__cat_many", map[string]any{"paths": []any{public, public}}, "public textpublic text"},
		{"fake__copy", map[string]any{"source": public, "destination": filepath.Join(allowed, "b.txt")}, "copied"},
		{"fake__echo", map[string]any{"text": "hello"}, "hello"},
	} {
		if res := callWithPrompt(t, c, call.tool, call.args, "read the files"); res.IsError || resultText(res) != call.want {
			t.Fatalf("in-scope %s: %v %q", call.tool, res.IsError, resultText(res))
		}
	}
	// Out of scope: refused, although fake-all allows every fake tool.
	leak, stashed := filepath.Join(allowed, "leak.txt"), filepath.Join(p.Dir, "stashed.txt")
	for _, call := range []struct {
		tool   string
		args   map[string]any
		reason string
	}{
		{"fake__cat_many", map[string]any{"paths": []any{public, secret}}, `argument \"paths\" outside constraint prefix`},
		{"fake__copy", map[string]any{"source": secret, "destination": leak}, `argument \"source\" outside constraint prefix`},
		{"fake__stash", map[string]any{"target": stashed, "text": "x"}, `argument \"target\" outside constraint prefix`},
	} {
		res := callWithPrompt(t, c, call.tool, call.args, "read the files")
		text := resultText(res)
		if !res.IsError || strings.Contains(text, "SECRET") || !strings.Contains(text, "intent.out-of-scope") ||
			!strings.Contains(text, "fake-all would allow it but does not decide out-of-scope calls") {
			t.Fatalf("out-of-scope %s: %v %s", call.tool, res.IsError, text)
		}
	}
	for _, f := range []string{leak, stashed} {
		if _, err := os.Stat(f); err == nil {
			t.Fatalf("%s exists: a refused call reached the upstream", f)
		}
	}
	// The records say why.
	var refused int
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.Decision.Rule != policy.RuleOutOfScope {
			continue
		}
		refused++
		if r.Outcome != mediator.OutcomeDenied || r.Intent == nil || r.Intent.Verdict != mediator.IntentOutOfScope ||
			!strings.Contains(strings.Join(r.Intent.Reasons, ";"), "outside constraint prefix") {
			t.Fatalf("record %+v", r)
		}
	}
	if refused != 3 {
		t.Fatalf("%d records denied by %s, want 3", refused, policy.RuleOutOfScope)
	}
}

// TestE2EMissingArgumentIsTheAgentsMistake is the "also" of issue 14: a
// call without an argument a rule reads was reported as a policy error for
// an administrator, logged at error level.
func TestE2EMissingArgumentIsTheAgentsMistake(t *testing.T) {
	t.Parallel()
	p := startServe(t, `
agent: {id: local-agent, roles: [writer, support]}
auth: {anonymous: {id: local-agent, roles: [writer, support]}}
upstreams:
  - name: demo
    command: "@mediator"
    args: [demo-upstream, --root, {{DIR}}/sandbox]
`)
	c := httpClient(t, p.URL)
	res := callTool(t, c, "demo__read_file", map[string]any{})
	text := resultText(res)
	if !res.IsError || !strings.Contains(text, `argument "path" is required by rule sandbox-no-secrets`) ||
		strings.Contains(text, "administrator") {
		t.Fatalf("read_file {}: %v %s", res.IsError, text)
	}
	res = callTool(t, c, "demo__read_file", map[string]any{"path": 7})
	if text := resultText(res); !res.IsError || !strings.Contains(text, `argument "path" is a number, compared with a string by rule sandbox-no-secrets`) {
		t.Fatalf("read_file {path: 7}: %v %s", res.IsError, text)
	}
	if strings.Contains(p.stderr.String(), "level=ERROR") {
		t.Fatalf("logged as an error:\n%s", p.stderr.String())
	}
	var found bool
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.Name == "demo__read_file" && r.Decision.Rule == "sandbox-no-secrets" && r.Outcome == mediator.OutcomeDenied &&
			strings.Contains(r.Decision.Reason, `argument "path" is required`) {
			found = true
		}
	}
	if !found {
		t.Fatal("no record of the refused call citing sandbox-no-secrets")
	}
}
