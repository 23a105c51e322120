package mediator

import (
	"encoding/json"
	"time"
)

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
	// TrustLevel is the behavioural trust level ("" = normal until
	// behavioural monitoring lands).
	TrustLevel string `json:"trust_level,omitempty"`
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
}

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
	// Score is the optional LLM judge's consistency score (0..1), -1 if unused.
	Score float64 `json:"score,omitempty"`
}

// Outcome is how a request ended, as recorded.
type Outcome string

// The outcomes.
const (
	OutcomeOK        Outcome = "ok"         // forwarded and answered
	OutcomeToolError Outcome = "tool_error" // forwarded, upstream returned isError
	OutcomeDenied    Outcome = "denied"     // refused by the mediator
	OutcomeFailed    Outcome = "failed"     // an error (upstream down, timeout, bad input)
	OutcomeCancelled Outcome = "cancelled"  // the agent cancelled or went away
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
	AgentID   string    `json:"agent_id,omitempty"`
	TaskID    string    `json:"task_id,omitempty"`
	Method    string    `json:"method"`
	Kind      Kind      `json:"kind,omitempty"`
	Server    string    `json:"server,omitempty"`
	Name      string    `json:"name,omitempty"`
	// ToolHash is the definition hash of the tool called.
	ToolHash  string          `json:"tool_hash,omitempty"`
	Prompt    string          `json:"prompt,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Intent    *Intent         `json:"intent,omitempty"`
	Decision  Decision        `json:"decision"`
	Outcome   Outcome         `json:"outcome"`
	// Error is the error text returned to the agent, if any.
	Error      string          `json:"error,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	Truncated  bool            `json:"truncated,omitempty"`
	DurationUS int64           `json:"duration_us"`
	// UpstreamUS is the time spent waiting for the upstream.
	UpstreamUS int64  `json:"upstream_us,omitempty"`
	PrevHash   string `json:"prev_hash"`
	Hash       string `json:"hash"`
}
