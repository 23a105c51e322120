package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// peer is the agent side of one call, backed by the mcp-go session in ctx.
type peer struct {
	srv     *server.MCPServer
	errs    *clientErrors // the agent's error answers, to pass on with their codes
	levels  *logLevels    // the agents' log levels
	ctx     context.Context
	session string
	// live holds the server's live MCP sessions (Server.live), for
	// NotifySession.
	live *sync.Map
	// asks takes the agent's answers to requests written on the call's
	// own stream (asks.go).
	asks *asks
	// scope is the call's own stream (passthrough.go); done is set once
	// the call's handler returns, after which nothing is written for it.
	scope *passScope
	mu    sync.Mutex
	done  bool
}

// end marks the call answered: its notifications are dropped from now on,
// and one being written finishes first, so that it precedes the result.
func (p *peer) end() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
}

// errCallEnded: a notification for a call that has been answered.
var errCallEnded = errors.New("the call has been answered")

var _ Peer = (*peer)(nil)

func (p *peer) SessionID() string { return p.session }

// notifyWriteTimeout bounds a notification's write when the caller's
// context sets no deadline.
const notifyWriteTimeout = 5 * time.Second

func (p *peer) Notify(ctx context.Context, method string, params map[string]any) error {
	// The call's own context carries the session; notifications for a call
	// that has ended are dropped.
	if p.ctx.Err() != nil {
		return p.ctx.Err()
	}
	if method == "notifications/message" && p.levels != nil {
		if level, _ := params["level"].(string); !p.levels.wantsLog(p.ctx, p.session, mcp.LoggingLevel(level)) {
			return nil // below the level the agent asked for
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return errCallEnded
	}
	if p.scope != nil && p.scope.notify != nil {
		msg, err := json.Marshal(notificationOf(method, params))
		if err != nil {
			return err
		}
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, notifyWriteTimeout)
			defer cancel()
		}
		err = p.scope.notify(ctx, msg)
		if err == nil {
			// mcp-go then writes the result on the same event stream.
			if up, ok := server.ClientSessionFromContext(p.ctx).(server.SessionWithStreamableHTTPConfig); ok {
				up.UpgradeToSSEWhenReceiveNotification()
			}
			return nil
		}
		if !errors.Is(err, errStreamClosed) {
			return err
		}
	}
	cs := server.ClientSessionFromContext(p.ctx)
	if cs == nil || !cs.Initialized() {
		return server.ErrNotificationNotInitialized
	}
	return sendToSession(cs, method, params)
}

// notificationOf builds a notification whose params are params, with a
// "_meta" member as the notification's _meta (mcp-go's encoding drops a
// "_meta" among the other params).
func notificationOf(method string, params map[string]any) mcp.JSONRPCNotification {
	np := mcp.NotificationParams{AdditionalFields: params}
	if meta, ok := params["_meta"].(map[string]any); ok {
		np.Meta = meta
	}
	return mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{Method: method, Params: np}}
}

// sendToSession queues a notification on an MCP session's channel (its
// GET stream, or the stdio pipe), as mcp-go's own senders do, but with its
// _meta kept; a full channel drops it, saying so.
func sendToSession(cs server.ClientSession, method string, params map[string]any) error {
	if up, ok := cs.(server.SessionWithStreamableHTTPConfig); ok {
		up.UpgradeToSSEWhenReceiveNotification()
	}
	select {
	case cs.NotificationChannel() <- notificationOf(method, params):
		return nil
	default:
		return server.ErrNotificationChannelBlocked
	}
}

