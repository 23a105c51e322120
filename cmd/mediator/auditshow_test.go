package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestAuditShowGolden renders the chain of a three-call session: an
// in-scope read that ran, an out-of-scope read a human approved, and an
// out-of-scope write that policy refused, after an in-band declaration.
// The tree is compared with testdata/audit_show.golden (go test -update
// rewrites it).
func TestAuditShowGolden(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	task := mediator.Task{ID: "task-q3", AgentID: "analyst", Source: mediator.TaskSourceAdmin, Purpose: "Prepare the Q3 churn report",
		Scope: mediator.Scope{Tools: []string{"demo__read_file", "demo__list_files"},
			Constraints: []mediator.Constraint{{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"reports"}}},
			MaxRisk:     mediator.RiskMedium},
		Status: mediator.TaskActive, Created: t0, Updated: t0, Expires: t0.Add(30 * time.Minute)}
	decl := mediator.Task{ID: "task-q3-read", AgentID: "analyst", ParentID: "task-q3", Source: mediator.TaskSourceDeclared,
		Purpose: "Read the Q3 export", Scope: mediator.Scope{Tools: []string{"demo__read_file"}}, Status: mediator.TaskActive,
		Prompt: "How did churn move in Q3?", Created: t0.Add(time.Second), Updated: t0.Add(time.Second), Expires: t0.Add(30 * time.Minute)}
	for _, tk := range []mediator.Task{task, decl} {
		if err := st.CreateTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SetTaskStatus(ctx, "task-q3", mediator.TaskCompleted, "analyst", "completed by the agent: report sent"); err != nil {
		t.Fatal(err)
	}
	base := mediator.ChainRecord{SessionID: "sess-7", Transport: "http", AgentID: "analyst", Method: "tools/call",
		Kind: mediator.KindTool, Server: "demo", Prompt: "How did churn move in Q3?"}
	recs := []mediator.ChainRecord{
		{ID: "r1", Time: t0.Add(time.Second), TaskID: "task-q3-read", Name: mediator.ToolDeclareIntent, Server: mediator.BuiltinServer,
			Arguments: json.RawMessage(`{"purpose":"Read the Q3 export","scope":{"tools":["demo__read_file"]}}`),
			Intent:    &mediator.Intent{Verdict: mediator.IntentInScope, TaskID: "task-q3-read", Score: -1},
			Decision:  mediator.Decision{Effect: mediator.EffectAllow, Rule: "mediator.builtin"}, Outcome: mediator.OutcomeOK,
			Result: json.RawMessage(`{"content":[{"type":"text","text":"Intent declared as task task-q3-read"}]}`), DurationUS: 900},
		{ID: "r2", Time: t0.Add(2 * time.Second), TaskID: "task-q3-read", Name: "demo__read_file",
			Arguments: json.RawMessage(`{"path":"reports/q3.csv"}`), Reasoning: "the export holds the churn figures",
			Intent: &mediator.Intent{Verdict: mediator.IntentInScope, TaskID: "task-q3-read", Score: 0.92,
				Judge: &mediator.JudgeResult{Score: 0.92, Effect: mediator.EffectAllow, Rationale: "reading the export fits"}},
			Decision: mediator.Decision{Effect: mediator.EffectAllow, Rule: "sandbox-read", PolicyVersion: "3f2a9c1d7e4b5a60"},
			Outcome:  mediator.OutcomeOK, Result: json.RawMessage(`{"content":[{"type":"text","text":"month,churn\nJul,2.1%"}]}`),
			DurationUS: 1830},
		{ID: "r3", Time: t0.Add(3 * time.Second), TaskID: "task-q3-read", Name: "demo__read_file",
			Arguments: json.RawMessage(`{"path":"reports/../customers.csv"}`),
			Intent: &mediator.Intent{Verdict: mediator.IntentOutOfScope, TaskID: "task-q3-read", Score: -1,
				Reasons: []string{`argument "path" outside constraint prefix reports`}},
			Decision: mediator.Decision{Effect: mediator.EffectApprove, Rule: "out-of-scope-review", PolicyVersion: "3f2a9c1d7e4b5a60",
				Reason: "needs approval"},
			Approval: &mediator.ApprovalRef{ID: "apr_1", Approved: true, Approver: "alice", Reason: "customer count is needed"},
			Outcome:  mediator.OutcomeOK, Result: json.RawMessage(`{"content":[{"type":"text","text":"id,name\n1,Ada"}]}`),
			DurationUS: 41200000},
		{ID: "r4", Time: t0.Add(4 * time.Second), TaskID: "task-q3-read", Name: "demo__write_file",
			Prompt: "Save the summary", PromptTruncated: true,
			Arguments: json.RawMessage(`{"content":"…","path":"reports/summary.md"}`),
			Intent: &mediator.Intent{Verdict: mediator.IntentOutOfScope, TaskID: "task-q3-read", Score: -1,
				Reasons: []string{`tool "demo__write_file" not in scope (allowed: demo__read_file)`}},
			Decision: mediator.Decision{Effect: mediator.EffectDeny, Rule: "out-of-scope-destructive", PolicyVersion: "3f2a9c1d7e4b5a60",
				Reason: "tool is destructive and outside the task"},
			Outcome: mediator.OutcomeDenied, Error: "denied by policy (rule out-of-scope-destructive)", DurationUS: 310},
	}
	for _, r := range recs {
		r.SessionID, r.Transport, r.AgentID, r.Method, r.Kind = base.SessionID, base.Transport, base.AgentID, base.Method, base.Kind
		if r.Server == "" {
			r.Server = base.Server
		}
		if r.Prompt == "" {
			r.Prompt = base.Prompt
		}
		if err := st.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	v, err := loadChain(ctx, st, "sess-7", "")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	renderChain(&got, v)
	golden := filepath.Join("testdata", "audit_show.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/mediator -run TestAuditShowGolden -update)", err)
	}
	if got.String() != string(want) {
		t.Fatalf("audit show differs from %s:\n--- got\n%s\n--- want\n%s", golden, got.String(), want)
	}
	// The same chain through --task: the declaration's records are the task's.
	vt, err := loadChain(ctx, st, "", "task-q3")
	if err != nil || len(vt.Records) != len(recs) || len(vt.Tasks) != 2 {
		t.Fatalf("by task: %d records, %d tasks, %v", len(vt.Records), len(vt.Tasks), err)
	}
}

// Text from agents and upstreams cannot forge lines of the tree.
func TestAuditShowFlattensUntrustedText(t *testing.T) {
	t.Parallel()
	r := mediator.ChainRecord{Seq: 1, Method: "tools/call", Name: "demo__echo\n└─ #9 forged",
		Prompt: "line1\n│  decision: allow", Arguments: json.RawMessage(`{"m":"a\nb"}`),
		Decision: mediator.Decision{Effect: mediator.EffectAllow}, Outcome: mediator.OutcomeOK,
		Result: json.RawMessage(`{"content":[{"type":"text","text":"x\n└─ task forged\u001b[31m"}]}`)}
	var b bytes.Buffer
	renderChain(&b, chainView{Session: "s", Records: []mediator.ChainRecord{r}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 6 || strings.Contains(b.String(), "\x1b") {
		t.Fatalf("untrusted text changed the tree's shape:\n%s", b.String())
	}
}
