package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"github.com/casbin/govaluate"

	"github.com/mcp-mediator/mediator/mediator"
)

// compiled is one immutable policy version: the checked model, the rules
// and the Casbin enforcers that decide with them.
type compiled struct {
	version string
	source  string
	model   *checkedModel
	rules   []Rule
	byName  map[string]*Rule
	// notes are the comments above the rules, by line (see RuleText).
	notes map[int]string
	// all decides with every rule; the index hands out smaller enforcers.
	all   *casbin.SyncedEnforcer
	index *ruleIndex
}

// compile parses, checks and builds a policy version.
func compile(f *Files) (*compiled, error) {
	cm, err := parseModel(string(f.Model), f.modelName())
	if err != nil {
		return nil, err
	}
	source := f.policyName()
	rules, err := ParseRules(bytes.NewReader(f.Policy), source)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(slices.Concat(f.Model, []byte{0}, f.Policy))
	c := &compiled{version: hex.EncodeToString(sum[:6]), source: source, model: cm, rules: rules,
		byName: make(map[string]*Rule, len(rules)), notes: ruleNotes(f.Policy)}
	for i := range c.rules {
		c.byName[c.rules[i].Name] = &c.rules[i]
	}
	if c.all, err = c.enforcer(cm.m["m"]["m"].Value, c.rules); err != nil {
		return nil, err
	}
	if cm.bucketMatcher != "" {
		c.index = newRuleIndex(c)
	}
	return c, nil
}

// enforcer builds a Casbin enforcer over rules with the given (escaped)
// matcher. Casbin loads the rules through ruleAdapter and sorts them by
// priority: deny, approve, allow.
func (c *compiled) enforcer(matcher string, rules []Rule) (*casbin.SyncedEnforcer, error) {
	m, err := model.NewModelFromString(c.model.text)
	if err != nil {
		return nil, fmt.Errorf("%w: model: %w", ErrInvalidPolicy, err)
	}
	m["m"]["m"].Value = matcher
	enf, err := casbin.NewSyncedEnforcer(m, &ruleAdapter{rules: rules, tokens: m["p"]["p"].Tokens})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	for name, fn := range matcherFunctions(c) {
		// Casbin copies its function table on every decision: register
		// only what this matcher calls.
		if strings.Contains(matcher, name+"(") {
			enf.AddFunction(name, fn)
		}
	}
	return enf, nil
}

// matcherFunctions are the functions the model's matcher calls. They read
// the precomputed attributes, so a matcher term costs a Go function call.
func matcherFunctions(c *compiled) map[string]govaluate.ExpressionFunction {
	return map[string]govaluate.ExpressionFunction{
		"subjectMatch": fnSubjectMatch,
		"objectMatch":  fnObjectMatch,
		"cond":         func(args ...any) (any, error) { return c.cond(args) },
		"condEnv":      func(args ...any) (any, error) { return c.condEnv(args) },
	}
}

func fnSubjectMatch(args ...any) (any, error) {
	s, ok1 := argAt[*Subject](args, 0, 2)
	col, ok2 := argAt[string](args, 1, 2)
	if !ok1 || !ok2 {
		return nil, errors.New("subjectMatch(r.sub, p.sub): wrong arguments")
	}
	return matchSubject(s, col), nil
}

func fnObjectMatch(args ...any) (any, error) {
	o, ok1 := argAt[*Object](args, 0, 3)
	kind, ok2 := argAt[string](args, 1, 3)
	glob, ok3 := argAt[string](args, 2, 3)
	if !ok1 || !ok2 || !ok3 {
		return nil, errors.New("objectMatch(r.obj, p.kind, p.obj): wrong arguments")
	}
	return matchObject(o, kind, glob), nil
}

// argAt returns args[i] as T when args has n elements.
func argAt[T any](args []any, i, n int) (T, bool) {
	var zero T
	if len(args) != n {
		return zero, false
	}
	v, ok := args[i].(T)
	return v, ok
}

