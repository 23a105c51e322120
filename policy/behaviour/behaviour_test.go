package behaviour

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// start is a Monday.
var start = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func target(server, name string, risk mediator.Risk, class mediator.DataClass, destructive bool) *mediator.Target {
	d := destructive
	return &mediator.Target{Kind: mediator.KindTool, Server: server, Name: server + "__" + name, Risk: risk, DataClass: class,
		Hints: mediator.Hints{Destructive: &d}}
}

var (
	tLookup = target("demo", "lookup_customer", mediator.RiskLow, mediator.DataPII, false)
	tSearch = target("helpdesk", "search_tickets", mediator.RiskLow, mediator.DataInternal, false)
)

// harness drives one engine with a clock that follows the calls.
type harness struct {
	t     testing.TB
	e     *Engine
	clock *clock
	now   time.Time
}

// testConfig learns quickly; DropAt 1.0 makes one novel call (0.7) raise
// suspicion without lowering trust, so that tests can tell one deviating
// call from sustained deviation (the default, 0.7, drops on the first).
func testConfig() Config {
	return Config{LearnCalls: 100, LearnFor: 24 * time.Hour, DropAt: 1.0, Zone: time.UTC}
}

func newHarness(t testing.TB, cfg Config, st mediator.BehaviourStore) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{t: start}, now: start}
	cfg.Now = h.clock.Now
	if cfg.Zone == nil {
		cfg.Zone = time.UTC
	}
	e, err := New(cfg, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	return h
}

// do runs one call at time at through Check and Observe, as the pipeline
// does, and returns what Check said.
func (h *harness) do(ag *mediator.Agent, tg *mediator.Target, at time.Time, args map[string]any, out mediator.Outcome) mediator.Behaviour {
	h.t.Helper()
	h.now = at
	h.clock.Set(at)
	c := &mediator.Call{ID: "c", Method: "tools/call", Name: tg.Name, Arguments: args, Started: at, Agent: ag, Target: tg}
	b, err := h.e.Check(context.Background(), c)
	if err != nil {
		h.t.Fatal(err)
	}
	c.Behaviour = &b
	h.e.Observe(context.Background(), c, out, 1500)
	return b
}

func (h *harness) ok(ag *mediator.Agent, tg *mediator.Target, at time.Time, args map[string]any) mediator.Behaviour {
	h.t.Helper()
	return h.do(ag, tg, at, args, mediator.OutcomeOK)
}

// learnSupport teaches ag a support agent's week: weekdays 09:00–16:00, a
// call every 3 minutes alternating ticket searches and customer lookups
// over a few customers, for days calendar days. It returns the time after
// the last call.
func (h *harness) learnSupport(ag *mediator.Agent, days int) time.Time {
	h.t.Helper()
	k := 0
	for d := 0; d < days; d++ {
		day := start.AddDate(0, 0, d)
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			continue
		}
		for at := day.Add(9 * time.Hour); at.Before(day.Add(16 * time.Hour)); at = at.Add(3 * time.Minute) {
			k++
			if k%2 == 0 {
				h.ok(ag, tSearch, at, map[string]any{"query": fmt.Sprintf("ticket %d", k)})
			} else {
				h.ok(ag, tLookup, at, map[string]any{"customer_id": fmt.Sprintf("C%d", k%7)})
			}
		}
	}
	return h.now
}

// nextWorkMorning is 10:00 of the next weekday after t.
func nextWorkMorning(t time.Time) time.Time {
	d := t.Truncate(24*time.Hour).AddDate(0, 0, 1)
	for d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
		d = d.AddDate(0, 0, 1)
	}
	return d.Add(10 * time.Hour)
}

func hasReason(b mediator.Behaviour, sub string) bool {
	for _, r := range b.Reasons {
		if strings.Contains(r, sub) {
			return true
		}
	}
	return false
}

