package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// hooks wires the mediator into mcp-go's request handling:
//   - every request first meets gate, which runs protocol methods through the
//     chain (so they are authorised by the method table and recorded) and
//     leaves mediated methods to their handlers, which run the chain;
//   - errors mcp-go raises before a handler runs (a hidden or unknown tool,
//     bad params) are recorded by onError;
//   - listings are filtered by policy after mcp-go builds them. A hidden
//     object called by name still reaches its handler, where the chain
//     refuses it with the rule that denies it (and records that), so a
//     call costs one policy decision, not two.
func (s *Server) hooks() *server.Hooks {
	h := &server.Hooks{}
	h.AddOnRequestInitialization(s.gate)
	h.AddOnError(s.onError)
	h.AddBeforeAny(tagForwarded)
	h.AddAfterListTools(s.filterTools)
	h.AddAfterSetLevel(s.afterSetLevel)
	h.AddAfterListPrompts(s.filterPrompts)
	h.AddAfterListResources(s.filterResources)
	h.AddAfterListResourceTemplates(s.filterTemplates)
	h.AddBeforeComplete(s.inflight.beginComplete)
	h.AddAfterComplete(s.showCompletion)
	h.AddBeforeReadResource(s.inflight.beginRead)
	h.AddAfterReadResource(s.showRead)
	h.AddOnRegisterSession(func(_ context.Context, cs server.ClientSession) { s.live.Store(cs.SessionID(), cs) })
	h.AddOnUnregisterSession(func(ctx context.Context, cs server.ClientSession) {
		s.live.Delete(cs.SessionID())
		s.dropSubscriptions(ctx, cs.SessionID())
		s.deps.Upstreams.EndSession(cs.SessionID())
		s.clientErrs.forget(cs.SessionID())
		s.levels.forget(cs.SessionID())
		s.cancelled.forget(cs.SessionID())
	})
	return h
}

// tagForwarded tags a request that the handlers forward upstream with its
// JSON-RPC id, so that the agent's cancellation of it, and its reason,
// reach the upstream (cancelled.go).
func tagForwarded(_ context.Context, id any, _ mcp.MCPMethod, message any) {
	switch m := message.(type) {
	case *mcp.CallToolRequest:
		tagRequestID(&m.Header, id)
	case *mcp.GetPromptRequest:
		tagRequestID(&m.Header, id)
	case *mcp.ReadResourceRequest:
		tagRequestID(&m.Header, id)
	case *mcp.CompleteRequest:
		tagRequestID(&m.Header, id)
	}
}

// gate runs before mcp-go dispatches a request.
func (s *Server) gate(ctx context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok {
		// mcp-go passes the raw message; anything else means its contract
		// changed, and an unchecked request must not go through.
		return fmt.Errorf("%w: the mediator could not inspect this request", ErrInternal)
	}
	var head struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(raw, &head) != nil {
		return nil // mcp-go answers the parse error
	}
	c := s.newCall(ctx, head.Method, "")
	if err := s.checkOwner(c); err != nil {
		return s.refuse(ctx, c, err)
	}
	if isGated(head.Method) {
		return s.gateSubscription(ctx, c, raw)
	}
	if isTaskMethod(head.Method) {
		return s.gateTask(ctx, c, raw)
	}
	if IsMediated(head.Method) {
		return nil // the handler runs the chain
	}
	if head.Method == tooLargeMethod {
		s.identify(ctx, c)
		return s.refuse(ctx, c, fmt.Errorf("%w: request line exceeds the %d byte cap (limits.max_request_bytes); send smaller arguments", ErrInvalidRequest, s.opts.maxBody))
	}
	if !IsKnownMethod(head.Method) {
		// Recorded as denied; mcp-go then answers -32601 method not found
		// and calls no handler.
		_ = s.reject(ctx, c, fmt.Errorf("%w: unknown method %q", ErrMethodNotAllowed, trimForError(head.Method, 64)))
		return nil
	}
	if err := s.chain(ctx, c); err != nil {
		if head.Method == "initialize" && isSessionTransport(c.Credentials.Transport) {
			s.sessions.close(c.Session.ID) // never opened
		}
		return &recordedError{err}
	}
	return nil
}

// identify names the agent of a call refused before the chain ran (the
// stdio agent is known without a credential), so that its record does.
func (s *Server) identify(ctx context.Context, c *Call) {
	if c.Agent != nil {
		return
	}
	if a, err := s.deps.Authenticator.Authenticate(ctx, c.Credentials); err == nil {
		c.Agent = a
		c.Session.Key = sessionKey(c.Session, c.Agent, s.stdioKey)
	}
}

// checkOwner refuses an HTTP request on a session another agent opened.
// The HTTP gate refuses those before mcp-go reads them; this is the second
// lock, on every request mcp-go dispatches.
func (s *Server) checkOwner(c *Call) error {
	if c.Session.ID == "" || c.Agent == nil || !isSessionTransport(c.Credentials.Transport) {
		return nil
	}
	if owner, ok := s.sessions.owner(c.Session.ID); ok && owner != c.Agent.ID {
		return fmt.Errorf("%w: this MCP session belongs to another agent; start a new session with initialize", ErrUnauthenticated)
	}
	return nil
}

// refuse records c as refused for err and returns the error for mcp-go:
// err's JSON-RPC error, with its code, when it carries one.
func (s *Server) refuse(ctx context.Context, c *Call, err error) error {
	if rerr := s.reject(ctx, c, err); rerr != nil {
		err = rerr // the cause, or why it could not be recorded
	}
	if perr := s.passed.errorFor(ctx, err); perr != nil {
		return &recordedError{perr}
	}
	return &recordedError{err}
}

