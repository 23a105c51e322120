package intent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/judge"
)

// Defaults of Config.
const (
	DefaultDriftThreshold = 3
	DefaultDriftWindow    = 10 * time.Minute
	DefaultDeclareTTL     = 30 * time.Minute
	DefaultMaxDeclareTTL  = 8 * time.Hour
	// refreshEvery is how long a task read from the store is trusted: a
	// status change made by another process is seen within it.
	refreshEvery = time.Second
	// maxCached bounds the task cache and the session bindings.
	maxCached = 100_000
	// recentLen is how many recent calls per task are kept for the judge.
	recentLen = 8
)

// Config configures a Service.
type Config struct {
	// Tasks is the task store (required).
	Tasks mediator.TaskStore
	// Revoke revokes the credentials bound to a task when it ends
	// (required when tokens are bound to tasks).
	Revoke func(ctx context.Context, r mediator.Revocation) error
	// Catalog returns the current catalog (to check that a declaration
	// does not widen its task's tools).
	Catalog func() *mediator.Catalog
	// AgentTools are the agent tools (object kind builtin), whose
	// definitions say which arguments hold paths and URLs.
	AgentTools mediator.AgentTools
	// Judge is the optional LLM judge.
	Judge *judge.Judge
	// DriftThreshold out-of-scope calls within DriftWindow suspend the
	// session's task (defaults 3 and 10 minutes; a negative threshold
	// turns suspension off).
	DriftThreshold int
	DriftWindow    time.Duration
	// DeclareTTL is how long an in-band declaration holds when the agent
	// gives no ttl; MaxDeclareTTL caps what it may ask for.
	DeclareTTL    time.Duration
	MaxDeclareTTL time.Duration
	Logger        *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Service is the mediator's intent checker (mediator.IntentChecker) and the
// server side of declare_intent and complete_task
// (mediator.IntentDeclarer). It binds each call to a task: the task its
// token names, narrowed by the latest in-band declaration for that task,
// or the declaration bound to its MCP session (or stdio process).
type Service struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	tasks    map[string]*cachedTask  // task id → task
	children map[string]*cachedChild // parent id → latest active declaration
	sessions map[string]string       // session key → declared task id
	// sessionsEvicted is set once bindings have been dropped to bound
	// sessions: from then on, a session missing from it is looked up in
	// the task store, so that no binding (least of all a suspended one)
	// is lost to the bound.
	sessionsEvicted bool
	// unbound remembers, for refreshEvery, the sessions storedBinding
	// found without a declaration, so that after an eviction a session
	// that never declared does not cost two store queries per call.
	unbound map[string]time.Time
	drift   map[string][]time.Time // driftKey → recent out-of-scope times
	// maxBound bounds sessions and drift (maxCached; tests lower it).
	maxBound int
	recent   map[string][]judge.RecentCall
	schemas  map[string]*ToolArgs // tool definition hash → what is known of its arguments
}

type cachedTask struct {
	task    mediator.Task
	found   bool
	scope   *Compiled
	fetched time.Time
}

type cachedChild struct {
	id      string
	fetched time.Time
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Tasks == nil {
		return nil, errors.New("intent: Config.Tasks is required")
	}
	if cfg.DriftThreshold == 0 {
		cfg.DriftThreshold = DefaultDriftThreshold
	}
	if cfg.DriftWindow <= 0 {
		cfg.DriftWindow = DefaultDriftWindow
	}
	if cfg.DeclareTTL <= 0 {
		cfg.DeclareTTL = DefaultDeclareTTL
	}
	if cfg.MaxDeclareTTL <= 0 {
		cfg.MaxDeclareTTL = DefaultMaxDeclareTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg: cfg, log: cfg.Logger,
		tasks:    make(map[string]*cachedTask),
		children: make(map[string]*cachedChild),
		sessions: make(map[string]string),
		unbound:  make(map[string]time.Time),
		drift:    make(map[string][]time.Time),
		recent:   make(map[string][]judge.RecentCall),
		schemas:  make(map[string]*ToolArgs),
		maxBound: maxCached,
	}, nil
}

// NewTaskID returns a fresh task id.
func NewTaskID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "task-" + hex.EncodeToString(b[:])
}

