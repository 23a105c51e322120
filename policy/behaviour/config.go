package behaviour

import (
	"fmt"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Config tunes the engine. Zero fields take the defaults below.
type Config struct {
	// LearnCalls and LearnFor: a baseline is learning until it has learned
	// from LearnCalls calls and its first call is LearnFor old.
	LearnCalls int
	LearnFor   time.Duration
	// StartTrust is the trust of an agent the mediator has not seen before.
	StartTrust mediator.TrustLevel
	// Ceiling is the highest trust an agent can reach (a passport's
	// trust_ceiling claim and Ceilings can only lower it).
	Ceiling  mediator.TrustLevel
	Ceilings map[string]mediator.TrustLevel
	// FallbackTrust is the highest trust of an agent whose stored baseline
	// cannot be read: never more than this until an operator resets it.
	FallbackTrust mediator.TrustLevel
	// FlagScore: a call scoring at least this is flagged: it adds to the
	// agent's suspicion and teaches its baseline nothing.
	FlagScore float64
	// DropAt: suspicion at which trust falls one level. Suspicion is the
	// sum of the scores of flagged calls, halved by every call that is not.
	DropAt float64
	// RecoverCalls clean calls, and RecoverAfter since the last change,
	// raise trust one level (never above the ceiling).
	RecoverCalls int
	RecoverAfter time.Duration
	// Window is the window of the fan-out feature.
	Window time.Duration
	// Keep bounds the weight of a learned baseline: once it has learned
	// Keep calls, older behaviour fades so that each new call is worth
	// 1/Keep. Larger adapts more slowly.
	Keep float64
	// TeachPerMinute caps how many calls of one agent teach its baseline in
	// a minute, so that a flood cannot write its own baseline.
	TeachPerMinute int
	// DenialsToDrop denials among an agent's last 10 calls, and
	// ErrorsToDrop failed calls among its last 20, lower its trust.
	DenialsToDrop int
	ErrorsToDrop  int
	// JudgeBelow: an intent judge score below it lowers trust (0: off).
	JudgeBelow float64
	// MaxAgents bounds the agents whose baselines are kept in memory.
	MaxAgents int
	// Sync is how often baselines and trust are written to and read from
	// the store.
	Sync time.Duration
	// Zone is the time zone of the hour and weekday features.
	Zone *time.Location
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Defaults.
const (
	DefaultLearnCalls     = 200
	DefaultLearnFor       = 7 * 24 * time.Hour
	DefaultFlagScore      = 0.5
	DefaultDropAt         = 0.7
	DefaultRecoverCalls   = 50
	DefaultRecoverAfter   = 15 * time.Minute
	DefaultWindow         = 5 * time.Minute
	DefaultKeep           = 10000
	DefaultTeachPerMinute = 30
	DefaultDenialsToDrop  = 3
	DefaultErrorsToDrop   = 8
	DefaultMaxAgents      = 10000
	DefaultSync           = 500 * time.Millisecond
)

func (c *Config) fill() error {
	if c.LearnCalls == 0 {
		c.LearnCalls = DefaultLearnCalls
	}
	if c.LearnFor == 0 {
		c.LearnFor = DefaultLearnFor
	}
	for _, f := range []*mediator.TrustLevel{&c.StartTrust, &c.Ceiling} {
		if *f == "" {
			*f = mediator.TrustHigh
		}
	}
	if c.FallbackTrust == "" {
		c.FallbackTrust = mediator.TrustLow
	}
	for name, t := range map[string]mediator.TrustLevel{"start_trust": c.StartTrust, "ceiling": c.Ceiling, "fallback_trust": c.FallbackTrust} {
		if _, err := mediator.ParseTrustLevel(string(t)); err != nil {
			return fmt.Errorf("behaviour.%s: %w", name, err)
		}
	}
	if c.FallbackTrust == mediator.TrustHigh {
		return fmt.Errorf("behaviour.fallback_trust high: an agent whose baseline cannot be read is never trusted high; use medium, low or none")
	}
	for id, t := range c.Ceilings {
		if _, err := mediator.ParseTrustLevel(string(t)); err != nil {
			return fmt.Errorf("behaviour.ceilings.%s: %w", id, err)
		}
	}
	setF := func(f *float64, d float64) {
		if *f == 0 {
			*f = d
		}
	}
	setF(&c.FlagScore, DefaultFlagScore)
	setF(&c.DropAt, DefaultDropAt)
	setF(&c.Keep, DefaultKeep)
	setI := func(f *int, d int) {
		if *f == 0 {
			*f = d
		}
	}
	setI(&c.RecoverCalls, DefaultRecoverCalls)
	setI(&c.TeachPerMinute, DefaultTeachPerMinute)
	setI(&c.DenialsToDrop, DefaultDenialsToDrop)
	setI(&c.ErrorsToDrop, DefaultErrorsToDrop)
	setI(&c.MaxAgents, DefaultMaxAgents)
	if c.RecoverAfter == 0 {
		c.RecoverAfter = DefaultRecoverAfter
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Sync == 0 {
		c.Sync = DefaultSync
	}
	if c.Zone == nil {
		c.Zone = time.Local
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.LearnCalls < 0 || c.LearnFor < 0:
		return fmt.Errorf("behaviour: learn_calls and learn_for must not be negative")
	case c.FlagScore <= 0 || c.FlagScore > 1:
		return fmt.Errorf("behaviour.flag_score %v: use a score in (0, 1]", c.FlagScore)
	case c.DropAt <= 0:
		return fmt.Errorf("behaviour.drop_at %v: use a positive number", c.DropAt)
	case c.RecoverCalls < 0 || c.RecoverAfter < 0:
		return fmt.Errorf("behaviour: recover_calls and recover_after must not be negative")
	case c.Window < time.Second:
		return fmt.Errorf("behaviour.window %s: use at least 1s", c.Window)
	case c.Keep < 10:
		return fmt.Errorf("behaviour.keep %v: use at least 10", c.Keep)
	case c.TeachPerMinute < 1 || c.DenialsToDrop < 1 || c.DenialsToDrop > 10 || c.ErrorsToDrop < 1 || c.ErrorsToDrop > 20:
		return fmt.Errorf("behaviour: teach_per_minute ≥ 1, denials_to_drop 1..10, errors_to_drop 1..20")
	case c.MaxAgents < 1:
		return fmt.Errorf("behaviour.max_agents %d: use at least 1", c.MaxAgents)
	case c.JudgeBelow < 0 || c.JudgeBelow > 1:
		return fmt.Errorf("behaviour.judge_below %v: use a score in [0, 1]", c.JudgeBelow)
	}
	return nil
}
