package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/casbin/casbin/v2/constant"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/govaluate"
)

// The tokens the engine fills. A model must declare exactly these: the
// request carries the four attribute groups, and every policy line is
// expanded into these columns.
var (
	requestTokens = []string{"r_sub", "r_obj", "r_env", "r_intent"}
	policyTokens  = []string{"p_sub", "p_kind", "p_obj", "p_eft", "p_dec", "p_name", "p_cond", "p_priority"}
)

// indexedTerms are the matcher terms the rule index computes ahead of
// Casbin; see index.go.
var indexedTerms = []string{"subjectMatch(r_sub, p_sub)", "objectMatch(r_obj, p_kind, p_obj)"}

// The rule index's matchers call the condition in its compact form.
const (
	condTerm        = "cond(p_name, r_sub, r_obj, r_env, r_intent)"
	compactCondTerm = "condEnv(p_name, r_env)"
)

// checkedModel is a parsed model with what the engine needs to know about
// it.
type checkedModel struct {
	text    string
	m       model.Model
	nameIdx int
	// bucketMatcher is the matcher without indexedTerms, or "" when the
	// matcher does not have them as top-level terms (no index then).
	bucketMatcher string
}

// parseModel parses and checks model text; name names it in errors.
func parseModel(text, name string) (*checkedModel, error) {
	m, err := model.NewModelFromString(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidPolicy, name, err)
	}
	if err := checkSections(m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidPolicy, name, err)
	}
	matcher := m["m"]["m"].Value
	if err := checkMatcher(matcher); err != nil {
		return nil, fmt.Errorf("%w: %s: matcher: %w", ErrInvalidPolicy, name, err)
	}
	cm := &checkedModel{text: text, m: m, nameIdx: slices.Index(m["p"]["p"].Tokens, "p_name")}
	cm.bucketMatcher = withoutTerms(matcher, indexedTerms)
	return cm, nil
}

func checkSections(m model.Model) error {
	if _, ok := m["g"]; ok {
		return fmt.Errorf("role_definition is not supported: roles come from the agent's credential; use role:<name> subjects")
	}
	r, p := m["r"]["r"].Tokens, m["p"]["p"].Tokens
	if !slices.Equal(r, requestTokens) {
		return fmt.Errorf("request_definition must be \"r = sub, obj, env, intent\", got %s", strings.Join(r, ", "))
	}
	if !sameSet(p, policyTokens) {
		return fmt.Errorf("policy_definition must be \"p = sub, kind, obj, eft, dec, name, cond, priority\" (any order), got %s",
			strings.Join(p, ", "))
	}
	if e := m["e"]["e"].Value; e != constant.PriorityEffect {
		return fmt.Errorf("policy_effect must be \"priority(p.eft) || deny\" so that deny rules win, got %q", e)
	}
	if _, ok := m["m"]["m"]; !ok {
		return fmt.Errorf("matchers: m is missing")
	}
	return nil
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

// checkMatcher compiles the matcher with every function Casbin will give
// it and checks the attributes it names.
func checkMatcher(matcher string) error {
	fm := model.LoadFunctionMap()
	fns := fm.GetFunctions()
	for name := range matcherFunctions(nil) {
		fns[name] = func(...any) (any, error) { return true, nil }
	}
	expr, err := govaluate.NewEvaluableExpressionWithFunctions(matcher, fns)
	if err != nil {
		return err
	}
	p := map[string]bool{}
	for _, t := range policyTokens {
		p[t] = true
	}
	if err := checkTokens(expr.Tokens(), p); err != nil {
		return err
	}
	if !strings.Contains(matcher, "p_") {
		return fmt.Errorf("%q never looks at a policy column", matcher)
	}
	return nil
}

// withoutTerms removes terms from the top-level && chain of matcher, or
// returns "" when one is not such a term or nothing that reads the policy
// would remain.
func withoutTerms(matcher string, terms []string) string {
	parts := splitTopLevelAnd(matcher)
	rest := slices.DeleteFunc(slices.Clone(parts), func(s string) bool { return slices.Contains(terms, normalizeTerm(s)) })
	if len(rest) != len(parts)-len(terms) || len(rest) == 0 {
		return ""
	}
	for i, t := range rest {
		if normalizeTerm(t) == condTerm {
			rest[i] = compactCondTerm
		}
	}
	out := strings.Join(rest, " && ")
	if !strings.Contains(out, "p_") {
		return ""
	}
	return out
}

// splitTopLevelAnd splits s on && outside parentheses and string literals.
func splitTopLevelAnd(s string) []string {
	var parts []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'' || ch == '`':
			quote = ch
		case ch == '(':
			depth++
		case ch == ')':
			depth--
		case ch == '&' && depth == 0 && i+1 < len(s) && s[i+1] == '&':
			parts = append(parts, strings.TrimSpace(s[start:i]))
			start = i + 2
			i++
		}
	}
	return append(parts, strings.TrimSpace(s[start:]))
}

// normalizeTerm spaces a term canonically, for comparison only.
func normalizeTerm(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, " ,", ",")
	s = strings.ReplaceAll(s, ", ", ",")
	return strings.ReplaceAll(s, ",", ", ")
}
