package behaviour

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// TrustChangeMethod is the method of the audit record of a trust change.
const TrustChangeMethod = "mediator/trust"

// TrustRule is the rule named by trust changes and by calls the behaviour
// engine refuses.
const TrustRule = "behaviour.trust"

// Engine is the behaviour monitor: it keeps each agent's baseline and trust
// in memory, scores calls against them, and writes what it learns and every
// trust change to the store in the background. It implements
// mediator.BehaviourMonitor.
type Engine struct {
	cfg   Config
	store mediator.BehaviourStore // nil: memory only
	rec   mediator.Recorder       // nil: trust changes are only logged
	log   *slog.Logger

	mu     sync.Mutex
	agents map[string]*list.Element // of *agent, most recently used first
	lru    *list.List
	// trusts holds every stored trust state, also of agents whose
	// baselines were evicted: eviction never loses a lowered level.
	trusts   map[string]mediator.TrustState
	profRev  int64
	trustRev int64
	// pending are changes not yet persisted or recorded (retried by Run).
	pending []*change
	loads   chan [2]string // agent id, profile key
	// orphans are unwritten learning of evicted agents, written by the
	// next flush (at most MaxAgents; beyond, the oldest is dropped).
	orphans []orphan

	// persistMu orders trust writes: a change is stored only when no
	// later change of the same agent was stored before it (lastStored
	// holds the sequence of each agent's last stored change).
	persistMu  sync.Mutex
	seq        atomic.Int64
	lastStored map[string]int64
}

// orphan is the unwritten learning of one profile of an evicted agent.
// It owns delta: a call still in flight for the evicted agent learns into
// the profile's new delta, never into this one while a flush reads it.
type orphan struct {
	agentID string
	p       *profile
	delta   *Baseline
}

var _ mediator.BehaviourMonitor = (*Engine)(nil)

// agent is the in-memory state of one agent.
type agent struct {
	mu sync.Mutex
	id string

	trust      mediator.TrustLevel
	ceiling    mediator.TrustLevel // the stored ceiling ("" none)
	trustRev   int64
	changed    time.Time
	reason     string // of the last trust change
	suspicion  float64
	why        []string // reasons adding to suspicion
	clean      int
	unsaved    bool // a trust change not yet in the store
	recent     [recentCalls]uint8
	recentN    int
	times      [rateRing]int64
	timesHead  int
	lastTool   string // the tool of the agent's last call
	prevTool   string // and of the one before it (what teaching learns the transition from)
	windows    map[string]*fanWindow
	fanValues  int
	fanTool    string // the tool of the last call with identifying arguments
	fanN       int    // and its window's distinct values then
	teachMin   int64
	teachCount int
	// profiles: [0] the agent id's, [1] the agent version's (nil without
	// a version).
	profiles [2]*profile
	idbuf    []uint64
}

// profile is one baseline in memory: base is what calls are scored
// against (the store's row plus what this process learned since), delta
// what this process learned and has not yet written.
type profile struct {
	key, version string
	base, delta  *Baseline
	rev          int64
	loaded       bool
	// corrupt says why the stored row could not be read ("" when it could).
	corrupt string
}

// change is a trust change to record and persist.
type change struct {
	seq      int64 // creation order
	state    mediator.TrustState
	from     mediator.TrustLevel
	recorded bool
	stored   bool
}

// New returns an engine. st and rec may be nil (memory only, no records).
// Call Load before serving and Run in the background.
func New(cfg Config, st mediator.BehaviourStore, rec mediator.Recorder, log *slog.Logger) (*Engine, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, store: st, rec: rec, log: log, agents: map[string]*list.Element{},
		lru: list.New(), trusts: map[string]mediator.TrustState{}, loads: make(chan [2]string, 256),
		lastStored: map[string]int64{}}, nil
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Load reads every stored trust state and the most recent baselines (up to
// MaxAgents) so that the first calls are scored without a database read.
func (e *Engine) Load(ctx context.Context) error {
	if e.store == nil {
		return nil
	}
	if err := e.pollTrust(ctx); err != nil {
		return err
	}
	return e.pollProfiles(ctx, true)
}

// Run writes what the engine learned and reads what other processes
// stored, every Sync, until ctx ends; then it writes once more.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.cfg.Sync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			e.Sync(fctx)
			cancel()
			return
		case l := <-e.loads:
			lctx, cancel := ctx, context.CancelFunc(func() {})
			if ctx.Err() != nil {
				// Stopping (select picked the load over ctx.Done): read it
				// for the final write, not with the cancelled context.
				lctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			}
			e.loadProfile(lctx, l[0], l[1])
			cancel()
		case <-t.C:
			e.Sync(ctx)
		}
	}
}

