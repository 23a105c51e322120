package mediator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/server"
)

// HTTPHandler returns the streamable HTTP endpoint for agents, to be mounted
// at path (e.g. "/mcp"). Sessions are stateful: only session ids this
// process issued are accepted. Before a request reaches MCP, the handler
// caps its size, authenticates its credential (HTTP 401 on failure), and
// records what it refuses.
func (s *Server) HTTPHandler(path string) http.Handler {
	streamable := server.NewStreamableHTTPServer(s.mcp,
		server.WithEndpointPath(path),
		server.WithStateful(true),
		server.WithStreamableHTTPLogger(s.log),
	)
	return &httpGate{s: s, next: streamable}
}

type httpGate struct {
	s    *Server
	next http.Handler
}

func (g *httpGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	creds := Credentials{Transport: "http", Bearer: bearerToken(r), RemoteIP: remoteIP(r)}
	ctx := WithCredentials(r.Context(), creds)
	body, method, name, invalid, err := g.readBody(r)
	if err != nil {
		c := g.s.newCall(ctx, method, name)
		_ = g.s.reject(ctx, c, err)
		writeJSONRPCError(w, http.StatusRequestEntityTooLarge, -32600, err.Error())
		return
	}
	agent, err := g.s.deps.Authenticator.Authenticate(ctx, creds)
	if err != nil {
		c := g.s.newCall(ctx, method, name)
		_ = g.s.reject(ctx, c, fmt.Errorf("%w: %w", ErrUnauthenticated, err))
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+headerSafe(err.Error())+`"`)
		http.Error(w, "unauthorized: "+err.Error(), http.StatusUnauthorized)
		return
	}
	ctx = WithAgent(ctx, agent)
	if invalid {
		c := g.s.newCall(ctx, "", "")
		_ = g.s.reject(ctx, c, fmt.Errorf("%w: the request body is not valid JSON-RPC", ErrInvalidRequest))
	}
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	sw := &statusWriter{ResponseWriter: w}
	g.next.ServeHTTP(sw, r.WithContext(ctx))
	if sw.status == http.StatusNotFound && r.Header.Get(server.HeaderKeySessionID) != "" {
		c := g.s.newCall(ctx, method, name)
		_ = g.s.reject(ctx, c, fmt.Errorf("%w: unknown or terminated MCP session id; start a new session with initialize", ErrUnauthenticated))
	}
}

// readBody reads a POST body up to the cap. It returns the body (nil for
// other methods), the JSON-RPC method and the name of what it asks for (a
// tool's or prompt's name, a resource's URI) when it can tell, so that a
// request refused here is recorded with them, and whether the body is not
// JSON at all.
func (g *httpGate) readBody(r *http.Request) (body []byte, method, name string, invalid bool, err error) {
	if r.Method != http.MethodPost || r.Body == nil {
		return nil, "", "", false, nil
	}
	max := g.s.opts.maxBody
	body, err = io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, "", "", false, fmt.Errorf("%w: reading the request body: %w", ErrInvalidRequest, err)
	}
	if int64(len(body)) > max {
		return nil, "", "", false, fmt.Errorf("%w: request body exceeds the %d byte cap; send smaller arguments", ErrInvalidRequest, max)
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
	err = json.Unmarshal(body, &head)
	name = head.Params.Name
	if name == "" {
		name = head.Params.URI
	}
	return body, head.Method, name, errors.As(err, &syntax), nil
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

// statusWriter remembers the status code while keeping streaming working.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps Server-Sent Events streaming through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