// task returns the task with id, from the cache when it was read less than
// refreshEvery ago.
func (s *Service) task(ctx context.Context, id string) (*cachedTask, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	ct, ok := s.tasks[id]
	s.mu.Unlock()
	if ok && now.Sub(ct.fetched) < refreshEvery {
		return ct, nil
	}
	t, found, err := s.cfg.Tasks.Task(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read task %s: %w", id, err)
	}
	nt := &cachedTask{task: t, found: found, fetched: now}
	if found {
		if ok && ct.found && ct.scope != nil {
			nt.scope = ct.scope // scopes never change
		} else if nt.scope, err = Compile(t.Scope); err != nil {
			return nil, fmt.Errorf("task %s has an unusable scope: %w", id, err)
		}
	}
	s.mu.Lock()
	if len(s.tasks) >= maxCached {
		clear(s.tasks)
	}
	s.tasks[id] = nt
	s.mu.Unlock()
	return nt, nil
}

// forget drops a task from the cache after this process changed it.
func (s *Service) forget(id string) {
	s.mu.Lock()
	delete(s.tasks, id)
	s.mu.Unlock()
}

// declaredFor returns the latest active declaration narrowing parent.
func (s *Service) declaredFor(ctx context.Context, parent string) (string, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	cc, ok := s.children[parent]
	s.mu.Unlock()
	if ok && now.Sub(cc.fetched) < refreshEvery {
		return cc.id, nil
	}
	ts, err := s.cfg.Tasks.Tasks(ctx, mediator.TaskFilter{ParentID: parent, Status: mediator.TaskActive, Limit: 1})
	if err != nil {
		return "", fmt.Errorf("read declarations of task %s: %w", parent, err)
	}
	id := ""
	if len(ts) > 0 {
		id = ts[0].ID
	}
	s.mu.Lock()
	if len(s.children) >= maxCached {
		clear(s.children)
	}
	s.children[parent] = &cachedChild{id: id, fetched: now}
	s.mu.Unlock()
	return id, nil
}

// binding is the tasks a call is checked against: base (the token's task,
// or the session's declaration) and an optional narrowing declaration.
type binding struct {
	base, narrow *cachedTask
	note         string // why there is no task, when there is none
}

// owner is the task whose drift counts and whose suspension stops the
// session: the token's task when there is one.
func (b binding) owner() *cachedTask { return b.base }

func (s *Service) bind(ctx context.Context, a *mediator.Agent, sess mediator.SessionInfo) (binding, error) {
	var b binding
	if a != nil && a.TaskID != "" {
		ct, err := s.task(ctx, a.TaskID)
		if err != nil {
			return b, err
		}
		if ct.found {
			b.base = ct
			id, err := s.declaredFor(ctx, a.TaskID)
			if err != nil {
				return b, err
			}
			if id != "" {
				if b.narrow, err = s.task(ctx, id); err != nil {
					return b, err
				}
				if !b.narrow.found {
					b.narrow = nil
				}
			}
			return b, nil
		}
		b.note = fmt.Sprintf("the token names task %s, which is not registered with the mediator", a.TaskID)
	}
	if sess.Key == "" {
		return b, nil
	}
	now := s.cfg.Now()
	s.mu.Lock()
	id, ok := s.sessions[sess.Key]
	at, known := s.unbound[sess.Key]
	evicted := s.sessionsEvicted && !(known && now.Sub(at) < refreshEvery)
	s.mu.Unlock()
	if !ok && evicted {
		var err error
		if id, err = s.storedBinding(ctx, sess.Key); err != nil {
			return b, err
		}
		ok = id != ""
	}
	if !ok {
		return b, nil
	}
	ct, err := s.task(ctx, id)
	if err != nil {
		return b, err
	}
	if ct.found {
		b.base = ct
	}
	return b, nil
}

