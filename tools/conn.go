package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// upstreamLogLevel is the level asked of upstreams that support logging,
// unless an agent asks for more (logging.go); an agent that never set a
// level gets their notifications/message at this level and above.
const upstreamLogLevel = mcp.LoggingLevelInfo

// errConnClosed is the death cause of a connection the registry closed.
var errConnClosed = errors.New("connection closed by the mediator")

// conn is one established connection to an upstream: a transport, the
// mcp-go client that initialised it, and for stdio the child process.
type conn struct {
	u      *upstream
	client *client.Client
	tr     transport.Interface
	proc   *process        // stdio only
	http   *http.Transport // remote only: its idle connections are closed with conn
	hc     *http.Client    // remote only: the transport's client (answerLate)
	init   *mcp.InitializeResult

	ctx    context.Context // the connection's lifetime
	cancel context.CancelFunc

	dead     chan struct{}
	deadOnce sync.Once
	deadErr  error

	events chan func() // resource updates, in order
	// session is the agent session this connection serves alone
	// (isolation "session"); "" for the shared connection.
	session string

	outboxMu sync.Mutex
	outboxes map[any]*outbox // per call: the notifications for its agent

	// offer is what an agent session's own upstream session is told its
	// client can do; empty for a shared one, whose relay handlers say it.
	offer mcp.ClientCapabilities

	elicitMu sync.Mutex
	elicits  map[string]pendingElicitation // URL elicitations by id (elicit.go)
}

// dial connects to the upstream and initialises the session: the shared
// one, or when session is set one agent session's own, offered the client
// capabilities agent (the agent's own, see offeredCapabilities).
func (u *upstream) dial(session string, agent *mcp.ClientCapabilities) (*conn, error) {
	ctx, cancel := context.WithCancel(u.ctx)
	c := &conn{u: u, ctx: ctx, cancel: cancel, dead: make(chan struct{}), events: make(chan func(), eventQueue), session: session}
	tr, err := u.newTransport(c)
	if err != nil {
		cancel()
		return nil, err
	}
	c.tr = tr
	opts := []client.ClientOption{client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION)}
	_, bidirectional := tr.(transport.BidirectionalInterface)
	if bidirectional && agent != nil {
		c.offer = offeredCapabilities(*agent)
	}
	if bidirectional && agent == nil {
		// A shared session serves agents of every kind. The handlers make
		// the client advertise sampling, form elicitation and roots;
		// serveUpstreamRequest then answers in their place (relay.go). A
		// transport that cannot take the upstream's requests (legacy SSE)
		// advertises none.
		relay := &relay{c: c}
		opts = append(opts, client.WithSamplingHandler(relay), client.WithElicitationHandler(relay),
			client.WithRootsHandler(relay)) // roots with listChanged: agents' changes are passed on (RootsChanged)
	}
	c.client = client.NewClient(tr, opts...)
	c.client.OnNotification(c.onNotification)
	c.client.OnConnectionLost(func(err error) { c.markDead(fmt.Errorf("connection lost: %w", err)) })
	go c.deliverEvents()
	if c.proc != nil {
		go c.watchProcess()
	}
	if err := c.handshake(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// newTransport creates the transport for u's kind of upstream.
func (u *upstream) newTransport(c *conn) (transport.Interface, error) {
	if u.transport == TransportStdio {
		return u.stdioTransport(c)
	}
	return u.remoteTransport(c)
}

// stdioTransport starts the child and speaks MCP over its pipes.
func (u *upstream) stdioTransport(c *conn) (transport.Interface, error) {
	p, err := startProcess(&u.cfg, childEnv(&u.cfg, u.r.baseEnv), u.r.maxMessage, u.log)
	if err != nil {
		return nil, err
	}
	c.proc = p
	u.log.Info("upstream process started", "pid", p.pid(), "command", u.cfg.Command)
	in := &deadlineWriter{f: p.stdin, timeout: max(u.timeout, 10*time.Second), onTimeout: func() {
		u.log.Error("upstream does not read its stdin; killing it")
		p.kill()
	}}
	return transport.NewIO(p.out, in, nil), nil
}

// handshake starts the client and performs initialize.
func (c *conn) handshake() error {
	if err := c.client.Start(c.ctx); err != nil {
		return fmt.Errorf("start transport: %w", err)
	}
	if bd, ok := c.tr.(transport.BidirectionalInterface); ok {
		bd.SetRequestHandler(c.serveUpstreamRequest) // in place of the client's (relay.go)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.u.timeout)
	defer cancel()
	res, err := c.client.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo:   c.u.r.clientInfo,
		Capabilities: c.offer,
	}})
	if err != nil {
		return fmt.Errorf("initialize: %w", c.explain(err))
	}
	c.init = res
	c.setLogLevel(ctx, c.u.r.logLevelFor(c.session))
	return nil
}

