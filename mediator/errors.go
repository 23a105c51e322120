package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Sentinel errors. Every error the pipeline returns wraps one of them, so the
// edge can turn it into the right JSON-RPC error or tool error and the
// recorder into the right outcome. Error text never holds secrets or raw
// arguments.
var (
	// ErrUnauthenticated: no usable credential.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrDenied: policy, intent or a human said no.
	ErrDenied = errors.New("denied")
	// ErrPolicy: the policy could not decide (fails closed as a denial).
	ErrPolicy = errors.New("policy error")
	// ErrApprovalPending: a human has not decided yet; repeat the call later.
	ErrApprovalPending = errors.New("approval pending")
	// ErrApprovalUnavailable: a rule asked for approval but no approver is configured.
	ErrApprovalUnavailable = errors.New("approval required but no approval queue is configured")
	// ErrUnknownTool: no tool, prompt or resource of that name in the catalog.
	ErrUnknownTool = errors.New("unknown tool")
	// ErrUnknownResource: no upstream serves that URI.
	ErrUnknownResource = errors.New("unknown resource")
	// ErrUnknownPrompt: no prompt of that name in the catalog.
	ErrUnknownPrompt = errors.New("unknown prompt")
	// ErrMethodNotAllowed: a method outside the mediator's table.
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrInvalidRequest: malformed parameters.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUpstreamUnavailable: the upstream is down, restarting or died mid-call.
	ErrUpstreamUnavailable = errors.New("upstream unavailable")
	// ErrUpstreamTimeout: the upstream did not answer within its timeout.
	ErrUpstreamTimeout = errors.New("upstream timeout")
	// ErrUpstream: the upstream answered with a protocol error.
	ErrUpstream = errors.New("upstream error")
	// ErrAudit: the audit record could not be written; the call is refused.
	ErrAudit = errors.New("audit unavailable")
	// ErrNotSupported: the agent's client lacks a capability (sampling, elicitation).
	ErrNotSupported = errors.New("not supported by the client")
	// ErrTaskState: a task is not in a state that allows the change asked for.
	ErrTaskState = errors.New("task state")
	// ErrUnknownTask: no task with that id.
	ErrUnknownTask = errors.New("unknown task")
	// ErrInternal: a bug (a recovered panic); fails closed.
	ErrInternal = errors.New("internal error")
	// ErrInvalidIdentity: an agent id, owner or approver name that could
	// pass for another (invisible characters, mixed scripts); see
	// CheckIdentity.
	ErrInvalidIdentity = errors.New("invalid identity")
)

// sentinels is the one table of the sentinel errors: the stable machine
// code an error result carries in _meta (ErrorCode), and whether the error
// is the mediator refusing the call — recorded as denied — rather than
// failing at it (IsDenial). The most specific come first. A test keeps
// it in step with the Err* variables of the package.
var sentinels = []struct {
	err    error
	code   string
	denial bool
}{
	{ErrApprovalPending, "approval_pending", true},
	{ErrApprovalUnavailable, "approval_unavailable", true},
	{ErrDenied, "denied", true},
	{ErrPolicy, "policy_error", true},
	{ErrUnauthenticated, "unauthenticated", true},
	{ErrInvalidIdentity, "invalid_identity", true},
	{ErrUnknownTool, "unknown_tool", true},
	{ErrToolQuarantined, "tool_quarantined", true},
	{ErrWithheld, "definition_withheld", true},
	{ErrUnknownPrompt, "unknown_prompt", true},
	{ErrUnknownResource, "unknown_resource", true},
	{ErrMethodNotAllowed, "method_not_allowed", true},
	{ErrInvalidRequest, "invalid_request", true},
	{ErrAudit, "audit_unavailable", true},
	// Forwarded, and the result withheld: the upstream may have acted.
	{ErrResultBlocked, "result_blocked", false},
	{ErrUpstreamTimeout, "upstream_timeout", false},
	{ErrUpstreamUnavailable, "upstream_unavailable", false},
	{ErrUpstream, "upstream_error", false},
	{ErrNotSupported, "not_supported", false},
	{ErrTaskState, "task_state", false},
	{ErrUnknownTask, "unknown_task", false},
	{ErrInternal, "internal_error", false},
	// Of approvers, administrators and their stores, not of agents' calls.
	{ErrUnknownApproval, "unknown_approval", false},
	{ErrApprovalDecided, "approval_decided", false},
	{ErrApprovalExpired, "approval_expired", false},
	{ErrApprovalForbidden, "approval_forbidden", false},
	{ErrUnknownApprover, "unknown_approver", false},
	{ErrReviewStale, "review_stale", false},
	{ErrPinNotFound, "pin_not_found", false},
	{context.Canceled, "cancelled", false},
	{context.DeadlineExceeded, "timeout", false},
}

