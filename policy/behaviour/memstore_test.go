package behaviour

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/mcp-mediator/mediator/mediator"
)

// memStore is an in-memory mediator.BehaviourStore with fault injection,
// shared by engines to stand for processes sharing a database.
type memStore struct {
	mu       sync.Mutex
	rev      int64
	profiles map[string]mediator.ProfileRow
	trusts   map[string]mediator.TrustState
	// failSetTrust makes SetTrust fail (a store that cannot persist).
	failSetTrust bool
	setTrustErrs int
}

var errDown = errors.New("store is down")

func newMemStore() *memStore {
	return &memStore{profiles: map[string]mediator.ProfileRow{}, trusts: map[string]mediator.TrustState{}}
}

func (m *memStore) MergeProfile(_ context.Context, key, agentID, version string, merge func([]byte) ([]byte, error)) (mediator.ProfileRow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var stored []byte
	if r, ok := m.profiles[key]; ok {
		stored = r.Data
	}
	data, err := merge(stored)
	if err != nil {
		return mediator.ProfileRow{}, err
	}
	m.rev++
	r := mediator.ProfileRow{Key: key, AgentID: agentID, Version: version, Data: data, Rev: m.rev}
	m.profiles[key] = r
	return r, nil
}

func (m *memStore) Profile(_ context.Context, key string) (mediator.ProfileRow, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.profiles[key]
	return r, ok, nil
}

func (m *memStore) ProfilesSince(_ context.Context, after int64, limit int) ([]mediator.ProfileRow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []mediator.ProfileRow
	for _, r := range m.profiles {
		if r.Rev > after {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b mediator.ProfileRow) int { return int(a.Rev - b.Rev) })
	return out[:min(len(out), limit)], nil
}

func (m *memStore) SetTrust(_ context.Context, t mediator.TrustState) (mediator.TrustState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSetTrust {
		m.setTrustErrs++
		return mediator.TrustState{}, errDown
	}
	m.rev++
	t.Rev = m.rev
	m.trusts[t.AgentID] = t
	return t, nil
}

func (m *memStore) TrustSince(_ context.Context, after int64, limit int) ([]mediator.TrustState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []mediator.TrustState
	for _, t := range m.trusts {
		if t.Rev > after {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b mediator.TrustState) int { return int(a.Rev - b.Rev) })
	return out[:min(len(out), limit)], nil
}

// corrupt stores data that does not decode as the profile of key.
func (m *memStore) corrupt(key, agentID string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	m.profiles[key] = mediator.ProfileRow{Key: key, AgentID: agentID, Data: data, Rev: m.rev}
}

func (m *memStore) trust(agentID string) (mediator.TrustState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.trusts[agentID]
	return t, ok
}

func (m *memStore) setFail(v bool) {
	m.mu.Lock()
	m.failSetTrust = v
	m.mu.Unlock()
}
