package policy

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

const (
	exampleModel  = "../examples/policy/model.conf"
	examplePolicy = "../examples/policy/policy.csv"
	exampleCases  = "../examples/policy/cases.yaml"
)

// tuesday10 is business hours in UTC.
var tuesday10 = time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)

func utcEnv() EnvConfig {
	c := DefaultEnvConfig()
	c.Zone = time.UTC
	return c
}

// loadExample loads the example policy with a UTC zone and a clock fixed
// at Tuesday 10:00.
func loadExample(t testing.TB, opts ...Option) *Engine {
	t.Helper()
	f, err := ReadFiles(exampleModel, examplePolicy, "")
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithEnv(utcEnv()), WithClock(func() time.Time { return tuesday10 })}, opts...)
	e, err := NewFromFiles(f, opts...)
	if err != nil {
		t.Fatalf("example policy does not load: %v", err)
	}
	return e
}

func readText(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func boolp(b bool) *bool { return &b }

var (
	quickstart = mediator.Agent{ID: "local-agent", Roles: []string{"writer", "support"}, Owner: "local-user"}
	finance    = mediator.Agent{ID: "payments-bot", Roles: []string{"finance"}}
)

func demoTool(name string, class mediator.DataClass, readOnly bool) mediator.Target {
	return mediator.Target{Kind: mediator.KindTool, Server: "demo", Name: "demo__" + name, Original: name,
		Risk: mediator.RiskMedium, DataClass: class, Hints: mediator.Hints{ReadOnly: boolp(readOnly), Destructive: boolp(!readOnly)}}
}

// The example cases are the policy's specification: every one passes.
func TestExampleCases(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	cf, err := ParseCases([]byte(readText(t, exampleCases)), "cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results := e.Test(cf)
	if len(results) < 20 {
		t.Fatalf("only %d example cases", len(results))
	}
	for _, r := range results {
		if !r.Pass {
			t.Error(r.Summary())
		}
	}
}

// The example cases pass in any zone: their times are wall-clock times.
func TestExampleCasesAnyZone(t *testing.T) {
	t.Parallel()
	zone, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Skip("no zoneinfo:", err)
	}
	env := DefaultEnvConfig()
	env.Zone = zone
	f, err := ReadFiles(exampleModel, examplePolicy, exampleCases)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewFromFiles(f, WithEnv(env)); err != nil {
		t.Fatalf("cases fail in %s: %v", zone, err)
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	cases := []struct {
		name   string
		req    mediator.AuthzRequest
		want   mediator.Effect
		rule   string
		reason string
	}{
		{"an allow names its rule", mediator.AuthzRequest{Agent: quickstart, Target: demoTool("echo", mediator.DataPublic, true)},
			mediator.EffectAllow, "echo", "rule echo allows tool demo__echo"},
		{"a deny cites its condition", mediator.AuthzRequest{Agent: finance, Target: demoTool("transfer_funds", mediator.DataFinancial, false),
			Arguments: map[string]any{"amount": 20000.0}}, mediator.EffectDeny, "funds-far-above-limit", "when r.obj.Args.amount > 10000"},
		{"Go integers count as numbers", mediator.AuthzRequest{Agent: finance, Target: demoTool("transfer_funds", mediator.DataFinancial, false),
			Arguments: map[string]any{"amount": 5000}}, mediator.EffectApprove, "funds-above-limit", "requires a human's approval"},
		{"deny wins over an allow from another role", mediator.AuthzRequest{Agent: mediator.Agent{ID: "a", Roles: []string{"support", "marketing"}},
			Target: demoTool("lookup_customer", mediator.DataPII, true), Arguments: map[string]any{"query": "ada"}},
			mediator.EffectDeny, "marketing-pii-undeclared", ""},
		{"no match is a deny without a rule", mediator.AuthzRequest{Agent: quickstart, Target: mediator.Target{Kind: mediator.KindTool, Name: "x__y"}},
			mediator.EffectDeny, "", "no rule allows tool x__y for agent local-agent"},
		{"an unknown data class counts as the most sensitive", mediator.AuthzRequest{Agent: quickstart,
			Target: mediator.Target{Kind: mediator.KindTool, Server: "demo", Name: "demo__lookup_customer"}, Arguments: map[string]any{"query": "x"}},
			mediator.EffectAllow, "crm-support", ""},
		{"a public client may not write", mediator.AuthzRequest{Agent: quickstart, Target: demoTool("write_file", mediator.DataInternal, false),
			Arguments: map[string]any{"path": "a", "content": "b"}, RemoteIP: "8.8.8.8"}, mediator.EffectDeny, "public-no-destructive", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Decide(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Effect != tc.want || d.Rule != tc.rule || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %s by %q (%s), want %s by %q (%s)", d.Effect, d.Rule, d.Reason, tc.want, tc.rule, tc.reason)
			}
			if d.PolicyVersion != e.Version() || d.Shadow {
				t.Fatalf("decision %+v: want version %s, not shadow", d, e.Version())
			}
		})
	}
}

// A decision that cannot be evaluated is a denial with reason "policy
// error" and an error; it is never an allow.
func TestDecideFailsClosed(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	deep := map[string]any{}
	cur := deep
	for range maxArgDepth + 2 {
		next := map[string]any{}
		cur["x"] = next
		cur = next
	}
	cases := []struct {
		name string
		req  mediator.AuthzRequest
	}{
		{"no agent id", mediator.AuthzRequest{Target: demoTool("echo", mediator.DataPublic, true)}},
		{"no object kind", mediator.AuthzRequest{Agent: quickstart, Target: mediator.Target{Name: "demo__echo"}}},
		{"no object name", mediator.AuthzRequest{Agent: quickstart, Target: mediator.Target{Kind: mediator.KindTool}}},
		{"arguments nested too deeply", mediator.AuthzRequest{Agent: quickstart, Target: demoTool("echo", mediator.DataPublic, true), Arguments: map[string]any{"a": []any{deep}}}},
		{"an argument is not JSON", mediator.AuthzRequest{Agent: quickstart, Target: demoTool("echo", mediator.DataPublic, true), Arguments: map[string]any{"f": func() {}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Decide(t.Context(), tc.req)
			if err == nil || !errors.Is(err, mediator.ErrPolicy) {
				t.Fatalf("err = %v, want an error wrapping mediator.ErrPolicy", err)
			}
			if d.Effect != mediator.EffectDeny || d.Reason != ReasonPolicyError || d.PolicyVersion == "" {
				t.Fatalf("decision %+v, want a denial with reason %q and a version", d, ReasonPolicyError)
			}
		})
	}
}

// Listings hide only what could never be allowed or approved.
func TestListing(t *testing.T) {
	t.Parallel()
	e := loadExample(t, WithClock(func() time.Time { return tuesday10.Add(12 * time.Hour) }), WithAlert(func() AlertLevel { return AlertIncident }))
	list := func(a mediator.Agent, tg mediator.Target) mediator.AuthzRequest {
		return mediator.AuthzRequest{Agent: a, Target: tg, Listing: true}
	}
	cases := []struct {
		name   string
		req    mediator.AuthzRequest
		listed bool
	}{
		{"an argument-dependent deny does not hide", list(finance, demoTool("transfer_funds", mediator.DataFinancial, false)), true},
		{"an alert-dependent deny does not hide (it is incident now)", list(quickstart, demoTool("write_file", mediator.DataInternal, false)), true},
		{"a time-dependent approve lists (it is night now)", list(quickstart, demoTool("lookup_customer", mediator.DataPII, true)), true},
		{"an intent-dependent allow lists", list(mediator.Agent{ID: "m", Roles: []string{"marketing"}}, demoTool("lookup_customer", mediator.DataPII, true)), true},
		{"a subject-only deny hides", list(quickstart, demoTool("transfer_funds", mediator.DataFinancial, false)), false},
		{"no grant hides", list(quickstart, demoTool("fetch_url", mediator.DataPublic, true)), false},
		{"a low confidence is known at listing time", list(mediator.Agent{ID: "b", Roles: []string{"autonomous"}, Confidence: 0.5},
			demoTool("write_file", mediator.DataInternal, false)), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Decide(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if listed := d.Effect != mediator.EffectDeny; listed != tc.listed {
				t.Fatalf("got %s by %q (%s), want listed=%v", d.Effect, d.Rule, d.Reason, tc.listed)
			}
		})
	}
}

func TestShadowMode(t *testing.T) {
	t.Parallel()
	deny := mediator.AuthzRequest{Agent: quickstart, Target: demoTool("transfer_funds", mediator.DataFinancial, false),
		Arguments: map[string]any{"amount": 1.0}}
	cases := []struct {
		name   string
		opts   []Option
		server string
		shadow bool
	}{
		{"enforce is the default", nil, "demo", false},
		{"global shadow", []Option{WithMode(ModeShadow)}, "demo", true},
		{"shadow for this server", []Option{WithShadowServers("demo")}, "demo", true},
		{"shadow for another server only", []Option{WithShadowServers("other")}, "demo", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := loadExample(t, tc.opts...)
			d, err := e.Decide(t.Context(), deny)
			if err != nil {
				t.Fatal(err)
			}
			if d.Effect != mediator.EffectDeny || d.Rule != "funds-finance-only" || d.Shadow != tc.shadow {
				t.Fatalf("got %+v, want the would-be deny with Shadow=%v", d, tc.shadow)
			}
			listReq := deny
			listReq.Listing = true
			l, _ := e.Decide(t.Context(), listReq)
			if (l.Effect != mediator.EffectDeny) != tc.shadow {
				t.Fatalf("listing %+v: shadow mode must not hide, enforce must", l)
			}
			if got := e.ShadowCounts()[mediator.EffectDeny]; got != map[bool]uint64{true: 1}[tc.shadow] {
				t.Fatalf("shadow deny count %d after one call and one listing", got)
			}
		})
	}
}

// Shadow mode never turns a failure to evaluate into a forwarded call.
func TestShadowModeStillFailsClosed(t *testing.T) {
	t.Parallel()
	e := loadExample(t, WithMode(ModeShadow))
	d, err := e.Decide(t.Context(), mediator.AuthzRequest{Agent: finance, Target: demoTool("transfer_funds", mediator.DataFinancial, false)})
	if err == nil || d.Effect != mediator.EffectDeny || d.Shadow {
		t.Fatalf("got %+v, %v; want a non-shadow policy-error denial", d, err)
	}
}

func TestLoadKeepsOldPolicy(t *testing.T) {
	t.Parallel()
	model, policy := readText(t, exampleModel), readText(t, examplePolicy)
	cases := []struct {
		name string
		f    Files
		want error
	}{
		{"broken model", Files{Model: []byte("[broken"), Policy: []byte(policy)}, ErrInvalidPolicy},
		{"broken policy", Files{Model: []byte(model), Policy: []byte(`p, *, tool, a"b, allow, r`)}, ErrInvalidPolicy},
		{"failing cases", Files{Model: []byte(model), Policy: []byte(policy), CasesPath: "c.yaml",
			Cases: []byte("cases:\n- {name: x, agent: {id: a}, call: {tool: demo__echo}, env: {time: '2026-03-03T10:00'}, want: deny}\n")}, ErrCasesFailed},
		{"broken cases", Files{Model: []byte(model), Policy: []byte(policy), CasesPath: "c.yaml", Cases: []byte("cases: [{nme: x}]")}, ErrInvalidPolicy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := loadExample(t)
			before := e.Version()
			err := e.LoadFiles(tc.f)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if e.Version() != before {
				t.Fatal("a rejected policy replaced the one in force")
			}
		})
	}
}

