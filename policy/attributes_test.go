package policy

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestBuildAttributes(t *testing.T) {
	t.Parallel()
	env := utcEnv()
	env.Private, _ = ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.7"})
	req := func(ip string) mediator.AuthzRequest {
		return mediator.AuthzRequest{Agent: mediator.Agent{ID: "a", Roles: []string{"x"}, Confidence: 0.9, BusinessFunction: "support"},
			Target: mediator.Target{Kind: mediator.KindTool, Name: "t", Risk: mediator.RiskHigh, DataClass: mediator.DataPII,
				Hints: mediator.Hints{ReadOnly: boolp(true)}}, RemoteIP: ip,
			Intent: mediator.Intent{Verdict: mediator.IntentInScope, Reasons: []string{"ok"}}}
	}
	cases := []struct {
		name  string
		req   mediator.AuthzRequest
		s     Situation
		check func(a *Attributes) bool
	}{
		{"levels are numbers", req(""), Situation{Time: tuesday10}, func(a *Attributes) bool {
			return a.Obj.Risk == levelHigh && a.Obj.DataClass == classPII && a.Obj.RiskName == "high" && a.Obj.DataClassName == "pii"
		}},
		{"unknown risk and class count as the worst", mediator.AuthzRequest{Agent: mediator.Agent{ID: "a"}, Target: mediator.Target{Kind: "tool", Name: "t"}},
			Situation{Time: tuesday10}, func(a *Attributes) bool {
				return a.Obj.Risk == levelCritical && a.Obj.DataClass == classFinancial && a.Obj.RiskName == "unknown"
			}},
		{"absent hints are false", mediator.AuthzRequest{Agent: mediator.Agent{ID: "a"}, Target: mediator.Target{Kind: "tool", Name: "t"}},
			Situation{Time: tuesday10}, func(a *Attributes) bool { return !a.Obj.ReadOnly && !a.Obj.Destructive }},
		{"stdio is loopback", req(""), Situation{Time: tuesday10}, func(a *Attributes) bool { return a.Env.Network == NetLoopback }},
		{"IPv6 loopback", req("::1"), Situation{Time: tuesday10}, func(a *Attributes) bool { return a.Env.Network == NetLoopback }},
		{"configured private range", req("10.9.8.7"), Situation{Time: tuesday10}, func(a *Attributes) bool { return a.Env.Network == NetPrivate }},
		{"a single configured address", req("192.0.2.7"), Situation{Time: tuesday10}, func(a *Attributes) bool { return a.Env.Network == NetPrivate }},
		{"IPv4-mapped IPv6 is classified as IPv4", req("::ffff:10.0.0.1"), Situation{Time: tuesday10}, func(a *Attributes) bool { return a.Env.Network == NetPrivate }},
		{"anything else is public", req("192.168.1.1"), Situation{Time: tuesday10}, func(a *Attributes) bool { return a.Env.Network == NetPublic }},
		{"garbage address is public", req("not-an-ip"), Situation{Time: tuesday10}, func(a *Attributes) bool { return a.Env.Network == NetPublic }},
		{"business hours start inclusive", req(""), Situation{Time: time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC)},
			func(a *Attributes) bool { return a.Env.BusinessHours && a.Env.Hour == 8 && a.Env.Weekday == "tue" }},
		{"business hours end exclusive", req(""), Situation{Time: time.Date(2026, 3, 3, 18, 0, 0, 0, time.UTC)},
			func(a *Attributes) bool { return !a.Env.BusinessHours }},
		{"a weekend is not business hours", req(""), Situation{Time: time.Date(2026, 3, 8, 11, 0, 0, 0, time.UTC)},
			func(a *Attributes) bool { return !a.Env.BusinessHours && a.Env.Weekend && a.Env.Weekday == "sun" }},
		{"time is local to the zone", req(""), Situation{Time: time.Date(2026, 3, 3, 23, 30, 0, 0, time.FixedZone("x", -5*3600))},
			func(a *Attributes) bool { return a.Env.Hour == 4 && a.Env.Minute == 30 && a.Env.Weekday == "wed" }},
		{"empty alert is normal", req(""), Situation{Time: tuesday10},
			func(a *Attributes) bool { return a.Env.Alert == alertNormal && a.Env.AlertName == "normal" }},
		{"incident", req(""), Situation{Time: tuesday10, Alert: AlertIncident},
			func(a *Attributes) bool { return a.Env.Alert == alertIncident && a.Env.AlertName == "incident" }},
		{"intent", req(""), Situation{Time: tuesday10},
			func(a *Attributes) bool {
				return a.Intent.InScope && !a.Intent.OutOfScope && a.Intent.Verdict == "in_scope"
			}},
		{"no intent", mediator.AuthzRequest{Agent: mediator.Agent{ID: "a"}, Target: mediator.Target{Kind: "tool", Name: "t"}},
			Situation{Time: tuesday10}, func(a *Attributes) bool {
				return a.Intent.Verdict == "no_intent" && a.Sub.Trust == 3 && a.Sub.TrustName == "high" && !a.Behaviour.On
			}},
		{"subject", req(""), Situation{Time: tuesday10}, func(a *Attributes) bool {
			return reflect.DeepEqual(a.Sub.Roles, []any{"x"}) && a.Sub.Confidence == 0.9 && a.Sub.Function == "support"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := BuildAttributes(tc.req, tc.s, &env)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(a) {
				t.Fatalf("attributes %+v", a)
			}
		})
	}
}

