package intent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/judge"
)

// memTasks is an in-memory mediator.TaskStore with the store's state rules
// (the SQLite one is tested in package store and end to end in cmd/mediator).
type memTasks struct {
	mu    sync.Mutex
	tasks map[string]mediator.Task
	order []string
	now   func() time.Time
}

func newMemTasks(now func() time.Time) *memTasks {
	return &memTasks{tasks: map[string]mediator.Task{}, now: now}
}

func (m *memTasks) CreateTask(_ context.Context, t mediator.Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tasks[t.ID]; ok {
		return fmt.Errorf("%w: task %s exists", mediator.ErrInvalidRequest, t.ID)
	}
	m.tasks[t.ID] = t
	m.order = append(m.order, t.ID)
	return nil
}

func (m *memTasks) Task(_ context.Context, id string) (mediator.Task, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	return t, ok, nil
}

func (m *memTasks) Tasks(_ context.Context, f mediator.TaskFilter) ([]mediator.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []mediator.Task
	for i := len(m.order) - 1; i >= 0; i-- {
		t := m.tasks[m.order[i]]
		if (f.ParentID == "" || t.ParentID == f.ParentID) && (f.Status == "" || t.Status == f.Status) &&
			(f.AgentID == "" || t.AgentID == f.AgentID) && (f.SessionID == "" || t.SessionID == f.SessionID) {
			out = append(out, t)
		}
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

func (m *memTasks) SetTaskStatus(_ context.Context, id string, to mediator.TaskStatus, by, reason string, from ...mediator.TaskStatus) (mediator.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return t, fmt.Errorf("%w %s", mediator.ErrUnknownTask, id)
	}
	if t.Status == mediator.TaskCompleted || t.Status == mediator.TaskRevoked || (len(from) > 0 && !slices.Contains(from, t.Status)) {
		return t, fmt.Errorf("%w: task %s is %s", mediator.ErrTaskState, id, t.Status)
	}
	t.Status, t.StatusBy, t.StatusReason, t.Updated = to, by, reason, m.now()
	m.tasks[id] = t
	return t, nil
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var catalog = mediator.NewCatalog([]mediator.Tool{
	{Name: "files__read_file", Server: "files", Risk: mediator.RiskLow, DataClass: mediator.DataInternal,
		Definition: json.RawMessage(`{"name":"files__read_file","description":"Read a file."}`)},
	{Name: "files__list_files", Server: "files", Risk: mediator.RiskLow, DataClass: mediator.DataInternal},
	{Name: "files__delete_file", Server: "files", Risk: mediator.RiskHigh, DataClass: mediator.DataInternal},
	{Name: "crm__lookup", Server: "crm", Risk: mediator.RiskMedium, DataClass: mediator.DataPII},
	{Name: "util__echo", Server: "util", Risk: mediator.RiskLow, DataClass: mediator.DataPublic, Hash: "h-echo",
		Definition: json.RawMessage(`{"name":"util__echo","inputSchema":{"type":"object","properties":{"message":{"type":"string"}}}}`)},
	{Name: "files__stat", Server: "files", Risk: mediator.RiskLow, DataClass: mediator.DataInternal, Hash: "h-stat",
		Definition: json.RawMessage(`{"name":"files__stat","inputSchema":{"type":"object","properties":{"path":{"type":"string"}}}}`)},
}, nil, nil, nil, nil)

type fixture struct {
	svc     *Service
	tasks   *memTasks
	clock   *clock
	revoked []mediator.Revocation
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}}
	f.tasks = newMemTasks(f.clock.now)
	cfg := Config{Tasks: f.tasks, Now: f.clock.now, Catalog: func() *mediator.Catalog { return catalog },
		Revoke: func(_ context.Context, r mediator.Revocation) error { f.revoked = append(f.revoked, r); return nil }}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// start stores an admin task for agent "analyst" with scope s.
func (f *fixture) start(t *testing.T, s mediator.Scope) mediator.Task {
	t.Helper()
	task, err := f.svc.Start(t.Context(), mediator.Task{AgentID: "analyst", Purpose: "Q3 churn report", Scope: s,
		Expires: f.clock.now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func call(a *mediator.Agent, sess string, tool string, args map[string]any) *mediator.Call {
	c := &mediator.Call{Method: "tools/call", Name: tool, Arguments: args, Agent: a,
		Session: mediator.SessionInfo{ID: sess, Key: sess, Transport: "http"}}
	for _, tl := range catalog.Tools {
		if tl.Name == tool {
			tt := mediator.ToolTarget(tl)
			c.Target = &tt
		}
	}
	return c
}

var reportScope = mediator.Scope{
	Tools:       []string{"files__read_*", "files__list_*"},
	Constraints: []mediator.Constraint{{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/reports"}}},
}

func TestCheckTokenTask(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	task := f.start(t, reportScope)
	a := &mediator.Agent{ID: "analyst", TaskID: task.ID}
	tests := []struct {
		name    string
		agent   *mediator.Agent
		tool    string
		args    map[string]any
		verdict mediator.IntentVerdict
		reason  string
	}{
		{"in scope", a, "files__read_file", map[string]any{"path": "/srv/reports/q3.csv"}, mediator.IntentInScope, ""},
		{"tool outside the globs", a, "files__delete_file", map[string]any{"path": "/srv/reports/q3.csv"}, mediator.IntentOutOfScope, `tool "files__delete_file" not in scope`},
		{"path escapes the prefix", a, "files__read_file", map[string]any{"path": "/srv/reports/../../etc/passwd"}, mediator.IntentOutOfScope, `argument "path" outside`},
		{"encoded escape", a, "files__read_file", map[string]any{"path": "/srv/reports/..%2f..%2fetc/passwd"}, mediator.IntentOutOfScope, `argument "path" outside`},
		{"no task", &mediator.Agent{ID: "analyst"}, "files__read_file", map[string]any{"path": "/etc"}, mediator.IntentNone, ""},
		{"unregistered task", &mediator.Agent{ID: "analyst", TaskID: "task-nope"}, "files__read_file", nil, mediator.IntentNone, "not registered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := checkCall(t.Context(), f.svc, call(tc.agent, "s1", tc.tool, tc.args))
			if err != nil {
				t.Fatal(err)
			}
			if in.Verdict != tc.verdict || (tc.reason != "" && !strings.Contains(strings.Join(in.Reasons, "; "), tc.reason)) {
				t.Fatalf("verdict %s reasons %q; want %s with %q", in.Verdict, in.Reasons, tc.verdict, tc.reason)
			}
			if tc.verdict == mediator.IntentInScope && in.TaskID != task.ID {
				t.Fatalf("task %q", in.TaskID)
			}
		})
	}
}

func TestCheckExpiredTask(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	task := f.start(t, reportScope)
	f.clock.add(2 * time.Hour) // also past the cache refresh
	in, err := checkCall(t.Context(), f.svc, call(&mediator.Agent{ID: "analyst", TaskID: task.ID}, "s1", "files__read_file",
		map[string]any{"path": "/srv/reports/q3.csv"}))
	if err != nil || in.Verdict != mediator.IntentOutOfScope || !strings.Contains(in.Reasons[0], "expired") {
		t.Fatalf("%+v %v", in, err)
	}
}

func TestDriftSuspendsUntilResumed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	task := f.start(t, reportScope)
	a := &mediator.Agent{ID: "analyst", TaskID: task.ID}
	out := call(a, "s1", "files__delete_file", map[string]any{"path": "/srv/reports/x"})
	for i := 1; i <= 3; i++ {
		in, err := checkCall(t.Context(), f.svc, out)
		if err != nil || in.Verdict != mediator.IntentOutOfScope {
			t.Fatalf("attempt %d: %+v %v", i, in, err)
		}
		if i == 3 && !strings.Contains(strings.Join(in.Reasons, ";"), "now suspended") {
			t.Fatalf("third attempt does not say the task is suspended: %q", in.Reasons)
		}
	}
	stored, _, _ := f.tasks.Task(t.Context(), task.ID)
	if stored.Status != mediator.TaskSuspended || !strings.Contains(stored.StatusReason, "3 out-of-scope calls") {
		t.Fatalf("task after drift: %+v", stored)
	}
	in := call(a, "s1", "files__read_file", map[string]any{"path": "/srv/reports/q3.csv"})
	_, err := checkCall(t.Context(), f.svc, in)
	var deny *mediator.DenyError
	if !errors.As(err, &deny) || deny.Decision.Rule != "intent.suspended" || !strings.Contains(deny.Error(), "task resume "+task.ID) {
		t.Fatalf("in-scope call on a suspended task: %v", err)
	}
	if _, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: in.Session, Purpose: "again"}); err == nil {
		t.Fatal("a suspended task accepted a declaration")
	}
	if _, err := f.svc.Resume(t.Context(), task.ID, "admin", "reviewed"); err != nil {
		t.Fatal(err)
	}
	if v, err := checkCall(t.Context(), f.svc, in); err != nil || v.Verdict != mediator.IntentInScope {
		t.Fatalf("after resume: %+v %v", v, err)
	}
	// The count starts from zero: two more out-of-scope calls do not suspend.
	for range 2 {
		if _, err := checkCall(t.Context(), f.svc, out); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := checkCall(t.Context(), f.svc, in); err != nil || v.Verdict != mediator.IntentInScope {
		t.Fatalf("after resume and two misses: %+v %v", v, err)
	}
	// Outside the window, old misses are forgotten.
	f.clock.add(11 * time.Minute)
	if _, err := checkCall(t.Context(), f.svc, out); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := f.tasks.Task(t.Context(), task.ID); s.Status != mediator.TaskActive {
		t.Fatalf("misses outside the window suspended the task: %s", s.Status)
	}
}

func TestDeclareNarrowsTokenTask(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	task := f.start(t, reportScope)
	a := &mediator.Agent{ID: "analyst", TaskID: task.ID}
	sess := mediator.SessionInfo{ID: "s1", Key: "s1", Transport: "http"}
	widen := []struct {
		name  string
		scope mediator.Scope
		want  string
	}{
		{"more tools", mediator.Scope{Tools: []string{"files__*"}}, "files__delete_file"},
		{"other server", mediator.Scope{Tools: []string{"crm__lookup"}}, "crm__lookup"},
		{"invalid glob", mediator.Scope{Tools: []string{"files__[read"}}, "scope"},
		{"negative max", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "n", Kind: mediator.ConstraintMax, Max: ptr(-1.0)}}}, "scope"},
	}
	for _, w := range widen {
		_, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: sess, Purpose: "x", Scope: &w.scope})
		if !errors.Is(err, mediator.ErrInvalidRequest) || !strings.Contains(err.Error(), w.want) {
			t.Fatalf("%s: %v; want an invalid-request error naming %q", w.name, err, w.want)
		}
	}
	narrow := mediator.Scope{Tools: []string{"files__read_file"},
		Constraints: []mediator.Constraint{{Arg: "path", Kind: mediator.ConstraintGlob, Values: []string{"/srv/reports/q3/**"}}}}
	d, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: sess, Purpose: "read Q3 only", Scope: &narrow, Prompt: "summarise Q3"})
	if err != nil {
		t.Fatal(err)
	}
	if d.ParentID != task.ID || !d.Expires.After(f.clock.now()) || d.Expires.After(task.Expires) || d.Prompt != "summarise Q3" {
		t.Fatalf("declaration %+v", d)
	}
	// Another session of the same token is narrowed too (it is the task's).
	in, err := checkCall(t.Context(), f.svc, call(a, "s2", "files__list_files", map[string]any{"path": "/srv/reports/q3"}))
	if err != nil || in.Verdict != mediator.IntentOutOfScope || in.TaskID != d.ID {
		t.Fatalf("list outside the declaration: %+v %v", in, err)
	}
	in, err = checkCall(t.Context(), f.svc, call(a, "s1", "files__read_file", map[string]any{"path": "/srv/reports/q3/a.csv"}))
	if err != nil || in.Verdict != mediator.IntentInScope {
		t.Fatalf("read inside the declaration: %+v %v", in, err)
	}
	// Ending the task ends the declaration and revokes the token.
	if _, err := f.svc.CompleteTask(t.Context(), a, sess, "done"); err != nil {
		t.Fatal(err)
	}
	if len(f.revoked) != 1 || f.revoked[0].TaskID != task.ID {
		t.Fatalf("revocations %+v", f.revoked)
	}
	if dd, _, _ := f.tasks.Task(t.Context(), d.ID); dd.Status != mediator.TaskCompleted {
		t.Fatalf("declaration after the task ended: %s", dd.Status)
	}
	_, err = checkCall(t.Context(), f.svc, call(a, "s1", "files__read_file", map[string]any{"path": "/srv/reports/q3/a.csv"}))
	var deny *mediator.DenyError
	if !errors.As(err, &deny) || deny.Decision.Rule != "intent.ended" {
		t.Fatalf("call after complete: %v", err)
	}
}

func TestDeclareBindsSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := &mediator.Agent{ID: "local"}
	s1 := mediator.SessionInfo{ID: "stdio", Key: "stdio-1", Transport: "stdio"}
	if _, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Purpose: "x"}); !errors.Is(err, mediator.ErrInvalidRequest) {
		t.Fatalf("a declaration without session or task: %v", err)
	}
	if _, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: s1, Purpose: "x", TTL: 48 * time.Hour}); err == nil {
		t.Fatal("a ttl over the maximum was accepted")
	}
	d, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: s1, Purpose: "list reports",
		Scope: &mediator.Scope{Tools: []string{"files__list_files"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := call(a, "stdio", "files__read_file", map[string]any{"path": "/x"})
	c.Session = s1
	if in, err := checkCall(t.Context(), f.svc, c); err != nil || in.Verdict != mediator.IntentOutOfScope || in.TaskID != d.ID {
		t.Fatalf("%+v %v", in, err)
	}
	other := call(a, "stdio", "files__read_file", map[string]any{"path": "/x"})
	other.Session.Key = "stdio-2"
	if in, err := checkCall(t.Context(), f.svc, other); err != nil || in.Verdict != mediator.IntentNone {
		t.Fatalf("another process saw the declaration: %+v %v", in, err)
	}
	// Re-declaring supersedes the old declaration.
	d2, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: s1, Purpose: "read reports"})
	if err != nil {
		t.Fatal(err)
	}
	if old, _, _ := f.tasks.Task(t.Context(), d.ID); old.Status != mediator.TaskCompleted || !strings.Contains(old.StatusReason, d2.ID) {
		t.Fatalf("superseded declaration %+v", old)
	}
	if _, err := f.svc.CompleteTask(t.Context(), a, s1, ""); err != nil {
		t.Fatal(err)
	}
	if len(f.revoked) != 0 {
		t.Fatalf("a declared task revoked credentials: %+v", f.revoked)
	}
	if in, err := checkCall(t.Context(), f.svc, c); err != nil || in.Verdict != mediator.IntentNone {
		t.Fatalf("after complete: %+v %v", in, err)
	}
	if _, err := f.svc.CompleteTask(t.Context(), a, s1, ""); !errors.Is(err, mediator.ErrInvalidRequest) {
		t.Fatalf("complete without a task: %v", err)
	}
}

