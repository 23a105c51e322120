package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// task is a task as the tasks/* methods show it.
type task struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage"`
	CreatedAt     string `json:"createdAt"`
	LastUpdatedAt string `json:"lastUpdatedAt"`
	TTL           *int64 `json:"ttl"`
	PollInterval  *int64 `json:"pollInterval"`
}

// taskPeer sends one request on some transport and returns its response.
type taskPeer func(method, params string) rpcResponse

// createdTask reads a CreateTaskResult.
func createdTask(t *testing.T, r rpcResponse) task {
	t.Helper()
	var res struct {
		Task task `json:"task"`
	}
	if r.Error != nil || json.Unmarshal(r.Result, &res) != nil || res.Task.TaskID == "" {
		t.Fatalf("a task-augmented call: %s %+v, want a CreateTaskResult", r.Result, r.Error)
	}
	return res.Task
}

// getTask is tasks/get, which must succeed.
func getTask(t *testing.T, call taskPeer, id string) task {
	t.Helper()
	r := call("tasks/get", `{"taskId":"`+id+`"}`)
	var tk task
	if r.Error != nil || json.Unmarshal(r.Result, &tk) != nil || tk.TaskID != id {
		t.Fatalf("tasks/get %s: %s %+v", id, r.Result, r.Error)
	}
	return tk
}

// wantRPCError checks that r is a JSON-RPC error of code whose message
// holds text.
func wantRPCError(t *testing.T, what string, r rpcResponse, code int, text string) {
	t.Helper()
	if r.Error == nil || r.Error.Code != code || !strings.Contains(r.Error.Message, text) {
		t.Errorf("%s: %s %+v, want error %d saying %q", what, r.Result, r.Error, code, text)
	}
}

// taskResultOf reads a tasks/result answer: its text, isError, and the
// task its _meta names.
func taskResultOf(t *testing.T, r rpcResponse) (text string, isError bool, related string) {
	t.Helper()
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
		Meta    map[string]struct {
			TaskID string `json:"taskId"`
		} `json:"_meta"`
	}
	if r.Error != nil || json.Unmarshal(r.Result, &res) != nil || len(res.Content) == 0 {
		t.Fatalf("tasks/result: %s %+v", r.Result, r.Error)
	}
	return res.Content[0].Text, res.IsError, res.Meta["io.modelcontextprotocol/related-task"].TaskID
}

