// Package claudecode speaks Claude Code's hook protocol for the mediator:
// a PreToolUse hook asks whether one of Claude Code's own tools (Bash,
// Edit, Write, WebFetch, ...) may run, a PostToolUse hook reports what it
// did. Both are answered by the mediator's chain (mediator.Server
// DecideToolUse and RecordToolOutcome), as a command hook (`mediator hook
// claude-code`, one process per tool use) or as Claude Code's http hook
// pointed at `mediator serve` (Handler).
//
// Whatever goes wrong — a malformed, oversized or unknown event, a tool
// the mediator does not know, an unreachable mediator — a PreToolUse is
// answered "deny" with the reason, never left to Claude Code's own
// default: a hook that fails or times out lets the tool run.
package claudecode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/mcp-mediator/mediator/mediator"
)

// Client names Claude Code in records.
const Client = "claude-code"

// MaxEventBytes caps a hook event (a Write's content, a Read's output).
const MaxEventBytes = 8 << 20

// The hook events the mediator answers.
const (
	EventPreToolUse  = "PreToolUse"
	EventPostToolUse = "PostToolUse"
	// EventPostToolUseFailure is sent by newer Claude Code versions when
	// a tool failed.
	EventPostToolUseFailure = "PostToolUseFailure"
)

// Event is a Claude Code hook event, as Claude Code sends it on the hook's
// stdin (or as the body of an http hook).
type Event struct {
	SessionID      string         `json:"session_id"`
	TranscriptPath string         `json:"transcript_path"`
	Cwd            string         `json:"cwd"`
	HookEventName  string         `json:"hook_event_name"`
	ToolName       string         `json:"tool_name"`
	ToolInput      map[string]any `json:"tool_input"`
	ToolUseID      string         `json:"tool_use_id"`
	ToolResponse   any            `json:"tool_response"`
	// Error is the failure of PostToolUseFailure.
	Error          string `json:"error"`
	PermissionMode string `json:"permission_mode"`
}

// Parse reads one event, refusing what the mediator cannot decide: more
// than MaxEventBytes, not one JSON object, an event it does not answer, a
// tool use without a tool name or input.
func Parse(r io.Reader) (Event, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxEventBytes+1))
	if err != nil {
		return Event{}, fmt.Errorf("%w: the hook event could not be read: %w", mediator.ErrInvalidRequest, err)
	}
	return ParseBytes(body)
}

// ParseBytes is Parse of a read body.
func ParseBytes(body []byte) (Event, error) {
	if len(body) > MaxEventBytes {
		return Event{}, fmt.Errorf("%w: the hook event is larger than %d bytes; the mediator refuses tool uses it cannot read whole",
			mediator.ErrInvalidRequest, MaxEventBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var e Event
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("%w: the hook event is not a JSON object of Claude Code's hook format: %w", mediator.ErrInvalidRequest, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: the hook event holds more than one JSON value", mediator.ErrInvalidRequest)
	}
	normalizeNumbers(e.ToolInput)
	switch e.HookEventName {
	case EventPreToolUse, EventPostToolUse, EventPostToolUseFailure:
	case "":
		return e, fmt.Errorf("%w: the hook event has no hook_event_name; configure the mediator for PreToolUse and PostToolUse", mediator.ErrInvalidRequest)
	default:
		return e, fmt.Errorf("%w: the mediator answers PreToolUse, PostToolUse and PostToolUseFailure, not %q; remove it from the hook's events",
			mediator.ErrInvalidRequest, trim(e.HookEventName, 64))
	}
	if e.ToolName == "" {
		return e, fmt.Errorf("%w: the hook event names no tool (tool_name)", mediator.ErrInvalidRequest)
	}
	if e.ToolInput == nil && e.HookEventName == EventPreToolUse {
		return e, fmt.Errorf("%w: the hook event carries no tool_input object", mediator.ErrInvalidRequest)
	}
	if e.Cwd != "" && !filepath.IsAbs(e.Cwd) {
		return e, fmt.Errorf("%w: the hook event's cwd %q is not an absolute path", mediator.ErrInvalidRequest, trim(e.Cwd, 128))
	}
	for _, f := range []struct{ name, v string }{{"session_id", e.SessionID}, {"tool_use_id", e.ToolUseID}, {"tool_name", e.ToolName}} {
		if len(f.v) > 256 {
			return e, fmt.Errorf("%w: the hook event's %s is %d bytes; the limit is 256", mediator.ErrInvalidRequest, f.name, len(f.v))
		}
	}
	return e, nil
}

// normalizeNumbers turns json.Number into float64, as policy expects.
func normalizeNumbers(m map[string]any) {
	for k, v := range m {
		m[k] = normalizeValue(v)
	}
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case map[string]any:
		normalizeNumbers(x)
	case []any:
		for i := range x {
			x[i] = normalizeValue(x[i])
		}
	}
	return v
}

// Decider is the part of the mediator a hook talks to.
type Decider interface {
	DecideToolUse(ctx context.Context, creds mediator.Credentials, u mediator.ToolUse) mediator.ToolUseVerdict
	RecordToolOutcome(ctx context.Context, creds mediator.Credentials, o mediator.ToolOutcome) error
	AgentToolName(client, name string) string
}

// Answer handles one event and returns the hook's output JSON. A parse
// error (perr) answers a PreToolUse "deny" with its reason.
func Answer(ctx context.Context, d Decider, creds mediator.Credentials, e Event, perr error) []byte {
	if perr != nil {
		if e.HookEventName == EventPostToolUse || e.HookEventName == EventPostToolUseFailure {
			return output(map[string]any{"systemMessage": "MCP Mediator could not record this tool's outcome: " + perr.Error()})
		}
		return Deny(perr.Error())
	}
	tool := d.AgentToolName(Client, e.ToolName)
	switch e.HookEventName {
	case EventPreToolUse:
		v := d.DecideToolUse(ctx, creds, mediator.ToolUse{Tool: tool, Input: e.ToolInput, UseID: e.ToolUseID,
			Session: e.SessionID, Client: Client, Workspace: e.Cwd})
		if v.Allow {
			return decision("allow", "MCP Mediator: "+v.Reason)
		}
		return Deny(v.Reason)
	default:
		o := mediator.ToolOutcome{Tool: tool, UseID: e.ToolUseID, Session: e.SessionID, Client: Client, Workspace: e.Cwd,
			Response: e.ToolResponse, Failed: e.HookEventName == EventPostToolUseFailure}
		if o.Failed && o.Response == nil {
			o.Response = e.Error
		}
		if err := d.RecordToolOutcome(ctx, creds, o); err != nil {
			return output(map[string]any{"systemMessage": "MCP Mediator could not record this tool's outcome: " + err.Error()})
		}
		return output(map[string]any{"suppressOutput": true})
	}
}

// Deny is the PreToolUse answer that refuses the tool, with the reason
// Claude Code shows the model.
func Deny(reason string) []byte {
	return decision("deny", "MCP Mediator refused this tool use: "+reason)
}

func decision(d, reason string) []byte {
	return output(map[string]any{"hookSpecificOutput": map[string]any{
		"hookEventName": EventPreToolUse, "permissionDecision": d, "permissionDecisionReason": reason}})
}

func output(v map[string]any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"MCP Mediator could not encode its answer"}}`)
	}
	return append(b, '\n')
}

// IsDecision reports whether b is a hook answer the mediator could have
// written: one JSON object (what an attached hook passes on).
func IsDecision(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// errMethod is answered to a request that is not a POST.
var errMethod = errors.New("the Claude Code hook endpoint takes POST requests with the hook event as the body")