// Check compares the call with the intent bound to its session.
func (s *Service) Check(ctx context.Context, c mediator.IntentRequest) (mediator.Intent, error) {
	b, err := s.bind(ctx, c.Agent, c.Session)
	if err != nil {
		return mediator.Intent{}, err
	}
	if b.base == nil {
		in := mediator.Intent{Verdict: mediator.IntentNone, Score: -1}
		if b.note != "" {
			in.Reasons = []string{b.note}
		}
		return in, nil
	}
	in := mediator.Intent{Verdict: mediator.IntentInScope, TaskID: b.base.task.ID, Score: -1}
	if b.narrow != nil {
		in.TaskID = b.narrow.task.ID
	}
	now := s.cfg.Now()
	for _, ct := range []*cachedTask{b.base, b.narrow} {
		if ct == nil {
			continue
		}
		t := &ct.task
		switch t.Status {
		case mediator.TaskActive:
		case mediator.TaskSuspended:
			in.Verdict = mediator.IntentOutOfScope
			in.Reasons = append(in.Reasons, "task "+t.ID+" is suspended")
			return in, &mediator.DenyError{
				Decision: mediator.Decision{Effect: mediator.EffectDeny, Rule: "intent.suspended",
					Reason: fmt.Sprintf("task %s is suspended (%s)", t.ID, t.StatusReason)},
				Hint: "Stop; an administrator must review the session and run `mediator task resume " + t.ID + "`",
			}
		default:
			in.Verdict = mediator.IntentOutOfScope
			in.Reasons = append(in.Reasons, "task "+t.ID+" is "+string(t.Status))
			return in, &mediator.DenyError{
				Decision: mediator.Decision{Effect: mediator.EffectDeny, Rule: "intent.ended",
					Reason: fmt.Sprintf("task %s is %s", t.ID, t.Status)},
				Hint: "Its work is over; ask the user whether to start a new task",
			}
		}
		if !t.Expires.IsZero() && !now.Before(t.Expires) {
			in.Reasons = append(in.Reasons, fmt.Sprintf("task %s expired at %s", t.ID, t.Expires.UTC().Format(time.RFC3339)))
		}
	}
	if c.Target != nil && (c.Target.Kind == mediator.KindTool || c.Target.Kind == mediator.KindBuiltin) {
		tool := mediator.Tool{Name: c.Target.Name, Server: c.Target.Server, Risk: c.Target.Risk, DataClass: c.Target.DataClass}
		ta := s.toolArgs(c.Target)
		in.Reasons = append(in.Reasons, b.base.scope.CheckArgs(tool, c.Arguments, ta)...)
		if b.narrow != nil {
			in.Reasons = append(in.Reasons, b.narrow.scope.CheckArgs(tool, c.Arguments, ta)...)
		}
	} else if c.Target != nil {
		in.Reasons = append(in.Reasons, objectReasons(b.base.task.Scope, *c.Target)...)
		if b.narrow != nil {
			in.Reasons = append(in.Reasons, objectReasons(b.narrow.task.Scope, *c.Target)...)
		}
	}
	if len(in.Reasons) > 0 {
		in.Verdict = mediator.IntentOutOfScope
		if n, suspended := s.countDrift(ctx, b.owner().task, now); suspended {
			in.Suspended = true
			in.Reasons = append(in.Reasons, fmt.Sprintf("%d out-of-scope calls within %s: task %s is now suspended", n, s.cfg.DriftWindow, b.owner().task.ID))
		}
		s.remember(b, c, in)
		return in, nil
	}
	if s.cfg.Judge != nil && c.Target != nil && c.Target.Kind == mediator.KindTool {
		res := s.cfg.Judge.Judge(ctx, s.judgeRequest(b, c))
		in.Judge = &res
		in.Score = res.Score
	}
	s.remember(b, c, in)
	return in, nil
}

// driftKey is what out-of-scope calls are counted by: the task, or for a
// declaration bound to a session (declare_intent without a token's task),
// the session. A session's count survives its re-declarations, so that an
// agent cannot start the count again by declaring anew after each miss.
func driftKey(t mediator.Task) string {
	if t.SessionID != "" {
		return "session " + t.SessionID
	}
	return "task " + t.ID
}