func TestScoreReasons(t *testing.T) {
	type step func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour
	cases := []struct {
		name   string
		run    step
		reason string
		novel  bool
	}{
		{"novel tool", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			return h.ok(ag, target("helpdesk", "list_agents", mediator.RiskLow, mediator.DataInternal, false), at, nil)
		}, "tool helpdesk__list_agents never used by this agent in 2,241 calls", true},
		{"novel server", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			return h.ok(ag, target("web", "fetch", mediator.RiskLow, mediator.DataPublic, false), at, map[string]any{"url": "https://x"})
		}, "server web never used by this agent in 2,241 calls", true},
		{"rate burst", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			var b mediator.Behaviour
			for i := 0; i < 41; i++ {
				b = h.ok(ag, tSearch, at.Add(time.Duration(i)*1400*time.Millisecond), map[string]any{"query": "x"})
			}
			return b
		}, "41 calls/min (usual 1)", false},
		{"fan-out", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			var b mediator.Behaviour
			for i := 0; i < 34; i++ {
				b = h.ok(ag, tLookup, at.Add(time.Duration(i)*8*time.Second), map[string]any{"customer_id": fmt.Sprintf("X%d", i)})
			}
			return b
		}, "34 distinct customer_id values in 5m for demo__lookup_customer (usual at most 1)", false},
		{"off-hours", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			return h.ok(ag, tSearch, at.Truncate(24*time.Hour).Add(3*time.Hour+12*time.Minute), map[string]any{"query": "x"})
		}, "call at 03:12 (active 09–16)", false},
		{"weekday", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			d := at.Truncate(24 * time.Hour)
			for d.Weekday() != time.Saturday {
				d = d.AddDate(0, 0, 1)
			}
			return h.ok(ag, tSearch, d.Add(11*time.Hour), map[string]any{"query": "x"})
		}, "call on a Saturday (active Mon,Tue,Wed,Thu,Fri)", false},
		{"data class above usual", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			return h.ok(ag, target("demo", "lookup_card", mediator.RiskLow, mediator.DataFinancial, false), at, nil)
		}, "touches financial data (usual at most pii)", true},
		{"risk above usual", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			return h.ok(ag, target("demo", "merge_customers", mediator.RiskCritical, mediator.DataPII, false), at, nil)
		}, "critical risk tool (usual at most low)", true},
		{"destructive pivot", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			return h.ok(ag, target("helpdesk", "delete_ticket", mediator.RiskLow, mediator.DataInternal, true), at, map[string]any{"ticket_id": "1"})
		}, "destructive tool helpdesk__delete_ticket (0.0% of its usual calls are destructive)", true},
		{"denial rate", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			for i := 0; i < 4; i++ {
				h.do(ag, tSearch, at.Add(time.Duration(i)*3*time.Minute), map[string]any{"query": "x"}, mediator.OutcomeDenied)
			}
			return h.ok(ag, tSearch, at.Add(15*time.Minute), map[string]any{"query": "x"})
		}, "4 of its last 20 calls denied (usual 0%)", false},
		{"error rate", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			for i := 0; i < 4; i++ {
				h.do(ag, tSearch, at.Add(time.Duration(i)*3*time.Minute), map[string]any{"query": "x"}, mediator.OutcomeFailed)
			}
			return h.ok(ag, tSearch, at.Add(15*time.Minute), map[string]any{"query": "x"})
		}, "4 of its last 20 calls failed (usual 0%)", false},
		{"transition", func(h *harness, ag *mediator.Agent, at time.Time) mediator.Behaviour {
			h.ok(ag, tSearch, at, map[string]any{"query": "x"})
			return h.ok(ag, tSearch, at.Add(3*time.Minute), map[string]any{"query": "y"})
		}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.DenialsToDrop, cfg.ErrorsToDrop = 10, 20 // so that the rates are scored before they drop trust
			h := newHarness(t, cfg, nil)
			ag := &mediator.Agent{ID: "support-1"}
			last := h.learnSupport(ag, 22)
			at := nextWorkMorning(last)
			usual := h.ok(ag, tSearch, at, map[string]any{"query": "usual"})
			if usual.Score != 0 || usual.Learning || len(usual.Reasons) > 0 {
				t.Fatalf("a usual call scored %.2f %v (learning %v)", usual.Score, usual.Reasons, usual.Learning)
			}
			b := tc.run(h, ag, at.Add(3*time.Minute))
			if tc.reason == "" {
				return // search after search: a known tool pair (it alternates), nothing to flag
			}
			if !hasReason(b, tc.reason) {
				t.Fatalf("reasons %q lack %q", b.Reasons, tc.reason)
			}
			if b.Score <= 0 || b.Score > 1 {
				t.Fatalf("score %v", b.Score)
			}
			if b.Novel != tc.novel {
				t.Fatalf("novel %v, want %v", b.Novel, tc.novel)
			}
		})
	}
}