// The rule index must never change a decision: every request decided
// through it is decided the same by the enforcer holding all rules.
func TestIndexAgreesWithFullMatcher(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	c := e.cur.Load()
	if c.index == nil {
		t.Fatal("the example model is not indexed")
	}
	agents := []mediator.Agent{quickstart, finance, {ID: "m", Roles: []string{"marketing"}}, {ID: "b", Roles: []string{"autonomous"}, Confidence: 0.99}, {ID: "nobody"}}
	names := []string{"echo", "read_file", "write_file", "list_files", "lookup_customer", "transfer_funds", "fetch_url", "summarize_file"}
	for _, a := range agents {
		for _, n := range names {
			for _, listing := range []bool{false, true} {
				req := mediator.AuthzRequest{Agent: a, Target: demoTool(n, mediator.DataInternal, n == "read_file"), Listing: listing,
					Arguments: map[string]any{"amount": 5000.0, "path": "notes/a", "url": "https://example.com"}}
				attrs, err := BuildAttributes(req, Situation{Time: tuesday10, Alert: AlertElevated}, &e.env)
				if err != nil {
					t.Fatal(err)
				}
				got, err1 := c.decide(attrs)
				_, ex, err2 := c.all.EnforceEx(&attrs.Sub, &attrs.Obj, &attrs.Env, &attrs.Intent)
				want := ""
				if len(ex) > c.model.nameIdx {
					want = ex[c.model.nameIdx]
				}
				if (err1 == nil) != (err2 == nil) || got.Rule != want {
					t.Errorf("%s %s listing=%v: index says %q (%v), full matcher %q (%v)", a.ID, n, listing, got.Rule, err1, want, err2)
				}
			}
		}
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	x := e.Explain(t.Context(), mediator.AuthzRequest{Agent: finance, Target: demoTool("transfer_funds", mediator.DataFinancial, false),
		Arguments: map[string]any{"amount": 5000.0}}, Situation{Time: tuesday10.Add(-24 * time.Hour)})
	if x.Err != nil || x.Decision.Rule != "funds-above-limit" {
		t.Fatalf("explain decided %+v (%v)", x.Decision, x.Err)
	}
	fields := map[string]string{}
	for _, f := range x.Attributes {
		fields[f.Name] = f.Value
	}
	for name, want := range map[string]string{"r.sub.Roles": `["finance"]`, "r.obj.DataClass": "5", "r.obj.Args": `{"amount":5000}`,
		"r.env.Weekday": `"mon"`, "r.env.BusinessHours": "true", "r.env.Network": `"loopback"`, "r.intent.Verdict": `"no_intent"`} {
		if fields[name] != want {
			t.Errorf("%s = %s, want %s", name, fields[name], want)
		}
	}
	decisive := 0
	for i, r := range x.Rules {
		if i > 0 && rank(r.Rule.Decision) < rank(x.Rules[i-1].Rule.Decision) {
			t.Fatal("rules are not listed in priority order")
		}
		if r.Decisive {
			decisive++
			if r.Condition != "true" || !r.Subject || !r.Object {
				t.Fatalf("decisive rule trace %+v", r)
			}
		}
	}
	if decisive != 1 {
		t.Fatalf("%d decisive rules", decisive)
	}
}

// BenchmarkDecide measures one decision with the example policy (23
// rules): the quickstart agent writing a file, a finance agent's transfer
// with an argument condition, and a listing.
func BenchmarkDecide(b *testing.B) {
	e := loadExample(b)
	for _, bc := range []struct {
		name string
		req  mediator.AuthzRequest
	}{
		{"write_file", mediator.AuthzRequest{Agent: quickstart, Target: demoTool("write_file", mediator.DataInternal, false),
			Arguments: map[string]any{"path": "notes/a.txt", "content": "hello"}, RemoteIP: "127.0.0.1"}},
		{"transfer_funds", mediator.AuthzRequest{Agent: finance, Target: demoTool("transfer_funds", mediator.DataFinancial, false),
			Arguments: map[string]any{"from_account": "a", "to_account": "b", "amount": 5000.0, "currency": "EUR"}, RemoteIP: "10.0.0.7"}},
		{"listing", mediator.AuthzRequest{Agent: quickstart, Target: demoTool("lookup_customer", mediator.DataPII, true), Listing: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Decide(b.Context(), bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A call lacking an argument a rule reads, or sending it with another type
// than the rule compares it with, is denied as the agent's mistake: a
// *mediator.ArgumentError naming the argument and the rule, not a policy
// error (issue 14: "r.obj.Args.x == true" with the string "true" was
// silently false).
func TestDecideArgumentErrors(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	transfer := demoTool("transfer_funds", mediator.DataFinancial, false)
	researcher := mediator.Agent{ID: "r", Roles: []string{"researcher"}}
	typed, err := New(readText(t, exampleModel), strings.Join([]string{
		"p, *, tool, t__flag, deny, flag-off, r.obj.Args.dry_run == false",
		"p, *, tool, t__flag, allow, flag-on, r.obj.Args.dry_run == true",
		"p, *, tool, t__level, allow, level, r.obj.Args.level >= high",
		`p, *, tool, t__in, allow, in-list, "r.obj.Args.mode in ('a', 'b')"`,
		"p, *, tool, t__bool, allow, bare-bool, r.obj.Args.ok && r.obj.Kind == 'tool'",
		"p, *, tool, t__nested, allow, nested, r.obj.Args.payee.iban == 'DE00'",
		"p, *, tool, t__sum, allow, sum, r.obj.Args.n + 1 > 2",
	}, "\n"), "typed.csv", WithEnv(utcEnv()))
	if err != nil {
		t.Fatal(err)
	}
	tool := func(name string) mediator.Target { return mediator.Target{Kind: mediator.KindTool, Name: name} }
	agent := mediator.Agent{ID: "a"}
	cases := []struct {
		name     string
		e        *Engine
		req      mediator.AuthzRequest
		rule     string
		msg      string // "" when the call is decided without error
		want     mediator.Effect
		wantRule string
	}{
		{"missing", e, mediator.AuthzRequest{Agent: finance, Target: transfer, Arguments: map[string]any{"currency": "EUR"}},
			"funds-far-above-limit", `argument "amount" is required by rule funds-far-above-limit`, "", ""},
		{"string for a number", e, mediator.AuthzRequest{Agent: finance, Target: transfer, Arguments: map[string]any{"amount": "5"}},
			"funds-far-above-limit", `argument "amount" is a string, compared with a number by rule funds-far-above-limit`, "", ""},
		{"object for a number", e, mediator.AuthzRequest{Agent: finance, Target: transfer, Arguments: map[string]any{"amount": map[string]any{}}},
			"funds-far-above-limit", `argument "amount" is an object, compared with a number`, "", ""},
		{"number for a URL", e, mediator.AuthzRequest{Agent: researcher, Target: demoTool("fetch_url", mediator.DataPublic, true),
			Arguments: map[string]any{"url": 5.0}}, "egress-allowlist", `argument "url" is a number, compared with a string`, "", ""},
		{"sandbox read without a path", e, mediator.AuthzRequest{Agent: quickstart, Target: demoTool("read_file", mediator.DataInternal, true),
			Arguments: map[string]any{}}, "sandbox-no-secrets", `argument "path" is required by rule sandbox-no-secrets`, "", ""},
		{"string true for a boolean", typed, mediator.AuthzRequest{Agent: agent, Target: tool("t__flag"), Arguments: map[string]any{"dry_run": "true"}},
			"flag-off", `argument "dry_run" is a string, compared with a boolean by rule flag-off`, "", ""},
		{"boolean true", typed, mediator.AuthzRequest{Agent: agent, Target: tool("t__flag"), Arguments: map[string]any{"dry_run": true}},
			"", "", mediator.EffectAllow, "flag-on"},
		{"string for a level", typed, mediator.AuthzRequest{Agent: agent, Target: tool("t__level"), Arguments: map[string]any{"level": "4"}},
			"level", `argument "level" is a string, compared with a number`, "", ""},
		{"number for an in-list of strings", typed, mediator.AuthzRequest{Agent: agent, Target: tool("t__in"), Arguments: map[string]any{"mode": 1.0}},
			"in-list", `argument "mode" is a number, compared with a string`, "", ""},
		{"in-list string", typed, mediator.AuthzRequest{Agent: agent, Target: tool("t__in"), Arguments: map[string]any{"mode": "a"}},
			"", "", mediator.EffectAllow, "in-list"},
		{"string for a bare boolean", typed, mediator.AuthzRequest{Agent: agent, Target: tool("t__bool"), Arguments: map[string]any{"ok": "yes"}},
			"bare-bool", `argument "ok" is a string, compared with a boolean`, "", ""},
		{"not an object", typed, mediator.AuthzRequest{Agent: agent, Target: tool("t__nested"), Arguments: map[string]any{"payee": "x"}},
			"nested", `argument "payee" is not an object`, "", ""},
		{"nested missing", typed, mediator.AuthzRequest{Agent: agent, Target: tool("t__nested"), Arguments: map[string]any{"payee": map[string]any{}}},
			"nested", `argument "payee.iban" is required by rule nested`, "", ""},
		{"arithmetic is not typed", typed, mediator.AuthzRequest{Agent: agent, Target: tool("t__sum"), Arguments: map[string]any{"n": 5.0}},
			"", "", mediator.EffectAllow, "sum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.e.Decide(t.Context(), tc.req)
			if tc.msg == "" {
				if err != nil || d.Effect != tc.want || d.Rule != tc.wantRule {
					t.Fatalf("decision %+v, %v; want %s by %s", d, err, tc.want, tc.wantRule)
				}
				return
			}
			ae, ok := errors.AsType[*mediator.ArgumentError](err)
			if !ok || !errors.Is(err, mediator.ErrInvalidRequest) || errors.Is(err, mediator.ErrPolicy) {
				t.Fatalf("err = %v (%T), want a *mediator.ArgumentError, not a policy error", err, err)
			}
			if ae.Rule != tc.rule || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %q (rule %q), want %q by rule %s", err, ae.Rule, tc.msg, tc.rule)
			}
			if d.Effect != mediator.EffectDeny || d.Rule != tc.rule || d.Reason != err.Error() {
				t.Fatalf("decision %+v, want a denial citing %s", d, tc.rule)
			}
		})
	}
}