// ErrorCode is a short stable name for the sentinel an error wraps.
func ErrorCode(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	return "internal_error"
}

// IsDenial reports whether err is the mediator refusing the call (a
// denial, an unknown or withheld object, bad input, no audit), as opposed
// to a failure of the upstream or of the mediator itself.
func IsDenial(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.denial
		}
	}
	return false
}

// ArgumentError is a call whose arguments do not fit what a policy rule
// reads: an argument the rule needs is missing, or of another type than
// the rule compares it with. It is the agent's mistake, not the policy's;
// it wraps ErrInvalidRequest and the call is denied.
type ArgumentError struct {
	// Rule names the rule that reads the argument.
	Rule string
	// Arg is the argument's path below r.obj.Args ("path", "payee.iban").
	Arg string
	// Problem says what is wrong: "is required", "is a string, but the
	// rule compares it with a boolean".
	Problem string
}

func (e *ArgumentError) Error() string {
	return fmt.Sprintf("argument %q %s by rule %s", e.Arg, e.Problem, e.Rule)
}

// Unwrap makes errors.Is(err, ErrInvalidRequest) true.
func (e *ArgumentError) Unwrap() error { return ErrInvalidRequest }

// DenyError is a denial with the data a caller may need.
type DenyError struct {
	Decision Decision
	// Hint tells the agent what to do next.
	Hint string
}

func (e *DenyError) Error() string {
	msg := "denied by policy"
	if e.Decision.Rule != "" {
		msg += " (rule " + e.Decision.Rule + ")"
	}
	if e.Decision.Reason != "" {
		msg += ": " + e.Decision.Reason
	}
	if e.Hint != "" {
		msg += ". " + e.Hint
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrDenied) true.
func (e *DenyError) Unwrap() error { return ErrDenied }

// PendingError says a call awaits a human decision.
type PendingError struct {
	ApprovalID string
	URL        string
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("approval pending: a human must approve this call (approval %s, decide at %s); "+
		"repeat the identical call later and it will run once approved", e.ApprovalID, e.URL)
}

// Unwrap makes errors.Is(err, ErrApprovalPending) true.
func (e *PendingError) Unwrap() error { return ErrApprovalPending }

// UpstreamRPCError is an upstream's JSON-RPC error response to a request
// the mediator forwarded. It reaches the agent as a JSON-RPC error with
// the upstream's own code, message and data (see passthrough.go), so that
// a client sees what it would see calling the upstream directly; the
// record names the upstream and method as well. It wraps ErrUpstream.
type UpstreamRPCError struct {
	// Upstream and Method say who answered what.
	Upstream, Method string
	// Code, Message and Data are the upstream's error, Message cut to
	// MaxUpstreamErrorText bytes and Data dropped (and said so in
	// Message) when over MaxUpstreamErrorData.
	Code    int
	Message string
	Data    json.RawMessage
}

// MaxUpstreamErrorText and MaxUpstreamErrorData bound an upstream error
// passed on to the agent.
const (
	MaxUpstreamErrorText = 1024
	MaxUpstreamErrorData = 64 << 10
)

func (e *UpstreamRPCError) Error() string {
	return fmt.Sprintf("upstream %q answered %s with error %d: %s", e.Upstream, e.Method, e.Code, e.Message)
}

// Unwrap makes errors.Is(err, ErrUpstream) true.
func (e *UpstreamRPCError) Unwrap() error { return ErrUpstream }
