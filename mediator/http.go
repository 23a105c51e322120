package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// HTTPHandler returns the streamable HTTP endpoint for agents, to be mounted
// at path (e.g. "/mcp"). Sessions are stateful: only session ids this
// process issued are accepted. Before a request reaches MCP, the handler
// caps its size, authenticates its credential (HTTP 401 on failure), and
// records what it refuses.
func (s *Server) HTTPHandler(path string) http.Handler {
	opts := []server.StreamableHTTPOption{
		server.WithEndpointPath(path),
		server.WithSessionIdManagerResolver(sessionResolver{&s.sessions}),
		server.WithStreamableHTTPLogger(s.log),
	}
	if s.opts.sessionIdle > 0 {
		opts = append(opts, server.WithSessionIdleTTL(s.opts.sessionIdle))
	}
	return &httpGate{s: s, next: server.NewStreamableHTTPServer(s.mcp, opts...),
		peeks: make(chan struct{}, maxUnauthenticatedPeeks), transport: "http"}
}

// TransportLocal is the transport of an agent that reached the mediator
// through its local socket: a `mediator stdio` attached to a running
// serve (see LocalHandler).
const TransportLocal = "local"

// LocalHandler is HTTPHandler for the mediator's local socket: the same
// streamable HTTP endpoint, gate and records, for `mediator stdio`
// processes that relay their agent's messages to this serve instead of
// opening the database themselves. Its credential is the transport, not a
// token: the Authenticator gives "local" credentials the configured local
// agent (the agent: block a stdio mediator serves). admit runs first on
// every request (e.g. a check of the connecting process's user); its
// error refuses the request with 403 and is recorded.
func (s *Server) LocalHandler(path string, admit func(*http.Request) error) http.Handler {
	g := s.HTTPHandler(path).(*httpGate)
	g.transport, g.admit = TransportLocal, admit
	return g
}

// isSessionTransport tells whether a transport's MCP sessions are the
// streamable HTTP server's (issued, owned and closed by the gate).
func isSessionTransport(t string) bool { return t == "http" || t == TransportLocal }

// maxUnauthenticatedPeeks bounds how many refused requests at a time may
// have the head of their body read to name what they asked for in the
// record; beyond that a 401 is recorded without it.
const maxUnauthenticatedPeeks = 16

// peekBytes is how much of a refused request's body is read for its record.
const peekBytes = 4 << 10

type httpGate struct {
	s     *Server
	next  http.Handler
	peeks chan struct{}
	// transport names the requests' credentials: "http", or "local" for
	// the local socket, whose requests carry no token.
	transport string
	admit     func(*http.Request) error // nil: every request
}

// ServeHTTP admits an HTTP request in the order of what it costs the
// mediator to find out: the Host header (DNS rebinding), the header size,
// the credential (nothing of an unauthenticated body is buffered), the
// body, read against a deadline and a size cap, the ownership of the MCP
// session it names (whatever the HTTP method and whether it carries a
// request, a notification or a response), and the agent's session cap. Every refusal is answered with its cause and recorded.
func (g *httpGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	creds := Credentials{Transport: "http", Bearer: bearerToken(r), RemoteIP: remoteIP(r)}
	if g.transport == TransportLocal {
		// A local process, as a stdio agent is: no address, the loopback
		// network (r.env.Network).
		creds = Credentials{Transport: TransportLocal}
	}
	if g.s.deps.Tracer != nil {
		creds.Trace = TraceContext{Parent: r.Header.Get("Traceparent"), State: r.Header.Get("Tracestate")}
	}
	ctx := WithCredentials(r.Context(), creds)
	sid := r.Header.Get(server.HeaderKeySessionID)
	if g.admit != nil {
		if err := g.admit(r); err != nil {
			g.refuse(ctx, w, g.call(ctx, r, sid, "", ""), http.StatusForbidden, fmt.Errorf("%w: %w", ErrUnauthenticated, err))
			return
		}
	}
	if err := CheckLoopbackHost(r); err != nil {
		g.refuse(ctx, w, g.call(ctx, r, sid, "", ""), http.StatusForbidden, err)
		return
	}
	if n, max := headerBytes(r), g.s.opts.maxHeader; n > max {
		g.refuse(ctx, w, g.call(ctx, r, sid, "", ""), http.StatusRequestHeaderFieldsTooLarge,
			fmt.Errorf("%w: request headers of %d bytes exceed the %d byte cap (limits.max_header_bytes); send fewer or smaller headers", ErrInvalidRequest, n, max))
		return
	}
	var authStart time.Time
	if g.s.deps.Telemetry != nil || g.s.deps.Tracer != nil {
		authStart = time.Now()
	}
	agent, err := g.s.deps.Authenticator.Authenticate(ctx, creds)
	if !authStart.IsZero() {
		ctx = withAuthTime(ctx, time.Since(authStart))
	}
	if err != nil {
		if t := g.s.deps.Telemetry; t != nil {
			t.AuthFailed(AuthFailureReason(err))
		}
		method, name := g.peek(w, r)
		_ = g.s.reject(ctx, g.call(ctx, r, sid, method, name), fmt.Errorf("%w: %w", ErrUnauthenticated, err))
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+headerSafe(err.Error())+`"`)
		http.Error(w, "unauthorized: "+err.Error(), http.StatusUnauthorized)
		return
	}
	ctx = WithAgent(ctx, agent)
	body, method, name, batch, err := g.readBody(w, r)
	if err != nil {
		status := http.StatusBadRequest
		var se *statusError
		if errors.As(err, &se) {
			status = se.status
		}
		// What is left of the body is not read: net/http would wait
		// for it before answering.
		w.Header().Set("Connection", "close")
		g.refuse(ctx, w, g.call(ctx, r, sid, method, name), status, err)
		return
	}
	if err := g.s.sessions.check(r, agent.ID); err != nil {
		status := http.StatusForbidden
		if _, open := g.s.sessions.owner(sid); !open {
			status = http.StatusNotFound // the transport's "start a new session"
		}
		g.refuse(ctx, w, g.call(ctx, r, sid, method, name), status, err)
		return
	}
	if opens := sid == "" && (r.Method == http.MethodGet || method == "initialize"); opens {
		if n, max := g.s.sessions.open(agent.ID), g.s.opts.sessionsPerAgent; max > 0 && n >= max {
			g.refuse(ctx, w, g.call(ctx, r, sid, method, name), http.StatusTooManyRequests,
				fmt.Errorf("%w: agent %q already holds %d open MCP sessions (limits.sessions_per_agent); close unused ones with DELETE, or wait until they idle out (limits.session_idle_timeout)", ErrInvalidRequest, trimForError(agent.ID, 64), n))
			return
		}
	}
	if batch {
		g.serveBatch(ctx, w, r, sid, body)
		return
	}
	g.serveMessage(ctx, w, r, sid, body, method)
}

