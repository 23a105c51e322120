package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Bridge relays one stdio agent (newline-delimited JSON-RPC on In and Out)
// to the streamable HTTP endpoint of a serve on its local socket. Each
// request line is POSTed on a connection of its own, so an agent may have
// many calls in flight; what the serve answers on a request's stream
// (progress, log messages, a relayed sampling request, the result) is
// written to Out in the order it came, one message per line; what it sends
// on the session's stream (list changes, resource updates) too.
// Notifications and responses are POSTed in the order they are read.
//
// The serve does all the mediation and records every message; the bridge
// only moves bytes, and answers a request itself only when the serve
// cannot: then with a JSON-RPC error that names why.
type Bridge struct {
	// Socket is the serve's local socket.
	Socket string
	In     io.Reader
	Out    io.Writer
	Log    *slog.Logger
	// MaxLine caps a line read from In: a longer one is cut there and
	// sent, for the serve to refuse and record as too large (its
	// limits.max_request_bytes). 0: 4 MiB.
	MaxLine int
	// MaxMessage caps one message from the serve (0: 64 MiB).
	MaxMessage int

	client   *http.Client
	outMu    sync.Mutex
	mu       sync.Mutex // guards the fields below
	sid      string
	proto    string
	initLine []byte // the agent's initialize, replayed when the serve lost the session
	inited   []byte // and its notifications/initialized
	changed  chan struct{}
	reopenMu sync.Mutex
	fail     context.CancelCauseFunc
	wg       sync.WaitGroup
}

// MaxInFlight is how many requests of one agent the bridge has at the
// serve at a time (a stdio mediator's tool-call workers: 64).
const MaxInFlight = 64

// ErrGone is wrapped by Run's error when the serve went away.
var ErrGone = errors.New("the mediator serve went away")

