package mediator

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Upstreams is the catalog of upstream MCP servers and the way to reach them.
// It is implemented by package tools.
//
// Every method that forwards takes the agent's context: cancelling it must
// cancel the upstream request (notifications/cancelled). A Peer in the
// context (see WithPeer) receives the upstream's progress and logging
// notifications and its sampling and elicitation requests for this call.
// Errors are failures to reach or use the upstream and must wrap one of the
// sentinels in errors.go (ErrUpstreamUnavailable, ErrUpstreamTimeout,
// ErrUnknownTool, ...); an upstream's tool-level error is a result with
// IsError set, not an error.
type Upstreams interface {
	// Catalog returns the current merged catalog. The returned value is
	// immutable; a change produces a new Catalog.
	Catalog() *Catalog
	// CallTool forwards tools/call for t with the agent's request (name and
	// progress token are rewritten by the implementation).
	CallTool(ctx context.Context, t Tool, req mcp.CallToolRequest) (*mcp.CallToolResult, error)
	// ReadResource forwards resources/read to server.
	ReadResource(ctx context.Context, server string, req mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error)
	// GetPrompt forwards prompts/get for p.
	GetPrompt(ctx context.Context, p Prompt, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error)
	// Complete forwards completion/complete to server; the request's ref
	// already names the upstream's own prompt name or URI.
	Complete(ctx context.Context, server string, req mcp.CompleteRequest) (*CompleteResult, error)
	// OnChange registers fn to be called (from any goroutine) after the
	// catalog changed.
	OnChange(fn func(*Catalog))
	// Subscribe and Unsubscribe forward resources/subscribe and
	// resources/unsubscribe for uri to server.
	Subscribe(ctx context.Context, server, uri string) error
	Unsubscribe(ctx context.Context, server, uri string) error
	// OnResourceUpdated registers fn to be called (from any goroutine) when
	// an upstream sends notifications/resources/updated. session is the
	// agent session (SessionInfo.Key) whose own upstream session sent it,
	// or "" when it came from the session all agents share.
	OnResourceUpdated(fn func(server, uri, session string))
	// EndSession tells the upstreams that an agent session ended: an
	// upstream that gives each agent session its own upstream session
	// closes that session's.
	EndSession(session string)
	// Isolated reports whether server gives each agent session its own
	// upstream session (so subscriptions are not shared between agents).
	Isolated(server string) bool
	// SetLogLevel forwards an agent session's logging/setLevel (session is
	// its SessionInfo.Key) to the upstream sessions that serve it.
	SetLogLevel(ctx context.Context, session string, level mcp.LoggingLevel)
	// OnLog registers fn to be called (from any goroutine) with an
	// upstream's log message that no call in flight can be named for:
	// session is the agent session whose own upstream session sent it, ""
	// for a shared one.
	OnLog(fn func(server, session string, params map[string]any))
	// RootsChanged passes an agent session's notifications/roots/list_changed
	// (session is its SessionInfo.Key) to the upstream sessions that serve it.
	RootsChanged(session string)
}

// Authenticator turns the credentials presented with a request into an
// Agent. A nil Agent with a nil error never happens: an unusable credential
// is an error wrapping ErrUnauthenticated.
type Authenticator interface {
	Authenticate(ctx context.Context, cred Credentials) (*Agent, error)
}

// Credentials is what the transport saw: a bearer token over HTTP, nothing
// over stdio (identity from config).
type Credentials struct {
	Transport string // "http", "stdio", "local" (the local socket) or "hook"
	Bearer    string
	RemoteIP  string
	// Trace is the W3C trace context of the HTTP request's headers.
	Trace TraceContext
}

// IntentChecker compares a call with the intent declared for its session.
// An error is a failure to check, and callers treat it as a denial.
type IntentChecker interface {
	Check(ctx context.Context, r IntentRequest) (Intent, error)
}

// IntentRequest is what the intent check reads of a call: a copy, so that
// the checker cannot change the call.
type IntentRequest struct {
	// Agent is the authenticated agent.
	Agent *Agent
	// Session names the call's session.
	Session SessionInfo
	// Target is what the call resolved to (nil before resolve).
	Target *Target
	// Arguments are the call's arguments (the checker must not change
	// them; they are the call's own).
	Arguments map[string]any
}

// IntentRequest returns the intent check's view of the call.
func (c *Call) IntentRequest() IntentRequest {
	r := IntentRequest{Session: c.Session, Arguments: c.Arguments}
	if c.Agent != nil {
		a := *c.Agent
		r.Agent = &a
	}
	if c.Target != nil {
		t := *c.Target
		r.Target = &t
	}
	return r
}

// Authorizer decides a request. A Deny is a decision; an error is a failure
// to decide. Callers treat both as deny, and record which it was.
type Authorizer interface {
	Decide(ctx context.Context, req AuthzRequest) (Decision, error)
}

// AuthzRequest is everything policy may look at.
type AuthzRequest struct {
	Agent  Agent
	Target Target
	// Arguments are the call's arguments (nil for listings).
	Arguments map[string]any
	Intent    Intent
	// Behaviour is the behaviour check's view of the call (nil when
	// monitoring is off, and for listings).
	Behaviour *Behaviour
	// Listing is true when the question is "could this agent ever use this
	// object" (tools/list and friends), not "may this call run".
	Listing bool
	// RemoteIP is the client's address ("" for stdio).
	RemoteIP string
	// ArgSecrets is how many secrets the scanner found in Arguments.
	ArgSecrets int
	// Session is what the call's session has touched so far (zero for
	// listings).
	Session SessionFlow
	// Workspace is the project directory of an agent tool use.
	Workspace string
}

