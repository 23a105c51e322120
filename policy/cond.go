package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/casbin/casbin/v2/util"
	"github.com/casbin/govaluate"
)

// A rule's condition is an expression in Casbin's matcher language over the
// request attributes (r.sub.Confidence >= 0.95 && r.env.BusinessHours). It
// is compiled once, when the policy loads, and checked there: an unknown
// attribute, function or constant, or an invalid literal glob or regular
// expression, is a load error naming the rule's line. At decision time the
// compiled expression is evaluated directly — the cost of a matcher
// condition, not of Casbin's eval(), which compiles its argument on every
// call.

// requestTypes maps each request token to the type of its attributes.
var requestTypes = map[string]reflect.Type{
	"r_sub":    reflect.TypeFor[Subject](),
	"r_obj":    reflect.TypeFor[Object](),
	"r_env":    reflect.TypeFor[Env](),
	"r_intent": reflect.TypeFor[IntentAttrs](),
	// r.behaviour is read through r.env (see behaviourGetter): the matcher
	// passes four request values, and models written before it still load.
	"r_behaviour": reflect.TypeFor[BehaviourAttrs](),
	// r.session likewise.
	"r_session": reflect.TypeFor[SessionAttrs](),
}

// funcNames names functions by their code pointer: govaluate's tokens hold
// the function, not its name.
var funcNames = func() map[uintptr]string {
	m := map[uintptr]string{}
	for name, fn := range condFunctions {
		m[reflect.ValueOf(fn).Pointer()] = name
	}
	return m
}()

// condition is a compiled rule condition.
type condition struct {
	expr    *govaluate.EvaluableExpression
	getters map[string]getter
}

// compileCondition compiles and checks a rule condition, and binds its
// attribute reads to getters.
func compileCondition(src string) (*condition, error) {
	expr, err := govaluate.NewEvaluableExpressionWithFunctions(util.EscapeAssertion(src), condFunctions)
	if err != nil {
		return nil, fmt.Errorf("condition %q: %w", src, err)
	}
	if err := checkTokens(expr.Tokens(), nil); err != nil {
		return nil, fmt.Errorf("condition %q: %w", src, err)
	}
	tokens, bound, err := bindTokens(expr.Tokens())
	if err != nil {
		return nil, fmt.Errorf("condition %q: %w", src, err)
	}
	if expr, err = govaluate.NewEvaluableExpressionFromTokens(tokens); err != nil {
		return nil, fmt.Errorf("condition %q: %w", src, err)
	}
	return &condition{expr: expr, getters: bound}, nil
}

// checkTokens checks every attribute, variable and literal pattern in
// tokens. pTokens, when set, are the policy tokens a matcher may also use.
func checkTokens(tokens []govaluate.ExpressionToken, pTokens map[string]bool) error {
	for i, tk := range tokens {
		var err error
		switch tk.Kind {
		case govaluate.ACCESSOR:
			err = checkPath(tk.Value.([]string))
		case govaluate.VARIABLE:
			err = checkVariable(tk.Value.(string), pTokens)
		case govaluate.FUNCTION:
			err = checkPatternLiteral(tokens, i)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkVariable(name string, pTokens map[string]bool) error {
	if _, ok := constants[name]; ok && pTokens == nil {
		return nil
	}
	if _, ok := requestTypes[name]; ok || pTokens[name] {
		return nil
	}
	return fmt.Errorf("unknown attribute or constant %q (use r.sub.*, r.obj.*, r.env.*, r.intent.*, r.behaviour.*, r.session.*, or a level such as confidential, high, incident)", unescape(name))
}

// checkPath checks an attribute path such as r_obj.Args.amount against the
// attribute types. Below a map (Args, Attrs) any key is accepted: a key the
// request lacks fails that decision closed.
func checkPath(parts []string) error {
	t, ok := requestTypes[parts[0]]
	if !ok {
		return fmt.Errorf("unknown attribute %q: attributes start with r.sub, r.obj, r.env, r.intent, r.behaviour or r.session", unescape(strings.Join(parts, ".")))
	}
	for _, p := range parts[1:] {
		if t.Kind() == reflect.Map {
			return nil
		}
		var f reflect.StructField
		ok := t.Kind() == reflect.Struct
		if ok {
			f, ok = t.FieldByName(p)
		}
		if !ok || !f.IsExported() {
			return fmt.Errorf("unknown attribute %q: %s has the fields %s", unescape(strings.Join(parts, ".")),
				unescape(parts[0]), fieldList(requestTypes[parts[0]]))
		}
		t = f.Type
	}
	return nil
}

func fieldList(t reflect.Type) string {
	var names []string
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			names = append(names, f.Name)
		}
	}
	return strings.Join(names, ", ")
}

// unescape turns Casbin's escaped r_sub.ID back into r.sub.ID for
// messages.
func unescape(s string) string {
	for _, p := range []string{"r_", "p_"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return p[:1] + "." + rest
		}
	}
	return s
}

// checkPatternLiteral checks the literal pattern argument of a call to a
// pattern function at tokens[i].
func checkPatternLiteral(tokens []govaluate.ExpressionToken, i int) error {
	name := funcNames[reflect.ValueOf(tokens[i].Value).Pointer()]
	validate, ok := patternArg[name]
	if !ok {
		return nil
	}
	depth, arg, want := 0, 0, 1
	if patternFirst[name] {
		want = 0
	}
	for _, tk := range tokens[i+1:] {
		switch {
		case tk.Kind == govaluate.CLAUSE:
			depth++
		case tk.Kind == govaluate.CLAUSE_CLOSE:
			depth--
			if depth == 0 {
				return nil
			}
		case tk.Kind == govaluate.SEPARATOR && depth == 1:
			arg++
		case tk.Kind == govaluate.STRING && depth == 1 && arg == want:
			if err := validate(tk.Value.(string)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// errUndecided is returned for an attribute a listing cannot know.
var errUndecided = errors.New("undecided in a listing")

// condParams are the attributes of one decision.
type condParams struct {
	sub    *Subject
	obj    *Object
	env    *Env
	intent *IntentAttrs
}

func paramsOf(a *Attributes) condParams {
	return condParams{sub: &a.Sub, obj: &a.Obj, env: &a.Env, intent: &a.Intent}
}

// boundParams implements govaluate.Parameters for one condition.
type boundParams struct {
	p condParams
	c *condition
}

// Get resolves an attribute through the condition's getters, or a level
// constant.
func (b *boundParams) Get(name string) (any, error) {
	if g, ok := b.c.getters[name]; ok {
		return g(b.p)
	}
	if v, ok := constants[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("unknown attribute %q", unescape(name))
}

// eval evaluates the condition. A non-boolean result is an error.
func (c *condition) eval(p condParams) (bool, error) {
	v, err := c.expr.Eval(&boundParams{p: p, c: c})
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition is %T, not true or false", v)
	}
	return b, nil
}

// readsVerdict reports whether the condition reads the intent's verdict
// (r.intent.OutOfScope, Verdict or Reasons).
func (c *condition) readsVerdict() bool {
	for name := range c.getters {
		base, _, _ := strings.Cut(name, "#")
		switch base {
		case "r_intent.OutOfScope", "r_intent.Verdict", "r_intent.Reasons":
			return true
		}
	}
	return false
}
