package behaviour

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// An agent flooding novel calls while it learns teaches its baseline no
// more than one minute can teach, and afterwards a novel tool is still
// novel.
func TestPoisoningFloodWhileLearning(t *testing.T) {
	cfg := testConfig()
	h := newHarness(t, cfg, nil)
	ag := &mediator.Agent{ID: "poisoner"}
	at := start.Add(9 * time.Hour)
	for i := 0; i < 50; i++ {
		h.ok(ag, tSearch, at.Add(time.Duration(i)*3*time.Minute), nil)
	}
	before := h.e.Config().TeachPerMinute
	flood := at.Add(3 * time.Hour)
	for i := 0; i < 5000; i++ { // 5,000 novel tools in 50 seconds
		tg := target("evil", fmt.Sprintf("t%d", i), mediator.RiskCritical, mediator.DataFinancial, true)
		h.ok(ag, tg, flood.Add(time.Duration(i)*10*time.Millisecond), map[string]any{"id": fmt.Sprint(i)})
	}
	b := h.ok(ag, tSearch, flood.Add(time.Minute+time.Second), nil)
	if got := b.Calls; got > 50+int64(before)+1 {
		t.Fatalf("the flood taught %d calls, more than one minute's %d", got-50, before)
	}
	// Learn normally for a day, then: a flooded tool never taught is
	// novel, and so is anything else the flood did not teach.
	for i := 0; i < 200; i++ {
		h.ok(ag, tSearch, flood.Add(2*time.Minute+time.Duration(i)*8*time.Minute), nil)
	}
	after := flood.Add(30 * time.Hour)
	for _, tg := range []*mediator.Target{
		target("evil", "t4999", mediator.RiskCritical, mediator.DataFinancial, true),
		target("other", "new", mediator.RiskLow, mediator.DataPublic, false),
	} {
		b := h.ok(ag, tg, after, nil)
		if b.Learning || b.Score < cfg.FlagScore || !b.Novel {
			t.Fatalf("%s after the flood: %+v", tg.Name, b)
		}
		after = after.Add(time.Minute)
	}
}

// A clock that jumps back or forward does not panic, and a jump forward
// alone does not raise a lowered trust.
func TestClockJumps(t *testing.T) {
	cfg := testConfig()
	cfg.RecoverCalls, cfg.RecoverAfter = 30, time.Hour
	h := newHarness(t, cfg, nil)
	ag := &mediator.Agent{ID: "a"}
	at := lowered(t, h, ag)
	for _, jump := range []time.Duration{-48 * time.Hour, -time.Hour, 365 * 24 * time.Hour, -400 * 24 * time.Hour, 10 * 365 * 24 * time.Hour} {
		at = at.Add(jump)
		for i := 0; i < 5; i++ {
			b := h.ok(ag, tSearch, at.Add(time.Duration(i)*time.Second), map[string]any{"query": "x"})
			if b.Trust.Rank() > mediator.TrustMedium.Rank() {
				t.Fatalf("after a jump of %s: trust %s rose without enough clean calls", jump, b.Trust)
			}
		}
	}
	// The zero time and times far out are handled too.
	h.ok(ag, tSearch, time.Time{}, nil)
	h.ok(ag, tSearch, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), nil)
}

// A stored baseline that cannot be read caps the agent at the fallback
// trust, never high, even after many clean calls; a reset lifts the cap.
func TestCorruptStoredProfile(t *testing.T) {
	for _, data := range [][]byte{[]byte("{not json"), []byte(`{"v":99}`), []byte(`{"v":1,"calls":-5}`)} {
		t.Run(string(data), func(t *testing.T) {
			st := newMemStore()
			st.corrupt("a", "a", data)
			cfg := testConfig()
			cfg.RecoverCalls, cfg.RecoverAfter = 5, time.Minute
			h := newHarness(t, cfg, st)
			if err := h.e.Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			ag := &mediator.Agent{ID: "a"}
			var b mediator.Behaviour
			for i := 0; i < 300; i++ {
				b = h.ok(ag, tSearch, start.Add(time.Duration(i)*5*time.Minute), nil)
				if b.Trust.Rank() > mediator.TrustLow.Rank() {
					t.Fatalf("call %d: trust %s above the fallback low", i, b.Trust)
				}
			}
			if b.Trust != mediator.TrustLow || !hasReason(b, "cannot be read") {
				t.Fatalf("trust %s, reasons %q", b.Trust, b.Reasons)
			}
			h.e.Sync(context.Background())
			if s, ok := st.trust("a"); !ok || s.Level != mediator.TrustLow {
				t.Fatalf("stored trust %+v", s)
			}
			// The row is left as it was: never overwritten by a blank one.
			if r, _, _ := st.Profile(context.Background(), "a"); string(r.Data) != string(data) {
				t.Fatalf("the unreadable row was overwritten: %s", r.Data)
			}
			if _, err := h.e.ActOnBaseline(context.Background(), "a", Reset, "ops", "restore"); err != nil {
				t.Fatal(err)
			}
			h.e.Sync(context.Background())
			if b := h.ok(ag, tSearch, start.Add(2*24*time.Hour), nil); hasReason(b, "cannot be read") {
				t.Fatalf("after a reset: %q", b.Reasons)
			}
		})
	}
	t.Run("without Load: found when the agent is first seen", func(t *testing.T) {
		st := newMemStore()
		st.corrupt("b", "b", []byte("garbage"))
		h := newHarness(t, testConfig(), st)
		ag := &mediator.Agent{ID: "b"}
		h.ok(ag, tSearch, start, nil)
		h.e.Sync(context.Background()) // loads what the first call asked for
		if b := h.ok(ag, tSearch, start.Add(time.Minute), nil); b.Trust != mediator.TrustLow {
			t.Fatalf("trust %s, want the fallback low", b.Trust)
		}
	})
}

