package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Engine is the Casbin ABAC mediator.Authorizer. Its policy can be replaced
// at run time (Load, LoadFiles, Watcher); a policy that fails to load or
// fails its own test cases leaves the old one in force.
type Engine struct {
	cur    atomic.Pointer[compiled]
	log    *slog.Logger
	env    EnvConfig
	alert  func() AlertLevel
	now    func() time.Time
	mode   Mode
	shadow map[string]bool // servers in shadow mode
	counts shadowCounts
}

var _ mediator.Authorizer = (*Engine)(nil)

// Option configures an Engine.
type Option func(*Engine)

// WithLogger sets the engine's logger.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// WithEnv sets how environment attributes are computed (default
// DefaultEnvConfig).
func WithEnv(c EnvConfig) Option { return func(e *Engine) { e.env = c } }

// WithAlert sets where the current alert level comes from (default: always
// normal). It is called once per decision and must be cheap; see
// AlertState.
func WithAlert(level func() AlertLevel) Option { return func(e *Engine) { e.alert = level } }

// WithClock sets the clock of r.env (default time.Now).
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// WithMode sets the global enforcement mode (default ModeEnforce).
func WithMode(m Mode) Option { return func(e *Engine) { e.mode = m } }

// WithShadowServers puts the named upstreams in shadow mode while the
// others are enforced.
func WithShadowServers(names ...string) Option {
	return func(e *Engine) {
		for _, n := range names {
			e.shadow[n] = true
		}
	}
}

// New builds an engine from model and policy text (see examples/policy).
// source names the policy in error messages (a file path).
func New(modelText, policyText, source string, opts ...Option) (*Engine, error) {
	return NewFromFiles(Files{PolicyPath: source, Model: []byte(modelText), Policy: []byte(policyText)}, opts...)
}

// NewFromFiles builds an engine from a policy's files; when f has cases,
// they must pass.
func NewFromFiles(f Files, opts ...Option) (*Engine, error) {
	e := &Engine{log: slog.New(slog.DiscardHandler), env: DefaultEnvConfig(), mode: ModeEnforce,
		shadow: map[string]bool{}, alert: func() AlertLevel { return AlertNormal }, now: time.Now}
	for _, o := range opts {
		o(e)
	}
	if err := e.LoadFiles(f); err != nil {
		return nil, err
	}
	return e, nil
}

// Load compiles and installs a new model and policy. On error the engine
// keeps the policy it had.
func (e *Engine) Load(modelText, policyText, source string) error {
	return e.LoadFiles(Files{PolicyPath: source, Model: []byte(modelText), Policy: []byte(policyText)})
}

// LoadFiles compiles f, runs its test cases against the new policy, and
// installs it only if they all pass. On error the engine keeps the policy
// it had.
func (e *Engine) LoadFiles(f Files) error {
	c, err := compile(&f)
	if err != nil {
		return err
	}
	n, err := e.gate(c, f)
	if err != nil {
		return err
	}
	e.cur.Store(c)
	e.log.Info("policy loaded", "source", c.source, "version", c.version, "rules", len(c.rules), "cases", n)
	return nil
}

// gate runs f's cases against c and returns how many passed.
func (e *Engine) gate(c *compiled, f Files) (int, error) {
	if len(f.Cases) == 0 {
		return 0, nil
	}
	cf, err := ParseCases(f.Cases, f.CasesPath)
	if err != nil {
		return 0, err
	}
	results := e.runCases(c, cf)
	if failed := Failed(results); len(failed) > 0 {
		return 0, fmt.Errorf("%w: %s: %d of %d failed; first: %s", ErrCasesFailed, f.CasesPath,
			len(failed), len(results), failed[0].Summary())
	}
	return len(results), nil
}

// Version is the content hash of the policy in force.
func (e *Engine) Version() string { return e.cur.Load().version }

// Decide implements mediator.Authorizer. The first matching rule in
// priority order decides — deny rules first, then approve, then allow — and
// no match is a denial. A call outside its declared intent that a rule not
// reading the intent's verdict would allow is denied (RuleOutOfScope). A
// call lacking an argument a rule reads, or sending one of another type
// than the rule compares it with, is a denial citing that rule and a
// *mediator.ArgumentError. Any other request that cannot be evaluated is a
// denial with reason "policy error" and an error wrapping
// mediator.ErrPolicy. Neither is ever allowed, not even in shadow mode.
func (e *Engine) Decide(_ context.Context, req mediator.AuthzRequest) (mediator.Decision, error) {
	d, _, err := e.evaluate(e.cur.Load(), req, Situation{})
	if err != nil {
		return d, err
	}
	return e.applyMode(req, d), nil
}

