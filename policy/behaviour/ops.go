package behaviour

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// BaselineMethod is the method of the audit record of an operator's
// action on a baseline (reset, freeze, unfreeze).
const BaselineMethod = "mediator/baseline"

// ErrNoStore is returned by operator actions on an engine without a store.
var ErrNoStore = errors.New("behaviour: no store to act on")

// SetTrust sets an agent's trust level (and, when ceiling is not empty,
// its ceiling) by an operator's decision, recorded with by and reason.
// The level takes effect in every process sharing the store within a
// second.
func (e *Engine) SetTrust(ctx context.Context, agentID string, level, ceiling mediator.TrustLevel, by, reason string) (mediator.TrustState, error) {
	if agentID == "" || strings.TrimSpace(reason) == "" || by == "" {
		return mediator.TrustState{}, fmt.Errorf("%w: an agent id, who acts and a reason are required", mediator.ErrInvalidRequest)
	}
	if _, err := mediator.ParseTrustLevel(string(level)); err != nil {
		return mediator.TrustState{}, err
	}
	if ceiling != "" {
		if _, err := mediator.ParseTrustLevel(string(ceiling)); err != nil {
			return mediator.TrustState{}, err
		}
		if level.Rank() > ceiling.Rank() {
			return mediator.TrustState{}, fmt.Errorf("%w: level %s is above the ceiling %s", mediator.ErrInvalidRequest, level, ceiling)
		}
	}
	now := e.now()
	e.mu.Lock()
	from := e.cfg.StartTrust
	st, known := e.trusts[agentID]
	if known {
		from = st.Level
		if ceiling == "" {
			ceiling = st.Ceiling
		}
	}
	el, present := e.agents[agentID]
	e.mu.Unlock()
	ch := &change{seq: e.seq.Add(1), from: from, state: mediator.TrustState{AgentID: agentID, Level: level, Ceiling: ceiling,
		Reason: reason, By: by, Changed: now}}
	if present {
		a := el.Value.(*agent)
		a.mu.Lock()
		ch.from = a.trust
		a.trust, a.ceiling, a.changed, a.reason, a.clean, a.suspicion, a.why, a.unsaved = level, ceiling, now, reason, 0, 0, a.why[:0], true
		a.mu.Unlock()
	}
	e.persist(ctx, ch)
	if !ch.stored || !ch.recorded {
		return ch.state, fmt.Errorf("the trust change of %s applies in this process but was not yet stored or recorded; it is retried (see the log)", agentID)
	}
	return ch.state, nil
}

// BaselineAction is an operator's action on an agent's baselines.
type BaselineAction string

// The baseline actions.
const (
	// Reset forgets what was learned: the agent learns again from scratch.
	Reset BaselineAction = "reset"
	// Freeze stops learning: the baseline stays as it is.
	Freeze BaselineAction = "freeze"
	// Unfreeze resumes learning.
	Unfreeze BaselineAction = "unfreeze"
)

// ActOnBaseline applies action to every baseline of agentID (its own and
// its versions') in the store, and records it. Returns the keys changed.
func (e *Engine) ActOnBaseline(ctx context.Context, agentID string, action BaselineAction, by, reason string) ([]string, error) {
	if e.store == nil {
		return nil, ErrNoStore
	}
	if agentID == "" || by == "" || strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("%w: an agent id, who acts and a reason are required", mediator.ErrInvalidRequest)
	}
	rows, err := profilesOf(ctx, e.store, agentID)
	if err != nil {
		return nil, err
	}
	if action == Reset && len(rows) == 0 {
		rows = []mediator.ProfileRow{{Key: agentID, AgentID: agentID}}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: agent %q has no baseline yet", mediator.ErrInvalidRequest, agentID)
	}
	var keys []string
	for _, r := range rows {
		_, err := e.store.MergeProfile(ctx, r.Key, agentID, r.Version, func(stored []byte) ([]byte, error) {
			if action == Reset {
				return newBaseline().encode()
			}
			b, err := decodeBaseline(stored)
			if err != nil {
				return nil, fmt.Errorf("%w; reset it instead (mediator agent baseline reset %s)", err, agentID)
			}
			b.Frozen = action == Freeze
			return b.encode()
		})
		if err != nil {
			return keys, fmt.Errorf("%s baseline %s: %w", action, r.Key, err)
		}
		keys = append(keys, r.Key)
	}
	if e.rec != nil {
		rec := mediator.ChainRecord{Time: e.now(), AgentID: agentID, Method: BaselineMethod, Kind: mediator.KindProtocol,
			Name: "baseline " + string(action), Outcome: mediator.OutcomeOK, Decision: mediator.Decision{Effect: mediator.EffectAllow, Rule: TrustRule,
				Reason: fmt.Sprintf("baseline %s by %s (%s): %s", action, by, strings.Join(keys, ", "), reason)}}
		if err := e.rec.Record(ctx, rec); err != nil {
			return keys, fmt.Errorf("the baseline was changed but its audit record failed: %w", err)
		}
	}
	return keys, nil
}

func profilesOf(ctx context.Context, st mediator.BehaviourStore, agentID string) ([]mediator.ProfileRow, error) {
	var out []mediator.ProfileRow
	err := eachProfile(ctx, st, func(r mediator.ProfileRow) {
		if r.AgentID == agentID {
			out = append(out, r)
		}
	})
	return out, err
}

func eachProfile(ctx context.Context, st mediator.BehaviourStore, fn func(mediator.ProfileRow)) error {
	var after int64
	for {
		rows, err := st.ProfilesSince(ctx, after, pageSize)
		if err != nil {
			return fmt.Errorf("read baselines: %w", err)
		}
		for _, r := range rows {
			fn(r)
			after = r.Rev
		}
		if len(rows) < pageSize {
			return nil
		}
	}
}

