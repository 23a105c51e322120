package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcp-mediator/mediator/mediator"
)

// CaseFile is a policy's test cases (YAML). Objects gives catalog
// attributes by name, as the catalog would; Env gives defaults for every
// case's environment. See examples/policy/cases.yaml.
type CaseFile struct {
	Objects map[string]CaseObject `yaml:"objects"`
	Env     CaseEnv               `yaml:"env"`
	Cases   []Case                `yaml:"cases"`

	source string
}

// CaseObject is what the catalog knows about an object.
type CaseObject struct {
	// Kind is tool (default), resource or prompt.
	Kind string `yaml:"kind"`
	// Server defaults to the part of the name before "__", or a URI's
	// scheme.
	Server      string             `yaml:"server"`
	Risk        mediator.Risk      `yaml:"risk"`
	DataClass   mediator.DataClass `yaml:"data_class"`
	ReadOnly    *bool              `yaml:"read_only"`
	Destructive *bool              `yaml:"destructive"`
	Idempotent  *bool              `yaml:"idempotent"`
	OpenWorld   *bool              `yaml:"open_world"`
}

// CaseCall is the request of a case: one of name (with kind), tool,
// resource or prompt, its arguments, and catalog attributes that override
// those in CaseFile.Objects.
type CaseCall struct {
	CaseObject `yaml:",inline"`
	Name       string `yaml:"name"`
	Tool       string `yaml:"tool"`
	Resource   string `yaml:"resource"`
	Prompt     string `yaml:"prompt"`
	// Builtin names an agent tool (claude__Bash), kind builtin.
	Builtin   string         `yaml:"builtin"`
	Arguments map[string]any `yaml:"arguments"`
	// Workspace is the project directory of an agent tool use.
	Workspace string `yaml:"workspace"`
}

// CaseAgent is the calling agent, as its credential would describe it.
type CaseAgent struct {
	ID               string            `yaml:"id"`
	Version          string            `yaml:"version"`
	Roles            []string          `yaml:"roles"`
	Owner            string            `yaml:"owner"`
	BusinessFunction string            `yaml:"business_function"`
	Attrs            map[string]string `yaml:"attrs"`
	Confidence       float64           `yaml:"confidence"`
	TrustLevel       string            `yaml:"trust_level"`
	Task             string            `yaml:"task"`
}

// CaseEnv is the environment of a case. Time is RFC 3339, or a wall-clock
// time (2026-03-03T10:00) in the policy's zone.
type CaseEnv struct {
	Time  string `yaml:"time"`
	IP    string `yaml:"ip"`
	Alert string `yaml:"alert"`
}

// CaseIntent is the intent check's result for the case.
type CaseIntent struct {
	Verdict string   `yaml:"verdict"`
	Reasons []string `yaml:"reasons"`
	Score   float64  `yaml:"score"`
	Task    string   `yaml:"task"`
}

// CaseSession is what a case's session touched before the call (r.session).
type CaseSession struct {
	Tainted      bool               `yaml:"tainted"`
	MaxDataClass mediator.DataClass `yaml:"max_data_class"`
	SecretsSeen  bool               `yaml:"secrets_seen"`
}

// CaseBehaviour is the behaviour check's result for the case.
type CaseBehaviour struct {
	Score    float64  `yaml:"score"`
	Reasons  []string `yaml:"reasons"`
	Novel    bool     `yaml:"novel"`
	Learning bool     `yaml:"learning"`
	Calls    int64    `yaml:"calls"`
}

// Case is one expectation: this agent making this call in this
// environment gets this decision, optionally by this rule ("" for the
// default deny). Error expects a denial that failed to evaluate: a policy
// error, or the agent's argument error (an argument a rule reads is
// missing, or of another type than the rule compares it with).
type Case struct {
	Name   string     `yaml:"name"`
	Agent  CaseAgent  `yaml:"agent"`
	Call   CaseCall   `yaml:"call"`
	Env    CaseEnv    `yaml:"env"`
	Intent CaseIntent `yaml:"intent"`
	// Behaviour is the behaviour check's result for the case (nil: off).
	Behaviour *CaseBehaviour `yaml:"behaviour"`
	// Session is what the case's session touched before the call.
	Session CaseSession `yaml:"session"`
	// ArgSecrets is how many secrets the scanner found in the arguments.
	ArgSecrets int             `yaml:"arg_secrets"`
	Listing    bool            `yaml:"listing"`
	Want       mediator.Effect `yaml:"want"`
	Rule       *string         `yaml:"rule"`
	Error      bool            `yaml:"error"`

	line int
}

// Where names the case's file and line.
func (c *Case) Where(cf *CaseFile) string { return fmt.Sprintf("%s:%d", cf.source, c.line) }

