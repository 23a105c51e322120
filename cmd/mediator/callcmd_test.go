package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `mediator call` calls one tool as an agent: the result on stdout, a
// refusal or a held call as exit 1 with the mediator's code and reason,
// bad input as exit 2, no server as a clear error.
func TestE2ECallCommand(t *testing.T) {
	t.Parallel()
	p := startServe(t, approvalConfigHold(t, "100ms"))
	cases := []struct {
		name    string
		args    []string
		code    int
		out     string
		errText []string
	}{
		{"an allowed call", []string{"fake__touch", "--args", `{}`}, 0, "", nil},
		{"held for a human", []string{"fake__echo", "--args", `{"text": "hi"}`}, 1, "",
			[]string{"approval_pending", "/approvals/a/"}},
		{"an unknown tool", []string{"fake__nope"}, 1, "", []string{"tool 'fake__nope' not found"}},
		{"arguments that are not an object", []string{"fake__echo", "--args", `[1]`}, 2, "", []string{"want a JSON object"}},
		{"no tool named", []string{"--args", `{}`}, 2, "", []string{"name the tool first"}},
		{"no server there", []string{"fake__echo", "--url", "http://" + freeAddr(t) + "/mcp"}, 1, "",
			[]string{"nothing answers at", "is mediator serve running there?"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"call"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--url") {
				args = append(args, "--url", p.URL)
			}
			out, errOut, code := runMediator(t, p.Dir, args...)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Fatalf("exit %d, want %d; stdout %q, want %q; stderr:\n%s", code, tc.code, out, tc.out, errOut)
			}
			for _, w := range tc.errText {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// Without auth.anonymous the call needs a token: without one it says how
// to mint it; with $MEDIATOR_TOKEN it is the token's agent.
func TestE2ECallCommandToken(t *testing.T) {
	t.Parallel()
	p := startServe(t, policyFragment(t, "p, *, tool, fake__*, allow, fake-all\n")+`
agent: {id: e2e-agent}
upstreams:
  - name: fake
    command: `+buildTool(t, "tools/testdata/fakeupstream")+`
`)
	_, errOut, code := runMediator(t, p.Dir, "call", "fake__touch", "--url", p.URL)
	if code != 1 || !strings.Contains(errOut, "wants a bearer token: export MEDIATOR_TOKEN=$(mediator token mint") {
		t.Fatalf("without a token: exit %d\n%s", code, errOut)
	}
	tok, errOut, code := runMediator(t, p.Dir, "token", "mint", "--agent", "caller-7", "--server", p.Admin, "--config", filepath.Join(p.Dir, "mediator.yaml"))
	if code != 0 {
		t.Fatalf("token mint: exit %d\n%s", code, errOut)
	}
	cmd := exec.CommandContext(t.Context(), binary(t), "call", "fake__touch", "--url", p.URL)
	cmd.Dir, cmd.Env = p.Dir, append(os.Environ(), "MEDIATOR_TOKEN="+strings.TrimSpace(tok))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("with MEDIATOR_TOKEN: %v\n%s", err, out)
	}
	recs := exportRecords(t, p.Dir, p.DB)
	found := false
	for _, r := range recs {
		if r.AgentID == "caller-7" && r.Name == "fake__touch" {
			found = true
		}
	}
	if !found {
		t.Errorf("no record of caller-7's call among %d records", len(recs))
	}
}
