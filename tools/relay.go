package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

// relay passes an upstream's sampling, elicitation and roots requests to
// the agent whose call caused them. It implements client.SamplingHandler,
// client.ElicitationHandler and client.RootsHandler.
type relay struct{ c *conn }

// toAgent asks the agent whose call caused an upstream's request (what
// names it in logs and errors), within that call's life.
func toAgent[T any](ctx context.Context, rl *relay, what string, ask func(context.Context, mediator.Peer) (T, error)) (T, error) {
	var zero T
	peer, callCtx, err := rl.c.u.peerFor(ctx, rl.c.session, what)
	if err != nil {
		return zero, err
	}
	ctx, cancel := joinContexts(ctx, callCtx)
	defer cancel()
	rl.c.u.log.Info("relaying a request to the agent", "request", what, "session", peer.SessionID())
	res, err := ask(ctx, peer)
	if err != nil {
		return zero, fmt.Errorf("the agent did not complete the %s request: %w", what, err)
	}
	return res, nil
}

// CreateMessage relays sampling/createMessage.
func (rl *relay) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return toAgent(ctx, rl, "sampling", func(ctx context.Context, p mediator.Peer) (*mcp.CreateMessageResult, error) {
		return p.CreateMessage(ctx, req)
	})
}

// Elicit relays elicitation/create.
func (rl *relay) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return toAgent(ctx, rl, "elicitation", func(ctx context.Context, p mediator.Peer) (*mcp.ElicitationResult, error) {
		res, err := p.Elicit(ctx, req)
		if err == nil && req.Params.Mode == mcp.ElicitationModeURL && res.Action == mcp.ElicitationResponseActionAccept {
			rl.c.awaitElicitation(req.Params.ElicitationID, p)
		}
		return res, err
	})
}

// ListRoots relays roots/list.
func (rl *relay) ListRoots(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	res, err := toAgent(ctx, rl, "roots", func(ctx context.Context, p mediator.Peer) (*mcp.ListRootsResult, error) {
		return p.ListRoots(ctx, req)
	})
	if err == nil && res.Roots == nil {
		res.Roots = []mcp.Root{} // the schema wants an array
	}
	return res, err
}

// peerFor finds the agent a server-to-client request is for: the call the
// request's context belongs to (streamable HTTP delivers such requests on
// the call's own response stream), else the only agent with calls in flight
// on the upstream. With none, or several, the request is refused: the
// mediator never guesses which agent to ask.
func (u *upstream) peerFor(ctx context.Context, session, what string) (mediator.Peer, context.Context, error) {
	if rec := callRecFrom(ctx); rec != nil && rec.peer != nil {
		u.mu.Lock()
		cur, live := u.calls[rec.id]
		callCtx := rec.ctx
		u.mu.Unlock()
		if live && cur == rec {
			return rec.peer, callCtx, nil
		}
	}
	peers := u.peers(session)
	switch len(peers) {
	case 1:
		return peers[0].peer, peers[0].ctx, nil
	case 0:
		u.log.Warn("server-to-client request refused: no agent call in flight", "kind", what)
		return nil, nil, fmt.Errorf("%s request refused by the mediator: no agent call is in flight on upstream %q, "+
			"so there is no agent to ask", what, u.name)
	default:
		u.log.Warn("server-to-client request refused: several agents have calls in flight", "kind", what,
			"agents", len(peers))
		return nil, nil, fmt.Errorf("%s request refused by the mediator: %d agents have calls in flight on upstream %q "+
			"and the request does not say which call it belongs to", what, len(peers), u.name)
	}
}

