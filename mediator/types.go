package mediator

import (
	"encoding/json"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// CompleteResult is an upstream's answer to completion/complete, parsed,
// with its completion object as the upstream sent it (RawCompletion; nil
// when it sent none): agents are given those bytes, since mcp-go's
// encoding drops "hasMore": false and "total": 0.
type CompleteResult struct {
	mcp.CompleteResult
	RawCompletion json.RawMessage `json:"-"`
}

// Kind is the kind of object a request acts on. It is the "object kind"
// attribute that policy sees.
type Kind string

// The object kinds.
const (
	KindTool       Kind = "tool"
	KindResource   Kind = "resource"
	KindPrompt     Kind = "prompt"
	KindCompletion Kind = "completion"
	// KindProtocol is a protocol method that acts on no upstream object
	// (initialize, ping, tools/list, ...).
	KindProtocol Kind = "protocol"
)

// Risk grades how much harm a tool can do. The zero value is RiskUnknown,
// which policy treats as the most severe level it knows.
type Risk string

// The risk levels, lowest first.
const (
	RiskUnknown  Risk = ""
	RiskLow      Risk = "low"
	RiskMedium   Risk = "medium"
	RiskHigh     Risk = "high"
	RiskCritical Risk = "critical"
)

// DataClass grades the sensitivity of the data a tool touches.
type DataClass string

// The data classes, least sensitive first.
const (
	DataUnknown      DataClass = ""
	DataPublic       DataClass = "public"
	DataInternal     DataClass = "internal"
	DataConfidential DataClass = "confidential"
	DataPII          DataClass = "pii"
	DataFinancial    DataClass = "financial"
)

// ValidRisk reports whether r names a known risk level (not RiskUnknown).
func ValidRisk(r Risk) bool {
	switch r {
	case RiskLow, RiskMedium, RiskHigh, RiskCritical:
		return true
	}
	return false
}

// ValidDataClass reports whether d names a known data class (not DataUnknown).
func ValidDataClass(d DataClass) bool {
	switch d {
	case DataPublic, DataInternal, DataConfidential, DataPII, DataFinancial:
		return true
	}
	return false
}

// Agent is an authenticated workload: who is calling. For stdio it comes from
// config; over HTTP from the bearer token (see Authenticator).
type Agent struct {
	ID string `json:"id"`
	// Version is the agent's software version (passport claim).
	Version string   `json:"version,omitempty"`
	Roles   []string `json:"roles,omitempty"`
	// Owner is the person or team responsible for the agent.
	Owner string `json:"owner,omitempty"`
	// BusinessFunction is what the agent is for (e.g. "support", "marketing").
	BusinessFunction string            `json:"business_function,omitempty"`
	Attrs            map[string]string `json:"attrs,omitempty"`
	// Confidence is the issuer's confidence in the agent (0..1); 0 when unknown.
	Confidence float64 `json:"confidence,omitempty"`
	// TrustLevel is the behavioural trust level the call is decided at,
	// set by the behaviour check ("" when monitoring is off: policy sees
	// high). A passport claim of it is the agent's ceiling, never its level.
	TrustLevel string `json:"trust_level,omitempty"`
	// TrustCeiling is the highest trust level the passport allows the
	// agent (claim trust_ceiling; "" when it says nothing).
	TrustCeiling string `json:"trust_ceiling,omitempty"`
	// TaskID is the task the credential is bound to, if any.
	TaskID string `json:"task_id,omitempty"`
	// TokenID is the credential's jti, if any. Never the token itself.
	TokenID string `json:"token_id,omitempty"`
}

// Hints are the behaviour annotations an upstream declares for a tool. A nil
// field means the upstream said nothing.
type Hints struct {
	ReadOnly    *bool `json:"readOnly,omitempty"`
	Destructive *bool `json:"destructive,omitempty"`
	Idempotent  *bool `json:"idempotent,omitempty"`
	OpenWorld   *bool `json:"openWorld,omitempty"`
}

// Tool is one upstream tool as the catalog exposes it to agents.
type Tool struct {
	// Name is the catalog name agents call, e.g. "files__read_file".
	Name string `json:"name"`
	// Server is the name of the upstream that serves it.
	Server string `json:"server"`
	// Original is the tool's name at the upstream.
	Original string `json:"original"`
	// Definition is the upstream's tool object exactly as received (raw
	// input/output schemas, annotations, title, description, _meta), with
	// only "name" rewritten to Name.
	Definition json.RawMessage `json:"definition"`
	Risk       Risk            `json:"risk,omitempty"`
	DataClass  DataClass       `json:"data_class,omitempty"`
	Hints      Hints           `json:"hints"`
	// Hash is the hex SHA-256 of the upstream's definition as received, so a
	// change of a tool's description or schema ("rug pull") is visible.
	Hash string `json:"hash"`
	// Args classifies arguments by name, as the operator configured them
	// (tools.<name>.paths, urls, plain): intent constraints on paths and
	// hosts test every argument of their kind.
	Args map[string]ArgKind `json:"args,omitempty"`
	// Order is the tool's position in its upstream's tools/list: agents
	// get tools in the upstreams' order (the catalog itself is by name).
	Order int `json:"order,omitempty"`
	// TaskSupport is the tool's execution.taskSupport as its upstream
	// listed it: TaskOptional, TaskRequired, or "" (forbidden, absent or
	// a value MCP does not define).
	TaskSupport TaskSupport `json:"task_support,omitempty"`
}

// TaskSupport is whether a tool may or must be called as a task (MCP
// 2025-11-25, execution.taskSupport).
type TaskSupport string

// The task support values the mediator acts on; anything else is
// "forbidden", MCP's default.
const (
	TaskOptional TaskSupport = "optional"
	TaskRequired TaskSupport = "required"
)

// ArgKind is what an argument of a tool holds, as far as intent
// constraints are concerned.
type ArgKind string

// The argument kinds.
const (
	// ArgPath: a file system path; prefix and glob constraints test it.
	ArgPath ArgKind = "path"
	// ArgURL: a URL or host name; host constraints test it.
	ArgURL ArgKind = "url"
	// ArgPlain: neither, whatever its name suggests.
	ArgPlain ArgKind = "plain"
)

// Resource is one upstream resource in the catalog. URIs are not rewritten:
// the catalog maps each URI to the upstream that listed it.
type Resource struct {
	URI        string          `json:"uri"`
	Server     string          `json:"server"`
	Definition json.RawMessage `json:"definition"`
	DataClass  DataClass       `json:"data_class,omitempty"`
}

// ResourceTemplate is one upstream resource template in the catalog.
type ResourceTemplate struct {
	URITemplate string          `json:"uriTemplate"`
	Server      string          `json:"server"`
	Definition  json.RawMessage `json:"definition"`
	DataClass   DataClass       `json:"data_class,omitempty"`
}

// Prompt is one upstream prompt in the catalog, namespaced like tools.
type Prompt struct {
	Name       string          `json:"name"`
	Server     string          `json:"server"`
	Original   string          `json:"original"`
	Definition json.RawMessage `json:"definition"`
	Hash       string          `json:"hash"`
	// Order is the prompt's position in its upstream's prompts/list:
	// agents are shown each upstream's prompts in that order.
	Order int `json:"order,omitempty"`
}

// Target is what a request resolved to: the upstream object it acts on.
type Target struct {
	Kind   Kind   `json:"kind"`
	Server string `json:"server,omitempty"`
	// Name is the catalog name (tool, prompt) or URI (resource).
	Name string `json:"name"`
	// Original is the name or URI to send upstream.
	Original  string    `json:"original,omitempty"`
	Risk      Risk      `json:"risk,omitempty"`
	DataClass DataClass `json:"data_class,omitempty"`
	Hints     Hints     `json:"hints"`
	Hash      string    `json:"hash,omitempty"`
}

// Revocation withdraws credentials: one token (JTI), every token bound to a
// task (TaskID), or every token of an agent (AgentID). Exactly one is set.
type Revocation struct {
	JTI     string    `json:"jti,omitempty"`
	TaskID  string    `json:"task_id,omitempty"`
	AgentID string    `json:"agent_id,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
	// Seq orders revocations; set by the store.
	Seq int64 `json:"seq"`
}

// Effect is a policy decision.
type Effect string

// The three decisions. A failure to decide is EffectDeny.
const (
	EffectAllow   Effect = "allow"
	EffectDeny    Effect = "deny"
	EffectApprove Effect = "approve"
)

// Decision is the outcome of authorization for one request.
type Decision struct {
	Effect Effect `json:"effect"`
	// Rule names the rule that matched ("" when none did: default deny).
	Rule string `json:"rule,omitempty"`
	// Reason is a one-line explanation fit for the agent and the auditor.
	Reason string `json:"reason,omitempty"`
	// PolicyVersion is the content hash of the policy that decided.
	PolicyVersion string `json:"policy_version,omitempty"`
	// Shadow is true when the decision was recorded but not enforced.
	Shadow bool `json:"shadow,omitempty"`
}

// IntentVerdict is how a request relates to the intent its session declared.
type IntentVerdict string

// The intent verdicts.
const (
	IntentNone       IntentVerdict = "no_intent"
	IntentInScope    IntentVerdict = "in_scope"
	IntentOutOfScope IntentVerdict = "out_of_scope"
)

// Intent is the result of the intent check for one request.
type Intent struct {
	Verdict IntentVerdict `json:"verdict"`
	Reasons []string      `json:"reasons,omitempty"`
	TaskID  string        `json:"task_id,omitempty"`
	// Score is the optional LLM judge's consistency score (0..1), -1 when
	// no judge ran for the call.
	Score float64 `json:"score,omitempty"`
	// Judge is the LLM judge's opinion, when one was asked.
	Judge *JudgeResult `json:"judge,omitempty"`
	// Suspended is true when this call's drift suspended its task.
	Suspended bool `json:"suspended,omitempty"`
}

// JudgeResult is the opinion of the optional LLM judge on one call. The
// judge can only make a decision stricter: Effect is EffectAllow (no
// objection), EffectApprove or EffectDeny.
type JudgeResult struct {
	Score     float64 `json:"score"`
	Rationale string  `json:"rationale,omitempty"`
	Effect    Effect  `json:"effect"`
	// Cached is true when the opinion came from the judge's cache.
	Cached bool `json:"cached,omitempty"`
	// Fallback names why the judge could not answer (timeout, malformed
	// reply, refusal, error) when Effect is the configured fallback.
	Fallback string `json:"fallback,omitempty"`
}

// TaskStatus is the state of a task.
type TaskStatus string

// The task states. Only an active task lets calls through; a suspended one
// can be resumed by an administrator; completed and revoked are final.
const (
	TaskActive    TaskStatus = "active"
	TaskCompleted TaskStatus = "completed"
	TaskRevoked   TaskStatus = "revoked"
	TaskSuspended TaskStatus = "suspended"
)

// Valid reports whether s is a known task status.
func (s TaskStatus) Valid() bool {
	switch s {
	case TaskActive, TaskCompleted, TaskRevoked, TaskSuspended:
		return true
	}
	return false
}

// ConstraintKind is how a Constraint tests an argument.
type ConstraintKind string

// The constraint kinds.
const (
	// ConstraintPrefix: a path under one of Values (after normalisation).
	ConstraintPrefix ConstraintKind = "prefix"
	// ConstraintGlob: a path matching one of Values ("*" within a segment,
	// "**" across segments).
	ConstraintGlob ConstraintKind = "glob"
	// ConstraintHost: a URL whose host is one of Values ("*.example.com"
	// matches subdomains).
	ConstraintHost ConstraintKind = "host"
	// ConstraintMax: a number no greater than Max.
	ConstraintMax ConstraintKind = "max"
	// ConstraintMin: a number no less than Min. Pair it with max when the
	// argument is a magnitude: max alone lets -1e9 through.
	ConstraintMin ConstraintKind = "min"
	// ConstraintEnum: a value equal to one of Values.
	ConstraintEnum ConstraintKind = "enum"
)

// Constraint limits one named argument of every call in a scope. Path
// constraints (prefix, glob) also test every other argument holding a path,
// and host constraints every argument holding a URL; see package intent.
type Constraint struct {
	// Arg is the top-level argument name.
	Arg    string         `json:"arg"`
	Kind   ConstraintKind `json:"kind"`
	Values []string       `json:"values,omitempty"`
	Max    *float64       `json:"max,omitempty"`
	Min    *float64       `json:"min,omitempty"`
}

// Scope is what an intent allows: tools by catalog-name glob (empty: any
// tool), argument constraints, and the highest data class and risk.
type Scope struct {
	Tools        []string     `json:"tools,omitempty"`
	Constraints  []Constraint `json:"constraints,omitempty"`
	MaxDataClass DataClass    `json:"max_data_class,omitempty"`
	MaxRisk      Risk         `json:"max_risk,omitempty"`
}

// Task is a stored intent: what an agent was asked to do, and the scope its
// calls must stay in. A task is created by an administrator or orchestrator
// (Source "admin", usually with a token bound to it) or declared in-band
// with declare_intent (Source "declared"): a declaration narrows the task
// its token is bound to (ParentID) or binds to its MCP session (SessionID).
type Task struct {
	ID        string     `json:"id"`
	AgentID   string     `json:"agent_id"`
	ParentID  string     `json:"parent_id,omitempty"`
	SessionID string     `json:"session_id,omitempty"`
	Source    string     `json:"source"`
	Purpose   string     `json:"purpose"`
	Scope     Scope      `json:"scope"`
	Status    TaskStatus `json:"status"`
	// StatusBy and StatusReason say who last changed the status and why.
	StatusBy     string    `json:"status_by,omitempty"`
	StatusReason string    `json:"status_reason,omitempty"`
	Prompt       string    `json:"prompt,omitempty"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	Expires      time.Time `json:"expires"`
}

// Task sources.
const (
	TaskSourceAdmin    = "admin"
	TaskSourceDeclared = "declared"
)

// Outcome is how a request ended, as recorded.
type Outcome string

// The outcomes.
const (
	OutcomeOK        Outcome = "ok"         // forwarded and answered
	OutcomeToolError Outcome = "tool_error" // forwarded, upstream returned isError
	OutcomeDenied    Outcome = "denied"     // refused by the mediator
	OutcomeFailed    Outcome = "failed"     // an error (upstream down, timeout, bad input)
	OutcomeCancelled Outcome = "cancelled"  // the agent cancelled or went away
	// OutcomeForwarding marks the write-ahead record of a call that may
	// change things: committed before the call is forwarded. The call's
	// outcome record follows, naming it in Ref.
	OutcomeForwarding Outcome = "forwarding"
	// OutcomeUnknown closes a forwarding record whose outcome was never
	// recorded (the mediator stopped in between): the upstream may have
	// executed the call.
	OutcomeUnknown Outcome = "unknown"
)

// ChainRecord is one entry of the tamper-evident audit chain: one per request
// that reached the pipeline. Arguments and Result are canonical JSON after
// redaction and capping; the store computes Seq, PrevHash and Hash.
type ChainRecord struct {
	Seq       int64     `json:"seq"`
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	SessionID string    `json:"session_id,omitempty"`
	Transport string    `json:"transport,omitempty"`
	// RemoteAddr is the client's IP address, for a request over HTTP.
	RemoteAddr string `json:"remote_addr,omitempty"`
	AgentID    string `json:"agent_id,omitempty"`
	TaskID     string `json:"task_id,omitempty"`
	Method     string `json:"method"`
	Kind       Kind   `json:"kind,omitempty"`
	Server     string `json:"server,omitempty"`
	Name       string `json:"name,omitempty"`
	// ToolHash is the definition hash of the tool called.
	ToolHash string `json:"tool_hash,omitempty"`
	Prompt   string `json:"prompt,omitempty"`
	// Reasoning is the agent's optional reasoning sent with the prompt.
	Reasoning string `json:"reasoning,omitempty"`
	// PromptTruncated is true when the prompt or reasoning was cut to the
	// configured cap.
	PromptTruncated bool            `json:"prompt_truncated,omitempty"`
	Arguments       json.RawMessage `json:"arguments,omitempty"`
	Intent          *Intent         `json:"intent,omitempty"`
	// Behaviour is how the call compared with its agent's baseline, and
	// the trust it was decided at (nil when monitoring is off). A trust
	// change is a record of its own (method TrustChangeMethod).
	Behaviour *Behaviour `json:"behaviour,omitempty"`
	Decision  Decision   `json:"decision"`
	// Approval is the human decision on the call, when it needed one.
	Approval *ApprovalRef `json:"approval,omitempty"`
	Outcome  Outcome      `json:"outcome"`
	// Error is the error text returned to the agent, if any.
	Error      string          `json:"error,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	Truncated  bool            `json:"truncated,omitempty"`
	DurationUS int64           `json:"duration_us"`
	// UpstreamUS is the time spent waiting for the upstream.
	UpstreamUS int64 `json:"upstream_us,omitempty"`
	// Ref is the id of the forwarding record this record completes (the
	// call's outcome, or outcome unknown after a crash).
	Ref string `json:"ref,omitempty"`
	// Writer names the process that wrote a forwarding record
	// (host/pid/start), so that a later start can tell a crashed writer's
	// unfinished forward from a live one's; set by the store.
	Writer string `json:"writer,omitempty"`
	// Scan is what the scanners found in the call's arguments and result
	// (nil when nothing).
	Scan     *ScanReport `json:"scan,omitempty"`
	PrevHash string      `json:"prev_hash"`
	Hash     string      `json:"hash"`
}

// ApprovalRef is the human decision recorded with a call.
type ApprovalRef struct {
	ID       string `json:"id"`
	Approved bool   `json:"approved"`
	Approver string `json:"approver,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// AskedArguments, when the approvers edited the call, are the
	// arguments the agent asked with (redacted); the record's arguments
	// are the edited ones, which ran.
	AskedArguments json.RawMessage `json:"asked_arguments,omitempty"`
}
