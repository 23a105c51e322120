package behaviour

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// learnedHarness returns an engine with one learned support agent and the
// time of its next usual call.
func learnedHarness(b testing.TB) (*harness, *mediator.Agent, time.Time) {
	h := newHarness(b, testConfig(), nil)
	ag := &mediator.Agent{ID: "support-1"}
	at := nextWorkMorning(h.learnSupport(ag, 22))
	return h, ag, at
}

// usualTime is the time of the i-th usual call after at: every 3 minutes
// from 09:00 to 16:00 on weekdays, as the agent learned.
func usualTime(at time.Time, i int) time.Time {
	d := i / 140
	day := nextWorkMorning(at).Truncate(24*time.Hour).AddDate(0, 0, d/5*7+d%5)
	for day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
		day = day.AddDate(0, 0, 2)
	}
	return day.Add(9*time.Hour + time.Duration(i%140)*3*time.Minute)
}

// BenchmarkCheck is the hot path: a learned agent's usual call.
func BenchmarkCheck(b *testing.B) {
	h, ag, at := learnedHarness(b)
	ctx := context.Background()
	c := &mediator.Call{Name: tLookup.Name, Agent: ag, Target: tLookup, Arguments: map[string]any{"customer_id": "C3"}, Started: at}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Started = usualTime(at, i)
		if _, err := h.e.Check(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckObserve is the whole per-call cost: Check, then Observe
// learning from the call.
func BenchmarkCheckObserve(b *testing.B) {
	h, ag, at := learnedHarness(b)
	ctx := context.Background()
	c := &mediator.Call{Name: tLookup.Name, Agent: ag, Target: tLookup, Arguments: map[string]any{"customer_id": "C3"}, Started: at}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Started = usualTime(at, i)
		bh, err := h.e.Check(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		c.Behaviour = &bh
		h.e.Observe(ctx, c, mediator.OutcomeOK, 1500)
	}
}

// BenchmarkCheckParallel is Check from many goroutines over 1,000 agents.
func BenchmarkCheckParallel(b *testing.B) {
	h := newHarness(b, testConfig(), nil)
	agents := make([]*mediator.Agent, 1000)
	for i := range agents {
		agents[i] = &mediator.Agent{ID: fmt.Sprintf("a%d", i)}
		for k := 0; k < 120; k++ {
			h.ok(agents[i], tSearch, start.Add(time.Duration(k)*15*time.Minute), map[string]any{"query": fmt.Sprint(k % 4)})
		}
	}
	ctx := context.Background()
	at := start.Add(31 * time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			c := &mediator.Call{Name: tSearch.Name, Agent: agents[i%len(agents)], Target: tSearch,
				Arguments: map[string]any{"query": "1"}, Started: at.Add(time.Duration(i) * time.Millisecond)}
			if _, err := h.e.Check(ctx, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMemoryPerProfile measures the heap of 10,000 learned agents
// (each 3 tools, 5 customers, 80 calls) and reports the bytes per agent.
func BenchmarkMemoryPerProfile(b *testing.B) {
	const n = 10_000
	cfg := testConfig()
	cfg.MaxAgents = n
	cfg.LearnCalls, cfg.LearnFor = 50, time.Hour
	tools := []*mediator.Target{tLookup, tSearch, target("helpdesk", "reply_ticket", mediator.RiskMedium, mediator.DataPII, false)}
	var per float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		h := newHarness(b, cfg, nil)
		for i := 0; i < n; i++ {
			ag := &mediator.Agent{ID: fmt.Sprintf("agent-%05d", i)}
			for k := 0; k < 80; k++ {
				h.ok(ag, tools[k%3], start.Add(time.Duration(k)*time.Minute), map[string]any{"customer_id": fmt.Sprint(k % 5)})
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if h.e.Len() != n {
			b.Fatalf("%d agents in memory", h.e.Len())
		}
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(h)
	}
	b.ReportMetric(per, "bytes/agent")
}