// serveMessage hands one admitted message (body nil for a GET or DELETE)
// to mcp-go, through the writer that keeps what the upstream sent.
func (g *httpGate) serveMessage(ctx context.Context, w http.ResponseWriter, r *http.Request, sid string, body []byte, method string) {
	respond := false
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		switch {
		case method == "" && sid != "" && g.s.asks.take(sid, body):
			// the answer to a request written on a call's stream (asks.go)
			w.WriteHeader(http.StatusAccepted)
			return
		case method == "" && sid != "":
			// a response: an error answer to a relayed request keeps its code
			g.s.clientErrs.note(sid, body)
			respond = true
		case method == "notifications/cancelled" && sid != "":
			g.s.cancelled.note(sid, body) // its request gets no answer
		}
	}
	var issued issuedSession
	ctx = context.WithValue(ctx, issuedKey{}, &issued)
	scope := &passScope{}
	ctx = withPassScope(ctx, scope)
	pw := &passResponseWriter{ResponseWriter: w, p: &g.s.passed, sc: scope, cancelled: &g.s.cancelled, session: sid,
		modern: mcp.IsModernProtocol(r.Header.Get(server.HeaderKeyProtocolVersion))}
	if respond {
		pw.hint = "a response is taken only as the answer to a sampling, elicitation or roots request the mediator sent on this session and that is still waiting; check the id, and answer each request once"
	}
	if r.Method == http.MethodPost && !pw.modern && strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		// A call's own notifications go on this POST's stream; a
		// 2026-07-28 request or a client that takes no stream gets them
		// the way mcp-go sends them.
		scope.notify = pw.writeNotification
		scope.asks = true
	}
	g.next.ServeHTTP(pw, r.WithContext(ctx))
	pw.finish()
	if r.Method == http.MethodGet && sid == "" && issued.id != "" {
		// A GET without a session opened a stream of its own, which
		// mcp-go ends with the connection.
		g.s.sessions.close(issued.id)
	}
}

// call builds the record of a request refused at the gate, naming the
// session the request presented.
func (g *httpGate) call(ctx context.Context, r *http.Request, sid, method, name string) *Call {
	c := g.s.newCall(ctx, method, name)
	if c.Method == "" {
		c.Method = "http/" + strings.ToLower(r.Method)
	}
	if c.Session.ID == "" && sid != "" {
		c.Session.ID = trimForError(sid, 128)
		c.Session.Key = sessionKey(c.Session, c.Agent, g.s.stdioKey)
	}
	return c
}

// refuse records c as refused for err and answers with status and a
// JSON-RPC error that says why.
func (g *httpGate) refuse(ctx context.Context, w http.ResponseWriter, c *Call, status int, err error) {
	_ = g.s.reject(ctx, c, err)
	code := -32600 // invalid request
	var se *statusError
	if errors.As(err, &se) && se.code != 0 {
		code = se.code
	}
	writeJSONRPCError(w, status, code, err.Error())
}

