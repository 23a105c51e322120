package store

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func testApproval(key string) mediator.Approval {
	return mediator.Approval{
		Key: key, CallID: "call-1", AgentID: "agent-a", AgentOwner: "olivia", Server: "demo",
		Tool: "demo__transfer_funds", Arguments: json.RawMessage(`{"amount":5000,"password":"hunter2"}`),
		Prompt: "pay with token sk-abcdefghijklmnopqrstuvwxyz123456", Created: t0, Expires: t0.Add(15 * time.Minute),
		Rule: "funds-above-limit", Required: 1,
	}
}

func openApproval(t *testing.T, s *Store, a mediator.Approval) mediator.Approval {
	t.Helper()
	got, created, err := s.OpenApproval(t.Context(), a)
	if err != nil || !created {
		t.Fatalf("OpenApproval: created=%v err=%v", created, err)
	}
	return got
}

func TestApprovalRedactsAndReopens(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	s := openTest(t, path)
	a := openApproval(t, s, testApproval("k1"))
	if strings.Contains(string(a.Arguments), "hunter2") || strings.Contains(a.Prompt, "sk-abc") {
		t.Fatalf("secrets stored: %s / %s", a.Arguments, a.Prompt)
	}
	again, created, err := s.OpenApproval(t.Context(), testApproval("k1"))
	if err != nil || created || again.ID != a.ID {
		t.Fatalf("identical call opened a second approval: %v %v %v", again.ID, created, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, path)
	got, ok, err := s2.UndeliveredApproval(t.Context(), "k1", t0)
	if err != nil || !ok || got.ID != a.ID || got.State != mediator.ApprovalPending {
		t.Fatalf("after restart: %+v %v %v", got, ok, err)
	}
}

func TestApprovalStateMachine(t *testing.T) {
	t.Parallel()
	approve := func(who string, at time.Time) mediator.ApprovalDecision {
		return mediator.ApprovalDecision{Approver: who, Approve: true, Reason: "ok", At: at}
	}
	deny := func(who, why string, at time.Time) mediator.ApprovalDecision {
		return mediator.ApprovalDecision{Approver: who, Reason: why, At: at}
	}
	edited := func(d mediator.ApprovalDecision, args string) mediator.ApprovalDecision {
		d.Arguments = json.RawMessage(args)
		return d
	}
	in := t0.Add(time.Minute)
	cases := []struct {
		name     string
		required int
		steps    []mediator.ApprovalDecision
		wantErr  []error // per step
		want     mediator.ApprovalState
	}{
		{"one approval decides", 1, []mediator.ApprovalDecision{approve("bob", in)}, []error{nil}, mediator.ApprovalApproved},
		{"a denial decides", 1, []mediator.ApprovalDecision{deny("bob", "no", in)}, []error{nil}, mediator.ApprovalDenied},
		{"a denial needs a reason", 1, []mediator.ApprovalDecision{deny("bob", " ", in)}, []error{mediator.ErrInvalidRequest}, mediator.ApprovalPending},
		{"an over-long reason is refused", 1, []mediator.ApprovalDecision{deny("bob", strings.Repeat("x", MaxApprovalReasonBytes+1), in)},
			[]error{mediator.ErrInvalidRequest}, mediator.ApprovalPending},
		{"a double decision is refused", 1, []mediator.ApprovalDecision{approve("bob", in), deny("carol", "late", in)},
			[]error{nil, mediator.ErrApprovalDecided}, mediator.ApprovalApproved},
		{"a decision after expiry is refused, the expiry left to ExpireApprovals", 1,
			[]mediator.ApprovalDecision{approve("bob", t0.Add(16*time.Minute))}, []error{mediator.ErrApprovalExpired}, mediator.ApprovalPending},
		{"two-person rule waits for the second", 2, []mediator.ApprovalDecision{approve("bob", in)}, []error{nil}, mediator.ApprovalPending},
		{"two-person rule decides on the second", 2, []mediator.ApprovalDecision{approve("bob", in), approve("carol", in)},
			[]error{nil, nil}, mediator.ApprovalApproved},
		{"the same person cannot approve twice", 2, []mediator.ApprovalDecision{approve("bob", in), approve("bob", in)},
			[]error{nil, mediator.ErrApprovalForbidden}, mediator.ApprovalPending},
		{"two approvers of the same edit decide", 2, []mediator.ApprovalDecision{edited(approve("bob", in), `{"amount":50}`), edited(approve("carol", in), `{ "amount": 50 }`)},
			[]error{nil, nil}, mediator.ApprovalApproved},
		{"a second approver of another edit is refused", 2, []mediator.ApprovalDecision{edited(approve("bob", in), `{"amount":50}`), edited(approve("carol", in), `{"amount":60}`)},
			[]error{nil, mediator.ErrApprovalForbidden}, mediator.ApprovalPending},
		{"a second approver as asked after an edit is refused", 2, []mediator.ApprovalDecision{edited(approve("bob", in), `{"amount":50}`), approve("carol", in)},
			[]error{nil, mediator.ErrApprovalForbidden}, mediator.ApprovalPending},
		{"a second approver's edit after an approval as asked is refused", 2, []mediator.ApprovalDecision{approve("bob", in), edited(approve("carol", in), `{"amount":50}`)},
			[]error{nil, mediator.ErrApprovalForbidden}, mediator.ApprovalPending},
		{"a second person may deny an edit", 2, []mediator.ApprovalDecision{edited(approve("bob", in), `{"amount":50}`), deny("carol", "no", in)},
			[]error{nil, nil}, mediator.ApprovalDenied},
		{"a second person may still deny", 2, []mediator.ApprovalDecision{approve("bob", in), deny("carol", "too much", in)},
			[]error{nil, nil}, mediator.ApprovalDenied},
	}
	s := openTest(t, testDB(t))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := testApproval(tc.name)
			a.Required = tc.required
			a = openApproval(t, s, a)
			for i, d := range tc.steps {
				if _, err := s.DecideApproval(t.Context(), a.ID, d); !errors.Is(err, tc.wantErr[i]) || (err == nil) != (tc.wantErr[i] == nil) {
					t.Fatalf("step %d: err %v, want %v", i, err, tc.wantErr[i])
				}
			}
			got, err := s.Approval(t.Context(), a.ID)
			if err != nil || got.State != tc.want {
				t.Fatalf("state %s (err %v), want %s", got.State, err, tc.want)
			}
			if first := tc.steps[0]; first.Approve && tc.want == mediator.ApprovalApproved && !mediator.SameArguments(got.Edited(), first.Arguments) {
				t.Fatalf("approved with arguments %s, want %s", got.Edited(), first.Arguments)
			}
		})
	}
}

