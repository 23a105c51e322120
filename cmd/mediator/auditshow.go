package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/behaviour"
	"github.com/mcp-mediator/mediator/store"
)

// chainView is what `audit show` prints: the records of one session or
// task with the tasks they were checked against.
type chainView struct {
	Session string                 `json:"session,omitempty"`
	Task    string                 `json:"task,omitempty"`
	Tasks   []mediator.Task        `json:"tasks"`
	Records []mediator.ChainRecord `json:"records"`
}

// showLimit bounds the records `audit show` reads.
const showLimit = 10000

func auditShow(ctx context.Context, args []string, e env) error {
	fs := newFlags("audit show", "audit show (--session ID | --task ID) [--json] [--db FILE] [--config FILE]", e.stderr)
	var cf commonFlags
	cf.register(fs)
	session := fs.String("session", "", "the session id (an MCP session id, or stdio-… for a stdio process)")
	task := fs.String("task", "", "a task id: every record checked against it")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*session == "") == (*task == "") {
		return &exitError{code: 2, err: errors.New("audit show: name exactly one of --session ID or --task ID (ids are in `mediator audit export` and `mediator task list`)")}
	}
	cfg, err := cf.load(e)
	if err != nil {
		return err
	}
	st, err := openExisting(ctx, cfg)
	if err != nil {
		return fmt.Errorf("audit show: %w", err)
	}
	defer st.Close()
	v, err := loadChain(ctx, st, *session, *task)
	if err != nil {
		return fmt.Errorf("audit show: %w", err)
	}
	if len(v.Records) == 0 {
		what := "session " + *session
		if *task != "" {
			what = "task " + *task
		}
		return fmt.Errorf("audit show: no records for %s", what)
	}
	if *asJSON {
		return printJSON(e.stdout, v)
	}
	renderChain(e.stdout, v)
	return nil
}