func (p *peer) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	if !p.clientCan(func(c mcp.ClientCapabilities) bool { return c.Sampling != nil }) {
		return nil, fmt.Errorf("%w: the agent's client does not support sampling", ErrNotSupported)
	}
	if res, handled, err := askAs[mcp.CreateMessageResult](ctx, p, string(mcp.MethodSamplingCreateMessage), req.CreateMessageParams); handled {
		if err != nil {
			return nil, err
		}
		content, err := mcp.ParseSamplingContent(res.Content)
		if err != nil {
			return nil, fmt.Errorf("the agent's answer to sampling/createMessage is not valid: %w", err)
		}
		res.Content = content
		return res, nil
	}
	//lint:ignore SA1019 sampling is deprecated in 2026-07-28 but still how 2025-11-25 upstreams ask; we relay what they send
	res, err := p.srv.RequestSampling(mergeCancel(p.ctx, ctx), req)
	if ce := p.errs.take(p.session, "sampling/createMessage", err); ce != nil {
		return nil, ce
	}
	return res, err
}

func (p *peer) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if !p.clientCan(func(c mcp.ClientCapabilities) bool { return c.Elicitation != nil }) {
		return nil, fmt.Errorf("%w: the agent's client does not support elicitation", ErrNotSupported)
	}
	if !p.clientCan(func(c mcp.ClientCapabilities) bool { return elicitsIn(c, req.Params) }) {
		mode := req.Params.Mode
		if mode == "" {
			mode = mcp.ElicitationModeForm
		}
		return nil, fmt.Errorf("%w: the agent's client does not support %s-mode elicitation", ErrNotSupported, mode)
	}
	if res, handled, err := askAs[mcp.ElicitationResult](ctx, p, string(mcp.MethodElicitationCreate), req.Params); handled {
		return res, err
	}
	res, err := p.srv.RequestElicitation(mergeCancel(p.ctx, ctx), req)
	if ce := p.errs.take(p.session, "elicitation/create", err); ce != nil {
		return nil, ce
	}
	return res, err
}

func (p *peer) ListRoots(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	if !p.clientCan(func(c mcp.ClientCapabilities) bool { return c.Roots != nil }) {
		return nil, fmt.Errorf("%w: the agent's client does not support roots", ErrNotSupported)
	}
	if res, handled, err := askAs[mcp.ListRootsResult](ctx, p, string(mcp.MethodListRoots), struct{}{}); handled {
		return res, err
	}
	res, err := p.srv.RequestRoots(mergeCancel(p.ctx, ctx), req)
	if ce := p.errs.take(p.session, "roots/list", err); ce != nil {
		return nil, ce
	}
	return res, err
}

func (p *peer) clientCan(has func(mcp.ClientCapabilities) bool) bool {
	return has(p.ClientCapabilities())
}

func (p *peer) ClientCapabilities() mcp.ClientCapabilities {
	cs, ok := server.ClientSessionFromContext(p.ctx).(server.SessionWithClientInfo)
	if !ok {
		return mcp.ClientCapabilities{}
	}
	return cs.GetClientCapabilities()
}

func (p *peer) NotifySession(method string, params map[string]any) error {
	if p.live != nil {
		if v, ok := p.live.Load(p.session); ok {
			if cs := v.(server.ClientSession); cs.Initialized() {
				return sendToSession(cs, method, params)
			}
		}
	}
	return fmt.Errorf("%w: agent session %q has ended", ErrNotSupported, p.session)
}

// elicitsIn reports whether c declares the elicitation mode the request
// params ask for: "url" needs the url capability; a form (the default)
// needs form, or an elicitation capability naming no mode (2025-06-18's
// form-only elicitation).
func elicitsIn(c mcp.ClientCapabilities, params mcp.ElicitationParams) bool {
	e := c.Elicitation
	if e == nil {
		return false
	}
	if params.Mode == mcp.ElicitationModeURL {
		return e.URL != nil
	}
	return e.Form != nil || e.URL == nil
}

// mergeCancel returns base (which holds the session) cancelled also when
// other is done.
func mergeCancel(base, other context.Context) context.Context {
	ctx, cancel := context.WithCancel(base)
	stop := context.AfterFunc(other, cancel)
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}
