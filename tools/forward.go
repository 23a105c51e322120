package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

// maxErrorText bounds an upstream's error message as passed on.
const maxErrorText = mediator.MaxUpstreamErrorText

// CallTool forwards tools/call for t to its upstream under the tool's
// original name. The request's _meta is passed through, except that the
// progress token is replaced (see the package documentation).
func (r *Registry) CallTool(ctx context.Context, t mediator.Tool, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if t.Original == "" {
		return nil, fmt.Errorf("%w: tool %q has no upstream name", mediator.ErrUnknownTool, t.Name)
	}
	var args any = req.Params.Arguments
	if len(req.Params.RawArguments) > 0 {
		args = req.Params.RawArguments // keeps numbers beyond 2^53 exact
	}
	if t.TaskSupport == mediator.TaskRequired {
		return r.callAsTask(ctx, t, req, args)
	}
	raw, err := r.forward(ctx, t.Server, string(mcp.MethodToolsCall), req.Params.Meta, func(meta map[string]any) any {
		return struct {
			Name      string         `json:"name"`
			Arguments any            `json:"arguments,omitempty"`
			Meta      map[string]any `json:"_meta,omitempty"`
		}{t.Original, args, meta}
	})
	if err != nil {
		return nil, err
	}
	res, err := mcp.ParseCallToolResult(&raw)
	if err != nil {
		return nil, badResult(t.Server, mcp.MethodToolsCall, err)
	}
	mediator.KeepRawResult(ctx, raw)
	return res, nil
}

// callAsTask calls a tool its upstream runs only as a task: tools/call
// with a task, then tasks/result for the task's outcome, asked again while
// the upstream's timeout passes and the agent's call goes on. When the
// agent's call ends first (its task cancelled, its lifetime over), the
// upstream's task is cancelled with tasks/cancel.
func (r *Registry) callAsTask(ctx context.Context, t mediator.Tool, req mcp.CallToolRequest, args any) (*mcp.CallToolResult, error) {
	var ttl *int64
	if dl, ok := ctx.Deadline(); ok {
		ms := max(time.Until(dl).Milliseconds(), 1)
		ttl = &ms
	}
	raw, err := r.forward(ctx, t.Server, string(mcp.MethodToolsCall), req.Params.Meta, func(meta map[string]any) any {
		return struct {
			Name      string         `json:"name"`
			Arguments any            `json:"arguments,omitempty"`
			Meta      map[string]any `json:"_meta,omitempty"`
			Task      mcp.TaskParams `json:"task"`
		}{t.Original, args, meta, mcp.TaskParams{TTL: ttl}}
	})
	if err != nil {
		return nil, err
	}
	var created mcp.CreateTaskResult
	if err := json.Unmarshal(raw, &created); err != nil || created.Task.TaskId == "" {
		return nil, fmt.Errorf("%w: upstream %q answered a task-augmented tools/call without a task (%d bytes): %v",
			mediator.ErrUpstream, t.Server, len(raw), err)
	}
	id := created.Task.TaskId
	for {
		raw, err = r.forward(ctx, t.Server, string(mcp.MethodTasksResult), nil, func(map[string]any) any {
			return mcp.TaskResultParams{TaskId: id}
		})
		if errors.Is(err, mediator.ErrUpstreamTimeout) && ctx.Err() == nil {
			continue // the task runs longer than one request may wait
		}
		break
	}
	if ctx.Err() != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, cerr := r.forward(cctx, t.Server, string(mcp.MethodTasksCancel), nil, func(map[string]any) any {
			return mcp.CancelTaskParams{TaskId: id}
		})
		r.log.Info("upstream task cancelled", "upstream", t.Server, "tool", t.Original, "task", id, "err", cerr)
	}
	if err != nil {
		return nil, err
	}
	res, err := mcp.ParseCallToolResult(&raw)
	if err != nil {
		return nil, badResult(t.Server, mcp.MethodTasksResult, err)
	}
	if res.Meta != nil {
		delete(res.Meta.AdditionalFields, "io.modelcontextprotocol/related-task") // the upstream's task, not the agent's
	}
	return res, nil
}

