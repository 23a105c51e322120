package policy

import (
	"cmp"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"

	"github.com/mcp-mediator/mediator/mediator"
)

// Explanation is a decision with everything that led to it: every
// attribute the rules could test, and every rule in the order Casbin tries
// them.
type Explanation struct {
	Decision mediator.Decision
	// Err is the evaluation error of a failed decision (a policy error).
	Err        error
	Attributes []Field
	Rules      []RuleTrace
}

// Field is one attribute: its path as conditions name it and its value.
type Field struct {
	Name, Value string
}

// RuleTrace is how one rule fared against the request.
type RuleTrace struct {
	Rule Rule
	// Subject and Object say whether the subject and kind/object columns
	// cover the request.
	Subject, Object bool
	// Condition is "true", "false", "error: ..." or "" (no condition, or
	// the columns did not cover the request).
	Condition string
	// Decisive marks the rule that decided.
	Decisive bool
}

// Explain decides req in situation s (zero fields: now) with the policy in
// force, as Decide would apart from enforcement modes, and says why.
func (e *Engine) Explain(_ context.Context, req mediator.AuthzRequest, s Situation) Explanation {
	c := e.cur.Load()
	d, a, err := e.evaluate(c, req, s)
	x := Explanation{Decision: d, Err: err}
	if a == nil {
		return x
	}
	x.Attributes = a.Fields()
	for _, r := range c.byPriority() {
		x.Rules = append(x.Rules, trace(r, a, d.Rule))
	}
	return x
}

func trace(r *Rule, a *Attributes, decisive string) RuleTrace {
	t := RuleTrace{Rule: *r, Subject: matchSubject(&a.Sub, r.Sub), Object: matchObject(&a.Obj, r.Kind, r.Obj),
		Decisive: r.Name == decisive}
	if !t.Subject || !t.Object || r.cond == nil {
		return t
	}
	ok, err := r.cond.eval(paramsOf(a))
	switch {
	case err != nil:
		t.Condition = "error: " + err.Error()
	default:
		t.Condition = strconv.FormatBool(ok)
	}
	return t
}

// byPriority returns the rules in the order Casbin tries them.
func (c *compiled) byPriority() []*Rule {
	out := make([]*Rule, len(c.rules))
	for i := range c.rules {
		out[i] = &c.rules[i]
	}
	slices.SortStableFunc(out, func(x, y *Rule) int { return cmp.Compare(rank(x.Decision), rank(y.Decision)) })
	return out
}

// Fields lists every attribute as "r.sub.ID", "r.obj.Args", ..., with
// values rendered for people: strings as they are, lists and maps as JSON.
func (a *Attributes) Fields() []Field {
	var out []Field
	for _, g := range []struct {
		prefix string
		v      any
	}{{"r.sub.", a.Sub}, {"r.obj.", a.Obj}, {"r.env.", a.Env}, {"r.intent.", a.Intent}} {
		rv := reflect.ValueOf(g.v)
		for i := range rv.NumField() {
			if f := rv.Type().Field(i); f.IsExported() {
				out = append(out, Field{Name: g.prefix + f.Name, Value: render(rv.Field(i).Interface())})
			}
		}
	}
	return out
}

func render(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(data)
}
