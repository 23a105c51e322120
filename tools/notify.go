package tools

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

const (
	// eventQueue bounds the resource updates waiting per connection;
	// beyond it they are dropped.
	eventQueue = 256
	// outboxSize bounds the notifications waiting for one agent's call;
	// beyond it they are dropped.
	outboxSize = 256
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
		c.routeLog(n)
	case mcp.MethodNotificationElicitationComplete:
		c.elicitationComplete(n)
	case mcp.MethodNotificationResourceUpdated:
		uri, _ := n.Params.AdditionalFields["uri"].(string)
		if uri != "" {
			c.enqueue(func() { c.u.r.resourceUpdated(c.u.name, uri, c.session) })
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
	c.post(rt.peer, rt.ctx, n.Method, params)
}

// routeLog passes a logging notification, its logger name prefixed with
// the upstream's, to the agent session whose call it belongs to. A log
// message names no request: it is delivered when every call in flight on
// the upstream belongs to one agent session (to the oldest of them), and
// dropped when calls of several sessions are in flight, since delivering
// it to all of them would show one agent another's logs. (An upstream whose
// logs matter with many agents at once wants a connection per agent.)
func (c *conn) routeLog(n mcp.JSONRPCNotification) {
	params := notificationParams(n)
	// The logger stays the upstream's; the server it came from goes in _meta.
	meta, _ := params["_meta"].(map[string]any)
	meta = maps.Clone(meta)
	if meta == nil {
		meta = map[string]any{}
	}
	meta[mediator.ServerMetaKey] = c.u.name
	params["_meta"] = meta
	target, sessions := c.u.logTarget(c.session)
	switch {
	case sessions == 0:
		// Between calls: for the agents listening to this upstream session.
		c.enqueue(func() { c.u.r.logBetweenCalls(c.u.name, c.session, params) })
	case sessions > 1:
		c.u.log.Debug("upstream log message dropped: calls of several agent sessions are in flight and it names none",
			"sessions", sessions)
	default:
		c.post(target.peer, target.ctx, n.Method, params)
	}
}

// logTarget returns the oldest call in flight and how many distinct agent
// sessions have calls in flight; only session's calls when it is set (a
// connection of one agent session's own).
func (u *upstream) logTarget(session string) (peerCall, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var oldest *callRec
	var sessions []string
	for _, rec := range u.calls {
		if rec.peer == nil || (session != "" && rec.peer.SessionID() != session) {
			continue
		}
		if sid := rec.peer.SessionID(); !slices.Contains(sessions, sid) {
			sessions = append(sessions, sid)
		}
		if oldest == nil || rec.id < oldest.id {
			oldest = rec
		}
	}
	if oldest == nil {
		return peerCall{}, 0
	}
	return peerCall{peer: oldest.peer, ctx: oldest.ctx}, len(sessions)
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

// peers returns the distinct peers with calls in flight, of session only
// when it is set.
func (u *upstream) peers(session string) []peerCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []peerCall
	for _, rec := range u.calls {
		if rec.peer == nil || (session != "" && rec.peer.SessionID() != session) {
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
// session id otherwise.
func samePeer(a, b mediator.Peer) bool {
	return reflect.TypeOf(a) == reflect.TypeOf(b) && peerKey(a) == peerKey(b)
}

// enqueue queues registry work (a resource update); when the queue is
// full it is dropped rather than stalling the upstream's reader.
func (c *conn) enqueue(fn func()) {
	select {
	case c.events <- fn:
	default:
		c.u.log.Warn("resource update queue is full; dropping an update")
	}
}

// deliverEvents runs the queued registry work in order.
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

// outbox holds the notifications for one peer (one call) and delivers them
// in order on a goroutine of its own, so that an agent which stops reading
// (each delivery then waits up to notifyTimeout) delays and loses only its
// own notifications, never another agent's. Its fields are guarded by the
// connection's outboxMu; it leaves the connection's map once drained.
type outbox struct {
	key      any
	q        []func()
	queued   uint64 // notifications accepted, ever
	done     uint64 // of them delivered or failed
	dropped  int    // refused since the last warning
	changed  chan struct{}
	draining bool
}

// peerKey identifies a peer: by address when it is a pointer, else by its
// session id (a value type might not be comparable).
func peerKey(p mediator.Peer) any {
	if v := reflect.ValueOf(p); v.Kind() == reflect.Pointer {
		return v.Pointer()
	}
	return "session:" + p.SessionID()
}

// post queues one notification for p; beyond outboxSize waiting it is
// dropped (and counted) rather than stalling the upstream's reader.
func (c *conn) post(p mediator.Peer, callCtx context.Context, method string, params map[string]any) {
	key := peerKey(p)
	c.outboxMu.Lock()
	defer c.outboxMu.Unlock()
	ob := c.outboxes[key]
	if ob == nil {
		if c.outboxes == nil {
			c.outboxes = map[any]*outbox{}
		}
		ob = &outbox{key: key, changed: make(chan struct{})}
		c.outboxes[key] = ob
	}
	if len(ob.q) >= outboxSize {
		if ob.dropped++; ob.dropped == 1 {
			c.u.log.Warn("an agent is not taking its notifications; dropping them", "method", method, "session", p.SessionID())
		}
		return
	}
	ob.q = append(ob.q, func() { c.deliver(p, callCtx, method, params) })
	ob.queued++
	if !ob.draining {
		ob.draining = true
		go c.drain(ob)
	}
}

// drain delivers an outbox's notifications until it is empty.
func (c *conn) drain(ob *outbox) {
	for {
		c.outboxMu.Lock()
		if len(ob.q) == 0 {
			ob.draining = false
			if c.outboxes[ob.key] == ob {
				delete(c.outboxes, ob.key)
			}
			if ob.dropped > 1 {
				c.u.log.Warn("notifications dropped for an agent that was not taking them", "count", ob.dropped)
			}
			c.outboxMu.Unlock()
			return
		}
		fn := ob.q[0]
		ob.q[0] = nil
		ob.q = ob.q[1:]
		c.outboxMu.Unlock()
		fn()
		c.outboxMu.Lock()
		ob.done++
		close(ob.changed)
		ob.changed = make(chan struct{})
		c.outboxMu.Unlock()
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

// flush waits (bounded by flushWait) until the notifications queued so far
// for p are delivered, so that an agent sees a call's progress before its
// result. Other agents' notifications do not hold it up.
func (c *conn) flush(p mediator.Peer) {
	if p == nil {
		return
	}
	key := peerKey(p)
	c.outboxMu.Lock()
	ob := c.outboxes[key]
	if ob == nil {
		c.outboxMu.Unlock()
		return
	}
	target := ob.queued
	c.outboxMu.Unlock()
	t := time.NewTimer(flushWait)
	defer t.Stop()
	for {
		c.outboxMu.Lock()
		done, changed := ob.done, ob.changed
		c.outboxMu.Unlock()
		if done >= target {
			return
		}
		select {
		case <-changed:
		case <-t.C:
			return
		case <-c.ctx.Done():
			return
		}
	}
}