type payee struct {
	IBAN string `json:"iban"`
}

func TestNormalizeArgs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   map[string]any
		want map[string]any
		err  bool
	}{
		{"nil stays nil", nil, nil, false},
		{"JSON values pass through", map[string]any{"a": 1.5, "b": []any{"x", true, nil}}, map[string]any{"a": 1.5, "b": []any{"x", true, nil}}, false},
		{"Go integers become numbers", map[string]any{"a": 7, "b": uint8(3), "c": int64(-2)}, map[string]any{"a": 7.0, "b": 3.0, "c": -2.0}, false},
		{"json.Number becomes a number", map[string]any{"a": json.Number("12.5")}, map[string]any{"a": 12.5}, false},
		{"an unparsable json.Number stays text", map[string]any{"a": json.Number("1e999")}, map[string]any{"a": "1e999"}, false},
		{"structs go through JSON", map[string]any{"p": payee{IBAN: "DE00"}}, map[string]any{"p": map[string]any{"iban": "DE00"}}, false},
		{"NaN is refused", map[string]any{"a": math.NaN()}, nil, true},
		{"infinity is refused", map[string]any{"a": []any{math.Inf(1)}}, nil, true},
		{"a channel is refused", map[string]any{"a": make(chan int)}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := normalizeArgs(tc.in)
			if tc.err {
				if !errors.Is(err, ErrEvaluation) {
					t.Fatalf("err = %v, want ErrEvaluation", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

// fuzzPolicy reads arguments every way a rule can: numbers, nested keys,
// hosts, paths, globs, lists. Only argument values that satisfy every
// condition of the allow rule may be allowed.
const fuzzPolicy = `p, *, tool, t__*, deny, too-much, r.obj.Args.amount > 1000
p, *, tool, t__*, deny, bad-host, "hostOf(r.obj.Args.url) != 'example.com'"
p, *, tool, t__*, deny, secret, "pathUnder(r.obj.Args.path, 'secrets') || globMatch(r.obj.Args.path, '**/*.key')"
p, *, tool, t__*, approve, nested, "has(r.obj.Args, 'payee') && r.obj.Args.payee.iban =~ '^XX'"
p, *, tool, t__*, allow, ok, "r.obj.Args.amount >= 0 && 'go' in r.obj.Args.tags"
`

// FuzzAttributes builds attributes from arbitrary argument JSON and
// decides them: it must never panic, an error must come with a denial, and
// an allow must only follow from arguments that meet the allow rule.
func FuzzAttributes(f *testing.F) {
	for _, s := range []string{
		`{"amount": 5, "url": "https://example.com/", "path": "a/b", "tags": ["go"]}`,
		`{"amount": 5000}`, `{"amount": "5"}`, `{"amount": null}`, `{}`, `[]`, `null`, `"x"`,
		`{"amount": 1, "url": "https://example.com", "path": "../secrets/x", "tags": ["go"]}`,
		`{"amount": 1, "url": "https://example.com", "path": "a.key", "tags": "go"}`,
		`{"amount": 1, "url": "https://example.com", "path": "p", "tags": ["go"], "payee": {"iban": "XX1"}}`,
		`{"amount": 1e308, "url": 5, "path": {"a": 1}, "tags": [[["go"]]]}`,
		`{"a": {"b": {"c": {"d": {"e": [1, 2, {"f": "g"}]}}}}}`,
	} {
		f.Add([]byte(s))
	}
	e, err := New(readText(f, exampleModel), fuzzPolicy, "fuzz.csv", WithEnv(utcEnv()))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var args map[string]any
		if json.Unmarshal(data, &args) != nil {
			return
		}
		for _, listing := range []bool{false, true} {
			req := mediator.AuthzRequest{Agent: mediator.Agent{ID: "fuzz"}, Target: mediator.Target{Kind: mediator.KindTool, Name: "t__x"},
				Arguments: args, Listing: listing}
			d, err := e.Decide(t.Context(), req)
			_, argErr := errors.AsType[*mediator.ArgumentError](err)
			if err != nil && (d.Effect != mediator.EffectDeny || (d.Reason != ReasonPolicyError && !argErr)) {
				t.Fatalf("error %v with decision %+v", err, d)
			}
			if d.Effect == mediator.EffectAllow && !listing && !meetsAllowRule(args) {
				t.Fatalf("allowed %s by %s", data, d.Rule)
			}
		}
	})
}

func meetsAllowRule(args map[string]any) bool {
	amount, ok := args["amount"].(float64)
	url, _ := args["url"].(string)
	path, _ := args["path"].(string)
	tags, _ := args["tags"].([]any)
	host, _ := fnHostOf(url)
	under, _ := fnPathUnder(path, "secrets")
	return ok && amount >= 0 && amount <= 1000 && host == "example.com" && under == false &&
		!strings.HasSuffix(path, ".key") && len(tags) > 0 && contains(tags, "go")
}

func contains(xs []any, v any) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}