func TestLearningThenLearned(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	ag := &mediator.Agent{ID: "a"}
	novel := target("x", "never", mediator.RiskLow, mediator.DataPublic, false)
	at := start.Add(9 * time.Hour)
	// 100 calls in 5 hours: enough calls, not enough time.
	for i := 0; i < 100; i++ {
		b := h.ok(ag, tSearch, at.Add(time.Duration(i)*3*time.Minute), nil)
		if !b.Learning || b.Score != 0 {
			t.Fatalf("call %d: learning %v score %v", i, b.Learning, b.Score)
		}
	}
	if b := h.ok(ag, novel, at.Add(6*time.Hour), nil); !b.Learning || b.Score != 0 || b.Trust != mediator.TrustHigh {
		t.Fatalf("while learning, a novel call is not scored: %+v", b)
	}
	// A day later the baseline is learned (and knows the tool it learned
	// while learning).
	h.ok(ag, tSearch, at.Add(25*time.Hour), nil)
	if b := h.ok(ag, novel, at.Add(25*time.Hour+time.Minute), nil); b.Learning || b.Score != 0 {
		t.Fatalf("a tool learned while learning: %+v", b)
	}
	b := h.ok(ag, target("x", "other", mediator.RiskLow, mediator.DataPublic, false), at.Add(25*time.Hour+2*time.Minute), nil)
	if b.Learning || !b.Novel || b.Score < 0.5 {
		t.Fatalf("after learning: %+v", b)
	}
}

func TestStartTrustWhileLearning(t *testing.T) {
	cfg := testConfig()
	cfg.StartTrust = mediator.TrustMedium
	cfg.RecoverCalls = 10
	h := newHarness(t, cfg, nil)
	ag := &mediator.Agent{ID: "a"}
	for i := 0; i < 60; i++ {
		if b := h.ok(ag, tSearch, start.Add(time.Duration(i)*time.Minute), nil); b.Trust != mediator.TrustMedium {
			t.Fatalf("call %d while learning: trust %s, want the start trust medium", i, b.Trust)
		}
	}
}

// lowered learns a support agent and makes it deviate until its trust
// falls to medium; it returns the time after.
func lowered(t *testing.T, h *harness, ag *mediator.Agent) time.Time {
	t.Helper()
	at := nextWorkMorning(h.learnSupport(ag, 22))
	novel := target("helpdesk", "export_all", mediator.RiskLow, mediator.DataInternal, false)
	for i := 0; i < 2; i++ {
		at = at.Add(time.Minute)
		h.ok(ag, novel, at, nil)
	}
	if tr, _ := h.e.Trust(ag.ID); tr != mediator.TrustMedium {
		t.Fatalf("two novel calls: trust %s, want medium", tr)
	}
	return at
}

func TestTrustDropAndRecovery(t *testing.T) {
	cfg := testConfig()
	cfg.RecoverCalls = 20
	cfg.RecoverAfter = time.Hour
	h := newHarness(t, cfg, nil)
	ag := &mediator.Agent{ID: "a"}
	at := lowered(t, h, ag)
	b := h.ok(ag, tSearch, at.Add(time.Minute), nil)
	if b.Trust != mediator.TrustMedium || !strings.Contains(b.TrustReason, "sustained deviation from its baseline: tool helpdesk__export_all never used") {
		t.Fatalf("after the drop: %s %q", b.Trust, b.TrustReason)
	}
	// 30 clean calls within the hour: not yet.
	for i := 0; i < 30; i++ {
		at = at.Add(time.Minute)
		h.ok(ag, tSearch, at, nil)
	}
	if tr, _ := h.e.Trust(ag.ID); tr != mediator.TrustMedium {
		t.Fatalf("recovered before RecoverAfter: %s", tr)
	}
	// Clean calls past the hour: one level up, to high.
	for i := 0; i < 40; i++ {
		at = at.Add(time.Minute)
		h.ok(ag, tSearch, at, nil)
	}
	if tr, _ := h.e.Trust(ag.ID); tr != mediator.TrustHigh {
		t.Fatalf("after clean calls and time: %s, want high", tr)
	}
}

func TestRecoveryOneLevelAtATime(t *testing.T) {
	cfg := testConfig()
	cfg.RecoverCalls = 20
	cfg.RecoverAfter = time.Hour
	h := newHarness(t, cfg, nil)
	ag := &mediator.Agent{ID: "a"}
	at := lowered(t, h, ag)
	if _, err := h.e.SetTrust(context.Background(), ag.ID, mediator.TrustNone, "", "ops", "test"); err != nil {
		t.Fatal(err)
	}
	var seen []mediator.TrustLevel
	for i := 0; i < 400; i++ {
		at = at.Add(time.Minute)
		b := h.ok(ag, tSearch, at, nil)
		if len(seen) == 0 || seen[len(seen)-1] != b.Trust {
			seen = append(seen, b.Trust)
		}
	}
	want := []mediator.TrustLevel{mediator.TrustNone, mediator.TrustLow, mediator.TrustMedium, mediator.TrustHigh}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("levels %v, want %v", seen, want)
	}
}