// Sync writes pending trust changes and learned baselines, and reads what
// other processes wrote. Run calls it; tests and commands may too.
func (e *Engine) Sync(ctx context.Context) {
	e.retryPending(ctx)
	if e.store == nil {
		return
	}
	for drained := false; !drained; {
		select {
		case l := <-e.loads:
			e.loadProfile(ctx, l[0], l[1])
		default:
			drained = true
		}
	}
	e.flush(ctx)
	if err := e.pollTrust(ctx); err != nil {
		e.log.Warn("behaviour: reading trust levels failed; retrying", "err", err)
	}
	if err := e.pollProfiles(ctx, false); err != nil {
		e.log.Warn("behaviour: reading baselines failed; retrying", "err", err)
	}
}

func (e *Engine) now() time.Time { return e.cfg.Now() }

// ceilingOf is the highest trust agent a may reach.
func (e *Engine) ceilingOf(ag *mediator.Agent, a *agent) mediator.TrustLevel {
	c := e.cfg.Ceiling
	if t, ok := e.cfg.Ceilings[ag.ID]; ok && t.Rank() < c.Rank() {
		c = t
	}
	if ag.TrustCeiling != "" {
		if t, err := mediator.ParseTrustLevel(ag.TrustCeiling); err != nil {
			c = mediator.TrustNone // an unreadable claim is none
		} else if t.Rank() < c.Rank() {
			c = t
		}
	}
	if a.ceiling != "" && a.ceiling.Rank() < c.Rank() {
		c = a.ceiling
	}
	for _, p := range a.profiles {
		if p != nil && p.corrupt != "" && e.cfg.FallbackTrust.Rank() < c.Rank() {
			c = e.cfg.FallbackTrust // until an operator resets the baseline
		}
	}
	return c
}

// agentFor returns the state of ag, creating it (and evicting the least
// recently used agent beyond MaxAgents) when needed.
func (e *Engine) agentFor(ag *mediator.Agent) *agent {
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.agents[ag.ID]; ok {
		e.lru.MoveToFront(el)
		a := el.Value.(*agent)
		if ag.Version != "" && (a.profiles[1] == nil || a.profiles[1].version != ag.Version) {
			a.mu.Lock()
			a.profiles[1] = e.newProfileLocked(ag.ID, ag.ID+"@"+ag.Version, ag.Version)
			a.mu.Unlock()
		}
		return a
	}
	a := &agent{id: ag.ID, trust: e.cfg.StartTrust, windows: map[string]*fanWindow{}}
	if st, ok := e.trusts[ag.ID]; ok {
		a.trust, a.ceiling, a.trustRev, a.changed, a.reason = st.Level, st.Ceiling, st.Rev, st.Changed, st.Reason
	}
	a.profiles[0] = e.newProfileLocked(ag.ID, ag.ID, "")
	if ag.Version != "" {
		a.profiles[1] = e.newProfileLocked(ag.ID, ag.ID+"@"+ag.Version, ag.Version)
	}
	e.agents[ag.ID] = e.lru.PushFront(a)
	e.evictLocked()
	return a
}

// newProfileLocked returns an empty profile and asks Run to load the
// stored one.
func (e *Engine) newProfileLocked(agentID, key, version string) *profile {
	p := &profile{key: key, version: version, base: newBaseline(), delta: newBaseline(), loaded: e.store == nil}
	if e.store != nil {
		select {
		case e.loads <- [2]string{agentID, key}:
		default: // Run is behind; the poll or the next call will load it
		}
	}
	return p
}