// A store that cannot persist a trust drop: the drop applies in memory at
// once, is retried by Sync, and is stored once the store works again.
func TestTrustDropWhenStoreFails(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, testConfig(), st)
	ag := &mediator.Agent{ID: "a"}
	at := nextWorkMorning(h.learnSupport(ag, 3))
	h.e.Sync(context.Background())
	st.setFail(true)
	novel := target("helpdesk", "export_all", mediator.RiskLow, mediator.DataInternal, false)
	h.ok(ag, novel, at, nil)
	h.ok(ag, novel, at.Add(time.Minute), nil)
	if b := h.ok(ag, tSearch, at.Add(2*time.Minute), nil); b.Trust != mediator.TrustMedium {
		t.Fatalf("in memory: %s", b.Trust)
	}
	// A second drop while the store is down.
	h.ok(ag, novel, at.Add(3*time.Minute), nil)
	h.ok(ag, novel, at.Add(4*time.Minute), nil)
	for i := 0; i < 3; i++ {
		h.e.Sync(context.Background())
	}
	if _, ok := st.trust("a"); ok {
		t.Fatal("stored while the store was down")
	}
	if tr, _ := h.e.Trust("a"); tr != mediator.TrustLow {
		t.Fatalf("in memory after failed syncs: %s", tr)
	}
	// Evicting the agent meanwhile does not lose it either.
	cfg := h.e.Config()
	for i := 0; i < cfg.MaxAgents+5 && i < 20000; i++ {
		if i == 0 {
			h.e.cfg.MaxAgents = 5
		}
		h.ok(&mediator.Agent{ID: fmt.Sprintf("other-%d", i)}, tSearch, at.Add(5*time.Minute), nil)
	}
	st.setFail(false)
	h.e.Sync(context.Background())
	s, ok := st.trust("a")
	if !ok || s.Level != mediator.TrustLow {
		t.Fatalf("after the store came back: %+v (the latest drop must win)", s)
	}
	if b := h.ok(ag, tSearch, at.Add(6*time.Minute), nil); b.Trust != mediator.TrustLow {
		t.Fatalf("back in memory: %s", b.Trust)
	}
	h.e.mu.Lock()
	n := len(h.e.pending)
	h.e.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d changes still pending", n)
	}
}

// 100,000 distinct agent ids: memory stays bounded, with and without a
// store (and with a store that is never synced).
func TestManyAgentsBounded(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		t.Run(fmt.Sprint("store=", withStore), func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxAgents = 50
			var st *memStore
			var h *harness
			if withStore {
				st = newMemStore()
				h = newHarness(t, cfg, st)
			} else {
				h = newHarness(t, cfg, nil)
			}
			for i := 0; i < 100_000; i++ {
				ag := &mediator.Agent{ID: fmt.Sprintf("agent-%d", i)}
				h.ok(ag, tSearch, start.Add(time.Duration(i)*time.Millisecond), map[string]any{"id": fmt.Sprint(i)})
				if n := h.e.Len(); n > cfg.MaxAgents {
					t.Fatalf("after %d agents: %d in memory", i+1, n)
				}
			}
			h.e.mu.Lock()
			orphans, trusts := len(h.e.orphans), len(h.e.trusts)
			h.e.mu.Unlock()
			if orphans > cfg.MaxAgents || trusts != 0 {
				t.Fatalf("%d orphans, %d trust states kept", orphans, trusts)
			}
			if withStore {
				h.e.Sync(context.Background())
			}
		})
	}
}

// An agent whose trust was lowered and which was then evicted keeps its
// lowered level when it returns.
func TestEvictionKeepsLoweredTrust(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		t.Run(fmt.Sprint("store=", withStore), func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxAgents = 10
			var h *harness
			if withStore {
				h = newHarness(t, cfg, newMemStore())
			} else {
				h = newHarness(t, cfg, nil)
			}
			ag := &mediator.Agent{ID: "lowered"}
			at := lowered(t, h, ag)
			if withStore {
				h.e.Sync(context.Background())
			}
			for i := 0; i < 100; i++ {
				h.ok(&mediator.Agent{ID: fmt.Sprintf("o%d", i)}, tSearch, at, nil)
			}
			h.e.mu.Lock()
			_, present := h.e.agents["lowered"]
			h.e.mu.Unlock()
			if present {
				t.Fatal("not evicted")
			}
			b := h.ok(ag, tSearch, at.Add(time.Minute), nil)
			if b.Trust != mediator.TrustMedium || !strings.Contains(b.TrustReason, "sustained deviation") {
				t.Fatalf("returned with %s (%q), want medium", b.Trust, b.TrustReason)
			}
		})
	}
}