func TestApprovalUnknownID(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	_, err := s.DecideApproval(t.Context(), "apr_nope", mediator.ApprovalDecision{Approver: "bob", Approve: true})
	if !errors.Is(err, mediator.ErrUnknownApproval) {
		t.Fatalf("err %v, want ErrUnknownApproval", err)
	}
	if _, err := s.Approval(t.Context(), "apr_nope"); !errors.Is(err, mediator.ErrUnknownApproval) {
		t.Fatalf("err %v, want ErrUnknownApproval", err)
	}
}

func TestApprovalDeliveredExactlyOnce(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	s1, s2 := openTest(t, path), openTest(t, path) // two processes' worth
	a := openApproval(t, s1, testApproval("once"))
	if ok, err := s1.DeliverApproval(t.Context(), a.ID, "early", t0); ok || err != nil {
		t.Fatalf("a pending approval was delivered: %v %v", ok, err)
	}
	if _, err := s2.DecideApproval(t.Context(), a.ID, mediator.ApprovalDecision{Approver: "bob", Approve: true, At: t0}); err != nil {
		t.Fatal(err)
	}
	var took atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := []*Store{s1, s2}[i%2]
			ok, err := st.DeliverApproval(t.Context(), a.ID, "call", t0)
			if err != nil {
				t.Error(err)
			}
			if ok {
				took.Add(1)
			}
		}()
	}
	wg.Wait()
	if took.Load() != 1 {
		t.Fatalf("%d calls took the approval, want exactly 1", took.Load())
	}
	if _, ok, _ := s1.UndeliveredApproval(t.Context(), "once", t0); ok {
		t.Fatal("a delivered approval is still offered")
	}
	if _, created, _ := s1.OpenApproval(t.Context(), testApproval("once")); !created {
		t.Fatal("a repeat after delivery must open a new approval")
	}
}