// evictLocked drops the least recently used agents beyond MaxAgents.
// Their trust stays in e.trusts (with the store's revision, or, when it is
// not yet stored or there is no store, as it is in memory) and their
// unwritten learning in e.orphans for the next flush: eviction never
// raises an agent's trust, and memory stays bounded even when the store
// is slow or down.
func (e *Engine) evictLocked() {
	for e.lru.Len() > e.cfg.MaxAgents {
		el := e.lru.Back()
		a := el.Value.(*agent)
		a.mu.Lock()
		if e.store == nil || a.unsaved {
			if st, ok := e.trusts[a.id]; ok || a.trust != e.cfg.StartTrust || a.ceiling != "" {
				if !ok || st.Level != a.trust || st.Ceiling != a.ceiling {
					e.trusts[a.id] = mediator.TrustState{AgentID: a.id, Level: a.trust, Ceiling: a.ceiling,
						Changed: a.changed, Reason: a.reason, Rev: a.trustRev, By: "mediator"}
				}
			}
		}
		if e.store != nil {
			for _, p := range a.profiles {
				if p != nil && !p.delta.empty() && p.corrupt == "" {
					if len(e.orphans) >= e.cfg.MaxAgents {
						e.log.Warn("behaviour: too much unwritten learning; dropping the oldest", "profile", e.orphans[0].p.key)
						e.orphans = e.orphans[1:]
					}
					e.orphans = append(e.orphans, orphan{agentID: a.id, p: p, delta: p.delta})
					p.delta = newBaseline()
				}
			}
		}
		a.mu.Unlock()
		e.lru.Remove(el)
		delete(e.agents, a.id)
	}
}

// Len returns the number of agents whose baselines are in memory.
func (e *Engine) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lru.Len()
}

// Check scores the call against its agent's baseline, updates the agent's
// suspicion and trust, and returns the trust the call is decided at.
func (e *Engine) Check(ctx context.Context, c *mediator.Call) (mediator.Behaviour, error) {
	if c.Agent == nil || c.Target == nil {
		return mediator.Behaviour{}, fmt.Errorf("behaviour: call %s has no agent or target", c.ID)
	}
	now := c.Started
	if now.IsZero() {
		now = e.now()
	}
	a := e.agentFor(c.Agent)
	a.mu.Lock()
	p := a.scoring()
	s := scorer{e: e, a: a, p: p, c: c, now: now}
	s.run()
	b := mediator.Behaviour{Score: s.score, Reasons: s.reasons, Novel: s.novel, Learning: !p.base.Learned,
		Profile: p.key, Calls: p.base.Seen}
	var ch []*change
	if p.corrupt != "" {
		b.Reasons = append(b.Reasons, "baseline "+p.key+" cannot be read ("+p.corrupt+"): trust is capped at "+string(e.cfg.FallbackTrust)+
			" until an operator runs `mediator agent baseline reset "+a.id+"`")
		if a.trust.Rank() > e.cfg.FallbackTrust.Rank() {
			ch = append(ch, e.setLocked(a, e.cfg.FallbackTrust, "baseline "+p.key+" cannot be read ("+p.corrupt+")", now))
		}
	}
	ch = append(ch, e.judgeLocked(a, c, now, s.score, s.reasons)...)
	ceil := e.ceilingOf(c.Agent, a)
	if a.trust.Rank() > ceil.Rank() {
		ch = append(ch, e.setLocked(a, ceil, "above its ceiling "+string(ceil), now))
	}
	b.Trust = a.trust
	if a.trust.Rank() < ceil.Rank() {
		b.TrustReason = a.reason
	}
	a.mu.Unlock()
	e.apply(ctx, c.Agent.ID, ch)
	return b, nil
}