// GetPrompt forwards prompts/get for p under the prompt's original name.
func (r *Registry) GetPrompt(ctx context.Context, p mediator.Prompt, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	if p.Original == "" {
		return nil, fmt.Errorf("%w: prompt %q has no upstream name", mediator.ErrUnknownPrompt, p.Name)
	}
	raw, err := r.forward(ctx, p.Server, string(mcp.MethodPromptsGet), req.Params.Meta, func(meta map[string]any) any {
		return struct {
			Name      string            `json:"name"`
			Arguments map[string]string `json:"arguments,omitempty"`
			Meta      map[string]any    `json:"_meta,omitempty"`
		}{p.Original, req.Params.Arguments, meta}
	})
	if err != nil {
		return nil, err
	}
	res, err := mcp.ParseGetPromptResult(&raw)
	if err != nil {
		return nil, badResult(p.Server, mcp.MethodPromptsGet, err)
	}
	mediator.KeepRawResult(ctx, raw)
	return res, nil
}

// ReadResource forwards resources/read to server, URI unchanged.
func (r *Registry) ReadResource(ctx context.Context, server string, req mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	raw, err := r.forward(ctx, server, string(mcp.MethodResourcesRead), req.Params.Meta, func(meta map[string]any) any {
		return struct {
			URI       string         `json:"uri"`
			Arguments map[string]any `json:"arguments,omitempty"`
			Meta      map[string]any `json:"_meta,omitempty"`
		}{req.Params.URI, req.Params.Arguments, meta}
	})
	if err != nil {
		return nil, err
	}
	res, err := mcp.ParseReadResourceResult(&raw)
	if err != nil {
		return nil, badResult(server, mcp.MethodResourcesRead, err)
	}
	mediator.KeepRawResult(ctx, raw)
	return res, nil
}

// Complete forwards completion/complete to server as it is.
func (r *Registry) Complete(ctx context.Context, server string, req mcp.CompleteRequest) (*mediator.CompleteResult, error) {
	raw, err := r.forward(ctx, server, string(mcp.MethodCompletionComplete), nil, func(map[string]any) any {
		return req.Params
	})
	if err != nil {
		return nil, err
	}
	var res mediator.CompleteResult
	var fields struct {
		Completion json.RawMessage `json:"completion"`
	}
	if err := json.Unmarshal(raw, &res.CompleteResult); err != nil {
		return nil, badResult(server, mcp.MethodCompletionComplete, err)
	}
	if json.Unmarshal(raw, &fields) == nil && len(fields.Completion) > 0 && fields.Completion[0] == '{' {
		res.RawCompletion = fields.Completion
	}
	return &res, nil
}

func badResult(server string, method mcp.MCPMethod, err error) error {
	return fmt.Errorf("%w: upstream %q answered %s with a malformed result: %w", mediator.ErrUpstream, server, method, err)
}

// forward sends one request for an agent to the named upstream. build
// makes the params from the _meta to send (the agent's, progress token
// replaced).
func (r *Registry) forward(ctx context.Context, server, method string, meta *mcp.Meta, build func(map[string]any) any) (json.RawMessage, error) {
	u, err := r.lookup(server)
	if err != nil {
		return nil, err
	}
	rec, err := u.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer u.end(rec)
	fwdMeta, release := r.forwardMeta(u, rec, meta)
	defer release()
	return u.call(ctx, rec, method, build(fwdMeta))
}

