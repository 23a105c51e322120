package approvals

import (
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestCallKey(t *testing.T) {
	t.Parallel()
	base := func(agent, task, tool string, args map[string]any) *mediator.Call {
		return &mediator.Call{Name: tool, Arguments: args, Agent: &mediator.Agent{ID: agent, TaskID: task},
			Target: &mediator.Target{Name: tool}, Session: mediator.SessionInfo{ID: "s-" + agent}}
	}
	ref := base("a", "t", "x__y", map[string]any{"n": 1, "s": "v"})
	cases := []struct {
		name string
		c    *mediator.Call
		same bool
	}{
		{"key order does not matter", base("a", "t", "x__y", map[string]any{"s": "v", "n": 1}), true},
		{"another session of the same agent and task", func() *mediator.Call {
			c := base("a", "t", "x__y", map[string]any{"n": 1, "s": "v"})
			c.Session.ID = "other"
			return c
		}(), true},
		{"a changed argument", base("a", "t", "x__y", map[string]any{"n": 2, "s": "v"}), false},
		{"another task", base("a", "t2", "x__y", map[string]any{"n": 1, "s": "v"}), false},
		{"another agent", base("b", "t", "x__y", map[string]any{"n": 1, "s": "v"}), false},
		{"another tool", base("a", "t", "x__z", map[string]any{"n": 1, "s": "v"}), false},
		{"a secret that redaction would hide", base("a", "t", "x__y", map[string]any{"n": 1, "s": "v", "password": "p"}), false},
		{"the tool's definition changed (a rug pull)", func() *mediator.Call {
			c := base("a", "t", "x__y", map[string]any{"n": 1, "s": "v"})
			c.Target.Hash = "sha256-of-the-new-definition"
			return c
		}(), false},
	}
	want, err := CallKey(ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		got, err := CallKey(tc.c)
		if err != nil || (got == want) != tc.same {
			t.Errorf("%s: same=%v (err %v), want %v", tc.name, got == want, err, tc.same)
		}
	}
}

// FuzzGrantPattern: any pattern an approver types either compiles into an
// anchored expression or is refused with ErrInvalidGrant; never a panic.
func FuzzGrantPattern(f *testing.F) {
	for _, s := range []string{`.*`, `\{"amount":[0-9]{1,4}\}`, `(`, `a|b`, `\`, `[[:alpha:]]`} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, pattern string, minutes int) {
		re, err := (&GrantSpec{Minutes: minutes, Pattern: pattern}).compile()
		if err == nil && re.MatchString("x") && !re.MatchString("x") {
			t.Fatal("unstable match")
		}
		if err == nil && (minutes < 1 || minutes > MaxGrantMinutes) {
			t.Fatalf("minutes %d accepted", minutes)
		}
	})
}
