package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
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

// The agent's reason reaches the upstream too. mcp-go cancels a handler's
// context without a cause and tells handlers no request id, so a hook tags
// each forwarded request with its id (tagRequestID), the handler registers
// a context of its own under it (start), and note, which runs before mcp-go
// sees the notification, cancels that context with the agent's reason as
// its cause (*AgentCancelled). The tools layer sends the upstream that
// reason in its own notifications/cancelled.

// maxCancelReason bounds the reason relayed to an upstream.
const maxCancelReason = 1024

// AgentCancelled is the cause of a call's context when the agent cancelled
// the request (notifications/cancelled); Reason is the agent's, possibly
// empty, cut to 1 KiB.
type AgentCancelled struct{ Reason string }

func (e *AgentCancelled) Error() string {
	if e.Reason == "" {
		return "the agent cancelled the request"
	}
	return "the agent cancelled the request: " + e.Reason
}

// cancelledIDs are the request ids agents cancelled, per MCP session, and
// the requests still running that a cancellation can stop with its reason.
type cancelledIDs struct {
	n       atomic.Int64 // ids held: writers skip the check at 0
	mu      sync.Mutex
	m       map[string]map[string]time.Time // session → id (canonical JSON) → when
	running map[runningKey]*runningCall
}

type runningKey struct{ session, id string }

// runningCall is one registration: a later request with the same id
// replaces it, and its done then leaves the later one's in place.
type runningCall struct{ cancel context.CancelCauseFunc }

// requestIDKey is the Header entry that carries a request's id from
// mcp-go's hook to its handler. Its name has spaces, which no HTTP client
// can send, so the id cannot be forged.
const requestIDKey = "mediator request id"

// tagRequestID records the JSON-RPC id in the Header of a request mcp-go
// is about to hand a handler.
func tagRequestID(h *http.Header, id any) {
	raw, err := json.Marshal(id)
	if err != nil {
		return
	}
	cid, ok := canonicalID(raw)
	if !ok {
		return
	}
	if *h == nil {
		*h = http.Header{}
	}
	(*h)[requestIDKey] = []string{cid}
}

// taggedID is the id tagRequestID recorded, or "".
func taggedID(h http.Header) string {
	if v := h[requestIDKey]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// start registers request id of session as running: until done is
// called, a cancellation of it cancels the returned context with the
// agent's reason.
func (c *cancelledIDs) start(ctx context.Context, session, id string) (context.Context, func()) {
	if id == "" || session == "" {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	k := runningKey{session, id}
	mine := &runningCall{cancel}
	c.mu.Lock()
	if c.running == nil {
		c.running = map[runningKey]*runningCall{}
	}
	c.running[k] = mine
	c.mu.Unlock()
	return ctx, func() {
		c.mu.Lock()
		if c.running[k] == mine {
			delete(c.running, k)
		}
		c.mu.Unlock()
		cancel(nil)
	}
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
			Reason    string          `json:"reason"`
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
	if r := c.running[runningKey{session, id}]; r != nil {
		reason, _ := capUTF8(n.Params.Reason, maxCancelReason)
		r.cancel(&AgentCancelled{Reason: reason})
	}
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
