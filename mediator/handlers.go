package mediator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// ErrorMetaKey is the _meta key of an error result the mediator produced;
// its value is {"code": "...", "approval_id": "...", "rule": "..."}.
const ErrorMetaKey = "io.mcp-mediator/error"

// recordedError marks an error whose call the chain has already recorded,
// so the server's error hook does not record it twice.
type recordedError struct{ err error }

func (e *recordedError) Error() string { return e.err.Error() }
func (e *recordedError) Unwrap() error { return e.err }

// handlerError is what a handler returns mcp-go for the chain's err: the
// upstream's own JSON-RPC error when it is one (passthrough.go).
func (s *Server) handlerError(ctx context.Context, err error) error {
	if perr := s.passed.errorFor(ctx, err); perr != nil {
		err = perr
	}
	return &recordedError{err}
}

// newCall starts a Call for a request that arrived in ctx.
func (s *Server) newCall(ctx context.Context, method, name string) *Call {
	c := &Call{ID: NewID(), Method: method, Name: name, Started: s.now()}
	c.Credentials = CredentialsFromContext(ctx)
	c.Trace = c.Credentials.Trace
	c.Session = sessionInfo(ctx, c.Credentials.Transport)
	c.Agent = AgentFromContext(ctx)
	c.Session.Key = sessionKey(c.Session, c.Agent, s.stdioKey)
	return c
}

func (s *Server) now() time.Time {
	if s.deps.Now != nil {
		return s.deps.Now()
	}
	return time.Now()
}

// run mediates c with a Peer for the upstream's way back. h is the
// request's Header, which carries its JSON-RPC id (tagForwarded): an
// agent's cancellation of that id cancels the call with its reason.
func (s *Server) run(ctx context.Context, c *Call, h http.Header) error {
	ctx, done := s.cancelled.start(ctx, c.Session.ID, taggedID(h))
	defer done()
	sc := scopeOf(ctx)
	pr := &peer{srv: s.mcp, errs: &s.clientErrs, levels: &s.levels, ctx: ctx, session: c.Session.ID, live: &s.live, asks: &s.asks, scope: sc}
	defer pr.end()
	ctx = WithPeer(ctx, pr)
	ctx = WithCall(ctx, c)
	return s.chain(ctx, c)
}

// handleTool is the mcp-go handler of every catalog tool. A refusal or a
// failure is returned as an error result (isError) that says why and what
// to do, so that the agent's model sees it; it is never a successful-looking
// result.
func (s *Server) handleTool(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	switch asTask, err := s.taskCheck(ctx, &req); {
	case err != nil:
		return s.refuseCall(ctx, s.toolCall(ctx, &req), err)
	case asTask:
		return s.startTask(ctx, req)
	}
	c := s.toolCall(ctx, &req)
	ctx, raw := withRawResult(ctx)
	if err := s.run(ctx, c, req.Header); err != nil {
		if perr := s.passed.errorFor(ctx, err); perr != nil {
			return nil, &recordedError{perr} // the upstream's own JSON-RPC error
		}
		return ErrorResult(err), nil
	}
	res, ok := c.Result.(*mcp.CallToolResult)
	if !ok || res == nil {
		return ErrorResult(fmt.Errorf("%w: upstream returned no result", ErrUpstream)), nil
	}
	s.showRawResult(ctx, c, raw, &res.Meta)
	return res, nil
}

func (s *Server) handlePrompt(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	c := s.newCall(ctx, "prompts/get", req.Params.Name)
	c.Arguments = stringMapToAny(req.Params.Arguments)
	takeTrace(c, req.Params.Meta)
	stripMediatorMeta(req.Params.Meta)
	c.Request = &req
	ctx, raw := withRawResult(ctx)
	if err := s.run(ctx, c, req.Header); err != nil {
		return nil, s.handlerError(ctx, err)
	}
	res, ok := c.Result.(*mcp.GetPromptResult)
	if !ok || res == nil {
		return nil, &recordedError{fmt.Errorf("%w: upstream returned no prompt", ErrUpstream)}
	}
	s.showRawResult(ctx, c, raw, &res.Meta)
	return res, nil
}

