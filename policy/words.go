package policy

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/casbin/casbin/v2/util"
	"github.com/casbin/govaluate"

	"github.com/mcp-mediator/mediator/mediator"
)

// Words says a rule condition in English, for the people who decide on
// its outcome: "r.env.Alert >= elevated && !r.obj.ReadOnly" reads "the
// alert level is elevated or higher and the tool is not marked read-only".
// It returns "" when the condition uses a form it cannot say (the caller
// then shows the expression itself). It only reads the expression's
// tokens; it evaluates nothing.
func Words(cond string) string {
	if strings.TrimSpace(cond) == "" || len(cond) > 4096 {
		return ""
	}
	expr, err := govaluate.NewEvaluableExpressionWithFunctions(util.EscapeAssertion(cond), condFunctions)
	if err != nil {
		return ""
	}
	p := &wordParser{toks: expr.Tokens()}
	n, ok := p.or()
	if !ok || p.i != len(p.toks) {
		return ""
	}
	s, ok := n.say(false)
	if !ok {
		return ""
	}
	return s
}

// wnode is a parsed condition: an operator with its operands, or a leaf.
type wnode struct {
	op   string // "||", "&&", "!", a comparator, "fn", "list", "leaf"
	kids []*wnode
	// leaf: an attribute path, a constant, or a literal as written.
	path []string
	text string
	fn   string
}

type wordParser struct {
	toks []govaluate.ExpressionToken
	i    int
}

func (p *wordParser) peek() (govaluate.ExpressionToken, bool) {
	if p.i >= len(p.toks) {
		return govaluate.ExpressionToken{}, false
	}
	return p.toks[p.i], true
}

func (p *wordParser) logical(op string, next func() (*wnode, bool)) (*wnode, bool) {
	n, ok := next()
	if !ok {
		return nil, false
	}
	for {
		t, more := p.peek()
		if !more || t.Kind != govaluate.LOGICALOP || t.Value != op {
			return n, true
		}
		p.i++
		r, ok := next()
		if !ok {
			return nil, false
		}
		if n.op == op {
			n.kids = append(n.kids, r)
		} else {
			n = &wnode{op: op, kids: []*wnode{n, r}}
		}
	}
}

func (p *wordParser) or() (*wnode, bool)  { return p.logical("||", p.and) }
func (p *wordParser) and() (*wnode, bool) { return p.logical("&&", p.unary) }

func (p *wordParser) unary() (*wnode, bool) {
	if t, ok := p.peek(); ok && t.Kind == govaluate.PREFIX && t.Value == "!" {
		p.i++
		n, ok := p.unary()
		return &wnode{op: "!", kids: []*wnode{n}}, ok
	}
	return p.compare()
}

func (p *wordParser) compare() (*wnode, bool) {
	l, ok := p.operand()
	if !ok {
		return nil, false
	}
	t, more := p.peek()
	if !more || t.Kind != govaluate.COMPARATOR {
		return l, true
	}
	p.i++
	r, ok := p.operand()
	if !ok {
		return nil, false
	}
	return &wnode{op: fmt.Sprint(t.Value), kids: []*wnode{l, r}}, true
}

