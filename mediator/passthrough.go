package mediator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// An upstream's JSON-RPC error must reach the agent with its own code,
// message and data, as it would calling the upstream directly. mcp-go turns
// every error a handler returns into -32603 (internal error) with the
// error's text as message, so the handler returns a passedError whose text
// carries a random token, and the agent's transport (stdio's writer, the
// HTTP gate's response writer) replaces the error object of a response
// holding a token it issued with the upstream's. A token is 128 random
// bits, used once and only in the scope it was issued in (one HTTP
// request, one stdio connection): an upstream cannot name another call's
// error by writing a token into its own.

// passTokenPrefix starts every token; passTokenHex is its random part.
const (
	passTokenPrefix = "mcpm-upstream-error-"
	passTokenHex    = 32
)

// passTTL is how long an issued token waits for its response (a call the
// agent cancelled is never answered); passMax bounds the table.
const (
	passTTL = time.Minute
	passMax = 4096
)

// passthrough holds the upstream errors waiting for their responses.
type passthrough struct {
	mu    sync.Mutex
	m     map[string]passEntry
	swept time.Time // when expired entries were last removed
	bytes int       // the raw bytes the entries hold (whole and defs)
}

// passMaxBytes bounds the raw bytes held for responses not yet written (a
// result, a listing): beyond it, mcp-go's encoding goes out instead.
const passMaxBytes = 64 << 20

// size is how many raw bytes e holds.
func (e passEntry) size() int {
	n := len(e.whole)
	for _, d := range e.defs {
		n += len(d)
	}
	return n
}

type passEntry struct {
	err *UpstreamRPCError
	// listKey and defs: a list response's member (e.g. "tools") and the
	// upstreams' definitions to put in it (listing.go)
	listKey string
	defs    []json.RawMessage
	whole   json.RawMessage // or the member's whole value (complete.go)
	scope   *passScope
	at      time.Time
}

// passScope is the stream a response is written on: one per HTTP request
// and per stdio connection, found in the handler's context. It is compared
// by address. notify, when set, writes one notification (JSON) on that
// stream at once, ahead of anything written later there: a call's progress
// and log messages go out before its result, on its own stream, instead
// of through mcp-go's per-session notification channel, which another
// stream of the session (an HTTP GET) may drain and which stdio writes
// from another goroutine than responses.
type passScope struct {
	notify func(ctx context.Context, msg []byte) error
	// asks: the stream also takes the mediator's own requests to the agent
	// (asks.go), whose answers the HTTP gate takes before mcp-go.
	asks bool
}

type passScopeKey struct{}

func withPassScope(ctx context.Context, sc *passScope) context.Context {
	return context.WithValue(ctx, passScopeKey{}, sc)
}

// scopeOf is the stream ctx's response is written on, or nil when its
// transport does not rewrite responses.
func scopeOf(ctx context.Context) *passScope {
	sc, _ := ctx.Value(passScopeKey{}).(*passScope)
	return sc
}

// passedError is what a handler returns for an upstream's JSON-RPC error.
type passedError struct {
	token string
	err   *UpstreamRPCError
}

func (e *passedError) Error() string { return e.err.Error() + " [" + e.token + "]" }
func (e *passedError) Unwrap() error { return e.err }

// errorFor returns the error a handler hands mcp-go for err: a passedError
// when err is (or wraps) an upstream's JSON-RPC error and the transport
// rewrites responses, nil otherwise.
func (p *passthrough) errorFor(ctx context.Context, err error) error {
	var rpc *UpstreamRPCError
	var own *ownRPCError
	sc := scopeOf(ctx)
	switch {
	case sc == nil:
		return nil
	case errors.As(err, &own):
		rpc = own.rpc
	case !errors.As(err, &rpc):
		return nil
	}
	var b [passTokenHex / 2]byte
	if _, rerr := rand.Read(b[:]); rerr != nil {
		return nil // an ordinary error result then: nothing is lost but the code
	}
	token := passTokenPrefix + hex.EncodeToString(b[:])
	if !p.put(token, passEntry{err: rpc, scope: sc, at: time.Now()}) {
		return nil
	}
	return &passedError{token: token, err: rpc}
}

