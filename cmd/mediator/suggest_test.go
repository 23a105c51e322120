package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
)

func hints(readOnly, destructive, openWorld *bool) mediator.Hints {
	return mediator.Hints{ReadOnly: readOnly, Destructive: destructive, OpenWorld: openWorld}
}

func TestClassifyTool(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name    string
		tool    toolView
		listed  bool
		want    mediator.Effect
		suffix  string
		whyPart string
	}{
		{"read-only is allowed", toolView{Name: "s__get", Hints: hints(&yes, nil, nil), Risk: mediator.RiskLow}, false, mediator.EffectAllow, "read-only", "read-only: allowed"},
		{"read-only but high risk asks a human", toolView{Name: "s__dump", Hints: hints(&yes, nil, nil), Risk: mediator.RiskHigh}, false, mediator.EffectApprove, "review", "risk is high"},
		{"read-only with unknown risk asks a human", toolView{Name: "s__x", Hints: hints(&yes, nil, nil)}, false, mediator.EffectApprove, "review", "risk is unknown"},
		{"destructive asks a human", toolView{Name: "s__rm", Hints: hints(&no, &yes, nil), Risk: mediator.RiskHigh}, false, mediator.EffectApprove, "destructive", "destructive"},
		{"no hints asks a human", toolView{Name: "s__do", Risk: mediator.RiskMedium}, false, mediator.EffectApprove, "review", "possibly destructive"},
		{"read-only wins over destructive, as MCP reads them", toolView{Name: "s__odd", Hints: hints(&yes, &yes, nil), Risk: mediator.RiskLow}, false, mediator.EffectAllow, "read-only", "allowed"},
		{"open-world is denied", toolView{Name: "s__fetch", Hints: hints(&yes, nil, &yes), Risk: mediator.RiskLow}, false, mediator.EffectDeny, "egress", "--allow-egress s__fetch"},
		{"open-world listed goes by its other hints", toolView{Name: "s__fetch", Hints: hints(&yes, nil, &yes), Risk: mediator.RiskLow}, true, mediator.EffectAllow, "read-only", "listed with --allow-egress"},
		{"open-world listed and destructive asks a human", toolView{Name: "s__pay", Hints: hints(nil, &yes, &yes), Risk: mediator.RiskHigh}, true, mediator.EffectApprove, "destructive", "listed"},
		{"open-world false is not egress", toolView{Name: "s__get", Hints: hints(&yes, nil, &no), Risk: mediator.RiskLow}, false, mediator.EffectAllow, "read-only", "allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			effect, suffix, why := classifyTool(tt.tool, tt.listed)
			if effect != tt.want || suffix != tt.suffix || !strings.Contains(why, tt.whyPart) {
				t.Errorf("classifyTool = %s, %s, %q; want %s, %s, containing %q", effect, suffix, why, tt.want, tt.suffix, tt.whyPart)
			}
		})
	}
}

// A draft, appended to a policy, loads, and its cases pass on it: for
// tool names that need escaping in a glob, quoting in CSV, or shortening
// to a rule name, and for a name the policy already uses.
func TestDraftLoadsAndItsCasesPass(t *testing.T) {
	yes := true
	long := "s__" + strings.Repeat("very_long_tool_name_", 5)
	list := []toolView{
		{Name: "s__get", Server: "s", Hints: hints(&yes, nil, nil), Risk: mediator.RiskLow, DataClass: mediator.DataInternal},
		{Name: "s__rm", Server: "s", Hints: hints(nil, &yes, nil), Risk: mediator.RiskHigh},
		{Name: "s__fetch", Server: "s", Hints: hints(&yes, nil, &yes), Risk: mediator.RiskLow},
		{Name: "s__odd*[x]{a,b}?", Server: "s", Hints: hints(&yes, nil, nil), Risk: mediator.RiskLow},
		{Name: `s__quote"d, name`, Server: "s"},
		{Name: long + "a", Server: "s", Hints: hints(&yes, nil, nil), Risk: mediator.RiskLow},
		{Name: long + "b", Server: "s", Hints: hints(&yes, nil, nil), Risk: mediator.RiskLow},
		{Name: "s__bad\nname", Server: "s"},
	}
	base := "p, *, tool, other__*, allow, s__get-read-only\n"
	for _, subject := range []string{"*", "role:writer", "agent:bot-1"} {
		t.Run(subject, func(t *testing.T) {
			d := draftPolicy(list, draftOptions{Subject: subject, Taken: map[string]bool{"s__get-read-only": true}})
			if len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0], "control characters") {
				t.Fatalf("skipped: %q; want the name with a newline skipped", d.Skipped)
			}
			names := map[string]bool{}
			for _, r := range d.Rules {
				if names[r.Name] || len(r.Name) > ruleNameLen {
					t.Errorf("rule name %q repeated or too long", r.Name)
				}
				names[r.Name] = true
			}
			if !names["s__get-read-only-2"] {
				t.Errorf("rule names %v: want s__get-read-only-2 beside the policy's own s__get-read-only", names)
			}
			text := d.rulesText([]string{"header"})
			model, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "policy", "model.conf"))
			if err != nil {
				t.Fatal(err)
			}
			eng, err := policy.NewFromFiles(policy.Files{ModelPath: "model.conf", Model: model, PolicyPath: "policy.csv",
				Policy: []byte(base + text)})
			if err != nil {
				t.Fatalf("the draft does not load: %v\n%s", err, text)
			}
			cf, err := policy.ParseCases([]byte(d.casesText([]string{"cases"})), "cases.yaml")
			if err != nil {
				t.Fatalf("the cases do not parse: %v\n%s", err, d.casesText(nil))
			}
			results := eng.Test(cf)
			if len(results) != len(d.Rules)+1 { // one listing case for the one denial
				t.Errorf("%d cases for %d rules", len(results), len(d.Rules))
			}
			for _, r := range results {
				if !r.Pass {
					t.Errorf("%s", r.Summary())
				}
			}
		})
	}
}

func TestSuggestRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "cases.yaml")
	writeFile(t, existing, "keep me\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no upstream", []string{"policy", "suggest"}, "want --upstream NAME"},
		{"bad subject", []string{"policy", "suggest", "--upstream", "demo", "--subject", "user:x"}, "want *, role:NAME or agent:ID"},
		{"subject with a comma", []string{"policy", "suggest", "--upstream", "demo", "--subject", "role:a,b"}, "want *, role:NAME or agent:ID"},
		{"cases file exists", []string{"policy", "suggest", "--upstream", "demo", "--cases", existing}, "exists; pass another path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v: %v; want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me\n" {
		t.Fatalf("the existing cases file was changed: %q", b)
	}
}
