package behaviour

import (
	"context"
	"fmt"
)

// pageSize is how many rows one poll reads.
const pageSize = 1000

// flush writes what each agent learned since the last flush, merging it
// into the stored baseline in one transaction, so that processes sharing
// a database add up what they learn instead of overwriting each other.
func (e *Engine) flush(ctx context.Context) {
	e.mu.Lock()
	var all []*agent
	for el := e.lru.Front(); el != nil; el = el.Next() {
		all = append(all, el.Value.(*agent))
	}
	orphans := e.orphans
	e.orphans = nil
	e.mu.Unlock()
	for i, o := range orphans {
		if _, _, err := e.mergeDelta(ctx, o.agentID, o.p, o.delta); err != nil {
			e.log.Warn("behaviour: writing the baseline of an evicted agent failed; retrying", "profile", o.p.key, "err", err)
			e.mu.Lock()
			e.orphans = append(orphans[i:], e.orphans...)
			if n := len(e.orphans) - e.cfg.MaxAgents; n > 0 {
				e.orphans = e.orphans[n:]
			}
			e.mu.Unlock()
			break
		}
	}
	for _, a := range all {
		for i := range a.profiles {
			a.mu.Lock()
			p := a.profiles[i]
			if p == nil || p.delta.empty() || p.corrupt != "" {
				a.mu.Unlock()
				continue
			}
			delta := p.delta
			p.delta = newBaseline()
			a.mu.Unlock()
			merged, rev, err := e.mergeDelta(ctx, a.id, p, delta)
			a.mu.Lock()
			if a.profiles[i] != p {
				a.mu.Unlock()
				continue // replaced by another version meanwhile
			}
			if err != nil {
				p.delta.merge(delta) // kept for the next flush
				a.mu.Unlock()
				e.log.Warn("behaviour: writing a baseline failed; retrying", "profile", p.key, "err", err)
				continue
			}
			p.rev, p.loaded = rev, true
			merged.merge(p.delta) // what was learned while writing
			if merged.Learned {
				merged.fade(e.cfg.Keep)
			}
			p.base = merged
			a.mu.Unlock()
		}
	}
}

func (e *Engine) mergeDelta(ctx context.Context, agentID string, p *profile, delta *Baseline) (*Baseline, int64, error) {
	var merged *Baseline
	row, err := e.store.MergeProfile(ctx, p.key, agentID, p.version, func(stored []byte) ([]byte, error) {
		b := newBaseline()
		if stored != nil {
			var err error
			if b, err = decodeBaseline(stored); err != nil {
				return nil, err // never overwrite a row we cannot read
			}
		}
		b.merge(delta)
		if b.Learned {
			b.fade(e.cfg.Keep)
		}
		merged = b
		return b.encode()
	})
	if err != nil {
		return nil, 0, err
	}
	return merged.clone(), row.Rev, nil
}

// pollTrust adopts trust states other processes (or operators) stored.
func (e *Engine) pollTrust(ctx context.Context) error {
	for {
		e.mu.Lock()
		after := e.trustRev
		e.mu.Unlock()
		rows, err := e.store.TrustSince(ctx, after, pageSize)
		if err != nil {
			return fmt.Errorf("read trust levels: %w", err)
		}
		for _, st := range rows {
			e.mu.Lock()
			if !e.pendingStoreLocked(st.AgentID) {
				// (a change of ours not yet stored stays what counts)
				e.trusts[st.AgentID] = st
			}
			if st.Rev > e.trustRev {
				e.trustRev = st.Rev
			}
			el, ok := e.agents[st.AgentID]
			e.mu.Unlock()
			if !ok {
				continue
			}
			a := el.Value.(*agent)
			a.mu.Lock()
			if st.Rev > a.trustRev && !a.unsaved {
				if a.trust != st.Level {
					a.clean, a.suspicion, a.why = 0, 0, a.why[:0]
				}
				a.trust, a.ceiling, a.trustRev, a.changed, a.reason = st.Level, st.Ceiling, st.Rev, st.Changed, st.Reason
			}
			a.mu.Unlock()
		}
		if len(rows) < pageSize {
			return nil
		}
	}
}

// pollProfiles adopts baselines other processes stored. At load it also
// takes baselines of agents not yet in memory, up to MaxAgents.
func (e *Engine) pollProfiles(ctx context.Context, load bool) error {
	for {
		e.mu.Lock()
		after := e.profRev
		e.mu.Unlock()
		rows, err := e.store.ProfilesSince(ctx, after, pageSize)
		if err != nil {
			return fmt.Errorf("read baselines: %w", err)
		}
		for _, r := range rows {
			e.mu.Lock()
			if r.Rev > e.profRev {
				e.profRev = r.Rev
			}
			el, ok := e.agents[r.AgentID]
			if !ok && load && e.lru.Len() < e.cfg.MaxAgents {
				a := &agent{id: r.AgentID, trust: e.cfg.StartTrust, windows: map[string]*fanWindow{}}
				if st, ok := e.trusts[r.AgentID]; ok {
					a.trust, a.ceiling, a.trustRev, a.changed, a.reason = st.Level, st.Ceiling, st.Rev, st.Changed, st.Reason
				}
				a.profiles[0] = &profile{key: r.AgentID, base: newBaseline(), delta: newBaseline()}
				el = e.lru.PushBack(a)
				e.agents[r.AgentID] = el
				ok = true
			}
			e.mu.Unlock()
			if ok {
				e.adopt(el.Value.(*agent), r.Key, r.Version, r.Data, r.Rev)
			}
		}
		if len(rows) < pageSize {
			return nil
		}
	}
}

// adopt replaces a profile's base with a stored row (plus what this
// process learned and has not written).
func (e *Engine) adopt(a *agent, key, version string, data []byte, rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var p *profile
	for _, q := range a.profiles {
		if q != nil && q.key == key {
			p = q
		}
	}
	if p == nil || (p.loaded && rev <= p.rev) {
		return
	}
	p.loaded, p.rev = true, rev
	b, err := decodeBaseline(data)
	if err != nil {
		p.corrupt = err.Error()
		e.log.Error("behaviour: a stored baseline cannot be read; the agent's trust is capped", "profile", key,
			"fallback", e.cfg.FallbackTrust, "err", err)
		return
	}
	p.corrupt = ""
	b.merge(p.delta)
	p.base = b
}

// loadProfile reads one stored baseline for an agent seen for the first
// time since start (or since eviction).
func (e *Engine) loadProfile(ctx context.Context, agentID, key string) {
	if e.store == nil {
		return
	}
	row, ok, err := e.store.Profile(ctx, key)
	if err != nil {
		e.log.Warn("behaviour: loading a baseline failed", "profile", key, "err", err)
		return
	}
	e.mu.Lock()
	el, present := e.agents[agentID]
	e.mu.Unlock()
	if !present {
		return
	}
	a := el.Value.(*agent)
	if !ok {
		a.mu.Lock()
		for _, p := range a.profiles {
			if p != nil && p.key == key {
				p.loaded = true
			}
		}
		a.mu.Unlock()
		return
	}
	e.adopt(a, row.Key, row.Version, row.Data, row.Rev)
}

// pendingStoreLocked reports whether a trust change of agentID waits to be
// stored.
func (e *Engine) pendingStoreLocked(agentID string) bool {
	for _, ch := range e.pending {
		if !ch.stored && ch.state.AgentID == agentID {
			return true
		}
	}
	return false
}