// put keeps e under token, unless the table is full of live entries.
func (p *passthrough) put(token string, e passEntry) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]passEntry{}
	}
	// A response may never be written (its request cancelled, or an
	// answer mcp-go replaced): what waits past the TTL is dropped, at
	// most every tenth of it, or at once when the table is full.
	if len(p.m) >= passMax || p.bytes+e.size() > passMaxBytes || e.at.Sub(p.swept) > passTTL/10 {
		p.swept = e.at
		for k, old := range p.m {
			if e.at.Sub(old.at) > passTTL {
				p.bytes -= old.size()
				delete(p.m, k)
			}
		}
		if len(p.m) >= passMax || p.bytes+e.size() > passMaxBytes {
			return false
		}
	}
	p.m[token] = e
	p.bytes += e.size()
	return true
}

// discard forgets the listing entry whose token msg, a response that will
// not be written, names.
func (p *passthrough) discard(msg []byte, sc *passScope) {
	if bytes.Contains(msg, []byte(listingTokenPrefix)) {
		p.takeIssued(msg, sc)
	}
}

// take returns and forgets the error issued under token in sc.
func (p *passthrough) take(token string, sc *passScope) (*UpstreamRPCError, bool) {
	e, ok := p.takeEntry(token, sc)
	if !ok || e.err == nil {
		return nil, false
	}
	return e.err, true
}

// takeEntry returns and forgets what was issued under token in sc.
func (p *passthrough) takeEntry(token string, sc *passScope) (passEntry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[token]
	if !ok || e.scope != sc {
		return passEntry{}, false
	}
	delete(p.m, token)
	p.bytes -= e.size()
	return e, true
}

// rewrite returns msg, one message as a transport writes it (a JSON line, or
// an SSE event whose data line is the JSON), with the error of a response
// that names a token issued in sc replaced by the upstream's error, or the
// tools of a tools/list response by the upstreams' definitions
// (listing.go); and the error's code (0: no error replaced).
func (p *passthrough) rewrite(msg []byte, sc *passScope) ([]byte, int) {
	// Both are tried: an upstream's text in a listing may hold the error
	// token's prefix, which must not keep the listing from its rewrite.
	if bytes.Contains(msg, []byte(passTokenPrefix)) {
		code := 0
		out := p.rewriteMessage(msg, func(b []byte) ([]byte, bool) {
			var out []byte
			out, code = p.rewriteJSON(b, sc)
			return out, code != 0
		})
		if code != 0 {
			return out, code
		}
	}
	if bytes.Contains(msg, []byte(listingTokenPrefix)) {
		return p.rewriteMessage(msg, func(b []byte) ([]byte, bool) { return p.rewriteListing(b, sc) }), 0
	}
	return msg, 0
}

// rewriteJSON rewrites one JSON-RPC error response (see rewrite).
func (p *passthrough) rewriteJSON(b []byte, sc *passScope) ([]byte, int) {
	var resp struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &resp) != nil || resp.Error == nil {
		return b, 0
	}
	i := strings.LastIndex(resp.Error.Message, passTokenPrefix)
	if i < 0 || len(resp.Error.Message) < i+len(passTokenPrefix)+passTokenHex {
		return b, 0
	}
	rpc, ok := p.take(resp.Error.Message[i:i+len(passTokenPrefix)+passTokenHex], sc)
	if !ok {
		return b, 0
	}
	out, err := marshalAsSent(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data,omitempty"`
		} `json:"error"`
	}{mcp.JSONRPC_VERSION, resp.ID, struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data,omitempty"`
	}{rpc.Code, rpc.Message, rpc.Data}})
	if err != nil {
		return b, 0
	}
	return out, rpc.Code
}

