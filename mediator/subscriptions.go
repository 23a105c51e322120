package mediator

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// subscriptions tracks which agent sessions subscribed to which resource,
// so an upstream's notifications/resources/updated reaches exactly them.
//
// Agents share one upstream session, so the upstream holds one
// subscription per resource for all of them: an unsubscribe is forwarded
// only when no other agent session still listens on that upstream (else
// one agent's unsubscribe, or one for a resource it never subscribed to,
// would end another's updates). Subscribing and unsubscribing are
// serialised per upstream, so that an unsubscribe forwarded as the last
// listener leaves cannot overtake a new listener's subscribe. An upstream
// with isolation "session" holds each agent session's subscriptions in
// that session's own upstream session: nothing is shared, and an update
// reaches only the agent session whose upstream session sent it.
type subscriptions struct {
	mu    sync.Mutex
	byURI map[string]map[string]subscriber // uri → session id → subscriber
	fwd   map[string]*sync.Mutex           // server → the lock of its forwards
}

// subscriber is one agent session's subscription to a resource.
type subscriber struct {
	server string
	key    string // the session's SessionInfo.Key
}

// lockServer serialises the subscription forwards of one upstream.
func (s *subscriptions) lockServer(server string) func() {
	s.mu.Lock()
	if s.fwd == nil {
		s.fwd = map[string]*sync.Mutex{}
	}
	m := s.fwd[server]
	if m == nil {
		m = &sync.Mutex{}
		s.fwd[server] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// othersListen reports whether a session other than session subscribes to
// uri on server.
func (s *subscriptions) othersListen(uri, session, server string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sid, sub := range s.byURI[uri] {
		if sid != session && sub.server == server {
			return true
		}
	}
	return false
}

// subscriptionRequest is a resources/subscribe or resources/unsubscribe
// on its way through the chain; the chain's forward step calls forward.
type subscriptionRequest struct {
	URI         string
	Unsubscribe bool
	session     string // the MCP session id, to send updates to
	key         string // SessionInfo.Key, to match an isolated upstream session
	subs        *subscriptions
}

// forward changes the subscription upstream and records it, serialised
// with the upstream's other subscription changes. An unsubscribe that
// other sessions still need is recorded but not forwarded.
func (r *subscriptionRequest) forward(ctx context.Context, up Upstreams, server string) error {
	defer r.subs.lockServer(server)()
	if !r.Unsubscribe {
		if err := up.Subscribe(ctx, server, r.URI); err != nil {
			return err
		}
		r.subs.add(r.URI, r.session, subscriber{server: server, key: r.key})
		return nil
	}
	if up.Isolated(server) || !r.subs.othersListen(r.URI, r.session, server) {
		if err := up.Unsubscribe(ctx, server, r.URI); err != nil {
			return err
		}
	}
	r.subs.remove(r.URI, r.session)
	return nil
}

func (s *subscriptions) add(uri, session string, sub subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byURI == nil {
		s.byURI = make(map[string]map[string]subscriber)
	}
	if s.byURI[uri] == nil {
		s.byURI[uri] = make(map[string]subscriber)
	}
	s.byURI[uri][session] = sub
}

// remove drops one subscription.
func (s *subscriptions) remove(uri, session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byURI[uri], session)
	if len(s.byURI[uri]) == 0 {
		delete(s.byURI, uri)
	}
}

// sessions returns the sessions an update of uri from server reaches: the
// subscribers on that server, and when key is set (the update came from
// that agent session's own upstream session) only the one with that key.
func (s *subscriptions) sessions(server, uri, key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for sid, sub := range s.byURI[uri] {
		if sub.server == server && (key == "" || sub.key == key) {
			out = append(out, sid)
		}
	}
	return out
}

// ofSession returns the uri → server subscriptions of one session.
func (s *subscriptions) ofSession(session string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for uri, subs := range s.byURI {
		if sub, ok := subs[session]; ok {
			out[uri] = sub.server
		}
	}
	return out
}

// gateSubscription runs resources/subscribe and resources/unsubscribe
// through the chain (policy decides as for reading the resource; forward
// subscribes upstream); mcp-go then acknowledges.
func (s *Server) gateSubscription(ctx context.Context, c *Call, raw json.RawMessage) error {
	var msg struct {
		Params struct {
			URI string `json:"uri"`
		} `json:"params"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil || msg.Params.URI == "" {
		return s.refuse(ctx, c, fmt.Errorf("%w: %s needs params.uri", ErrInvalidRequest, c.Method))
	}
	c.Name = msg.Params.URI
	c.Request = &subscriptionRequest{URI: msg.Params.URI, Unsubscribe: c.Method == "resources/unsubscribe",
		session: c.Session.ID, key: c.Session.Key, subs: &s.subs}
	if err := s.run(ctx, c, nil); err != nil {
		return &recordedError{err}
	}
	return nil
}

// resourceUpdated passes an upstream's update to the subscribed sessions:
// those subscribed to uri on server, and of an isolated upstream session
// (key set) only its own agent session.
func (s *Server) resourceUpdated(server, uri, key string) {
	for _, sid := range s.subs.sessions(server, uri, key) {
		err := s.mcp.SendNotificationToSpecificClient(sid, "notifications/resources/updated", map[string]any{"uri": uri})
		if err != nil {
			s.log.Debug("resource update not delivered", "session", sid, "uri", uri, "server", server, "err", err)
		}
	}
}

// dropSubscriptions forgets a closed session's subscriptions and
// unsubscribes upstream where nobody else listens. An isolated upstream's
// subscriptions end with the session's own upstream session.
func (s *Server) dropSubscriptions(ctx context.Context, session string) {
	for uri, server := range s.subs.ofSession(session) {
		unlock := s.subs.lockServer(server)
		if !s.deps.Upstreams.Isolated(server) && !s.subs.othersListen(uri, session, server) {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := s.deps.Upstreams.Unsubscribe(uctx, server, uri); err != nil {
				s.log.Debug("upstream unsubscribe failed", "uri", uri, "server", server, "err", err)
			}
			cancel()
		}
		s.subs.remove(uri, session)
		unlock()
	}
}