// statusError carries the HTTP status (and JSON-RPC code, when not
// -32600) of a body that cannot be read.
type statusError struct {
	status, code int
	err          error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// readBody reads a POST body up to the cap, within the read deadline. It
// returns the body (nil for other methods), and the JSON-RPC method and the
// name of what it asks for (a tool's or prompt's name, a resource's URI)
// when it can tell, so that mcp-go's own refusals are recorded with them.
// A body that is not JSON is refused here; a batch is reported as one,
// for serveBatch, once the session it names is known.
func (g *httpGate) readBody(w http.ResponseWriter, r *http.Request) (body []byte, method, name string, batch bool, err error) {
	if r.Method != http.MethodPost || r.Body == nil {
		return nil, "", "", false, nil
	}
	if d := g.s.opts.readTimeout; d > 0 {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(d))
		// The response may stream for long after the body is read.
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	max := g.s.opts.maxBody
	body, err = io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, "", "", false, &statusError{status: http.StatusRequestTimeout, err: fmt.Errorf("%w: the request body did not arrive within %s (limits.read_timeout); send it without pauses", ErrInvalidRequest, g.s.opts.readTimeout)}
		}
		return nil, "", "", false, fmt.Errorf("%w: reading the request body: %w", ErrInvalidRequest, err)
	}
	if int64(len(body)) > max {
		return nil, "", "", false, &statusError{status: http.StatusRequestEntityTooLarge, err: fmt.Errorf("%w: request body exceeds the %d byte cap (limits.max_request_bytes); send smaller arguments", ErrInvalidRequest, max)}
	}
	method, name, kind := inspectBody(body)
	switch kind {
	case bodyBatch:
		return body, "", "", true, nil
	case bodyInvalid:
		return nil, "", "", false, invalidJSON()
	}
	return body, method, name, false, nil
}

// invalidJSON is the refusal of a body that is not JSON.
func invalidJSON() error {
	return &statusError{status: http.StatusBadRequest, code: -32700, err: fmt.Errorf("%w: the request body is not valid JSON; send one JSON-RPC message", ErrInvalidRequest)}
}

// peek reads the head of a refused request's body, within a short
// deadline and only while few others are being peeked at, to name its
// method and target in the record.
func (g *httpGate) peek(w http.ResponseWriter, r *http.Request) (method, name string) {
	if r.Method != http.MethodPost || r.Body == nil {
		return "", ""
	}
	select {
	case g.peeks <- struct{}{}:
		defer func() { <-g.peeks }()
	default:
		return "", ""
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Second))
	head, _ := io.ReadAll(io.LimitReader(r.Body, peekBytes))
	return peekHead(head)
}

// body kinds told apart by inspectBody.
const (
	bodyMessage = iota
	bodyBatch
	bodyInvalid
)

// inspectBody decodes the method and target of one JSON-RPC message.
func inspectBody(body []byte) (method, name string, kind int) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return "", "", bodyBatch
	}
	var head struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"params"`
	}
	// Unmarshal checks the whole body's syntax before it decodes: a
	// SyntaxError is invalid JSON, without a second pass of json.Valid.
	// A member of the wrong type leaves its field empty and the others
	// decoded.
	var syntax *json.SyntaxError
	err := json.Unmarshal(body, &head)
	if errors.As(err, &syntax) {
		return "", "", bodyInvalid
	}
	name = head.Params.Name
	if name == "" {
		name = head.Params.URI
	}
	return trimForError(head.Method, 128), trimForError(name, 256), bodyMessage
}

// peekHead finds the method and target in the head of a message that may
// be cut short.
func peekHead(head []byte) (method, name string) {
	if m := methodPattern.FindSubmatch(head); m != nil {
		method = string(m[1])
	}
	if m := namePattern.FindSubmatch(head); m != nil {
		name = string(m[2])
	}
	return method, name
}

var (
	methodPattern = regexp.MustCompile(`"method"\s*:\s*"([^"\\]{1,128})"`)
	namePattern   = regexp.MustCompile(`"(name|uri)"\s*:\s*"([^"\\]{1,256})"`)
)

// headerBytes is the size of r's request line and headers as sent.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// CheckLoopbackHost refuses a request that reached a loopback listener
// under a Host that is not loopback: a web page that rebinds its own DNS
// name to 127.0.0.1 sends its own name, and must not reach a local
// service with the user's browser.
func CheckLoopbackHost(r *http.Request) error {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || local == nil || !isLoopback(local.String()) || isLoopback(r.Host) {
		return nil
	}
	return fmt.Errorf("%w: Host %q is not a loopback name, but this listener is on loopback (a DNS rebinding attempt?); connect as localhost or 127.0.0.1", ErrUnauthenticated, trimForError(r.Host, 128))
}

// isLoopback reports whether a host or host:port names the loopback.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// headerSafe makes text fit inside a quoted header parameter.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return ' '
		}
		return r
	}, s)
	return trimForError(s, 200)
}

func writeJSONRPCError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": code, "message": msg},
	})
}

// HTTPCredentials are the credentials an HTTP request presents: its
// bearer token and the client's address.
func HTTPCredentials(r *http.Request) Credentials {
	return Credentials{Transport: "http", Bearer: bearerToken(r), RemoteIP: remoteIP(r)}
}