// judgeLocked turns this call's score and intent into suspicion and trust
// changes.
func (e *Engine) judgeLocked(a *agent, c *mediator.Call, now time.Time, score float64, reasons []string) []*change {
	var ch []*change
	if c.Intent.Suspended {
		ch = append(ch, e.lowerLocked(a, "its task "+c.Intent.TaskID+" was suspended after out-of-scope calls", now))
	}
	if j := c.Intent.Judge; j != nil && e.cfg.JudgeBelow > 0 && j.Fallback == "" && j.Score < e.cfg.JudgeBelow {
		ch = append(ch, e.lowerLocked(a, fmt.Sprintf("the intent judge scored a call of %s %.2f (below %.2f)", c.Target.Name, j.Score, e.cfg.JudgeBelow), now))
	}
	if score >= e.cfg.FlagScore {
		a.suspicion += score
		a.clean = 0
		if len(a.why) < 4 {
			a.why = append(a.why, firstReason(c, score, reasons))
		}
		if a.suspicion >= e.cfg.DropAt {
			ch = append(ch, e.lowerLocked(a, "sustained deviation from its baseline: "+joinReasons(a.why), now))
		}
	} else {
		a.suspicion *= suspicionKeep
		if a.suspicion < 0.05 {
			a.suspicion, a.why = 0, a.why[:0]
		}
	}
	return ch
}

func firstReason(c *mediator.Call, score float64, reasons []string) string {
	if len(reasons) > 0 {
		return reasons[0]
	}
	return fmt.Sprintf("%s scored %.2f", c.Target.Name, score)
}

func joinReasons(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += "; "
		}
		out += r
	}
	return out
}

// suspicionKeep is what is left of an agent's suspicion after a call that
// is not flagged: deviation within a few calls adds up, isolated deviation
// fades.
const suspicionKeep = 0.85

// lowerLocked lowers a's trust one level (not below none) and clears its
// suspicion.
func (e *Engine) lowerLocked(a *agent, reason string, now time.Time) *change {
	a.suspicion, a.why, a.clean = 0, a.why[:0], 0
	if a.trust == mediator.TrustNone {
		return nil
	}
	return e.setLocked(a, mediator.TrustOfRank(a.trust.Rank()-1), reason, now)
}

// setLocked moves a to level and returns the change to record.
func (e *Engine) setLocked(a *agent, level mediator.TrustLevel, reason string, now time.Time) *change {
	if level == a.trust {
		return nil
	}
	ch := &change{seq: e.seq.Add(1), from: a.trust, state: mediator.TrustState{AgentID: a.id, Level: level, Ceiling: a.ceiling,
		Reason: reason, By: "mediator", Changed: now}}
	a.trust, a.changed, a.reason, a.clean, a.unsaved = level, now, reason, 0, true
	return ch
}