// Run relays until In ends (it then waits for the calls in flight, ends
// the MCP session and returns nil), ctx ends, or the serve goes away (it
// answers what is in flight with errors and returns an error wrapping
// ErrGone, so that the MCP client sees its server exit).
func (b *Bridge) Run(ctx context.Context) error {
	if b.MaxLine <= 0 {
		b.MaxLine = 4 << 20
	}
	if b.MaxMessage <= 0 {
		b.MaxMessage = 64 << 20
	}
	if b.Log == nil {
		b.Log = slog.New(slog.DiscardHandler)
	}
	b.client = Client(b.Socket)
	defer b.client.CloseIdleConnections()
	b.changed = make(chan struct{})
	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	b.fail = fail
	// Requests are not cancelled when the serve goes: their own
	// connections fail, and each is answered with why.
	reqCtx := ctx

	inFlight := make(chan struct{}, MaxInFlight)
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		br := bufio.NewReaderSize(b.In, 64<<10)
		for {
			line, err := readLine(br, b.MaxLine)
			if len(bytes.TrimSpace(line)) > 0 {
				select {
				case lines <- line:
				case <-runCtx.Done():
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	go b.listen(runCtx)
	for {
		select {
		case <-runCtx.Done():
			b.waitInFlight(5 * time.Second)
			if cause := context.Cause(runCtx); errors.Is(cause, ErrGone) {
				return cause
			}
			return ctx.Err()
		case err := <-readErr:
			b.wg.Wait()
			b.endSession()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading stdin: %w", err)
		case line := <-lines:
			h := parseHead(line)
			if h.request && b.session() != "" && h.method != "initialize" {
				// At most MaxInFlight at a time: beyond, stdin waits,
				// as a stdio mediator's workers make it wait.
				select {
				case inFlight <- struct{}{}:
				case <-runCtx.Done():
					continue
				}
				b.wg.Add(1)
				go func() {
					defer func() { <-inFlight; b.wg.Done() }()
					b.send(reqCtx, line, h)
				}()
				continue
			}
			// Until the session is open, and for notifications and
			// responses, in the order they came.
			b.send(reqCtx, line, h)
		}
	}
}

func (b *Bridge) waitInFlight(max time.Duration) {
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(max):
	}
}

// head is what the bridge reads of a line.
type head struct {
	id      json.RawMessage // nil: none
	method  string
	request bool // a request (method and id) or a batch: has answers to wait for
	invalid bool
}

func parseHead(line []byte) head {
	t := bytes.TrimSpace(line)
	if len(t) > 0 && t[0] == '[' {
		return head{request: true}
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if err := json.Unmarshal(t, &m); err != nil {
		return head{invalid: true}
	}
	h := head{method: m.Method}
	if len(m.ID) > 0 && string(m.ID) != "null" {
		h.id = m.ID
	}
	h.request = h.method != "" && h.id != nil
	return h
}

// idInHead finds the id of a line too long to parse.
var idInHead = regexp.MustCompile(`"id"\s*:\s*("(?:[^"\\]|\\.){0,64}"|-?[0-9]{1,19})`)

// readLine reads one line of at most max bytes. A longer line is returned
// cut at max+1 bytes (so that the serve sees it is too long), the rest of
// it discarded.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) <= max+1 {
			line = append(line, frag...)
		} else if len(line) <= max {
			line = append(line, frag[:max+1-len(line)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

// send POSTs one line and relays what the serve answers.
func (b *Bridge) send(ctx context.Context, line []byte, h head) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > b.MaxLine {
		// Sent as it is, for the serve to refuse and record; its
		// refusal names no id, so the agent's is found here.
		if m := idInHead.FindSubmatch(line); m != nil && h.id == nil {
			h.id, h.request, h.invalid = json.RawMessage(m[1]), true, false
		}
	}
	for attempt := 0; ; attempt++ {
		sid := b.session()
		resp, err := b.do(ctx, http.MethodPost, line, sid)
		if err != nil {
			b.transportFailed(h, err)
			return
		}
		if resp.StatusCode == http.StatusNotFound && sid != "" && attempt == 0 && h.method != "initialize" {
			drain(resp)
			if err := b.reopen(ctx, sid); err != nil {
				b.answer(h, -32603, fmt.Sprintf("the mediator serve no longer knows this MCP session, and opening a new one failed: %v; restart this MCP server", err))
				return
			}
			continue
		}
		var inspect func([]byte)
		if h.method == "initialize" {
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" && resp.StatusCode == http.StatusOK {
				b.mu.Lock()
				b.initLine = append([]byte(nil), line...)
				b.mu.Unlock()
				inspect = func(msg []byte) { b.initialized(id, msg) }
			}
		}
		if h.method == "notifications/initialized" && resp.StatusCode < 300 {
			b.mu.Lock()
			b.inited = append([]byte(nil), line...)
			b.mu.Unlock()
		}
		b.relay(resp, h, inspect)
		return
	}
}

// initialized opens the session the serve issued for the agent's
// initialize once its result is in.
func (b *Bridge) initialized(sid string, msg []byte) {
	var m struct {
		Result struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Result.ProtocolVersion == "" {
		return
	}
	b.setSession(sid, m.Result.ProtocolVersion)
}

func (b *Bridge) session() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sid
}

func (b *Bridge) setSession(sid, proto string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sid = sid
	if proto != "" {
		b.proto = proto
	}
	close(b.changed)
	b.changed = make(chan struct{})
}

// do sends one HTTP request to the serve.
func (b *Bridge) do(ctx context.Context, method string, body []byte, sid string) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+MCPPath, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		b.mu.Lock()
		proto := b.proto
		b.mu.Unlock()
		if proto != "" {
			req.Header.Set("Mcp-Protocol-Version", proto)
		}
	}
	return b.client.Do(req)
}

// relay writes what the serve answered to one line.
func (b *Bridge) relay(resp *http.Response, h head, inspect func([]byte)) {
	defer drain(resp)
	ct := resp.Header.Get("Content-Type")
	switch {
	case resp.StatusCode == http.StatusAccepted:
	case strings.HasPrefix(ct, "text/event-stream"):
		answered := false
		err := readEvents(resp.Body, b.MaxMessage, func(msg []byte) {
			if inspect != nil {
				inspect(msg)
			}
			if h.id != nil && responseTo(msg, h.id) {
				answered = true
			}
			b.write(msg)
		})
		if h.id != nil && !answered {
			if err == nil {
				err = errors.New("its stream ended before the answer")
			}
			b.transportFailed(h, err)
		}
	case strings.HasPrefix(ct, "application/json"):
		body, err := io.ReadAll(io.LimitReader(resp.Body, int64(b.MaxMessage)+1))
		if err != nil || len(body) > b.MaxMessage {
			if h.request {
				b.transportFailed(h, fmt.Errorf("reading the answer: %v (or over %d bytes)", err, b.MaxMessage))
			}
			return
		}
		body = bytes.TrimSpace(body)
		if inspect != nil {
			inspect(body)
		}
		if resp.StatusCode >= 300 && !h.invalid {
			// The gate's refusals name no id: give the agent's back.
			if h.id == nil {
				b.Log.Warn("the mediator serve refused a message", "status", resp.StatusCode, "answer", clip(body))
				return
			}
			body = withID(body, h.id)
		}
		b.write(body)
	default:
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		msg := fmt.Sprintf("the mediator serve answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(text)))
		if resp.StatusCode < 300 {
			return
		}
		if h.id != nil {
			b.answer(h, -32603, msg)
			return
		}
		b.Log.Warn("the mediator serve refused a message", "status", resp.StatusCode, "answer", clip(text))
	}
}

// responseTo tells whether msg (a message from the serve) is the response
// with id. It reads only msg's top-level keys: decoding a large result to
// find its id would cost ~11 ms a megabyte (encoding/json on the dev
// machine), on every call's way back.
func responseTo(msg []byte, id json.RawMessage) bool {
	got, hasMethod, ok := topLevelID(msg)
	return ok && !hasMethod && bytes.Equal(got, id)
}

// topLevelID returns the raw value of a JSON object's "id" key and whether
// it has a "method" key, skipping every other value without decoding it;
// ok is false when msg is not an object this scan can read.
func topLevelID(b []byte) (id []byte, hasMethod, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false, false
	}
	for i = skipSpace(b, i+1); i < len(b) && b[i] != '}'; {
		kEnd := skipString(b, i)
		if kEnd < 0 {
			return nil, false, false
		}
		key := b[i+1 : kEnd-1]
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return nil, false, false
		}
		i = skipSpace(b, i+1)
		vEnd := skipValue(b, i)
		if vEnd < 0 {
			return nil, false, false
		}
		switch string(key) {
		case "id":
			id = b[i:vEnd]
		case "method":
			hasMethod = true
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			if i >= len(b) || b[i] != '"' {
				return nil, false, false
			}
		}
	}
	return id, hasMethod, i < len(b)
}

