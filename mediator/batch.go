package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/server"
)

// JSON-RPC batches. Protocol versions 2024-11-05 and 2025-03-26 let a
// client send several messages in one POST as a JSON array (2025-06-18
// removed it); mcp-go's streamable HTTP server takes one message per POST.
// The gate splits a batch on a session of those versions and hands each
// message to mcp-go as a POST of its own, concurrently, with the batch's
// headers: each is authorised, answered and recorded as if sent alone.
// The answers are joined the way the 2025-03-26 transport asks:
//   - a batch of only notifications and responses gets 202 and no body;
//   - a client that takes an event stream gets one: each message's
//     notifications and response go out as events as they come, so a
//     call's progress still precedes its result;
//   - otherwise, one JSON array of the responses, in the batch's order.

// maxBatch bounds the messages of one batch.
const maxBatch = 64

// batchAllowed reports whether sessions of protocol version may batch.
func batchAllowed(version string) bool {
	return version == "2024-11-05" || version == "2025-03-26"
}

// serveBatch splits body, a JSON array, into messages for mcp-go and joins
// their answers. The session sid has been checked to be the agent's.
func (g *httpGate) serveBatch(ctx context.Context, w http.ResponseWriter, r *http.Request, sid string, body []byte) {
	if err := g.batchRefusal(r, sid); err != nil {
		g.refuse(ctx, w, g.call(ctx, r, sid, "", ""), http.StatusBadRequest, err)
		return
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(body, &msgs); err != nil {
		g.refuse(ctx, w, g.call(ctx, r, sid, "", ""), http.StatusBadRequest, invalidJSON())
		return
	}
	if status, err := batchSize(len(msgs)); err != nil {
		g.refuse(ctx, w, g.call(ctx, r, sid, "", ""), status, err)
		return
	}
	bw := &batchWriter{w: w, stream: strings.Contains(r.Header.Get("Accept"), "text/event-stream"),
		answers: make([][]byte, len(msgs))}
	var wg sync.WaitGroup
	for i, m := range batchMembers(msgs) {
		if m.err != nil {
			// JSON-RPC answers a bad member with an error of its own
			// and the rest of the batch as usual.
			_ = g.s.reject(ctx, g.call(ctx, r, sid, m.method, m.name), m.err)
			bw.add(i, jsonRPCError(requestIDOf(msgs[i]), -32600, m.err.Error()))
			continue
		}
		wg.Go(func() {
			p := &batchPart{b: bw, i: i, h: http.Header{}}
			g.serveMessage(ctx, p, r.Clone(ctx), sid, msgs[i], m.method)
			p.finish()
		})
	}
	wg.Wait()
	bw.finish()
}

// batchRefusal says why the session sid may not batch, or nil.
func (g *httpGate) batchRefusal(r *http.Request, sid string) error {
	if sid == "" {
		return fmt.Errorf("%w: JSON-RPC batches are not accepted without a session: send initialize alone (protocol version 2025-03-26 or earlier) and batch on its session, or send one message per request", ErrInvalidRequest)
	}
	version := ""
	if cs, ok := g.s.live.Load(sid); ok {
		if v, ok := cs.(server.SessionWithProtocolVersion); ok {
			version = v.ProtocolVersion()
		}
	}
	if h := r.Header.Get(server.HeaderKeyProtocolVersion); h != "" && !batchAllowed(h) {
		version = h // the request says it follows a later revision
	}
	if !batchAllowed(version) {
		return fmt.Errorf("%w: JSON-RPC batches are not accepted on a session of protocol version %q (MCP removed batching in 2025-06-18; only 2024-11-05 and 2025-03-26 sessions may batch); send one message per request", ErrInvalidRequest, trimForError(version, 32))
	}
	return nil
}

// batchMember says why one message of a batch cannot be served, or nil.
func batchMember(msg []byte, kind int, method string) error {
	switch {
	case kind == bodyBatch:
		return fmt.Errorf("%w: a JSON-RPC batch cannot hold another batch", ErrInvalidRequest)
	case kind == bodyInvalid || len(bytes.TrimSpace(msg)) == 0 || bytes.TrimSpace(msg)[0] != '{':
		return fmt.Errorf("%w: a member of the JSON-RPC batch is not a JSON-RPC message object", ErrInvalidRequest)
	case method == "initialize":
		return fmt.Errorf("%w: initialize cannot be part of a JSON-RPC batch; send it alone", ErrInvalidRequest)
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(msg, &m) != nil {
		return fmt.Errorf("%w: a member of the JSON-RPC batch is not a JSON-RPC message object", ErrInvalidRequest)
	}
	if _, ok := canonicalID(m.ID); m.ID != nil && !ok {
		return fmt.Errorf("%w: a JSON-RPC id must be a string or a number, not %s", ErrInvalidRequest, trimForError(string(m.ID), 32))
	}
	if method != "" && (m.Result != nil || m.Error != nil) {
		return fmt.Errorf("%w: a member of the JSON-RPC batch has both a method and a result or error; a message is a request, a notification or a response, not two", ErrInvalidRequest)
	}
	return nil
}

// batchSize says why a batch of n messages is refused, with the HTTP
// status for it, or nil.
func batchSize(n int) (int, error) {
	switch {
	case n == 0:
		return http.StatusBadRequest, fmt.Errorf("%w: the JSON-RPC batch is empty; send at least one message", ErrInvalidRequest)
	case n > maxBatch:
		return http.StatusRequestEntityTooLarge, fmt.Errorf("%w: the JSON-RPC batch holds %d messages, over the cap of %d; send it in smaller batches", ErrInvalidRequest, n, maxBatch)
	}
	return 0, nil
}

// batchEntry is one message of a batch as inspected.
type batchEntry struct {
	method, name string
	id           string // its request id as canonicalID gives it; "" when it is no request
	err          error  // why it cannot be served, or nil
}

// batchMembers inspects each message of a batch (batchMember) and refuses
// the second request with an id already given: its answer could not be
// told from the first's.
func batchMembers(msgs []json.RawMessage) []batchEntry {
	out := make([]batchEntry, len(msgs))
	seen := map[string]bool{}
	for i, msg := range msgs {
		method, name, kind := inspectBody(msg)
		m := batchEntry{method: method, name: name, err: batchMember(msg, kind, method)}
		if id, isRequest := canonicalID(requestIDOf(msg)); m.err == nil && method != "" && isRequest {
			if seen[id] {
				m.err = fmt.Errorf("%w: two requests of the JSON-RPC batch have the id %s; give each its own", ErrInvalidRequest, trimForError(id, 64))
			} else {
				seen[id], m.id = true, id
			}
		}
		out[i] = m
	}
	return out
}

// requestIDOf is the id of msg when it has a valid one, else JSON null.
func requestIDOf(msg []byte) json.RawMessage {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(msg, &m) == nil {
		if _, ok := canonicalID(m.ID); ok {
			return m.ID
		}
	}
	return json.RawMessage("null")
}

// jsonRPCError is the JSON text of an error response.
func jsonRPCError(id json.RawMessage, code int, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
	return b
}

// batchWriter joins the answers to a batch's messages into one response.
type batchWriter struct {
	w       http.ResponseWriter
	stream  bool // the client takes an event stream: answers go out as events
	mu      sync.Mutex
	started bool     // the event stream is open
	broken  error    // writing the stream failed
	answers [][]byte // without a stream: each message's response, by position
}

// event writes one SSE event (as mcp-go writes it, "event: ...\ndata:
// ...\n\n") on the batch's stream, opening the stream first.
func (b *batchWriter) event(ev []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.broken != nil {
		return b.broken
	}
	if !b.started {
		h := b.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		b.started = true
		b.w.WriteHeader(http.StatusOK)
	}
	if _, err := b.w.Write(ev); err != nil {
		b.broken = fmt.Errorf("the agent's stream stopped: %w", err)
		return b.broken
	}
	if err := http.NewResponseController(b.w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		b.broken = fmt.Errorf("the agent's stream stopped: %w", err)
		return b.broken
	}
	return nil
}

// add gives the batch message i's response (one JSON-RPC message).
func (b *batchWriter) add(i int, msg []byte) {
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 {
		return
	}
	if b.stream {
		_ = b.event(fmt.Appendf(nil, "event: message\ndata: %s\n\n", msg))
		return
	}
	b.mu.Lock()
	b.answers[i] = bytes.Clone(msg) // mcp-go reuses its buffers
	b.mu.Unlock()
}

// finish ends the response once every message has been answered.
func (b *batchWriter) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return
	}
	var out [][]byte
	for _, a := range b.answers {
		if a != nil {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		b.w.WriteHeader(http.StatusAccepted) // notifications and responses only
		return
	}
	b.w.Header().Set("Content-Type", "application/json")
	b.w.WriteHeader(http.StatusOK)
	_, _ = b.w.Write(append(append([]byte{'['}, bytes.Join(out, []byte{','})...), ']', '\n'))
}

// batchPart is the ResponseWriter of one message of a batch: an event
// stream is passed on event by event; a JSON body (or a JSON-RPC error
// the gate wrote) is held until the message is done and then added.
type batchPart struct {
	b      *batchWriter
	i      int
	h      http.Header
	status int
	sse    bool
	body   bytes.Buffer
}

func (p *batchPart) Header() http.Header { return p.h }

func (p *batchPart) WriteHeader(status int) {
	if p.status != 0 {
		return
	}
	p.status = status
	p.sse = strings.HasPrefix(p.h.Get("Content-Type"), "text/event-stream")
}

func (p *batchPart) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.WriteHeader(http.StatusOK)
	}
	if !p.sse {
		p.body.Write(b)
		return len(b), nil
	}
	if p.b.stream {
		if err := p.b.event(b); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	// No stream for the client: keep the response, drop notifications.
	if msg := messageJSON(b); isResponse(msg) {
		p.b.add(p.i, msg)
	}
	return len(b), nil
}

