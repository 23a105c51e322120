package mediator

import (
	"context"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// defaultLogLevel is what an agent session that never sent
// logging/setLevel receives: the level the mediator asks of upstreams.
const defaultLogLevel = mcp.LoggingLevelInfo

// logLevels are the levels agent sessions asked for with
// logging/setLevel, by MCP session id.
type logLevels struct {
	mu sync.Mutex
	m  map[string]mcp.LoggingLevel
}

func (l *logLevels) set(session string, level mcp.LoggingLevel) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]mcp.LoggingLevel{}
	}
	l.m[session] = level
}

// of returns session's level and whether it set one.
func (l *logLevels) of(session string) (mcp.LoggingLevel, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	level, ok := l.m[session]
	if !ok {
		return defaultLogLevel, false
	}
	return level, true
}

func (l *logLevels) forget(session string) {
	l.mu.Lock()
	delete(l.m, session)
	l.mu.Unlock()
}

// listening returns the sessions that set a level level reaches.
func (l *logLevels) listening(level mcp.LoggingLevel) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for sid, min := range l.m {
		if level.ShouldSendTo(min) {
			out = append(out, sid)
		}
	}
	return out
}

// wantsLog reports whether the session in ctx takes a log message of
// level: at or above the level it set (or defaultLogLevel); a request of
// protocol 2026-07-28 only when it declared a level, and at or above it.
func (l *logLevels) wantsLog(ctx context.Context, session string, level mcp.LoggingLevel) bool {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		return info.LogLevel != "" && level.ShouldSendTo(info.LogLevel)
	}
	min, _ := l.of(session)
	return level.ShouldSendTo(min)
}

// afterSetLevel records an agent's logging/setLevel and forwards it to
// the upstream sessions that serve it.
func (s *Server) afterSetLevel(ctx context.Context, _ any, req *mcp.SetLevelRequest, _ *mcp.EmptyResult) {
	cs := server.ClientSessionFromContext(ctx)
	if cs == nil {
		return
	}
	sid := cs.SessionID()
	s.levels.set(sid, req.Params.Level)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	s.deps.Upstreams.SetLogLevel(fctx, s.logKey(sid), req.Params.Level)
}

// logKey is the SessionInfo.Key of the MCP session sid.
func (s *Server) logKey(sid string) string {
	if sid == "stdio" {
		return s.stdioKey
	}
	return sid
}

// sessionOfKey is the MCP session id of a SessionInfo.Key (logKey's inverse;
// a stateless token's key names no MCP session and is returned as it is).
func (s *Server) sessionOfKey(key string) string {
	if key == s.stdioKey {
		return "stdio"
	}
	return key
}

// logBetweenCalls passes an upstream's log message that no call can be
// named for to the agents listening to its upstream session: the agent
// session whose own upstream session sent it (key set), else every agent
// session that asked for logs with logging/setLevel, at or above the level
// each asked for.
func (s *Server) logBetweenCalls(upstream, key string, params map[string]any) {
	level, _ := params["level"].(string)
	var to []string
	if key != "" {
		sid := s.sessionOfKey(key)
		if min, _ := s.levels.of(sid); mcp.LoggingLevel(level).ShouldSendTo(min) {
			to = []string{sid}
		}
	} else {
		to = s.levels.listening(mcp.LoggingLevel(level))
	}
	for _, sid := range to {
		err := server.ErrSessionNotFound
		if v, ok := s.live.Load(sid); ok {
			if cs := v.(server.ClientSession); cs.Initialized() {
				err = sendToSession(cs, "notifications/message", params)
			}
		}
		if err != nil {
			s.log.Debug("upstream log message not delivered", "session", sid, "server", upstream, "err", err)
		}
	}
}