// exerciseTasks runs the task life cycle through call: what an agent of
// protocol 2025-11-25 sees calling tools of the fake upstream as tasks.
func exerciseTasks(t *testing.T, call taskPeer) (completedID string) {
	// The listing shows each tool's execution as the upstream listed it.
	list := string(call("tools/list", `{}`).Result)
	for _, want := range []string{`"name":"fake__slow_task"`, `"execution":{"taskSupport":"optional"}`, `"execution":{"taskSupport":"required"}`} {
		if !strings.Contains(list, want) {
			t.Errorf("tools/list lacks %s", want)
		}
	}

	// MCP's tool-level rules: -32601 for a task on a tool without task
	// support, and for a plain call of a tool that requires one.
	wantRPCError(t, "a task for fake__echo", call("tools/call", `{"name":"fake__echo","arguments":{"text":"x"},"task":{}}`), -32601, "cannot be called as a task")
	wantRPCError(t, "fake__only_task without a task", call("tools/call", `{"name":"fake__only_task","arguments":{}}`), -32601, "must be called as a task")

	// An optional tool called as a task: answered at once, working, then
	// its result from tasks/result, related to the task.
	start := time.Now()
	tk := createdTask(t, call("tools/call", `{"name":"fake__slow_task","arguments":{"seconds":1,"text":"a"},"task":{"ttl":60000}}`))
	if time.Since(start) > 900*time.Millisecond {
		t.Errorf("the CreateTaskResult took %s: it must come before the call finishes", time.Since(start))
	}
	if tk.Status != "working" || tk.TTL == nil || *tk.TTL != 60000 || tk.PollInterval == nil || tk.CreatedAt == "" || tk.LastUpdatedAt == "" {
		t.Errorf("created task %+v: want working, ttl 60000, a poll interval and times", tk)
	}
	if got := getTask(t, call, tk.TaskID); got.Status != "working" {
		t.Errorf("tasks/get while it runs: %+v", got)
	}
	text, isErr, related := taskResultOf(t, call("tasks/result", `{"taskId":"`+tk.TaskID+`"}`))
	if text != "done a" || isErr || related != tk.TaskID {
		t.Errorf("tasks/result: %q isError %v related %q; want \"done a\" for task %s", text, isErr, related, tk.TaskID)
	}
	if got := getTask(t, call, tk.TaskID); got.Status != "completed" {
		t.Errorf("tasks/get after the result: %+v", got)
	}
	wantRPCError(t, "cancelling a completed task", call("tasks/cancel", `{"taskId":"`+tk.TaskID+`"}`), -32602, "already completed")
	wantRPCError(t, "tasks/get of an unknown task", call("tasks/get", `{"taskId":"no-such-task"}`), -32602, "not found")
	wantRPCError(t, "tasks/list with a cursor", call("tasks/list", `{"cursor":"x"}`), -32602, "cursor")

	// A tool its upstream runs only as a task: the mediator calls it as
	// one and waits for the upstream's task.
	req := createdTask(t, call("tools/call", `{"name":"fake__only_task","arguments":{"text":"b"},"task":{}}`))
	if text, isErr, _ := taskResultOf(t, call("tasks/result", `{"taskId":"`+req.TaskID+`"}`)); text != "done b" || isErr {
		t.Errorf("a required-task tool: %q isError %v", text, isErr)
	}
	if got := getTask(t, call, req.TaskID); got.TTL == nil || *got.TTL != time.Hour.Milliseconds() {
		t.Errorf("a task asked without a ttl: %+v, want the mediator's ttl of an hour", got)
	}

	// A tool result with isError: the task fails, tasks/result has it.
	failed := createdTask(t, call("tools/call", `{"name":"fake__slow_task","arguments":{"text":"fail"},"task":{}}`))
	if text, isErr, _ := taskResultOf(t, call("tasks/result", `{"taskId":"`+failed.TaskID+`"}`)); !isErr || text != "failed as asked" {
		t.Errorf("a failing tool: %q isError %v", text, isErr)
	}
	if got := getTask(t, call, failed.TaskID); got.Status != "failed" {
		t.Errorf("tasks/get of a failed call: %+v", got)
	}

	// Cancelled while it runs: cancelled at once, stays so, no result.
	long := createdTask(t, call("tools/call", `{"name":"fake__slow_task","arguments":{"seconds":30},"task":{}}`))
	r := call("tasks/cancel", `{"taskId":"`+long.TaskID+`"}`)
	var cancelled task
	if r.Error != nil || json.Unmarshal(r.Result, &cancelled) != nil || cancelled.Status != "cancelled" {
		t.Fatalf("tasks/cancel: %s %+v", r.Result, r.Error)
	}
	wantRPCError(t, "tasks/result of a cancelled task", call("tasks/result", `{"taskId":"`+long.TaskID+`"}`), -32603, "cancelled")

	r = call("tasks/list", `{}`)
	var listed struct {
		Tasks []task `json:"tasks"`
	}
	if r.Error != nil || json.Unmarshal(r.Result, &listed) != nil || len(listed.Tasks) != 4 || listed.Tasks[0].TaskID != tk.TaskID {
		t.Errorf("tasks/list: %s %+v, want the 4 tasks, oldest first", r.Result, r.Error)
	}
	return tk.TaskID
}

// Issue 18, item 4: tasks where both sides support them. An agent calls a
// tool as a task through a real mediator and a real upstream process: the
// mediator answers with a task at once, runs the call through its chain,
// and answers tasks/get, tasks/result, tasks/list and tasks/cancel itself;
// a tool the upstream requires as a task is called as one. The task's id is
// its call's audit record id.
func TestE2ETasksOverStdio(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mediator.yaml")
	writeFile(t, cfg, fakeConfig(t, ""))
	db := filepath.Join(dir, "m.db")
	p := startStdioPeer(t, dir, binary(t), "stdio", "--config", cfg, "--db", db)
	id := exerciseTasks(t, p.call)
	_ = p.in.Close()
	_ = p.cmd.Wait()
	var call, get bool
	for _, r := range exportRecords(t, dir, db) {
		call = call || r.ID == id && r.Name == "fake__slow_task" && r.Outcome == mediator.OutcomeOK
		get = get || r.Method == "tasks/get" && r.Name == id
	}
	if !call || !get {
		t.Errorf("records: the task's call under its id %v, a tasks/get naming it %v", call, get)
	}
}

// tokenCall sends one request with a bearer token on session sid.
func tokenCall(t *testing.T, url, tok, sid string) taskPeer {
	id := 100
	return func(method, params string) rpcResponse {
		t.Helper()
		id++
		status, _, body := rawRequest(t, "POST", url, tok, sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params),
			map[string]string{"Mcp-Protocol-Version": "2025-11-25"})
		if r, ok := responseIn(body, id); ok {
			return r
		}
		t.Fatalf("%s: no response in HTTP %d body %q", method, status, body)
		return rpcResponse{}
	}
}