// ParseCases reads cases strictly: unknown keys, a case without a name, a
// duplicate name, an unknown decision, kind, verdict or alert level, or a
// time that does not parse is an error naming source and line.
func ParseCases(data []byte, source string) (*CaseFile, error) {
	if source == "" {
		source = "cases"
	}
	cf := &CaseFile{source: source}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cf); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidPolicy, source, err)
	}
	cf.source = source
	lines := caseLines(data)
	names := map[string]int{}
	for i := range cf.Cases {
		c := &cf.Cases[i]
		if i < len(lines) {
			c.line = lines[i]
		}
		if err := cf.check(c, names); err != nil {
			return nil, fmt.Errorf("%w: %s: case %q: %w", ErrInvalidPolicy, c.Where(cf), c.Name, err)
		}
	}
	return cf, nil
}

// caseLines returns the line of each element of the top-level "cases".
func caseLines(data []byte) []int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "cases" {
			var out []int
			for _, n := range root.Content[i+1].Content {
				out = append(out, n.Line)
			}
			return out
		}
	}
	return nil
}

func (cf *CaseFile) check(c *Case, names map[string]int) error {
	if c.Name == "" {
		return errors.New("name is empty")
	}
	if prev, dup := names[c.Name]; dup {
		return fmt.Errorf("name already used on line %d", prev)
	}
	names[c.Name] = c.line
	switch c.Want {
	case mediator.EffectAllow, mediator.EffectDeny, mediator.EffectApprove:
	default:
		return fmt.Errorf("want %q: use allow, deny or approve", c.Want)
	}
	if c.Error && c.Want != mediator.EffectDeny {
		return errors.New("error: true needs want: deny (a policy error is always a denial)")
	}
	if c.Agent.ID == "" {
		return errors.New("agent.id is empty")
	}
	if _, err := cf.target(c); err != nil {
		return err
	}
	_, err := cf.situation(c, time.UTC)
	if err == nil {
		_, err = cf.remoteIP(c)
	}
	if err == nil {
		_, err = intentOfCase(c.Intent)
	}
	return err
}

// request builds the authorization request and situation of case c, with
// wall-clock times read in zone.
func (cf *CaseFile) request(c *Case, zone *time.Location) (mediator.AuthzRequest, Situation, error) {
	t, err := cf.target(c)
	if err != nil {
		return mediator.AuthzRequest{}, Situation{}, err
	}
	s, err := cf.situation(c, zone)
	if err != nil {
		return mediator.AuthzRequest{}, Situation{}, err
	}
	ip, err := cf.remoteIP(c)
	if err != nil {
		return mediator.AuthzRequest{}, Situation{}, err
	}
	in, err := intentOfCase(c.Intent)
	if err != nil {
		return mediator.AuthzRequest{}, Situation{}, err
	}
	a := c.Agent
	if a.TrustLevel != "" {
		if _, err := mediator.ParseTrustLevel(a.TrustLevel); err != nil {
			return mediator.AuthzRequest{}, Situation{}, fmt.Errorf("agent.trust_level: %w", err)
		}
	}
	var beh *mediator.Behaviour
	if b := c.Behaviour; b != nil {
		if b.Score < 0 || b.Score > 1 {
			return mediator.AuthzRequest{}, Situation{}, fmt.Errorf("behaviour.score %v: use 0..1", b.Score)
		}
		beh = &mediator.Behaviour{Score: b.Score, Reasons: b.Reasons, Novel: b.Novel, Learning: b.Learning, Calls: b.Calls,
			Trust: mediator.TrustLevel(a.TrustLevel)}
	}
	if d := c.Session.MaxDataClass; d != "" && !mediator.ValidDataClass(d) {
		return mediator.AuthzRequest{}, Situation{}, fmt.Errorf("session.max_data_class %q: use public, internal, confidential, pii or financial", d)
	}
	req := mediator.AuthzRequest{Behaviour: beh, Target: t, Arguments: c.Call.Arguments, Intent: in, Listing: c.Listing, RemoteIP: ip,
		Workspace:  c.Call.Workspace,
		ArgSecrets: c.ArgSecrets, Session: mediator.SessionFlow{Tainted: c.Session.Tainted, MaxDataClass: c.Session.MaxDataClass,
			SecretsSeen: c.Session.SecretsSeen},
		Agent: mediator.Agent{ID: a.ID, Version: a.Version, Roles: a.Roles, Owner: a.Owner, BusinessFunction: a.BusinessFunction,
			Attrs: a.Attrs, Confidence: a.Confidence, TrustLevel: a.TrustLevel, TaskID: a.Task}}
	return req, s, nil
}

