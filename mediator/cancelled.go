package mediator

import (
	"bytes"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// After an agent cancels a request (notifications/cancelled), it gets no
// response for it: the specification says a receiver of a cancellation
// SHOULD NOT answer the request, and a client no longer expects one. mcp-go
// answers every request, so the transports note the cancelled ids and
// their writers drop the response to one. Request ids are never reused
// within a session, so a late cancellation (the response already went
// out) leaves an entry that matches nothing; entries expire regardless.

// cancelledTTL is how long a cancelled id waits for its response;
// cancelledMax bounds the ids kept per session.
const (
	cancelledTTL = 2 * time.Minute
	cancelledMax = 1024
)

// cancelledIDs are the request ids agents cancelled, per MCP session.
type cancelledIDs struct {
	n  atomic.Int64 // ids held: writers skip the check at 0
	mu sync.Mutex
	m  map[string]map[string]time.Time // session → id (canonical JSON) → when
}

// canonicalID is a request id as one JSON text, whether it came as a
// number or a string.
func canonicalID(raw json.RawMessage) (string, bool) {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	switch v.(type) {
	case string, float64:
	default:
		return "", false
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}

// note records the id a notifications/cancelled on session names.
func (c *cancelledIDs) note(session string, msg []byte) {
	if !bytes.Contains(msg, []byte("notifications/cancelled")) {
		return
	}
	var n struct {
		Method string `json:"method"`
		Params struct {
			RequestID json.RawMessage `json:"requestId"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &n) != nil || n.Method != "notifications/cancelled" {
		return
	}
	id, ok := canonicalID(n.Params.RequestID)
	if !ok {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]map[string]time.Time{}
	}
	ids := c.m[session]
	if ids == nil {
		ids = map[string]time.Time{}
		c.m[session] = ids
	}
	for k, at := range ids {
		if now.Sub(at) > cancelledTTL || len(ids) >= cancelledMax {
			delete(ids, k)
			c.n.Add(-1)
		}
	}
	if _, dup := ids[id]; !dup {
		c.n.Add(1)
	}
	ids[id] = now
}

// drop reports whether msg (one message as a transport writes it) is the
// response to a request cancelled on session, and forgets the id.
func (c *cancelledIDs) drop(session string, msg []byte) bool {
	if c.n.Load() == 0 {
		return false
	}
	var r struct {
		ID     json.RawMessage `json:"id"`
		Method *string         `json:"method"`
	}
	if json.Unmarshal(messageJSON(msg), &r) != nil || r.Method != nil {
		return false
	}
	id, ok := canonicalID(r.ID)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[session][id]; !ok {
		return false
	}
	delete(c.m[session], id)
	c.n.Add(-1)
	return true
}

// forget drops a closed session's ids.
func (c *cancelledIDs) forget(session string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n.Add(-int64(len(c.m[session])))
	delete(c.m, session)
}

// messageJSON is the JSON of one message as a transport writes it: a JSON
// line, or the data line of an SSE event.
func messageJSON(msg []byte) []byte {
	if bytes.HasPrefix(msg, []byte("event:")) || bytes.HasPrefix(msg, []byte("data:")) || bytes.HasPrefix(msg, []byte("id:")) {
		for l := range bytes.SplitSeq(msg, []byte("\n")) {
			if data, ok := bytes.CutPrefix(l, []byte("data: ")); ok {
				return data
			}
		}
		return nil
	}
	return bytes.TrimRight(msg, "\r\n")
}
