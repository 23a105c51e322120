package mediator

import (
	"context"
	"fmt"
	"time"
)

// TrustLevel is how far the mediator trusts an agent, from what it has
// seen the agent do. Policy compares levels like data classes
// (r.sub.Trust >= medium); behavioural monitoring lowers an agent's level
// when it drifts from its baseline and raises it one level at a time when
// it behaves again.
type TrustLevel string

// The trust levels, most trusted first.
const (
	TrustHigh   TrustLevel = "high"
	TrustMedium TrustLevel = "medium"
	TrustLow    TrustLevel = "low"
	TrustNone   TrustLevel = "none"
)

// TrustLevels lists the trust levels, most trusted first.
var TrustLevels = []TrustLevel{TrustHigh, TrustMedium, TrustLow, TrustNone}

// Rank is the level's number: none 0, low 1, medium 2, high 3. An unknown
// level ranks as none.
func (t TrustLevel) Rank() int {
	switch t {
	case TrustHigh:
		return 3
	case TrustMedium:
		return 2
	case TrustLow:
		return 1
	}
	return 0
}

// TrustOfRank is the level of rank r, clamped to none..high.
func TrustOfRank(r int) TrustLevel {
	switch {
	case r >= 3:
		return TrustHigh
	case r == 2:
		return TrustMedium
	case r == 1:
		return TrustLow
	}
	return TrustNone
}

// ParseTrustLevel accepts high, medium, low or none.
func ParseTrustLevel(s string) (TrustLevel, error) {
	switch t := TrustLevel(s); t {
	case TrustHigh, TrustMedium, TrustLow, TrustNone:
		return t, nil
	}
	return "", fmt.Errorf("%w: trust level %q: use high, medium, low or none", ErrInvalidRequest, s)
}

// Behaviour is how one call compares with its agent's baseline, as the
// behaviour check saw it before policy decided.
type Behaviour struct {
	// Score is the deviation from the baseline, 0 (usual) to 1 (never seen
	// anything like it).
	Score float64 `json:"score"`
	// Reasons say in plain words what deviates.
	Reasons []string `json:"reasons,omitempty"`
	// Novel is true when the call uses something the agent never used: a
	// tool, a server, a data class or risk above its usual, a destructive
	// tool.
	Novel bool `json:"novel,omitempty"`
	// Learning is true while the agent's baseline is still being learned.
	Learning bool `json:"learning,omitempty"`
	// Trust is the agent's trust level the call was decided at.
	Trust TrustLevel `json:"trust"`
	// TrustReason says why the level is what it is, when it is below the
	// agent's ceiling (the reason of its last change).
	TrustReason string `json:"trust_reason,omitempty"`
	// Profile is the baseline the call was compared with (agent id, or
	// id@version).
	Profile string `json:"profile,omitempty"`
	// Calls is how many calls that baseline has seen.
	Calls int64 `json:"calls,omitempty"`
}

// BehaviourMonitor compares calls with their agent's baseline. Check runs
// before policy and must not read the database; Observe runs when the call
// has ended (before its record is written) and learns from it. Both are
// called only for calls that resolved to an upstream object.
type BehaviourMonitor interface {
	// Check scores c and returns the agent's current trust. An error is a
	// failure to check and denies the call.
	Check(ctx context.Context, c *Call) (Behaviour, error)
	// Observe learns from the finished call c (outcome and result size
	// included).
	Observe(ctx context.Context, c *Call, outcome Outcome, resultBytes int)
}

// TrustState is an agent's trust as stored: its level, the ceiling it can
// never rise above, and why it last changed.
type TrustState struct {
	AgentID string     `json:"agent_id"`
	Level   TrustLevel `json:"level"`
	// Ceiling bounds recovery ("" is high).
	Ceiling TrustLevel `json:"ceiling,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	// By is who changed it: "mediator" for the behaviour engine, or the
	// operator.
	By      string    `json:"by,omitempty"`
	Changed time.Time `json:"changed"`
	// Rev orders changes across processes; set by the store.
	Rev int64 `json:"rev"`
}

// ProfileRow is a behavioural baseline as stored: Data is the engine's own
// encoding, opaque to the store.
type ProfileRow struct {
	Key     string    `json:"key"`
	AgentID string    `json:"agent_id"`
	Version string    `json:"version,omitempty"`
	Data    []byte    `json:"data"`
	Updated time.Time `json:"updated"`
	// Rev orders writes across processes; set by the store.
	Rev int64 `json:"rev"`
}

// BehaviourStore persists baselines and trust so that every mediator
// process sharing a database sees them. Implemented by package store.
type BehaviourStore interface {
	// MergeProfile stores the profile of key in one write transaction:
	// merge gets the stored data (nil when there is none) and returns what
	// to store. It returns the stored row with its new Rev.
	MergeProfile(ctx context.Context, key, agentID, version string, merge func(stored []byte) ([]byte, error)) (ProfileRow, error)
	// Profile returns the stored profile of key; ok is false when there is none.
	Profile(ctx context.Context, key string) (p ProfileRow, ok bool, err error)
	// ProfilesSince returns up to limit profiles with Rev > after, by Rev.
	ProfilesSince(ctx context.Context, after int64, limit int) ([]ProfileRow, error)
	// SetTrust stores t (replacing the agent's earlier state) and returns it with its Rev.
	SetTrust(ctx context.Context, t TrustState) (TrustState, error)
	// TrustSince returns up to limit trust states with Rev > after, by Rev.
	TrustSince(ctx context.Context, after int64, limit int) ([]TrustState, error)
}
