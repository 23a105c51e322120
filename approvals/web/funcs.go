package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/approvals"
	"github.com/mcp-mediator/mediator/mediator"
)

func parseTemplates() (*template.Template, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"ago":        ago,
		"until":      until,
		"clock":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"pretty":     pretty,
		"short":      short,
		"riskName":   riskName,
		"dataName":   dataName,
		"stateOf":    func(s mediator.ApprovalState) string { return string(s) },
		"approved":   approvedCount,
		"withheld":   func(a mediator.Approval) []approvals.WithheldValue { return approvals.Withheld(a.Arguments) },
		"constraint": constraintText,
		"decisionOf": decisionOf,
		"inc":        func(n int) int { return n + 1 },
		"sourceName": func(s string) string {
			return map[string]string{mediator.TaskSourceDeclared: "declared in-band by the agent",
				mediator.TaskSourceAdmin: "started by an administrator"}[s]
		},
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("approvals web: templates: %w", err)
	}
	return t, nil
}

// ago renders how long ago t was, compactly.
func ago(t time.Time) string { return compact(time.Since(t)) + " ago" }

// until renders how long until t ("expired" when past).
func until(t time.Time) string {
	d := time.Until(t)
	if d <= 0 {
		return "expired"
	}
	return "in " + compact(d)
}

func compact(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// pretty indents JSON for reading; html/template escapes the result.
func pretty(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(none)"
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// short cuts s to n runes.
func short(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func riskName(r mediator.Risk) string {
	if r == mediator.RiskUnknown {
		return "unknown"
	}
	return string(r)
}

func dataName(d mediator.DataClass) string {
	if d == mediator.DataUnknown {
		return "unknown"
	}
	return strings.ToUpper(string(d[:1])) + string(d[1:])
}

func approvedCount(a mediator.Approval) int {
	n := 0
	for _, d := range a.Decisions {
		if d.Approve {
			n++
		}
	}
	return n
}

// constraintText says a scope constraint in words.
func constraintText(c mediator.Constraint) string {
	vals := strings.Join(c.Values, ", ")
	num := func(p *float64) string {
		if p == nil {
			return "?"
		}
		return strconv.FormatFloat(*p, 'f', -1, 64)
	}
	switch c.Kind {
	case mediator.ConstraintPrefix:
		return c.Arg + " lies under " + vals
	case mediator.ConstraintGlob:
		return c.Arg + " matches " + vals
	case mediator.ConstraintHost:
		return "the host of " + c.Arg + " is " + vals
	case mediator.ConstraintMax:
		return c.Arg + " is at most " + num(c.Max)
	case mediator.ConstraintMin:
		return c.Arg + " is at least " + num(c.Min)
	case mediator.ConstraintEnum:
		return c.Arg + " is one of " + vals
	}
	return c.Arg + " " + string(c.Kind) + " " + vals
}

// recordDecision is how a chain record of an approval decision reads on
// the session page (nil for other records): "approval apr_… of
// demo__write_file approved by alice", not the tool call it is about.
type recordDecision struct {
	ApprovalID, State, Tool, Reason string
}

func decisionOf(r mediator.ChainRecord) *recordDecision {
	if !strings.HasPrefix(r.Method, "approvals/") {
		return nil
	}
	var args struct {
		ID    string `json:"approval_id"`
		State string `json:"state"`
	}
	_ = json.Unmarshal(r.Arguments, &args)
	d := &recordDecision{ApprovalID: args.ID, State: args.State, Tool: r.Name, Reason: r.Decision.Reason}
	if d.State == "" || r.Method == "approvals/decide" && r.Decision.Rule == "approvals.refused" {
		d.State = "refused"
	}
	return d
}
