package store

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// testTask returns a plausible task created at base plus i seconds.
func testTask(id, agent string, i int) mediator.Task {
	max := 10.0
	created := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC).Add(time.Duration(i) * time.Second)
	return mediator.Task{
		ID: id, AgentID: agent, Source: mediator.TaskSourceAdmin, Purpose: "fix the build",
		Scope: mediator.Scope{
			Tools: []string{"files__*", "git__status"},
			Constraints: []mediator.Constraint{
				{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/src"}},
				{Arg: "n", Kind: mediator.ConstraintMax, Max: &max},
			},
			MaxDataClass: mediator.DataInternal, MaxRisk: mediator.RiskMedium,
		},
		Status: mediator.TaskActive, Prompt: "please fix it",
		Created: created, Updated: created, Expires: created.Add(time.Hour),
	}
}

// sameTask fails unless got equals want (times compared with Equal).
func sameTask(t *testing.T, got, want mediator.Task) {
	t.Helper()
	if !got.Created.Equal(want.Created) || !got.Updated.Equal(want.Updated) || !got.Expires.Equal(want.Expires) {
		t.Errorf("task %s times = %v/%v/%v, want %v/%v/%v", want.ID, got.Created, got.Updated, got.Expires,
			want.Created, want.Updated, want.Expires)
	}
	got.Created, got.Updated, got.Expires = want.Created, want.Updated, want.Expires
	if !reflect.DeepEqual(got, want) {
		t.Errorf("task = %+v\nwant   %+v", got, want)
	}
}

func TestCreateAndGetTask(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	full := testTask("t-full", "agent-1", 0)
	child := testTask("t-child", "agent-1", 1)
	child.ParentID, child.SessionID, child.Source = "t-full", "sess-9", mediator.TaskSourceDeclared
	child.Scope = mediator.Scope{}
	child.Expires = time.Time{}
	secret := testTask("t-secret", "agent-2", 2)
	secret.Prompt = "use password=hunter2 please"
	secret.Purpose = "deploy with token ghp_abcdefghijklmnopqrstuvwxyz0123"
	redacted := secret
	redacted.Prompt = "use password=[REDACTED] please"
	redacted.Purpose = "deploy with token [REDACTED]"
	noStatus := testTask("t-nostatus", "agent-2", 3)
	noStatus.Status = ""
	defaulted := noStatus
	defaulted.Status = mediator.TaskActive
	tests := []struct {
		name string
		in   mediator.Task
		want mediator.Task
	}{
		{"every field", full, full},
		{"declared child without scope or expiry", child, child},
		{"prompt and purpose redacted", secret, redacted},
		{"empty status is active", noStatus, defaulted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.CreateTask(t.Context(), tt.in); err != nil {
				t.Fatal(err)
			}
			got, ok, err := s.Task(t.Context(), tt.in.ID)
			if err != nil || !ok {
				t.Fatalf("Task(%s) = %v, %v", tt.in.ID, ok, err)
			}
			sameTask(t, got, tt.want)
		})
	}
	if _, ok, err := s.Task(t.Context(), "nope"); ok || err != nil {
		t.Errorf("Task(unknown) = %v, %v; want not found, no error", ok, err)
	}
}

func TestCreateTaskDefaultsTimes(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	before := time.Now()
	if err := s.CreateTask(t.Context(), mediator.Task{ID: "t", AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Task(t.Context(), "t")
	if err != nil {
		t.Fatal(err)
	}
	if got.Created.Before(before.Add(-time.Second)) || !got.Updated.Equal(got.Created) || !got.Expires.IsZero() {
		t.Errorf("defaults: created %v updated %v expires %v", got.Created, got.Updated, got.Expires)
	}
	if got.Status != mediator.TaskActive || !reflect.DeepEqual(got.Scope, mediator.Scope{}) {
		t.Errorf("defaults: status %q scope %+v", got.Status, got.Scope)
	}
}

func TestCreateTaskRefuses(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	if err := s.CreateTask(t.Context(), testTask("dup", "a", 0)); err != nil {
		t.Fatal(err)
	}
	nan, notANumber := testTask("nan", "a", 0), math.NaN()
	nan.Scope.Constraints = []mediator.Constraint{{Arg: "n", Kind: mediator.ConstraintMax, Max: &notANumber}}
	tests := []struct {
		name   string
		in     mediator.Task
		target error
		text   string
	}{
		{"duplicate id", testTask("dup", "b", 1), ErrTaskExists, `"dup"`},
		{"empty id", testTask("", "a", 0), mediator.ErrInvalidRequest, "empty task id"},
		{"empty agent", testTask("x", "", 0), mediator.ErrInvalidRequest, "empty agent"},
		{"unknown status", func() mediator.Task { x := testTask("y", "a", 0); x.Status = "paused"; return x }(),
			mediator.ErrInvalidRequest, "paused"},
		{"scope that is not JSON", nan, mediator.ErrInvalidRequest, "encode scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreateTask(t.Context(), tt.in)
			if !errors.Is(err, tt.target) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("CreateTask = %v, want %v naming %s", err, tt.target, tt.text)
			}
		})
	}
	// The duplicate did not replace the first task.
	got, _, err := s.Task(t.Context(), "dup")
	if err != nil || got.AgentID != "a" {
		t.Fatalf("Task(dup) = %+v, %v; the first task must stay", got, err)
	}
	if err := s.CreateTask(t.Context(), testTask("dup", "b", 1)); !errors.Is(err, mediator.ErrInvalidRequest) {
		t.Errorf("duplicate: %v does not wrap ErrInvalidRequest", err)
	}
}