// joinContexts returns a context with base's values and deadline that also
// ends when other ends.
func joinContexts(other, base context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(base)
	stop := context.AfterFunc(other, func() { cancel(errors.New("upstream request ended")) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// serveUpstreamRequest answers a request the upstream sends the mediator,
// its client: sampling, elicitation and roots go to the agent (relay), ping is
// answered, anything else is "method not found". It stands in for mcp-go's
// client handler so that an agent's JSON-RPC error reaches the upstream
// with the agent's code, message and data (mcp-go sends every handler
// error as -32603).
func (c *conn) serveUpstreamRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	rctx, stop := withoutTransportDeadline(ctx, c.ctx)
	defer stop()
	resp, err := c.answerUpstream(rctx, req)
	if _, isHTTP := c.tr.(*transport.StreamableHTTP); !isHTTP {
		return resp, err
	}
	// mcp-go's streamable HTTP client would send the answer with the
	// request's context, which ends after a fixed 30 s: an answer ready
	// near or after that would be lost. It goes out here, with the
	// connection's, and with the codes mcp-go's client gives errors.
	if err != nil {
		resp = handlerErrorResponse(req, err)
	}
	sctx, cancel := context.WithTimeout(c.ctx, max(c.u.timeout, 10*time.Second))
	defer cancel()
	if err := c.answerLate(sctx, resp); err != nil {
		c.u.log.Error("could not send the agent's answer to the upstream", "method", req.Method, "err", err)
	}
	return nil, nil
}

// handlerErrorResponse is the error response mcp-go's streamable HTTP
// client sends for a request handler's error.
func handlerErrorResponse(req transport.JSONRPCRequest, err error) *transport.JSONRPCResponse {
	code, msg := mcp.INTERNAL_ERROR, err.Error()
	switch {
	case errors.Is(err, context.Canceled):
		code, msg = mcp.REQUEST_INTERRUPTED, "request was cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		code, msg = mcp.REQUEST_INTERRUPTED, "request timed out"
	case req.Method == string(mcp.MethodSamplingCreateMessage):
		msg = fmt.Sprintf("sampling request failed: %v", err)
	}
	return transport.NewJSONRPCErrorResponse(req.ID, code, msg, nil)
}

// answerLate posts resp to a streamable HTTP upstream, as mcp-go's
// transport would: the session's id and protocol version, and the
// configured and trace headers, through the connection's own client.
func (c *conn) answerLate(ctx context.Context, resp *transport.JSONRPCResponse) error {
	body, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.u.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json, text/event-stream")
	if tr, ok := c.tr.(*transport.StreamableHTTP); ok && tr.GetSessionId() != "" {
		hr.Header.Set(transport.HeaderKeySessionID, tr.GetSessionId())
	}
	if c.init != nil {
		hr.Header.Set(transport.HeaderKeyProtocolVersion, c.init.ProtocolVersion)
	}
	for k, v := range c.u.cfg.Headers {
		hr.Header.Set(k, v)
	}
	for k, v := range traceHeaders(ctx) {
		hr.Header.Set(k, v)
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("the upstream answered %s", res.Status)
	}
	return nil
}

// answerUpstream is serveUpstreamRequest's answer to req.
func (c *conn) answerUpstream(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	rl := &relay{c: c}
	var res any
	var err error
	switch mcp.MCPMethod(req.Method) {
	case mcp.MethodSamplingCreateMessage:
		var p mcp.CreateMessageParams
		if err = decodeParams(req.Params, &p); err != nil {
			return invalidParams(req, err), nil
		}
		for i := range p.Messages {
			content, err := mcp.ParseSamplingContent(p.Messages[i].Content)
			if err != nil {
				return invalidParams(req, fmt.Errorf("message %d: %w", i, err)), nil
			}
			p.Messages[i].Content = content
		}
		res, err = rl.CreateMessage(ctx, mcp.CreateMessageRequest{Request: mcp.Request{Method: req.Method}, CreateMessageParams: p})
	case mcp.MethodElicitationCreate:
		var p mcp.ElicitationParams
		if err = decodeParams(req.Params, &p); err == nil {
			err = p.Validate()
		}
		if err != nil {
			return invalidParams(req, err), nil
		}
		res, err = rl.Elicit(ctx, mcp.ElicitationRequest{Request: mcp.Request{Method: req.Method}, Params: p})
	case mcp.MethodListRoots:
		res, err = rl.ListRoots(ctx, mcp.ListRootsRequest{Request: mcp.Request{Method: req.Method}})
	case mcp.MethodPing:
		res = struct{}{}
	default:
		return transport.NewJSONRPCErrorResponse(req.ID, mcp.METHOD_NOT_FOUND,
			fmt.Sprintf("method not found: the mediator does not offer %s to upstreams", mediator.QuoteIdentity(req.Method)), nil), nil
	}
	if err != nil {
		var ce *mediator.ClientRPCError
		if errors.As(err, &ce) {
			var data any
			if len(ce.Data) > 0 {
				data = ce.Data
			}
			return transport.NewJSONRPCErrorResponse(req.ID, ce.Code, ce.Message, data), nil
		}
		return nil, err // the transport answers -32603 with the text
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding the answer to %s: %w", req.Method, err)
	}
	return transport.NewJSONRPCResultResponse(req.ID, b), nil
}

// withoutTransportDeadline returns ctx's values cancelled when ctx is
// cancelled or conn ends, but not when ctx's deadline passes (once it has
// passed, a later cancellation of ctx is no longer seen: the request is
// then bounded by its call and conn alone). mcp-go's
// streamable HTTP client gives each request of the upstream a fixed 30 s,
// too short for a person answering an elicitation or reviewing a sampling
// request; such a request's own bounds are the agent's call it belongs to,
// under the upstream's timeout (toAgent), and the connection.
func withoutTransportDeadline(ctx, conn context.Context) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopCtx := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	stopConn := context.AfterFunc(conn, cancel)
	return out, func() {
		stopCtx()
		stopConn()
		cancel()
	}
}

// decodeParams decodes a request's params (as the transport decoded them)
// into v.
func decodeParams(params any, v any) error {
	if params == nil {
		return nil
	}
	b, err := json.Marshal(params)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func invalidParams(req transport.JSONRPCRequest, err error) *transport.JSONRPCResponse {
	return transport.NewJSONRPCErrorResponse(req.ID, mcp.INVALID_PARAMS,
		fmt.Sprintf("invalid params of %s: %v", mediator.QuoteIdentity(req.Method), err), nil)
}

// RootsChanged passes an agent session's notifications/roots/list_changed
// on: to the session's own upstream sessions, and to every shared one (the
// roots a shared session is given are those of the agent whose call asks).
func (r *Registry) RootsChanged(session string) {
	r.mu.Lock()
	ups := slices.Clone(r.ups)
	r.mu.Unlock()
	n := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{Method: string(mcp.MethodNotificationRootsListChanged)}}
	for _, u := range ups {
		var c *conn
		if u.cfg.Isolated() {
			c = u.sessionConn(session)
		} else {
			c, _ = u.live()
		}
		if c == nil {
			continue
		}
		go func() {
			ctx, cancel := context.WithTimeout(c.ctx, cancelTimeout)
			defer cancel()
			if err := c.tr.SendNotification(ctx, n); err != nil {
				u.log.Debug("could not pass on roots/list_changed", "err", err)
			}
		}()
	}
}
