package approvals

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

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

func testQueue(t *testing.T, hold time.Duration, opts ...Option) (*Queue, *memStore, *clock) {
	t.Helper()
	st, clk := &memStore{}, &clock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	opts = append([]Option{WithHold(hold), WithPollInterval(5 * time.Millisecond), WithClock(clk.now),
		WithBaseURL("http://127.0.0.1:8080/approvals")}, opts...)
	return New(st, opts...), st, clk
}

var callSeq atomic.Int64

func testCall(args map[string]any) *mediator.Call {
	return &mediator.Call{
		ID: fmt.Sprintf("call-%d", callSeq.Add(1)), Method: "tools/call", Name: "demo__transfer_funds", Arguments: args,
		Agent:   &mediator.Agent{ID: "agent-a", Owner: "olivia", TaskID: "task-1"},
		Target:  &mediator.Target{Kind: mediator.KindTool, Server: "demo", Name: "demo__transfer_funds", Risk: mediator.RiskHigh},
		Session: mediator.SessionInfo{ID: "s1", Transport: "http"},
	}
}

func pending(c *mediator.Call) mediator.Pending {
	return mediator.Pending{Call: c, Decision: mediator.Decision{Effect: mediator.EffectApprove, Rule: "funds-above-limit"}}
}

// awaitAsync runs Await in the background.
func awaitAsync(ctx context.Context, q *Queue, c *mediator.Call) <-chan result {
	ch := make(chan result, 1)
	go func() {
		v, err := q.Await(ctx, pending(c))
		ch <- result{v, err}
	}()
	return ch
}

type result struct {
	v   mediator.Verdict
	err error
}