func (p *wordParser) operand() (*wnode, bool) {
	t, ok := p.peek()
	if !ok {
		return nil, false
	}
	p.i++
	switch t.Kind {
	case govaluate.ACCESSOR:
		return &wnode{op: "leaf", path: t.Value.([]string)}, true
	case govaluate.VARIABLE:
		return &wnode{op: "leaf", text: unescape(fmt.Sprint(t.Value))}, true
	case govaluate.STRING, govaluate.PATTERN:
		return &wnode{op: "leaf", text: "'" + fmt.Sprint(t.Value) + "'"}, true
	case govaluate.NUMERIC:
		f, _ := t.Value.(float64)
		return &wnode{op: "leaf", text: strconv.FormatFloat(f, 'f', -1, 64)}, true
	case govaluate.BOOLEAN:
		return &wnode{op: "leaf", text: fmt.Sprint(t.Value)}, true
	case govaluate.PREFIX:
		if t.Value == "-" {
			n, ok := p.operand()
			if ok && n.op == "leaf" && n.path == nil {
				return &wnode{op: "leaf", text: "-" + n.text}, true
			}
		}
		return nil, false
	case govaluate.FUNCTION:
		name := funcNames[reflect.ValueOf(t.Value).Pointer()]
		args, ok := p.group()
		if !ok || name == "" {
			return nil, false
		}
		return &wnode{op: "fn", fn: name, kids: args}, true
	case govaluate.CLAUSE:
		p.i--
		items, ok := p.group()
		if !ok {
			return nil, false
		}
		if len(items) == 1 {
			return items[0], true
		}
		return &wnode{op: "list", kids: items}, true
	}
	return nil, false
}

// group reads "(a, b, …)".
func (p *wordParser) group() ([]*wnode, bool) {
	if t, ok := p.peek(); !ok || t.Kind != govaluate.CLAUSE {
		return nil, false
	}
	p.i++
	var items []*wnode
	for {
		n, ok := p.or()
		if !ok {
			return nil, false
		}
		items = append(items, n)
		t, more := p.peek()
		if !more {
			return nil, false
		}
		p.i++
		switch t.Kind {
		case govaluate.SEPARATOR:
			continue
		case govaluate.CLAUSE_CLOSE:
			return items, true
		}
		return nil, false
	}
}

// flags are boolean attributes: what they say when true and when false.
var flags = map[string][2]string{
	"r_obj.ReadOnly":           {"the tool is marked read-only", "the tool is not marked read-only"},
	"r_obj.Destructive":        {"the tool is marked destructive", "the tool is not marked destructive"},
	"r_obj.Idempotent":         {"the tool is marked idempotent", "the tool is not marked idempotent"},
	"r_obj.OpenWorld":          {"the tool reaches the open world (egress)", "the tool does not reach the open world"},
	"r_obj.WritesOutside":      {"it writes outside the project directory", "it writes only inside the project directory"},
	"r_obj.Shell.Parsed":       {"the shell command could be read", "the shell command could not be read"},
	"r_obj.Shell.Compound":     {"the shell command is compound", "the shell command is a single command"},
	"r_obj.Shell.Dynamic":      {"the shell command builds commands at run time", "the shell command builds no command at run time"},
	"r_obj.Shell.PipeToShell":  {"the shell command pipes into a shell", "the shell command pipes into no shell"},
	"r_obj.Shell.Network":      {"the shell command uses the network", "the shell command does not use the network"},
	"r_obj.Shell.Sudo":         {"the shell command uses sudo", "the shell command does not use sudo"},
	"r_obj.Shell.FetchToShell": {"the shell command runs what it downloads", "the shell command runs nothing it downloads"},
	"r_obj.Shell.Substitution": {"the shell command substitutes commands", "the shell command substitutes no command"},
	"r_obj.Shell.Heredoc":      {"the shell command has a here-document", "the shell command has no here-document"},
	"r_obj.Shell.Destructive":  {"the shell command deletes or overwrites", "the shell command deletes and overwrites nothing"},
	"r_env.BusinessHours":      {"it is business hours", "it is outside business hours"},
	"r_env.Weekend":            {"it is the weekend", "it is not the weekend"},
	"r_intent.InScope":         {"the call is within its declared intent", "the call is not within a declared intent"},
	"r_intent.OutOfScope":      {"the call is outside its declared intent", "the call is not outside its declared intent"},
	"r_behaviour.Novel":        {"the call is new for this agent", "the call is usual for this agent"},
	"r_behaviour.Learning":     {"the agent's baseline is still learning", "the agent's baseline has finished learning"},
	"r_behaviour.On":           {"behaviour monitoring is on", "behaviour monitoring is off"},
	"r_session.Tainted":        {"a result in this session carried instructions aimed at the model", "no result in this session carried instructions aimed at the model"},
	"r_session.SecretsSeen":    {"this session has passed a secret", "this session has passed no secret"},
}

