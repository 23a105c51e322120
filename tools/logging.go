package tools

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Agents choose their log level (logging/setLevel); the registry asks each
// upstream session for what its agents want. An agent session's own
// upstream session (isolation "session") gets that agent's level; a shared
// one the most verbose level any agent session asked for, and never less
// than upstreamLogLevel. Each agent then gets only the messages at or above
// its own level (the mediator's peer filters them).

// logLevels is the registry's record of the agents' levels.
type logLevels struct {
	byKey  map[string]mcp.LoggingLevel // agent session (SessionInfo.Key) → level
	shared mcp.LoggingLevel            // what shared upstream sessions were last asked ("": upstreamLogLevel)
	onLog  []func(server, session string, params map[string]any)
}

// moreVerbose returns the more verbose of two levels.
func moreVerbose(a, b mcp.LoggingLevel) mcp.LoggingLevel {
	if a.ShouldSendTo(b) {
		return b
	}
	return a
}

// sharedLevelLocked is the level shared upstream sessions are asked for;
// r.logMu is held.
func (r *Registry) sharedLevelLocked() mcp.LoggingLevel {
	level := upstreamLogLevel
	for _, l := range r.logs.byKey {
		level = moreVerbose(level, l)
	}
	return level
}

// logLevelFor is the level to ask of a new connection serving session
// ("" for a shared one).
func (r *Registry) logLevelFor(session string) mcp.LoggingLevel {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if l, ok := r.logs.byKey[session]; ok && session != "" {
		return l
	}
	if session != "" {
		return upstreamLogLevel
	}
	return r.sharedLevelLocked()
}

// SetLogLevel records an agent session's logging/setLevel and forwards it:
// to the session's own upstream sessions as it is, and to the shared ones
// when it makes them more (or, as sessions end, less) verbose.
func (r *Registry) SetLogLevel(ctx context.Context, session string, level mcp.LoggingLevel) {
	if session == "" {
		return
	}
	r.logMu.Lock()
	if r.logs.byKey == nil {
		r.logs.byKey = map[string]mcp.LoggingLevel{}
	}
	r.logs.byKey[session] = level
	r.logMu.Unlock()
	r.forwardLevels(ctx, session, level)
}

// forgetLogLevel drops an ended agent session's level; the shared
// upstream sessions may then be asked for less, off the caller's path.
func (r *Registry) forgetLogLevel(session string) {
	r.logMu.Lock()
	_, had := r.logs.byKey[session]
	delete(r.logs.byKey, session)
	r.logMu.Unlock()
	if !had {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.forwardLevels(ctx, "", "")
	}()
}

// forwardLevels sends logging/setLevel where it changed: level to
// session's own upstream sessions (when session is set), and the shared
// level to the shared ones when it moved.
func (r *Registry) forwardLevels(ctx context.Context, session string, level mcp.LoggingLevel) {
	r.logFwdMu.Lock() // one change at a time reaches the upstreams, in order
	defer r.logFwdMu.Unlock()
	r.logMu.Lock()
	shared, prev := r.sharedLevelLocked(), r.logs.shared
	if prev == "" {
		prev = upstreamLogLevel // what connections are asked for at first
	}
	moved := shared != prev
	r.logs.shared = shared
	r.logMu.Unlock()
	r.mu.Lock()
	ups := slices.Clone(r.ups)
	r.mu.Unlock()
	for _, u := range ups {
		switch {
		case u.cfg.Isolated() && session != "":
			if c := u.sessionConn(session); c != nil {
				c.setLogLevel(ctx, level)
			}
		case !u.cfg.Isolated() && moved:
			if c, err := u.live(); err == nil {
				c.setLogLevel(ctx, shared)
			}
		}
	}
}

// setLogLevel asks the upstream session for level, if it logs at all.
func (c *conn) setLogLevel(ctx context.Context, level mcp.LoggingLevel) {
	if c.init == nil || c.init.Capabilities.Logging == nil {
		return
	}
	if _, err := c.request(ctx, "logging/setLevel", map[string]any{"level": level}); err != nil {
		c.u.log.Debug("upstream refused logging/setLevel", "level", level, "err", err)
	}
}

// sessionConn is session's own live upstream session, if it has one.
func (u *upstream) sessionConn(session string) *conn {
	u.mu.Lock()
	sc := u.sess[session]
	u.mu.Unlock()
	if sc == nil {
		return nil
	}
	select {
	case <-sc.ready:
	default:
		return nil // being dialled: it asks for the session's level itself
	}
	if sc.c == nil || isDead(sc.c) {
		return nil
	}
	return sc.c
}

// OnLog registers fn to be called with an upstream's log message that no
// call in flight can be named for: session is the agent session whose own
// upstream session sent it, "" for a shared one.
func (r *Registry) OnLog(fn func(server, session string, params map[string]any)) {
	if fn == nil {
		return
	}
	r.logMu.Lock()
	r.logs.onLog = append(r.logs.onLog, fn)
	r.logMu.Unlock()
}

func (r *Registry) logBetweenCalls(server, session string, params map[string]any) {
	r.logMu.Lock()
	fns := slices.Clone(r.logs.onLog)
	r.logMu.Unlock()
	for _, fn := range fns {
		fn(server, session, maps.Clone(params))
	}
}
