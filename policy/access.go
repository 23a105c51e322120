package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/casbin/govaluate"

	"github.com/mcp-mediator/mediator/mediator"
)

// Conditions read attributes through a table of getters instead of
// govaluate's accessors, which look every field up by name with reflection
// on every read. compileCondition turns each attribute path
// (r_obj.DataClass, r_obj.Args.amount) into a single variable whose getter
// was chosen when the policy loaded.

// getter reads one attribute.
type getter func(p condParams) (any, error)

var getters = map[string]getter{
	"r_sub.ID":         func(p condParams) (any, error) { return p.sub.ID, nil },
	"r_sub.Version":    func(p condParams) (any, error) { return p.sub.Version, nil },
	"r_sub.Roles":      func(p condParams) (any, error) { return p.sub.Roles, nil },
	"r_sub.Owner":      func(p condParams) (any, error) { return p.sub.Owner, nil },
	"r_sub.Function":   func(p condParams) (any, error) { return p.sub.Function, nil },
	"r_sub.Confidence": func(p condParams) (any, error) { return p.sub.Confidence, nil },
	"r_sub.Trust":      trustGetter(func(s *Subject) any { return s.Trust }),
	"r_sub.TrustName":  trustGetter(func(s *Subject) any { return s.TrustName }),
	"r_sub.Task":       func(p condParams) (any, error) { return p.sub.Task, nil },
	"r_sub.Attrs":      func(p condParams) (any, error) { return p.sub.Attrs, nil },

	"r_obj.Kind":          func(p condParams) (any, error) { return p.obj.Kind, nil },
	"r_obj.Server":        func(p condParams) (any, error) { return p.obj.Server, nil },
	"r_obj.Name":          func(p condParams) (any, error) { return p.obj.Name, nil },
	"r_obj.Original":      func(p condParams) (any, error) { return p.obj.Original, nil },
	"r_obj.Risk":          func(p condParams) (any, error) { return p.obj.Risk, nil },
	"r_obj.RiskName":      func(p condParams) (any, error) { return p.obj.RiskName, nil },
	"r_obj.DataClass":     func(p condParams) (any, error) { return p.obj.DataClass, nil },
	"r_obj.DataClassName": func(p condParams) (any, error) { return p.obj.DataClassName, nil },
	"r_obj.ReadOnly":      func(p condParams) (any, error) { return p.obj.ReadOnly, nil },
	"r_obj.Destructive":   func(p condParams) (any, error) { return p.obj.Destructive, nil },
	"r_obj.Idempotent":    func(p condParams) (any, error) { return p.obj.Idempotent, nil },
	"r_obj.OpenWorld":     func(p condParams) (any, error) { return p.obj.OpenWorld, nil },
	"r_obj.Args":          func(p condParams) (any, error) { return p.obj.Args, nil },
	"r_obj.ArgSecrets":    callGetter(func(a *Attributes) any { return a.Obj.ArgSecrets }),

	"r_session.Tainted":          callGetter(func(a *Attributes) any { return a.Session.Tainted }),
	"r_session.MaxDataClass":     callGetter(func(a *Attributes) any { return a.Session.MaxDataClass }),
	"r_session.MaxDataClassName": callGetter(func(a *Attributes) any { return a.Session.MaxDataClassName }),
	"r_session.SecretsSeen":      callGetter(func(a *Attributes) any { return a.Session.SecretsSeen }),

	"r_env.Time":          envGetter(func(e *Env) any { return e.Time }),
	"r_env.Zone":          envGetter(func(e *Env) any { return e.Zone }),
	"r_env.Hour":          envGetter(func(e *Env) any { return e.Hour }),
	"r_env.Minute":        envGetter(func(e *Env) any { return e.Minute }),
	"r_env.Weekday":       envGetter(func(e *Env) any { return e.Weekday }),
	"r_env.Weekend":       envGetter(func(e *Env) any { return e.Weekend }),
	"r_env.BusinessHours": envGetter(func(e *Env) any { return e.BusinessHours }),
	"r_env.IP":            envGetter(func(e *Env) any { return e.IP }),
	"r_env.Network":       envGetter(func(e *Env) any { return e.Network }),
	"r_env.Alert":         envGetter(func(e *Env) any { return e.Alert }),
	"r_env.AlertName":     envGetter(func(e *Env) any { return e.AlertName }),

	"r_intent.Verdict":    intentGetter(func(i *IntentAttrs) any { return i.Verdict }),
	"r_intent.InScope":    intentGetter(func(i *IntentAttrs) any { return i.InScope }),
	"r_intent.OutOfScope": intentGetter(func(i *IntentAttrs) any { return i.OutOfScope }),
	"r_intent.Reasons":    intentGetter(func(i *IntentAttrs) any { return i.Reasons }),
	"r_intent.Score":      intentGetter(func(i *IntentAttrs) any { return i.Score }),
	"r_intent.Task":       intentGetter(func(i *IntentAttrs) any { return i.Task }),

	"r_behaviour.Score":    behaviourGetter(func(b *BehaviourAttrs) any { return b.Score }),
	"r_behaviour.Reasons":  behaviourGetter(func(b *BehaviourAttrs) any { return b.Reasons }),
	"r_behaviour.Novel":    behaviourGetter(func(b *BehaviourAttrs) any { return b.Novel }),
	"r_behaviour.Learning": behaviourGetter(func(b *BehaviourAttrs) any { return b.Learning }),
	"r_behaviour.Calls":    behaviourGetter(func(b *BehaviourAttrs) any { return b.Calls }),
	"r_behaviour.On":       behaviourGetter(func(b *BehaviourAttrs) any { return b.On }),
}