// nouns name the other attributes.
var nouns = map[string]string{
	"r_sub.ID": "the agent's id", "r_sub.Version": "the agent's version", "r_sub.Roles": "the agent's roles",
	"r_sub.Owner": "the agent's owner", "r_sub.Function": "the agent's function",
	"r_sub.Confidence": "the agent's confidence", "r_sub.Trust": "the agent's trust",
	"r_sub.TrustName": "the agent's trust", "r_sub.Task": "the agent's task",
	"r_obj.Kind": "the object's kind", "r_obj.Server": "the upstream", "r_obj.Name": "the tool's name",
	"r_obj.Original": "the tool's upstream name", "r_obj.Risk": "the tool's risk", "r_obj.RiskName": "the tool's risk",
	"r_obj.DataClass": "the data class", "r_obj.DataClassName": "the data class",
	"r_obj.ArgSecrets": "the number of secrets in the arguments", "r_obj.Workspace": "the project directory",
	"r_obj.Paths": "the paths it reads", "r_obj.Writes": "the paths it writes",
	"r_obj.Shell.Words": "the shell command's words", "r_obj.Shell.Programs": "the programs the shell command runs",
	"r_obj.Shell.Commands": "the number of shell commands",
	"r_env.Time":           "the time", "r_env.Zone": "the time zone", "r_env.Hour": "the hour", "r_env.Minute": "the minute",
	"r_env.Weekday": "the weekday", "r_env.IP": "the agent's address", "r_env.Network": "the agent's network",
	"r_env.Alert": "the alert level", "r_env.AlertName": "the alert level",
	"r_intent.Verdict": "the intent check's verdict", "r_intent.Reasons": "the intent check's reasons",
	"r_intent.Score": "the intent judge's score", "r_intent.Task": "the declared task",
	"r_behaviour.Score": "the behaviour deviation score", "r_behaviour.Reasons": "the behaviour check's reasons",
	"r_behaviour.Calls":      "the calls in the agent's baseline",
	"r_session.MaxDataClass": "the most sensitive data this session touched", "r_session.MaxDataClassName": "the most sensitive data this session touched",
}

// levelled attributes compare as ordered levels ("elevated or higher").
var levelled = map[string]bool{"r_sub.Trust": true, "r_obj.Risk": true, "r_obj.DataClass": true,
	"r_env.Alert": true, "r_session.MaxDataClass": true}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (n *wnode) key() string {
	if n.path == nil {
		return ""
	}
	return strings.Join(n.path, ".")
}

// noun says an operand as a noun phrase.
func (n *wnode) noun() (string, bool) {
	switch n.op {
	case "leaf":
		if n.path == nil {
			return n.text, true
		}
		k := n.key()
		if s, ok := nouns[k]; ok {
			return s, true
		}
		if len(n.path) == 3 && plainKey.MatchString(n.path[2]) {
			switch n.path[0] + "." + n.path[1] {
			case "r_obj.Args":
				return "argument " + n.path[2], true
			case "r_sub.Attrs":
				return "the agent's attribute " + n.path[2], true
			}
		}
		return "", false
	case "fn":
		if n.fn == "hostOf" && len(n.kids) == 1 {
			a, ok := n.kids[0].noun()
			return "the host of " + a, ok
		}
	case "list":
		parts := make([]string, 0, len(n.kids))
		for _, k := range n.kids {
			s, ok := k.noun()
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ", "), true
	}
	return "", false
}

// negated comparators, for saying "not (a >= b)".
var negated = map[string]string{">=": "<", "<": ">=", "<=": ">", ">": "<=", "==": "!=", "!=": "==", "=~": "!~", "!~": "=~"}

