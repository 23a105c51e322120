package main

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/intent"
	"github.com/mcp-mediator/mediator/policy/judge"
)

// IntentConfig is the intent: block: how calls are checked against the
// task or intent declared for their session.
type IntentConfig struct {
	// Drift suspends a session's task after too many out-of-scope calls.
	Drift DriftConfig `yaml:"drift"`
	// DeclareTTL is how long an in-band declare_intent holds by default
	// (30m); MaxDeclareTTL caps what an agent may ask for (8h).
	DeclareTTL    time.Duration `yaml:"declare_ttl"`
	MaxDeclareTTL time.Duration `yaml:"max_declare_ttl"`
	// Judge is the optional LLM judge; off unless base_url is set.
	Judge JudgeConfig `yaml:"judge"`
}

// DriftConfig: Threshold out-of-scope calls within Window suspend the
// task (defaults 3 in 10m); threshold -1 turns suspension off.
type DriftConfig struct {
	Threshold int           `yaml:"threshold"`
	Window    time.Duration `yaml:"window"`
}

// JudgeConfig configures the LLM judge (policy/judge): any
// OpenAI-compatible endpoint (OpenAI, Ollama, vLLM).
type JudgeConfig struct {
	BaseURL string `yaml:"base_url"`
	Model   string `yaml:"model"`
	// APIKeyEnv names the environment variable holding the API key (the
	// key itself never goes in the config); empty for keyless servers.
	APIKeyEnv   string        `yaml:"api_key_env"`
	Timeout     time.Duration `yaml:"timeout"`
	Threshold   *float64      `yaml:"threshold"`
	Below       string        `yaml:"below"`
	Fallback    string        `yaml:"fallback"`
	Concurrency int           `yaml:"concurrency"`
	CacheSize   int           `yaml:"cache_size"`
	CacheTTL    time.Duration `yaml:"cache_ttl"`
}

func defaultIntent() IntentConfig {
	return IntentConfig{
		Drift:      DriftConfig{Threshold: intent.DefaultDriftThreshold, Window: intent.DefaultDriftWindow},
		DeclareTTL: intent.DefaultDeclareTTL, MaxDeclareTTL: intent.DefaultMaxDeclareTTL,
	}
}

// validate checks the intent: block and names the key and the fix.
func (c *IntentConfig) validate() []error {
	var errs []error
	if c.Drift.Threshold < -1 || c.Drift.Threshold == 0 {
		errs = append(errs, fmt.Errorf("intent.drift.threshold: %d; use a positive count, or -1 to never suspend", c.Drift.Threshold))
	}
	if c.Drift.Window <= 0 {
		errs = append(errs, fmt.Errorf("intent.drift.window: %s; use a positive duration such as 10m", c.Drift.Window))
	}
	if c.DeclareTTL <= 0 || c.MaxDeclareTTL <= 0 || c.DeclareTTL > c.MaxDeclareTTL {
		errs = append(errs, fmt.Errorf("intent.declare_ttl (%s) and intent.max_declare_ttl (%s): positive, and declare_ttl <= max_declare_ttl",
			c.DeclareTTL, c.MaxDeclareTTL))
	}
	j := &c.Judge
	if j.BaseURL == "" {
		if j.Model != "" {
			errs = append(errs, errors.New("intent.judge.model: set, but base_url is empty; set intent.judge.base_url to turn the judge on"))
		}
		return errs
	}
	if u, err := url.Parse(j.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("intent.judge.base_url: %q; use an http(s) URL such as https://api.openai.com/v1 or http://127.0.0.1:11434/v1", j.BaseURL))
	}
	if j.Model == "" {
		errs = append(errs, errors.New("intent.judge.model: required when the judge is on (e.g. gpt-4o-mini, llama3.1)"))
	}
	for key, v := range map[string]string{"below": j.Below, "fallback": j.Fallback} {
		switch mediator.Effect(v) {
		case "", mediator.EffectApprove, mediator.EffectDeny:
		case mediator.EffectAllow:
			if key == "fallback" {
				continue
			}
			fallthrough
		default:
			errs = append(errs, fmt.Errorf("intent.judge.%s: %q; use approve or deny", key, v))
		}
	}
	if j.Threshold != nil && !(*j.Threshold >= 0 && *j.Threshold <= 1) {
		errs = append(errs, fmt.Errorf("intent.judge.threshold: %v; use a number between 0 and 1", *j.Threshold))
	}
	if j.Timeout < 0 || j.Concurrency < 0 || j.CacheSize < 0 || j.CacheTTL < 0 {
		errs = append(errs, errors.New("intent.judge: timeout, concurrency, cache_size and cache_ttl must not be negative"))
	}
	return errs
}

// newJudge builds the judge, or nil when it is off.
func (c *IntentConfig) newJudge(lookup func(string) (string, bool)) (*judge.Judge, error) {
	j := c.Judge
	if j.BaseURL == "" {
		return nil, nil
	}
	key := ""
	if j.APIKeyEnv != "" {
		v, ok := lookup(j.APIKeyEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("intent.judge.api_key_env: the environment variable %s is not set", j.APIKeyEnv)
		}
		key = v
	}
	cfg := judge.Config{BaseURL: j.BaseURL, APIKey: key, Model: j.Model, Timeout: j.Timeout,
		Below: mediator.Effect(j.Below), Fallback: mediator.Effect(j.Fallback), Concurrency: j.Concurrency,
		CacheSize: j.CacheSize, CacheTTL: j.CacheTTL}
	if j.Threshold != nil {
		cfg.Threshold = *j.Threshold
	}
	jd, err := judge.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("intent.judge: %w", err)
	}
	return jd, nil
}

// newIntentService wires the intent checker of a.
func (a *app) newIntentService(lookup func(string) (string, bool)) (*intent.Service, error) {
	jd, err := a.cfg.Intent.newJudge(lookup)
	if err != nil {
		return nil, err
	}
	currentJudge.Store(jd)
	if jd != nil {
		a.log.Info("intent judge on", "base_url", a.cfg.Intent.Judge.BaseURL, "model", a.cfg.Intent.Judge.Model)
	}
	// Revocations made by a token verifier take effect at once in this
	// process; a stdio mediator has none and writes to the store, which
	// every serve process polls.
	revoke := a.store.Revoke
	if r, ok := a.auth.(interface {
		Revoke(context.Context, mediator.Revocation) error
	}); ok {
		revoke = r.Revoke
	}
	return intent.New(intent.Config{
		Tasks:          a.store,
		Revoke:         revoke,
		Catalog:        a.reg.Catalog,
		AgentTools:     a.agentTools(),
		Judge:          jd,
		DriftThreshold: a.cfg.Intent.Drift.Threshold,
		DriftWindow:    a.cfg.Intent.Drift.Window,
		DeclareTTL:     a.cfg.Intent.DeclareTTL,
		MaxDeclareTTL:  a.cfg.Intent.MaxDeclareTTL,
		Logger:         a.log.With(slog.String("component", "intent")),
	})
}

// currentJudge is the judge of this process, for /debug/vars.
var currentJudge atomic.Pointer[judge.Judge]

func init() {
	expvar.Publish("intent_judge", expvar.Func(func() any {
		j := currentJudge.Load()
		if j == nil {
			return nil
		}
		return j.Stats()
	}))
}
