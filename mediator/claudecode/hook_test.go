package claudecode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body, err string
	}{
		{"a tool use", `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls","timeout":1200},"cwd":"/p","session_id":"s","tool_use_id":"t"}`, ""},
		{"an outcome", `{"hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{},"tool_response":{"stdout":"x"},"cwd":"/p"}`, ""},
		{"not JSON", `{"hook_event_name":`, "not a JSON object"},
		{"an array", `[1]`, "not a JSON object"},
		{"two values", `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{}} {}`, "more than one"},
		{"no event", `{"tool_name":"Bash","tool_input":{}}`, "no hook_event_name"},
		{"another event", `{"hook_event_name":"Stop"}`, "not \"Stop\""},
		{"no tool", `{"hook_event_name":"PreToolUse","tool_input":{}}`, "names no tool"},
		{"no input", `{"hook_event_name":"PreToolUse","tool_name":"Bash"}`, "no tool_input"},
		{"input not an object", `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"rm -rf /"}`, "not a JSON object"},
		{"relative cwd", `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{},"cwd":"p"}`, "not an absolute path"},
		{"long tool name", `{"hook_event_name":"PreToolUse","tool_name":"` + strings.Repeat("B", 300) + `","tool_input":{}}`, "limit is 256"},
		{"oversized", `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"c":"` + strings.Repeat("x", MaxEventBytes) + `"}}`, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Parse(strings.NewReader(tc.body))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if v, ok := e.ToolInput["timeout"]; ok && v != 1200.0 {
					t.Errorf("numbers are not float64: %T", v)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, mediator.ErrInvalidRequest) {
				t.Fatalf("Parse error %v, want %q", err, tc.err)
			}
		})
	}
}

// fakeDecider answers by tool name.
type fakeDecider struct {
	got      []mediator.ToolUse
	outcomes []mediator.ToolOutcome
}

func (f *fakeDecider) DecideToolUse(_ context.Context, _ mediator.Credentials, u mediator.ToolUse) mediator.ToolUseVerdict {
	f.got = append(f.got, u)
	if u.Tool == "claude__Read" {
		return mediator.ToolUseVerdict{Allow: true, Reason: "allowed (rule r)"}
	}
	return mediator.ToolUseVerdict{Reason: "denied by policy (rule no)"}
}

func (f *fakeDecider) RecordToolOutcome(_ context.Context, _ mediator.Credentials, o mediator.ToolOutcome) error {
	f.outcomes = append(f.outcomes, o)
	if o.UseID == "broken" {
		return errors.New("store down")
	}
	return nil
}

func (f *fakeDecider) AgentToolName(_, name string) string { return "claude__" + name }

func decisionOf(t *testing.T, b []byte) (string, string) {
	t.Helper()
	var raw map[string]map[string]string
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("answer not JSON: %s", b)
	}
	h := raw["hookSpecificOutput"]
	if h["hookEventName"] != EventPreToolUse {
		t.Fatalf("answer without hookEventName: %s", b)
	}
	return h["permissionDecision"], h["permissionDecisionReason"]
}

func TestAnswer(t *testing.T) {
	t.Parallel()
	f := &fakeDecider{}
	ctx := context.Background()
	ev := func(tool string) Event {
		return Event{HookEventName: EventPreToolUse, ToolName: tool, ToolInput: map[string]any{"file_path": "/p/x"}, Cwd: "/p",
			SessionID: "s1", ToolUseID: "u1"}
	}
	if d, r := decisionOf(t, Answer(ctx, f, mediator.Credentials{}, ev("Read"), nil)); d != "allow" || !strings.Contains(r, "rule r") {
		t.Errorf("allow: %s %s", d, r)
	}
	if d, r := decisionOf(t, Answer(ctx, f, mediator.Credentials{}, ev("Bash"), nil)); d != "deny" || !strings.Contains(r, "rule no") {
		t.Errorf("deny: %s %s", d, r)
	}
	if d, r := decisionOf(t, Answer(ctx, f, mediator.Credentials{}, Event{}, errors.New("bad event"))); d != "deny" || !strings.Contains(r, "bad event") {
		t.Errorf("parse error: %s %s", d, r)
	}
	if u := f.got[0]; u.Tool != "claude__Read" || u.Session != "s1" || u.UseID != "u1" || u.Workspace != "/p" || u.Client != Client {
		t.Errorf("tool use passed as %+v", u)
	}
	post := Event{HookEventName: EventPostToolUseFailure, ToolName: "Bash", ToolUseID: "u2", Error: "exit 1"}
	if out := Answer(ctx, f, mediator.Credentials{}, post, nil); !bytes.Contains(out, []byte(`"suppressOutput":true`)) {
		t.Errorf("outcome answer: %s", out)
	}
	if o := f.outcomes[0]; !o.Failed || o.Response != "exit 1" {
		t.Errorf("failure outcome passed as %+v", o)
	}
	post.ToolUseID = "broken"
	if out := Answer(ctx, f, mediator.Credentials{}, post, nil); !bytes.Contains(out, []byte("could not record")) {
		t.Errorf("outcome failure answer: %s", out)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"},"cwd":"/p"}`))
	f.Add([]byte(`{"hook_event_name":"PostToolUse","tool_name":"Write","tool_input":{},"tool_response":[1,{"a":null}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseBytes(b)
		if err != nil {
			if !errors.Is(err, mediator.ErrInvalidRequest) {
				t.Fatalf("error without its cause: %v", err)
			}
			out := Answer(context.Background(), &fakeDecider{}, mediator.Credentials{}, e, err)
			if !IsDecision(out) {
				t.Fatalf("an unreadable event was not answered: %s", out)
			}
			return
		}
		if e.ToolName == "" || e.HookEventName == EventPreToolUse && e.ToolInput == nil {
			t.Fatalf("accepted an event it cannot decide: %+v", e)
		}
	})
}