// isDelim tells whether c ends a literal (number, true, false, null).
func isDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i]
// (a quote), or -1.
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); {
		j := bytes.IndexAny(b[i:], `"\`)
		if j < 0 {
			return -1
		}
		i += j
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // an escape and the byte it escapes
	}
	return -1
}

// skipValue returns the index just past the value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	start := i
	for i < len(b) && !isDelim(b[i]) {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// withID sets the id of a JSON-RPC error whose id is null.
func withID(body []byte, id json.RawMessage) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	if cur, ok := m["id"]; ok && string(cur) != "null" {
		return body
	}
	m["id"] = id
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

// transportFailed answers a request whose exchange with the serve failed,
// and ends the bridge if the serve is gone.
func (b *Bridge) transportFailed(h head, err error) {
	gone := !b.alive()
	msg := fmt.Sprintf("relaying to the mediator serve on %s failed: %v", b.Socket, err)
	if gone {
		msg = fmt.Sprintf("the mediator serve on %s went away before answering (%v); restart this MCP server (mediator stdio): it attaches to a serve that runs, or opens the database itself", b.Socket, err)
	}
	if h.id != nil {
		b.answer(h, -32603, msg)
	} else {
		b.Log.Error(msg)
	}
	if gone {
		b.fail(fmt.Errorf("%w: %s", ErrGone, msg))
	}
}

// alive tells whether the serve still accepts connections on the socket.
func (b *Bridge) alive() bool {
	c, err := net.DialTimeout("unix", b.Socket, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// answer writes a JSON-RPC error for h's request.
func (b *Bridge) answer(h head, code int, msg string) {
	if h.id == nil {
		return
	}
	out, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: h.id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg}})
	b.write(out)
}

// write writes one message as one line.
func (b *Bridge) write(msg []byte) {
	b.outMu.Lock()
	defer b.outMu.Unlock()
	buf := make([]byte, 0, len(msg)+1)
	buf = append(buf, msg...)
	buf = append(buf, '\n')
	if _, err := b.Out.Write(buf); err != nil {
		b.Log.Warn("writing to stdout failed", "err", err)
	}
}

// reopen replaces a session the serve no longer knows (it idled out, or
// the serve restarted) by a new one, opened with the agent's own
// initialize. What was bound to the old session (a declared intent,
// subscriptions) is not carried over: the agent declares it again.
func (b *Bridge) reopen(ctx context.Context, old string) error {
	b.reopenMu.Lock()
	defer b.reopenMu.Unlock()
	b.mu.Lock()
	cur, initLine, inited := b.sid, b.initLine, b.inited
	b.mu.Unlock()
	if cur != old {
		return nil // reopened meanwhile
	}
	if initLine == nil {
		return errors.New("no initialize to open it with")
	}
	replay := withNewID(initLine, `"mediator-bridge-reinitialize"`)
	resp, err := b.do(ctx, http.MethodPost, replay, "")
	if err != nil {
		return err
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	status := resp.StatusCode
	drain(resp)
	if status != http.StatusOK || sid == "" {
		return fmt.Errorf("initialize answered HTTP %d", status)
	}
	b.setSession(sid, "")
	if inited != nil {
		if resp, err := b.do(ctx, http.MethodPost, inited, sid); err == nil {
			drain(resp)
		}
	}
	b.Log.Warn("the mediator serve no longer knew this agent's MCP session (idle past limits.session_idle_timeout, or the serve restarted); "+
		"opened a new one: an intent declared in the old one must be declared again", "session", sid)
	return nil
}

func withNewID(line []byte, id string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) != nil {
		return line
	}
	m["id"] = json.RawMessage(id)
	out, err := json.Marshal(m)
	if err != nil {
		return line
	}
	return out
}

// listen relays the session's own stream (GET): what the serve sends the
// agent outside any request.
func (b *Bridge) listen(ctx context.Context) {
	for ctx.Err() == nil {
		b.mu.Lock()
		sid, changed := b.sid, b.changed
		b.mu.Unlock()
		if sid == "" {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			}
		}
		gctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-changed:
				cancel()
			case <-gctx.Done():
			}
		}()
		resp, err := b.do(gctx, http.MethodGet, nil, sid)
		if err == nil {
			if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				if err := readEvents(resp.Body, b.MaxMessage, b.write); err != nil && gctx.Err() == nil {
					b.Log.Debug("the session's stream ended", "err", err)
				}
				drain(resp)
			} else {
				// No stream for this session (it ended, or the serve
				// offers none): wait for the next session.
				drain(resp)
				select {
				case <-changed:
				case <-ctx.Done():
				}
				cancel()
				continue
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if !b.alive() {
			b.fail(fmt.Errorf("%w: its socket %s no longer answers; restart this MCP server (mediator stdio): it attaches to a serve that runs, or opens the database itself", ErrGone, b.Socket))
			return
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// endSession ends the agent's MCP session on the serve.
func (b *Bridge) endSession() {
	sid := b.session()
	if sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if resp, err := b.do(ctx, http.MethodDelete, nil, sid); err == nil {
		drain(resp)
	}
}

// readEvents calls fn with the data of each server-sent event on r.
func readEvents(r io.Reader, max int, fn func([]byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var data []byte
	for {
		line, err := readLine(br, max)
		if len(line) > max {
			return fmt.Errorf("an event from the serve exceeds %d bytes", max)
		}
		l := bytes.TrimRight(line, "\r\n")
		switch {
		case len(l) == 0 && len(line) > 0:
			if len(data) > 0 {
				fn(data)
				data = nil
			}
		case bytes.HasPrefix(l, []byte("data:")):
			d := bytes.TrimPrefix(l[5:], []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			if len(data)+len(d) > max {
				return fmt.Errorf("an event from the serve exceeds %d bytes", max)
			}
			data = append(data, d...)
		}
		if err != nil {
			// An event cut off by the end of the stream is not one.
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
