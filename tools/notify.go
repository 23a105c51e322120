package tools

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

const (
	// eventQueue bounds the notifications waiting to be delivered to agents
	// per connection; beyond it they are dropped.
	eventQueue = 256
	// notifyTimeout bounds one delivery to an agent.
	notifyTimeout = 5 * time.Second
	// flushWait bounds how long a call's result waits for the delivery of
	// the notifications the upstream sent before it.
	flushWait = 2 * time.Second
)

// callRec is a call in flight on an upstream.
type callRec struct {
	id   uint64
	peer mediator.Peer   // nil when the caller set none
	ctx  context.Context // the call's context; guarded by upstream.mu
}

type callRecKey struct{}

func withCallRec(ctx context.Context, rec *callRec) context.Context {
	return context.WithValue(ctx, callRecKey{}, rec)
}

func callRecFrom(ctx context.Context) *callRec {
	rec, _ := ctx.Value(callRecKey{}).(*callRec)
	return rec
}

// begin registers a call in flight; it fails while the upstream is being
// removed.
func (u *upstream) begin(ctx context.Context) (*callRec, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.draining {
		return nil, fmt.Errorf("%w: upstream %q is being removed", mediator.ErrUpstreamUnavailable, u.name)
	}
	u.nextCall++
	rec := &callRec{id: u.nextCall, peer: mediator.PeerFromContext(ctx), ctx: ctx}
	u.calls[rec.id] = rec
	u.inflight.Add(1)
	return rec, nil
}

// end unregisters a call.
func (u *upstream) end(rec *callRec) {
	u.mu.Lock()
	delete(u.calls, rec.id)
	u.mu.Unlock()
	u.inflight.Done()
}

// route maps a progress token the registry gave an upstream back to the
// agent that asked for progress.
type route struct {
	u     *upstream
	peer  mediator.Peer
	token mcp.ProgressToken // the agent's own token
	ctx   context.Context
}

// forwardMeta returns the _meta to send upstream: the agent's, with its
// progress token replaced by a registry-unique one routed back to the
// calling peer (or dropped when there is no peer to route to). release
// forgets the route.
func (r *Registry) forwardMeta(u *upstream, rec *callRec, meta *mcp.Meta) (map[string]any, func()) {
	if meta == nil {
		return nil, func() {}
	}
	out := maps.Clone(meta.AdditionalFields)
	if out == nil {
		out = map[string]any{}
	}
	token := meta.ProgressToken
	if token == nil {
		token = out["progressToken"]
	}
	delete(out, "progressToken")
	release := func() {}
	if token != nil && rec.peer != nil {
		ours := r.newProgressToken()
		r.routesMu.Lock()
		r.routes[ours] = &route{u: u, peer: rec.peer, token: token, ctx: rec.ctx}
		r.routesMu.Unlock()
		out["progressToken"] = ours
		release = func() {
			r.routesMu.Lock()
			delete(r.routes, ours)
			r.routesMu.Unlock()
		}
	}
	if len(out) == 0 {
		return nil, release
	}
	return out, release
}

// newProgressToken returns a token unique in the registry and hard to
// guess, so that one upstream cannot inject progress into another's calls.
func (r *Registry) newProgressToken() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("mediator-%d-%s", r.ids.Add(1), hex.EncodeToString(b[:]))
}

// onNotification handles a notification from the upstream. It runs on the
// transport's reader, so it only queues work.
func (c *conn) onNotification(n mcp.JSONRPCNotification) {
	switch mcp.MCPMethod(n.Method) {
	case mcp.MethodNotificationToolsListChanged, mcp.MethodNotificationResourcesListChanged,
		mcp.MethodNotificationPromptsListChanged:
		c.u.log.Debug("upstream list changed", "method", n.Method)
		c.u.requestRelist()
	case mcp.MethodNotificationProgress:
		c.routeProgress(n)
	case mcp.MethodNotificationMessage:
		c.fanOutLog(n)
	case mcp.MethodNotificationResourceUpdated:
		uri, _ := n.Params.AdditionalFields["uri"].(string)
		if uri != "" {
			c.enqueue(func() { c.u.r.resourceUpdated(c.u.name, uri) })
		}
	default:
		c.u.log.Debug("upstream notification not relayed", "method", n.Method)
	}
}

