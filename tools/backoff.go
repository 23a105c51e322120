package tools

import (
	"context"
	"math/rand/v2"
	"time"
)

// Restart backoff defaults (see WithRestartBackoff).
const (
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 30 * time.Second
	// backoffReset is how long a connection must stay up for the next
	// failure to be retried after the minimum delay again.
	backoffReset = time.Minute
)

// backoff yields exponentially growing delays between min and max, with
// up to 20% jitter so that many upstreams failing together do not retry in
// lock step.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, next: min}
}

// delay returns the next delay and doubles the one after it.
func (b *backoff) delay() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.max)
	jitter := time.Duration(rand.Int64N(int64(d)/5 + 1))
	return min(d+jitter, b.max)
}

// reset starts over at the minimum delay.
func (b *backoff) reset() { b.next = b.min }

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
