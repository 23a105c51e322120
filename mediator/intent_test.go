package mediator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// fakeIntent is an IntentChecker and IntentDeclarer with scripted answers.
type fakeIntent struct {
	check    func(r IntentRequest) (Intent, error)
	declared []Declaration
	declErr  error
	complete int
}

func (f *fakeIntent) Check(_ context.Context, r IntentRequest) (Intent, error) { return f.check(r) }

func (f *fakeIntent) Declare(_ context.Context, d Declaration) (Task, error) {
	if f.declErr != nil {
		return Task{}, f.declErr
	}
	f.declared = append(f.declared, d)
	return Task{ID: "task-d1", AgentID: d.Agent.ID, Purpose: d.Purpose, Status: TaskActive,
		Source: TaskSourceDeclared, Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, nil
}

func (f *fakeIntent) CompleteTask(_ context.Context, a *Agent, s SessionInfo, reason string) (Task, error) {
	f.complete++
	return Task{ID: "task-d1", AgentID: a.ID, Status: TaskCompleted, Source: TaskSourceDeclared}, nil
}

func TestTighten(t *testing.T) {
	t.Parallel()
	allow := Decision{Effect: EffectAllow, Rule: "echo"}
	tests := []struct {
		name string
		d    Decision
		j    *JudgeResult
		want Effect
		rule string
	}{
		{"no judge", allow, nil, EffectAllow, "echo"},
		{"judge agrees", allow, &JudgeResult{Score: 0.9, Effect: EffectAllow}, EffectAllow, "echo"},
		{"judge objects", allow, &JudgeResult{Score: 0.1, Effect: EffectApprove, Rationale: "unrelated"}, EffectApprove, "intent.judge"},
		{"judge cannot loosen a deny", Decision{Effect: EffectDeny, Rule: "x"}, &JudgeResult{Score: 1, Effect: EffectAllow}, EffectDeny, "x"},
		{"judge cannot loosen an approve", Decision{Effect: EffectApprove, Rule: "x"}, &JudgeResult{Score: 1, Effect: EffectAllow}, EffectApprove, "x"},
		{"fallback deny tightens approve", Decision{Effect: EffectApprove, Rule: "x"}, &JudgeResult{Effect: EffectDeny, Fallback: "timeout"}, EffectDeny, "intent.judge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tighten(tc.d, tc.j)
			if got.Effect != tc.want || got.Rule != tc.rule {
				t.Fatalf("tighten = %+v; want %s by %s", got, tc.want, tc.rule)
			}
			if tc.rule == "intent.judge" && !strings.Contains(got.Reason, "policy said") {
				t.Fatalf("reason %q does not say what policy decided", got.Reason)
			}
		})
	}
}

func TestChainIntent(t *testing.T) {
	t.Parallel()
	suspended := &DenyError{Decision: Decision{Effect: EffectDeny, Rule: "intent.suspended", Reason: "task t is suspended"}}
	tests := []struct {
		name    string
		check   func(IntentRequest) (Intent, error)
		outcome Outcome
		rule    string
		effect  Effect
	}{
		{"in scope, allowed", func(IntentRequest) (Intent, error) { return Intent{Verdict: IntentInScope, TaskID: "t1"}, nil },
			OutcomeOK, "echo", EffectAllow},
		{"suspension denies with its own rule", func(IntentRequest) (Intent, error) {
			return Intent{Verdict: IntentOutOfScope, TaskID: "t1"}, suspended
		}, OutcomeDenied, "intent.suspended", EffectDeny},
		{"a failing check fails closed", func(IntentRequest) (Intent, error) { return Intent{}, errors.New("db gone") },
			OutcomeDenied, "", EffectDeny},
		{"the judge turns allow into approve", func(IntentRequest) (Intent, error) {
			return Intent{Verdict: IntentInScope, TaskID: "t1", Judge: &JudgeResult{Score: 0.1, Effect: EffectApprove}}, nil
		}, OutcomeDenied, "intent.judge", EffectApprove},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &fakeRecorder{}
			d := newTestDeps(rec, &fakeUpstreams{cat: testCatalog(), callTool: echoResult})
			d.Intent = &fakeIntent{check: tc.check}
			err := BuildChain(d)(t.Context(), toolCall("demo__echo", map[string]any{"message": "x"}))
			r := rec.all()[0]
			if r.Outcome != tc.outcome || r.Decision.Rule != tc.rule || r.Decision.Effect != tc.effect {
				t.Fatalf("record outcome %s rule %q effect %s (err %v)", r.Outcome, r.Decision.Rule, r.Decision.Effect, err)
			}
			if tc.outcome == OutcomeOK && r.TaskID != "t1" {
				t.Fatalf("record task %q; want the intent's task t1", r.TaskID)
			}
		})
	}
}