// target resolves the call's object with the catalog attributes of Objects.
func (cf *CaseFile) target(c *Case) (mediator.Target, error) {
	kind, name, err := c.Call.kindName()
	if err != nil {
		return mediator.Target{}, err
	}
	o := cf.Objects[name].merge(c.Call.CaseObject)
	if o.Kind != "" {
		kind = mediator.Kind(o.Kind)
	}
	if kind != mediator.KindTool && kind != mediator.KindResource && kind != mediator.KindPrompt && kind != mediator.KindBuiltin {
		return mediator.Target{}, fmt.Errorf("call kind %q: use tool, resource, prompt or builtin", kind)
	}
	if o.Risk != "" && !mediator.ValidRisk(o.Risk) {
		return mediator.Target{}, fmt.Errorf("risk %q: use low, medium, high or critical", o.Risk)
	}
	if o.DataClass != "" && !mediator.ValidDataClass(o.DataClass) {
		return mediator.Target{}, fmt.Errorf("data_class %q: use public, internal, confidential, pii or financial", o.DataClass)
	}
	return mediator.Target{Kind: kind, Server: o.serverFor(name), Name: name, Original: name, Risk: o.Risk, DataClass: o.DataClass,
		Hints: mediator.Hints{ReadOnly: o.ReadOnly, Destructive: o.Destructive, Idempotent: o.Idempotent, OpenWorld: o.OpenWorld}}, nil
}

func (c *CaseCall) kindName() (mediator.Kind, string, error) {
	set := 0
	kind, name := mediator.KindTool, c.Name
	for _, v := range []struct {
		k mediator.Kind
		n string
	}{{"", c.Name}, {mediator.KindTool, c.Tool}, {mediator.KindResource, c.Resource}, {mediator.KindPrompt, c.Prompt},
		{mediator.KindBuiltin, c.Builtin}} {
		if v.n != "" {
			set++
			name = v.n
			if v.k != "" {
				kind = v.k
			}
		}
	}
	if set != 1 {
		return "", "", errors.New("call: give exactly one of name, tool, resource, prompt or builtin")
	}
	return kind, name, nil
}

// merge returns o with the fields set in over replaced.
func (o CaseObject) merge(over CaseObject) CaseObject {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	o.Kind, o.Server = pick(o.Kind, over.Kind), pick(o.Server, over.Server)
	o.Risk = mediator.Risk(pick(string(o.Risk), string(over.Risk)))
	o.DataClass = mediator.DataClass(pick(string(o.DataClass), string(over.DataClass)))
	for _, p := range []struct{ dst, src **bool }{{&o.ReadOnly, &over.ReadOnly}, {&o.Destructive, &over.Destructive},
		{&o.Idempotent, &over.Idempotent}, {&o.OpenWorld, &over.OpenWorld}} {
		if *p.src != nil {
			*p.dst = *p.src
		}
	}
	return o
}

func (o CaseObject) serverFor(name string) string {
	if o.Server != "" {
		return o.Server
	}
	if s, _, ok := strings.Cut(name, "__"); ok {
		return s
	}
	if s, _, ok := strings.Cut(name, "://"); ok {
		return s
	}
	return ""
}

func (cf *CaseFile) situation(c *Case, zone *time.Location) (Situation, error) {
	ts, alert := c.Env.Time, c.Env.Alert
	if ts == "" {
		ts = cf.Env.Time
	}
	if alert == "" {
		alert = cf.Env.Alert
	}
	if ts == "" {
		return Situation{}, errors.New("env.time is missing: give it in the case or in the file's env, so the case means the same at any hour")
	}
	t, err := ParseTime(ts, zone)
	if err != nil {
		return Situation{}, err
	}
	s := Situation{Time: t, Alert: AlertNormal}
	if alert != "" {
		if s.Alert, err = ParseAlertLevel(alert); err != nil {
			return Situation{}, err
		}
	}
	return s, nil
}

func (cf *CaseFile) remoteIP(c *Case) (string, error) {
	ip := c.Env.IP
	if ip == "" {
		ip = cf.Env.IP
	}
	if ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", fmt.Errorf("env.ip %q is not an IP address", ip)
		}
	}
	return ip, nil
}

func intentOfCase(ci CaseIntent) (mediator.Intent, error) {
	v := mediator.IntentVerdict(ci.Verdict)
	switch v {
	case "":
		v = mediator.IntentNone
	case mediator.IntentNone, mediator.IntentInScope, mediator.IntentOutOfScope:
	default:
		return mediator.Intent{}, fmt.Errorf("intent.verdict %q: use no_intent, in_scope or out_of_scope", ci.Verdict)
	}
	return mediator.Intent{Verdict: v, Reasons: ci.Reasons, Score: ci.Score, TaskID: ci.Task}, nil
}