// loadChain reads the records of a session or task and every task they
// name (with the tasks those narrow).
func loadChain(ctx context.Context, st *store.Store, session, task string) (chainView, error) {
	v := chainView{Session: session, Task: task}
	var err error
	if session != "" {
		v.Records, err = st.SessionRecords(ctx, session, showLimit)
	} else {
		v.Records, err = taskRecords(ctx, st, task)
	}
	if err != nil {
		return v, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, r := range v.Records {
		if r.TaskID != "" && !seen[r.TaskID] {
			seen[r.TaskID] = true
			ids = append(ids, r.TaskID)
		}
	}
	if task != "" && !seen[task] {
		ids = append(ids, task)
		seen[task] = true
	}
	for i := 0; i < len(ids); i++ {
		t, ok, err := st.Task(ctx, ids[i])
		if err != nil {
			return v, err
		}
		if !ok {
			continue
		}
		v.Tasks = append(v.Tasks, t)
		if t.ParentID != "" && !seen[t.ParentID] {
			seen[t.ParentID] = true
			ids = append(ids, t.ParentID)
		}
	}
	if v.Tasks == nil {
		v.Tasks = []mediator.Task{}
	}
	return v, nil
}

// renderChain prints v as a tree: the session, then each task in the order
// its first record appeared, with its calls; each call with its prompt,
// intent verdict, decision, approval and outcome. Text from agents and
// upstreams is flattened to one line and cut, so that it cannot forge
// lines of the tree.
func renderChain(w io.Writer, v chainView) {
	tasks := map[string]mediator.Task{}
	for _, t := range v.Tasks {
		tasks[t.ID] = t
	}
	var order []string
	byTask := map[string][]mediator.ChainRecord{}
	completed := map[string]bool{}
	for _, r := range v.Records {
		if r.Ref != "" {
			completed[r.Ref] = true
		}
	}
	for _, r := range v.Records {
		if r.Outcome == mediator.OutcomeForwarding && completed[r.ID] {
			continue // its outcome record below says it all
		}
		if _, ok := byTask[r.TaskID]; !ok {
			order = append(order, r.TaskID)
		}
		byTask[r.TaskID] = append(byTask[r.TaskID], r)
	}
	first := v.Records[0]
	if v.Session != "" {
		fmt.Fprintf(w, "session %s (%s) agent %s, %d records from %s to %s\n", v.Session, first.Transport, oneLine(first.AgentID, 80),
			len(v.Records), stamp(first.Time), stamp(v.Records[len(v.Records)-1].Time))
	} else {
		fmt.Fprintf(w, "task %s, %d records from %s to %s\n", v.Task, len(v.Records), stamp(first.Time),
			stamp(v.Records[len(v.Records)-1].Time))
	}
	for i, id := range order {
		last := i == len(order)-1
		branch, indent := "├─ ", "│  "
		if last {
			branch, indent = "└─ ", "   "
		}
		if id == "" {
			fmt.Fprintf(w, "%sno task: calls made before any intent was declared\n", branch)
		} else if t, ok := tasks[id]; ok {
			fmt.Fprintf(w, "%stask %s [%s, %s] %q\n", branch, t.ID, t.Source, t.Status, oneLine(t.Purpose, 160))
			fmt.Fprintf(w, "%s   scope: %s; expires %s\n", indent, describeScope(t.Scope), stamp(t.Expires))
			if t.ParentID != "" {
				if p, ok := tasks[t.ParentID]; ok {
					fmt.Fprintf(w, "%s   narrows task %s [%s, %s] %q\n", indent, p.ID, p.Source, p.Status, oneLine(p.Purpose, 120))
				} else {
					fmt.Fprintf(w, "%s   narrows task %s\n", indent, t.ParentID)
				}
			}
			if t.Status != mediator.TaskActive && t.StatusReason != "" {
				fmt.Fprintf(w, "%s   %s: %s\n", indent, t.Status, oneLine(t.StatusReason, 200))
			}
		} else {
			fmt.Fprintf(w, "%stask %s (not registered)\n", branch, id)
		}
		recs := byTask[id]
		for j, r := range recs {
			rb, ri := "├─ ", "│  "
			if j == len(recs)-1 {
				rb, ri = "└─ ", "   "
			}
			renderRecord(w, indent+rb, indent+ri, r)
		}
	}
}

func renderRecord(w io.Writer, head, pad string, r mediator.ChainRecord) {
	what := r.Method
	if r.Name != "" {
		what += " " + oneLine(r.Name, 120)
	}
	args := ""
	if len(r.Arguments) > 0 && string(r.Arguments) != "null" {
		args = " " + oneLine(string(r.Arguments), 200)
	}
	fmt.Fprintf(w, "%s#%d %s %s%s\n", head, r.Seq, stamp(r.Time), what, args)
	if r.Prompt != "" {
		line := "prompt: " + quoteLine(r.Prompt, 200)
		if r.PromptTruncated {
			line += " (truncated)"
		}
		fmt.Fprintf(w, "%s  %s\n", pad, line)
	}
	if r.Reasoning != "" {
		fmt.Fprintf(w, "%s  reasoning: %s\n", pad, quoteLine(r.Reasoning, 200))
	}
	if in := r.Intent; in != nil {
		line := "intent: " + string(in.Verdict)
		if len(in.Reasons) > 0 {
			line += " (" + oneLine(strings.Join(in.Reasons, "; "), 300) + ")"
		}
		if j := in.Judge; j != nil {
			line += fmt.Sprintf("; judge %.2f → %s", j.Score, j.Effect)
			if j.Fallback != "" {
				line += " (fallback: " + oneLine(j.Fallback, 80) + ")"
			} else if j.Rationale != "" {
				line += ": " + quoteLine(j.Rationale, 160)
			}
			if j.Cached {
				line += " [cached]"
			}
		}
		fmt.Fprintf(w, "%s  %s\n", pad, line)
	}
	if b := r.Behaviour; b != nil && r.Method != behaviour.TrustChangeMethod {
		line := fmt.Sprintf("behaviour: score %.2f, trust %s", b.Score, b.Trust)
		if b.Learning {
			line += " (baseline learning)"
		}
		if len(b.Reasons) > 0 {
			line += ": " + oneLine(strings.Join(b.Reasons, "; "), 300)
		}
		if b.TrustReason != "" {
			line += " [trust: " + oneLine(b.TrustReason, 160) + "]"
		}
		fmt.Fprintf(w, "%s  %s\n", pad, line)
	}
	d := r.Decision
	line := "decision: " + string(d.Effect)
	var bits []string
	if d.Rule != "" {
		bits = append(bits, "rule "+d.Rule)
	}
	if d.PolicyVersion != "" {
		bits = append(bits, "policy "+short(d.PolicyVersion))
	}
	if d.Shadow {
		bits = append(bits, "shadow: not enforced")
	}
	if len(bits) > 0 {
		line += " (" + strings.Join(bits, ", ") + ")"
	}
	if d.Reason != "" && (d.Effect != mediator.EffectAllow || strings.HasPrefix(r.Method, "mediator/")) {
		line += ": " + oneLine(d.Reason, 200)
	}
	fmt.Fprintf(w, "%s  %s\n", pad, line)
	if a := r.Approval; a != nil {
		verdict := "denied"
		if a.Approved {
			verdict = "approved"
		}
		line := fmt.Sprintf("approval %s: %s by %s", a.ID, verdict, oneLine(a.Approver, 80))
		if a.Reason != "" {
			line += ": " + quoteLine(a.Reason, 160)
		}
		fmt.Fprintf(w, "%s  %s\n", pad, line)
	}
	out := fmt.Sprintf("outcome: %s in %s", r.Outcome, (time.Duration(r.DurationUS) * time.Microsecond).String())
	switch {
	case r.Outcome == mediator.OutcomeForwarding:
		out = "outcome unknown: recorded as forwarded, and no outcome recorded yet (the mediator stopped in between, " +
			"or the call still runs); the upstream may have executed it"
	case r.Error != "":
		out += ": " + oneLine(r.Error, 200)
	case len(r.Result) > 0 && string(r.Result) != "null":
		out += " → " + chainResultText(r.Result, 200)
	}
	if r.Truncated {
		out += " (record truncated)"
	}
	fmt.Fprintf(w, "%s  %s\n", pad, out)
}

// chainResultText shows a tool result by its text content when it has some.
func chainResultText(raw json.RawMessage, n int) string {
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if json.Unmarshal(raw, &res) == nil && len(res.Content) > 0 {
		var parts []string
		for _, c := range res.Content {
			if c.Type == "text" {
				parts = append(parts, c.Text)
			} else {
				parts = append(parts, "["+c.Type+"]")
			}
		}
		return quoteLine(strings.Join(parts, " "), n)
	}
	return oneLine(string(raw), n)
}

// quoteLine is s flattened, cut and quoted.
func quoteLine(s string, n int) string { return fmt.Sprintf("%q", oneLine(s, n)) }

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// taskRecords reads the records of a task and of the in-band declarations
// that narrowed it, in chain order.
func taskRecords(ctx context.Context, st *store.Store, task string) ([]mediator.ChainRecord, error) {
	recs, err := st.TaskRecords(ctx, task, showLimit)
	if err != nil {
		return nil, err
	}
	decls, err := st.Tasks(ctx, mediator.TaskFilter{ParentID: task, Limit: store.MaxTaskLimit})
	if err != nil {
		return nil, err
	}
	for _, d := range decls {
		more, err := st.TaskRecords(ctx, d.ID, showLimit)
		if err != nil {
			return nil, err
		}
		recs = append(recs, more...)
	}
	slices.SortFunc(recs, func(a, b mediator.ChainRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	return recs, nil
}