// Observe learns from a finished call: its outcome, its size, and (when it
// was not flagged) its features.
func (e *Engine) Observe(ctx context.Context, c *mediator.Call, outcome mediator.Outcome, resultBytes int) {
	if c.Agent == nil || c.Target == nil {
		return
	}
	now := c.Started
	if now.IsZero() {
		now = e.now()
	}
	a := e.agentFor(c.Agent)
	a.mu.Lock()
	var bits uint8
	switch outcome {
	case mediator.OutcomeDenied:
		if !awaitingHuman(c) {
			bits |= recDenied
		}
	case mediator.OutcomeFailed, mediator.OutcomeToolError:
		bits |= recFailed
	}
	if c.Intent.Verdict == mediator.IntentOutOfScope {
		bits |= recOutOfScope
	}
	a.recent[a.recentN%recentCalls] = bits
	a.recentN++
	var ch []*change
	flagged := c.Behaviour == nil || c.Behaviour.Score >= e.cfg.FlagScore
	if p := a.scoring(); p.base.Learned && resultBytes > 0 {
		if hi, ok := p.base.Result.quantile(0.99); ok && p.base.Result.total() >= 20 &&
			float64(resultBytes) > max(10*hi, hi+256<<10) {
			flagged = true
			a.suspicion += 0.6
			a.why = append(a.why[:min(len(a.why), 3)], fmt.Sprintf("result of %s from %s (usual at most %s)",
				formatBytes(float64(resultBytes)), c.Target.Name, formatBytes(hi)))
			if a.suspicion >= e.cfg.DropAt {
				ch = append(ch, e.lowerLocked(a, "sustained deviation from its baseline: "+joinReasons(a.why), now))
			}
		}
	}
	if n := a.countRecent(recDenied, 10); n >= e.cfg.DenialsToDrop {
		ch = append(ch, e.lowerLocked(a, fmt.Sprintf("%d of its last 10 calls were denied", n), now))
		a.clearRecent(recDenied)
	}
	if n := a.countRecent(recFailed, recentCalls); n >= e.cfg.ErrorsToDrop {
		ch = append(ch, e.lowerLocked(a, fmt.Sprintf("%d of its last %d calls failed upstream", n, recentCalls), now))
		a.clearRecent(recFailed)
	}
	if !flagged && outcome == mediator.OutcomeDenied {
		for _, p := range a.profiles {
			if p != nil && p.corrupt == "" && !p.base.Frozen {
				p.base.Denied++
				p.delta.Denied++
			}
		}
	}
	if !flagged && outcome != mediator.OutcomeDenied {
		e.teachLocked(a, c, bits, resultBytes, now)
		a.clean++
		ceil := e.ceilingOf(c.Agent, a)
		if a.clean >= e.cfg.RecoverCalls && a.trust.Rank() < ceil.Rank() && a.suspicion == 0 &&
			a.scoring().base.Learned && now.Sub(a.changed) >= e.cfg.RecoverAfter {
			ch = append(ch, e.setLocked(a, mediator.TrustOfRank(a.trust.Rank()+1),
				fmt.Sprintf("%d clean calls over %s since its last change", a.clean, now.Sub(a.changed).Round(time.Second)), now))
		}
	}
	a.mu.Unlock()
	e.apply(ctx, c.Agent.ID, ch)
}

// awaitingHuman reports whether a refused call is only waiting for an
// approver: policy asked for a human and none has decided yet. That is
// the system working, not the agent misbehaving, so it is no denial.
func awaitingHuman(c *mediator.Call) bool {
	return c.Decision.Effect == mediator.EffectApprove && c.Verdict == nil
}

func (a *agent) countRecent(bit uint8, last int) int {
	n := 0
	for i := 1; i <= min(last, a.recentN, recentCalls); i++ {
		if a.recent[(a.recentN-i+recentCalls*2)%recentCalls]&bit != 0 {
			n++
		}
	}
	return n
}

func (a *agent) clearRecent(bit uint8) {
	for i := range a.recent {
		a.recent[i] &^= bit
	}
}

// scoring returns the profile calls are scored against: the version's
// once it has learned, else the agent's.
func (a *agent) scoring() *profile {
	if v := a.profiles[1]; v != nil && (v.base.Learned || !a.profiles[0].base.Learned) {
		return v
	}
	return a.profiles[0]
}

// teachLocked adds the call to the agent's baselines, within the
// per-minute cap.
func (e *Engine) teachLocked(a *agent, c *mediator.Call, bits uint8, resultBytes int, now time.Time) {
	minute := now.Unix() / 60
	if minute != a.teachMin {
		a.teachMin, a.teachCount = minute, 0
	}
	if a.teachCount >= e.cfg.TeachPerMinute {
		return
	}
	a.teachCount++
	r60, r10 := a.rates(now)
	pace, paceOK := a.pace(now)
	local := now.In(e.cfg.Zone)
	for _, p := range a.profiles {
		if p == nil || p.corrupt != "" || p.base.Frozen {
			continue
		}
		bs := []*Baseline{p.base, p.delta}
		if e.store == nil {
			bs = bs[:1] // nothing to write: no delta to keep
		}
		for _, b := range bs {
			b.learn(c, bits, resultBytes, a.prevTool, r60, r10, local)
			if paceOK {
				b.Pace.add(pace, 1)
			}
			if a.fanTool == c.Target.Name && a.fanN > 0 {
				h := b.Fan[a.fanTool]
				if h == nil && len(b.Fan) < maxFanTool {
					h = new(hist)
					b.Fan[a.fanTool] = h
				}
				if h != nil {
					h.add(float64(a.fanN), 1)
				}
			}
		}
		if !p.base.Learned && p.base.Seen >= int64(e.cfg.LearnCalls) && now.Sub(p.base.First) >= e.cfg.LearnFor {
			p.base.Learned, p.delta.Learned = true, true
		}
		if p.base.Learned {
			p.base.fade(e.cfg.Keep)
		}
	}
}

