package policy

import (
	"fmt"
	"strings"

	"github.com/casbin/govaluate"
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
	"r_sub.Trust":      func(p condParams) (any, error) { return p.sub.Trust, nil },
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
// holding a map followed by keys (r_obj.Args.payee.iban).
func pathGetter(parts []string) (getter, error) {
	for n := len(parts); n >= 2; n-- {
		g, ok := getters[strings.Join(parts[:n], ".")]
		if !ok {
			continue
		}
		keys := parts[n:]
		if len(keys) == 0 {
			return g, nil
		}
		return func(p condParams) (any, error) {
			v, err := g(p)
			if err != nil {
				return nil, err
			}
			return lookupKeys(v, keys)
		}, nil
	}
	return nil, fmt.Errorf("no getter for %s", strings.Join(parts, "."))
}

// lookupKeys walks map keys. A missing key is an error, which fails the
// decision closed; use has(map, 'key') to test for optional arguments.
func lookupKeys(v any, keys []string) (any, error) {
	for i, k := range keys {
		var ok bool
		switch m := v.(type) {
		case map[string]any:
			v, ok = m[k]
		case map[string]string:
			v, ok = m[k]
		default:
			return nil, fmt.Errorf("missing attribute: %s is not an object", strings.Join(keys[:i], "."))
		}
		if !ok {
			return nil, fmt.Errorf("missing attribute: %q is not present", strings.Join(keys[:i+1], "."))
		}
	}
	return v, nil
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
		g, err := pathGetter(parts)
		if err != nil {
			return nil, nil, err
		}
		name := strings.Join(parts, ".")
		bound[name] = g
		out[i] = govaluate.ExpressionToken{Kind: govaluate.VARIABLE, Value: name}
	}
	return out, bound, nil
}
