package mediator

import (
	"sync"
)

// DefaultMaxFlows bounds the sessions a FlowTracker remembers.
const DefaultMaxFlows = 100_000

// FlowTracker remembers what each session has touched (SessionFlow), in
// memory, for policy's r.session. It is bounded: past Max sessions the
// oldest half is forgotten. A session's flow only ever grows (taint is
// never cleared while the session lives). Safe for concurrent use.
type FlowTracker struct {
	Max int

	mu    sync.Mutex
	flows map[string]*flowEntry
	clock uint64
}

type flowEntry struct {
	flow SessionFlow
	used uint64
}

// NewFlowTracker returns a tracker of at most max sessions (0: default).
func NewFlowTracker(max int) *FlowTracker {
	if max <= 0 {
		max = DefaultMaxFlows
	}
	return &FlowTracker{Max: max, flows: map[string]*flowEntry{}}
}

// Get returns the flow of the session with the given key.
func (t *FlowTracker) Get(key string) SessionFlow {
	if t == nil || key == "" {
		return SessionFlow{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.flows[key]; ok {
		return e.flow
	}
	return SessionFlow{}
}

// Add merges what one call touched into its session's flow.
func (t *FlowTracker) Add(key string, f SessionFlow) SessionFlow {
	if t == nil || key == "" {
		return f
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clock++
	e, ok := t.flows[key]
	if !ok {
		if len(t.flows) >= t.Max {
			t.evictLocked()
		}
		e = &flowEntry{}
		t.flows[key] = e
	}
	e.used = t.clock
	e.flow.Tainted = e.flow.Tainted || f.Tainted
	e.flow.SecretsSeen = e.flow.SecretsSeen || f.SecretsSeen
	if ClassRank(f.MaxDataClass) > ClassRank(e.flow.MaxDataClass) {
		e.flow.MaxDataClass = f.MaxDataClass
	}
	return e.flow
}

// evictLocked forgets the least recently used half of the sessions.
func (t *FlowTracker) evictLocked() {
	cut := t.clock - uint64(len(t.flows)/2)
	for k, e := range t.flows {
		if e.used <= cut || len(t.flows) > t.Max {
			delete(t.flows, k)
		}
	}
}

// ClassRank orders data classes: unknown 0, public 1 … financial 5.
func ClassRank(d DataClass) int {
	switch d {
	case DataPublic:
		return 1
	case DataInternal:
		return 2
	case DataConfidential:
		return 3
	case DataPII:
		return 4
	case DataFinancial:
		return 5
	}
	return 0
}