// learn adds one call to b.
func (b *Baseline) learn(c *mediator.Call, bits uint8, resultBytes int, prev string, r60, r10 float64, local time.Time) {
	b.Calls++
	b.Seen++
	if b.First.IsZero() || local.Before(b.First) {
		b.First = local.UTC()
	}
	if local.After(b.Last) {
		b.Last = local.UTC()
	}
	t := c.Target
	if _, ok := b.Tools[t.Name]; ok || len(b.Tools) < maxTools {
		b.Tools[t.Name]++
	}
	if prev != "" {
		k := prev + "\x00" + t.Name
		if _, ok := b.Trans[k]; ok || len(b.Trans) < maxTrans {
			b.Trans[k]++
		}
	}
	if _, ok := b.Servers[t.Server]; ok || len(b.Servers) < maxServers {
		b.Servers[t.Server]++
	}
	var buf [maxPlacesPerCall]string
	for _, pl := range callPlaces(c, buf[:0]) {
		k := t.Name + "\x00" + pl
		if _, ok := b.Places[k]; ok || len(b.Places) < maxPlaces {
			b.Places[k]++
		}
	}
	b.Hours[local.Hour()]++
	b.Days[local.Weekday()]++
	b.Rate.add(r60, 1)
	b.Burst.add(r10, 1)
	b.Class[classIndex(t.DataClass)]++
	b.Risk[riskIndex(t.Risk)]++
	if t.Hints.Destructive != nil && *t.Hints.Destructive {
		b.Destructive++
	}
	b.Result.add(float64(resultBytes), 1)
	if bits&recFailed != 0 {
		b.Errors++
	}
	if bits&recOutOfScope != 0 {
		b.OutOfScope++
	}
}

// rates returns the agent's calls in the last minute and in the last ten
// seconds (scaled to a minute).
func (a *agent) rates(now time.Time) (float64, float64) {
	n := now.UnixNano()
	var r60, r10 float64
	// Newest first, until a call a minute old: after the clock went
	// back, older entries may look newer, and are not counted.
	for i := 1; i <= min(a.timesHead, rateRing); i++ {
		t := a.times[(a.timesHead-i)%rateRing]
		if t > n {
			continue // ahead of a clock that went back
		}
		d := n - t
		if d >= int64(time.Minute) {
			break
		}
		r60++
		if d < int64(10*time.Second) {
			r10++
		}
	}
	return r60, r10 * 6
}

// pace returns how long the agent's last three calls took (the current
// one, at now, included), in 10 ms units; false when there are not three
// or the clock went back.
func (a *agent) pace(now time.Time) (float64, bool) {
	if a.timesHead < 3 {
		return 0, false
	}
	t := a.times[(a.timesHead-3)%rateRing]
	d := now.UnixNano() - t
	if t == 0 || d < 0 {
		return 0, false
	}
	return float64(d / int64(10*time.Millisecond)), true
}

// apply records and persists changes made under an agent's lock.
func (e *Engine) apply(ctx context.Context, agentID string, chs []*change) {
	for _, ch := range chs {
		if ch == nil {
			continue
		}
		e.log.Info("agent trust changed", "agent", agentID, "from", ch.from, "to", ch.state.Level, "reason", ch.state.Reason)
		e.persist(ctx, ch)
	}
}