// watchProcess marks the connection dead when the child exits, once the
// transport has read what the child wrote before it died.
func (c *conn) watchProcess() {
	select {
	case <-c.proc.drained:
		c.markDead(fmt.Errorf("exited (%s)", c.proc.status()))
		_ = c.tr.Close()
	case <-c.ctx.Done():
	}
}

// markDead records why the connection is lost (the first cause wins) and
// wakes the supervisor.
func (c *conn) markDead(err error) {
	c.deadOnce.Do(func() {
		c.deadErr = err
		close(c.dead)
	})
}

// closedByUs reports whether the registry itself closed the connection.
func (c *conn) closedByUs() bool {
	select {
	case <-c.dead:
		return errors.Is(c.deadErr, errConnClosed)
	default:
		return false
	}
}

// deathCause returns why the connection was lost; valid once dead is closed.
func (c *conn) deathCause() error {
	<-c.dead
	return c.deadErr
}

// close tears the connection down: the transport, then the child (stdin
// closed, SIGTERM, SIGKILL) until it is reaped.
func (c *conn) close() {
	c.markDead(errConnClosed)
	c.cancel()
	_ = c.tr.Close()
	if c.proc != nil {
		c.proc.stop()
	}
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
}

// request sends one JSON-RPC request with the registry's own id and returns
// the raw result. When ctx ends first, the upstream is sent
// notifications/cancelled for it.
func (c *conn) request(ctx context.Context, method string, params any) (json.RawMessage, error) {
	id := mcp.NewRequestId(fmt.Sprintf("mediator-%d", c.u.r.ids.Add(1)))
	resp, err := c.tr.SendRequest(ctx, transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION, ID: id, Method: method, Params: params,
	})
	if err != nil {
		if ctx.Err() != nil {
			c.sendCancelled(id, context.Cause(ctx))
		}
		return nil, err
	}
	if resp.Error != nil {
		return nil, newRPCError(c.u.name, method, resp.Error)
	}
	return resp.Result, nil
}

// cancelTimeout bounds sending notifications/cancelled.
const cancelTimeout = 5 * time.Second

// sendCancelled tells the upstream to stop working on request id. mcp-go's
// client does this only over stdio (client.Client.cancelRequest skips HTTP
// transports), and the registry bypasses that client for requests anyway,
// so it is done here, for every transport. Best effort, off the caller's
// path.
//
// An agent's cancellation (cause *mediator.AgentCancelled) is relayed with
// the agent's own reason, or none when it gave none; any other cause (a
// timeout, the mediator shutting down) is the reason.
func (c *conn) sendCancelled(id mcp.RequestId, cause error) {
	fields := map[string]any{"requestId": id, "reason": "cancelled by the mediator"}
	var ac *mediator.AgentCancelled
	switch {
	case errors.As(cause, &ac) && ac.Reason == "":
		delete(fields, "reason")
	case errors.As(cause, &ac):
		fields["reason"] = ac.Reason
	case cause != nil:
		fields["reason"] = cause.Error()
	}
	n := mcp.JSONRPCNotification{
		JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{
			Method: string(mcp.MethodNotificationCancelled),
			Params: mcp.NotificationParams{AdditionalFields: fields},
		},
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
		defer cancel()
		if err := c.tr.SendNotification(ctx, n); err != nil {
			c.u.log.Debug("could not send notifications/cancelled", "err", err)
		}
	}()
}

// explain adds what is known about a dead stdio child to err: a request
// that failed because the child died says how it ended.
func (c *conn) explain(err error) error {
	if c.proc == nil || err == nil {
		return err
	}
	var rpc *rpcError
	if errors.As(err, &rpc) {
		return err
	}
	wait := exitWait
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		wait = 0 // a slow child is not a dead one: only report an exit already seen
	}
	if c.proc.waitExit(wait) {
		return fmt.Errorf("process exited (%s): %w", c.proc.status(), err)
	}
	return err
}

// exitWait is how long a failed request waits for a dying child's exit
// status.
const exitWait = 2 * time.Second