// countDrift notes an out-of-scope call of task t and suspends t when the
// threshold is reached. It returns the count within the window.
func (s *Service) countDrift(ctx context.Context, t mediator.Task, now time.Time) (int, bool) {
	if s.cfg.DriftThreshold < 0 {
		return 0, false
	}
	key := driftKey(t)
	s.mu.Lock()
	kept := s.recentDrift(s.drift[key], now)
	kept = append(kept, now)
	if len(kept) > s.cfg.DriftThreshold {
		kept = kept[len(kept)-s.cfg.DriftThreshold:]
	}
	if _, ok := s.drift[key]; !ok && len(s.drift) >= s.maxBound {
		// Make room by forgetting counts whose calls are all outside the
		// window; if every count is recent, a tenth of them, chosen by
		// the map's random order, so that no agent can make room for
		// itself by name.
		for k, times := range s.drift {
			if len(times) == 0 || now.Sub(times[len(times)-1]) >= s.cfg.DriftWindow {
				delete(s.drift, k) // its newest miss is outside the window
			}
		}
		if len(s.drift) >= s.maxBound*9/10 {
			s.log.Warn("recent drift counts of more tasks and sessions than the mediator keeps; forgetting some", "max", s.maxBound)
			for k := range s.drift {
				if len(s.drift) < s.maxBound*9/10 {
					break
				}
				delete(s.drift, k)
			}
		}
	}
	s.drift[key] = kept
	n := len(kept)
	s.mu.Unlock()
	if n < s.cfg.DriftThreshold {
		return n, false
	}
	reason := fmt.Sprintf("%d out-of-scope calls within %s", n, s.cfg.DriftWindow)
	if _, err := s.cfg.Tasks.SetTaskStatus(ctx, t.ID, mediator.TaskSuspended, "mediator", reason, mediator.TaskActive); err != nil {
		if !errors.Is(err, mediator.ErrTaskState) {
			s.log.Error("could not suspend task after drift", "task", t.ID, "err", err)
		}
		return n, false
	}
	s.log.Warn("task suspended after out-of-scope calls", "task", t.ID, "agent", t.AgentID, "count", n, "window", s.cfg.DriftWindow)
	s.forget(t.ID)
	s.mu.Lock()
	delete(s.drift, key)
	s.mu.Unlock()
	return n, true
}

// recentDrift returns the times in the drift window, compacted in times'
// array (the caller stores the result in place of times). s.mu is held.
func (s *Service) recentDrift(times []time.Time, now time.Time) []time.Time {
	kept := times[:0]
	for _, at := range times {
		if now.Sub(at) < s.cfg.DriftWindow {
			kept = append(kept, at)
		}
	}
	return kept
}

// remember keeps the call among the task's recent calls for the judge.
func (s *Service) remember(b binding, c mediator.IntentRequest, in mediator.Intent) {
	if s.cfg.Judge == nil || c.Target == nil {
		return
	}
	args, _ := json.Marshal(c.Arguments)
	if len(args) > 1024 {
		args = nil
	}
	rc := judge.RecentCall{Tool: c.Target.Name, Arguments: args, Verdict: string(in.Verdict)}
	id := b.owner().task.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	r := append(s.recent[id], rc)
	if len(r) > recentLen {
		r = r[len(r)-recentLen:]
	}
	if len(s.recent) >= maxCached {
		clear(s.recent)
	}
	s.recent[id] = r
}

func (s *Service) judgeRequest(b binding, c mediator.IntentRequest) judge.Request {
	purpose := b.base.task.Purpose
	if b.narrow != nil {
		purpose = b.narrow.task.Purpose + " (within the task: " + purpose + ")"
	}
	r := judge.Request{TaskID: b.owner().task.ID, Purpose: purpose, Tool: c.Target.Name, Arguments: c.Arguments}
	if cat := s.catalog(); cat != nil {
		if t, ok := cat.Tool(c.Target.Name); ok {
			r.ToolDescription = toolDescription(t.Definition)
		}
	}
	s.mu.Lock()
	r.Recent = append([]judge.RecentCall(nil), s.recent[r.TaskID]...)
	s.mu.Unlock()
	return r
}

func toolDescription(def json.RawMessage) string {
	var d struct {
		Description string `json:"description"`
	}
	_ = json.Unmarshal(def, &d)
	return d.Description
}

func (s *Service) catalog() *mediator.Catalog {
	if s.cfg.Catalog == nil {
		return nil
	}
	return s.cfg.Catalog()
}

