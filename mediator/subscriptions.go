package mediator

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// subscriptions tracks which agent sessions subscribed to which resource,
// so an upstream's notifications/resources/updated reaches exactly them.
type subscriptions struct {
	mu    sync.Mutex
	byURI map[string]map[string]string // uri → session → server
}

func (s *subscriptions) add(uri, session, server string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byURI == nil {
		s.byURI = make(map[string]map[string]string)
	}
	if s.byURI[uri] == nil {
		s.byURI[uri] = make(map[string]string)
	}
	s.byURI[uri][session] = server
}

// remove drops one subscription and reports whether uri has none left.
func (s *subscriptions) remove(uri, session string) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byURI[uri], session)
	if len(s.byURI[uri]) == 0 {
		delete(s.byURI, uri)
		return true
	}
	return false
}

func (s *subscriptions) sessions(uri string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byURI[uri]))
	for sid := range s.byURI[uri] {
		out = append(out, sid)
	}
	return out
}

// ofSession returns the uri → server subscriptions of one session.
func (s *subscriptions) ofSession(session string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for uri, subs := range s.byURI {
		if server, ok := subs[session]; ok {
			out[uri] = server
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
	if c.Method == "resources/subscribe" {
		req := &mcp.SubscribeRequest{}
		req.Params.URI = msg.Params.URI
		c.Request = req
	} else {
		req := &mcp.UnsubscribeRequest{}
		req.Params.URI = msg.Params.URI
		c.Request = req
	}
	if err := s.run(ctx, c); err != nil {
		return &recordedError{err}
	}
	if c.Method == "resources/subscribe" {
		s.subs.add(c.Name, c.Session.ID, c.Target.Server)
	} else {
		s.subs.remove(c.Name, c.Session.ID)
	}
	return nil
}

// resourceUpdated passes an upstream's update to the subscribed sessions.
func (s *Server) resourceUpdated(server, uri string) {
	for _, sid := range s.subs.sessions(uri) {
		err := s.mcp.SendNotificationToSpecificClient(sid, "notifications/resources/updated", map[string]any{"uri": uri})
		if err != nil {
			s.log.Debug("resource update not delivered", "session", sid, "uri", uri, "server", server, "err", err)
		}
	}
}

// dropSubscriptions forgets a closed session's subscriptions and
// unsubscribes upstream where nobody else listens.
func (s *Server) dropSubscriptions(ctx context.Context, session string) {
	for uri, server := range s.subs.ofSession(session) {
		if s.subs.remove(uri, session) {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := s.deps.Upstreams.Unsubscribe(uctx, server, uri); err != nil {
				s.log.Debug("upstream unsubscribe failed", "uri", uri, "server", server, "err", err)
			}
			cancel()
		}
	}
}
