package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestParseRulesRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, text, want string
	}{
		{"bare quote that casbin drops silently", `p, *, tool, a"b, allow, r1`, `test.csv:1: column 14: bare "`},
		{"bare quote in a condition", "p, *, tool, x, allow, ok\np, *, tool, x, allow, r1, r.sub.ID == \"a\"", "test.csv:2:"},
		{"unterminated quoted field", `p, *, tool, x, allow, r1, "r.sub.ID == 'a'`, "test.csv:1:"},
		{"too few fields", "p, *, tool, x, allow", "test.csv:1: want"},
		{"too many fields", "p, *, tool, x, allow, r1, true, extra", "got 8 fields"},
		{"a comma in an unquoted glob", "p, *, tool, demo__{a,b}, allow, r1", `test.csv:1: object "demo__{a" is not a valid glob`},
		{"not a p line", "g, a, b", "starting \"g\""},
		{"unknown decision", "p, *, tool, x, permit, r1", `decision "permit"`},
		{"decision in the wrong case", "p, *, tool, x, Allow, r1", `decision "Allow"`},
		{"bad subject", "p, bob, tool, x, allow, r1", "subject"},
		{"empty role", "p, role:, tool, x, allow, r1", "subject"},
		{"bad kind", "p, *, method, x, allow, r1", "kind"},
		{"invalid glob", "p, *, tool, [x, allow, r1", "glob"},
		{"empty object", "p, *, tool, , allow, r1", "glob"},
		{"duplicate rule name", "p, *, tool, x, allow, r1\n\np, *, tool, y, deny, r1", "test.csv:3: rule name \"r1\" already used on line 1"},
		{"empty rule name", "p, *, tool, x, allow, ", "rule name is empty"},
		{"rule name with spaces", "p, *, tool, x, allow, my rule", "rule name"},
		{"unknown attribute group", "p, *, tool, x, allow, r1, r.user.ID == 'a'", `unknown attribute "r.user.ID"`},
		{"unknown attribute field", "p, *, tool, x, allow, r1, r.sub.Confidance > 0.5", `unknown attribute "r.sub.Confidance"`},
		{"unexported attribute", "p, *, tool, x, allow, r1, r.env.listing", `unknown attribute "r.env.listing"`},
		{"field below a scalar", "p, *, tool, x, allow, r1, r.obj.Risk.Level > 1", `unknown attribute "r.obj.Risk.Level"`},
		{"unknown constant", "p, *, tool, x, allow, r1, r.obj.DataClass >= secret", `unknown attribute or constant "secret"`},
		{"policy column in a condition", "p, *, tool, x, allow, r1, p.sub == 'a'", `unknown attribute or constant "p.sub"`},
		{"unknown function", "p, *, tool, x, allow, r1, lower(r.sub.ID) == 'a'", "Undefined function lower"},
		{"eval is not offered", "p, *, tool, x, allow, r1, eval('true')", "Undefined function eval"},
		{"invalid literal glob", `p, *, tool, x, allow, r1, "globMatch(r.obj.Args.p, 'a[')"`, `globMatch: "a[" is not a valid glob`},
		{"invalid literal regexp", `p, *, tool, x, allow, r1, "regexMatch(r.obj.Args.p, 'a(')"`, "regexMatch: error parsing regexp"},
		{"invalid =~ pattern", "p, *, tool, x, allow, r1, r.obj.Args.p =~ '(a'", "error parsing regexp"},
		{"syntax error", "p, *, tool, x, allow, r1, r.sub.ID ==", "condition"},
		{"unbalanced parentheses", "p, *, tool, x, allow, r1, (r.sub.ID == 'a'", "condition"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules(strings.NewReader(tc.text), "test.csv")
			if err == nil || !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrInvalidPolicy mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParseRulesAccepts(t *testing.T) {
	t.Parallel()
	text := `# a comment
p, *, tool, demo__echo, allow, echo

p, role:writer, *, "demo__{read,write}_file", approve, files, "r.obj.Args.path == 'a, b'"
p, agent:bot-1, resource, demo://**, deny, no-bot, r.env.Alert >= elevated
p,*,prompt,demo__*,allow,prompts,    r.intent.InScope
`
	rules, err := ParseRules(strings.NewReader(text), "ok.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Line: 2, Sub: "*", Kind: "tool", Obj: "demo__echo", Decision: mediator.EffectAllow, Name: "echo"},
		{Line: 4, Sub: "role:writer", Kind: "*", Obj: "demo__{read,write}_file", Decision: mediator.EffectApprove, Name: "files", Cond: "r.obj.Args.path == 'a, b'"},
		{Line: 5, Sub: "agent:bot-1", Kind: "resource", Obj: "demo://**", Decision: mediator.EffectDeny, Name: "no-bot", Cond: "r.env.Alert >= elevated"},
		{Line: 6, Sub: "*", Kind: "prompt", Obj: "demo__*", Decision: mediator.EffectAllow, Name: "prompts", Cond: "r.intent.InScope"},
	}
	if len(rules) != len(want) {
		t.Fatalf("got %d rules, want %d", len(rules), len(want))
	}
	for i, w := range want {
		g := rules[i]
		g.cond = nil
		if g != w {
			t.Errorf("rule %d: got %+v, want %+v", i, g, w)
		}
		if (rules[i].cond != nil) != (w.Cond != "") {
			t.Errorf("rule %d: condition compiled = %v", i, rules[i].cond != nil)
		}
	}
}

func TestParseModelRejects(t *testing.T) {
	t.Parallel()
	good := readText(t, exampleModel)
	cases := []struct {
		name, from, to, want string
	}{
		{"request without intent", "r = sub, obj, env, intent", "r = sub, obj, env", "request_definition"},
		{"request in another order", "r = sub, obj, env, intent", "r = obj, sub, env, intent", "request_definition"},
		{"policy without a decision column", "p = sub, kind, obj, eft, dec, name, cond, priority", "p = sub, kind, obj, eft, name, cond, priority", "policy_definition"},
		{"allow-override effect", "e = priority(p.eft) || deny", "e = some(where (p.eft == allow))", "policy_effect"},
		{"unknown attribute in the matcher", "&& cond(", "&& r.sub.Department == 'x' && cond(", `unknown attribute "r.sub.Department"`},
		{"constant in the matcher", "&& cond(", "&& r.obj.Risk >= high && cond(", `unknown attribute or constant "high"`},
		{"unknown function in the matcher", "&& cond(", "&& nope(r.sub) && cond(", "Undefined function nope"},
		{"role definition", "[policy_effect]", "[role_definition]\ng = _, _\n\n[policy_effect]", "role_definition"},
		{"not a model", good, "[broken", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(good, tc.from, tc.to, 1)
			if text == good {
				t.Fatalf("replacement %q not found in the example model", tc.from)
			}
			_, err := parseModel(text, "m.conf")
			if err == nil || !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "m.conf") {
				t.Fatalf("got %v, want an ErrInvalidPolicy naming m.conf and %q", err, tc.want)
			}
		})
	}
}