// Declare records an in-band declaration (declare_intent).
func (s *Service) Declare(ctx context.Context, d mediator.Declaration) (mediator.Task, error) {
	if d.Agent == nil {
		return mediator.Task{}, fmt.Errorf("%w: no agent", mediator.ErrUnauthenticated)
	}
	now := s.cfg.Now()
	ttl := d.TTL
	if ttl == 0 {
		ttl = s.cfg.DeclareTTL
	}
	if ttl > s.cfg.MaxDeclareTTL {
		return mediator.Task{}, fmt.Errorf("%w: ttl %s is longer than the %s a declaration may hold", mediator.ErrInvalidRequest, ttl, s.cfg.MaxDeclareTTL)
	}
	t := mediator.Task{
		ID: NewTaskID(), AgentID: d.Agent.ID, Source: mediator.TaskSourceDeclared, Purpose: d.Purpose,
		Status: mediator.TaskActive, Prompt: d.Prompt, Created: now, Updated: now, Expires: now.Add(ttl),
		SessionID: d.Session.Key,
	}
	if d.Scope != nil {
		if err := ValidateScope(*d.Scope); err != nil {
			return mediator.Task{}, fmt.Errorf("%w: scope: %w", mediator.ErrInvalidRequest, err)
		}
		t.Scope = *d.Scope
	}
	b, err := s.bind(ctx, d.Agent, d.Session)
	if err != nil {
		return mediator.Task{}, err
	}
	if d.Agent.TaskID != "" && b.base != nil && b.base.task.ID == d.Agent.TaskID {
		parent := b.base.task
		if parent.Status != mediator.TaskActive {
			return mediator.Task{}, fmt.Errorf("%w: task %s is %s; a declaration cannot change that", mediator.ErrDenied, parent.ID, parent.Status)
		}
		if !parent.Expires.IsZero() && !now.Before(parent.Expires) {
			return mediator.Task{}, fmt.Errorf("%w: task %s expired at %s; ask for a new task", mediator.ErrDenied, parent.ID, parent.Expires.UTC().Format(time.RFC3339))
		}
		if err := Narrows(parent.Scope, t.Scope, s.catalogTools()); err != nil {
			return mediator.Task{}, fmt.Errorf("%w: declare_intent may only narrow the scope of task %s that your token is bound to: %w",
				mediator.ErrInvalidRequest, parent.ID, err)
		}
		t.ParentID = parent.ID
		t.SessionID = ""
		if !parent.Expires.IsZero() && t.Expires.After(parent.Expires) {
			t.Expires = parent.Expires
		}
		if err := s.supersede(ctx, mediator.TaskFilter{ParentID: parent.ID, Status: mediator.TaskActive},
			"superseded by declaration "+t.ID); err != nil {
			return mediator.Task{}, err
		}
		if err := s.cfg.Tasks.CreateTask(ctx, t); err != nil {
			return mediator.Task{}, fmt.Errorf("store declaration: %w", err)
		}
		s.mu.Lock()
		s.children[parent.ID] = &cachedChild{id: t.ID, fetched: now}
		s.mu.Unlock()
		return t, nil
	}
	if d.Session.Key == "" {
		return mediator.Task{}, fmt.Errorf("%w: declare_intent needs a stateful MCP session or a token bound to a task", mediator.ErrInvalidRequest)
	}
	if b.base != nil && b.base.task.Status == mediator.TaskSuspended {
		return mediator.Task{}, fmt.Errorf("%w: this session's task %s is suspended; an administrator must run `mediator task resume %s`",
			mediator.ErrDenied, b.base.task.ID, b.base.task.ID)
	}
	if b.base != nil && b.base.task.Status == mediator.TaskActive {
		if _, err := s.cfg.Tasks.SetTaskStatus(ctx, b.base.task.ID, mediator.TaskCompleted, d.Agent.ID,
			"superseded by declaration "+t.ID, mediator.TaskActive); err != nil && !errors.Is(err, mediator.ErrTaskState) {
			return mediator.Task{}, fmt.Errorf("end previous declaration: %w", err)
		}
		s.forget(b.base.task.ID)
	}
	if err := s.cfg.Tasks.CreateTask(ctx, t); err != nil {
		return mediator.Task{}, fmt.Errorf("store declaration: %w", err)
	}
	s.bindSession(d.Session.Key, t.ID)
	return t, nil
}

// bindSession binds a session to its declared task. When the bindings are
// at their bound, a tenth of them are dropped (bind finds them again in
// the task store).
func (s *Service) bindSession(key, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unbound, key)
	if _, ok := s.sessions[key]; !ok && len(s.sessions) >= s.maxBound {
		for k := range s.sessions {
			if len(s.sessions) < s.maxBound*9/10 {
				break
			}
			delete(s.sessions, k)
		}
		if !s.sessionsEvicted {
			s.log.Warn("more sessions with declarations than the mediator keeps in memory; the others are looked up in the task store", "max", s.maxBound)
		}
		s.sessionsEvicted = true
	}
	s.sessions[key] = id
}

