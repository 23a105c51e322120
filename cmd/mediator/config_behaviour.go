package main

import (
	"fmt"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/behaviour"
)

// BehaviourConfig is the behaviour: block: per-agent baselines and the
// trust levels that follow them (package policy/behaviour). Zero values
// take the engine's defaults.
type BehaviourConfig struct {
	// Enabled turns behavioural monitoring on (the default) or off; off,
	// policy sees every agent at trust high.
	Enabled *bool `yaml:"enabled"`
	// LearnCalls and LearnFor: an agent's baseline learns from at least
	// this many calls over at least this long before it judges.
	LearnCalls int           `yaml:"learn_calls"`
	LearnFor   time.Duration `yaml:"learn_for"`
	// StartTrust is a new agent's trust; Ceiling the highest any agent
	// reaches; Ceilings per agent id; FallbackTrust the most an agent whose
	// stored baseline cannot be read keeps.
	StartTrust    string            `yaml:"start_trust"`
	Ceiling       string            `yaml:"ceiling"`
	Ceilings      map[string]string `yaml:"ceilings"`
	FallbackTrust string            `yaml:"fallback_trust"`
	// FlagScore, DropAt: a call scoring FlagScore or more is flagged and
	// adds its score to the agent's suspicion; at DropAt trust falls a level.
	FlagScore float64 `yaml:"flag_score"`
	DropAt    float64 `yaml:"drop_at"`
	// RecoverCalls clean calls and RecoverAfter since the last change
	// raise trust one level.
	RecoverCalls int           `yaml:"recover_calls"`
	RecoverAfter time.Duration `yaml:"recover_after"`
	// Window is the fan-out window; Keep how many calls a learned baseline
	// weighs (larger adapts more slowly); TeachPerMinute how many calls of
	// one agent teach it per minute.
	Window         time.Duration `yaml:"window"`
	Keep           float64       `yaml:"keep"`
	TeachPerMinute int           `yaml:"teach_per_minute"`
	// DenialsToDrop denials in an agent's last 10 calls, ErrorsToDrop
	// failures in its last 20, and an intent judge score below JudgeBelow
	// each lower trust a level.
	DenialsToDrop int     `yaml:"denials_to_drop"`
	ErrorsToDrop  int     `yaml:"errors_to_drop"`
	JudgeBelow    float64 `yaml:"judge_below"`
	// MaxAgents bounds the baselines kept in memory.
	MaxAgents int `yaml:"max_agents"`
}

// on reports whether monitoring is enabled.
func (c *BehaviourConfig) on() bool { return c.Enabled == nil || *c.Enabled }

// engineConfig converts the block; zone is the policy's time zone.
func (c *BehaviourConfig) engineConfig(zone *time.Location) (behaviour.Config, error) {
	level := func(key, s string) (mediator.TrustLevel, error) {
		if s == "" {
			return "", nil
		}
		t, err := mediator.ParseTrustLevel(s)
		if err != nil {
			return "", fmt.Errorf("behaviour.%s: %w", key, err)
		}
		return t, nil
	}
	out := behaviour.Config{LearnCalls: c.LearnCalls, LearnFor: c.LearnFor, FlagScore: c.FlagScore, DropAt: c.DropAt,
		RecoverCalls: c.RecoverCalls, RecoverAfter: c.RecoverAfter, Window: c.Window, Keep: c.Keep,
		TeachPerMinute: c.TeachPerMinute, DenialsToDrop: c.DenialsToDrop, ErrorsToDrop: c.ErrorsToDrop,
		JudgeBelow: c.JudgeBelow, MaxAgents: c.MaxAgents, Zone: zone}
	var err error
	if out.StartTrust, err = level("start_trust", c.StartTrust); err != nil {
		return out, err
	}
	if out.Ceiling, err = level("ceiling", c.Ceiling); err != nil {
		return out, err
	}
	if out.FallbackTrust, err = level("fallback_trust", c.FallbackTrust); err != nil {
		return out, err
	}
	for id, s := range c.Ceilings {
		t, err := level("ceilings."+id, s)
		if err != nil {
			return out, err
		}
		if out.Ceilings == nil {
			out.Ceilings = map[string]mediator.TrustLevel{}
		}
		out.Ceilings[id] = t
	}
	return out, nil
}

// validate checks the block by building the engine's configuration.
func (c *BehaviourConfig) validate() []error {
	cfg, err := c.engineConfig(time.UTC)
	if err == nil {
		_, err = behaviour.New(cfg, nil, nil, nil)
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

// behaviourZone is the zone of the hour and weekday features: the
// policy's (policy.environment.timezone), else the machine's.
func (c *Config) behaviourZone() *time.Location {
	if tz := c.Policy.Environment.Timezone; tz != "" {
		if z, err := time.LoadLocation(tz); err == nil {
			return z
		}
	}
	return time.Local
}