// call sends method on the current connection, bounded by the upstream's
// timeout, and maps failures to the mediator's sentinel errors.
func (u *upstream) call(ctx context.Context, rec *callRec, method string, params any) (json.RawMessage, error) {
	c, release, err := u.connFor(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	cctx, cancel := context.WithTimeout(withCallRec(ctx, rec), u.timeout)
	defer cancel()
	u.mu.Lock()
	rec.ctx = cctx
	u.mu.Unlock()
	res, err := c.request(cctx, method, params)
	if err != nil {
		var rpc *rpcError
		if errors.As(err, &rpc) {
			c.awaitRequiredElicitations(rpc, rec.peer)
		}
		return nil, u.callError(ctx, cctx, c, method, err)
	}
	c.flush(rec.peer)
	return res, nil
}

// live returns the current connection, or why there is none.
func (u *upstream) live() (*conn, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c := u.conn; c != nil {
		select {
		case <-c.dead:
			return nil, fmt.Errorf("%w: upstream %q %v; it is being restarted: retry shortly",
				mediator.ErrUpstreamUnavailable, u.name, c.deathCause())
		default:
			return c, nil
		}
	}
	reason := u.lastErr
	if reason == "" {
		reason = "connecting"
	}
	return nil, fmt.Errorf("%w: upstream %q is not connected (%s); the mediator keeps reconnecting it: retry shortly",
		mediator.ErrUpstreamUnavailable, u.name, reason)
}

// callError turns a failed request into an error wrapping the right
// sentinel: the upstream's own JSON-RPC error (ErrUpstream), the agent
// going away (the context's error), the upstream's timeout
// (ErrUpstreamTimeout), or the connection failing (ErrUpstreamUnavailable).
func (u *upstream) callError(ctx, cctx context.Context, c *conn, method string, err error) error {
	var rpc *rpcError
	switch {
	case errors.As(err, &rpc):
		return err
	case ctx.Err() != nil:
		if cause := context.Cause(ctx); cause != ctx.Err() {
			return fmt.Errorf("%s on upstream %q cancelled (%v): %w", method, u.name, cause, ctx.Err())
		}
		return fmt.Errorf("%s on upstream %q cancelled: %w", method, u.name, ctx.Err())
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: upstream %q did not answer %s within %s; the request was cancelled. "+
			"If the tool is legitimately this slow, raise timeout for upstream %q in the configuration",
			mediator.ErrUpstreamTimeout, u.name, method, u.timeout, u.name)
	}
	if closed := c.closedByUs(); closed {
		return fmt.Errorf("%w: the connection to upstream %q was closed by the mediator during %s "+
			"(the upstream is being removed, or the mediator is shutting down)", mediator.ErrUpstreamUnavailable, u.name, method)
	}
	if c.proc != nil {
		if c.proc.waitExit(exitWait) {
			c.markDead(fmt.Errorf("exited (%s)", c.proc.status()))
			return fmt.Errorf("%w: upstream %q exited during %s (%s); it is being restarted: retry the call shortly",
				mediator.ErrUpstreamUnavailable, u.name, method, c.proc.status())
		}
	} else if isConnectionError(err) {
		c.markDead(err)
	}
	var authErr *transport.AuthorizationRequiredError
	if errors.As(err, &authErr) {
		return fmt.Errorf("%w: upstream %q refused the mediator's credentials (HTTP 401): check its headers in the configuration",
			mediator.ErrUpstreamUnavailable, u.name)
	}
	return fmt.Errorf("%w: upstream %q failed during %s: %w; the mediator is reconnecting it: retry shortly",
		mediator.ErrUpstreamUnavailable, u.name, method, err)
}

// isConnectionError reports whether err means the connection to a remote
// upstream is gone (rather than one request failing).
func isConnectionError(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, transport.ErrSessionTerminated) ||
		errors.Is(err, transport.ErrTransportClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) ||
		// mcp-go's SSE transport reports these without a sentinel.
		strings.Contains(err.Error(), "connection has been closed") ||
		strings.Contains(err.Error(), "transport has been closed")
}

// rpcError is an upstream's JSON-RPC error response.
type rpcError = mediator.UpstreamRPCError

// newRPCError keeps the upstream's code, message and data, bounded.
func newRPCError(upstream, method string, d *mcp.JSONRPCErrorDetails) *rpcError {
	e := &rpcError{Upstream: upstream, Method: method, Code: d.Code, Message: trimText(d.Message, maxErrorText)}
	if d.Data != nil {
		data, err := json.Marshal(d.Data)
		switch {
		case err != nil:
		case len(data) > mediator.MaxUpstreamErrorData:
			e.Message += fmt.Sprintf(" (the error's data, %d bytes, was dropped by the mediator: over its %d byte cap)", len(data), mediator.MaxUpstreamErrorData)
		default:
			e.Data = data
		}
	}
	return e
}

// trimText cuts s to at most n bytes on a rune boundary.
func trimText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
