package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/mcp-mediator/mediator/examples"
	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/tools"
)

// PolicyEnvironment is policy.environment: how r.env is computed.
type PolicyEnvironment struct {
	// Timezone is an IANA zone ("Europe/Berlin") for r.env.Hour, Weekday
	// and business hours; empty means the machine's local zone.
	Timezone      string        `yaml:"timezone"`
	BusinessHours BusinessHours `yaml:"business_hours"`
	Networks      Networks      `yaml:"networks"`
}

// BusinessHours is policy.environment.business_hours.
type BusinessHours struct {
	// Days are weekdays (mon..sun); empty means mon..fri.
	Days []string `yaml:"days"`
	// Start and End are HH:MM (default 08:00 and 18:00), end exclusive.
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

// Networks is policy.environment.networks: CIDRs of the loopback and
// private client classes (replacing the defaults when set); every other
// address is public.
type Networks struct {
	Loopback []string `yaml:"loopback"`
	Private  []string `yaml:"private"`
}

// policyPollInterval is how often policy files and the alert level are
// re-read.
const policyPollInterval = time.Second

// validate checks the policy: block and names the key and the fix.
func (p *PolicyConfig) validate() []error {
	var errs []error
	if p.Cases != "" && p.File == "" {
		errs = append(errs, errors.New("policy.cases: set only with policy.model and policy.file (the embedded policy's cases are its tests)"))
	}
	if _, err := policy.ParseMode(p.Mode); err != nil {
		errs = append(errs, fmt.Errorf("policy.mode: %q; use enforce or shadow", p.Mode))
	}
	if _, err := p.Environment.envConfig(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// envConfig turns policy.environment into the engine's settings.
func (pe *PolicyEnvironment) envConfig() (policy.EnvConfig, error) {
	c := policy.DefaultEnvConfig()
	var err error
	if pe.Timezone != "" {
		if c.Zone, err = time.LoadLocation(pe.Timezone); err != nil {
			return c, fmt.Errorf("policy.environment.timezone: %q is not a known zone; use an IANA name such as Europe/Berlin", pe.Timezone)
		}
	}
	if err := pe.BusinessHours.apply(&c); err != nil {
		return c, err
	}
	if pe.Networks.Loopback != nil {
		if c.Loopback, err = policy.ParsePrefixes(pe.Networks.Loopback); err != nil {
			return c, fmt.Errorf("policy.environment.networks.loopback: %w", err)
		}
	}
	if pe.Networks.Private != nil {
		if c.Private, err = policy.ParsePrefixes(pe.Networks.Private); err != nil {
			return c, fmt.Errorf("policy.environment.networks.private: %w", err)
		}
	}
	return c, nil
}

func (b *BusinessHours) apply(c *policy.EnvConfig) error {
	if len(b.Days) > 0 {
		c.BusinessDays = [7]bool{}
		for _, d := range b.Days {
			wd, err := policy.ParseWeekday(d)
			if err != nil {
				return fmt.Errorf("policy.environment.business_hours.days: %w", err)
			}
			c.BusinessDays[wd] = true
		}
	}
	var err error
	if b.Start != "" {
		if c.BusinessStart, err = policy.ParseClock(b.Start); err != nil {
			return fmt.Errorf("policy.environment.business_hours.start: %w", err)
		}
	}
	if b.End != "" {
		if c.BusinessEnd, err = policy.ParseClock(b.End); err != nil {
			return fmt.Errorf("policy.environment.business_hours.end: %w", err)
		}
	}
	if c.BusinessStart >= c.BusinessEnd {
		return fmt.Errorf("policy.environment.business_hours: start %s is not before end %s", b.Start, b.End)
	}
	return nil
}

// policyFiles reads the configured policy, or the embedded example policy
// when the config names none.
func (c *Config) policyFiles() (policy.Files, error) {
	if c.Policy.Model == "" {
		m, _ := examples.Policy.ReadFile("policy/model.conf")
		p, _ := examples.Policy.ReadFile("policy/policy.csv")
		return policy.Files{ModelPath: "embedded:policy/model.conf", PolicyPath: "embedded:policy/policy.csv", Model: m, Policy: p}, nil
	}
	f, err := policy.ReadFiles(c.path(c.Policy.Model), c.path(c.Policy.File), c.path(c.Policy.Cases))
	if err != nil {
		return f, fmt.Errorf("policy: %w", err)
	}
	return f, nil
}

// engineOptions are the engine settings the config gives.
func (c *Config) engineOptions(log *slog.Logger, alert func() policy.AlertLevel) ([]policy.Option, error) {
	env, err := c.Policy.Environment.envConfig()
	if err != nil {
		return nil, err
	}
	mode, err := policy.ParseMode(c.Policy.Mode)
	if err != nil {
		return nil, err
	}
	opts := []policy.Option{policy.WithLogger(log), policy.WithEnv(env), policy.WithMode(mode),
		policy.WithShadowServers(shadowServers(c.Upstreams)...)}
	if alert != nil {
		opts = append(opts, policy.WithAlert(alert))
	}
	return opts, nil
}

func shadowServers(ups []tools.Config) []string {
	var out []string
	for _, u := range ups {
		if u.Mode == string(policy.ModeShadow) {
			out = append(out, u.Name)
		}
	}
	return out
}

// newEngine loads the configured policy; its cases, if any, must pass.
func newEngine(cfg *Config, log *slog.Logger, alert func() policy.AlertLevel) (*policy.Engine, policy.Files, error) {
	f, err := cfg.policyFiles()
	if err != nil {
		return nil, f, err
	}
	opts, err := cfg.engineOptions(log, alert)
	if err != nil {
		return nil, f, err
	}
	e, err := policy.NewFromFiles(f, opts...)
	if err != nil {
		return nil, f, fmt.Errorf("policy: %w", err)
	}
	return e, f, nil
}

// policyRuntime is the policy engine of a running mediator with what keeps
// it current: the file watcher and the alert level.
type policyRuntime struct {
	engine  *policy.Engine
	files   policy.Files
	alert   *policy.AlertState
	watcher *policy.Watcher // nil for the embedded policy
	poll    bool            // policy.watch: poll the files (SIGHUP reloads either way)
	log     *slog.Logger
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// loadPolicy builds the engine; start begins watching.
func loadPolicy(cfg *Config, log *slog.Logger) (*policyRuntime, error) {
	rt := &policyRuntime{alert: policy.NewAlertState(policy.AlertNormal), log: log}
	var err error
	if rt.engine, rt.files, err = newEngine(cfg, log, rt.alert.Level); err != nil {
		return nil, err
	}
	if cfg.Policy.Model != "" {
		rt.watcher = policy.NewWatcher(rt.engine, rt.files, policy.WithInterval(policyPollInterval))
		rt.poll = cfg.Policy.Watch == nil || *cfg.Policy.Watch
	}
	return rt, nil
}

// policyStore is what the policy runtime keeps in the store: the alert
// level, and the records of rejected reloads.
type policyStore interface {
	mediator.SettingStore
	mediator.Recorder
}

// start reads the alert level once, then follows it and the policy files
// until stop.
func (rt *policyRuntime) start(ctx context.Context, st policyStore) {
	if rt.watcher != nil {
		rt.watcher.SetRecorder(st)
	}
	if err := rt.alert.Refresh(ctx, st); err != nil {
		rt.log.Error("reading the alert level", "err", err, "level", rt.alert.Level())
	}
	if l := rt.alert.Level(); l != policy.AlertNormal {
		rt.log.Warn("alert level raised", "level", l)
	}
	ctx, rt.cancel = context.WithCancel(context.WithoutCancel(ctx))
	rt.wg.Add(1)
	go func() { defer rt.wg.Done(); rt.alert.Follow(ctx, st, policyPollInterval, rt.log) }()
	if rt.poll {
		rt.wg.Add(1)
		go func() { defer rt.wg.Done(); rt.watcher.Run(ctx) }()
	}
}

// stop ends the goroutines of start; safe to call when start was not.
func (rt *policyRuntime) stop() {
	if rt.cancel != nil {
		rt.cancel()
	}
	rt.wg.Wait()
}

// reload reloads the policy files now (SIGHUP).
func (rt *policyRuntime) reload() {
	if rt.watcher == nil {
		rt.log.Warn("SIGHUP: nothing to reload; the policy is the embedded example")
		return
	}
	if changed, err := rt.watcher.Reload(); err == nil {
		rt.log.Info("SIGHUP: policy reloaded", "changed", changed, "version", rt.engine.Version())
	}
}

// reloadOnSIGHUP reloads the policy on every SIGHUP until the returned
// function is called.
func (rt *policyRuntime) reloadOnSIGHUP() func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				rt.reload()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
