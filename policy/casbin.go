package policy

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/mcp-mediator/mediator/mediator"
)

// Engine is a Casbin-backed mediator.Authorizer. Its policy can be replaced
// at run time with Load; a policy that fails to load leaves the old one in
// force.
type Engine struct {
	cur atomic.Pointer[compiled]
	log *slog.Logger
}

var _ mediator.Authorizer = (*Engine)(nil)

type compiled struct {
	e       *casbin.SyncedEnforcer
	version string
	rules   int
}

// Option configures an Engine.
type Option func(*Engine)

// WithLogger sets the engine's logger.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// New builds an engine from model and policy text (see examples/policy).
// source names the policy for error messages (a file path).
func New(modelText, policyText, source string, opts ...Option) (*Engine, error) {
	e := &Engine{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(e)
	}
	if err := e.Load(modelText, policyText, source); err != nil {
		return nil, err
	}
	return e, nil
}

// Load compiles and installs a new model and policy. On error the engine
// keeps the policy it had.
func (e *Engine) Load(modelText, policyText, source string) error {
	c, err := compile(modelText, policyText, source)
	if err != nil {
		return err
	}
	e.cur.Store(c)
	e.log.Info("policy loaded", "source", source, "version", c.version, "rules", c.rules)
	return nil
}

// Version is the content hash of the policy in force.
func (e *Engine) Version() string { return e.cur.Load().version }

func compile(modelText, policyText, source string) (*compiled, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("%w: model: %w", ErrInvalidPolicy, err)
	}
	rules, err := ParseRules(strings.NewReader(policyText), source)
	if err != nil {
		return nil, err
	}
	enf, err := casbin.NewSyncedEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	for _, r := range rules {
		if _, err := enf.AddPolicy(r.Sub, r.Kind, r.Obj, r.Effect, r.Name); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %w", ErrInvalidPolicy, source, r.Line, err)
		}
	}
	sum := sha256.Sum256([]byte(modelText + "\x00" + policyText))
	return &compiled{e: enf, version: hex.EncodeToString(sum[:6]), rules: len(rules)}, nil
}

// Rule is one policy line.
type Rule struct {
	Line                         int
	Sub, Kind, Obj, Effect, Name string
}

// ParseRules reads policy text strictly: CSV with "#" comments, every line
// "p, subject, kind, object-glob, allow|deny, rule-name". A line Casbin's
// own adapter would drop silently (a bare quote, a wrong field count) is an
// error naming source and line.
func ParseRules(r io.Reader, source string) ([]Rule, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	var out []Rule
	names := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w (quote a field containing a comma or quote as \"...\", doubling inner quotes)", ErrInvalidPolicy, source, err)
		}
		rule, err := parseRule(rec, line)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %w", ErrInvalidPolicy, source, line, err)
		}
		if prev, dup := names[rule.Name]; dup {
			return nil, fmt.Errorf("%w: %s:%d: rule name %q already used on line %d; rule names must be unique", ErrInvalidPolicy, source, line, rule.Name, prev)
		}
		names[rule.Name] = line
		out = append(out, rule)
	}
}

func parseRule(rec []string, line int) (Rule, error) {
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
	}
	if len(rec) != 6 || rec[0] != "p" {
		return Rule{}, fmt.Errorf("want 6 fields \"p, subject, kind, object, allow|deny, rule-name\", got %d starting %q", len(rec), rec[0])
	}
	r := Rule{Line: line, Sub: rec[1], Kind: rec[2], Obj: rec[3], Effect: rec[4], Name: rec[5]}
	switch {
	case r.Sub != "*" && !strings.HasPrefix(r.Sub, "agent:") && !strings.HasPrefix(r.Sub, "role:"):
		return Rule{}, fmt.Errorf("subject %q: use \"*\", \"agent:<id>\" or \"role:<role>\"", r.Sub)
	case r.Kind != "*" && r.Kind != string(mediator.KindTool) && r.Kind != string(mediator.KindResource) && r.Kind != string(mediator.KindPrompt):
		return Rule{}, fmt.Errorf("kind %q: use tool, resource, prompt or *", r.Kind)
	case r.Effect != string(mediator.EffectAllow) && r.Effect != string(mediator.EffectDeny):
		return Rule{}, fmt.Errorf("effect %q: use allow or deny", r.Effect)
	case r.Name == "":
		return Rule{}, errors.New("rule name is empty; name every rule so decisions can cite it")
	case r.Obj == "" || !doublestar.ValidatePattern(r.Obj):
		return Rule{}, fmt.Errorf("object %q is not a valid glob", r.Obj)
	}
	return r, nil
}

// Decide implements mediator.Authorizer: any matching deny wins, then any
// matching allow; no match is a denial. An evaluation error is returned as
// an error (the pipeline denies on it).
func (e *Engine) Decide(_ context.Context, req mediator.AuthzRequest) (mediator.Decision, error) {
	c := e.cur.Load()
	d := mediator.Decision{Effect: mediator.EffectDeny, PolicyVersion: c.version,
		Reason: "no rule allows " + string(req.Target.Kind) + " " + req.Target.Name + " for agent " + req.Agent.ID}
	if req.Agent.ID == "" || req.Target.Name == "" {
		return d, fmt.Errorf("%w: missing agent id or object name", mediator.ErrPolicy)
	}
	subjects := make([]string, 0, 1+len(req.Agent.Roles))
	subjects = append(subjects, "agent:"+req.Agent.ID)
	for _, r := range req.Agent.Roles {
		subjects = append(subjects, "role:"+r)
	}
	var allow []string
	for _, sub := range subjects {
		ok, explain, err := c.e.EnforceEx(sub, string(req.Target.Kind), req.Target.Name)
		if err != nil {
			return d, fmt.Errorf("%w: %w", mediator.ErrPolicy, err)
		}
		switch {
		case ok && len(explain) == 5:
			allow = explain
		case !ok && len(explain) == 5:
			d.Rule, d.Reason = explain[4], "rule "+explain[4]+" denies "+sub
			return d, nil
		}
	}
	if allow != nil {
		d.Effect, d.Rule, d.Reason = mediator.EffectAllow, allow[4], "rule "+allow[4]+" allows"
	}
	return d, nil
}
