package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/approvals"
	"github.com/mcp-mediator/mediator/mediator"
)

func parseTemplates() (*template.Template, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"ago":      ago,
		"until":    until,
		"clock":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"pretty":   pretty,
		"short":    short,
		"riskName": riskName,
		"dataName": dataName,
		"stateOf":  func(s mediator.ApprovalState) string { return string(s) },
		"approved": approvedCount,
		"withheld": func(a mediator.Approval) []approvals.WithheldValue { return approvals.Withheld(a.Arguments) },
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