func TestTasksFilter(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	// Created times: t0 oldest ... t5 newest; t4 and t5 share a time.
	specs := []struct {
		id, agent, parent, session string
		status                     mediator.TaskStatus
		at                         int
	}{
		{"t0", "a1", "", "", mediator.TaskActive, 0},
		{"t1", "a1", "t0", "s1", mediator.TaskCompleted, 1},
		{"t2", "a2", "t0", "s2", mediator.TaskActive, 2},
		{"t3", "a2", "", "s1", mediator.TaskSuspended, 3},
		{"t4", "a1", "t0", "s1", mediator.TaskActive, 4},
		{"t5", "a2", "", "", mediator.TaskRevoked, 4},
	}
	for _, sp := range specs {
		tk := testTask(sp.id, sp.agent, sp.at)
		tk.ParentID, tk.SessionID, tk.Status = sp.parent, sp.session, sp.status
		if err := s.CreateTask(t.Context(), tk); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		f    mediator.TaskFilter
		want []string
	}{
		{"all, newest first, ties by id", mediator.TaskFilter{}, []string{"t5", "t4", "t3", "t2", "t1", "t0"}},
		{"agent", mediator.TaskFilter{AgentID: "a1"}, []string{"t4", "t1", "t0"}},
		{"parent", mediator.TaskFilter{ParentID: "t0"}, []string{"t4", "t2", "t1"}},
		{"session", mediator.TaskFilter{SessionID: "s1"}, []string{"t4", "t3", "t1"}},
		{"status", mediator.TaskFilter{Status: mediator.TaskActive}, []string{"t4", "t2", "t0"}},
		{"session and status", mediator.TaskFilter{SessionID: "s1", Status: mediator.TaskActive}, []string{"t4"}},
		{"parent and agent", mediator.TaskFilter{ParentID: "t0", AgentID: "a2"}, []string{"t2"}},
		{"limit", mediator.TaskFilter{Limit: 2}, []string{"t5", "t4"}},
		{"no match", mediator.TaskFilter{AgentID: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.Tasks(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tk := range list {
				got = append(got, tk.ID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Tasks(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}

func TestTasksLimitBounds(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	for i := range MaxTaskLimit + 5 {
		if err := s.CreateTask(t.Context(), testTask(fmt.Sprintf("t%04d", i), "a", i)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		limit, want int
	}{{0, DefaultTaskLimit}, {-1, DefaultTaskLimit}, {7, 7}, {MaxTaskLimit + 1000, MaxTaskLimit}}
	for _, tt := range tests {
		list, err := s.Tasks(t.Context(), mediator.TaskFilter{Limit: tt.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != tt.want {
			t.Errorf("Limit %d: %d tasks, want %d", tt.limit, len(list), tt.want)
		}
	}
}

func TestSetTaskStatus(t *testing.T) {
	t.Parallel()
	const (
		active    = mediator.TaskActive
		completed = mediator.TaskCompleted
		revoked   = mediator.TaskRevoked
		suspended = mediator.TaskSuspended
	)
	tests := []struct {
		name   string
		start  mediator.TaskStatus
		to     mediator.TaskStatus
		from   []mediator.TaskStatus
		target error // nil: the move succeeds
		text   string
	}{
		{"active to completed", active, completed, nil, nil, ""},
		{"active to completed from active", active, completed, []mediator.TaskStatus{active}, nil, ""},
		{"active to suspended", active, suspended, nil, nil, ""},
		{"suspended to active from suspended", suspended, active, []mediator.TaskStatus{suspended}, nil, ""},
		{"suspended to revoked from active or suspended", suspended, revoked,
			[]mediator.TaskStatus{active, suspended}, nil, ""},
		{"active to active keeps state, records who", active, active, nil, nil, ""},
		{"wrong from state", suspended, completed, []mediator.TaskStatus{active},
			mediator.ErrTaskState, "is suspended, not active"},
		{"wrong from states", active, revoked, []mediator.TaskStatus{suspended, completed},
			mediator.ErrTaskState, "is active, not suspended or completed"},
		{"completed is final", completed, active, nil, mediator.ErrTaskState, "completed, a final state"},
		{"completed is final even when from allows it", completed, active, []mediator.TaskStatus{completed},
			mediator.ErrTaskState, "final"},
		{"completed cannot be completed again", completed, completed, nil, mediator.ErrTaskState, "final"},
		{"revoked is final", revoked, suspended, nil, mediator.ErrTaskState, "revoked, a final state"},
		{"revoked cannot become completed", revoked, completed, []mediator.TaskStatus{revoked},
			mediator.ErrTaskState, "final"},
		{"unknown target state", active, "paused", nil, mediator.ErrInvalidRequest, "paused"},
	}
	s := openTest(t, testDB(t))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("task-%d", i)
			tk := testTask(id, "a", 0)
			tk.Status, tk.StatusBy, tk.StatusReason = tt.start, "creator", "created"
			if err := s.CreateTask(t.Context(), tk); err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			got, err := s.SetTaskStatus(t.Context(), id, tt.to, "admin@example", "because token=abc123", tt.from...)
			stored, _, rerr := s.Task(t.Context(), id)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tt.target != nil {
				if !errors.Is(err, tt.target) || !strings.Contains(err.Error(), tt.text) {
					t.Fatalf("SetTaskStatus = %v, want %v naming %q", err, tt.target, tt.text)
				}
				sameTask(t, stored, tk) // unchanged
				return
			}
			if err != nil {
				t.Fatalf("SetTaskStatus: %v", err)
			}
			if got.Status != tt.to || got.StatusBy != "admin@example" || got.StatusReason != "because token=[REDACTED]" ||
				got.Updated.Before(before.Add(-time.Second)) || !got.Created.Equal(tk.Created) {
				t.Errorf("returned task = %+v", got)
			}
			sameTask(t, stored, got)
		})
	}
	_, err := s.SetTaskStatus(t.Context(), "no-such-task", mediator.TaskCompleted, "a", "r")
	if !errors.Is(err, mediator.ErrUnknownTask) || !strings.Contains(err.Error(), "no-such-task") {
		t.Errorf("SetTaskStatus(unknown) = %v, want ErrUnknownTask naming the id", err)
	}
}

// Two Store handles on one file (as two processes would have) race to
// complete one active task: exactly one wins, the others see ErrTaskState.
func TestSetTaskStatusRace(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	stores := []*Store{openTest(t, path), openTest(t, path)}
	if err := stores[0].CreateTask(t.Context(), testTask("race", "a", 0)); err != nil {
		t.Fatal(err)
	}
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			_, errs[i] = stores[i%2].SetTaskStatus(t.Context(), "race", mediator.TaskCompleted,
				fmt.Sprintf("racer-%d", i), "done", mediator.TaskActive)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("racers %d and %d both completed the task", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, mediator.ErrTaskState) || !strings.Contains(err.Error(), "completed"):
			t.Errorf("racer %d: %v, want ErrTaskState naming the current state", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer completed the task")
	}
	got, _, err := stores[1].Task(t.Context(), "race")
	if err != nil || got.Status != mediator.TaskCompleted || got.StatusBy != fmt.Sprintf("racer-%d", winner) {
		t.Fatalf("Task = %+v, %v; want completed by racer-%d", got, err, winner)
	}
}

func TestTasksSurviveReopen(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	s := openTest(t, path)
	want := testTask("keep", "a", 0)
	if err := s.CreateTask(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	want, err := s.SetTaskStatus(t.Context(), "keep", mediator.TaskSuspended, "ops", "paging")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	got, ok, err := s.Task(t.Context(), "keep")
	if err != nil || !ok {
		t.Fatalf("Task after reopen = %v, %v", ok, err)
	}
	sameTask(t, got, want)
	if err := s.CreateTask(t.Context(), testTask("keep", "a", 1)); !errors.Is(err, ErrTaskExists) {
		t.Errorf("CreateTask after reopen = %v, want ErrTaskExists", err)
	}
}

func TestTasksClosedStore(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.CreateTask(ctx, testTask("x", "a", 0)); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("CreateTask on closed store = %v", err)
	}
	if _, _, err := s.Task(ctx, "x"); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("Task on closed store = %v", err)
	}
	if _, err := s.Tasks(ctx, mediator.TaskFilter{}); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("Tasks on closed store = %v", err)
	}
	if _, err := s.SetTaskStatus(ctx, "x", mediator.TaskCompleted, "a", ""); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("SetTaskStatus on closed store = %v", err)
	}
}
