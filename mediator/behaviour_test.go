package mediator

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// fakeMonitor is a BehaviourMonitor that answers a fixed view and notes
// what it observed.
type fakeMonitor struct {
	mu       sync.Mutex
	view     Behaviour
	err      error
	panics   bool // Observe panics
	observed []Outcome
	sizes    []int
}

func (f *fakeMonitor) Check(context.Context, *Call) (Behaviour, error) { return f.view, f.err }

func (f *fakeMonitor) Observe(_ context.Context, _ *Call, o Outcome, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observed = append(f.observed, o)
	f.sizes = append(f.sizes, n)
	if f.panics {
		panic("monitor bug")
	}
}

func TestChainBehaviourStep(t *testing.T) {
	t.Parallel()
	view := Behaviour{Score: 0.8, Reasons: []string{"tool demo__echo never used by this agent in 40 calls"}, Novel: true,
		Trust: TrustMedium, TrustReason: "sustained deviation"}
	cases := []struct {
		name    string
		mon     *fakeMonitor
		effect  Effect
		wantErr error
		outcome Outcome
	}{
		{name: "policy sees the trust and the behaviour", mon: &fakeMonitor{view: view}, effect: EffectAllow, outcome: OutcomeOK},
		{name: "a refusal names the lowered trust and the fix", mon: &fakeMonitor{view: view}, effect: EffectDeny,
			wantErr: ErrDenied, outcome: OutcomeDenied},
		{name: "a failed check fails closed", mon: &fakeMonitor{err: errors.New("boom")}, effect: EffectAllow,
			wantErr: ErrPolicy, outcome: OutcomeDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &fakeRecorder{}
			d := newTestDeps(rec, &fakeUpstreams{cat: testCatalog(), callTool: echoResult})
			d.Behaviour = tc.mon
			var seen AuthzRequest
			d.Authorizer = fakeAuthz{decide: func(r AuthzRequest) (Decision, error) {
				seen = r
				return Decision{Effect: tc.effect, Rule: "r1", Reason: "rule r1"}, nil
			}}
			c := toolCall("demo__echo", map[string]any{"message": "hi"})
			err := BuildChain(d)(context.Background(), c)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			recs := rec.all()
			if len(recs) != 1 || recs[0].Outcome != tc.outcome {
				t.Fatalf("records = %+v", recs)
			}
			if len(tc.mon.observed) != 1 || tc.mon.observed[0] != tc.outcome {
				t.Errorf("observed %v, want one %s", tc.mon.observed, tc.outcome)
			}
			if tc.mon.err != nil {
				if seen.Agent.ID != "" {
					t.Error("policy was asked after a failed behaviour check")
				}
				return
			}
			if seen.Agent.TrustLevel != "medium" || seen.Behaviour == nil || seen.Behaviour.Score != 0.8 {
				t.Errorf("policy saw trust %q behaviour %+v", seen.Agent.TrustLevel, seen.Behaviour)
			}
			if b := recs[0].Behaviour; b == nil || b.Trust != TrustMedium || len(b.Reasons) != 1 {
				t.Errorf("the record's behaviour = %+v", b)
			}
			if tc.effect == EffectDeny {
				msg := err.Error()
				if !strings.Contains(msg, "trust medium (sustained deviation)") || !strings.Contains(msg, "mediator agent trust set agent-1") {
					t.Errorf("the refusal does not explain the trust: %s", msg)
				}
			}
		})
	}
}

// The agent given to the chain is shared with the session's other calls:
// setting the trust level must not change it.
func TestChainBehaviourDoesNotMutateTheSessionAgent(t *testing.T) {
	t.Parallel()
	rec := &fakeRecorder{}
	d := newTestDeps(rec, &fakeUpstreams{cat: testCatalog(), callTool: echoResult})
	shared := &Agent{ID: "agent-1"}
	d.Authenticator = fakeAuthn{agent: shared}
	d.Behaviour = &fakeMonitor{view: Behaviour{Trust: TrustLow}}
	if err := BuildChain(d)(context.Background(), toolCall("demo__echo", map[string]any{"message": "hi"})); err != nil {
		t.Fatal(err)
	}
	if shared.TrustLevel != "" {
		t.Fatalf("the session's agent was changed: %+v", shared)
	}
}

func TestTrustLevels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		rank int
		ok   bool
	}{{"high", 3, true}, {"medium", 2, true}, {"low", 1, true}, {"none", 0, true}, {"HIGH", 0, false}, {"", 0, false}, {"normal", 0, false}} {
		l, err := ParseTrustLevel(tc.in)
		if (err == nil) != tc.ok || l.Rank() != tc.rank {
			t.Errorf("ParseTrustLevel(%q) = %q (rank %d), %v", tc.in, l, l.Rank(), err)
		}
		if tc.ok && TrustOfRank(tc.rank) != l {
			t.Errorf("TrustOfRank(%d) = %q, want %q", tc.rank, TrustOfRank(tc.rank), l)
		}
	}
	if TrustOfRank(9) != TrustHigh || TrustOfRank(-3) != TrustNone {
		t.Error("TrustOfRank does not clamp")
	}
}

// A monitor that panics while learning does not cost the call its record.
func TestChainBehaviourObservePanicKeepsTheRecord(t *testing.T) {
	t.Parallel()
	rec := &fakeRecorder{}
	d := newTestDeps(rec, &fakeUpstreams{cat: testCatalog(), callTool: echoResult})
	d.Behaviour = &fakeMonitor{view: Behaviour{Trust: TrustHigh}, panics: true}
	if err := BuildChain(d)(context.Background(), toolCall("demo__echo", map[string]any{"message": "hi"})); err != nil {
		t.Fatal(err)
	}
	if recs := rec.all(); len(recs) != 1 || recs[0].Outcome != OutcomeOK {
		t.Fatalf("records %+v", recs)
	}
}