// cond implements cond(p.name, r.sub, r.obj, r.env, r.intent): the named
// rule's precompiled condition.
func (c *compiled) cond(args []any) (any, error) {
	name, ok := argAt[string](args, 0, 5)
	p, pok := condArgs(args)
	if !ok || !pok {
		return nil, errors.New("cond(p.name, r.sub, r.obj, r.env, r.intent): wrong arguments")
	}
	return c.evalRule(name, p)
}

// condEnv is cond with the request reached through r.env alone. The rule
// index's matchers use it instead of cond: govaluate builds a fresh
// argument list for every call, and two arguments instead of five save
// most of a decision's allocations.
func (c *compiled) condEnv(args []any) (any, error) {
	name, ok := argAt[string](args, 0, 2)
	env, eok := argAt[*Env](args, 1, 2)
	if !ok || !eok || env.attrs == nil {
		return nil, errors.New("condEnv(p.name, r.env): wrong arguments")
	}
	return c.evalRule(name, paramsOf(env.attrs))
}

// evalRule evaluates the named rule's condition. In a listing, a condition
// that cannot be decided yet counts as matching for allow and approve rules
// (the object could be allowed) and as not matching for deny rules (it
// might not be denied), so that only deny-only objects are hidden.
func (c *compiled) evalRule(name string, p condParams) (any, error) {
	r := c.byName[name]
	switch {
	case r == nil:
		return nil, fmt.Errorf("cond: no rule named %q", name)
	case r.cond == nil:
		return true, nil
	}
	v, err := r.cond.eval(p)
	if err != nil {
		if p.env.listing {
			return r.Decision != mediator.EffectDeny, nil
		}
		if ae, ok := errors.AsType[*mediator.ArgumentError](err); ok {
			named := *ae
			named.Rule = r.Name
			return nil, &named
		}
		return nil, fmt.Errorf("rule %s (%s:%d): %w", r.Name, c.source, r.Line, err)
	}
	return v, nil
}

func condArgs(args []any) (condParams, bool) {
	if len(args) != 5 {
		return condParams{}, false
	}
	s, ok1 := args[1].(*Subject)
	o, ok2 := args[2].(*Object)
	e, ok3 := args[3].(*Env)
	in, ok4 := args[4].(*IntentAttrs)
	return condParams{sub: s, obj: o, env: e, intent: in}, ok1 && ok2 && ok3 && ok4
}

// ruleAdapter is a read-only Casbin adapter over parsed rules: it expands
// each into the model's policy columns.
type ruleAdapter struct {
	rules  []Rule
	tokens []string
}

// LoadPolicy implements persist.Adapter.
func (a *ruleAdapter) LoadPolicy(m model.Model) error {
	for i := range a.rules {
		line := append([]string{"p"}, a.rules[i].columns(a.tokens)...)
		if err := persist.LoadPolicyArray(line, m); err != nil {
			return fmt.Errorf("line %d: %w", a.rules[i].Line, err)
		}
	}
	return nil
}

var errReadOnly = errors.New("policy is read-only at run time; edit the policy file")

// SavePolicy implements persist.Adapter.
func (a *ruleAdapter) SavePolicy(model.Model) error { return errReadOnly }

// AddPolicy implements persist.Adapter.
func (a *ruleAdapter) AddPolicy(string, string, []string) error { return errReadOnly }

// RemovePolicy implements persist.Adapter.
func (a *ruleAdapter) RemovePolicy(string, string, []string) error { return errReadOnly }

// RemoveFilteredPolicy implements persist.Adapter.
func (a *ruleAdapter) RemoveFilteredPolicy(string, string, int, ...string) error { return errReadOnly }

// columns expands r into the model's policy columns, in token order.
func (r *Rule) columns(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		switch t {
		case "p_sub":
			out[i] = r.Sub
		case "p_kind":
			out[i] = r.Kind
		case "p_obj":
			out[i] = r.Obj
		case "p_eft":
			out[i] = "allow"
			if r.Decision == mediator.EffectDeny {
				out[i] = "deny"
			}
		case "p_dec":
			out[i] = string(r.Decision)
		case "p_name":
			out[i] = r.Name
		case "p_cond":
			out[i] = r.Cond
		case "p_priority":
			out[i] = strconv.Itoa(rank(r.Decision))
		}
	}
	return out
}
