package policy

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/mcp-mediator/mediator/mediator"
)

// Rule is one policy line:
//
//	p, subject, kind, object, decision, name[, condition]
//
// subject is "*", "agent:<id>" or "role:<role>"; kind is tool, resource,
// prompt or "*"; object is a glob over catalog names or resource URIs;
// decision is allow, deny or approve; name is unique and is what decisions
// cite; condition, when present, is an expression over r.sub, r.obj, r.env
// and r.intent that must hold for the rule to match.
type Rule struct {
	Line     int
	Sub      string
	Kind     string
	Obj      string
	Decision mediator.Effect
	Name     string
	Cond     string

	cond *condition
	// decidesScope: the condition reads the intent's verdict, so the rule
	// may allow calls outside the declared intent.
	decidesScope bool
}

var ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// ParseRules reads policy text strictly: CSV with "#" comments and a rule
// per line. A line that Casbin's own adapter would drop silently (a bare
// quote, a wrong field count) is an error naming source and line, and so is
// an unknown subject form, kind or decision, an invalid glob, a duplicate
// rule name, or a condition that names an unknown attribute.
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
		if err != nil {
			return nil, csvError(source, err)
		}
		line, _ := cr.FieldPos(0)
		rule, err := parseRule(rec, line)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %w", ErrInvalidPolicy, source, line, err)
		}
		if prev, dup := names[rule.Name]; dup {
			return nil, fmt.Errorf("%w: %s:%d: rule name %q already used on line %d; rule names must be unique",
				ErrInvalidPolicy, source, line, rule.Name, prev)
		}
		names[rule.Name] = line
		out = append(out, rule)
	}
}

func csvError(source string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s:%d: column %d: %w (quote a field holding a comma or a double quote as \"...\", "+
			"doubling inner double quotes; in conditions prefer 'single quotes' for strings)",
			ErrInvalidPolicy, source, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%w: %s: %w", ErrInvalidPolicy, source, err)
}

func parseRule(rec []string, line int) (Rule, error) {
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
	}
	if (len(rec) != 6 && len(rec) != 7) || rec[0] != "p" {
		return Rule{}, fmt.Errorf("want \"p, subject, kind, object, decision, name[, condition]\" (6 or 7 fields), got %d fields starting %q",
			len(rec), rec[0])
	}
	r := Rule{Line: line, Sub: rec[1], Kind: rec[2], Obj: rec[3], Decision: mediator.Effect(rec[4]), Name: rec[5]}
	if len(rec) == 7 {
		r.Cond = rec[6]
	}
	if err := r.check(); err != nil {
		return Rule{}, err
	}
	if r.Cond != "" {
		c, err := compileCondition(r.Cond)
		if err != nil {
			return Rule{}, err
		}
		r.cond = c
		r.decidesScope = c.readsVerdict()
	}
	return r, nil
}

func (r *Rule) check() error {
	switch {
	case !validSubject(r.Sub):
		return fmt.Errorf("subject %q: use \"*\", \"agent:<id>\" or \"role:<role>\"", r.Sub)
	case r.Kind != "*" && r.Kind != string(mediator.KindTool) && r.Kind != string(mediator.KindResource) &&
		r.Kind != string(mediator.KindPrompt) && r.Kind != string(mediator.KindBuiltin):
		return fmt.Errorf("kind %q: use tool, resource, prompt, builtin or *", r.Kind)
	case r.Obj == "" || !doublestar.ValidatePattern(r.Obj):
		return fmt.Errorf("object %q is not a valid glob (e.g. demo__*, demo://**)", r.Obj)
	case r.Decision != mediator.EffectAllow && r.Decision != mediator.EffectDeny && r.Decision != mediator.EffectApprove:
		return fmt.Errorf("decision %q: use allow, deny or approve", r.Decision)
	case r.Name == "":
		return errors.New("rule name is empty; name every rule so decisions can cite it")
	case !ruleNameRE.MatchString(r.Name):
		return fmt.Errorf("rule name %q: use letters, digits, '-', '_', '.' or ':' (at most 64)", r.Name)
	}
	return nil
}

func validSubject(s string) bool {
	if s == "*" {
		return true
	}
	for _, p := range []string{"agent:", "role:"} {
		if v, ok := strings.CutPrefix(s, p); ok && v != "" && v != "*" {
			return true
		}
	}
	return false
}

// matchSubject reports whether a rule's subject column names the agent.
func matchSubject(s *Subject, col string) bool {
	if col == "*" {
		return true
	}
	if id, ok := strings.CutPrefix(col, "agent:"); ok {
		return id == s.ID
	}
	if role, ok := strings.CutPrefix(col, "role:"); ok {
		for _, r := range s.Roles {
			if r == role {
				return true
			}
		}
	}
	return false
}

// matchObject reports whether a rule's kind and object columns cover o.
func matchObject(o *Object, kind, glob string) bool {
	if kind != "*" && kind != o.Kind {
		return false
	}
	if glob == o.Name || glob == "**" {
		return true
	}
	ok, err := doublestar.Match(glob, o.Name)
	return err == nil && ok
}

// rank orders decisions for Casbin's priority effect: deny rules first,
// then approve, then allow; within a decision, file order.
func rank(d mediator.Effect) int {
	switch d {
	case mediator.EffectDeny:
		return 1
	case mediator.EffectApprove:
		return 2
	}
	return 3
}
