package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// A request an upstream sends the agent during a call (sampling,
// elicitation, roots) belongs to that call, and MCP's streamable HTTP
// transport says such messages go on the call's own POST stream. mcp-go's
// HTTP server (v1.2.1) sends sampling and roots requests only on the
// session's GET stream, and an elicitation on a request-scoped stream only
// when it finds one, so an agent holding no GET stream was never asked and
// the call hung until its timeout. The mediator writes all three on the
// call's POST stream itself, with ids of its own (askIDPrefix), and takes
// the agent's answer, POSTed to the session, before mcp-go sees it.
// Without such a stream (stdio, a 2026-07-28 request, a client that takes
// no event stream, a call already answered) the request goes the way
// mcp-go sends it; over stdio mcp-go writes it on the pipe, in order.

// askIDPrefix begins the id of every request the mediator writes on a
// call's stream.
const askIDPrefix = "mediator-ask-"

// askAnswer is an agent's response to an ask: its result, or its error.
type askAnswer struct {
	result json.RawMessage
	err    *ClientRPCError
}

type askKey struct{ session, id string }

// asks holds the requests written on calls' streams that await an answer.
type asks struct {
	n       atomic.Uint64
	mu      sync.Mutex
	waiting map[askKey]chan askAnswer
}

// open registers a request to session and returns its id and the channel
// its answer arrives on; done forgets it.
func (a *asks) open(session string) (string, chan askAnswer, func()) {
	id := askIDPrefix + strconv.FormatUint(a.n.Add(1), 10)
	k := askKey{session, id}
	ch := make(chan askAnswer, 1)
	a.mu.Lock()
	if a.waiting == nil {
		a.waiting = map[askKey]chan askAnswer{}
	}
	a.waiting[k] = ch
	a.mu.Unlock()
	return id, ch, func() {
		a.mu.Lock()
		delete(a.waiting, k)
		a.mu.Unlock()
	}
}

// take delivers body, a message the agent of session POSTed, when it is
// the answer to a waiting ask, and reports whether it was.
func (a *asks) take(session string, body []byte) bool {
	if !bytes.Contains(body, []byte(askIDPrefix)) {
		return false
	}
	var r struct {
		ID     string          `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	k := askKey{session, r.ID}
	a.mu.Lock()
	ch, ok := a.waiting[k]
	delete(a.waiting, k)
	a.mu.Unlock()
	if !ok {
		return false
	}
	var ans askAnswer
	switch {
	case r.Error != nil:
		e := &ClientRPCError{Code: r.Error.Code, Message: trimForError(r.Error.Message, MaxUpstreamErrorText)}
		if len(r.Error.Data) <= MaxUpstreamErrorData && string(r.Error.Data) != "null" {
			e.Data = r.Error.Data
		}
		ans.err = e
	case len(r.Result) > 0 && string(r.Result) != "null":
		ans.result = r.Result
	default:
		ans.err = &ClientRPCError{Code: mcp.INVALID_REQUEST, Message: "the agent's response has neither a result nor an error"}
	}
	ch <- ans
	return true
}

// askWriteTimeout bounds writing an ask on the call's stream.
const askWriteTimeout = 5 * time.Second

// ask writes a request of method to the agent on the call's own stream
// and waits for the answer, the call's end or ctx's. handled is false when
// the call has no stream of its own to write on: the caller then asks the
// way mcp-go does.
func (p *peer) ask(ctx context.Context, method string, params any) (result json.RawMessage, handled bool, err error) {
	if p.asks == nil || p.scope == nil || p.scope.notify == nil || !p.scope.asks {
		return nil, false, nil
	}
	id, ch, done := p.asks.open(p.session)
	defer done()
	msg, err := json.Marshal(map[string]any{"jsonrpc": mcp.JSONRPC_VERSION, "id": id, "method": method, "params": params})
	if err != nil {
		return nil, true, fmt.Errorf("encoding %s for the agent: %w", method, err)
	}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return nil, false, nil
	}
	wctx, cancel := context.WithTimeout(ctx, askWriteTimeout)
	err = p.scope.notify(wctx, msg)
	cancel()
	p.mu.Unlock()
	if err != nil {
		if errors.Is(err, errStreamClosed) {
			return nil, false, nil
		}
		return nil, true, fmt.Errorf("writing %s on the call's stream: %w", method, err)
	}
	// mcp-go then writes the result on the same event stream.
	if up, ok := server.ClientSessionFromContext(p.ctx).(server.SessionWithStreamableHTTPConfig); ok {
		up.UpgradeToSSEWhenReceiveNotification()
	}
	select {
	case ans := <-ch:
		if ans.err != nil {
			ans.err.Method = method
			return nil, true, ans.err
		}
		return ans.result, true, nil
	case <-ctx.Done():
		return nil, true, context.Cause(ctx)
	case <-p.ctx.Done():
		return nil, true, context.Cause(p.ctx)
	}
}

// askAs is ask with params and result of their mcp-go types; handled is
// false when the call has no stream of its own.
func askAs[T any](ctx context.Context, p *peer, method string, params any) (*T, bool, error) {
	raw, handled, err := p.ask(ctx, method, params)
	if !handled || err != nil {
		return nil, handled, err
	}
	var res T
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, true, fmt.Errorf("the agent's answer to %s is not valid: %w", method, err)
	}
	return &res, true, nil
}
