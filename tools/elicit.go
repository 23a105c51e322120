package tools

import (
	"encoding/json"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

// URL-mode elicitation (MCP 2025-11-25) ends out of band: the user opens a
// URL, and the upstream later sends notifications/elicitation/complete with
// the elicitation's id, often after the call that asked has been answered.
// A connection remembers which agent session each of its URL elicitations
// belongs to (one the agent accepted, or one named in a -32042 error it was
// given), and passes the completion to that session only: an upstream can
// complete only its own elicitations, and an unknown id is dropped.

const (
	// maxPendingElicitations bounds the URL elicitations a connection
	// remembers, and maxPendingPerSession those of one agent session (so
	// that one agent cannot push out the others'); the oldest is forgotten
	// first.
	maxPendingElicitations = 64
	maxPendingPerSession   = 16
	// elicitationWait is how long a URL elicitation's completion is
	// awaited.
	elicitationWait = time.Hour
)

// pendingElicitation is a URL elicitation whose completion is awaited.
type pendingElicitation struct {
	peer  mediator.Peer
	since time.Time
}

// awaitElicitation remembers that the URL elicitation id belongs to p.
func (c *conn) awaitElicitation(id string, p mediator.Peer) {
	if id == "" || len(id) > 256 || p == nil {
		return
	}
	now := time.Now()
	c.elicitMu.Lock()
	defer c.elicitMu.Unlock()
	if c.elicits == nil {
		c.elicits = map[string]pendingElicitation{}
	}
	session := p.SessionID()
	oldest, oldestAt := "", now
	own, ownOldest, ownOldestAt := 0, "", now
	for k, e := range c.elicits {
		switch {
		case now.Sub(e.since) > elicitationWait:
			delete(c.elicits, k)
			continue
		case oldest == "" || e.since.Before(oldestAt):
			oldest, oldestAt = k, e.since
		}
		if e.peer.SessionID() == session {
			own++
			if ownOldest == "" || e.since.Before(ownOldestAt) {
				ownOldest, ownOldestAt = k, e.since
			}
		}
	}
	switch {
	case own >= maxPendingPerSession:
		delete(c.elicits, ownOldest)
	case len(c.elicits) >= maxPendingElicitations:
		delete(c.elicits, oldest)
	}
	c.elicits[id] = pendingElicitation{peer: p, since: now}
}

// awaitRequiredElicitations remembers the URL elicitations named in the
// data of an upstream's -32042 (URL elicitation required) error, given to
// the agent of p.
func (c *conn) awaitRequiredElicitations(rpc *rpcError, p mediator.Peer) {
	if rpc == nil || rpc.Code != mcp.URL_ELICITATION_REQUIRED || len(rpc.Data) == 0 {
		return
	}
	var data struct {
		Elicitations []struct {
			ElicitationID string `json:"elicitationId"`
		} `json:"elicitations"`
	}
	if json.Unmarshal(rpc.Data, &data) != nil {
		return
	}
	for _, e := range data.Elicitations[:min(len(data.Elicitations), maxPendingElicitations)] {
		c.awaitElicitation(e.ElicitationID, p)
	}
}

// elicitationComplete passes the upstream's notifications/elicitation/complete
// to the agent session whose elicitation it ends, once.
func (c *conn) elicitationComplete(n mcp.JSONRPCNotification) {
	params := notificationParams(n)
	id, _ := params["elicitationId"].(string)
	c.elicitMu.Lock()
	e, ok := c.elicits[id]
	delete(c.elicits, id)
	c.elicitMu.Unlock()
	if !ok || time.Since(e.since) > elicitationWait {
		c.u.log.Debug("elicitation completion for no elicitation of this upstream session dropped")
		return
	}
	if err := e.peer.NotifySession(n.Method, params); err != nil {
		c.u.log.Debug("elicitation completion not delivered", "session", e.peer.SessionID(), "err", err)
	}
}

// offeredCapabilities is what an agent session's own upstream session is
// told its client can do: the agent's roots, sampling and elicitation
// (with their modes and sub-capabilities, URL elicitation among them), as
// the agent declared them, so that the upstream asks only what the agent
// can answer. Tasks, extensions and experimental capabilities are not
// offered: the mediator does not relay tasks, and cannot know what an
// extension would have it pass on.
func offeredCapabilities(agent mcp.ClientCapabilities) mcp.ClientCapabilities {
	return mcp.ClientCapabilities{Roots: agent.Roots, Sampling: agent.Sampling, Elicitation: agent.Elicitation}
}