// persist records ch in the audit chain and writes it to the store. What
// fails is kept and retried by Sync: a lowered level applies in memory at
// once and is never dropped.
func (e *Engine) persist(ctx context.Context, ch *change) {
	e.persistMu.Lock()
	defer e.persistMu.Unlock()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if !ch.recorded {
		if e.rec == nil {
			ch.recorded = true
		} else if err := e.rec.Record(wctx, trustRecord(ch)); err != nil {
			e.log.Error("behaviour: recording a trust change failed; retrying", "agent", ch.state.AgentID, "err", err)
		} else {
			ch.recorded = true
		}
	}
	if !ch.stored {
		switch {
		case e.store == nil:
			ch.stored = true
		case ch.seq < e.lastStored[ch.state.AgentID]:
			ch.stored = true // a later change of the agent is stored: this one must not replace it
		default:
			if st, err := e.store.SetTrust(wctx, ch.state); err != nil {
				e.log.Error("behaviour: storing a trust change failed; it applies in memory and is retried", "agent", ch.state.AgentID, "err", err)
			} else {
				ch.stored = true
				e.lastStored[ch.state.AgentID] = ch.seq
				e.stored(st)
			}
		}
	}
	if !ch.recorded || !ch.stored {
		e.mu.Lock()
		if !containsChange(e.pending, ch) {
			e.pending = append(e.pending, ch)
		}
		e.mu.Unlock()
	}
}

func containsChange(list []*change, ch *change) bool {
	for _, c := range list {
		if c == ch {
			return true
		}
	}
	return false
}

// stored notes a state the store accepted.
func (e *Engine) stored(st mediator.TrustState) {
	e.mu.Lock()
	e.trusts[st.AgentID] = st
	el, ok := e.agents[st.AgentID]
	e.mu.Unlock()
	if ok {
		a := el.Value.(*agent)
		a.mu.Lock()
		if st.Rev > a.trustRev {
			a.trustRev = st.Rev
		}
		if a.trust == st.Level {
			a.unsaved = false
		}
		a.mu.Unlock()
	}
}

func (e *Engine) retryPending(ctx context.Context) {
	e.mu.Lock()
	list := e.pending
	e.pending = nil
	e.mu.Unlock()
	for _, ch := range list {
		e.persist(ctx, ch)
	}
}

// trustRecord is the audit record of a trust change.
func trustRecord(ch *change) mediator.ChainRecord {
	st := ch.state
	verb := "lowered"
	if st.Level.Rank() > ch.from.Rank() {
		verb = "raised"
	}
	return mediator.ChainRecord{Time: st.Changed, AgentID: st.AgentID, Method: TrustChangeMethod,
		Kind: mediator.KindProtocol, Name: fmt.Sprintf("trust %s → %s", ch.from, st.Level), Outcome: mediator.OutcomeOK,
		Decision: mediator.Decision{Effect: mediator.EffectAllow, Rule: TrustRule,
			Reason: fmt.Sprintf("trust %s from %s to %s by %s: %s", verb, ch.from, st.Level, st.By, st.Reason)},
		Behaviour: &mediator.Behaviour{Trust: st.Level}}
}

// Trust returns the trust level this process holds for agentID, and false
// when it knows nothing of the agent (its level is then StartTrust, or
// what the store says once synced).
func (e *Engine) Trust(agentID string) (mediator.TrustLevel, bool) {
	e.mu.Lock()
	el, ok := e.agents[agentID]
	st, known := e.trusts[agentID]
	e.mu.Unlock()
	if ok {
		a := el.Value.(*agent)
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.trust, true
	}
	if known {
		return st.Level, true
	}
	return e.cfg.StartTrust, false
}

// TrustCounts returns how many agents this process knows at each trust
// level (metrics): those with a profile in memory, and those whose level
// the store holds.
func (e *Engine) TrustCounts() map[mediator.TrustLevel]int {
	e.mu.Lock()
	levels := make(map[string]mediator.TrustLevel, len(e.agents)+len(e.trusts))
	for id, st := range e.trusts {
		levels[id] = st.Level
	}
	els := make([]*agent, 0, len(e.agents))
	for _, el := range e.agents {
		els = append(els, el.Value.(*agent))
	}
	e.mu.Unlock()
	for _, a := range els {
		a.mu.Lock()
		levels[a.id] = a.trust
		a.mu.Unlock()
	}
	out := map[mediator.TrustLevel]int{}
	for _, l := range levels {
		out[l]++
	}
	return out
}
