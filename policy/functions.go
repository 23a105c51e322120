package policy

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/casbin/govaluate"
)

// condFunctions are the functions a rule condition may call, beyond the
// operators of Casbin's expression language (&&, ||, !, ==, <, in, =~, ...).
// Each fails on arguments of the wrong type, which fails the decision closed.
var condFunctions = map[string]govaluate.ExpressionFunction{
	"hostOf":     fnHostOf,
	"pathUnder":  fnPathUnder,
	"globMatch":  fnGlobMatch,
	"regexMatch": fnRegexMatch,
	"has":        fnHas,
	"anyGlob":    fnAnyGlob,
}

// patternArg names the functions whose second argument is a pattern that
// is checked when the policy loads, if it is a literal.
var patternArg = map[string]func(string) error{
	"globMatch":  validateGlob,
	"regexMatch": func(s string) error { _, err := regexp.Compile(s); return err },
	"anyGlob":    validateGlob,
}

// patternFirst names the pattern functions whose pattern is their first
// argument.
var patternFirst = map[string]bool{"anyGlob": true}

func validateGlob(s string) error {
	if !doublestar.ValidatePattern(s) {
		return fmt.Errorf("%q is not a valid glob", s)
	}
	return nil
}

func strArgs(name string, want int, args []any) ([]string, error) {
	if len(args) != want {
		return nil, fmt.Errorf("%s: want %d arguments, got %d", name, want, len(args))
	}
	out := make([]string, want)
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("%s: argument %d is %T, not a string", name, i+1, a)
		}
		out[i] = s
	}
	return out, nil
}

// fnHostOf returns the lower-case host name of a URL ("" when it has none).
func fnHostOf(args ...any) (any, error) {
	s, err := strArgs("hostOf", 1, args)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(s[0]))
	if err != nil {
		return "", nil
	}
	return strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), nil
}

// fnPathUnder reports whether a slash-separated path lies inside dir, after
// cleaning both ("a/../../b" is not under "a").
func fnPathUnder(args ...any) (any, error) {
	s, err := strArgs("pathUnder", 2, args)
	if err != nil {
		return nil, err
	}
	p := path.Clean("/" + strings.ReplaceAll(s[0], `\`, "/"))
	dir := path.Clean("/" + s[1])
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/"), nil
}

func fnGlobMatch(args ...any) (any, error) {
	s, err := strArgs("globMatch", 2, args)
	if err != nil {
		return nil, err
	}
	ok, err := doublestar.Match(s[1], s[0])
	if err != nil {
		return nil, fmt.Errorf("globMatch: %w", err)
	}
	return ok, nil
}

// regexCache holds compiled patterns; bounded because a pattern may come
// from an argument.
var regexCache sync.Map

const regexCacheMax = 256

var regexCacheLen struct {
	sync.Mutex
	n int
}

func fnRegexMatch(args ...any) (any, error) {
	s, err := strArgs("regexMatch", 2, args)
	if err != nil {
		return nil, err
	}
	if re, ok := regexCache.Load(s[1]); ok {
		return re.(*regexp.Regexp).MatchString(s[0]), nil
	}
	re, err := regexp.Compile(s[1])
	if err != nil {
		return nil, fmt.Errorf("regexMatch: %w", err)
	}
	regexCacheLen.Lock()
	if regexCacheLen.n < regexCacheMax {
		regexCacheLen.n++
		regexCache.Store(s[1], re)
	}
	regexCacheLen.Unlock()
	return re.MatchString(s[0]), nil
}

// fnHas reports whether a map has a key or a list holds a value, so that a
// condition can test an optional argument before reading it:
// has(r.obj.Args, 'amount') && r.obj.Args.amount > 1000.
func fnHas(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("has: want 2 arguments, got %d", len(args))
	}
	switch c := args[0].(type) {
	case map[string]any:
		k, ok := args[1].(string)
		if !ok {
			return nil, errors.New("has: a map key must be a string")
		}
		_, found := c[k]
		return found, nil
	case map[string]string:
		k, ok := args[1].(string)
		if !ok {
			return nil, errors.New("has: a map key must be a string")
		}
		_, found := c[k]
		return found, nil
	case []any:
		for _, e := range c {
			if e == args[1] {
				return true, nil
			}
		}
		return false, nil
	case nil:
		return false, nil
	}
	return nil, fmt.Errorf("has: %T is not a map or list", args[0])
}
