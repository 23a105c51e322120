package behaviour

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// scorer computes one call's deviation from a baseline. Each feature
// gives a score in 0..1 and a reason; the call's score is
// 1 - Π(1 - sᵢ), so that two weak signals make a stronger one and any
// strong one is enough.
type scorer struct {
	e   *Engine
	a   *agent
	p   *profile
	c   *mediator.Call
	now time.Time

	score   float64
	reasons []string
	novel   bool
	keep    float64 // 1 - score so far
}

// minEvidence is how many learned calls a frequency needs before its
// rarity means anything.
const minEvidence = 20

func (s *scorer) add(v float64, novel bool, reason string) {
	if v <= 0 {
		return
	}
	v = min(v, 1)
	s.keep *= 1 - v
	s.reasons = append(s.reasons, reason)
	s.novel = s.novel || novel
}

// run updates the agent's runtime features with the call and scores it.
// The runtime features (rate, fan-out windows, the previous tool) move
// with every call, flagged or not: a burst of refused calls is still a
// burst.
func (s *scorer) run() {
	s.keep = 1
	a, c, b := s.a, s.c, s.p.base
	a.times[a.timesHead%rateRing] = s.now.UnixNano()
	a.timesHead++
	r60, r10 := a.rates(s.now)
	fanN, fanArg, fanTool := s.updateFan()
	prev := a.lastTool
	a.prevTool, a.lastTool = prev, c.Target.Name
	if !b.Learned || s.p.corrupt != "" {
		s.score = 0
		return
	}
	t := c.Target
	calls := formatCount(b.Seen)
	if b.Tools[t.Name] < 0.5 {
		s.add(0.7, true, fmt.Sprintf("tool %s never used by this agent in %s calls", t.Name, calls))
	} else if share := b.Tools[t.Name] / b.Calls; share < 0.002 && b.Calls >= 500 {
		s.add(0.3, false, fmt.Sprintf("tool %s rarely used by this agent (%.1f%% of its calls)", t.Name, share*100))
	}
	if b.Servers[t.Server] < 0.5 {
		s.add(0.8, true, fmt.Sprintf("server %s never used by this agent in %s calls", t.Server, calls))
	}
	if prev != "" && prev != t.Name && b.Tools[prev] >= minEvidence && b.Tools[t.Name] >= minEvidence && b.Trans[prev+"\x00"+t.Name] < 0.5 {
		s.add(0.25, false, fmt.Sprintf("%s never followed %s before", t.Name, prev))
	}
	s.places()
	s.rate(r60, &b.Rate, "min", 4)
	s.rate(r10, &b.Burst, "min over the last 10 s", 12)
	if v, ok := a.pace(s.now); ok {
		s.pace(v, &b.Pace)
	}
	s.hours()
	if fanTool != "" {
		s.fanOut(fanN, fanArg, fanTool)
	}
	s.touches()
	s.rates()
	s.score = 1 - s.keep
	if s.score < 1e-9 {
		s.score = 0
	}
}

// places scores a directory or URL host the tool never reached for this
// agent, once the tool has enough calls to know its usual places: a
// coding agent working in /repo/svc that reads /home/dev/.ssh, a fetcher
// that calls a new host.
func (s *scorer) places() {
	b, t := s.p.base, s.c.Target
	if b.Tools[t.Name] < minEvidence {
		return
	}
	var buf [maxPlacesPerCall]string
	for _, pl := range callPlaces(s.c, buf[:0]) {
		if b.Places[t.Name+"\x00"+pl] >= 0.5 {
			continue
		}
		kind, where, _ := strings.Cut(pl, ":")
		what := "directory " + where
		if kind == "host" {
			what = "host " + where
		}
		s.add(0.5, true, fmt.Sprintf("%s never used by %s for this agent (usual: %s)", what, t.Name, usualPlaces(b, t.Name, kind)))
		return
	}
}

// usualPlaces names up to three of a tool's usual places of a kind.
func usualPlaces(b *Baseline, tool, kind string) string {
	type pw struct {
		p string
		w float64
	}
	var list []pw
	prefix := tool + "\x00" + kind + ":"
	for k, w := range b.Places {
		if strings.HasPrefix(k, prefix) {
			list = append(list, pw{strings.TrimPrefix(k, prefix), w})
		}
	}
	if len(list) == 0 {
		return "none"
	}
	slices.SortFunc(list, func(x, y pw) int { return cmp.Or(cmp.Compare(y.w, x.w), cmp.Compare(x.p, y.p)) })
	var names []string
	for _, e := range list[:min(3, len(list))] {
		names = append(names, e.p)
	}
	out := strings.Join(names, ", ")
	if len(list) > 3 {
		out += ", …"
	}
	return out
}