// Approver asks a human. Await blocks until the request is decided, the
// configured hold runs out (ErrApprovalPending, carrying the approval id) or
// ctx ends. A Verdict with Approved false is a denial with a reason.
type Approver interface {
	Await(ctx context.Context, p Pending) (Verdict, error)
}

// Pending is a call waiting for approval.
type Pending struct {
	Call     *Call
	Decision Decision
}

// Verdict is a human's decision.
type Verdict struct {
	Approved   bool
	ApprovalID string
	Approver   string
	Reason     string
	// Arguments, on an approval, are the arguments the approvers edited
	// the call to (a canonical JSON object); nil when approved as asked.
	// The pipeline runs the edited call through intent and policy again
	// before it forwards it.
	Arguments json.RawMessage
	// Asked is set by the pipeline when it runs an edit: the arguments
	// the agent asked with, as the record holds them (redacted).
	Asked json.RawMessage
}

// Recorder appends records to the audit chain. Record returns once the
// record is durable (committed), or an error: a caller must not release a
// result whose record failed. Implementations batch concurrent records.
type Recorder interface {
	Record(ctx context.Context, r ChainRecord) error
}

// Peer is the agent side of a session, as seen by an upstream mid-call: the
// way back for notifications and server-to-client requests.
type Peer interface {
	// Notify sends a notification (progress, logging) to the agent.
	Notify(ctx context.Context, method string, params map[string]any) error
	// CreateMessage relays a sampling request; ErrNotSupported when the
	// agent's client did not declare the capability.
	CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error)
	// Elicit relays an elicitation request; ErrNotSupported when the agent's
	// client did not declare the capability.
	Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error)
	// ListRoots relays roots/list; ErrNotSupported when the agent's client
	// did not declare roots.
	ListRoots(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error)
	// SessionID identifies the agent session (for per-session upstreams).
	SessionID() string
	// ClientCapabilities is what the agent's client declared when its
	// session began (for an upstream session of the agent's own, which is
	// offered the same).
	ClientCapabilities() mcp.ClientCapabilities
	// NotifySession sends a notification that belongs to the agent session
	// rather than to the call (notifications/elicitation/complete): on the
	// session's own stream, also after the call has been answered.
	// ErrNotSupported once the session has ended.
	NotifySession(method string, params map[string]any) error
}

// RevocationStore persists revocations so that every mediator process
// sharing a database honours them. Implemented by package store.
type RevocationStore interface {
	// Revoke records r durably.
	Revoke(ctx context.Context, r Revocation) error
	// RevocationsSince returns the revocations with Seq > after, in order.
	RevocationsSince(ctx context.Context, after int64) ([]Revocation, error)
}

// SettingStore persists small shared settings (the alert level) so that
// every mediator process sharing a database sees them. Implemented by
// package store.
type SettingStore interface {
	Setting(ctx context.Context, key string) (value string, ok bool, err error)
	SetSetting(ctx context.Context, key, value string) error
}

// TaskStore persists tasks (stored intents) so that every mediator process
// sharing a database sees them. Implemented by package store.
type TaskStore interface {
	// CreateTask stores t; its ID must be new.
	CreateTask(ctx context.Context, t Task) error
	// Task returns the task with id; ok is false when there is none.
	Task(ctx context.Context, id string) (t Task, ok bool, err error)
	// Tasks returns the tasks matching f, newest first.
	Tasks(ctx context.Context, f TaskFilter) ([]Task, error)
	// SetTaskStatus moves task id to status to, recording by and reason.
	// When from is not empty the task must be in one of those states, or
	// the error wraps ErrTaskState. It returns the updated task.
	SetTaskStatus(ctx context.Context, id string, to TaskStatus, by, reason string, from ...TaskStatus) (Task, error)
}

// TaskFilter selects tasks. Zero fields match everything; Limit 0 means
// the implementation's default (100).
type TaskFilter struct {
	AgentID   string
	ParentID  string
	SessionID string
	Status    TaskStatus
	Limit     int
}

// IntentDeclarer serves the mediator's own in-band tools, declare_intent
// and complete_task. A Deps.Intent that implements it enables them.
type IntentDeclarer interface {
	// Declare records the intent d declares for its session and returns
	// the task that now binds the session. A declaration that would widen
	// the scope the agent's token is bound to is refused (ErrInvalidRequest).
	Declare(ctx context.Context, d Declaration) (Task, error)
	// CompleteTask ends the task bound to the agent's session: its token
	// stops working. (Upstreams.Complete is MCP's completion/complete.)
	CompleteTask(ctx context.Context, a *Agent, s SessionInfo, reason string) (Task, error)
}

// Declaration is one declare_intent call.
type Declaration struct {
	Agent   *Agent
	Session SessionInfo
	Purpose string
	// Scope is nil when the agent declared only a purpose.
	Scope *Scope
	// TTL bounds the declaration (0: the default, never past the token's task).
	TTL    time.Duration
	Prompt string
}
