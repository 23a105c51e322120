package policy

import (
	"os"
	"strings"
	"testing"
)

func TestWords(t *testing.T) {
	cases := []struct{ cond, want string }{
		{"r.env.Alert >= elevated", "the alert level is elevated or higher"},
		{"r.intent.OutOfScope", "the call is outside its declared intent"},
		{"!r.obj.ReadOnly", "the tool is not marked read-only"},
		{"r.sub.Trust <= low && !r.obj.ReadOnly", "the agent's trust is low or lower and the tool is not marked read-only"},
		{"r.obj.Args.amount > 1000 || r.env.Alert >= elevated", "argument amount is more than 1000 or the alert level is elevated or higher"},
		{"!('support' in r.sub.Roles || 'marketing' in r.sub.Roles)", "the agent does not have the role support and the agent does not have the role marketing"},
		{"!(hostOf(r.obj.Args.url) in ('example.com', 'www.example.com'))", "the host of argument url is none of 'example.com', 'www.example.com'"},
		{"r.obj.DataClass >= confidential && !r.env.BusinessHours", "the data class is confidential or higher and it is outside business hours"},
		{"!(r.sub.Confidence >= 0.95 && r.env.BusinessHours)", "the agent's confidence is less than 0.95 or it is outside business hours"},
		{"r.obj.DataClass == internal && !(r.sub.Confidence >= 0.95 && r.env.BusinessHours)",
			"the data class is internal and (the agent's confidence is less than 0.95 or it is outside business hours)"},
		{"pathUnder(r.obj.Args.path, 'secrets')", "argument path is inside 'secrets'"},
		{"has(r.obj.Args, 'path') && pathUnder(r.obj.Args.path, 'secrets')", "the call gives argument path and argument path is inside 'secrets'"},
		{"r.obj.Name =~ '^demo'", "the tool's name matches the pattern '^demo'"},
		{"r.env.Network == 'public' && r.obj.Destructive", "the agent's network is 'public' and the tool is marked destructive"},
		{"r.intent.Verdict == 'no_intent' && r.obj.Risk >= high", "the intent check's verdict is 'no_intent' and the tool's risk is high or higher"},
		{"", ""},
		{"r.obj.Args", ""},           // a map is not a statement
		{"r.obj.Args.x +", ""},       // does not parse
		{"r.obj.Args.x + 1 > 2", ""}, // arithmetic is not said
	}
	for _, c := range cases {
		if got := Words(c.cond); got != c.want {
			t.Errorf("Words(%q)\n got %q\nwant %q", c.cond, got, c.want)
		}
	}
}

// TestWordsExamplePolicy: every condition of the shipped policy can be said.
func TestWordsExamplePolicy(t *testing.T) {
	f, err := os.Open("../examples/policy/policy.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules, err := ParseRules(f, "policy.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Cond == "" {
			continue
		}
		w := Words(r.Cond)
		if w == "" || strings.Contains(w, "r_") {
			t.Errorf("rule %s: %q says %q", r.Name, r.Cond, w)
		}
	}
}

func FuzzWords(f *testing.F) {
	for _, s := range []string{"r.env.Alert >= elevated", "!(a || b) && c", "hostOf(r.obj.Args.url) in ('a')", "((("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = Words(s) // must not panic
	})
}

func TestRuleText(t *testing.T) {
	model, err := os.ReadFile("../examples/policy/model.conf")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := os.ReadFile("../examples/policy/policy.csv")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(string(model), string(pol), "policy.csv")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ rule, sentence, note string }{
		{"elevated-writes", "A human must approve each call of tool demo__write_file by agents with the role writer when the alert level is elevated or higher.", ""},
		{"incident-read-only", "Calls of every tool by any agent are refused when the alert level is incident or higher and the tool is not marked read-only.",
			"During an incident only tools the upstream marks read-only run."},
		{"crm-roles-only", "Calls of tool demo__lookup_customer by any agent are refused when the agent does not have the role support and the agent does not have the role marketing.",
			"Who may touch sensitive tools at all."},
		{"trust-none", "Calls of anything by any agent are refused when the agent's trust is none or lower.", ""},
	}
	for _, c := range cases {
		rt, ok := e.RuleText(c.rule)
		if !ok {
			t.Fatalf("no rule %s", c.rule)
		}
		if rt.Sentence != c.sentence {
			t.Errorf("%s sentence\n got %q\nwant %q", c.rule, rt.Sentence, c.sentence)
		}
		if c.note != "" && rt.Note != c.note {
			t.Errorf("%s note\n got %q\nwant %q", c.rule, rt.Note, c.note)
		}
		if !strings.HasPrefix(rt.Where, "policy.csv:") || rt.Condition == "" {
			t.Errorf("%s: where %q condition %q", c.rule, rt.Where, rt.Condition)
		}
	}
	if _, ok := e.RuleText("intent.out-of-scope"); ok {
		t.Error("a mediator-made decision is not a rule")
	}
}