// FlushError lets http.ResponseController flush a part: events are
// flushed as they are written.
func (p *batchPart) FlushError() error { return nil }

// finish adds a held JSON body as the message's response.
func (p *batchPart) finish() {
	if p.sse || p.status == http.StatusAccepted {
		return
	}
	if msg := bytes.TrimSpace(p.body.Bytes()); len(msg) > 0 {
		p.b.add(p.i, msg)
	}
}

// isResponse reports whether msg is a JSON-RPC response (an id, no method).
func isResponse(msg []byte) bool {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method *string         `json:"method"`
	}
	return json.Unmarshal(msg, &m) == nil && m.Method == nil && len(m.ID) > 0
}

// Over stdio, the members of a batch go to mcp-go as lines of their own,
// and the passWriter holds their responses until every request of the
// batch is answered (or cancelled), then writes them as one JSON array.
// Notifications (a call's progress) go out as they come, before it.

// splitStdioBatch returns the lines to hand mcp-go for the batch line,
// answering at once what cannot be served: the whole batch, on a session
// that may not batch, or a bad member.
func (s *Server) splitStdioBatch(ctx context.Context, pw *passWriter, line []byte) [][]byte {
	ctx = WithCredentials(ctx, Credentials{Transport: "stdio"})
	record := func(method, name string, err error) {
		c := s.newCall(ctx, method, name)
		s.identify(ctx, c)
		_ = s.reject(ctx, c, err)
	}
	var msgs []json.RawMessage
	_ = json.Unmarshal(line, &msgs) // the line is valid JSON: an array
	_, err := batchSize(len(msgs))
	if !batchAllowed(s.stdioVersion()) {
		err = fmt.Errorf("%w: JSON-RPC batches are not accepted on a session of protocol version %q (MCP removed batching in 2025-06-18; only 2024-11-05 and 2025-03-26 sessions may batch); send one message per line", ErrInvalidRequest, trimForError(s.stdioVersion(), 32))
	}
	if err != nil {
		record("", "", err)
		_ = pw.writeLine(jsonRPCError(json.RawMessage("null"), -32600, err.Error()))
		return nil
	}
	members := batchMembers(msgs)
	ids := make([]string, len(msgs))
	answers := make([][]byte, len(msgs))
	for i, m := range members {
		if m.err != nil {
			record(m.method, m.name, m.err)
			answers[i] = jsonRPCError(requestIDOf(msgs[i]), -32600, m.err.Error())
		}
		ids[i] = m.id
	}
	joined, busy := pw.batches.open(ids, answers)
	var out [][]byte
	for i, m := range members {
		switch {
		case busy[i]:
			// not run: its answer could not be told from the earlier one's
			record(m.method, m.name, fmt.Errorf("%w: %s", ErrInvalidRequest, stillRunning))
		case m.err == nil:
			out = append(out, append(bytes.TrimSpace(msgs[i]), '\n'))
		}
	}
	if joined != nil {
		_ = pw.writeLine(joined)
	}
	return out
}