// tokenSession opens a session of protocol 2025-11-25 with tok.
func tokenSession(t *testing.T, url, tok string) string {
	t.Helper()
	status, hdr, body := rawRequest(t, "POST", url, tok, "",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`, nil)
	sid := hdr.Get("Mcp-Session-Id")
	if status != 200 || sid == "" || !strings.Contains(body, `"tasks":{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}`) {
		t.Fatalf("initialize over HTTP: %d %q, want a session and the tasks capability", status, body)
	}
	rawRequest(t, "POST", url, tok, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	return sid
}

// Over streamable HTTP: the same life cycle; a task belongs to the agent
// that created it (another agent's tasks/get, tasks/result and
// tasks/cancel find nothing, and are recorded as refused), also from
// another session of the owner; and a call that needs approval waits in
// its task, named in the status message, until an approver decides.
func TestE2ETasksOverHTTP(t *testing.T) {
	t.Parallel()
	p := startServe(t, policyFragment(t, "p, *, tool, fake__slow_task, approve, slow-needs-a-human, \"has(r.obj.Args, 'text') && r.obj.Args.text == 'pay'\"\n"+
		"p, *, tool, fake__*, allow, fake-all\n")+`
approvals: {hold: 1s}
upstreams:
  - name: fake
    command: `+buildTool(t, "tools/testdata/fakeupstream")+"\n")
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	ownerTok := mintCLI(t, p.Dir, "--agent", "owner", "--config", cfg)
	otherTok := mintCLI(t, p.Dir, "--agent", "other", "--config", cfg)
	owner := tokenCall(t, p.URL, ownerTok, tokenSession(t, p.URL, ownerTok))
	exerciseTasks(t, owner)

	tk := createdTask(t, owner("tools/call", `{"name":"fake__slow_task","arguments":{"text":"mine"},"task":{}}`))
	other := tokenCall(t, p.URL, otherTok, tokenSession(t, p.URL, otherTok))
	for _, m := range []string{"tasks/get", "tasks/result", "tasks/cancel"} {
		wantRPCError(t, "another agent's "+m, other(m, `{"taskId":"`+tk.TaskID+`"}`), -32602, "not found")
	}
	r := other("tasks/list", `{}`)
	if r.Error != nil || strings.Contains(string(r.Result), tk.TaskID) {
		t.Errorf("another agent's tasks/list: %s %+v", r.Result, r.Error)
	}
	again := tokenCall(t, p.URL, ownerTok, tokenSession(t, p.URL, ownerTok))
	if text, _, _ := taskResultOf(t, again("tasks/result", `{"taskId":"`+tk.TaskID+`"}`)); text != "done mine" {
		t.Errorf("the owner's result from another of its sessions: %q", text)
	}

	// A call that needs approval: the task waits, saying for which.
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "bob", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	held := createdTask(t, owner("tools/call", `{"name":"fake__slow_task","arguments":{"text":"pay"},"task":{}}`))
	var approval string
	waitFor(t, 10*time.Second, func() bool {
		tk := getTask(t, owner, held.TaskID)
		if tk.Status != "working" {
			t.Fatalf("a task waiting for approval: %+v", tk)
		}
		if _, rest, ok := strings.Cut(tk.StatusMessage, "waiting for approval "); ok {
			approval, _, _ = strings.Cut(rest, " ")
		}
		return approval != ""
	}, "the task's status message never named its approval")
	time.Sleep(1500 * time.Millisecond) // past the hold: the call is asked again
	if got := getTask(t, owner, held.TaskID); got.Status != "working" {
		t.Fatalf("a task past the approval hold: %+v, want still working", got)
	}
	b := newBrowser(t, p.Base)
	if code := b.login("bob", testPassword); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", code)
	}
	if code, body := decideForm(t, b, approval, url.Values{"decision": {"approve"}}); code != http.StatusSeeOther {
		t.Fatalf("approve %s: %d\n%s", approval, code, tail(body, 4<<10))
	}
	if text, isErr, _ := taskResultOf(t, owner("tasks/result", `{"taskId":"`+held.TaskID+`"}`)); text != "done pay" || isErr {
		t.Errorf("the approved task: %q isError %v", text, isErr)
	}

	refused := recordsOf(t, p, func(r mediator.ChainRecord) bool {
		return r.AgentID == "other" && strings.HasPrefix(r.Method, "tasks/") && r.Name == tk.TaskID && r.Outcome != mediator.OutcomeOK
	})
	if len(refused) != 3 {
		t.Errorf("another agent's tasks/* on the owner's task: %d refused records, want 3", len(refused))
	}
}