// A matcher the index cannot take apart still decides correctly, over
// all rules.
func TestUnindexedMatcher(t *testing.T) {
	t.Parallel()
	model := strings.Replace(readText(t, exampleModel),
		"m = subjectMatch(r.sub, p.sub) && objectMatch(r.obj, p.kind, p.obj) && cond(p.name, r.sub, r.obj, r.env, r.intent)",
		"m = (subjectMatch(r.sub, p.sub) && objectMatch(r.obj, p.kind, p.obj)) && cond(p.name, r.sub, r.obj, r.env, r.intent)", 1)
	e, err := New(model, readText(t, examplePolicy), "policy.csv", WithEnv(utcEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if e.cur.Load().index != nil {
		t.Fatal("a parenthesised matcher was indexed")
	}
	d, err := e.Decide(t.Context(), mediator.AuthzRequest{Agent: quickstart, Target: demoTool("echo", mediator.DataPublic, true)})
	if err != nil || d.Rule != "echo" {
		t.Fatalf("got %+v, %v", d, err)
	}
}

func TestEmptyPolicyDeniesEverything(t *testing.T) {
	t.Parallel()
	e, err := New(readText(t, exampleModel), "# nothing allowed\n", "empty.csv")
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(t.Context(), mediator.AuthzRequest{Agent: quickstart, Target: demoTool("echo", mediator.DataPublic, true)})
	if err != nil || d.Effect != mediator.EffectDeny || d.Rule != "" {
		t.Fatalf("got %+v, %v; want a default deny", d, err)
	}
}

// Policies written for the foundation's plain model (six fields, no
// condition) still load.
func TestFoundationPolicyLines(t *testing.T) {
	t.Parallel()
	e, err := New(readText(t, exampleModel), "p, *, tool, fake__*, allow, fake-all\np, *, *, **, deny, never, r.sub.ID == 'evil'\n", "old.csv")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]mediator.Effect{"a": mediator.EffectAllow, "evil": mediator.EffectDeny} {
		d, err := e.Decide(t.Context(), mediator.AuthzRequest{Agent: mediator.Agent{ID: id}, Target: mediator.Target{Kind: mediator.KindTool, Name: "fake__echo"}})
		if err != nil || d.Effect != want {
			t.Fatalf("agent %s: got %+v, %v; want %s", id, d, err, want)
		}
	}
}

// FuzzParseRules: arbitrary policy text never panics, and what parses is
// well formed.
func FuzzParseRules(f *testing.F) {
	f.Add(readText(f, examplePolicy))
	for _, s := range []string{`p, *, tool, a"b, allow, r`, "p, *, tool, x, allow, r, r.obj.Args.a > 1 && (", "p,*,*,**,deny,x,\"'a' in r.sub.Roles\"\n#c\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := ParseRules(strings.NewReader(text), "fuzz.csv")
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v does not wrap ErrInvalidPolicy", err)
			}
			return
		}
		for _, r := range rules {
			if r.Name == "" || r.Line < 1 || (r.Cond != "") != (r.cond != nil) || r.check() != nil {
				t.Fatalf("malformed rule %+v", r)
			}
		}
	})
}

