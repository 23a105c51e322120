package mediator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// Session limits. An HTTP session that sees no request for SessionIdleTTL
// is closed (the client gets 404 and starts a new one with initialize, as
// the MCP transport specifies); an agent may hold at most
// SessionsPerAgent open sessions at a time.
const (
	DefaultSessionIdleTTL   = 30 * time.Minute
	DefaultSessionsPerAgent = 64
	// DefaultMaxHeaderBytes caps an HTTP request's line and headers.
	DefaultMaxHeaderBytes = 64 << 10
)

// sessionTable is the mediator's register of stateful MCP sessions over
// HTTP: every session id is issued by it, bound from birth to the agent
// whose authenticated request created it, and known until it is closed or
// idles out. It is mcp-go's SessionIdManager (through sessionResolver), so
// an id it did not issue, or has forgotten, is refused by mcp-go as well as
// by the gate.
type sessionTable struct {
	mu       sync.Mutex
	owners   map[string]string // session id -> agent id
	perAgent map[string]int    // agent id -> open sessions
}

// owner returns the agent a session belongs to, if it is open.
func (t *sessionTable) owner(id string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.owners[id]
	return a, ok
}

// open returns how many sessions agent holds.
func (t *sessionTable) open(agent string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.perAgent[agent]
}

// issue makes a new session id owned by agent.
func (t *sessionTable) issue(agent string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	// mcp-go's form ("mcp-session-" and a UUID's 36 characters), so that
	// clients and logs see what they would without the mediator.
	h := hex.EncodeToString(b[:])
	id := "mcp-session-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owners == nil {
		t.owners = make(map[string]string)
		t.perAgent = make(map[string]int)
	}
	t.owners[id] = agent
	t.perAgent[agent]++
	return id
}

// close forgets a session; it reports whether it was open.
func (t *sessionTable) close(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.owners[id]
	if !ok {
		return false
	}
	delete(t.owners, id)
	if t.perAgent[a]--; t.perAgent[a] <= 0 {
		delete(t.perAgent, a)
	}
	return true
}

// sessionResolver hands mcp-go a SessionIdManager for each request that
// knows the request's authenticated agent (the gate put it in the context).
type sessionResolver struct{ t *sessionTable }

func (r sessionResolver) ResolveSessionIdManager(req *http.Request) server.SessionIdManager {
	m := sessionManager{t: r.t}
	if req != nil {
		if a := AgentFromContext(req.Context()); a != nil {
			m.agent = a.ID
		}
		m.issued, _ = req.Context().Value(issuedKey{}).(*issuedSession)
	}
	return m
}

// sessionManager implements server.SessionIdManager over the table.
type sessionManager struct {
	t      *sessionTable
	agent  string
	issued *issuedSession
}

// issuedSession receives the id mcp-go generated while serving a request,
// so that the gate can close a session that ended with its request (a
// detached GET stream).
type issuedSession struct{ id string }

type issuedKey struct{}

// Generate issues an id owned by the request's agent. A request without
// an authenticated agent never reaches mcp-go, so agent is empty only on
// paths that do not generate ids (the idle sweeper).
func (m sessionManager) Generate() string {
	id := m.t.issue(m.agent)
	if m.issued != nil {
		m.issued.id = id
	}
	return id
}

// Validate accepts an open session of the request's agent. The gate has
// already refused, and recorded, an unknown id or another agent's; this is
// the second lock on the same door.
func (m sessionManager) Validate(id string) (bool, error) {
	owner, ok := m.t.owner(id)
	if !ok {
		return false, fmt.Errorf("unknown or closed MCP session %q", trimForError(id, 64))
	}
	if m.agent != "" && owner != m.agent {
		return false, fmt.Errorf("MCP session %q belongs to another agent", trimForError(id, 64))
	}
	return false, nil
}

// Terminate closes a session (a DELETE from its owner, or the idle sweeper).
func (m sessionManager) Terminate(id string) (bool, error) {
	if m.agent != "" {
		if owner, ok := m.t.owner(id); ok && owner != m.agent {
			return true, nil // not allowed; the gate refused it first
		}
	}
	m.t.close(id)
	return false, nil
}

// sessionError says why a request's session id is refused, or nil when
// the session is the agent's own. A request without a session id passes
// (initialize, a GET that opens a detached stream). Whatever the protocol
// revision and HTTP method, a session id that is presented is checked.
func (t *sessionTable) check(r *http.Request, agent string) error {
	id := r.Header.Get(server.HeaderKeySessionID)
	if id == "" {
		return nil
	}
	owner, ok := t.owner(id)
	if !ok {
		return fmt.Errorf("%w: unknown, closed or expired MCP session id; start a new session with initialize", ErrUnauthenticated)
	}
	if owner != agent {
		return fmt.Errorf("%w: this MCP session belongs to another agent; use a session your own initialize opened", ErrUnauthenticated)
	}
	return nil
}