func TestCeilings(t *testing.T) {
	cfg := testConfig()
	cfg.Ceilings = map[string]mediator.TrustLevel{"capped": mediator.TrustMedium}
	cfg.RecoverCalls, cfg.RecoverAfter = 5, time.Minute
	h := newHarness(t, cfg, nil)
	for _, tc := range []struct {
		ag   *mediator.Agent
		want mediator.TrustLevel
	}{
		{&mediator.Agent{ID: "capped"}, mediator.TrustMedium},
		{&mediator.Agent{ID: "passport", TrustCeiling: "low"}, mediator.TrustLow},
		{&mediator.Agent{ID: "garbled", TrustCeiling: "very high"}, mediator.TrustNone},
		{&mediator.Agent{ID: "free"}, mediator.TrustHigh},
	} {
		var b mediator.Behaviour
		for i := 0; i < 300; i++ { // learning, learned, plenty of clean calls: never above the ceiling
			b = h.ok(tc.ag, tSearch, start.Add(time.Duration(i)*10*time.Minute), nil)
			if b.Trust.Rank() > tc.want.Rank() {
				t.Fatalf("%s: trust %s above its ceiling %s", tc.ag.ID, b.Trust, tc.want)
			}
		}
		if b.Trust != tc.want {
			t.Fatalf("%s: trust %s, want %s", tc.ag.ID, b.Trust, tc.want)
		}
	}
}

func TestDropOnSuspendedDenialsJudge(t *testing.T) {
	cfg := testConfig()
	cfg.JudgeBelow = 0.4
	cases := []struct {
		name   string
		run    func(h *harness, ag *mediator.Agent, at time.Time)
		reason string
	}{
		{"suspended task", func(h *harness, ag *mediator.Agent, at time.Time) {
			c := &mediator.Call{Name: tSearch.Name, Started: at, Agent: ag, Target: tSearch,
				Intent: mediator.Intent{TaskID: "t1", Suspended: true, Verdict: mediator.IntentOutOfScope}}
			if _, err := h.e.Check(context.Background(), c); err != nil {
				h.t.Fatal(err)
			}
		}, "its task t1 was suspended"},
		{"repeated denials", func(h *harness, ag *mediator.Agent, at time.Time) {
			for i := 0; i < 3; i++ {
				h.do(ag, tSearch, at.Add(time.Duration(i)*time.Minute), nil, mediator.OutcomeDenied)
			}
		}, "3 of its last 10 calls were denied"},
		{"low judge score", func(h *harness, ag *mediator.Agent, at time.Time) {
			c := &mediator.Call{Name: tSearch.Name, Started: at, Agent: ag, Target: tSearch,
				Intent: mediator.Intent{Judge: &mediator.JudgeResult{Score: 0.1, Effect: mediator.EffectAllow}}}
			if _, err := h.e.Check(context.Background(), c); err != nil {
				h.t.Fatal(err)
			}
		}, "the intent judge scored a call of helpdesk__search_tickets 0.10 (below 0.40)"},
		{"upstream errors", func(h *harness, ag *mediator.Agent, at time.Time) {
			for i := 0; i < 8; i++ {
				h.do(ag, tSearch, at.Add(time.Duration(i)*time.Minute), nil, mediator.OutcomeFailed)
			}
		}, "8 of its last 20 calls failed upstream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, cfg, nil)
			ag := &mediator.Agent{ID: "a"}
			at := nextWorkMorning(h.learnSupport(ag, 3))
			tc.run(h, ag, at)
			b := h.ok(ag, tSearch, at.Add(time.Hour), nil)
			if b.Trust != mediator.TrustMedium || !strings.Contains(b.TrustReason, tc.reason) {
				t.Fatalf("trust %s (%q), want medium because %q", b.Trust, b.TrustReason, tc.reason)
			}
		})
	}
	t.Run("judge that could not answer", func(t *testing.T) {
		h := newHarness(t, cfg, nil)
		ag := &mediator.Agent{ID: "a"}
		c := &mediator.Call{Name: tSearch.Name, Started: start, Agent: ag, Target: tSearch,
			Intent: mediator.Intent{Judge: &mediator.JudgeResult{Score: 0, Effect: mediator.EffectDeny, Fallback: "timeout"}}}
		if b, _ := h.e.Check(context.Background(), c); b.Trust != mediator.TrustHigh {
			t.Fatalf("a judge fallback lowered trust to %s", b.Trust)
		}
	})
}

func TestConfigRejectsHighFallback(t *testing.T) {
	if _, err := New(Config{FallbackTrust: mediator.TrustHigh}, nil, nil, nil); err == nil {
		t.Fatal("fallback_trust high accepted")
	}
	for _, c := range []Config{{FlagScore: 2}, {DropAt: -1}, {Window: time.Millisecond}, {Ceiling: "max"}, {DenialsToDrop: 11}} {
		if _, err := New(c, nil, nil, nil); err == nil {
			t.Fatalf("%+v accepted", c)
		}
	}
}