// routeProgress passes a progress notification to the peer whose call it
// belongs to, with the agent's token restored. Unknown tokens are dropped.
func (c *conn) routeProgress(n mcp.JSONRPCNotification) {
	tok, _ := n.Params.AdditionalFields["progressToken"].(string)
	c.u.r.routesMu.Lock()
	rt := c.u.r.routes[tok]
	c.u.r.routesMu.Unlock()
	if rt == nil || rt.u != c.u {
		c.u.log.Debug("progress notification for no call of this upstream dropped")
		return
	}
	params := notificationParams(n)
	params["progressToken"] = rt.token
	c.enqueue(func() { c.deliver(rt.peer, rt.ctx, n.Method, params) })
}

// fanOutLog passes a logging notification to every peer with a call in
// flight on the upstream, its logger name prefixed with the upstream's.
func (c *conn) fanOutLog(n mcp.JSONRPCNotification) {
	params := notificationParams(n)
	logger, _ := params["logger"].(string)
	if logger == "" {
		params["logger"] = c.u.name
	} else {
		params["logger"] = c.u.name + "/" + logger
	}
	targets := c.u.peers()
	if len(targets) == 0 {
		c.u.log.Debug("upstream log message with no call in flight dropped")
		return
	}
	for _, t := range targets {
		c.enqueue(func() { c.deliver(t.peer, t.ctx, n.Method, maps.Clone(params)) })
	}
}

// notificationParams copies a notification's params, _meta included.
func notificationParams(n mcp.JSONRPCNotification) map[string]any {
	params := maps.Clone(n.Params.AdditionalFields)
	if params == nil {
		params = map[string]any{}
	}
	if len(n.Params.Meta) > 0 {
		params["_meta"] = n.Params.Meta
	}
	return params
}

// peerCall is a peer and the context of one of its calls.
type peerCall struct {
	peer mediator.Peer
	ctx  context.Context
}

// peers returns the distinct peers with calls in flight.
func (u *upstream) peers() []peerCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []peerCall
	for _, rec := range u.calls {
		if rec.peer == nil {
			continue
		}
		dup := false
		for _, p := range out {
			if samePeer(p.peer, rec.peer) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, peerCall{peer: rec.peer, ctx: rec.ctx})
		}
	}
	return out
}

// samePeer compares peers by identity when they are pointers and by
// session id otherwise (a value type might not be comparable).
func samePeer(a, b mediator.Peer) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return false
	}
	if ta.Kind() == reflect.Pointer {
		return a == b
	}
	return a.SessionID() == b.SessionID()
}

// enqueue queues a delivery; when the queue is full the notification is
// dropped rather than stalling the upstream's reader.
func (c *conn) enqueue(fn func()) {
	c.enqueued.Add(1)
	select {
	case c.events <- fn:
	default:
		c.u.log.Warn("notification queue to agents is full; dropping a notification")
	}
}

// deliverEvents runs the queued deliveries in order.
func (c *conn) deliverEvents() {
	for {
		select {
		case fn := <-c.events:
			fn()
		case <-c.ctx.Done():
			return
		}
	}
}

// deliver sends one notification to a peer, bounded in time; it still goes
// out if the call has just ended.
func (c *conn) deliver(p mediator.Peer, callCtx context.Context, method string, params map[string]any) {
	defer func() {
		if v := recover(); v != nil {
			c.u.log.Error("peer panicked on a notification", "panic", v)
		}
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(callCtx), notifyTimeout)
	defer cancel()
	if err := p.Notify(ctx, method, params); err != nil {
		c.u.log.Debug("notification to agent failed", "method", method, "err", err)
	}
}

// flushEvents waits (bounded) until the notifications queued since mark are
// delivered, so that an agent sees a call's progress before its result.
func (c *conn) flushEvents(mark uint64) {
	if c.enqueued.Load() == mark {
		return
	}
	done := make(chan struct{})
	select {
	case c.events <- func() { close(done) }:
	default:
		return
	}
	t := time.NewTimer(flushWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-c.ctx.Done():
	}
}