func (s *Server) handleResource(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	c := s.newCall(ctx, "resources/read", req.Params.URI)
	// mcp-go fills Arguments with what its routing template matched; the
	// agent sent none (resources/read has no arguments), so none go on.
	req.Params.Arguments = nil
	takeTrace(c, req.Params.Meta)
	stripMediatorMeta(req.Params.Meta)
	c.Request = &req
	// The after hook (showRead) hands the upstream's result on as sent,
	// unless the chain changed it; mcp-go gives this handler no result to
	// shape.
	r, reqCtx := s.inflight.get(ctx), ctx
	defer func() {
		if p := recover(); p != nil {
			s.inflight.end(reqCtx) // mcp-go's hooks do not run after a panic
			panic(p)
		}
		if r != nil && r.read != nil && !rawAllowed(reqCtx, c, r.read.b) {
			r.read.b = nil
		}
	}()
	if r != nil && r.read != nil {
		ctx = context.WithValue(ctx, rawResultKey{}, r.read)
	}
	if err := s.run(ctx, c, req.Header); err != nil {
		if errors.Is(err, ErrUnknownResource) {
			// MCP's code for a resource not found, with its URI, as
			// mcp-go's router answered before the mediator routed every
			// URI (syncResources): -32002, and -32602 from 2026-07-28
			// on. The message stays the mediator's.
			code := mcp.RESOURCE_NOT_FOUND
			if mcp.IsModernProtocol(server.RequestProtocolVersion(ctx)) {
				code = mcp.INVALID_PARAMS
			}
			data, _ := json.Marshal(map[string]string{"uri": req.Params.URI})
			err = &UpstreamRPCError{Method: "resources/read", Code: code, Message: err.Error(), Data: data}
		}
		return nil, s.handlerError(ctx, err)
	}
	res, ok := c.Result.(*mcp.ReadResourceResult)
	if !ok || res == nil {
		return nil, &recordedError{fmt.Errorf("%w: upstream returned no contents", ErrUpstream)}
	}
	return res.Contents, nil
}

// completer forwards completion/complete through the chain.
type completer struct{ s *Server }

func (c completer) CompletePromptArgument(ctx context.Context, name string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	return c.complete(ctx, name, mcp.PromptReference{Type: "ref/prompt", Name: name}, arg, cc)
}

func (c completer) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	return c.complete(ctx, uri, mcp.ResourceReference{Type: "ref/resource", URI: uri}, arg, cc)
}

func (c completer) complete(ctx context.Context, name string, ref any, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	call := c.s.newCall(ctx, "completion/complete", name)
	req := mcp.CompleteRequest{}
	req.Method = "completion/complete"
	req.Params.Ref, req.Params.Argument, req.Params.Context = ref, arg, cc
	call.Arguments = map[string]any{"argument": arg.Name, "value": arg.Value}
	call.Request = &req
	cg := c.s.inflight.get(ctx)
	answered := false
	defer func() {
		if !answered {
			// mcp-go's hooks end it, except after a panic, which mcp-go
			// recovers from without calling them.
			c.s.inflight.end(ctx)
		}
	}()
	var h http.Header
	if cg != nil {
		h = cg.header
	}
	if err := c.s.run(ctx, call, h); err != nil {
		return nil, c.s.handlerError(ctx, err)
	}
	res, ok := call.Result.(*CompleteResult)
	if !ok || res == nil {
		return &mcp.Completion{Values: []string{}}, nil
	}
	if cg != nil {
		cg.raw = exactCompletion(res)
	}
	answered = true
	return &res.Completion, nil
}

// ErrorResult turns a pipeline error into a tool error result: text for the
// model, and a machine-readable code in _meta.
func ErrorResult(err error) *mcp.CallToolResult {
	res := mcp.NewToolResultError(err.Error())
	info := map[string]any{"code": ErrorCode(err)}
	var pe *PendingError
	if errors.As(err, &pe) {
		info["approval_id"], info["url"] = pe.ApprovalID, pe.URL
	}
	var de *DenyError
	if errors.As(err, &de) && de.Decision.Rule != "" {
		info["rule"] = de.Decision.Rule
	}
	res.Meta = mcp.NewMetaFromMap(map[string]any{ErrorMetaKey: info})
	return res
}