// waitPending returns the one pending approval once it is queued.
func waitPending(t *testing.T, st *memStore) mediator.Approval {
	t.Helper()
	for range 400 {
		list, _ := st.Approvals(t.Context(), mediator.ApprovalFilter{State: mediator.ApprovalPending})
		if len(list) > 0 {
			return list[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no pending approval appeared")
	return mediator.Approval{}
}

var bob = Decider{Name: "bob", Role: mediator.RoleApprover}

func TestAwaitDecidedInTime(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		approve bool
		reason  string
		want    bool
	}{
		{"approve runs the call", true, "", true},
		{"deny returns the approver's reason", false, "amount too high", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, st, _ := testQueue(t, 10*time.Second)
			ch := awaitAsync(t.Context(), q, testCall(map[string]any{"amount": 5000}))
			a := waitPending(t, st)
			if _, err := q.Decide(t.Context(), a.ID, bob, tc.approve, tc.reason, nil); err != nil {
				t.Fatal(err)
			}
			r := <-ch
			if r.err != nil || r.v.Approved != tc.want || r.v.Approver != "bob" || r.v.Reason != tc.reason {
				t.Fatalf("verdict %+v err %v", r.v, r.err)
			}
		})
	}
}

func TestAwaitHoldRunsOutThenRepeat(t *testing.T) {
	t.Parallel()
	q, st, _ := testQueue(t, 30*time.Millisecond)
	args := map[string]any{"amount": 5000, "to": "acme"}
	_, err := q.Await(t.Context(), pending(testCall(args)))
	var pe *mediator.PendingError
	if !errors.As(err, &pe) || !strings.HasSuffix(pe.URL, "/approvals/a/"+pe.ApprovalID) {
		t.Fatalf("err %v, want a PendingError with the page URL", err)
	}
	// A changed argument is a new approval, not this one.
	_, err = q.Await(t.Context(), pending(testCall(map[string]any{"amount": 5001, "to": "acme"})))
	var pe2 *mediator.PendingError
	if !errors.As(err, &pe2) || pe2.ApprovalID == pe.ApprovalID {
		t.Fatalf("changed argument reused approval %s: %v", pe.ApprovalID, err)
	}
	if _, err := q.Decide(t.Context(), pe.ApprovalID, bob, true, "ok", nil); err != nil {
		t.Fatal(err)
	}
	// The identical call (key order differs) runs once...
	v, err := q.Await(t.Context(), pending(testCall(map[string]any{"to": "acme", "amount": 5000})))
	if err != nil || !v.Approved || v.ApprovalID != pe.ApprovalID {
		t.Fatalf("repeat after approval: %+v %v", v, err)
	}
	// ...and only once: the next repeat needs a new approval.
	_, err = q.Await(t.Context(), pending(testCall(args)))
	var pe3 *mediator.PendingError
	if !errors.As(err, &pe3) || pe3.ApprovalID == pe.ApprovalID {
		t.Fatalf("second repeat: %v", err)
	}
	if n := len(st.list); n != 3 {
		t.Fatalf("%d approvals, want 3", n)
	}
}

func TestAwaitExpiryIsADenial(t *testing.T) {
	t.Parallel()
	q, st, clk := testQueue(t, 20*time.Millisecond)
	c := testCall(map[string]any{"amount": 7000})
	_, err := q.Await(t.Context(), pending(c))
	if !errors.Is(err, mediator.ErrApprovalPending) {
		t.Fatal(err)
	}
	clk.add(DefaultExpiry + time.Second)
	a := st.list[0]
	if _, err := q.Decide(t.Context(), a.ID, bob, true, "late", nil); !errors.Is(err, mediator.ErrApprovalExpired) {
		t.Fatalf("decision after expiry: %v", err)
	}
	v, err := q.Await(t.Context(), pending(testCall(map[string]any{"amount": 7000})))
	if err != nil || v.Approved || !strings.Contains(v.Reason, "expired") {
		t.Fatalf("repeat after expiry: %+v %v", v, err)
	}
}

func TestDecideRefusals(t *testing.T) {
	t.Parallel()
	q, st, _ := testQueue(t, time.Millisecond, WithTwoPersonRules([]string{"funds-above-limit"}))
	_, _ = q.Await(t.Context(), pending(testCall(map[string]any{"amount": 1})))
	id := st.list[0].ID
	cases := []struct {
		name    string
		who     Decider
		approve bool
		reason  string
		grant   *GrantSpec
		want    error
	}{
		{"auditor may not decide", Decider{"alice", mediator.RoleAuditor}, true, "", nil, mediator.ErrApprovalForbidden},
		{"owner may not approve own agent", Decider{"Olivia", mediator.RoleAdmin}, true, "", nil, mediator.ErrApprovalForbidden},
		{"unknown approval", bob, true, "", nil, mediator.ErrUnknownApproval},
		{"bad grant pattern", bob, true, "", &GrantSpec{Minutes: 5, Pattern: "("}, ErrInvalidGrant},
		{"grant too long", bob, true, "", &GrantSpec{Minutes: MaxGrantMinutes + 1, Pattern: ".*"}, ErrInvalidGrant},
		{"grant pattern escaping its anchors", bob, true, "", &GrantSpec{Minutes: 5, Pattern: `x)|(.*`}, ErrInvalidGrant},
		{"first of two approvers", bob, true, "", nil, nil},
		{"same approver twice", bob, true, "", nil, mediator.ErrApprovalForbidden},
		{"second approver decides", Decider{"carol", mediator.RoleAdmin}, true, "", nil, nil},
		{"double decision", Decider{"dave", mediator.RoleApprover}, false, "no", nil, mediator.ErrApprovalDecided},
	}
	for _, tc := range cases {
		target := id
		if tc.want == mediator.ErrUnknownApproval {
			target = "apr_missing"
		}
		_, err := q.Decide(t.Context(), target, tc.who, tc.approve, tc.reason, tc.grant)
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if st.list[0].State != mediator.ApprovalApproved {
		t.Fatalf("state %s after two approvals", st.list[0].State)
	}
}

func TestGrantCoversMatchingCalls(t *testing.T) {
	t.Parallel()
	q, st, clk := testQueue(t, time.Millisecond)
	_, _ = q.Await(t.Context(), pending(testCall(map[string]any{"amount": 1500})))
	grant := &GrantSpec{Minutes: 10, Pattern: `\{"amount":1[0-9]{3}\}`}
	if _, err := q.Decide(t.Context(), st.list[0].ID, bob, true, "routine", grant); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  map[string]any
		after time.Duration
		want  bool
	}{
		{"matching arguments run", map[string]any{"amount": 1999}, 0, true},
		{"arguments outside the pattern wait", map[string]any{"amount": 25000}, 0, false},
		{"the grant ends", map[string]any{"amount": 1200}, 11 * time.Minute, false},
	}
	for _, tc := range cases {
		clk.add(tc.after)
		v, err := q.Await(t.Context(), pending(testCall(tc.args)))
		if got := err == nil && v.Approved; got != tc.want {
			t.Errorf("%s: approved=%v (err %v), want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestAwaitSendsProgress(t *testing.T) {
	t.Parallel()
	q, _, _ := testQueue(t, progressEvery+200*time.Millisecond)
	peer := &fakePeer{}
	c := testCall(map[string]any{"amount": 2})
	req := &mcp.CallToolRequest{}
	req.Params.Meta = &mcp.Meta{ProgressToken: "tok"}
	c.Request = req
	ctx := mediator.WithPeer(t.Context(), peer)
	if _, err := q.Await(ctx, pending(c)); !errors.Is(err, mediator.ErrApprovalPending) {
		t.Fatal(err)
	}
	if peer.count() != 1 {
		t.Fatalf("%d progress notifications, want 1", peer.count())
	}
}

func TestAwaitCancelled(t *testing.T) {
	t.Parallel()
	q, st, _ := testQueue(t, time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	ch := awaitAsync(ctx, q, testCall(map[string]any{"amount": 3}))
	waitPending(t, st)
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", r.err)
	}
	if st.list[0].State != mediator.ApprovalPending {
		t.Fatal("a cancelled wait must leave the approval pending")
	}
}

func TestAwaitAsksTheUserByURL(t *testing.T) {
	t.Parallel()
	q, _, _ := testQueue(t, 100*time.Millisecond, WithElicitation(true))
	peer := &fakePeer{}
	ctx := mediator.WithPeer(t.Context(), peer)
	_, err := q.Await(ctx, pending(testCall(map[string]any{"amount": 4})))
	var pe *mediator.PendingError
	if !errors.As(err, &pe) {
		t.Fatal(err)
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if len(peer.elicited) != 1 || peer.elicited[0].Params.Mode != mcp.ElicitationModeURL || peer.elicited[0].Params.URL != pe.URL {
		t.Fatalf("elicitation %+v, want one URL elicitation for %s", peer.elicited, pe.URL)
	}
}

func TestApprovalLapsesUnused(t *testing.T) {
	t.Parallel()
	q, st, clk := testQueue(t, time.Millisecond)
	args := map[string]any{"amount": 8}
	_, _ = q.Await(t.Context(), pending(testCall(args)))
	if _, err := q.Decide(t.Context(), st.list[0].ID, bob, true, "", nil); err != nil {
		t.Fatal(err)
	}
	clk.add(DefaultExpiry + time.Minute)
	_, err := q.Await(t.Context(), pending(testCall(args)))
	var pe *mediator.PendingError
	if !errors.As(err, &pe) || pe.ApprovalID == st.list[0].ID {
		t.Fatalf("a stale approval ran the call: %v", err)
	}
}

// tasksByID is a read-only mediator.TaskStore over a map.
type tasksByID map[string]mediator.Task

func (m tasksByID) CreateTask(context.Context, mediator.Task) error { return errors.New("read-only") }
func (m tasksByID) Task(_ context.Context, id string) (mediator.Task, bool, error) {
	t, ok := m[id]
	return t, ok, nil
}
func (m tasksByID) Tasks(context.Context, mediator.TaskFilter) ([]mediator.Task, error) {
	return nil, nil
}
func (m tasksByID) SetTaskStatus(context.Context, string, mediator.TaskStatus, string, string, ...mediator.TaskStatus) (mediator.Task, error) {
	return mediator.Task{}, errors.New("read-only")
}

// The approver sees the purpose of the task the call was checked against,
// and the session as its records name it.
func TestApprovalShowsTaskPurpose(t *testing.T) {
	t.Parallel()
	q, st, _ := testQueue(t, 10*time.Millisecond, WithTasks(tasksByID{
		"task-1":   {ID: "task-1", Purpose: "Pay the March invoices"},
		"task-1-d": {ID: "task-1-d", ParentID: "task-1", Purpose: "Pay invoice 42"},
	}))
	c := testCall(map[string]any{"amount": 5000})
	c.Intent = mediator.Intent{Verdict: mediator.IntentInScope, TaskID: "task-1-d"}
	c.Session.Key = "token-jti-1"
	_, err := q.Await(t.Context(), pending(c))
	var pe *mediator.PendingError
	if !errors.As(err, &pe) {
		t.Fatal(err)
	}
	a, err := st.Approval(t.Context(), pe.ApprovalID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Purpose != "Pay invoice 42 (within task task-1: Pay the March invoices)" || a.SessionID != "token-jti-1" {
		t.Fatalf("approval purpose %q, session %q", a.Purpose, a.SessionID)
	}
}
