package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrToolQuarantined is wrapped by the error of a call to a tool whose
// definition is not (or no longer) the one an administrator reviewed.
var ErrToolQuarantined = errors.New("tool quarantined")

// ErrWithheld is wrapped by the error of a prompts/get of a prompt the
// supply guard withholds: the scanner found its definition poisoned.
var ErrWithheld = errors.New("definition withheld")

// WithheldPrompt is an upstream prompt the supply guard withholds from
// agents, and why.
type WithheldPrompt struct {
	Name   string `json:"name"`
	Server string `json:"server"`
	Reason string `json:"reason"`
}

// Severity ranks a scanner finding. A high finding in a tool definition
// quarantines the tool even on first sight.
type Severity string

// The severities, lowest first.
const (
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

// Finding is one thing a scanner matched: the rule, how bad it is, where
// (a JSON path such as description or inputSchema.properties.path.default)
// and the matched text, quoted and cut so that it is safe to show.
type Finding struct {
	Rule     string   `json:"rule"`
	Family   string   `json:"family"`
	Severity Severity `json:"severity"`
	Path     string   `json:"path,omitempty"`
	Match    string   `json:"match,omitempty"`
}

// PinState is where a tool definition stands in review.
type PinState string

// The pin states. Only a pinned tool is served (in pinning mode strict).
const (
	// PinPinned: the definition served is the one pinned on first sight
	// or approved by an administrator.
	PinPinned PinState = "pinned"
	// PinNew: a tool that appeared after the upstream's tool set was
	// first pinned, or one whose first definition had a high finding.
	PinNew PinState = "new"
	// PinChanged: the upstream now describes a pinned tool differently.
	PinChanged PinState = "changed"
	// PinRejected: an administrator rejected the definition offered.
	PinRejected PinState = "rejected"
)

// ToolPin is the stored review state of one upstream tool, by its original
// (upstream) name.
type ToolPin struct {
	Server string   `json:"server"`
	Tool   string   `json:"tool"`
	State  PinState `json:"state"`
	// Hash and Definition are the approved definition ("" and nil when
	// none was ever approved).
	Hash       string          `json:"hash,omitempty"`
	Definition json.RawMessage `json:"definition,omitempty"`
	// SeenHash and SeenDefinition are the definition the upstream offers
	// now, when it is not the approved one (what a review decides on).
	SeenHash       string          `json:"seen_hash,omitempty"`
	SeenDefinition json.RawMessage `json:"seen_definition,omitempty"`
	// Findings are the scanner's findings on the offered definition.
	Findings  []Finding `json:"findings,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	Updated   time.Time `json:"updated"`
	// Reviewer and Note are the last review's.
	Reviewer string `json:"reviewer,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Pending reports whether the pin waits for an administrator.
func (p ToolPin) Pending() bool { return p.State == PinNew || p.State == PinChanged }

// PinStore keeps the tool pins. A store that cannot be read makes every
// tool of the upstream quarantined (fail closed).
type PinStore interface {
	// ToolPins returns the pins of server's tools.
	ToolPins(ctx context.Context, server string) ([]ToolPin, error)
	// PutToolPins inserts or replaces pins of server and records the hash
	// of the server's whole tool set.
	PutToolPins(ctx context.Context, server, setHash string, pins []ToolPin) error
	// ToolSetHash returns the hash of server's tool set as last recorded,
	// "" when its tools were never seen (first sight).
	ToolSetHash(ctx context.Context, server string) (string, error)
	// ReviewToolPin approves or rejects the definition with hash seenHash
	// offered for server's tool; a definition that has changed since the
	// reviewer saw it is refused (ErrReviewStale).
	ReviewToolPin(ctx context.Context, server, tool, seenHash string, approve bool, reviewer, note string) (ToolPin, error)
}

// SupplyMethod is the method of the audit record of a tool-supply event: a
// tool set pinned on first sight, a tool quarantined, a review.
const SupplyMethod = "mediator/supply"

// ErrResultBlocked is wrapped by the error of a call whose result held a
// secret, from an upstream configured to block such results.
var ErrResultBlocked = errors.New("result blocked")

// ErrReviewStale is returned when a review names a definition that is no
// longer the one offered.
var ErrReviewStale = errors.New("the definition changed since it was shown")

// ErrPinNotFound is returned for a review of a tool with no pin.
var ErrPinNotFound = errors.New("no such tool pin")

// QuarantinedTool is a tool withheld from agents, and why.
type QuarantinedTool struct {
	Tool   Tool     `json:"tool"`
	State  PinState `json:"state"`
	Reason string   `json:"reason"`
}

// Vetted is what a supply guard lets through from one upstream listing.
type Vetted struct {
	Serve       []Tool
	Quarantined []QuarantinedTool
}

// ScanReport is what the scanners found in one call: secrets in its
// arguments and result, and injection markers in its result.
type ScanReport struct {
	// ArgSecrets and ResultSecrets are the secrets found in the arguments
	// and the result (stored as "in_arguments" and "in_result": the
	// store hides the values of members whose names say secret).
	ArgSecrets    []Finding `json:"in_arguments,omitempty"`
	ResultSecrets []Finding `json:"in_result,omitempty"`
	Injections    []Finding `json:"injections,omitempty"`
	// Definition holds the findings on a tool definition, in the record
	// of a supply event (method SupplyMethod).
	Definition []Finding `json:"definition,omitempty"`
	// Action is what was done with the result's secrets: redacted,
	// blocked or flagged.
	Action string `json:"action,omitempty"`
}

// Empty reports whether nothing was found.
func (s *ScanReport) Empty() bool {
	return s == nil || (len(s.ArgSecrets) == 0 && len(s.ResultSecrets) == 0 && len(s.Injections) == 0 &&
		len(s.Definition) == 0 && s.Action == "")
}

// SessionFlow is what a session has touched so far: policy reads it as
// r.session so that rules can follow data across calls.
type SessionFlow struct {
	// Tainted: a result with injection markers reached the session.
	Tainted bool `json:"tainted,omitempty"`
	// MaxDataClass is the highest data class the session has read.
	MaxDataClass DataClass `json:"max_data_class,omitempty"`
	// SecretsSeen: a result held a secret (redacted or not).
	SecretsSeen bool `json:"secrets_seen,omitempty"`
}

// Inspector scans what flows through a call: secrets in the arguments
// before policy, secrets and injection markers in the result before the
// agent sees it.
type Inspector interface {
	// Arguments scans the call's arguments for secrets; the findings go
	// to policy (r.obj.ArgSecrets) and the record.
	Arguments(c *Call) []Finding
	// Result scans c.Result and redacts, blocks or flags what it finds by
	// the upstream's configuration; an error withholds the result.
	Result(ctx context.Context, c *Call) error
}