// A session-bound declaration's misses are counted for the session: an
// agent that declares anew after each out-of-scope call is still suspended
// at the threshold, and the suspension holds against further declarations
// until an administrator resumes the task.
func TestDriftSurvivesRedeclaration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := &mediator.Agent{ID: "local"}
	sess := mediator.SessionInfo{ID: "stdio", Key: "stdio-drift", Transport: "stdio"}
	scope := &mediator.Scope{Tools: []string{"files__list_files"}}
	var last mediator.Task
	for i := 1; i <= 3; i++ {
		d, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: sess, Purpose: "list reports", Scope: scope})
		if err != nil {
			t.Fatalf("declaration %d: %v", i, err)
		}
		last = d
		c := call(a, "stdio", "files__delete_file", map[string]any{"path": "/srv/reports/x"})
		c.Session = sess
		in, err := checkCall(t.Context(), f.svc, c)
		if err != nil || in.Verdict != mediator.IntentOutOfScope || in.TaskID != d.ID {
			t.Fatalf("miss %d: %+v %v", i, in, err)
		}
		if said := strings.Contains(strings.Join(in.Reasons, ";"), "now suspended"); said != (i == 3) {
			t.Fatalf("miss %d (each after a new declaration): suspended %v, reasons %q", i, said, in.Reasons)
		}
	}
	if stored, _, _ := f.tasks.Task(t.Context(), last.ID); stored.Status != mediator.TaskSuspended {
		t.Fatalf("the session's declaration after three misses: %s", stored.Status)
	}
	if _, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: sess, Purpose: "again"}); !errors.Is(err, mediator.ErrDenied) {
		t.Fatalf("a declaration escaped the suspension: %v", err)
	}
	// Another session of the same agent has its own count.
	other := mediator.SessionInfo{ID: "stdio", Key: "stdio-other", Transport: "stdio"}
	if _, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: other, Purpose: "list", Scope: scope}); err != nil {
		t.Fatal(err)
	}
	c := call(a, "stdio", "files__delete_file", map[string]any{"path": "/x"})
	c.Session = other
	if in, err := checkCall(t.Context(), f.svc, c); err != nil || strings.Contains(strings.Join(in.Reasons, ";"), "suspended") {
		t.Fatalf("one miss in another session: %+v %v", in, err)
	}
	// Resuming starts the session's count again.
	if _, err := f.svc.Resume(t.Context(), last.ID, "admin", "reviewed"); err != nil {
		t.Fatal(err)
	}
	c.Session = sess
	for i := 1; i <= 2; i++ {
		if in, err := checkCall(t.Context(), f.svc, c); err != nil || strings.Contains(strings.Join(in.Reasons, ";"), "suspended") {
			t.Fatalf("miss %d after resume: %+v %v", i, in, err)
		}
	}
}

