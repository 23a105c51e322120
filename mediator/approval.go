package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// ApprovalState is where an approval is in its life:
//
//	pending ──approve (enough approvers)──► approved ──identical call runs──► consumed
//	   │ ──deny (with reason)──────────────► denied
//	   └ ──expiry passes undecided─────────► expired
//
// approved, denied and expired are decisions; each is delivered to the
// agent once (Delivered is set when the waiting or repeated call took it),
// after which an identical call needs a new approval.
type ApprovalState string

// The approval states.
const (
	ApprovalPending  ApprovalState = "pending"
	ApprovalApproved ApprovalState = "approved"
	ApprovalDenied   ApprovalState = "denied"
	ApprovalExpired  ApprovalState = "expired"
)

// ApproverRole is what a signed-in person may do on the approval page.
type ApproverRole string

// The approver roles.
const (
	// RoleApprover decides pending approvals.
	RoleApprover ApproverRole = "approver"
	// RoleAdmin decides and sees everything.
	RoleAdmin ApproverRole = "admin"
	// RoleAuditor reads the queue and the history but never decides.
	RoleAuditor ApproverRole = "auditor"
)

// ValidApproverRole reports whether r is a known role.
func ValidApproverRole(r ApproverRole) bool {
	return r == RoleApprover || r == RoleAdmin || r == RoleAuditor
}