// trustGetter and behaviourGetter are undecided in a listing too: trust
// changes with every call, and a listing has no behaviour check. A rule on
// them hides nothing from tools/list and decides each call.
func trustGetter(f func(*Subject) any) getter {
	return func(p condParams) (any, error) {
		if p.env.listing {
			return nil, errUndecided
		}
		return f(p.sub), nil
	}
}

// callGetter reads what only a call has (its arguments' secrets, its
// session's history): undecided in a listing.
func callGetter(f func(*Attributes) any) getter {
	return func(p condParams) (any, error) {
		if p.env.listing || p.env.attrs == nil {
			return nil, errUndecided
		}
		return f(p.env.attrs), nil
	}
}

func behaviourGetter(f func(*BehaviourAttrs) any) getter {
	return func(p condParams) (any, error) {
		if p.env.listing || p.env.attrs == nil {
			return nil, errUndecided
		}
		return f(&p.env.attrs.Behaviour), nil
	}
}

// envGetter and intentGetter make the environment and the intent undecided
// in a listing: they change between the listing and the call.
func envGetter(f func(*Env) any) getter {
	return func(p condParams) (any, error) {
		if p.env.listing {
			return nil, errUndecided
		}
		return f(p.env), nil
	}
}

func intentGetter(f func(*IntentAttrs) any) getter {
	return func(p condParams) (any, error) {
		if p.env.listing {
			return nil, errUndecided
		}
		return f(p.intent), nil
	}
}