// Two engines sharing one store: what one learns the other scores with,
// and a trust drop on one is adopted by the other, after Sync.
func TestCrossProcess(t *testing.T) {
	st := newMemStore()
	a := newHarness(t, testConfig(), st)
	b := newHarness(t, testConfig(), st)
	ctx := context.Background()
	ag := &mediator.Agent{ID: "shared"}
	// B sees the agent first, while nothing is learned.
	if r := b.ok(ag, tSearch, start.Add(time.Hour), nil); !r.Learning {
		t.Fatal("B: learned from nothing")
	}
	at := nextWorkMorning(a.learnSupport(ag, 3))
	a.e.Sync(ctx)
	b.e.Sync(ctx)
	novel := target("helpdesk", "export_all", mediator.RiskLow, mediator.DataInternal, false)
	r := b.ok(ag, novel, at, nil)
	if r.Learning || !r.Novel || r.Calls < 400 {
		t.Fatalf("B does not score with what A learned: %+v", r)
	}
	// A drop on A reaches B.
	a.ok(ag, novel, at.Add(time.Minute), nil)
	a.ok(ag, novel, at.Add(2*time.Minute), nil)
	if tr, _ := a.e.Trust("shared"); tr != mediator.TrustMedium {
		t.Fatalf("A: %s", tr)
	}
	b.e.Sync(ctx)
	if r := b.ok(ag, tSearch, at.Add(3*time.Minute), nil); r.Trust != mediator.TrustMedium {
		t.Fatalf("B after Sync: %s", r.Trust)
	}
	// An agent B has never seen arrives with A's level.
	other := &mediator.Agent{ID: "other"}
	a.e.SetTrust(ctx, "other", mediator.TrustLow, "", "ops", "test")
	b.e.Sync(ctx)
	if r := b.ok(other, tSearch, at, nil); r.Trust != mediator.TrustLow {
		t.Fatalf("B, new agent: %s", r.Trust)
	}
}

// Concurrent calls of many agents with Sync running: no race, no panic.
func TestConcurrent(t *testing.T) {
	st := newMemStore()
	cfg := testConfig()
	cfg.MaxAgents = 20
	h := newHarness(t, cfg, st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.e.Run(ctx); close(done) }()
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		go func(w int) {
			for i := 0; i < 2000; i++ {
				ag := &mediator.Agent{ID: fmt.Sprintf("a%d", (w*7+i)%40), Version: fmt.Sprint(i % 2)}
				c := &mediator.Call{Name: tSearch.Name, Started: start.Add(time.Duration(i) * time.Second), Agent: ag, Target: tSearch,
					Arguments: map[string]any{"query": fmt.Sprint(i % 5)}}
				b, err := h.e.Check(ctx, c)
				if err != nil {
					errs <- err
					return
				}
				c.Behaviour = &b
				h.e.Observe(ctx, c, mediator.OutcomeOK, 10)
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < 8; w++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	cancel()
	<-done
}

// A call still in flight for an agent that another call's arrival evicted
// learns while the next flush writes the evicted agent's unwritten
// learning: the two never touch the same baseline (the race detector
// failed this before orphans owned their delta), and what the agent
// learned before its eviction reaches the store.
func TestEvictedAgentLearnsDuringFlush(t *testing.T) {
	st := newMemStore()
	cfg := testConfig()
	cfg.MaxAgents = 1
	h := newHarness(t, cfg, st)
	ctx := context.Background()
	a := &mediator.Agent{ID: "evicted"}
	h.ok(a, tSearch, start, map[string]any{"query": "q"})
	inFlight := h.e.agentFor(a)                                                         // the call's agent, as Observe holds it
	h.ok(&mediator.Agent{ID: "newcomer"}, tSearch, start, map[string]any{"query": "q"}) // evicts "evicted"
	if h.e.Len() != 1 {
		t.Fatalf("agents in memory = %d, want 1 (MaxAgents)", h.e.Len())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &mediator.Call{Name: tSearch.Name, Started: start, Agent: a, Target: tSearch, Arguments: map[string]any{"query": "q2"}}
		inFlight.mu.Lock()
		h.e.teachLocked(inFlight, c, 0, 10, start)
		inFlight.mu.Unlock()
	}()
	h.e.flush(ctx)
	<-done
	row, ok, err := st.Profile(ctx, "evicted")
	if err != nil || !ok {
		t.Fatalf("stored profile of the evicted agent: ok=%v err=%v", ok, err)
	}
	b, err := decodeBaseline(row.Data)
	if err != nil || b.Seen < 1 {
		t.Fatalf("stored baseline = %+v (%v), want the call learned before the eviction", b, err)
	}
}