// Approval is one call waiting for, or decided by, a human. It holds what
// an approver needs to decide without looking elsewhere. Arguments and
// Prompt are stored redacted; the call's identity is Key, computed before
// redaction, so two calls that differ only in a secret never share it.
type Approval struct {
	ID string `json:"id"`
	// Key identifies the call: agent, task, tool and canonical arguments.
	Key   string        `json:"key"`
	State ApprovalState `json:"state"`
	// Rev increases with every change of any approval (change feed).
	Rev     int64     `json:"rev"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`

	CallID     string          `json:"call_id"`
	AgentID    string          `json:"agent_id"`
	AgentOwner string          `json:"agent_owner,omitempty"`
	TaskID     string          `json:"task_id,omitempty"`
	SessionID  string          `json:"session_id,omitempty"`
	Transport  string          `json:"transport,omitempty"`
	Client     string          `json:"client,omitempty"`
	Purpose    string          `json:"purpose,omitempty"`
	Prompt     string          `json:"prompt,omitempty"`
	Server     string          `json:"server"`
	Tool       string          `json:"tool"`
	Arguments  json.RawMessage `json:"arguments,omitempty"`
	Risk       Risk            `json:"risk,omitempty"`
	DataClass  DataClass       `json:"data_class,omitempty"`
	Rule       string          `json:"rule,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Intent     Intent          `json:"intent"`
	// Reasoning is the agent's reasoning sent with the call (_meta), capped.
	Reasoning string `json:"reasoning,omitempty"`
	// Declared is the task the call was checked against when it is not
	// the token's own (an intent declared in-band, or a narrowing of the
	// token's task): its id, source, purpose and scope.
	Declared *DeclaredIntent `json:"declared,omitempty"`
	// Policy is the deciding rule said in words, when a policy rule
	// decided (nil for the mediator's own decisions).
	Policy *PolicyText `json:"policy,omitempty"`
	// Askers are the other agent sessions that repeated this call while it
	// waited (newest last, at most MaxApprovalAskers).
	Askers []ApprovalAsker `json:"askers,omitempty"`
	// Behaviour is how the call compared with the agent's baseline, and
	// the agent's trust when it asked (nil when monitoring is off).
	Behaviour *Behaviour `json:"behaviour,omitempty"`
	// Earlier are the session's calls before this one, oldest first, as
	// recorded (redacted) when the approval was queued.
	Earlier []ChainRecord `json:"earlier,omitempty"`
	// Required is how many distinct approvers must approve (1 or 2).
	Required  int                `json:"required"`
	Decisions []ApprovalDecision `json:"decisions,omitempty"`
	// Decided is when the approval left pending; zero while pending.
	Decided time.Time `json:"decided,omitzero"`
	// Delivered is when the decision reached the agent (a waiting or a
	// repeated call took it); zero until then.
	Delivered time.Time `json:"delivered,omitzero"`
	// DeliveredTo is the id of the call that took the decision.
	DeliveredTo string `json:"delivered_to,omitempty"`
}

// DeclaredIntent is the task a call was checked against.
type DeclaredIntent struct {
	TaskID  string `json:"task_id"`
	Source  string `json:"source,omitempty"`
	Purpose string `json:"purpose,omitempty"`
	Scope   Scope  `json:"scope"`
}

// PolicyText is a policy rule said for people: the sentence, the comment
// above it in the policy file, where it is, and the condition as written.
type PolicyText struct {
	Sentence  string `json:"sentence"`
	Note      string `json:"note,omitempty"`
	Where     string `json:"where,omitempty"`
	Condition string `json:"condition,omitempty"`
}

// MaxApprovalAskers bounds Approval.Askers.
const MaxApprovalAskers = 10

// ApprovalAsker is a session that repeated a waiting call.
type ApprovalAsker struct {
	SessionID string    `json:"session_id"`
	Transport string    `json:"transport,omitempty"`
	Client    string    `json:"client,omitempty"`
	CallID    string    `json:"call_id,omitempty"`
	At        time.Time `json:"at"`
}

// AddAsker records ask on a: a session already listed moves to the end,
// the oldest beyond MaxApprovalAskers go, and the session that queued the
// approval is not listed. It reports whether a changed.
func AddAsker(a *Approval, ask ApprovalAsker) bool {
	if ask.SessionID == "" || ask.SessionID == a.SessionID {
		return false
	}
	a.Askers = slices.DeleteFunc(a.Askers, func(x ApprovalAsker) bool { return x.SessionID == ask.SessionID })
	a.Askers = append(a.Askers, ask)
	if n := len(a.Askers) - MaxApprovalAskers; n > 0 {
		a.Askers = slices.Delete(a.Askers, 0, n)
	}
	return true
}

// ApprovalDecision is one person's decision on an approval.
type ApprovalDecision struct {
	Approver string    `json:"approver"`
	Approve  bool      `json:"approve"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	// Arguments, on an approval, are the arguments the approver edited
	// the call to (canonical JSON object): the call runs with them
	// instead of the asked ones, after intent and policy decide again.
	// Nil: approved as asked. Every approver of a two-person approval
	// approves the same arguments.
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// MaxEditedArgumentsBytes bounds the arguments an approver may edit a
// call to.
const MaxEditedArgumentsBytes = 64 << 10

// Edited returns the arguments the approving decisions edited the call to
// (nil when they approved it as asked).
func (a Approval) Edited() json.RawMessage {
	for _, d := range a.Decisions {
		if d.Approve {
			return d.Arguments
		}
	}
	return nil
}

// SameArguments reports whether two approving decisions approve the same
// call: both as asked, or both edited to equal canonical JSON.
func SameArguments(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	ca, err1 := CanonicalJSON(a)
	cb, err2 := CanonicalJSON(b)
	return err1 == nil && err2 == nil && bytes.Equal(ca, cb)
}

// Final reports whether the approval has left pending.
func (a *Approval) Final() bool { return a.State != ApprovalPending }

// DeniedBy returns the denying decision, if any.
func (a *Approval) DeniedBy() (ApprovalDecision, bool) {
	for _, d := range a.Decisions {
		if !d.Approve {
			return d, true
		}
	}
	return ApprovalDecision{}, false
}

// ApprovalGrant lets identical-tool calls in one scope run without a new
// approval for a while, when their canonical arguments fully match Pattern
// (a Go regular expression).
type ApprovalGrant struct {
	ID         string    `json:"id"`
	ApprovalID string    `json:"approval_id"`
	AgentID    string    `json:"agent_id"`
	TaskID     string    `json:"task_id,omitempty"`
	SessionID  string    `json:"session_id,omitempty"`
	Tool       string    `json:"tool"`
	Pattern    string    `json:"pattern"`
	Approver   string    `json:"approver"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
}

// ApproverAccount is a person who may sign in to the approval page.
type ApproverAccount struct {
	Name string       `json:"name"`
	Role ApproverRole `json:"role"`
	// PasswordHash is a bcrypt hash; never the password.
	PasswordHash string    `json:"-"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
}

// ApprovalFilter selects approvals. Zero fields match everything.
type ApprovalFilter struct {
	State    ApprovalState
	AgentID  string
	Tool     string
	Approver string
	// AfterRev keeps approvals changed after this revision.
	AfterRev int64
	// Limit keeps the newest Limit (<= 0: a default of 200).
	Limit int
}

// Errors of the approval store and queue.
var (
	// ErrUnknownApproval: no approval (or account) with that id.
	ErrUnknownApproval = errors.New("unknown approval")
	// ErrApprovalDecided: the approval was already decided.
	ErrApprovalDecided = errors.New("approval already decided")
	// ErrApprovalExpired: the approval expired before the decision.
	ErrApprovalExpired = errors.New("approval expired")
	// ErrApprovalForbidden: this person may not make this decision
	// (own agent, auditor role, second approval by the same person).
	ErrApprovalForbidden = errors.New("decision not allowed")
	// ErrUnknownApprover: no approver account of that name.
	ErrUnknownApprover = errors.New("unknown approver")
)

// ApprovalStore persists approvals so that every mediator process sharing
// a database sees them. Implemented by package store; consumed by package
// approvals. Every state change is atomic across processes.
type ApprovalStore interface {
	// OpenApproval stores a as pending, unless an approval with a.Key whose
	// decision was not yet delivered exists: then it returns that one and
	// created is false.
	OpenApproval(ctx context.Context, a Approval) (got Approval, created bool, err error)
	// Approval returns one approval; ErrUnknownApproval when there is none.
	Approval(ctx context.Context, id string) (Approval, error)
	// UndeliveredApproval returns the newest approval for key whose decision
	// was not delivered yet (pending included, even past its expiry: only
	// ExpireApprovals expires); ok is false when none.
	UndeliveredApproval(ctx context.Context, key string, now time.Time) (a Approval, ok bool, err error)
	// DecideApproval adds d to a pending approval. A denial decides at once;
	// approvals decide when Required distinct approvers agreed. It fails
	// with ErrUnknownApproval, ErrApprovalDecided, ErrApprovalExpired (the
	// approval is left pending for ExpireApprovals) or ErrApprovalForbidden
	// (the same approver twice).
	DecideApproval(ctx context.Context, id string, d ApprovalDecision) (Approval, error)
	// DeliverApproval marks a decided approval's decision delivered to
	// callID. It reports false when another call took it first, or when the
	// approval is still pending: exactly one call takes each decision.
	DeliverApproval(ctx context.Context, id, callID string, now time.Time) (bool, error)
	// ExpireApprovals marks pending approvals past their expiry expired and
	// returns them.
	ExpireApprovals(ctx context.Context, now time.Time) ([]Approval, error)
	// Approvals lists approvals matching f, newest first.
	Approvals(ctx context.Context, f ApprovalFilter) ([]Approval, error)
	// NoteApprovalAsker adds ask to a pending approval's Askers (a
	// session already listed moves to the end; the oldest beyond
	// MaxApprovalAskers are dropped). A decided approval is left alone.
	NoteApprovalAsker(ctx context.Context, id string, ask ApprovalAsker) error
	// LastApprovalRev returns the highest revision, to follow changes.
	LastApprovalRev(ctx context.Context) (int64, error)

	// AddGrant stores g; MatchingGrants returns the unexpired grants for
	// the agent, task, session and tool.
	AddGrant(ctx context.Context, g ApprovalGrant) error
	MatchingGrants(ctx context.Context, agentID, taskID, sessionID, tool string, now time.Time) ([]ApprovalGrant, error)
}

// ApproverDirectory persists approver accounts. Implemented by package
// store.
type ApproverDirectory interface {
	// PutApprover creates or replaces an account.
	PutApprover(ctx context.Context, a ApproverAccount) error
	// DeleteApprover removes an account; ErrUnknownApprover when absent.
	DeleteApprover(ctx context.Context, name string) error
	// Approver returns an account; ErrUnknownApprover when absent.
	Approver(ctx context.Context, name string) (ApproverAccount, error)
	// Approvers lists every account by name.
	Approvers(ctx context.Context) ([]ApproverAccount, error)
}

// WithheldPrefix starts the text that stands, on the approval page, for
// an argument value withheld from the approver: "[WITHHELD 24 bytes,
// sha256 1a2b3c4d5e6f]". A value is withheld when it sits under a key that
// names a secret and looks like one (no spaces, no shell syntax); free
// text there is shown, with any detected secret in it redacted.
const WithheldPrefix = "[WITHHELD "