// onError records mediated requests that mcp-go refused before any handler
// ran: a tool that does not exist or that policy hides, invalid params.
func (s *Server) onError(ctx context.Context, _ any, method mcp.MCPMethod, message any, err error) {
	if method == mcp.MethodCompletionComplete || method == mcp.MethodResourcesRead {
		s.inflight.end(ctx)
	}
	var done *recordedError
	if errors.As(err, &done) || !IsMediated(string(method)) {
		return
	}
	c := s.newCall(ctx, string(method), requestName(message))
	// The record names what was not found: a tool, a prompt or a resource.
	kind := ErrInvalidRequest
	switch {
	case errors.Is(err, server.ErrToolNotFound):
		kind = ErrUnknownTool
	case errors.Is(err, server.ErrPromptNotFound):
		kind = ErrUnknownPrompt
	case errors.Is(err, server.ErrResourceNotFound):
		kind = ErrUnknownResource
	}
	_ = s.reject(ctx, c, fmt.Errorf("%w: %w", kind, err))
}

// requestName digs the tool/prompt name or URI out of a parsed request.
func requestName(message any) string {
	switch r := message.(type) {
	case *mcp.CallToolRequest:
		return r.Params.Name
	case *mcp.GetPromptRequest:
		return r.Params.Name
	case *mcp.ReadResourceRequest:
		return r.Params.URI
	}
	return ""
}

// listFilter returns a test of whether policy could ever allow the agent in
// ctx to use a target: deny-only objects are hidden from listings. The agent
// and client address are resolved once per listing; if the agent cannot be
// established, nothing is listed.
func (s *Server) listFilter(ctx context.Context) func(Target) bool {
	a := AgentFromContext(ctx)
	creds := CredentialsFromContext(ctx)
	if a == nil {
		var err error
		if a, err = s.deps.Authenticator.Authenticate(ctx, creds); err != nil {
			return func(Target) bool { return false }
		}
	}
	return func(t Target) bool {
		d, err := s.deps.Authorizer.Decide(ctx, AuthzRequest{Agent: *a, Target: t, Listing: true,
			Intent: Intent{Verdict: IntentNone}, RemoteIP: creds.RemoteIP})
		return err == nil && (d.Effect == EffectAllow || d.Effect == EffectApprove)
	}
}

func (s *Server) filterTools(ctx context.Context, _ any, _ *mcp.ListToolsRequest, res *mcp.ListToolsResult) {
	cat, keep := s.deps.Upstreams.Catalog(), s.listFilter(ctx)
	kept := res.Tools[:0]
	for _, t := range res.Tools {
		if s.ownToolListed(t.Name) {
			kept = append(kept, t) // always listed
			continue
		}
		ct, ok := cat.Tool(t.Name)
		if ok && keep(ToolTarget(ct)) {
			kept = append(kept, t)
		}
	}
	res.Tools = kept
	s.showTools(ctx, res)
}

func (s *Server) filterPrompts(ctx context.Context, _ any, _ *mcp.ListPromptsRequest, res *mcp.ListPromptsResult) {
	cat, keep := s.deps.Upstreams.Catalog(), s.listFilter(ctx)
	kept := res.Prompts[:0]
	for _, p := range res.Prompts {
		cp, ok := cat.Prompt(p.Name)
		if ok && keep(Target{Kind: KindPrompt, Server: cp.Server, Name: cp.Name, Hash: cp.Hash}) {
			kept = append(kept, p)
		}
	}
	res.Prompts = kept
	if shown := s.shown.Load(); shown != nil {
		if m := showListed(s, ctx, "prompts", shown.prompts, res.Prompts, func(p mcp.Prompt) string { return p.Name }); m != nil {
			res.Meta = m
		}
	}
}

func (s *Server) filterResources(ctx context.Context, _ any, _ *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
	cat, keep := s.deps.Upstreams.Catalog(), s.listFilter(ctx)
	kept := res.Resources[:0]
	for _, r := range res.Resources {
		server, class, ok := cat.ResourceServer(r.URI)
		if ok && keep(Target{Kind: KindResource, Server: server, Name: r.URI, DataClass: class}) {
			kept = append(kept, r)
		}
	}
	res.Resources = kept
	if shown := s.shown.Load(); shown != nil {
		if m := showListed(s, ctx, "resources", shown.resources, res.Resources, func(r mcp.Resource) string { return r.URI }); m != nil {
			res.Meta = m
		}
	}
}

// filterTemplates lists the catalog's templates the agent may see: mcp-go
// holds only the one that routes every resources/read (syncResources).
func (s *Server) filterTemplates(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
	res.ResourceTemplates = res.ResourceTemplates[:0]
	shown := s.shown.Load()
	if shown == nil {
		return
	}
	keep := s.listFilter(ctx)
	for _, t := range shown.templateList {
		if keep(Target{Kind: KindResource, Server: t.cat.Server, Name: t.cat.URITemplate, DataClass: t.cat.DataClass}) {
			res.ResourceTemplates = append(res.ResourceTemplates, t.mt)
		}
	}
	if m := showListed(s, ctx, "resourceTemplates", shown.templates, res.ResourceTemplates, func(t mcp.ResourceTemplate) string { return t.URITemplate.Raw() }); m != nil {
		res.Meta = m
	}
}
