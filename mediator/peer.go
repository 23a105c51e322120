package mediator

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// peer is the agent side of one call, backed by the mcp-go session in ctx.
type peer struct {
	srv     *server.MCPServer
	ctx     context.Context
	session string
}

var _ Peer = (*peer)(nil)

func (p *peer) SessionID() string { return p.session }

func (p *peer) Notify(_ context.Context, method string, params map[string]any) error {
	// The call's own context carries the session; notifications for a call
	// that has ended are dropped.
	if p.ctx.Err() != nil {
		return p.ctx.Err()
	}
	return p.srv.SendNotificationToClient(p.ctx, method, params)
}

func (p *peer) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	if !p.clientCan(func(c mcp.ClientCapabilities) bool { return c.Sampling != nil }) {
		return nil, fmt.Errorf("%w: the agent's client does not support sampling", ErrNotSupported)
	}
	//lint:ignore SA1019 sampling is deprecated in 2026-07-28 but still how 2025-11-25 upstreams ask; we relay what they send
	return p.srv.RequestSampling(mergeCancel(p.ctx, ctx), req)
}

func (p *peer) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if !p.clientCan(func(c mcp.ClientCapabilities) bool { return c.Elicitation != nil }) {
		return nil, fmt.Errorf("%w: the agent's client does not support elicitation", ErrNotSupported)
	}
	return p.srv.RequestElicitation(mergeCancel(p.ctx, ctx), req)
}

func (p *peer) clientCan(has func(mcp.ClientCapabilities) bool) bool {
	cs, ok := server.ClientSessionFromContext(p.ctx).(server.SessionWithClientInfo)
	return ok && has(cs.GetClientCapabilities())
}

// mergeCancel returns base (which holds the session) cancelled also when
// other is done.
func mergeCancel(base, other context.Context) context.Context {
	ctx, cancel := context.WithCancel(base)
	stop := context.AfterFunc(other, cancel)
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}