// storedBinding finds the declaration bound to a session in the task
// store: a suspended one first (a suspension outlives any cache), else the
// newest active one. It returns "" when there is none.
func (s *Service) storedBinding(ctx context.Context, key string) (string, error) {
	for _, st := range []mediator.TaskStatus{mediator.TaskSuspended, mediator.TaskActive} {
		ts, err := s.cfg.Tasks.Tasks(ctx, mediator.TaskFilter{SessionID: key, Status: st, Limit: 1})
		if err != nil {
			return "", fmt.Errorf("look up the declaration of session %s: %w", key, err)
		}
		if len(ts) > 0 {
			s.bindSession(key, ts[0].ID)
			return ts[0].ID, nil
		}
	}
	s.mu.Lock()
	if len(s.unbound) >= s.maxBound {
		clear(s.unbound) // it only saves queries
	}
	s.unbound[key] = s.cfg.Now()
	s.mu.Unlock()
	return "", nil
}

// supersede completes the active declarations matching f, saying why.
func (s *Service) supersede(ctx context.Context, f mediator.TaskFilter, why string) error {
	old, err := s.cfg.Tasks.Tasks(ctx, f)
	if err != nil {
		return fmt.Errorf("read declarations: %w", err)
	}
	for _, o := range old {
		if _, err := s.cfg.Tasks.SetTaskStatus(ctx, o.ID, mediator.TaskCompleted, "mediator", why,
			mediator.TaskActive); err != nil && !errors.Is(err, mediator.ErrTaskState) {
			return fmt.Errorf("end declaration %s: %w", o.ID, err)
		}
		s.forget(o.ID)
	}
	return nil
}

func (s *Service) catalogTools() []mediator.Tool {
	if cat := s.catalog(); cat != nil {
		return cat.Tools
	}
	return nil
}

// CompleteTask ends the task bound to the session (complete_task).
func (s *Service) CompleteTask(ctx context.Context, a *mediator.Agent, sess mediator.SessionInfo, summary string) (mediator.Task, error) {
	b, err := s.bind(ctx, a, sess)
	if err != nil {
		return mediator.Task{}, err
	}
	if b.base == nil {
		return mediator.Task{}, fmt.Errorf("%w: there is no task to complete; call declare_intent first", mediator.ErrInvalidRequest)
	}
	for _, ct := range []*cachedTask{b.base, b.narrow} {
		if ct != nil && ct.task.Status == mediator.TaskSuspended {
			return mediator.Task{}, fmt.Errorf("%w: task %s is suspended (%s); an agent cannot complete a suspended task: "+
				"it stays suspended until an administrator runs `mediator task resume %s` or `mediator task end %s`",
				mediator.ErrDenied, ct.task.ID, ct.task.StatusReason, ct.task.ID, ct.task.ID)
		}
	}
	reason := "completed by the agent"
	if summary != "" {
		reason += ": " + summary
	}
	// From active only: a suspension that lands meanwhile is not
	// overwritten (the store's change is conditional on the state).
	t, err := s.end(ctx, b.base.task.ID, a.ID, reason, mediator.TaskActive)
	if errors.Is(err, mediator.ErrTaskState) {
		return mediator.Task{}, fmt.Errorf("%w: task %s is no longer active (%w); an administrator decides what happens to it",
			mediator.ErrDenied, b.base.task.ID, err)
	}
	if err != nil {
		return mediator.Task{}, err
	}
	s.mu.Lock()
	if sess.Key != "" && s.sessions[sess.Key] == t.ID {
		delete(s.sessions, sess.Key)
	}
	s.mu.Unlock()
	return t, nil
}

// End completes task id (and its declarations) and revokes the
// credentials bound to it.
func (s *Service) End(ctx context.Context, id, by, reason string) (mediator.Task, error) {
	return s.end(ctx, id, by, reason, mediator.TaskActive, mediator.TaskSuspended)
}

// end completes task id if it is in one of the states from.
func (s *Service) end(ctx context.Context, id, by, reason string, from ...mediator.TaskStatus) (mediator.Task, error) {
	t, err := s.cfg.Tasks.SetTaskStatus(ctx, id, mediator.TaskCompleted, by, reason, from...)
	if err != nil {
		return mediator.Task{}, fmt.Errorf("end task %s: %w", id, err)
	}
	s.forget(id)
	if err := s.supersede(ctx, mediator.TaskFilter{ParentID: id, Status: mediator.TaskActive}, "task "+id+" ended"); err != nil {
		return t, err
	}
	if t.Source == mediator.TaskSourceAdmin && s.cfg.Revoke != nil {
		if err := s.cfg.Revoke(ctx, mediator.Revocation{TaskID: id, Reason: "task ended: " + reason}); err != nil {
			return t, fmt.Errorf("task %s ended but its credentials could not be revoked: %w", id, err)
		}
	}
	return t, nil
}