// stillRunning is why a batch's request whose id an earlier request still
// running has is not run.
const stillRunning = "a request of an earlier JSON-RPC batch with this id is still running; give each request its own id"

// stdioVersion is the protocol version the stdio agent initialized with.
func (s *Server) stdioVersion() string {
	if cs, ok := s.live.Load("stdio"); ok {
		if v, ok := cs.(server.SessionWithProtocolVersion); ok {
			return v.ProtocolVersion()
		}
	}
	return ""
}

// stdioBatches are the batches of a stdio agent still waiting for answers.
type stdioBatches struct {
	waiting atomic.Int64 // requests waiting: Write skips the check at 0
	mu      sync.Mutex
	byID    map[string]*stdioBatch // a waiting request's id → its batch
}

type stdioBatch struct {
	answers [][]byte // by position in the batch
	pos     map[string]int
	left    int
}

// open registers a batch whose member i waits for the response to request
// ids[i] ("" for a member that gets none, or whose answer is answers[i]).
// busy[i] says member i was refused, answered at once, because an earlier
// batch waits for its id: it must not run. joined is the batch's answer
// when nothing is left to wait for, or nil.
func (b *stdioBatches) open(ids []string, answers [][]byte) (joined []byte, busy []bool) {
	bt := &stdioBatch{answers: answers, pos: map[string]int{}}
	busy = make([]bool, len(ids))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byID == nil {
		b.byID = map[string]*stdioBatch{}
	}
	for i, id := range ids {
		if id == "" {
			continue
		}
		if _, ok := b.byID[id]; ok {
			bt.answers[i] = jsonRPCError(json.RawMessage(id), -32600, "invalid request: "+stillRunning)
			busy[i] = true
			continue
		}
		b.byID[id], bt.pos[id] = bt, i
		bt.left++
		b.waiting.Add(1)
	}
	if bt.left == 0 {
		return bt.join(), busy
	}
	return nil, busy
}

