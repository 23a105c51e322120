package tools

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// pingInterval is how often an idle remote upstream is pinged, so that a
// vanished server is noticed (and reconnected) before a call needs it.
const pingInterval = 30 * time.Second

// upstream is one configured upstream and the supervisor goroutine that
// keeps it connected.
type upstream struct {
	// restarts counts the connections lost and retried (metrics).
	restarts  atomic.Int64
	r         *Registry
	cfg       Config
	name      string
	prefix    string
	transport string
	timeout   time.Duration
	log       *slog.Logger

	ctx    context.Context // ended by stop
	cancel context.CancelFunc
	done   chan struct{} // closed when the supervisor has exited
	first  chan struct{} // closed after the first connection attempt
	relist chan struct{} // a list_changed arrived (capacity 1: coalesces)

	mu        sync.Mutex
	conn      *conn // nil while not connected
	lastErr   string
	protocol  string
	server    string
	completes bool
	listing   *listing
	calls     map[uint64]*callRec
	nextCall  uint64
	draining  bool
	inflight  sync.WaitGroup
	sess      map[string]*sessConn // isolation "session": by agent session
}

func newUpstream(r *Registry, cfg Config) *upstream {
	ctx, cancel := context.WithCancel(r.ctx)
	return &upstream{
		r: r, cfg: cfg, name: cfg.Name, prefix: cfg.EffectivePrefix(),
		transport: cfg.EffectiveTransport(), timeout: cfg.EffectiveTimeout(),
		log:    r.log.With("upstream", cfg.Name),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		first:  make(chan struct{}),
		relist: make(chan struct{}, 1),
		calls:  map[uint64]*callRec{},
	}
}

// run is the supervisor: connect, serve until the connection is lost,
// back off, and again, until stop.
func (u *upstream) run() {
	defer close(u.done)
	if u.cfg.Isolated() {
		reaped := make(chan struct{})
		go func() {
			u.reapSessions()
			close(reaped)
		}()
		defer func() { <-reaped }() // the sessions' children are stopped before done
	}
	var firstOnce sync.Once
	signalFirst := func() { firstOnce.Do(func() { close(u.first) }) }
	defer signalFirst()
	bo := newBackoff(u.r.backoffMin, u.r.backoffMax)
	for {
		c, l, err := u.connect()
		if err != nil {
			if u.ctx.Err() != nil {
				return
			}
			u.setDown(err.Error())
			signalFirst()
			d := bo.delay()
			u.log.Warn("upstream unavailable; retrying", "err", err, "retry_in", d)
			if !sleep(u.ctx, d) {
				return
			}
			continue
		}
		since := time.Now()
		u.setUp(c, l)
		signalFirst()
		cause := u.serve(c)
		c.close()
		if u.ctx.Err() != nil {
			return
		}
		u.setDown(cause + "; restarting")
		u.restarts.Add(1)
		if time.Since(since) >= backoffReset {
			bo.reset()
		}
		d := bo.delay()
		u.log.Warn("upstream connection lost; restarting", "cause", cause, "restart_in", d)
		if !sleep(u.ctx, d) {
			return
		}
	}
}

// connect dials the upstream and lists what it offers.
func (u *upstream) connect() (*conn, *listing, error) {
	c, err := u.dial("", nil)
	if err != nil {
		return nil, nil, err
	}
	l, err := u.list(c)
	if err != nil {
		c.close()
		return nil, nil, fmt.Errorf("list: %w", c.explain(err))
	}
	u.r.vet(u.ctx, &u.cfg, l)
	return c, l, nil
}

// serve waits until c is lost or the upstream stopped, re-listing on
// list_changed and pinging remote upstreams. It returns why it ended.
func (u *upstream) serve(c *conn) string {
	var tick <-chan time.Time
	if c.proc == nil {
		t := time.NewTicker(pingInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-u.ctx.Done():
			return "stopped"
		case <-c.dead:
			return c.deathCause().Error()
		case <-u.relist:
			u.refresh(c)
		case <-tick:
			u.ping(c)
		}
	}
}