func TestBuiltinTools(t *testing.T) {
	t.Parallel()
	rec := &fakeRecorder{}
	up := &fakeUpstreams{cat: testCatalog(), callTool: echoResult}
	fi := &fakeIntent{check: func(IntentRequest) (Intent, error) { return Intent{Verdict: IntentNone}, nil }}
	d := newTestDeps(rec, up)
	d.Intent, d.Declarer = fi, fi
	d.Caps.PromptBytes = 32
	srv, err := NewServer(d)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", srv.HTTPHandler("/mcp"))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	ts := &testServer{url: hs.URL + "/mcp", rec: rec, up: up}
	c := ts.client(t)

	lt, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range lt.Tools {
		names[tl.Name] = true
	}
	if !names[ToolDeclareIntent] || !names[ToolCompleteTask] {
		t.Fatalf("the mediator's own tools are not listed: %v", names)
	}

	call := func(name string, args map[string]any, meta map[string]any) *mcp.CallToolResult {
		t.Helper()
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		if meta != nil {
			req.Params.Meta = mcp.NewMetaFromMap(meta)
		}
		res, err := c.CallTool(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	long := strings.Repeat("é", 100)
	res := call(ToolDeclareIntent, map[string]any{"purpose": "summarise Q3 churn",
		"scope": map[string]any{"tools": []any{"demo__*"}, "max_risk": "low"}},
		map[string]any{PromptMetaKey: map[string]any{"text": long, "reasoning": "the user asked"}})
	if res.IsError {
		t.Fatalf("declare_intent failed: %+v", res)
	}
	if len(fi.declared) != 1 || fi.declared[0].Scope == nil || fi.declared[0].Scope.MaxRisk != RiskLow ||
		fi.declared[0].Purpose != "summarise Q3 churn" {
		t.Fatalf("declaration %+v", fi.declared)
	}
	recs := ts.recordsFor("tools/call")
	r := recs[len(recs)-1]
	if r.Name != ToolDeclareIntent || r.Server != BuiltinServer || r.TaskID != "task-d1" || r.Outcome != OutcomeOK ||
		!r.PromptTruncated || r.Reasoning != "the user asked" || !strings.HasSuffix(r.Prompt, "…[truncated]") {
		t.Fatalf("declare_intent record %+v", r)
	}

	bad := []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, "needs a purpose"},
		{map[string]any{"purpose": "x", "scope": map[string]any{"tools": []any{"a"}, "paths": 1}}, "unknown field"},
		{map[string]any{"purpose": "x", "ttl": "forever"}, "positive Go duration"},
		{map[string]any{"purpose": "x", "extra": true}, "no argument"},
		{map[string]any{"purpose": strings.Repeat("x", 5000)}, "limit"},
	}
	for _, b := range bad {
		res := call(ToolDeclareIntent, b.args, nil)
		txt := res.Content[0].(mcp.TextContent).Text
		if !res.IsError || !strings.Contains(txt, b.want) {
			t.Fatalf("declare_intent %v: %v %q; want an error with %q", b.args, res.IsError, txt, b.want)
		}
	}
	fi.declErr = fmt.Errorf("%w: would widen", ErrInvalidRequest)
	if res := call(ToolDeclareIntent, map[string]any{"purpose": "x"}, nil); !res.IsError {
		t.Fatal("a refused declaration returned success")
	}
	if res := call(ToolCompleteTask, map[string]any{"summary": "done"}, nil); res.IsError || fi.complete != 1 {
		t.Fatalf("complete_task: %+v", res)
	}
	recs = ts.recordsFor("tools/call")
	if got := recs[len(recs)-1]; got.Name != ToolCompleteTask || got.Outcome != OutcomeOK {
		t.Fatalf("complete_task record %+v", got)
	}
	denied := 0
	for _, r := range recs {
		if r.Outcome == OutcomeDenied {
			denied++
		}
	}
	if denied != len(bad)+1 {
		t.Fatalf("%d refused declarations recorded; want %d", denied, len(bad)+1)
	}
}