// AgentSummary is what an operator sees of one agent.
type AgentSummary struct {
	ID       string              `json:"id"`
	Trust    mediator.TrustLevel `json:"trust"`
	Ceiling  mediator.TrustLevel `json:"ceiling,omitempty"`
	Changed  time.Time           `json:"changed,omitzero"`
	By       string              `json:"by,omitempty"`
	Reason   string              `json:"reason,omitempty"`
	Profiles []ProfileSummary    `json:"profiles,omitempty"`
}

// ProfileSummary describes one baseline in plain words.
type ProfileSummary struct {
	Key      string    `json:"key"`
	Version  string    `json:"version,omitempty"`
	Learning bool      `json:"learning"`
	Frozen   bool      `json:"frozen,omitempty"`
	Seen     int64     `json:"calls_seen"`
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	Updated  time.Time `json:"updated"`
	// Tools are the most used tools, with their share of calls.
	Tools   []ToolShare `json:"tools,omitempty"`
	Servers []string    `json:"servers,omitempty"`
	Hours   string      `json:"hours,omitempty"`
	Days    string      `json:"days,omitempty"`
	Rate    string      `json:"rate,omitempty"`
	// MaxClass and MaxRisk are the highest data class and risk it uses.
	MaxClass string `json:"max_data_class,omitempty"`
	MaxRisk  string `json:"max_risk,omitempty"`
	// DeniedPct, ErrorPct and OutOfScopePct are its usual rates.
	DeniedPct     float64 `json:"denied_pct"`
	ErrorPct      float64 `json:"error_pct"`
	OutOfScopePct float64 `json:"out_of_scope_pct"`
	// Corrupt says why the stored row cannot be read.
	Corrupt string `json:"corrupt,omitempty"`
	Bytes   int    `json:"bytes"`
}

// ToolShare is one tool of a baseline's mix.
type ToolShare struct {
	Tool  string  `json:"tool"`
	Share float64 `json:"share"`
}

// Summaries reads every agent with a stored trust state or baseline
// (agentID "" for all), sorted by id. startTrust is the level of an agent
// without a stored state.
func Summaries(ctx context.Context, st mediator.BehaviourStore, agentID string, startTrust mediator.TrustLevel) ([]AgentSummary, error) {
	byID := map[string]*AgentSummary{}
	get := func(id string) *AgentSummary {
		s, ok := byID[id]
		if !ok {
			s = &AgentSummary{ID: id, Trust: startTrust}
			byID[id] = s
		}
		return s
	}
	var after int64
	for {
		rows, err := st.TrustSince(ctx, after, pageSize)
		if err != nil {
			return nil, fmt.Errorf("read trust levels: %w", err)
		}
		for _, t := range rows {
			after = t.Rev
			if agentID != "" && t.AgentID != agentID {
				continue
			}
			s := get(t.AgentID)
			s.Trust, s.Ceiling, s.Changed, s.By, s.Reason = t.Level, t.Ceiling, t.Changed, t.By, t.Reason
		}
		if len(rows) < pageSize {
			break
		}
	}
	err := eachProfile(ctx, st, func(r mediator.ProfileRow) {
		if agentID != "" && r.AgentID != agentID {
			return
		}
		s := get(r.AgentID)
		s.Profiles = append(s.Profiles, summarize(r))
	})
	if err != nil {
		return nil, err
	}
	out := make([]AgentSummary, 0, len(byID))
	for _, s := range byID {
		slices.SortFunc(s.Profiles, func(a, b ProfileSummary) int { return cmp.Compare(a.Key, b.Key) })
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b AgentSummary) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func summarize(r mediator.ProfileRow) ProfileSummary {
	ps := ProfileSummary{Key: r.Key, Version: r.Version, Updated: r.Updated, Bytes: len(r.Data)}
	b, err := decodeBaseline(r.Data)
	if err != nil {
		ps.Corrupt = err.Error()
		return ps
	}
	ps.Learning, ps.Frozen, ps.Seen, ps.First, ps.Last = !b.Learned, b.Frozen, b.Seen, b.First, b.Last
	if b.Calls <= 0 {
		return ps
	}
	for t, w := range b.Tools {
		ps.Tools = append(ps.Tools, ToolShare{Tool: t, Share: w / b.Calls})
	}
	slices.SortFunc(ps.Tools, func(a, b ToolShare) int { return cmp.Or(cmp.Compare(b.Share, a.Share), cmp.Compare(a.Tool, b.Tool)) })
	ps.Tools = ps.Tools[:min(len(ps.Tools), 8)]
	for s := range b.Servers {
		ps.Servers = append(ps.Servers, s)
	}
	slices.Sort(ps.Servers)
	ps.Hours, ps.Days = activeHours(b), activeDays(b)
	if lo, ok := b.Rate.lowQuantile(0.05); ok {
		hi, _ := b.Rate.quantile(0.95)
		ps.Rate = fmt.Sprintf("%.0f–%.0f calls/min", lo, hi)
	}
	if top := topLevel(b.Class[:]); top > 0 {
		ps.MaxClass = classNames[top]
	}
	if top := topLevel(b.Risk[:]); top > 0 {
		ps.MaxRisk = riskNames[top]
	}
	ps.DeniedPct, ps.ErrorPct, ps.OutOfScopePct = 100*b.Denied/b.Calls, 100*b.Errors/b.Calls, 100*b.OutOfScope/b.Calls
	return ps
}
