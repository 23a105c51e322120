package mediator

import (
	"context"
	"errors"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// NewRecord builds the chain record of a finished call. The store redacts,
// caps and hashes it.
func NewRecord(c *Call, callErr error, end time.Time) ChainRecord {
	r := ChainRecord{
		ID:              c.ID,
		Time:            c.Started.UTC(),
		SessionID:       c.Session.ID,
		Transport:       c.Session.Transport,
		RemoteAddr:      c.Credentials.RemoteIP,
		Method:          c.Method,
		Name:            c.Name,
		Prompt:          c.Prompt,
		Reasoning:       c.Reasoning,
		PromptTruncated: c.PromptTruncated,
		Decision:        c.Decision,
		Outcome:         OutcomeOf(c, callErr),
		DurationUS:      end.Sub(c.Started).Microseconds(),
		UpstreamUS:      c.UpstreamUS,
		Ref:             c.ForwardID,
	}
	if c.Session.Key != "" {
		r.SessionID = c.Session.Key
	}
	if c.Agent != nil {
		r.AgentID = c.Agent.ID
		r.TaskID = c.Agent.TaskID
	}
	if c.Intent.TaskID != "" {
		// The task the call was checked against: the token's task, or the
		// intent declared in-band for the session.
		r.TaskID = c.Intent.TaskID
	}
	if v := c.Verdict; v != nil && v.ApprovalID != "" {
		r.Approval = &ApprovalRef{ID: v.ApprovalID, Approved: v.Approved, Approver: v.Approver, Reason: v.Reason, AskedArguments: v.Asked}
	}
	if c.Target != nil {
		r.Kind, r.Server, r.ToolHash = c.Target.Kind, c.Target.Server, c.Target.Hash
		if c.Target.Kind != KindProtocol {
			in := c.Intent
			r.Intent = &in
		}
		r.Behaviour = c.Behaviour
	}
	if c.RecordArguments != nil {
		r.Arguments = c.RecordArguments
	} else if c.Arguments != nil {
		if b, err := CanonicalValue(c.Arguments); err == nil {
			r.Arguments = b
		}
	}
	if !c.Scan.Empty() {
		r.Scan = c.Scan
	}
	if callErr != nil {
		r.Error = callErr.Error()
		if r.Decision.Effect == "" || r.Decision.Effect == EffectAllow && r.Outcome == OutcomeDenied {
			r.Decision.Effect = EffectDeny
		}
	}
	if c.Method == MethodToolUse {
		r.Result = toolUseAnswer(c, callErr)
	} else if callErr == nil && c.RecordResult != nil {
		r.Result = c.RecordResult
	} else {
		r.Result = c.ResultJSON()
	}
	return r
}

// NewForwardingRecord builds the write-ahead record of c: the call as it
// is about to be forwarded, with a fresh id, outcome forwarding and no
// result. Its outcome record will name it in Ref.
func NewForwardingRecord(c *Call, now time.Time) ChainRecord {
	r := NewRecord(c, nil, now)
	r.ID, r.Ref, r.Outcome, r.Result, r.UpstreamUS = NewID(), "", OutcomeForwarding, nil, 0
	return r
}

// NeedsWriteAhead reports whether c may change things, so that it must be
// recorded before it is forwarded: a tool call whose upstream does not
// mark the tool read-only. Reading resources and prompts, listings and
// completions change nothing.
func NeedsWriteAhead(c *Call) bool {
	if _, ok := c.Request.(*mcp.CallToolRequest); !ok || c.Target == nil || c.Target.Kind != KindTool {
		return false
	}
	return c.Target.Hints.ReadOnly == nil || !*c.Target.Hints.ReadOnly
}

// OutcomeOf classifies how a call ended.
func OutcomeOf(c *Call, err error) Outcome {
	switch {
	case err == nil && c.IsToolError():
		return OutcomeToolError
	case err == nil && c.Method == MethodToolUse:
		return OutcomeAllowed
	case err == nil:
		return OutcomeOK
	case errors.Is(err, context.Canceled):
		return OutcomeCancelled
	case IsDenial(err):
		return OutcomeDenied
	default:
		return OutcomeFailed
	}
}

type agentKey struct{}

// WithAgent returns a context carrying the authenticated agent.
func WithAgent(ctx context.Context, a *Agent) context.Context {
	return context.WithValue(ctx, agentKey{}, a)
}

// AgentFromContext returns the agent set by WithAgent, or nil.
func AgentFromContext(ctx context.Context) *Agent {
	a, _ := ctx.Value(agentKey{}).(*Agent)
	return a
}
