package tools

import (
	"context"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

// sessConn is an upstream session of one agent session (isolation
// "session"): a stdio child or an HTTP session of its own. Its fields are
// guarded by upstream.mu, apart from c and err, which are set before ready
// is closed.
type sessConn struct {
	agent string
	// caps is what the agent's client declared, offered to its upstream
	// session (nothing when the first call came with no agent peer).
	caps  mcp.ClientCapabilities
	ready chan struct{} // closed once dialled (c) or failed (err)
	c     *conn
	err   error
	busy  int       // calls in flight
	last  time.Time // when the last call ended
}

// connFor returns the connection a call goes out on: the shared one, or
// for an isolated upstream the calling agent session's own, dialled on its
// first call. release ends the call's use of it.
func (u *upstream) connFor(ctx context.Context) (*conn, func(), error) {
	if !u.cfg.Isolated() {
		c, err := u.live()
		return c, func() {}, err
	}
	key, agent := sessionOf(ctx)
	if key == "" {
		return nil, nil, fmt.Errorf("%w: upstream %q gives each agent session its own upstream session (isolation: session), "+
			"and this call belongs to no agent session: call with a token (mediator token mint), over stdio, "+
			"or in a stateful HTTP session (protocol 2025-11-25)", mediator.ErrUpstreamUnavailable, u.name)
	}
	lim := u.cfg.Sessions.Effective()
	u.mu.Lock()
	sc := u.sess[key]
	if sc != nil && sc.c != nil && isDead(sc.c) {
		delete(u.sess, key) // its child died: the next call starts afresh
		go sc.c.close()
		sc = nil
	}
	if sc == nil {
		if err := u.sessionRoom(agent, lim); err != nil {
			u.mu.Unlock()
			return nil, nil, err
		}
		sc = &sessConn{agent: agent, ready: make(chan struct{})}
		if p := mediator.PeerFromContext(ctx); p != nil {
			sc.caps = p.ClientCapabilities()
		}
		if u.sess == nil {
			u.sess = map[string]*sessConn{}
		}
		u.sess[key] = sc
		go u.dialSession(key, sc)
	}
	sc.busy++
	u.mu.Unlock()
	release := func() {
		u.mu.Lock()
		sc.busy--
		sc.last = time.Now()
		u.mu.Unlock()
	}
	select {
	case <-sc.ready:
	case <-ctx.Done():
		release()
		return nil, nil, ctx.Err()
	}
	if sc.err != nil {
		release()
		return nil, nil, sc.err
	}
	return sc.c, release, nil
}

// sessionRoom refuses a new upstream session beyond the limits; u.mu is held.
func (u *upstream) sessionRoom(agent string, lim SessionLimits) error {
	if len(u.sess) >= lim.Max {
		return fmt.Errorf("%w: upstream %q already runs %d agent sessions, its limit (sessions.max): retry when one ends "+
			"or has been idle for %v, or raise sessions.max", mediator.ErrUpstreamUnavailable, u.name, len(u.sess), lim.Idle)
	}
	n := 0
	for _, sc := range u.sess {
		if sc.agent == agent {
			n++
		}
	}
	if n >= lim.PerAgent {
		return fmt.Errorf("%w: agent %q already has %d sessions on upstream %q, its limit (sessions.per_agent): end one of them, "+
			"or raise sessions.per_agent", mediator.ErrUpstreamUnavailable, agent, n, u.name)
	}
	return nil
}

// dialSession connects an agent session's own upstream session.
func (u *upstream) dialSession(key string, sc *sessConn) {
	c, err := u.dial(key, &sc.caps)
	if err == nil {
		u.log.Info("upstream session started for an agent session", "agent", sc.agent)
		go func() { // forget it when it dies, so that the next call redials
			select {
			case <-c.dead:
				u.dropSession(key, sc)
			case <-u.ctx.Done():
			}
		}()
	} else {
		err = fmt.Errorf("%w: upstream %q: starting the agent session's own upstream session: %w",
			mediator.ErrUpstreamUnavailable, u.name, err)
		u.mu.Lock()
		if u.sess[key] == sc {
			delete(u.sess, key)
		}
		u.mu.Unlock()
	}
	sc.c, sc.err = c, err
	close(sc.ready)
}

// dropSession forgets sc if it is still the session's connection.
func (u *upstream) dropSession(key string, sc *sessConn) {
	u.mu.Lock()
	if u.sess[key] == sc {
		delete(u.sess, key)
	}
	u.mu.Unlock()
}

// endSession closes an agent session's own upstream session.
func (u *upstream) endSession(key string) {
	u.mu.Lock()
	sc := u.sess[key]
	delete(u.sess, key)
	u.mu.Unlock()
	if sc != nil {
		go func() {
			<-sc.ready
			if sc.c != nil {
				sc.c.close()
				u.log.Info("upstream session closed: its agent session ended", "agent", sc.agent)
			}
		}()
	}
}

// reapSessions closes agent sessions' upstream sessions idle for longer
// than the limit, and all of them when the upstream stops.
func (u *upstream) reapSessions() {
	idle := u.cfg.Sessions.Effective().Idle
	t := time.NewTicker(max(idle/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-u.ctx.Done():
			u.mu.Lock()
			all := u.sess
			u.sess = nil
			u.mu.Unlock()
			for _, sc := range all {
				<-sc.ready
				if sc.c != nil {
					sc.c.close()
				}
			}
			return
		case now := <-t.C:
			var idleOnes []*sessConn
			u.mu.Lock()
			for k, sc := range u.sess {
				if sc.busy == 0 && sc.c != nil && now.Sub(sc.last) >= idle {
					delete(u.sess, k)
					idleOnes = append(idleOnes, sc)
				}
			}
			u.mu.Unlock()
			for _, sc := range idleOnes {
				sc.c.close()
				u.log.Info("upstream session closed: idle", "agent", sc.agent, "idle", idle)
			}
		}
	}
}

// EndSession closes the upstream sessions of an agent session that ended,
// on every isolated upstream.
func (r *Registry) EndSession(session string) {
	if session == "" {
		return
	}
	r.forgetLogLevel(session)
	r.mu.Lock()
	ups := r.ups
	r.mu.Unlock()
	for _, u := range ups {
		if u.cfg.Isolated() {
			u.endSession(session)
		}
	}
}

// Isolated reports whether server gives each agent session its own
// upstream session (isolation "session"); false for an unknown server.
func (r *Registry) Isolated(server string) bool {
	u, err := r.lookup(server)
	return err == nil && u.cfg.Isolated()
}

// sessionOf is the agent session a call belongs to, and its agent's id:
// the call's session key (the stdio process, a stateful HTTP session's id,
// or for stateless HTTP the token's id), else the peer's session.
func sessionOf(ctx context.Context) (key, agent string) {
	if c := mediator.CallFromContext(ctx); c != nil {
		key = c.Session.Key
		if c.Agent != nil {
			agent = c.Agent.ID
		}
	}
	if p := mediator.PeerFromContext(ctx); key == "" && p != nil {
		key = p.SessionID()
	}
	return key, agent
}

func isDead(c *conn) bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}
