package mediator

import (
	"context"
	"errors"
	"time"
)

// StepName names a step of the chain for telemetry.
type StepName string

// The steps whose own time Telemetry is told of. Each is the time spent in
// that step alone, not in the steps it wraps: record is the wait for the
// call's record to be durable (the audit writer's lag as the call sees it),
// approval the wait for a human, forward the upstream's answer and the
// result scan.
const (
	StepAuthenticate StepName = "authenticate"
	StepIntent       StepName = "intent"
	StepBehaviour    StepName = "behaviour"
	StepPolicy       StepName = "policy"
	StepApproval     StepName = "approval"
	StepForward      StepName = "forward"
	StepRecord       StepName = "record"
)

// Steps lists the step names, in chain order.
var Steps = []StepName{StepAuthenticate, StepIntent, StepBehaviour, StepPolicy, StepApproval, StepForward, StepRecord}

// Telemetry observes the chain (Deps.Telemetry; nil: off). Its methods are
// called on the call's goroutine and must be fast and safe for concurrent
// use; they must not keep c.
type Telemetry interface {
	// Step reports the time one step of c took.
	Step(ctx context.Context, c *Call, step StepName, d time.Duration)
	// Call reports a finished call: its record (already written, or
	// failed to be: recordErr) and the time from entry to the end of its
	// record.
	Call(ctx context.Context, c *Call, rec *ChainRecord, d time.Duration, recordErr error)
	// AuthFailed reports a refused credential, by a short fixed reason
	// (AuthFailureReason).
	AuthFailed(reason string)
}

// AuthReasoner is an authentication error that names its cause in one
// fixed word ("expired", "revoked", ...), for metrics.
type AuthReasoner interface {
	error
	AuthReason() string
}

// AuthFailureReason is the fixed word of an authentication error: its
// AuthReasoner's, or "other". It never holds text from the credential.
func AuthFailureReason(err error) string {
	if r, ok := errors.AsType[AuthReasoner](err); ok {
		return r.AuthReason()
	}
	return "other"
}

// stepTimer starts timing a step when telemetry is on.
func (p *pipeline) stepTimer() time.Time {
	if p.d.Telemetry == nil {
		return time.Time{}
	}
	return time.Now()
}

// stepDone reports a step started at start (from stepTimer).
func (p *pipeline) stepDone(ctx context.Context, c *Call, step StepName, start time.Time) {
	if p.d.Telemetry != nil && !start.IsZero() {
		p.d.Telemetry.Step(ctx, c, step, time.Since(start))
	}
}

type authTimeKey struct{}

// withAuthTime carries the time a transport spent verifying the
// credential to the chain, which reports it as the authenticate step.
func withAuthTime(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, authTimeKey{}, d)
}

func authTime(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(authTimeKey{}).(time.Duration)
	return d, ok
}
