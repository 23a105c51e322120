package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyCLI runs one command line in-process.
func policyCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		lookup: func(string) (string, bool) { return "", false }}
	err = Run(t.Context(), args, e)
	return out.String(), errb.String(), err
}

func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

func examplePath(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "examples", "policy", name)
}

func TestPolicyTestCLI(t *testing.T) {
	t.Parallel()
	failing := filepath.Join(t.TempDir(), "failing.yaml")
	if err := os.WriteFile(failing, []byte(`env: {time: "2026-03-03T10:00"}
cases:
  - {name: echo allowed, agent: {id: a}, call: {tool: demo__echo}, want: allow, rule: echo}
  - {name: echo wrongly expected denied, agent: {id: a}, call: {tool: demo__echo}, want: deny}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	quickstart := filepath.Join(repoRoot(t), "examples", "quickstart", "mediator.yaml")
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"example cases pass on the embedded policy", []string{"policy", "test", examplePath(t, "cases.yaml")}, 0, " 0 failed"},
		{"and on the quickstart config, flags after the file", []string{"policy", "test", examplePath(t, "cases.yaml"), "--config", quickstart}, 0, "PASS quickstart echoes: allow by rule echo"},
		{"a mismatch exits 1 and says why", []string{"policy", "test", "--config", quickstart, failing}, 1,
			"FAIL echo wrongly expected denied (" + failing + ":4): got allow by rule echo, want deny"},
		{"no cases file", []string{"policy", "test"}, 2, ""},
		{"two cases files", []string{"policy", "test", failing, failing}, 2, ""},
		{"a missing cases file", []string{"policy", "test", "nope.yaml"}, 1, ""},
		{"an unknown subcommand", []string{"policy", "lint"}, 2, ""},
		{"help", []string{"policy", "--help"}, 0, "policy explain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, err := policyCLI(t, tc.args...)
			if code := exitCode(err); code != tc.code || !strings.Contains(out, tc.out) {
				t.Fatalf("exit %d (%v), want %d; stdout:\n%s\nstderr:\n%s", code, err, tc.code, out, errOut)
			}
		})
	}
}

func TestPolicyExplainCLI(t *testing.T) {
	t.Parallel()
	transfer := []string{"policy", "explain", "--agent", "payments-bot", "--role", "finance", "--tool", "demo__transfer_funds"}
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"a decision with every attribute and the deciding rule", append(transfer, "--args", `{"amount": 5000}`, "--at", "2026-03-03T10:00"), 0,
			[]string{"decision  approve by rule funds-above-limit", `r.obj.DataClassName      "financial"`, `r.obj.Args               {"amount":5000}`,
				"r.env.BusinessHours      true", "→  approve   funds-above-limit", "r.obj.Args.amount > 1000"}},
		{"a missing argument is shown as the call's mistake", append(transfer, "--args", `{}`, "--at", "2026-03-03T10:00"), 0,
			[]string{`deny: argument "amount" is required by rule funds-far-above-limit (the call's mistake)`}},
		{"default deny", []string{"policy", "explain", "--agent", "a", "--tool", "demo__fetch_url", "--args", `{"url": "https://example.com"}`}, 0,
			[]string{"no rule matched: denied by default"}},
		{"flags override the catalog", []string{"policy", "explain", "--agent", "a", "--role", "support", "--tool", "demo__lookup_customer",
			"--data-class", "public", "--alert", "incident", "--read-only", "--ip", "203.0.113.1", "--args", `{"query": "x"}`}, 0,
			[]string{`r.obj.DataClassName      "public"`, `r.env.Network            "public"`, `r.env.AlertName          "incident"`, "r.obj.ReadOnly           true"}},
		{"a resource", []string{"policy", "explain", "--agent", "a", "--resource", "demo://crm/schema"}, 0, []string{"allow by rule demo-resources"}},
		{"a listing ignores arguments", []string{"policy", "explain", "--agent", "a", "--role", "finance", "--tool", "demo__transfer_funds", "--listing"}, 0,
			[]string{"approve by rule funds-above-limit"}},
		{"no agent", []string{"policy", "explain", "--tool", "demo__echo"}, 2, nil},
		{"no object", []string{"policy", "explain", "--agent", "a"}, 2, nil},
		{"two objects", []string{"policy", "explain", "--agent", "a", "--tool", "x", "--prompt", "y"}, 2, nil},
		{"arguments that are not an object", []string{"policy", "explain", "--agent", "a", "--tool", "demo__echo", "--args", "[1]"}, 2, nil},
		{"a bad time", []string{"policy", "explain", "--agent", "a", "--tool", "demo__echo", "--at", "noon"}, 2, nil},
		{"a bad alert level", []string{"policy", "explain", "--agent", "a", "--tool", "demo__echo", "--alert", "red"}, 2, nil},
		{"a bad intent", []string{"policy", "explain", "--agent", "a", "--tool", "demo__echo", "--intent", "maybe"}, 2, nil},
		{"a bad attribute flag", []string{"policy", "explain", "--agent", "a", "--tool", "demo__echo", "--attr", "novalue"}, 2, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// --offline: the embedded default's admin API is a default port,
			// where a developer's own mediator may answer.
			out, errOut, err := policyCLI(t, append(tc.args, "--offline")...)
			if code := exitCode(err); code != tc.code {
				t.Fatalf("exit %d (%v), want %d; stderr:\n%s", code, err, tc.code, errOut)
			}
			flat := strings.Join(strings.Fields(out), " ")
			for _, w := range tc.want {
				if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// policy explain takes a tool's hints, risk and data class from the live
// catalog when a mediator's admin API answers, as the chain sees the tool;
// offline, from the config alone, which does not know the upstream's
// hints. The intent score is -1 (no judge), as in the chain.
func TestE2EPolicyExplainLive(t *testing.T) {
	t.Parallel()
	rules := "p, *, tool, fake__*, approve, destructive-needs-a-human, r.obj.Destructive\np, *, tool, fake__*, allow, fake-all\n"
	p := startServe(t, policyFragment(t, rules)+`
agent: {id: e2e-agent}
upstreams:
  - name: fake
    command: `+buildTool(t, "tools/testdata/fakeupstream")+`
    tools:
      wipe: {data_class: internal}
`)
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	cases := []struct {
		name          string
		tool          string
		extra         []string
		want, wantErr []string
		dontWant      []string
	}{
		{"the live catalog", "fake__wipe", []string{"--admin-url", p.Admin},
			[]string{"decision approve by rule destructive-needs-a-human", "r.obj.Destructive true", `r.obj.DataClassName "internal"`,
				"r.intent.Score -1", "catalog the live catalog of the mediator at " + p.Admin}, nil, nil},
		{"a flag still wins", "fake__wipe", []string{"--admin-url", p.Admin, "--data-class", "pii"},
			[]string{`r.obj.DataClassName "pii"`, "r.obj.Destructive true"}, nil, nil},
		{"offline", "fake__wipe", []string{"--offline"},
			[]string{"decision allow by rule fake-all", "r.obj.Destructive false", "catalog the config and the flags"}, nil,
			[]string{"live catalog"}},
		{"a tool the live catalog lacks", "fake__nope", []string{"--admin-url", p.Admin},
			[]string{"catalog the config and the flags (the live catalog has no such tool)"},
			[]string{"has no tool fake__nope in its catalog, so a call to it is refused as unknown_tool"}, nil},
		{"no mediator answers", "fake__wipe", []string{"--admin-url", "http://" + freeAddr(t)},
			[]string{"decision allow by rule fake-all", "catalog the config and the flags"},
			[]string{"no mediator admin API answers", "pass --read-only or --destructive"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"policy", "explain", "--agent", "a", "--tool", tc.tool, "--config", cfg}, tc.extra...)
			out, errOut, code := runMediator(t, p.Dir, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			flatOut, flatErr := strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(errOut), " ")
			for _, w := range tc.want {
				if !strings.Contains(flatOut, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(flatErr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(flatOut, w) {
					t.Errorf("stdout has %q:\n%s", w, out)
				}
			}
		})
	}
}
