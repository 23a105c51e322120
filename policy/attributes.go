package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Subject is r.sub: who is calling.
type Subject struct {
	ID      string
	Version string
	// Roles holds strings; it is []any so that conditions can say
	// "'finance' in r.sub.Roles".
	Roles []any
	Owner string
	// Function is the agent's business function ("support", "marketing").
	Function string
	// Confidence is the issuer's confidence in the agent, 0..1. A missing
	// claim is 0, the least confident value, so it never satisfies a
	// threshold such as "r.sub.Confidence >= 0.95".
	Confidence float64
	// Trust is the behavioural trust level: none 0, low 1, medium 2,
	// high 3, compared by name (r.sub.Trust >= medium). It is high when
	// behavioural monitoring is off. TrustName is its name.
	Trust     float64
	TrustName string
	Task      string
	// Attrs are the passport's free attributes.
	Attrs map[string]string
}

// Object is r.obj: what the request acts on.
type Object struct {
	// Kind is tool, resource or prompt.
	Kind   string
	Server string
	// Name is the catalog name (tool, prompt) or the URI (resource).
	Name     string
	Original string
	// Risk is 1 (low) to 4 (critical); unknown counts as critical.
	Risk     float64
	RiskName string
	// DataClass is 1 (public) to 5 (financial); unknown counts as financial.
	DataClass     float64
	DataClassName string
	// The upstream's behaviour hints; a hint it did not give is false.
	ReadOnly, Destructive, Idempotent, OpenWorld bool
	// Args are the call's arguments as JSON values: numbers are float64,
	// objects map[string]any, arrays []any. Nil for listings.
	Args map[string]any
	// ArgSecrets is how many secrets (API keys, tokens, private keys: the
	// gitleaks rules) the call's arguments hold.
	ArgSecrets float64

	// For agent tools (kind builtin; see builtin.go):
	// Workspace is the agent's project directory ("" when unknown).
	Workspace string
	// Paths are the paths the use names (file_path, path, notebook_path,
	// and the shell command's path-like words), normalised.
	Paths []any
	// Writes are the paths it changes.
	Writes []any
	// WritesOutside: it changes a path outside Workspace (or the
	// workspace is unknown).
	WritesOutside bool
	// Shell is the command of a shell tool as a shell reads it.
	Shell ShellAttrs
}

// SessionAttrs is r.session: what the call's session has touched in the
// calls before it, so that rules can follow data across calls.
type SessionAttrs struct {
	// Tainted: a result with injection markers (instructions aimed at the
	// model, hidden characters) reached the session.
	Tainted bool
	// MaxDataClass is the highest data class the session has read, 0 when
	// none (1 public .. 5 financial); MaxDataClassName its name.
	MaxDataClass     float64
	MaxDataClassName string
	// SecretsSeen: a result the session received held a secret.
	SecretsSeen bool
}

// Env is r.env: when and from where.
type Env struct {
	// Time is local time in RFC 3339.
	Time string
	Zone string
	// Hour (0-23) and Minute (0-59) of local time.
	Hour, Minute float64
	// Weekday is mon, tue, wed, thu, fri, sat or sun.
	Weekday       string
	Weekend       bool
	BusinessHours bool
	// IP is the client's address ("" for stdio); Network its class:
	// loopback, private or public.
	IP      string
	Network string
	// Alert is 1 (normal), 2 (elevated) or 3 (incident).
	Alert     float64
	AlertName string

	// listing marks a "could this ever be allowed" question: conditions
	// that need arguments, time, alert level or intent are undecided.
	listing bool
	// attrs is the whole request, for condEnv (see index.go).
	attrs *Attributes
}

// IntentAttrs is r.intent: how the call relates to the declared task.
type IntentAttrs struct {
	// Verdict is no_intent, in_scope or out_of_scope.
	Verdict    string
	InScope    bool
	OutOfScope bool
	Reasons    []any
	Score      float64
	Task       string
}

// BehaviourAttrs is r.behaviour: how the call compares with the agent's
// learned baseline (see package policy/behaviour). With monitoring off,
// or while the baseline is learning, Score is 0 and Reasons empty.
type BehaviourAttrs struct {
	// Score is the deviation, 0 (usual) to 1.
	Score float64
	// Reasons say in plain words what deviates.
	Reasons []any
	// Novel: the call uses a tool, server, data class, risk or kind of
	// tool (destructive) the agent never used.
	Novel bool
	// Learning: the agent's baseline is still being learned.
	Learning bool
	// Calls is how many calls the baseline has learned from.
	Calls float64
	// On is false when behavioural monitoring is off.
	On bool
}

// Attributes are everything a rule can test, built once per decision.
type Attributes struct {
	Sub       Subject
	Obj       Object
	Env       Env
	Intent    IntentAttrs
	Behaviour BehaviourAttrs
	Session   SessionAttrs
}

// Situation is what a decision needs beyond the request: the time and the
// alert level. A zero field means "now" and "the current alert level".
type Situation struct {
	Time  time.Time
	Alert AlertLevel
}

// BuildAttributes turns a request into attributes. It fails when the
// request lacks what every decision needs (agent id, object kind and name)
// or when its arguments are not JSON values.
func BuildAttributes(req mediator.AuthzRequest, s Situation, env *EnvConfig) (*Attributes, error) {
	if req.Agent.ID == "" || req.Target.Name == "" || req.Target.Kind == "" {
		return nil, fmt.Errorf("%w: missing attribute: agent id, object kind or object name is empty", ErrEvaluation)
	}
	args, err := normalizeArgs(req.Arguments)
	if err != nil {
		return nil, err
	}
	a := &Attributes{Sub: subjectOf(req.Agent), Obj: objectOf(req.Target), Intent: intentOf(req.Intent),
		Behaviour: behaviourOf(req.Behaviour), Session: sessionOf(req.Session)}
	a.Obj.Args = args
	a.Obj.ArgSecrets = float64(req.ArgSecrets)
	if isBuiltin(req.Target) {
		builtinAttrs(&a.Obj, req.Arguments, req.Workspace)
	}
	a.Env = envOf(env, s, req.RemoteIP)
	a.Env.listing = req.Listing
	a.Env.attrs = a
	return a, nil
}

