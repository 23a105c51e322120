package intent

import (
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

// benchCheckScope is a scope with 3 tool globs and 10 constraints of every kind,
// and a call with 10 arguments that are all in scope.
func benchCheckScope(tb testing.TB) (*Compiled, mediator.Tool, map[string]any) {
	tb.Helper()
	s := mediator.Scope{
		Tools: []string{"files__read_*", "files__list_*", "web__fetch"},
		Constraints: []mediator.Constraint{
			{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/reports", "/srv/data"}},
			{Arg: "dest", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/out"}},
			{Arg: "pattern", Kind: mediator.ConstraintGlob, Values: []string{"/srv/**/*.csv"}},
			{Arg: "template", Kind: mediator.ConstraintGlob, Values: []string{"/srv/templates/*.tmpl", "/srv/shared/**"}},
			{Arg: "url", Kind: mediator.ConstraintHost, Values: []string{"api.example.com", "*.example.org"}},
			{Arg: "callback", Kind: mediator.ConstraintHost, Values: []string{"hooks.example.com"}},
			{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(1000)},
			{Arg: "limit", Kind: mediator.ConstraintMax, Max: maxPtr(100)},
			{Arg: "format", Kind: mediator.ConstraintEnum, Values: []string{"csv", "json", "xml"}},
			{Arg: "mode", Kind: mediator.ConstraintEnum, Values: []string{"fast", "full"}},
		},
		MaxDataClass: mediator.DataConfidential,
		MaxRisk:      mediator.RiskMedium,
	}
	c, err := Compile(s)
	if err != nil {
		tb.Fatal(err)
	}
	tool := mediator.Tool{Name: "files__read_file", Risk: mediator.RiskLow, DataClass: mediator.DataInternal}
	args := map[string]any{
		"path":     "/srv/reports/2024/q1.csv",
		"dest":     "/srv/out/q1-summary.csv",
		"pattern":  "/srv/data/2024/q1/sales.csv",
		"template": "/srv/templates/report.tmpl",
		"url":      "https://api.example.com/v1/reports?year=2024",
		"callback": "https://hooks.example.com/done",
		"amount":   250.0,
		"limit":    50.0,
		"format":   "csv",
		"mode":     "full",
	}
	return c, tool, args
}

func BenchmarkCheck10Constraints(b *testing.B) {
	c, tool, args := benchCheckScope(b)
	if r := c.Check(tool, args); r != nil {
		b.Fatalf("out of scope: %q", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		if c.Check(tool, args) != nil {
			b.Fatal("out of scope")
		}
	}
}