func (s *Server) promptCap() int {
	if s.deps.Caps.PromptBytes > 0 {
		return s.deps.Caps.PromptBytes
	}
	return 16 << 10
}

// takePrompt takes the user's request from _meta[PromptMetaKey] into c: a
// string or {"text": ..., "reasoning": ...}; each capped at max bytes on a
// UTF-8 boundary.
func takePrompt(c *Call, m *mcp.Meta, max int) {
	if m == nil || m.AdditionalFields == nil {
		return
	}
	var text, reasoning string
	switch v := m.AdditionalFields[PromptMetaKey].(type) {
	case string:
		text = v
	case map[string]any:
		text, _ = v["text"].(string)
		reasoning, _ = v["reasoning"].(string)
	}
	var cut1, cut2 bool
	c.Prompt, cut1 = capUTF8(text, max)
	c.Reasoning, cut2 = capUTF8(reasoning, max)
	c.PromptTruncated = cut1 || cut2
}

// capUTF8 cuts s to at most max bytes without splitting a rune, marking a
// cut with a trailing "…[truncated]", and reports whether it cut.
func capUTF8(s string, max int) (string, bool) {
	s, cut := CutUTF8(strings.ToValidUTF8(s, "\uFFFD"), max)
	if cut {
		s += "…[truncated]"
	}
	return s, cut
}

// stripMediatorMeta removes what of a request's _meta belongs to the
// agent's hop, not to the upstream's: the mediator's own keys (the user's
// prompt, recorded but never sent upstream) and the protocol's per-request
// keys (io.modelcontextprotocol/protocolVersion, clientInfo, ...), which
// describe the agent's connection to the mediator. The mediator's client
// sends its own for its connection to the upstream; forwarding the agent's
// made an upstream on another protocol revision refuse the call.
func stripMediatorMeta(m *mcp.Meta) {
	if m == nil || m.AdditionalFields == nil {
		return
	}
	for k := range m.AdditionalFields {
		if strings.HasPrefix(k, "io.mcp-mediator/") || strings.HasPrefix(k, "io.modelcontextprotocol/") {
			delete(m.AdditionalFields, k)
		}
	}
}

func stringMapToAny(m map[string]string) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sessionInfo describes the mcp-go session in ctx.
func sessionInfo(ctx context.Context, transport string) SessionInfo {
	si := SessionInfo{Transport: transport}
	cs := server.ClientSessionFromContext(ctx)
	if cs == nil {
		return si
	}
	si.ID = cs.SessionID()
	if ci, ok := cs.(server.SessionWithClientInfo); ok {
		info := ci.GetClientInfo()
		si.Client = strings.TrimSpace(info.Name + " " + info.Version)
	}
	return si
}

// NewID returns a new record id: 32 hex digits, the first 12 the time in
// Unix milliseconds (never less than the previous id's) and the other 20
// random (80 bits). Ids sort by the time they were made, so the audit
// store's unique index on them grows at its end, one page per commit,
// instead of taking a random page of a large index for every record.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[6:])
	// Never behind the last id's time, even if the wall clock steps back.
	ms := time.Now().UnixMilli()
	for {
		last := lastIDMilli.Load()
		if ms < last {
			ms = last
		}
		if ms == last || lastIDMilli.CompareAndSwap(last, ms) {
			break
		}
	}
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	return hex.EncodeToString(b[:])
}

// lastIDMilli is the time prefix of the newest id NewID made.
var lastIDMilli atomic.Int64

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sessionKey names the session of a call in records and intent bindings:
// the stdio process; else the MCP session id of a stateful session; else,
// for stateless HTTP (the 2026-07-28 protocol has no sessions), the
// credential: "token-" and its jti, so that one token's calls form one
// session.
func sessionKey(si SessionInfo, a *Agent, stdioKey string) string {
	switch {
	case si.Transport == "stdio":
		return stdioKey
	case si.ID != "":
		return si.ID
	case a != nil && a.TokenID != "":
		return "token-" + a.TokenID
	}
	return ""
}