// say says n as a statement; neg says its negation.
func (n *wnode) say(neg bool) (string, bool) {
	switch n.op {
	case "||", "&&":
		op := n.op
		if neg { // De Morgan
			op = map[string]string{"||": "&&", "&&": "||"}[op]
		}
		parts := make([]string, 0, len(n.kids))
		for _, k := range n.kids {
			s, ok := k.say(neg)
			if !ok {
				return "", false
			}
			if e := k.logicalOp(neg); e != "" && e != op {
				s = "(" + s + ")"
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, map[string]string{"||": " or ", "&&": " and "}[op]), true
	case "!":
		return n.kids[0].say(!neg)
	case "leaf":
		if f, ok := flags[n.key()]; ok {
			return f[b2i(neg)], true
		}
		if n.text == "true" || n.text == "false" {
			return map[bool]string{true: "always", false: "never"}[(n.text == "true") != neg], true
		}
		s, ok := n.noun()
		return s + map[bool]string{false: " is true", true: " is false"}[neg], ok
	case "fn":
		return n.sayFunc(neg)
	}
	op := n.op
	if neg {
		if op == "in" {
			op = "not in"
		} else if op = negated[op]; op == "" {
			return "", false
		}
	}
	return n.sayCompare(op)
}

// logicalOp is the "and" or "or" that n reads as, negated or not ("" for
// a single statement).
func (n *wnode) logicalOp(neg bool) string {
	for n.op == "!" {
		n, neg = n.kids[0], !neg
	}
	if (n.op != "||" && n.op != "&&") || len(n.kids) < 2 {
		return ""
	}
	if neg {
		return map[string]string{"||": "&&", "&&": "||"}[n.op]
	}
	return n.op
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (n *wnode) sayCompare(op string) (string, bool) {
	l, r := n.kids[0], n.kids[1]
	if (op == "in" || op == "not in") && l.path == nil && r.key() == "r_sub.Roles" {
		role := strings.Trim(l.text, "'")
		if op == "in" {
			return "the agent has the role " + role, true
		}
		return "the agent does not have the role " + role, true
	}
	ls, lok := l.noun()
	rs, rok := r.noun()
	if !lok || !rok {
		return "", false
	}
	if levelled[l.key()] {
		switch op {
		case ">=":
			return ls + " is " + rs + " or higher", true
		case "<=":
			return ls + " is " + rs + " or lower", true
		case ">":
			return ls + " is higher than " + rs, true
		case "<":
			return ls + " is lower than " + rs, true
		}
	}
	verb := map[string]string{">=": "is at least", "<=": "is at most", ">": "is more than", "<": "is less than",
		"==": "is", "!=": "is not", "=~": "matches the pattern", "!~": "does not match the pattern",
		"in": "is one of", "not in": "is none of"}[op]
	if verb == "" {
		return "", false
	}
	if r.op == "leaf" && r.path != nil && (op == "in" || op == "not in") {
		verb = map[string]string{"in": "is among", "not in": "is not among"}[op]
	}
	return ls + " " + verb + " " + rs, true
}

func (n *wnode) sayFunc(neg bool) (string, bool) {
	if n.fn == "has" && len(n.kids) == 2 && n.kids[0].key() == "r_obj.Args" && n.kids[1].path == nil {
		return "the call " + map[bool]string{false: "gives", true: "does not give"}[neg] + " argument " +
			strings.Trim(n.kids[1].text, "'"), true
	}
	args := make([]string, 0, len(n.kids))
	for _, k := range n.kids {
		s, ok := k.noun()
		if !ok {
			return "", false
		}
		args = append(args, s)
	}
	not := map[bool]string{false: "", true: "not "}[neg]
	switch {
	case n.fn == "pathUnder" && len(args) == 2:
		return args[0] + " is " + not + "inside " + args[1], true
	case n.fn == "globMatch" && len(args) == 2:
		return args[0] + map[bool]string{false: " matches ", true: " does not match "}[neg] + args[1], true
	case n.fn == "regexMatch" && len(args) == 2:
		return args[0] + map[bool]string{false: " matches the pattern ", true: " does not match the pattern "}[neg] + args[1], true
	case n.fn == "anyGlob" && len(args) == 2:
		if neg {
			return "none of " + args[1] + " matches " + args[0], true
		}
		return "one of " + args[1] + " matches " + args[0], true
	}
	return "", false
}

// RuleText is a policy rule said for the people who act on its decisions.
type RuleText struct {
	Name      string
	Decision  mediator.Effect
	Condition string
	// Sentence is the whole rule in words: what it does, to whom, when.
	Sentence string
	// Note is the comment written just above the rule in the policy file.
	Note string
	// Where is file:line.
	Where string
}

// RuleText says the current policy's rule name in words; ok is false when
// no rule has that name (a decision the mediator made itself, such as
// intent.out-of-scope).
func (e *Engine) RuleText(name string) (RuleText, bool) {
	c := e.cur.Load()
	if c == nil {
		return RuleText{}, false
	}
	r := c.byName[name]
	if r == nil {
		return RuleText{}, false
	}
	return RuleText{Name: r.Name, Decision: r.Decision, Condition: r.Cond, Sentence: r.sentence(),
		Note: c.notes[r.Line], Where: fmt.Sprintf("%s:%d", c.source, r.Line)}, true
}

// sentence says the rule: "A human must approve tool demo__write_file for
// agents with the role writer when the alert level is elevated or higher."
func (r *Rule) sentence() string {
	noun := map[string]string{"tool": "tool", "resource": "resource", "prompt": "prompt", "builtin": "agent tool"}[r.Kind]
	every, obj := "every "+noun, noun+" "+r.Obj
	if noun == "" { // kind *
		every, obj = "anything", r.Obj
	}
	switch {
	case r.Obj == "**" || r.Obj == "*":
		obj = every
	case strings.ContainsAny(r.Obj, "*?[{"):
		obj = every + " matching " + r.Obj
	}
	who := "any agent"
	switch {
	case strings.HasPrefix(r.Sub, "role:"):
		who = "agents with the role " + strings.TrimPrefix(r.Sub, "role:")
	case strings.HasPrefix(r.Sub, "agent:"):
		who = "agent " + strings.TrimPrefix(r.Sub, "agent:")
	}
	var s string
	switch r.Decision {
	case mediator.EffectAllow:
		s = "Calls of " + obj + " by " + who + " are allowed"
	case mediator.EffectApprove:
		s = "A human must approve each call of " + obj + " by " + who
	default:
		s = "Calls of " + obj + " by " + who + " are refused"
	}
	if r.Cond != "" {
		w := Words(r.Cond)
		if w == "" {
			w = "its condition holds"
		}
		s += " when " + w
	}
	return s + "."
}

// ruleNotes maps each rule's line to the comment block written above it
// (shared by consecutive rules under one comment; a blank line ends a
// block; "# --- deny ---" section markers are not notes).
func ruleNotes(text []byte) map[int]string {
	notes := map[int]string{}
	var block []string
	afterRule := false
	for i, line := range strings.Split(string(text), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == "":
			block, afterRule = nil, false
		case strings.HasPrefix(t, "#"):
			if afterRule {
				block, afterRule = nil, false
			}
			c := strings.TrimSpace(strings.TrimPrefix(t, "#"))
			if strings.HasPrefix(c, "---") || c == "" {
				continue
			}
			block = append(block, c)
		case strings.HasPrefix(t, "p,") || strings.HasPrefix(t, "p ,"):
			if len(block) > 0 {
				notes[i+1] = strings.Join(block, " ")
			}
			afterRule = true
		}
	}
	return notes
}
