package policy

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func loadExample(t testing.TB) *Engine {
	t.Helper()
	m, err := os.ReadFile("../examples/policy/model.conf")
	if err != nil {
		t.Fatal(err)
	}
	p, err := os.ReadFile("../examples/policy/policy.csv")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(string(m), string(p), "policy.csv")
	if err != nil {
		t.Fatalf("example policy does not load: %v", err)
	}
	return e
}

func TestDecideExamplePolicy(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	tool := func(name string) mediator.Target { return mediator.Target{Kind: mediator.KindTool, Name: name} }
	cases := []struct {
		name   string
		agent  mediator.Agent
		target mediator.Target
		want   mediator.Effect
		rule   string
	}{
		{"anyone reads the sandbox", mediator.Agent{ID: "a"}, tool("demo__read_file"), mediator.EffectAllow, "sandbox-read"},
		{"no rule means deny", mediator.Agent{ID: "a"}, tool("demo__write_file"), mediator.EffectDeny, ""},
		{"a role grants", mediator.Agent{ID: "a", Roles: []string{"writer"}}, tool("demo__write_file"), mediator.EffectAllow, "sandbox-write"},
		{"deny wins over allow from another role", mediator.Agent{ID: "a", Roles: []string{"support", "marketing"}}, tool("demo__lookup_customer"), mediator.EffectDeny, "crm-no-marketing"},
		{"explicit deny for everyone", mediator.Agent{ID: "a", Roles: []string{"writer"}}, tool("demo__transfer_funds"), mediator.EffectDeny, "funds-need-approval"},
		{"glob over resources", mediator.Agent{ID: "a"}, mediator.Target{Kind: mediator.KindResource, Name: "demo://crm/schema"}, mediator.EffectAllow, "demo-resources"},
		{"kind must match", mediator.Agent{ID: "a"}, mediator.Target{Kind: mediator.KindPrompt, Name: "demo__read_file"}, mediator.EffectAllow, "demo-prompts"},
		{"other server's tool is denied", mediator.Agent{ID: "a"}, tool("other__read_file"), mediator.EffectDeny, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Decide(t.Context(), mediator.AuthzRequest{Agent: tc.agent, Target: tc.target})
			if err != nil {
				t.Fatal(err)
			}
			if d.Effect != tc.want || d.Rule != tc.rule {
				t.Fatalf("got %s by %q (%s), want %s by %q", d.Effect, d.Rule, d.Reason, tc.want, tc.rule)
			}
			if d.PolicyVersion == "" {
				t.Fatal("decision does not name the policy version")
			}
		})
	}
}

func TestParseRulesRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, text, want string
	}{
		{"bare quote that casbin drops silently", `p, *, tool, a"b, allow, r1`, "bare"},
		{"wrong field count", "p, *, tool, x, allow", "want 6 fields"},
		{"bad effect", "p, *, tool, x, approve, r1", "effect"},
		{"bad subject", "p, bob, tool, x, allow, r1", "subject"},
		{"bad kind", "p, *, method, x, allow, r1", "kind"},
		{"invalid glob", "p, *, tool, [x, allow, r1", "glob"},
		{"duplicate rule name", "p, *, tool, x, allow, r1\np, *, tool, y, allow, r1", "already used on line 1"},
		{"empty rule name", "p, *, tool, x, allow, ", "rule name"},
		{"not a p line", "g, a, b", "want 6 fields"},
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

func TestLoadKeepsOldPolicyOnError(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	before := e.Version()
	if err := e.Load("[broken", "", "x"); err == nil {
		t.Fatal("broken model loaded")
	}
	if e.Version() != before {
		t.Fatal("failed load replaced the policy in force")
	}
}

func TestDecideMissingAttributesIsError(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	d, err := e.Decide(t.Context(), mediator.AuthzRequest{Target: mediator.Target{Kind: mediator.KindTool, Name: "demo__echo"}})
	if err == nil || d.Effect != mediator.EffectDeny {
		t.Fatalf("missing agent: got %v %v, want deny with error", d, err)
	}
}

func BenchmarkDecide(b *testing.B) {
	e := loadExample(b)
	req := mediator.AuthzRequest{Agent: mediator.Agent{ID: "a", Roles: []string{"writer", "support"}},
		Target: mediator.Target{Kind: mediator.KindTool, Name: "demo__write_file"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}