// rate scores a call rate against the baseline's distribution of it.
func (s *scorer) rate(v float64, h *hist, unit string, slack float64) {
	if h.total() < minEvidence {
		return
	}
	hi, _ := h.quantile(0.99)
	limit := max(2*hi, hi+slack)
	if v <= limit {
		return
	}
	lo, _ := h.lowQuantile(0.05)
	usual, _ := h.quantile(0.95)
	rng := fmt.Sprintf("%.0f–%.0f", lo, usual)
	if lo >= usual {
		rng = fmt.Sprintf("%.0f", usual)
	}
	s.add(0.5+0.5*min(1, (v-limit)/limit), false, fmt.Sprintf("%.0f calls/%s (usual %s)", v, unit, rng))
}

// pace scores how fast the last three calls came against the fastest the
// agent usually goes: three calls in less than half its usual shortest
// time (the 1st percentile) are a burst, seen within a few calls. An agent
// that often calls in parallel has a shortest time near 0 and no signal
// here.
func (s *scorer) pace(v float64, h *hist) {
	if h.total() < 100 {
		return
	}
	lo, _ := h.lowQuantile(0.01)
	limit := lo / 2
	if v >= limit || limit < 5 { // below 50 ms the clock says little
		return
	}
	s.add(0.5+0.5*min(1, (limit-v)/limit), false, fmt.Sprintf("3 calls in %s (usual at least %s)",
		formatSeconds(v), formatSeconds(lo)))
}

// formatSeconds writes a duration in 10 ms units: 0.4 s, 12 s.
func formatSeconds(v float64) string {
	sec := v / 100
	if sec < 10 {
		return fmt.Sprintf("%.1f s", sec)
	}
	return fmt.Sprintf("%.0f s", sec)
}

// hours scores the hour of day and the weekday, once the baseline spans
// enough days to know them: the hour after three days, the weekday after
// a week. An hour the agent never works is a strong signal only for an
// agent with regular hours (at least eight quiet hours a day), a weak one
// for an agent with some quiet hours (at least six), and none for one that
// works at any hour. A weekday it never works is a weak signal that adds to others.
func (s *scorer) hours() {
	b := s.p.base
	span := b.Last.Sub(b.First)
	if b.Calls < 50 || span < 3*24*time.Hour {
		return
	}
	local := s.now.In(s.e.cfg.Zone)
	h := local.Hour()
	if b.near(h)/b.Calls < quietShare {
		switch core := b.coreHours(); {
		case core <= 14 && span >= 14*24*time.Hour:
			s.add(0.6, false, fmt.Sprintf("call at %s (active %s)", local.Format("15:04"), activeHours(b)))
		case core <= 20:
			s.add(0.3, false, fmt.Sprintf("call at %s (active %s)", local.Format("15:04"), activeHours(b)))
		}
	}
	if d := local.Weekday(); span >= 7*24*time.Hour && b.Days[d]/b.Calls < quietShare {
		s.add(0.3, false, fmt.Sprintf("call on a %s (active %s)", d, activeDays(b)))
	}
}

// coreHours is the fewest consecutive hours of the day (across midnight)
// that hold 99% of the agent's calls.
func (b *Baseline) coreHours() int {
	var sum [24]float64 // sum[s] holds hours s..s+l-1
	for l := 1; l <= 24; l++ {
		for start := range sum {
			sum[start] += b.Hours[(start+l-1)%24]
			if sum[start] >= 0.99*b.Calls {
				return l
			}
		}
	}
	return 24
}

// quietShare: an hour or weekday holding less than this share of an
// agent's calls is one it does not work.
const quietShare = 0.002

// near is the weight of hour h with half of each neighbouring hour's.
func (b *Baseline) near(h int) float64 {
	return b.Hours[h] + 0.5*(b.Hours[(h+23)%24]+b.Hours[(h+1)%24])
}

// activeHours names the span of hours holding the agent's calls: "08–18".
func activeHours(b *Baseline) string {
	first, last := -1, -1
	for h, w := range b.Hours {
		if w/b.Calls >= 0.01 {
			if first < 0 {
				first = h
			}
			last = h
		}
	}
	if first < 0 {
		return "at no usual hour"
	}
	return fmt.Sprintf("%02d–%02d", first, last+1)
}

func activeDays(b *Baseline) string {
	out := ""
	for d, w := range b.Days {
		if w/b.Calls >= 0.01 {
			if out != "" {
				out += ","
			}
			out += time.Weekday(d).String()[:3]
		}
	}
	return out
}