// abandon answers the batches still waiting when the agent's input has
// ended and every handler has returned: a member never answered gets an
// error saying so (its outcome is in the audit log). It returns their
// answers.
func (b *stdioBatches) abandon() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out [][]byte
	for id, bt := range b.byID {
		bt.answers[bt.pos[id]] = jsonRPCError(json.RawMessage(id), -32603,
			"internal error: the agent's input ended before this request of the JSON-RPC batch was answered; the audit log has its outcome")
		delete(b.byID, id)
		b.waiting.Add(-1)
		if bt.left--; bt.left == 0 {
			out = append(out, bt.join())
		}
	}
	return out
}

// take reports whether msg, a line as mcp-go writes it, answers a waiting
// request of a batch; keep says whether it is kept (false: a cancelled
// request's, which gets no answer). When it was the batch's last, joined is
// the batch's answer.
func (b *stdioBatches) take(msg []byte, keep bool) (held bool, joined []byte) {
	if b.waiting.Load() == 0 {
		return false, nil
	}
	m := bytes.TrimSpace(msg)
	if !isResponse(m) {
		return false, nil
	}
	id, ok := canonicalID(requestIDOf(m))
	if !ok {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bt := b.byID[id]
	if bt == nil {
		return false, nil
	}
	delete(b.byID, id)
	b.waiting.Add(-1)
	if keep {
		bt.answers[bt.pos[id]] = bytes.Clone(m)
	}
	if bt.left--; bt.left > 0 {
		return true, nil
	}
	return true, bt.join()
}

// join is the batch's answer: its responses as one JSON array, or nil
// when there are none (a batch of notifications is not answered).
func (bt *stdioBatch) join() []byte {
	var out [][]byte
	for _, a := range bt.answers {
		if a != nil {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return append(append([]byte{'['}, bytes.Join(out, []byte{','})...), ']')
}