// pathGetter returns the getter of an attribute path: a field, or a field
// holding a map followed by keys (r_obj.Args.payee.iban). want is the type
// the condition compares the value with (anyType when it cannot tell): a
// value of another type is an error, like a missing key, rather than a
// silently false comparison. Below r.obj.Args both are the agent's
// mistake, a *mediator.ArgumentError.
func pathGetter(parts []string, want argType) (getter, error) {
	for n := len(parts); n >= 2; n-- {
		base := strings.Join(parts[:n], ".")
		g, ok := getters[base]
		if !ok {
			continue
		}
		keys := parts[n:]
		if len(keys) == 0 {
			return g, nil
		}
		args := base == "r_obj.Args"
		attr := unescape(strings.Join(parts, "."))
		return func(p condParams) (any, error) {
			v, err := g(p)
			if err != nil {
				return nil, err
			}
			v, bad, err := lookupKeys(v, keys)
			if err != nil {
				if !args {
					return nil, err
				}
				if errors.Is(err, errNotObject) {
					return nil, &mediator.ArgumentError{Arg: strings.Join(keys[:bad+1], "."), Problem: "is not an object, as read"}
				}
				return nil, &mediator.ArgumentError{Arg: strings.Join(keys[:bad+1], "."), Problem: "is required"}
			}
			if want != anyType && typeOf(v) != want {
				if args {
					return nil, &mediator.ArgumentError{Arg: strings.Join(keys, "."),
						Problem: "is " + typeOf(v).article() + ", compared with " + want.article()}
				}
				return nil, fmt.Errorf("attribute %s is %s, compared with %s", attr, typeOf(v).article(), want.article())
			}
			return v, nil
		}, nil
	}
	return nil, fmt.Errorf("no getter for %s", strings.Join(parts, "."))
}

// lookupKeys walks map keys. A missing key is an error, which fails the
// decision closed; use has(map, 'key') to test for optional arguments. bad
// is the index of the key that failed.
func lookupKeys(v any, keys []string) (_ any, bad int, _ error) {
	for i, k := range keys {
		var ok bool
		switch m := v.(type) {
		case map[string]any:
			v, ok = m[k]
		case map[string]string:
			v, ok = m[k]
		default:
			return nil, max(i-1, 0), fmt.Errorf("missing attribute: %s %w", strings.Join(keys[:i], "."), errNotObject)
		}
		if !ok {
			return nil, i, fmt.Errorf("missing attribute: %q is not present", strings.Join(keys[:i+1], "."))
		}
	}
	return v, 0, nil
}

var errNotObject = errors.New("is not an object")

// argType is the type of a value a condition reads from a map.
type argType uint8

const (
	anyType argType = iota
	typeString
	typeNumber
	typeBool
	typeObject
	typeArray
	typeNull
)

func typeOf(v any) argType {
	switch v.(type) {
	case string:
		return typeString
	case float64, float32, int, int64, int32, uint, uint64:
		return typeNumber
	case bool:
		return typeBool
	case map[string]any, map[string]string:
		return typeObject
	case []any:
		return typeArray
	case nil:
		return typeNull
	}
	return anyType
}

func (t argType) article() string {
	switch t {
	case typeString:
		return "a string"
	case typeNumber:
		return "a number"
	case typeBool:
		return "a boolean"
	case typeObject:
		return "an object"
	case typeArray:
		return "an array"
	case typeNull:
		return "null"
	}
	return "a value"
}

// literalType is the type of a literal token (a level constant is a
// number), anyType for anything else.
func literalType(tk govaluate.ExpressionToken) argType {
	switch tk.Kind {
	case govaluate.NUMERIC:
		return typeNumber
	case govaluate.BOOLEAN:
		return typeBool
	case govaluate.STRING:
		return typeString
	case govaluate.VARIABLE:
		if name, ok := tk.Value.(string); ok {
			if _, ok := constants[name]; ok {
				return typeNumber
			}
		}
	}
	return anyType
}

// stringFuncs are the functions whose arguments are all strings.
var stringFuncs = map[string]bool{"hostOf": true, "pathUnder": true, "globMatch": true, "regexMatch": true}