// passWriter rewrites what mcp-go's stdio server writes: one message per
// Write.
type passWriter struct {
	mu sync.Mutex // one message at a time: mcp-go's and the mediator's
	w  io.Writer
	p  *passthrough
	sc *passScope
	// cancelled: the response to a request the agent cancelled is not
	// written (cancelled.go).
	cancelled *cancelledIDs
	// batches holds the responses to the members of a batch until they
	// can go out together (batch.go); nil: no batches.
	batches *stdioBatches
}

func (w *passWriter) Write(b []byte) (int, error) {
	if w.cancelled != nil && w.cancelled.drop("stdio", b) {
		w.p.discard(b, w.sc)
		if w.batches != nil {
			if _, joined := w.batches.take(b, false); joined != nil {
				return len(b), w.writeLine(joined)
			}
		}
		return len(b), nil
	}
	out, _ := w.p.rewrite(b, w.sc)
	if w.batches != nil {
		if held, joined := w.batches.take(out, true); held {
			if joined != nil {
				return len(b), w.writeLine(joined)
			}
			return len(b), nil
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// writeLine writes one message the mediator made as a line.
func (w *passWriter) writeLine(msg []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.w.Write(append(msg, '\n'))
	return err
}

// writeNotification writes msg as one line, between mcp-go's messages.
// A pipe takes no deadline: over stdio the process serves one agent, whose
// own stalled reader then holds up only itself.
func (w *passWriter) writeNotification(_ context.Context, msg []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.w.Write(append(msg, '\n'))
	return err
}

// passResponseWriter rewrites what mcp-go's streamable HTTP server writes
// for one request: a JSON body (one Write) or SSE events (one Write each).
// The status of a JSON body is held until the body is seen, since
// protocol version 2026-07-28 maps some error codes onto HTTP statuses.
// A plain-text error mcp-go writes (a stray response, a bad session) goes
// out as a JSON-RPC error body with the same status, so that every error
// on the MCP endpoint is one a JSON-RPC client can read.
type passResponseWriter struct {
	http.ResponseWriter
	p  *passthrough
	sc *passScope
	// cancelled and session: the response to a request the agent
	// cancelled is not written (cancelled.go).
	cancelled *cancelledIDs
	session   string
	modern    bool
	mu        sync.Mutex // one message at a time: mcp-go's and the mediator's
	status    int
	started   bool
	textErr   bool   // the held status is a plain-text error's: its text becomes a JSON-RPC error
	hint      string // added to a plain-text error's message (what to do instead)
	closed    bool   // the handler returned: nothing more may be written
	broken    error  // a notification's write failed (the client stopped reading)
}

// writeNotification writes msg as an SSE event on this request's stream,
// starting the stream when nothing was written yet. mcp-go then writes the
// response as an event too (the session is marked upgraded by the caller).
// The write ends at ctx's deadline: a client that stops reading its stream
// cannot hold the writer, or the agents behind it, for longer; after such
// a failure the stream takes no more notifications.
func (w *passResponseWriter) writeNotification(ctx context.Context, msg []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errStreamClosed
	}
	if w.broken != nil {
		return w.broken
	}
	if !w.started {
		if w.status != 0 && w.status != http.StatusOK {
			return errStreamClosed // an error status is on its way
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("Connection", "keep-alive")
		w.started = true
		w.ResponseWriter.WriteHeader(http.StatusOK)
	}
	rc := http.NewResponseController(w.ResponseWriter)
	if dl, ok := ctx.Deadline(); ok && rc.SetWriteDeadline(dl) == nil {
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	}
	_, err := fmt.Fprintf(w.ResponseWriter, "event: message\ndata: %s\n\n", msg)
	if err == nil {
		if err = rc.Flush(); errors.Is(err, http.ErrNotSupported) {
			err = nil // the body goes out with the response
		}
	}
	if err != nil {
		w.broken = fmt.Errorf("the agent's stream stopped taking notifications: %w", err)
		return w.broken
	}
	return nil
}

// errStreamClosed: the request's stream can take no more notifications.
var errStreamClosed = errors.New("the request's stream is closed")

func (w *passResponseWriter) WriteHeader(status int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.status != 0 {
		return
	}
	ct := w.Header().Get("Content-Type")
	if status >= http.StatusBadRequest && strings.HasPrefix(ct, "text/plain") {
		w.status, w.textErr = status, true // held until the text
		return
	}
	if strings.HasPrefix(ct, "application/json") {
		w.status = status // held until the body
		return
	}
	w.started = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *passResponseWriter) Write(b []byte) (int, error) {
	if w.writeTextError(string(b)) {
		return len(b), nil
	}
	if w.cancelled != nil && w.cancelled.drop(w.session, b) {
		w.p.discard(b, w.sc)
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.started {
			w.status = http.StatusAccepted // the request is closed without an answer
			w.ResponseWriter.Header().Del("Content-Type")
		}
		return len(b), nil
	}
	out, code := w.p.rewrite(b, w.sc)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		w.started = true
		status := w.status
		if status == 0 {
			status = http.StatusOK
		}
		if code != 0 && w.modern && status == http.StatusOK {
			status = modernErrorStatus(code)
		}
		w.ResponseWriter.WriteHeader(status)
	}
	if _, err := w.ResponseWriter.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *passResponseWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started && w.status != 0 {
		w.started = true
		w.ResponseWriter.WriteHeader(w.status)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *passResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writeTextError writes a held plain-text error as a JSON-RPC error body
// whose message is the text (with the hint), and reports whether it did.
func (w *passResponseWriter) writeTextError(text string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.textErr || w.started {
		return false
	}
	w.started = true
	msg := strings.TrimSpace(text)
	if msg == "" {
		msg = http.StatusText(w.status)
	}
	if w.hint != "" {
		msg += ": " + w.hint
	}
	code := mcp.INVALID_REQUEST
	if w.status >= http.StatusInternalServerError {
		code = mcp.INTERNAL_ERROR
	}
	writeJSONRPCError(w.ResponseWriter, w.status, code, msg)
	return true
}

// finish writes a held status that no body followed.
func (w *passResponseWriter) finish() {
	if w.writeTextError("") {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if !w.started && w.status != 0 {
		w.started = true
		w.ResponseWriter.WriteHeader(w.status)
	}
}

// modernErrorStatus is the HTTP status protocol version 2026-07-28 gives a
// JSON-RPC error code, as mcp-go's streamable HTTP server maps it.
func modernErrorStatus(code int) int {
	switch code {
	case mcp.METHOD_NOT_FOUND:
		return http.StatusNotFound
	case mcp.HEADER_MISMATCH, mcp.MISSING_REQUIRED_CLIENT_CAPABILITY, mcp.UNSUPPORTED_PROTOCOL_VERSION,
		mcp.INVALID_REQUEST, mcp.INVALID_PARAMS, mcp.PARSE_ERROR:
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// rewriteMessage applies fn to the JSON of msg, one message as a transport
// writes it (a JSON line, or an SSE event whose data line is the JSON).
func (p *passthrough) rewriteMessage(msg []byte, fn func([]byte) ([]byte, bool)) []byte {
	data := messageJSON(msg) // a part of msg
	out, ok := fn(data)
	if !ok {
		return msg
	}
	at := bytes.Index(msg, data)
	return slices.Concat(msg[:at], out, msg[at+len(data):])
}

// marshalAsSent encodes v as JSON without escaping <, > and & (which
// encoding/json does by default, for HTML): what an upstream sent, raw
// messages included, reaches the agent with the same characters.
func marshalAsSent(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}
