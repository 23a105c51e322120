package mediator

import (
	"encoding/json"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Call is one agent request as it moves through the pipeline. Each step
// reads what the steps before it filled in and adds its own part; the record
// step turns the finished Call into a ChainRecord.
type Call struct {
	// ID is the mediator's id for this request (also the record id).
	ID string
	// Method is the MCP method, e.g. "tools/call".
	Method string
	// Name is what the agent asked for: a catalog tool or prompt name, a URI.
	Name string
	// Arguments are the call's arguments as the agent sent them.
	Arguments map[string]any
	// Prompt is the user request that led to the call (from _meta), capped.
	Prompt string
	// Reasoning is the agent's optional reasoning sent with the prompt, capped.
	Reasoning string
	// PromptTruncated is true when Prompt or Reasoning was cut to the cap.
	PromptTruncated bool
	// Started is when the request entered the pipeline.
	Started time.Time
	// entered is the monotonic time the call entered the chain, for
	// Telemetry (zero when it is off).
	entered time.Time
	// Trace is the trace context the agent sent: the request's _meta, or
	// else its HTTP headers (for Tracer; never recorded).
	Trace TraceContext

	// Workspace is the project directory of an agent tool use (absolute;
	// "" for MCP calls).
	Workspace string

	// Session describes the agent's session.
	Session SessionInfo
	// Credentials are what the transport saw (never recorded).
	Credentials Credentials

	// Filled in by the steps.
	Agent  *Agent
	Target *Target
	Intent Intent
	// Behaviour is the behaviour check's view of the call (nil when
	// behavioural monitoring is off or the call never reached it).
	Behaviour  *Behaviour
	Decision   Decision
	Verdict    *Verdict
	UpstreamUS int64
	// ForwardID is the id of the call's write-ahead record, once committed.
	ForwardID string
	// Scan is what the inspector found in the arguments and the result.
	Scan *ScanReport
	// Flow is what the call's session had touched before it.
	Flow SessionFlow
	// RecordArguments and RecordResult, when set, are what the record
	// holds instead of the arguments and result (the inspector's redacted
	// copies).
	RecordArguments json.RawMessage
	RecordResult    json.RawMessage

	// Request is the agent's original request object, forwarded upstream
	// (one of the mcp request types).
	Request any
	// Result is the upstream's answer (one of the mcp result types).
	Result any

	// recorded is the encoding of Result the call's record took (when
	// it took Result's): rawresult.go compares the upstream's bytes with
	// it rather than encode Result again.
	recorded json.RawMessage
}

// SessionInfo is what the mediator knows about the agent's session.
type SessionInfo struct {
	// ID is the MCP session id ("stdio" for every stdio process).
	ID string
	// Key names the session in records and intent bindings: "stdio-" and
	// a random id per stdio process; the MCP session id of a stateful HTTP
	// session; "token-" and the jti for stateless HTTP (see sessionKey).
	Key       string
	Transport string // "http", "stdio", "local" (the local socket) or "hook"
	Client    string // client name and version from initialize
}

// PromptMetaKey is the _meta key on tools/call (and declare_intent) that
// carries the user's request that led to the call. Its value is a string,
// or an object {"text": "...", "reasoning": "..."}. Both texts are capped
// (Caps.PromptBytes each) and the record says when they were cut. Every
// _meta key under "io.mcp-mediator/" is removed before a call is forwarded.
const PromptMetaKey = "io.mcp-mediator/prompt"

// ServerMetaKey is the _meta key of a log message relayed to an agent that
// names the upstream it came from (its logger stays the upstream's).
const ServerMetaKey = "io.mcp-mediator/server"

// ResultJSON returns the call's result as JSON, or nil.
func (c *Call) ResultJSON() json.RawMessage {
	if c.Result == nil {
		return nil
	}
	b, err := json.Marshal(c.Result)
	if err != nil {
		return nil
	}
	return b
}

// IsToolError reports whether the result is a tool result with isError set.
func (c *Call) IsToolError() bool {
	r, ok := c.Result.(*mcp.CallToolResult)
	return ok && r != nil && r.IsError
}