// updateFan adds the call's identifying values to its tool's sliding
// window. It returns the window's distinct values, the argument named, and
// the tool ("" when the call has no identifying argument).
func (s *scorer) updateFan() (int, string, string) {
	a, c := s.a, s.c
	n := s.now.UnixNano()
	win := int64(s.e.cfg.Window)
	ids, arg := callIDs(c, a.idbuf[:0])
	a.idbuf = ids
	a.fanTool = ""
	if len(ids) == 0 {
		return 0, "", ""
	}
	tool := c.Target.Name
	w := a.windows[tool]
	if w == nil {
		if len(a.windows) >= maxFanTool {
			for k, old := range a.windows { // drop a window gone quiet
				if n-old.newest >= win/2 || old.newest > n {
					a.fanValues -= len(old.values)
					delete(a.windows, k)
					break
				}
			}
		}
		if len(a.windows) >= maxFanTool {
			return 0, "", ""
		}
		w = &fanWindow{arg: arg}
		a.windows[tool] = w
	}
	a.fanValues -= w.expire(n, win)
	if a.fanValues >= maxFanValues {
		for k, old := range a.windows { // reclaim what other tools no longer hold
			if old != w {
				a.fanValues -= old.expire(n, win)
				if len(old.values) == 0 {
					delete(a.windows, k)
				}
			}
		}
	}
	w.newest, w.arg = n, arg
	for _, h := range ids {
		if !w.touch(h, n) && len(w.values) < maxFanPerTool && a.fanValues < maxFanValues {
			w.values = append(w.values, fanValue{h: h, at: n})
			a.fanValues++
		}
	}
	a.fanTool, a.fanN = tool, len(w.values)
	return len(w.values), w.arg, tool
}

// fanOut scores the distinct identifying values the tool saw in the
// last Window against how many the agent's calls of it usually see.
func (s *scorer) fanOut(n int, arg, tool string) {
	b := s.p.base
	h := b.Fan[tool]
	var hi float64
	switch {
	case h != nil && h.total() >= minEvidence:
		hi, _ = h.quantile(0.99)
	case len(b.Fan) > 0:
		// A tool with little evidence yet: the agent's usual for any tool.
		for _, o := range b.Fan {
			if q, ok := o.quantile(0.99); ok && q > hi {
				hi = q
			}
		}
	default:
		return
	}
	limit := hi + max(1, math.Ceil(hi/4))
	if float64(n) <= limit {
		return
	}
	s.add(0.6+0.4*min(1, (float64(n)-limit)/limit), false,
		fmt.Sprintf("%d distinct %s values in %s for %s (usual at most %.0f)", n, arg, formatWindow(s.e.cfg.Window), tool, hi))
}

// formatWindow writes a window without zero units: 5m, 1h30m, 45s.
func formatWindow(d time.Duration) string {
	str := d.String()
	if strings.HasSuffix(str, "m0s") {
		str = strings.TrimSuffix(str, "0s")
	}
	if strings.HasSuffix(str, "h0m") {
		str = strings.TrimSuffix(str, "0m")
	}
	return str
}

// touches scores what the call touches: a data class or risk above the
// agent's usual, and a destructive tool from an agent that never uses
// them.
func (s *scorer) touches() {
	b, t := s.p.base, s.c.Target
	ci, ri := classIndex(t.DataClass), riskIndex(t.Risk)
	if top := topLevel(b.Class[:]); ci > 0 && b.Class[ci] < 0.5 && ci > top {
		s.add(0.6, true, fmt.Sprintf("touches %s data (usual at most %s)", classNames[ci], classNames[top]))
	}
	if top := topLevel(b.Risk[:]); ri > 0 && b.Risk[ri] < 0.5 && ri > top {
		s.add(0.5, true, fmt.Sprintf("%s risk tool (usual at most %s)", riskNames[ri], riskNames[top]))
	}
	if d := t.Hints.Destructive; d != nil && *d && b.Destructive/b.Calls < 0.005 {
		s.add(0.6, true, fmt.Sprintf("destructive tool %s (%.1f%% of its usual calls are destructive)", t.Name, 100*b.Destructive/b.Calls))
	}
}

// topLevel is the highest known level (index ≥ 1) a baseline's counts
// hold a call of, 0 when none.
func topLevel(counts []float64) int {
	top := 0
	for i := 1; i < len(counts); i++ {
		if counts[i] >= 0.5 {
			top = i
		}
	}
	return top
}

// rates scores the agent's recent denials, failures and out-of-scope calls
// against its own usual rates.
func (s *scorer) rates() {
	b, a := s.p.base, s.a
	n := min(a.recentN, recentCalls)
	if n < 5 || b.Calls < minEvidence {
		return
	}
	// Failures are a weak signal (an upstream outage is not the agent's
	// doing: ErrorsToDrop handles many of them); denials and calls out
	// of scope are the agent's own.
	for _, f := range []struct {
		bit   uint8
		base  float64
		what  string
		score float64
	}{{recDenied, b.Denied, "denied", 0.5}, {recFailed, b.Errors, "failed", 0.3}, {recOutOfScope, b.OutOfScope, "out of its task's scope", 0.5}} {
		k := a.countRecent(f.bit, n)
		usual := f.base / b.Calls
		if k >= 4 && float64(k)/float64(n) > 3*usual+0.15 {
			s.add(f.score, false, fmt.Sprintf("%d of its last %d calls %s (usual %.0f%%)", k, n, f.what, usual*100))
		}
	}
	if s.c.Intent.Verdict == mediator.IntentOutOfScope {
		s.add(0.3, false, "out of its task's scope")
	}
}