func TestApprovalExpireAndFeed(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	a := openApproval(t, s, testApproval("exp"))
	rev, _ := s.LastApprovalRev(t.Context())
	got, ok, err := s.UndeliveredApproval(t.Context(), "exp", t0.Add(20*time.Minute))
	if err != nil || !ok || got.State != mediator.ApprovalPending {
		t.Fatalf("undelivered after expiry, before ExpireApprovals: %+v %v %v", got.State, ok, err)
	}
	if list, err := s.ExpireApprovals(t.Context(), t0.Add(20*time.Minute)); err != nil || len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("ExpireApprovals: %v %v", list, err)
	}
	changed, err := s.Approvals(t.Context(), mediator.ApprovalFilter{AfterRev: rev})
	if err != nil || len(changed) != 1 || changed[0].ID != a.ID {
		t.Fatalf("change feed: %v %v", changed, err)
	}
	if list, _ := s.ExpireApprovals(t.Context(), t0.Add(time.Hour)); len(list) != 0 {
		t.Fatalf("expired twice: %v", list)
	}
}

func TestApprovalFilters(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	a := openApproval(t, s, testApproval("f1"))
	b := testApproval("f2")
	b.AgentID, b.Tool = "agent-b", "demo__write_file"
	openApproval(t, s, b)
	if _, err := s.DecideApproval(t.Context(), a.ID, mediator.ApprovalDecision{Approver: "bob", Reason: "no", At: t0}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		f    mediator.ApprovalFilter
		want int
	}{
		{mediator.ApprovalFilter{}, 2},
		{mediator.ApprovalFilter{State: mediator.ApprovalPending}, 1},
		{mediator.ApprovalFilter{AgentID: "agent-b"}, 1},
		{mediator.ApprovalFilter{Tool: "demo__transfer_funds"}, 1},
		{mediator.ApprovalFilter{Approver: "bob"}, 1},
		{mediator.ApprovalFilter{Approver: "mallory"}, 0},
	}
	for _, tc := range cases {
		got, err := s.Approvals(t.Context(), tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("%+v: %d approvals (err %v), want %d", tc.f, len(got), err, tc.want)
		}
	}
}

func TestGrantsAndApprovers(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	g := mediator.ApprovalGrant{ApprovalID: "apr_1", AgentID: "a", Tool: "t", Pattern: `.*`, Approver: "bob", Expires: t0.Add(time.Minute)}
	if err := s.AddGrant(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.MatchingGrants(t.Context(), "a", "", "", "t", t0); len(got) != 1 {
		t.Fatalf("grant not found: %v", got)
	}
	if got, _ := s.MatchingGrants(t.Context(), "a", "", "", "t", t0.Add(2*time.Minute)); len(got) != 0 {
		t.Fatalf("expired grant found: %v", got)
	}
	acct := mediator.ApproverAccount{Name: "bob", Role: mediator.RoleApprover, PasswordHash: "$2a$..."}
	if err := s.PutApprover(t.Context(), acct); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Approver(t.Context(), "bob"); err != nil || got.Role != mediator.RoleApprover {
		t.Fatalf("Approver: %+v %v", got, err)
	}
	// One person, one account: another spelling of bob is refused; bob
	// himself can be updated.
	for _, name := range []string{"Bob", "BOB"} {
		err := s.PutApprover(t.Context(), mediator.ApproverAccount{Name: name, Role: mediator.RoleAdmin, PasswordHash: "h"})
		if !errors.Is(err, mediator.ErrInvalidRequest) || !strings.Contains(err.Error(), `the account "bob" already has that name`) {
			t.Fatalf("PutApprover(%q): %v", name, err)
		}
	}
	if err := s.PutApprover(t.Context(), acct); err != nil {
		t.Fatalf("updating bob: %v", err)
	}
	if err := s.DeleteApprover(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApprover(t.Context(), "bob"); !errors.Is(err, mediator.ErrUnknownApprover) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.PutApprover(t.Context(), mediator.ApproverAccount{Name: "x", Role: "root", PasswordHash: "h"}); err == nil {
		t.Fatal("unknown role accepted")
	}
}