// Conditions keep their meaning after their attribute reads are bound to
// getters: operators, literals, functions, levels and nested arguments.
func TestConditionsEvaluate(t *testing.T) {
	t.Parallel()
	a := &Attributes{
		Sub: Subject{ID: "bot", Roles: []any{"finance"}, Confidence: 0.97, Attrs: map[string]string{"team": "blue"}},
		Obj: Object{Kind: "tool", Name: "demo__x", DataClass: classPII, Risk: levelHigh,
			Args: map[string]any{"amount": 1500.0, "url": "https://api.github.com/x", "payee": map[string]any{"iban": "XX12"}, "tags": []any{"a"}}},
		Env:    Env{Hour: 9, Weekday: "tue", BusinessHours: true, Network: NetPrivate, Alert: alertElevated},
		Intent: IntentAttrs{Verdict: "in_scope", InScope: true},
	}
	cases := []struct {
		cond string
		want bool
	}{
		{"r.obj.Args.amount > 1000 && r.obj.Args.amount <= 2000", true},
		{"r.obj.Args.payee.iban =~ '^XX[0-9]+$'", true},
		{"r.obj.Args.payee.iban !~ '^XX'", false},
		{"hostOf(r.obj.Args.url) in ('example.com', 'api.github.com')", true},
		{"'finance' in r.sub.Roles && !('marketing' in r.sub.Roles)", true},
		{"r.obj.DataClass >= confidential && r.obj.Risk == high", true},
		{"r.env.Alert >= incident || r.env.Weekday == 'sat'", false},
		{"r.sub.Attrs.team == 'blue' && has(r.sub.Attrs, 'team') && !has(r.obj.Args, 'memo')", true},
		{"r.sub.Confidence >= 0.95 && r.env.BusinessHours && r.intent.InScope", true},
		{"r.env.Hour >= 8 && r.env.Hour < 18 ? true : false", true},
		{"'a' in r.obj.Args.tags", true},
	}
	for _, tc := range cases {
		t.Run(tc.cond, func(t *testing.T) {
			c, err := compileCondition(tc.cond)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.eval(paramsOf(a))
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