// refresh re-lists the upstream after a list_changed notification and
// publishes the new catalog.
func (u *upstream) refresh(c *conn) {
	l, err := u.list(c)
	if err != nil {
		u.log.Warn("re-listing after list_changed failed; keeping the previous listing", "err", c.explain(err))
		return
	}
	u.r.vet(u.ctx, &u.cfg, l)
	u.mu.Lock()
	logChangedDefinitions(u.listing, l, u.log)
	u.listing = l
	u.mu.Unlock()
	u.log.Info("upstream listing refreshed", "tools", len(l.tools), "prompts", len(l.prompts),
		"resources", len(l.resources), "templates", len(l.templates))
	u.r.rebuild()
}

// ping checks a remote upstream; a transport failure marks the connection
// lost so that it is re-established.
func (u *upstream) ping(c *conn) {
	ctx, cancel := context.WithTimeout(u.ctx, min(u.timeout, 10*time.Second))
	defer cancel()
	_, err := c.request(ctx, "ping", nil)
	var rpc *rpcError
	if err != nil && !errors.As(err, &rpc) && u.ctx.Err() == nil {
		c.markDead(fmt.Errorf("ping failed: %w", err))
	}
}

// requestRelist asks the supervisor to re-list; repeated requests while one
// is pending coalesce.
func (u *upstream) requestRelist() {
	select {
	case u.relist <- struct{}{}:
	default:
	}
}

func (u *upstream) setUp(c *conn, l *listing) {
	u.mu.Lock()
	u.conn = c
	u.lastErr = ""
	u.protocol = c.init.ProtocolVersion
	u.server = c.init.ServerInfo.Name
	if v := c.init.ServerInfo.Version; v != "" {
		u.server += " " + v
	}
	u.completes = c.init.Capabilities.Completions != nil
	logChangedDefinitions(u.listing, l, u.log)
	u.listing = l
	u.mu.Unlock()
	u.log.Info("upstream connected", "server", u.server, "protocol", u.protocol, "tools", len(l.tools),
		"prompts", len(l.prompts), "resources", len(l.resources), "templates", len(l.templates))
	u.r.rebuild()
}

// setDown records that the upstream is not connected, and why. The last
// listing is kept, so that its tools are still known (and refused with a
// clear error) while it restarts.
func (u *upstream) setDown(reason string) {
	u.mu.Lock()
	u.conn = nil
	u.lastErr = reason
	u.mu.Unlock()
	u.r.rebuild()
}

// snapshot returns the upstream's state and listing.
func (u *upstream) snapshot() (mediator.ServerState, *listing) {
	u.mu.Lock()
	defer u.mu.Unlock()
	connected := u.conn != nil
	if connected {
		select {
		case <-u.conn.dead:
			connected = false // the supervisor is about to notice
		default:
		}
	}
	return mediator.ServerState{
		Name: u.name, Transport: u.transport, Connected: connected, Required: u.cfg.IsRequired(),
		Error: u.lastErr, Protocol: u.protocol, Server: u.server, Completions: u.completes,
	}, u.listing
}

// stop ends the supervisor, which closes the connection, and waits for it.
func (u *upstream) stop() {
	u.cancel()
	<-u.done
}

// drain refuses new calls and waits until the calls in flight have ended,
// ctx has ended, or the upstream's timeout has passed.
func (u *upstream) drain(ctx context.Context) {
	u.mu.Lock()
	u.draining = true
	n := len(u.calls)
	u.mu.Unlock()
	if n == 0 {
		return
	}
	done := make(chan struct{})
	go func() {
		u.inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(u.timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		u.log.Warn("removing upstream before its calls ended; cancelling them", "calls", n, "err", ctx.Err())
	case <-t.C:
		u.log.Warn("removing upstream: calls still in flight after its timeout; cancelling them", "calls", n)
	}
}