// evaluate decides req with c in situation s (zero fields: now).
func (e *Engine) evaluate(c *compiled, req mediator.AuthzRequest, s Situation) (mediator.Decision, *Attributes, error) {
	if s.Time.IsZero() {
		s.Time = e.now()
	}
	if s.Alert == "" {
		s.Alert = e.alert()
	}
	a, err := BuildAttributes(req, s, &e.env)
	if err != nil {
		return failed(c), nil, fmt.Errorf("%w: %w", mediator.ErrPolicy, err)
	}
	d, err := c.decide(a)
	if ae, ok := errors.AsType[*mediator.ArgumentError](err); ok {
		// The call lacks an argument a rule reads, or sends one of another
		// type: the agent's mistake, denied, not a policy error.
		f := failed(c)
		f.Rule, f.Reason = ae.Rule, ae.Error()
		return f, a, ae
	}
	if err != nil {
		return failed(c), a, fmt.Errorf("%w: %w: %w", mediator.ErrPolicy, ErrEvaluation, err)
	}
	return d, a, nil
}

func failed(c *compiled) mediator.Decision {
	return mediator.Decision{Effect: mediator.EffectDeny, Reason: ReasonPolicyError, PolicyVersion: c.version}
}

// decide asks Casbin for the first matching rule and reads its decision
// column back.
func (c *compiled) decide(a *Attributes) (mediator.Decision, error) {
	enf := c.all
	if c.index != nil {
		var err error
		if enf, err = c.index.enforcerFor(&a.Sub, &a.Obj); err != nil {
			return mediator.Decision{}, err
		}
	}
	if len(c.rules) == 0 || enf == nil {
		return c.noMatch(a), nil
	}
	_, explain, err := enf.EnforceEx(&a.Sub, &a.Obj, &a.Env, &a.Intent)
	if err != nil {
		return mediator.Decision{}, err
	}
	if len(explain) <= c.model.nameIdx {
		return c.noMatch(a), nil
	}
	r := c.byName[explain[c.model.nameIdx]]
	if r == nil {
		return mediator.Decision{}, fmt.Errorf("casbin matched an unknown rule %q", explain[c.model.nameIdx])
	}
	if r.Decision == mediator.EffectAllow && a.Intent.OutOfScope && !r.decidesScope {
		return outOfScope(c, r, a), nil
	}
	return mediator.Decision{Effect: r.Decision, Rule: r.Name, Reason: r.reason(a), PolicyVersion: c.version}, nil
}

// RuleOutOfScope is the rule a denial cites when a call outside its
// session's declared intent would be allowed by a rule that does not
// decide out-of-scope calls.
const RuleOutOfScope = "intent.out-of-scope"

// outOfScope denies a call outside its declared intent that rule r, whose
// condition does not read the intent's verdict, would allow: such a rule
// was written for calls in general, not for calls that stray from the
// task. A rule decides out-of-scope calls when its condition reads
// r.intent.OutOfScope, r.intent.Verdict or r.intent.Reasons.
func outOfScope(c *compiled, r *Rule, a *Attributes) mediator.Decision {
	why := "outside its declared intent"
	if len(a.Intent.Reasons) > 0 {
		rs := make([]string, 0, len(a.Intent.Reasons))
		for _, x := range a.Intent.Reasons {
			if s, ok := x.(string); ok {
				rs = append(rs, s)
			}
		}
		why += " (" + strings.Join(rs, "; ") + ")"
	}
	return mediator.Decision{Effect: mediator.EffectDeny, Rule: RuleOutOfScope, PolicyVersion: c.version,
		Reason: a.Obj.Kind + " " + a.Obj.Name + " is " + why + ": rule " + r.Name +
			" would allow it but does not decide out-of-scope calls (a rule whose condition reads r.intent.OutOfScope does)"}
}

func (c *compiled) noMatch(a *Attributes) mediator.Decision {
	return mediator.Decision{Effect: mediator.EffectDeny, PolicyVersion: c.version,
		Reason: "no rule allows " + a.Obj.Kind + " " + a.Obj.Name + " for agent " + a.Sub.ID}
}

func (r *Rule) reason(a *Attributes) string {
	var s string
	switch r.Decision {
	case mediator.EffectAllow:
		s = "rule " + r.Name + " allows " + a.Obj.Kind + " " + a.Obj.Name
	case mediator.EffectApprove:
		s = "rule " + r.Name + " requires a human's approval for " + a.Obj.Kind + " " + a.Obj.Name
	default:
		s = "rule " + r.Name + " denies " + a.Obj.Kind + " " + a.Obj.Name + " to agent " + a.Sub.ID
	}
	if r.Cond != "" {
		s += " when " + r.Cond
	}
	return s
}