// expectedType is the type the condition needs of the attribute read at
// tokens[i]: the literal it is compared with (==, !=, <, in (...)), a
// boolean for a logical operand, a string for a pattern match or a string
// function's argument, an object for has's first. anyType when the
// context does not tell (two attributes compared, arithmetic).
func expectedType(tokens []govaluate.ExpressionToken, i int) argType {
	at := func(j int) (govaluate.ExpressionToken, bool) {
		if j < 0 || j >= len(tokens) {
			return govaluate.ExpressionToken{}, false
		}
		return tokens[j], true
	}
	op := func(tk govaluate.ExpressionToken) string { s, _ := tk.Value.(string); return s }
	if len(tokens) == 1 {
		return typeBool
	}
	if next, ok := at(i + 1); ok && next.Kind == govaluate.COMPARATOR {
		switch op(next) {
		case "==", "!=", "<", ">", "<=", ">=":
			if lit, ok := at(i + 2); ok {
				return literalType(lit)
			}
		case "=~", "!~":
			return typeString
		case "in":
			if cl, ok := at(i + 2); ok && cl.Kind == govaluate.CLAUSE {
				if lit, ok := at(i + 3); ok {
					return literalType(lit)
				}
			}
		}
	}
	if prev, ok := at(i - 1); ok && prev.Kind == govaluate.COMPARATOR {
		switch op(prev) {
		case "==", "!=", "<", ">", "<=", ">=":
			if lit, ok := at(i - 2); ok {
				return literalType(lit)
			}
		}
	}
	if t, ok := funcArgType(tokens, i); ok {
		return t
	}
	// An operand of && or || or !, or the whole condition.
	boundary := func(j int) bool {
		tk, ok := at(j)
		return !ok || tk.Kind == govaluate.LOGICALOP || tk.Kind == govaluate.CLAUSE || tk.Kind == govaluate.CLAUSE_CLOSE ||
			(tk.Kind == govaluate.PREFIX && op(tk) == "!")
	}
	if boundary(i-1) && boundary(i+1) {
		return typeBool
	}
	return anyType
}

// funcArgType is the type of the attribute at tokens[i] when it is a whole
// argument of a function call; false when it is not one.
func funcArgType(tokens []govaluate.ExpressionToken, i int) (argType, bool) {
	if i == 0 || i+1 >= len(tokens) {
		return anyType, false
	}
	prev, next := tokens[i-1], tokens[i+1]
	if (prev.Kind != govaluate.CLAUSE && prev.Kind != govaluate.SEPARATOR) ||
		(next.Kind != govaluate.SEPARATOR && next.Kind != govaluate.CLAUSE_CLOSE) {
		return anyType, false
	}
	depth, arg := 0, 0
	for j := i - 1; j >= 0; j-- {
		switch tokens[j].Kind {
		case govaluate.CLAUSE_CLOSE:
			depth++
		case govaluate.SEPARATOR:
			if depth == 0 {
				arg++
			}
		case govaluate.CLAUSE:
			if depth > 0 {
				depth--
				continue
			}
			if j == 0 || tokens[j-1].Kind != govaluate.FUNCTION {
				return anyType, false // a parenthesis or a list
			}
			name := funcNames[reflect.ValueOf(tokens[j-1].Value).Pointer()]
			switch {
			case stringFuncs[name]:
				return typeString, true
			case name == "has" && arg == 0:
				return typeObject, true
			}
			return anyType, true
		}
	}
	return anyType, false
}

// bindTokens replaces each attribute accessor in tokens with a variable
// read through the getter table, and returns the getters by variable name.
func bindTokens(tokens []govaluate.ExpressionToken) ([]govaluate.ExpressionToken, map[string]getter, error) {
	out := make([]govaluate.ExpressionToken, len(tokens))
	bound := map[string]getter{}
	for i, tk := range tokens {
		out[i] = tk
		parts, ok := tk.Value.([]string)
		if tk.Kind != govaluate.ACCESSOR || !ok {
			continue
		}
		want := expectedType(tokens, i)
		g, err := pathGetter(parts, want)
		if err != nil {
			return nil, nil, err
		}
		name := strings.Join(parts, ".")
		if want != anyType {
			// The same attribute may be read with different types.
			name += "#" + strconv.Itoa(int(want))
		}
		bound[name] = g
		out[i] = govaluate.ExpressionToken{Kind: govaluate.VARIABLE, Value: name}
	}
	return out, bound, nil
}