// Session bindings are bounded in memory, but dropping one never loses it:
// a session suspended after drift stays suspended however many other
// sessions declare, and an active declaration is found again in the store.
func TestSessionBindingsSurviveEviction(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.svc.maxBound = 20
	a := &mediator.Agent{ID: "local"}
	scope := &mediator.Scope{Tools: []string{"files__list_files"}}
	session := func(key string) mediator.SessionInfo {
		return mediator.SessionInfo{ID: key, Key: key, Transport: "http"}
	}
	miss := func(key string) *mediator.Call {
		c := call(a, key, "files__delete_file", map[string]any{"path": "/x"})
		c.Session = session(key)
		return c
	}
	bad, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: session("bad"), Purpose: "list", Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	good, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: session("good"), Purpose: "list", Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := checkCall(t.Context(), f.svc, miss("bad")); err != nil {
			t.Fatal(err)
		}
	}
	// Many more sessions than the bound declare.
	for i := range 100 {
		if _, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: session(fmt.Sprintf("flood-%d", i)),
			Purpose: "list", Scope: scope}); err != nil {
			t.Fatal(err)
		}
	}
	f.svc.mu.Lock()
	n, evicted := len(f.svc.sessions), f.svc.sessionsEvicted
	f.svc.mu.Unlock()
	if n > 20 || !evicted {
		t.Fatalf("%d bindings in memory (evicted %v), bound 20", n, evicted)
	}
	ok := call(a, "bad", "files__list_files", nil)
	ok.Session = session("bad")
	var deny *mediator.DenyError
	if _, err := checkCall(t.Context(), f.svc, ok); !errors.As(err, &deny) || deny.Decision.Rule != "intent.suspended" {
		t.Fatalf("the suspended session after the flood: %v", err)
	}
	if _, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: session("bad"), Purpose: "again"}); !errors.Is(err, mediator.ErrDenied) {
		t.Fatalf("a declaration escaped the suspension after the flood: %v", err)
	}
	if in, err := checkCall(t.Context(), f.svc, miss("good")); err != nil || in.Verdict != mediator.IntentOutOfScope || in.TaskID != good.ID {
		t.Fatalf("the active declaration after the flood: %+v %v", in, err)
	}
	if stored, _, _ := f.tasks.Task(t.Context(), bad.ID); stored.Status != mediator.TaskSuspended {
		t.Fatalf("suspended declaration is now %s", stored.Status)
	}
	never := call(a, "never", "files__list_files", nil)
	never.Session = session("never")
	if in, err := checkCall(t.Context(), f.svc, never); err != nil || in.Verdict != mediator.IntentNone {
		t.Fatalf("a session that never declared: %+v %v", in, err)
	}
	// That session declares now, and its binding is then dropped (as an
	// eviction would): the store still finds it, and no remembered "no
	// declaration" hides it.
	late, err := f.svc.Declare(t.Context(), mediator.Declaration{Agent: a, Session: session("never"), Purpose: "list", Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.mu.Lock()
	delete(f.svc.sessions, "never")
	f.svc.mu.Unlock()
	if in, err := checkCall(t.Context(), f.svc, miss("never")); err != nil || in.TaskID != late.ID {
		t.Fatalf("a declaration made after a lookup found none: %+v %v", in, err)
	}
}

func TestStatusChangedElsewhereIsSeen(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	task := f.start(t, reportScope)
	a := &mediator.Agent{ID: "analyst", TaskID: task.ID}
	c := call(a, "s1", "files__read_file", map[string]any{"path": "/srv/reports/q3.csv"})
	if _, err := checkCall(t.Context(), f.svc, c); err != nil {
		t.Fatal(err)
	}
	// Another process (the CLI on the database) suspends it.
	if _, err := f.tasks.SetTaskStatus(t.Context(), task.ID, mediator.TaskSuspended, "cli", "review"); err != nil {
		t.Fatal(err)
	}
	f.clock.add(refreshEvery)
	if _, err := checkCall(t.Context(), f.svc, c); err == nil {
		t.Fatal("a suspension made by another process was not seen after the refresh interval")
	}
}

func TestJudgeOnlyForInScopeCalls(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var body struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		score := 0.9
		if strings.Contains(body.Messages[len(body.Messages)-1].Content, "passwd") {
			score = 0.1
		}
		content, _ := json.Marshal(map[string]any{"score": score, "rationale": "checked"})
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "x", "object": "chat.completion", "model": "m",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": string(content)}}}})
	}))
	t.Cleanup(model.Close)
	j, err := judge.New(judge.Config{BaseURL: model.URL + "/v1", Model: "m", CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) { c.Judge = j })
	task := f.start(t, mediator.Scope{Tools: []string{"files__*"}})
	a := &mediator.Agent{ID: "analyst", TaskID: task.ID}
	in, err := checkCall(t.Context(), f.svc, call(a, "s1", "files__read_file", map[string]any{"path": "/srv/reports/q3.csv"}))
	if err != nil || in.Judge == nil || in.Judge.Effect != mediator.EffectAllow || in.Score != 0.9 {
		t.Fatalf("judged in-scope call: %+v %v", in, err)
	}
	in, err = checkCall(t.Context(), f.svc, call(a, "s1", "files__read_file", map[string]any{"path": "/etc/passwd"}))
	if err != nil || in.Judge == nil || in.Judge.Effect != mediator.EffectApprove {
		t.Fatalf("suspicious in-scope call: %+v %v", in, err)
	}
	before := requests.Load()
	in, err = checkCall(t.Context(), f.svc, call(a, "s1", "crm__lookup", nil))
	if err != nil || in.Verdict != mediator.IntentOutOfScope || in.Judge != nil || requests.Load() != before {
		t.Fatalf("out-of-scope call went to the judge: %+v %v", in, err)
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkServiceCheck is the whole intent check of one call against a
// token-bound task with a 10-constraint scope (task cached, as between
// refreshes).
func BenchmarkServiceCheck(b *testing.B) {
	clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	tasks := newMemTasks(clk.now)
	svc, err := New(Config{Tasks: tasks, Now: clk.now})
	if err != nil {
		b.Fatal(err)
	}
	scope, args := tenConstraintScope()
	task, err := svc.Start(context.Background(), mediator.Task{AgentID: "a", Purpose: "p", Scope: scope,
		Expires: clk.now().Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	c := call(&mediator.Agent{ID: "a", TaskID: task.ID}, "s", "files__read_file", args)
	b.ReportAllocs()
	for b.Loop() {
		in, err := checkCall(context.Background(), svc, c)
		if err != nil || in.Verdict != mediator.IntentInScope {
			b.Fatalf("%+v %v", in, err)
		}
	}
}

func tenConstraintScope() (mediator.Scope, map[string]any) {
	s := mediator.Scope{Tools: []string{"files__read_*", "files__list_*", "crm__*"}}
	args := map[string]any{}
	for i := range 10 {
		name := fmt.Sprintf("a%d", i)
		var c mediator.Constraint
		switch i % 5 {
		case 0:
			c = mediator.Constraint{Kind: mediator.ConstraintPrefix, Values: []string{"/srv/reports"}}
			args[name] = "/srv/reports/q3/data.csv"
		case 1:
			c = mediator.Constraint{Kind: mediator.ConstraintGlob, Values: []string{"/srv/**/*.csv"}}
			args[name] = "/srv/reports/q3/data.csv"
		case 2:
			c = mediator.Constraint{Kind: mediator.ConstraintHost, Values: []string{"api.example.com", "*.example.org"}}
			args[name] = "https://data.example.org/v1/x"
		case 3:
			c = mediator.Constraint{Kind: mediator.ConstraintMax, Max: ptr(100.0)}
			args[name] = 42.0
		case 4:
			c = mediator.Constraint{Kind: mediator.ConstraintEnum, Values: []string{"csv", "json"}}
			args[name] = "csv"
		}
		c.Arg = name
		s.Constraints = append(s.Constraints, c)
	}
	return s, args
}

// A constraint applies to the tools whose schema declares its argument.
func TestConstraintsFollowToolSchemas(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	task := f.start(t, mediator.Scope{Tools: []string{"util__*", "files__*"},
		Constraints: []mediator.Constraint{{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/srv"}}}})
	a := &mediator.Agent{ID: "analyst", TaskID: task.ID}
	tests := []struct {
		tool string
		args map[string]any
		want mediator.IntentVerdict
	}{
		{"util__echo", map[string]any{"message": "hi"}, mediator.IntentInScope},
		{"util__echo", map[string]any{"message": "hi", "path": "/etc"}, mediator.IntentOutOfScope},
		{"files__stat", map[string]any{}, mediator.IntentOutOfScope},
		{"files__stat", map[string]any{"path": "/srv/x"}, mediator.IntentInScope},
		{"files__list_files", map[string]any{}, mediator.IntentOutOfScope}, // schema unknown: fails closed
	}
	for _, tc := range tests {
		in, err := checkCall(t.Context(), f.svc, call(a, "s", tc.tool, tc.args))
		if err != nil || in.Verdict != tc.want {
			t.Fatalf("%s %v: %+v %v; want %s", tc.tool, tc.args, in, err, tc.want)
		}
	}
}

// checkCall runs the intent check on the call's view.
func checkCall(ctx context.Context, s *Service, c *mediator.Call) (mediator.Intent, error) {
	return s.Check(ctx, c.IntentRequest())
}
