package approvals

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

type (
	mcpCreate       = mcp.CreateMessageRequest
	mcpCreateResult = mcp.CreateMessageResult
	mcpElicit       = mcp.ElicitationRequest
	mcpElicitResult = mcp.ElicitationResult
)

// memStore is an in-memory mediator.ApprovalStore with the store's rules.
type memStore struct {
	mu     sync.Mutex
	rev    int64
	list   []*mediator.Approval
	grants []mediator.ApprovalGrant
	n      int
}

func (m *memStore) bump(a *mediator.Approval) { m.rev++; a.Rev = m.rev }

func (m *memStore) OpenApproval(_ context.Context, a mediator.Approval) (mediator.Approval, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, old := range slices.Backward(m.list) {
		if old.Key == a.Key && old.Delivered.IsZero() {
			return *old, false, nil
		}
	}
	m.n++
	a.ID, a.State, a.Required = fmt.Sprintf("apr_%d", m.n), mediator.ApprovalPending, max(a.Required, 1)
	m.bump(&a)
	m.list = append(m.list, &a)
	return a, true, nil
}

func (m *memStore) get(id string) (*mediator.Approval, error) {
	for _, a := range m.list {
		if a.ID == id {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w %q", mediator.ErrUnknownApproval, id)
}

func (m *memStore) Approval(_ context.Context, id string) (mediator.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.get(id)
	if err != nil {
		return mediator.Approval{}, err
	}
	return *a, nil
}

func (m *memStore) UndeliveredApproval(ctx context.Context, key string, now time.Time) (mediator.Approval, bool, error) {
	_, _ = m.ExpireApprovals(ctx, now)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range slices.Backward(m.list) {
		if a.Key == key && a.Delivered.IsZero() {
			return *a, true, nil
		}
	}
	return mediator.Approval{}, false, nil
}

func (m *memStore) DecideApproval(_ context.Context, id string, d mediator.ApprovalDecision) (mediator.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.get(id)
	switch {
	case err != nil:
		return mediator.Approval{}, err
	case a.State != mediator.ApprovalPending:
		return *a, mediator.ErrApprovalDecided
	case !d.At.Before(a.Expires):
		a.State = mediator.ApprovalExpired
		m.bump(a)
		return *a, mediator.ErrApprovalExpired
	case !d.Approve && d.Reason == "":
		return *a, mediator.ErrInvalidRequest
	}
	for _, old := range a.Decisions {
		if old.Approver == d.Approver {
			return *a, mediator.ErrApprovalForbidden
		}
	}
	a.Decisions = append(a.Decisions, d)
	if !d.Approve {
		a.State, a.Decided = mediator.ApprovalDenied, d.At
	} else if len(a.Decisions) >= a.Required {
		a.State, a.Decided = mediator.ApprovalApproved, d.At
	}
	m.bump(a)
	return *a, nil
}

func (m *memStore) NoteApprovalAsker(_ context.Context, id string, ask mediator.ApprovalAsker) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.get(id)
	if err != nil {
		return err
	}
	if !a.Final() && mediator.AddAsker(a, ask) {
		m.bump(a)
	}
	return nil
}

func (m *memStore) DeliverApproval(_ context.Context, id, callID string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.get(id)
	if err != nil || a.State == mediator.ApprovalPending || !a.Delivered.IsZero() {
		return false, err
	}
	a.Delivered, a.DeliveredTo = now, callID
	m.bump(a)
	return true, nil
}

func (m *memStore) ExpireApprovals(_ context.Context, now time.Time) ([]mediator.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []mediator.Approval
	for _, a := range m.list {
		if a.State == mediator.ApprovalPending && !now.Before(a.Expires) {
			a.State = mediator.ApprovalExpired
			m.bump(a)
			out = append(out, *a)
		}
	}
	return out, nil
}

func (m *memStore) Approvals(_ context.Context, f mediator.ApprovalFilter) ([]mediator.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []mediator.Approval
	for _, a := range slices.Backward(m.list) {
		if a.Rev > f.AfterRev && (f.State == "" || a.State == f.State) {
			out = append(out, *a)
		}
	}
	return out, nil
}

func (m *memStore) LastApprovalRev(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev, nil
}

func (m *memStore) AddGrant(_ context.Context, g mediator.ApprovalGrant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g.ID = fmt.Sprintf("grt_%d", len(m.grants)+1)
	m.grants = append(m.grants, g)
	return nil
}

func (m *memStore) MatchingGrants(_ context.Context, agent, task, session, tool string, now time.Time) ([]mediator.ApprovalGrant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []mediator.ApprovalGrant
	for _, g := range m.grants {
		if g.AgentID == agent && g.TaskID == task && g.SessionID == session && g.Tool == tool && now.Before(g.Expires) {
			out = append(out, g)
		}
	}
	return out, nil
}

// fakePeer records notifications.
type fakePeer struct {
	mu       sync.Mutex
	sent     []map[string]any
	elicited []mcpElicit
}

func (p *fakePeer) Notify(_ context.Context, _ string, params map[string]any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, params)
	return nil
}
func (p *fakePeer) count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.sent) }
func (p *fakePeer) CreateMessage(context.Context, mcpCreate) (*mcpCreateResult, error) {
	return nil, mediator.ErrNotSupported
}
func (p *fakePeer) Elicit(_ context.Context, req mcpElicit) (*mcpElicitResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.elicited = append(p.elicited, req)
	return nil, mediator.ErrNotSupported
}
func (p *fakePeer) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return nil, mediator.ErrNotSupported
}
func (p *fakePeer) SessionID() string                          { return "s1" }
func (p *fakePeer) ClientCapabilities() mcp.ClientCapabilities { return mcp.ClientCapabilities{} }
func (p *fakePeer) NotifySession(string, map[string]any) error { return mediator.ErrNotSupported }
