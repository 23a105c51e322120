package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/sashabaranov/go-openai"

	"github.com/mcp-mediator/mediator/internal/testenv"
)

// The end-to-end test runs the real mediator binary (serve, task start,
// audit show) with its demo upstream, and the agent command in-process.

// mediatorBinary builds cmd/mediator once per test binary.
func mediatorBinary(t *testing.T) string {
	t.Helper()
	return testenv.Build(t, "cmd/mediator")
}

// freeAddr returns a loopback address with a free port (testenv.FreeAddr).
func freeAddr(t *testing.T) string {
	t.Helper()
	return testenv.FreeAddr(t)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// e2eConfig is the mediator's config: the quickstart's demo upstream and
// example policy, everything else in dir.
const e2eConfig = `listen: {{LISTEN}}
database: {{DIR}}/mediator.db
admin:
  listen: {{ADMIN}}
auth:
  issuer: mcp-mediator
  audience: mcp-mediator
  key_file: {{DIR}}/mediator.key
  max_lifetime: 1h
{{ANONYMOUS}}
policy:
  model: {{ROOT}}/examples/policy/model.conf
  file: {{ROOT}}/examples/policy/policy.csv
upstreams:
  - name: demo
    command: "@mediator"
    args: [demo-upstream, --root, {{DIR}}/sandbox]
    env: {DEMO_MODE: "1"}
    timeout: 30s
    tools:
      read_file:       {risk: low,    data_class: internal}
      list_files:      {risk: low,    data_class: internal}
      write_file:      {risk: medium, data_class: internal}
      lookup_customer: {risk: medium, data_class: pii}
      transfer_funds:  {risk: high,   data_class: financial}
      fetch_url:       {risk: medium, data_class: public}
      echo:            {risk: low,    data_class: public}
{{EXTRA}}
log:
  level: info
  format: text
`

// mediatorRun is a running `mediator serve`.
type mediatorRun struct {
	bin, cfg, dir, url, base string
	stderr                   *syncBuffer
}

func startMediator(t *testing.T, anonymous bool) *mediatorRun {
	t.Helper()
	return startMediatorWith(t, anonymous, "")
}

// startMediatorWith is startMediator with extra top-level config.
func startMediatorWith(t *testing.T, anonymous bool, extra string) *mediatorRun {
	t.Helper()
	bin := mediatorBinary(t)
	dir := t.TempDir()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	listen, admin := freeAddr(t), freeAddr(t)
	anon := ""
	if anonymous {
		anon = "  anonymous: {id: local-agent, roles: [writer, support]}"
	}
	cfg := strings.NewReplacer("{{LISTEN}}", listen, "{{ADMIN}}", admin, "{{DIR}}", dir, "{{ROOT}}", root,
		"{{ANONYMOUS}}", anon, "{{EXTRA}}", extra).Replace(e2eConfig)
	m := &mediatorRun{bin: bin, cfg: filepath.Join(dir, "mediator.yaml"), dir: dir, url: "http://" + listen + "/mcp",
		base: "http://" + listen, stderr: &syncBuffer{}}
	if err := os.WriteFile(m.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sandbox", "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sandbox", "notes", "agent.txt"), []byte("The launch is on Tuesday.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", m.cfg)
	cmd.Dir, cmd.Stderr = dir, m.stderr
	// Audit checkpoints in the test's directory, not ~/.local/state.
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("mediator did not stop within 30s of SIGTERM\n%s", m.stderr.String())
		}
		if t.Failed() {
			t.Logf("mediator stderr:\n%s", m.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("mediator exited before it was ready: %v\n%s", err, m.stderr.String())
		default:
		}
		resp, err := http.Get(m.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mediator not ready after 60s\n%s", m.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cli runs a mediator command and returns its stdout; it fails the test on
// a non-zero exit.
func (m *mediatorRun) cli(t *testing.T, args ...string) []byte {
	t.Helper()
	out, errOut, err := m.try(t, args...)
	if err != nil {
		t.Fatalf("mediator %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (m *mediatorRun) try(t *testing.T, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.bin, args...)
	cmd.Dir = m.dir
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(m.dir, "state"))
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// chainRecord holds the fields of mediator.ChainRecord the test reads.
type chainRecord struct {
	Seq       int64           `json:"seq"`
	SessionID string          `json:"session_id"`
	AgentID   string          `json:"agent_id"`
	TaskID    string          `json:"task_id"`
	Method    string          `json:"method"`
	Server    string          `json:"server"`
	Name      string          `json:"name"`
	Prompt    string          `json:"prompt"`
	Reasoning string          `json:"reasoning"`
	Arguments json.RawMessage `json:"arguments"`
	Intent    *struct {
		Verdict string   `json:"verdict"`
		Reasons []string `json:"reasons"`
		TaskID  string   `json:"task_id"`
		Judge   *struct {
			Score  float64 `json:"score"`
			Effect string  `json:"effect"`
			Cached bool    `json:"cached"`
		} `json:"judge"`
	} `json:"intent"`
	Decision struct {
		Effect string `json:"effect"`
		Rule   string `json:"rule"`
		Reason string `json:"reason"`
	} `json:"decision"`
	Outcome string          `json:"outcome"`
	Error   string          `json:"error"`
	Result  json.RawMessage `json:"result"`
}

type chainView struct {
	Tasks []struct {
		ID       string `json:"id"`
		ParentID string `json:"parent_id"`
		Source   string `json:"source"`
		Status   string `json:"status"`
		Purpose  string `json:"purpose"`
	} `json:"tasks"`
	Records []chainRecord `json:"records"`
}

// The whole chain through a real mediator: an administrator starts a task
// and hands its token to the agent; the agent (with a scripted model)
// declares the intent, lists and reads a file, answers and completes the
// task; the audit chain holds every step with its prompt, intent verdict,
// decision and outcome; and the task's token is refused afterwards.
func TestEndToEndThroughMediator(t *testing.T) {
	m := startMediator(t, false)

	out := m.cli(t, "task", "start", "--config", m.cfg, "--agent", "analyst", "--role", "writer", "--role", "support",
		"--purpose", "Report what the notes folder says about the launch", "--tools", "demo__*", "--json")
	var started struct {
		Task struct {
			ID      string `json:"id"`
			AgentID string `json:"agent_id"`
			Status  string `json:"status"`
		} `json:"task"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &started); err != nil || started.Task.ID == "" || started.Token == "" {
		t.Fatalf("task start --json printed %s (%v); want {task: {id}, token}", out, err)
	}
	taskID, token := started.Task.ID, started.Token

	const prompt = "When is the launch, according to the notes?"
	const reasoning = "Let me look for the notes first."
	const answer = "According to notes/agent.txt, the launch is on Tuesday."
	const apiKey = "sk-e2e-secret-key"
	model := newFakeModel(t, apiKey,
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			names := offeredNames(req)
			for _, want := range []string{"demo__list_files", "demo__read_file", "demo__echo"} {
				if !slices.Contains(names, want) {
					t.Errorf("turn 1: tools offered %v lack %s", names, want)
				}
			}
			for _, own := range []string{ToolDeclareIntent, ToolCompleteTask} {
				if slices.Contains(names, own) {
					t.Errorf("turn 1: the mediator's own %s is offered to the model", own)
				}
			}
			return openai.ChatCompletionMessage{Content: reasoning,
				ToolCalls: []openai.ToolCall{callOf("call_list", "demo__list_files", `{"path":"notes"}`)}}
		},
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			if msg, ok := toolMessage(t, req, "call_list"); ok && (!strings.Contains(msg.Content, "agent.txt") || strings.HasPrefix(msg.Content, "ERROR")) {
				t.Errorf("turn 2: the listing given to the model is %q; want it to name agent.txt", msg.Content)
			}
			return openai.ChatCompletionMessage{ToolCalls: []openai.ToolCall{callOf("call_read", "demo__read_file", `{"path":"notes/agent.txt"}`)}}
		},
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			if msg, ok := toolMessage(t, req, "call_read"); ok && !strings.Contains(msg.Content, "The launch is on Tuesday.") {
				t.Errorf("turn 3: the file given to the model is %q", msg.Content)
			}
			return openai.ChatCompletionMessage{Content: answer}
		},
	)

	// The agent command, in-process, configured as a user would.
	env := map[string]string{"MEDIATOR_TOKEN": token, "OPENAI_API_KEY": apiKey, "OPENAI_BASE_URL": model.BaseURL()}
	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"--mediator", m.url, "--model", "scripted", prompt}, &stdout, &stderr,
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	t.Logf("agent stderr:\n%s", stderr.String())
	if code != 0 {
		t.Fatalf("agent exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != answer {
		t.Fatalf("agent stdout %q; want the answer %q", got, answer)
	}
	for _, want := range []string{"demo__list_files", "demo__read_file", "task completed"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("agent trace lacks %q", want)
		}
	}
	if strings.Contains(stderr.String()+stdout.String(), apiKey) || strings.Contains(stderr.String(), token) {
		t.Error("the agent printed a secret")
	}
	if n := len(model.Requests()); n != 3 {
		t.Fatalf("%d model requests; want 3", n)
	}

	// The recorded chain.
	// The chain of the task an administrator started includes the
	// declaration that narrowed it and the calls checked against that.
	view := waitChain(t, m, taskID, 4)
	calls := toolCalls(view.Records)
	var names []string
	for _, r := range calls {
		names = append(names, r.Name)
	}
	want := []string{ToolDeclareIntent, "demo__list_files", "demo__read_file", ToolCompleteTask}
	if !slices.Equal(names, want) {
		t.Fatalf("tools/call records of audit show --task %s: %v; want %v", taskID, names, want)
	}
	for _, r := range view.Records {
		if r.Method != "tools/call" && (r.Decision.Effect != "allow" || r.Outcome != "ok") {
			t.Errorf("protocol record %s: decision %+v outcome %q", r.Method, r.Decision, r.Outcome)
		}
	}
	view.Records = calls
	session := view.Records[0].SessionID
	for i, r := range view.Records {
		what := fmt.Sprintf("record %d (%s)", i, r.Name)
		if r.Method != "tools/call" || r.AgentID != "analyst" || r.SessionID == "" || r.SessionID != session {
			t.Errorf("%s: method %q agent %q session %q; want tools/call by analyst in one session %q", what, r.Method, r.AgentID, r.SessionID, session)
		}
		if r.Prompt != prompt {
			t.Errorf("%s: prompt %q; want the user's prompt", what, r.Prompt)
		}
		if r.Intent == nil || r.Intent.Verdict != "in_scope" {
			t.Errorf("%s: intent %+v; want in_scope", what, r.Intent)
		}
		if r.Decision.Effect != "allow" {
			t.Errorf("%s: decision %+v; want allow", what, r.Decision)
		}
		if r.Outcome != "ok" || r.Error != "" {
			t.Errorf("%s: outcome %q error %q; want ok", what, r.Outcome, r.Error)
		}
	}
	if r := view.Records[1]; r.Reasoning != reasoning || r.Server != "demo" || !strings.Contains(string(r.Arguments), `"notes"`) {
		t.Errorf("list_files record: reasoning %q server %q arguments %s", r.Reasoning, r.Server, r.Arguments)
	}
	if r := view.Records[2]; !strings.Contains(string(r.Result), "The launch is on Tuesday.") {
		t.Errorf("read_file record result %s; want the file's text", r.Result)
	}
	if r := view.Records[3]; !strings.Contains(string(r.Arguments), "Answered after 2 tool calls") {
		t.Errorf("complete_task record arguments %s; want the summary", r.Arguments)
	}
	// The task, and the declaration that narrowed it, both ended.
	var admin, declared bool
	for _, tk := range view.Tasks {
		switch {
		case tk.ID == taskID:
			admin = true
		case tk.ParentID == taskID && tk.Source == "declared":
			declared = true
		default:
			continue
		}
		if tk.Status != "completed" {
			t.Errorf("task %s (%s) status %q after complete_task; want completed", tk.ID, tk.Source, tk.Status)
		}
	}
	if !admin || !declared {
		t.Errorf("audit show --task %s lists the tasks %+v; want it and its declaration", taskID, view.Tasks)
	}

	// After complete_task the task's token no longer works: a new session
	// is refused with 401, and so is a raw request.
	_, err := Connect(t.Context(), m.url, token)
	if !errors.Is(err, transport.ErrAuthorizationRequired) || !strings.Contains(err.Error(), "token revoked") {
		t.Fatalf("connect with the completed task's token: %v; want 401, token revoked", err)
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, m.url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("initialize with the completed task's token: HTTP %d; want 401", resp.StatusCode)
	}
}

// After complete_task, the next call of the same session is refused at
// the HTTP gate (401), and the agent treats that as the end of the run,
// not as a tool error for the model.
func TestEndToEndSessionRefusedAfterComplete(t *testing.T) {
	m := startMediator(t, false)
	out := m.cli(t, "task", "start", "--config", m.cfg, "--agent", "analyst", "--role", "writer",
		"--purpose", "Echo a greeting", "--tools", "demo__echo", "--json")
	var started struct {
		Task  struct{ ID string } `json:"task"`
		Token string              `json:"token"`
	}
	if err := json.Unmarshal(out, &started); err != nil || started.Token == "" {
		t.Fatalf("task start: %s (%v)", out, err)
	}
	c, err := Connect(t.Context(), m.url, started.Token)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := &Agent{MCP: c}
	if _, err := a.declare(t.Context(), "Echo a greeting", "Say hello"); err != nil {
		t.Fatal(err)
	}
	if err := a.complete(t.Context(), "done", "Say hello"); err != nil {
		t.Fatal(err)
	}
	_, err = a.callTool(t.Context(), 1, callOf("c1", "demo__echo", `{"message":"hello again"}`),
		map[string]bool{"demo__echo": true}, "Say hello", "")
	if !errors.Is(err, transport.ErrAuthorizationRequired) || !strings.Contains(err.Error(), "refused the credential: token revoked") {
		t.Fatalf("call after complete_task: %v; want the run ended by a 401 that says the token was revoked", err)
	}
}

// The loopback quickstart without a token: the mediator's anonymous
// identity, the intent bound to the MCP session. The chain is read by the
// task id declare_intent returned.
func TestEndToEndAnonymous(t *testing.T) {
	m := startMediator(t, true)
	const prompt = "Say hello through the echo tool"
	model := newFakeModel(t, "",
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			return openai.ChatCompletionMessage{ToolCalls: []openai.ToolCall{callOf("e1", "demo__echo", `{"message":"hello"}`)}}
		},
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			if msg, ok := toolMessage(t, req, "e1"); ok && msg.Content != "hello" {
				t.Errorf("echo result %q", msg.Content)
			}
			return openai.ChatCompletionMessage{Content: "The echo tool said hello."}
		},
	)
	c, err := Connect(t.Context(), m.url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := &Agent{MCP: c, Model: model.Client(), ModelName: "scripted"}
	tr, err := a.Run(t.Context(), prompt)
	if err != nil || tr.TaskID == "" || !tr.Completed || tr.Answer != "The echo tool said hello." {
		t.Fatalf("Run: %+v, %v", tr, err)
	}
	view := waitChain(t, m, tr.TaskID, 3)
	var names []string
	for _, r := range toolCalls(view.Records) {
		names = append(names, r.Name)
		if r.AgentID != "local-agent" || r.Prompt != prompt || r.Intent == nil || r.Intent.Verdict != "in_scope" ||
			r.Decision.Effect != "allow" || r.Outcome != "ok" {
			t.Errorf("record %s: agent %q prompt %q intent %+v decision %+v outcome %q", r.Name, r.AgentID, r.Prompt, r.Intent,
				r.Decision, r.Outcome)
		}
	}
	if want := []string{ToolDeclareIntent, "demo__echo", ToolCompleteTask}; !slices.Equal(names, want) {
		t.Fatalf("records of task %s: %v; want %v", tr.TaskID, names, want)
	}
	for _, tk := range view.Tasks {
		if tk.ID == tr.TaskID && (tk.Source != "declared" || tk.Status != "completed") {
			t.Errorf("declared task %+v; want source declared, status completed", tk)
		}
	}
}

// waitChain reads `audit show --task ID --json` until it holds at least n
// tools/call records (the chain is written asynchronously).
func waitChain(t *testing.T, m *mediatorRun, taskID string, n int) chainView {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, errOut, err := m.try(t, "audit", "show", "--config", m.cfg, "--task", taskID, "--json")
		var v chainView
		if err == nil {
			if jerr := json.Unmarshal(out, &v); jerr != nil {
				t.Fatalf("audit show --task %s --json printed %s: %v", taskID, out, jerr)
			}
			if len(toolCalls(v.Records)) >= n {
				return v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit show --task %s --json: %d tools/call records after 15s, want %d (err %v)\nstdout: %s\nstderr: %s",
				taskID, len(toolCalls(v.Records)), n, err, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// toolCalls are the tools/call records of rs.
func toolCalls(rs []chainRecord) []chainRecord {
	var out []chainRecord
	for _, r := range rs {
		if r.Method == "tools/call" {
			out = append(out, r)
		}
	}
	return out
}

// TestEndToEndJudgeCacheHitRate runs the agent with the mediator's LLM
// judge on (a local OpenAI-compatible judge) and reports how many of the
// judged calls the judge's cache answered: repeated calls of the same
// tool with the same argument shape reuse one opinion.
func TestEndToEndJudgeCacheHitRate(t *testing.T) {
	var judged atomic.Int32
	judgeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		judged.Add(1)
		content, _ := json.Marshal(map[string]any{"score": 0.9, "rationale": "reading notes fits the purpose"})
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "j", "object": "chat.completion", "model": "judge",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": string(content)}}}})
	}))
	t.Cleanup(judgeSrv.Close)
	m := startMediatorWith(t, false, "intent:\n  judge:\n    base_url: "+judgeSrv.URL+"/v1\n    model: judge\n")
	out := m.cli(t, "task", "start", "--config", m.cfg, "--agent", "analyst", "--role", "writer", "--role", "support",
		"--purpose", "Report what the notes folder says about the launch", "--tools", "demo__*", "--json")
	var started struct {
		Task  struct{ ID string } `json:"task"`
		Token string              `json:"token"`
	}
	if err := json.Unmarshal(out, &started); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"notes/todo.md", "reports/q3.csv"} {
		path := filepath.Join(m.dir, "sandbox", f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step := func(id, tool, args string) turnFunc {
		return func(*testing.T, openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			return openai.ChatCompletionMessage{ToolCalls: []openai.ToolCall{callOf(id, tool, args)}}
		}
	}
	model := newFakeModel(t, "k",
		step("c1", "demo__list_files", `{"path":"notes"}`),
		step("c2", "demo__read_file", `{"path":"notes/agent.txt"}`),
		step("c3", "demo__read_file", `{"path":"notes/todo.md"}`),
		step("c4", "demo__list_files", `{"path":"reports"}`),
		step("c5", "demo__read_file", `{"path":"notes/agent.txt"}`),
		func(*testing.T, openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			return openai.ChatCompletionMessage{Content: "The launch is on Tuesday."}
		},
	)
	env := map[string]string{"MEDIATOR_TOKEN": started.Token, "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": model.BaseURL()}
	var stdout, stderr syncBuffer
	if code := run(t.Context(), []string{"--mediator", m.url, "--model", "scripted", "--max-steps", "8", "When is the launch?"},
		&stdout, &stderr, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); code != 0 {
		t.Fatalf("agent exit %d: %s", code, stderr.String())
	}
	v := waitChain(t, m, started.Task.ID, 7)
	var calls, hits int
	for _, r := range toolCalls(v.Records) {
		if r.Intent == nil || r.Intent.Judge == nil {
			continue
		}
		calls++
		if r.Intent.Judge.Cached {
			hits++
		}
		if r.Intent.Judge.Effect != "allow" || r.Outcome != "ok" {
			t.Errorf("%s: judge %+v, outcome %s", r.Name, *r.Intent.Judge, r.Outcome)
		}
	}
	t.Logf("judge cache: %d of %d judged calls answered from the cache (hit rate %.0f%%); %d requests reached the judge",
		hits, calls, 100*float64(hits)/float64(max(calls, 1)), judged.Load())
	if calls != 5 || hits != 3 || judged.Load() != 2 {
		t.Fatalf("judged %d calls, %d cache hits, %d judge requests; want 5, 3 (two shapes: list_files and read_file), 2", calls, hits, judged.Load())
	}
}