// Resume lifts a suspension: the task is active again and its drift count
// starts from zero.
func (s *Service) Resume(ctx context.Context, id, by, reason string) (mediator.Task, error) {
	t, err := s.cfg.Tasks.SetTaskStatus(ctx, id, mediator.TaskActive, by, reason, mediator.TaskSuspended)
	if err != nil {
		return mediator.Task{}, fmt.Errorf("resume task %s: %w", id, err)
	}
	s.forget(id)
	s.mu.Lock()
	delete(s.drift, driftKey(t))
	s.mu.Unlock()
	return t, nil
}

// Start validates and stores a task created by an administrator.
func (s *Service) Start(ctx context.Context, t mediator.Task) (mediator.Task, error) {
	return StartTask(ctx, s.cfg.Tasks, t, s.cfg.Now())
}

// StartTask validates t, fills in its id, times and status, and stores it.
func StartTask(ctx context.Context, ts mediator.TaskStore, t mediator.Task, now time.Time) (mediator.Task, error) {
	t.AgentID = strings.TrimSpace(t.AgentID)
	t.Purpose = strings.TrimSpace(t.Purpose)
	switch {
	case t.AgentID == "":
		return t, fmt.Errorf("%w: a task needs an agent", mediator.ErrInvalidRequest)
	case t.Purpose == "":
		return t, fmt.Errorf("%w: a task needs a purpose: what the agent was asked to do", mediator.ErrInvalidRequest)
	case len(t.Purpose) > 4<<10:
		return t, fmt.Errorf("%w: purpose is %d bytes; the limit is 4096", mediator.ErrInvalidRequest, len(t.Purpose))
	case !t.Expires.IsZero() && !t.Expires.After(now):
		return t, fmt.Errorf("%w: the task would expire before it starts", mediator.ErrInvalidRequest)
	}
	if err := ValidateScope(t.Scope); err != nil {
		return t, fmt.Errorf("%w: scope: %w", mediator.ErrInvalidRequest, err)
	}
	if t.ID == "" {
		t.ID = NewTaskID()
	}
	if t.Source == "" {
		t.Source = mediator.TaskSourceAdmin
	}
	t.Status = mediator.TaskActive
	t.Created, t.Updated = now, now
	if err := ts.CreateTask(ctx, t); err != nil {
		return t, fmt.Errorf("store task: %w", err)
	}
	return t, nil
}

// objectReasons checks a resource or prompt against a scope: only its
// data class limit applies (tool globs and argument constraints are about
// tools).
func objectReasons(s mediator.Scope, t mediator.Target) []string {
	if s.MaxDataClass == "" || t.Kind != mediator.KindResource {
		return nil
	}
	if classRank(t.DataClass) > classRank(s.MaxDataClass) {
		dc := string(t.DataClass)
		if dc == "" {
			dc = "unknown"
		}
		return []string{fmt.Sprintf("data class %s above declared %s", dc, s.MaxDataClass)}
	}
	return nil
}

// toolArgs returns what is known of the tool's arguments: its input
// schema and the operator's classification, from the catalog entry of the
// same definition hash; nil (nothing known: every constraint applies) when
// there is none. They are cached by definition hash.
func (s *Service) toolArgs(t *mediator.Target) *ToolArgs {
	var tool mediator.Tool
	found := false
	if t.Kind == mediator.KindBuiltin && s.cfg.AgentTools != nil {
		tool, found = s.cfg.AgentTools.AgentTool(t.Name)
	} else if cat := s.catalog(); cat != nil {
		tool, found = cat.Tool(t.Name)
	}
	if !found || tool.Hash != t.Hash {
		return nil
	}
	s.mu.Lock()
	ta, ok := s.schemas[t.Hash]
	s.mu.Unlock()
	// The operator's classification is not part of the hash: a reload
	// that changes it builds the entry anew.
	if ok && maps.Equal(ta.notes, tool.Args) {
		return ta
	}
	ta = NewToolArgs(tool)
	if t.Hash == "" {
		return ta // no key to cache it under
	}
	s.mu.Lock()
	if len(s.schemas) >= maxCached {
		clear(s.schemas)
	}
	s.schemas[t.Hash] = ta
	s.mu.Unlock()
	return ta
}