func subjectOf(ag mediator.Agent) Subject {
	roles := make([]any, len(ag.Roles))
	for i, r := range ag.Roles {
		roles[i] = r
	}
	trust := mediator.TrustLevel(ag.TrustLevel)
	if trust == "" {
		trust = mediator.TrustHigh // monitoring off
	}
	return Subject{ID: ag.ID, Version: ag.Version, Roles: roles, Owner: ag.Owner, Function: ag.BusinessFunction,
		Confidence: ag.Confidence, Trust: float64(trust.Rank()), TrustName: string(mediator.TrustOfRank(trust.Rank())),
		Task: ag.TaskID, Attrs: ag.Attrs}
}

func sessionOf(f mediator.SessionFlow) SessionAttrs {
	s := SessionAttrs{Tainted: f.Tainted, SecretsSeen: f.SecretsSeen}
	if f.MaxDataClass != mediator.DataUnknown {
		s.MaxDataClass, s.MaxDataClassName = classLevel(f.MaxDataClass)
	}
	return s
}

func behaviourOf(b *mediator.Behaviour) BehaviourAttrs {
	if b == nil {
		return BehaviourAttrs{}
	}
	reasons := make([]any, len(b.Reasons))
	for i, r := range b.Reasons {
		reasons[i] = r
	}
	return BehaviourAttrs{Score: b.Score, Reasons: reasons, Novel: b.Novel, Learning: b.Learning,
		Calls: float64(b.Calls), On: true}
}

func objectOf(t mediator.Target) Object {
	risk, riskName := riskLevel(t.Risk)
	class, className := classLevel(t.DataClass)
	return Object{Kind: string(t.Kind), Server: t.Server, Name: t.Name, Original: t.Original,
		Risk: risk, RiskName: riskName, DataClass: class, DataClassName: className,
		ReadOnly: isTrue(t.Hints.ReadOnly), Destructive: isTrue(t.Hints.Destructive),
		Idempotent: isTrue(t.Hints.Idempotent), OpenWorld: isTrue(t.Hints.OpenWorld)}
}

func isTrue(b *bool) bool { return b != nil && *b }

func intentOf(in mediator.Intent) IntentAttrs {
	verdict := in.Verdict
	if verdict == "" {
		verdict = mediator.IntentNone
	}
	reasons := make([]any, len(in.Reasons))
	for i, r := range in.Reasons {
		reasons[i] = r
	}
	return IntentAttrs{Verdict: string(verdict), InScope: verdict == mediator.IntentInScope,
		OutOfScope: verdict == mediator.IntentOutOfScope, Reasons: reasons, Score: in.Score, Task: in.TaskID}
}

func envOf(c *EnvConfig, s Situation, ip string) Env {
	t := s.Time
	if t.IsZero() {
		t = time.Now()
	}
	t = t.In(c.zone())
	wd := t.Weekday()
	return Env{Time: t.Format(time.RFC3339), Zone: c.zone().String(),
		Hour: float64(t.Hour()), Minute: float64(t.Minute()),
		Weekday: weekdayNames[wd], Weekend: wd == time.Saturday || wd == time.Sunday,
		BusinessHours: c.businessHours(t), IP: ip, Network: c.network(ip),
		Alert: s.Alert.rank(), AlertName: s.Alert.name()}
}

var weekdayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// maxArgDepth bounds the nesting of arguments policy looks at. Deeper
// arguments are a policy error (and so a denial), never a crash.
const maxArgDepth = 64

// normalizeArgs returns args as plain JSON values. Arguments decoded from
// JSON are returned as they are, without copying; anything else (ints,
// json.Number, structs from Go callers) is converted, and what cannot be
// is an error.
func normalizeArgs(args map[string]any) (map[string]any, error) {
	if args == nil {
		return nil, nil
	}
	if canonical(args, 0) {
		return args, nil
	}
	v, err := normalize(args, 0)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}

// canonical reports whether v holds only JSON value types, within depth.
func canonical(v any, depth int) bool {
	if depth > maxArgDepth {
		return false
	}
	switch x := v.(type) {
	case nil, string, bool:
		return true
	case float64:
		return !math.IsNaN(x) && !math.IsInf(x, 0)
	case map[string]any:
		for _, e := range x {
			if !canonical(e, depth+1) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !canonical(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

func normalize(v any, depth int) (any, error) {
	if depth > maxArgDepth {
		return nil, fmt.Errorf("%w: arguments nested deeper than %d levels", ErrEvaluation, maxArgDepth)
	}
	switch x := v.(type) {
	case nil, string, bool:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%w: an argument is not a finite number", ErrEvaluation)
		}
		return x, nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String(), nil
		}
		return normalize(f, depth)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	}
	return normalizeOther(v, depth)
}

// normalizeOther converts Go numbers directly and anything else through
// JSON.
func normalizeOther(v any, depth int) (any, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), nil
	case reflect.Float32:
		return normalize(rv.Float(), depth)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: an argument is not a JSON value: %w", ErrEvaluation, err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%w: an argument is not a JSON value: %w", ErrEvaluation, err)
	}
	return normalize(out, depth)
}
