package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestParseCasesRejects(t *testing.T) {
	t.Parallel()
	const head = "env: {time: '2026-03-03T10:00'}\ncases:\n"
	cases := []struct {
		name, text, want string
	}{
		{"unknown key", head + "- {name: a, agent: {id: x}, call: {tool: t}, want: allow, expect: allow}\n", "field expect not found"},
		{"misspelt call key", head + "- {name: a, agent: {id: x}, call: {tol: t}, want: allow}\n", "field tol not found"},
		{"no name", head + "- {agent: {id: x}, call: {tool: t}, want: allow}\n", "cases.yaml:3: case \"\": name is empty"},
		{"duplicate name", head + "- {name: a, agent: {id: x}, call: {tool: t}, want: allow}\n- {name: a, agent: {id: x}, call: {tool: t}, want: deny}\n",
			"cases.yaml:4: case \"a\": name already used on line 3"},
		{"unknown decision", head + "- {name: a, agent: {id: x}, call: {tool: t}, want: maybe}\n", `want "maybe"`},
		{"no agent", head + "- {name: a, call: {tool: t}, want: allow}\n", "agent.id is empty"},
		{"no object", head + "- {name: a, agent: {id: x}, call: {}, want: allow}\n", "exactly one of"},
		{"two objects", head + "- {name: a, agent: {id: x}, call: {tool: t, prompt: p}, want: allow}\n", "exactly one of"},
		{"unknown kind", head + "- {name: a, agent: {id: x}, call: {name: t, kind: method}, want: allow}\n", `kind "method"`},
		{"unknown risk", head + "- {name: a, agent: {id: x}, call: {tool: t, risk: huge}, want: allow}\n", `risk "huge"`},
		{"unknown data class", head + "- {name: a, agent: {id: x}, call: {tool: t, data_class: secret}, want: allow}\n", `data_class "secret"`},
		{"no time anywhere", "cases:\n- {name: a, agent: {id: x}, call: {tool: t}, want: allow}\n", "env.time is missing"},
		{"bad time", head + "- {name: a, agent: {id: x}, call: {tool: t}, env: {time: tuesday}, want: allow}\n", `time "tuesday"`},
		{"bad alert", head + "- {name: a, agent: {id: x}, call: {tool: t}, env: {alert: red}, want: allow}\n", `alert level "red"`},
		{"bad ip", head + "- {name: a, agent: {id: x}, call: {tool: t}, env: {ip: 10.0.0}, want: allow}\n", `env.ip "10.0.0"`},
		{"bad verdict", head + "- {name: a, agent: {id: x}, call: {tool: t}, intent: {verdict: yes}, want: allow}\n", `verdict "yes"`},
		{"an error that allows", head + "- {name: a, agent: {id: x}, call: {tool: t}, want: allow, error: true}\n", "needs want: deny"},
		{"not YAML", "cases: [", "cases.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCases([]byte(tc.text), "cases.yaml")
			if err == nil || !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrInvalidPolicy mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCaseResults(t *testing.T) {
	t.Parallel()
	e := loadExample(t)
	text := `env: {time: "2026-03-03T10:00"}
objects:
  demo__transfer_funds: {data_class: financial}
cases:
  - {name: right, agent: {id: a}, call: {tool: demo__echo}, want: allow, rule: echo}
  - {name: wrong effect, agent: {id: a}, call: {tool: demo__echo}, want: deny}
  - {name: wrong rule, agent: {id: a}, call: {tool: demo__echo}, want: allow, rule: sandbox-read}
  - {name: default deny expected, agent: {id: a}, call: {tool: x__y}, want: deny, rule: ""}
  - {name: unexpected error, agent: {id: f, roles: [finance]}, call: {tool: demo__transfer_funds}, want: deny}
  - {name: expected error, agent: {id: f, roles: [finance]}, call: {tool: demo__transfer_funds}, want: deny, error: true}
  - {name: missing error, agent: {id: a}, call: {tool: demo__echo}, want: deny, error: true}
`
	cf, err := ParseCases([]byte(text), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"right":                 "",
		"wrong effect":          "got allow by rule echo, want deny",
		"wrong rule":            "got allow by rule echo, want allow by rule sandbox-read",
		"default deny expected": "",
		"unexpected error":      `got deny: argument "amount" is required`,
		"expected error":        "",
		"missing error":         "want deny: policy error",
	}
	for _, r := range e.Test(cf) {
		if w := want[r.Case.Name]; (w == "") != r.Pass || !strings.Contains(r.Problem, w) {
			t.Errorf("%s: pass=%v problem=%q, want problem %q", r.Case.Name, r.Pass, r.Problem, w)
		}
		if !strings.HasPrefix(r.Where, "t.yaml:") {
			t.Errorf("%s: where %q", r.Case.Name, r.Where)
		}
	}
}

func TestCaseRequest(t *testing.T) {
	t.Parallel()
	text := `objects:
  demo__write_file: {risk: medium, data_class: internal, read_only: false, destructive: true}
  demo://crm/schema: {kind: resource}
env: {time: "2026-03-03T10:00", ip: 10.0.0.1, alert: elevated}
cases:
  - name: overrides
    agent: {id: a, roles: [r], confidence: 0.5, attrs: {team: blue}}
    call: {tool: demo__write_file, risk: high, read_only: true, arguments: {n: 3}}
    env: {ip: 127.0.0.1}
    intent: {verdict: in_scope, reasons: [fits]}
    want: allow
  - name: resource server from the scheme
    agent: {id: a}
    call: {resource: "demo://crm/schema"}
    want: allow
`
	cf, err := ParseCases([]byte(text), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	req, s, err := cf.request(&cf.Cases[0], time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	tg := req.Target
	if tg.Server != "demo" || tg.Risk != mediator.RiskHigh || tg.DataClass != mediator.DataInternal || !*tg.Hints.ReadOnly || !*tg.Hints.Destructive {
		t.Fatalf("target %+v", tg)
	}
	if req.RemoteIP != "127.0.0.1" || s.Alert != AlertElevated || !s.Time.Equal(tuesday10) || req.Arguments["n"] != 3 ||
		req.Intent.Verdict != mediator.IntentInScope || req.Agent.Attrs["team"] != "blue" {
		t.Fatalf("request %+v, situation %+v", req, s)
	}
	req, _, err = cf.request(&cf.Cases[1], time.UTC)
	if err != nil || req.Target.Kind != mediator.KindResource || req.Target.Server != "demo" {
		t.Fatalf("resource target %+v, %v", req.Target, err)
	}
}

// FuzzParseCases: arbitrary case files never panic; what parses builds.
func FuzzParseCases(f *testing.F) {
	f.Add([]byte(readText(f, exampleCases)))
	f.Add([]byte("cases: [{name: a, agent: {id: x}, call: {tool: t}, env: {time: '2026-03-03T10:00'}, want: allow}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := ParseCases(data, "fuzz.yaml")
		if err != nil {
			return
		}
		for i := range cf.Cases {
			if _, _, err := cf.request(&cf.Cases[i], time.UTC); err != nil {
				t.Fatalf("case %q parsed but does not build: %v", cf.Cases[i].Name, err)
			}
		}
	})
}
