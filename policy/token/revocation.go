package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Defaults of the revocation poller.
const (
	// DefaultPollInterval is how often the store is asked for new
	// revocations, so another process's revocation takes effect within
	// about this long.
	DefaultPollInterval = time.Second
	// DefaultMaxStale is how long the revocation list may go without a
	// successful poll before every token is refused.
	DefaultMaxStale = 30 * time.Second
)

// ErrInvalidRevocation is wrapped by Revoke when the revocation does not
// name exactly one of a token id, a task id or an agent id.
var ErrInvalidRevocation = errors.New("invalid revocation")

// revocations is the in-memory index the Verifier checks on every request.
//
// A jti revocation withdraws that token for good. A task or agent
// revocation withdraws every token of the task or agent issued up to the
// revocation (iat at or before its time, to the second, or no iat):
// tokens minted afterwards are valid, so a task id or an agent can be
// given credentials again.
type revocations struct {
	mu     sync.RWMutex
	jtis   map[string]mediator.Revocation
	tasks  map[string]mediator.Revocation // the latest per task
	agents map[string]mediator.Revocation // the latest per agent
	seq    int64                          // the highest Seq applied
	synced time.Time                      // the last successful poll
}

func newRevocations() *revocations {
	return &revocations{
		jtis:   map[string]mediator.Revocation{},
		tasks:  map[string]mediator.Revocation{},
		agents: map[string]mediator.Revocation{},
	}
}

// apply adds rs to the index. It is idempotent.
func (x *revocations) apply(rs ...mediator.Revocation) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, r := range rs {
		switch {
		case r.JTI != "":
			x.jtis[r.JTI] = r
		case r.TaskID != "":
			if old, ok := x.tasks[r.TaskID]; !ok || r.At.After(old.At) {
				x.tasks[r.TaskID] = r
			}
		case r.AgentID != "":
			if old, ok := x.agents[r.AgentID]; !ok || r.At.After(old.At) {
				x.agents[r.AgentID] = r
			}
		}
		x.seq = max(x.seq, r.Seq)
	}
}

// check returns an error if c's token is revoked.
func (x *revocations) check(c *Claims) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if r, ok := x.jtis[c.ID]; ok {
		return revokedError("token id "+quote(c.ID), r)
	}
	if c.Task != "" {
		if r, ok := x.tasks[c.Task]; ok && issuedBy(c, r.At) {
			return revokedError("task "+quote(c.Task), r)
		}
	}
	if r, ok := x.agents[c.Subject]; ok && issuedBy(c, r.At) {
		return revokedError("agent "+quote(c.Subject), r)
	}
	return nil
}

// issuedBy reports whether c was issued at or before t, to the second
// (iat has second precision); a token without iat counts as issued before.
func issuedBy(c *Claims, t time.Time) bool {
	return c.IssuedAt == nil || !c.IssuedAt.Time.After(t.Truncate(time.Second))
}

func revokedError(what string, r mediator.Revocation) error {
	reason := ""
	if r.Reason != "" {
		reason = ": " + quote(r.Reason)
	}
	return fail(ErrRevoked, "token revoked (%s revoked at %s%s): ask for a new token", what, stamp(r.At), reason)
}

// since returns the highest Seq applied.
func (x *revocations) since() int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.seq
}

// markSynced records a successful poll at t.
func (x *revocations) markSynced(t time.Time) {
	x.mu.Lock()
	x.synced = t
	x.mu.Unlock()
}

// staleFor returns how long ago the last successful poll was.
func (x *revocations) staleFor(now time.Time) time.Duration {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return now.Sub(x.synced)
}

// poller keeps a revocations index in step with a RevocationStore.
type poller struct {
	store    mediator.RevocationStore
	index    *revocations
	every    time.Duration
	maxStale time.Duration
	now      func() time.Time
	log      *slog.Logger
	failed   bool // the last poll failed (log once per outage)
}

// poll fetches the revocations after the last one applied, within a time
// bound.
func (p *poller) poll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(2*p.every, 2*time.Second))
	defer cancel()
	rs, err := p.store.RevocationsSince(ctx, p.index.since())
	if err != nil {
		return fmt.Errorf("read revocations: %w", err)
	}
	p.index.apply(rs...)
	p.index.markSynced(p.now())
	return nil
}

// run polls every p.every until ctx ends.
func (p *poller) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := p.poll(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !p.failed:
			p.failed = true
			p.log.Error("cannot refresh the revocation list; tokens are refused once it is stale",
				"err", err, "stale_after", p.maxStale)
		case err == nil && p.failed:
			p.failed = false
			p.log.Info("revocation list refreshed again")
		}
	}
}
