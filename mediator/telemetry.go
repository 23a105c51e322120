package mediator

import (
	"context"
	"errors"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
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
	// failed to be: recordErr), the call's own error (nil when it
	// succeeded) and the time from entry to the end of its record.
	Call(ctx context.Context, c *Call, rec *ChainRecord, d time.Duration, callErr, recordErr error)
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

// Tracer makes a span of each call and of each of its steps (Deps.Tracer;
// nil: off). Its spans hold what a call is (method, catalog name, session,
// agent, decision, outcome), never its arguments, results, prompt or
// credentials. Its methods are called on the call's goroutine and must be
// safe for concurrent use; they must not keep c.
type Tracer interface {
	// StartCall starts c's span at start, as a child of c.Trace (the trace
	// context the agent sent) or else of a span in ctx, and returns ctx
	// holding it.
	StartCall(ctx context.Context, c *Call, start time.Time) context.Context
	// StartStep starts the span of one step of c at start, as a child of
	// the call's span in ctx; end ends it, err being the step's own
	// failure (nil when it decided, whatever it decided).
	StartStep(ctx context.Context, c *Call, step StepName, start time.Time) (sctx context.Context, end func(err error))
	// EndCall ends the call's span in ctx with what its record says;
	// callErr is the call's error, recordErr the record's.
	EndCall(ctx context.Context, c *Call, rec *ChainRecord, callErr, recordErr error)
	// Outgoing is the trace context to send upstream from ctx's span.
	Outgoing(ctx context.Context) TraceContext
}

// TraceContext is a W3C trace context as text: the traceparent and
// tracestate values of an HTTP header or of MCP's _meta.
type TraceContext struct {
	Parent string
	State  string
}

// The _meta keys of a W3C trace context (MCP's convention for carrying
// traceparent and tracestate with a request).
const (
	TraceParentMetaKey = "traceparent"
	TraceStateMetaKey  = "tracestate"
)

// maxTraceHeader bounds a traceparent or tracestate taken from a request:
// a valid traceparent is 55 bytes, a tracestate at most 32 members of 256.
const maxTraceHeader = 8 << 10

// traceFromMeta is the trace context in a request's _meta, if any.
func traceFromMeta(m *mcp.Meta) (TraceContext, bool) {
	if m == nil || m.AdditionalFields == nil {
		return TraceContext{}, false
	}
	parent, _ := m.AdditionalFields[TraceParentMetaKey].(string)
	if parent == "" || len(parent) > maxTraceHeader {
		return TraceContext{}, false
	}
	state, _ := m.AdditionalFields[TraceStateMetaKey].(string)
	if len(state) > maxTraceHeader {
		state = ""
	}
	return TraceContext{Parent: parent, State: state}, true
}

// takeTrace sets c.Trace from the request's _meta, which takes precedence
// over the HTTP request's headers (the agent names the span of this one
// call there).
func takeTrace(c *Call, m *mcp.Meta) {
	if tc, ok := traceFromMeta(m); ok {
		c.Trace = tc
	}
}

// setTraceMeta puts tc into *m for the upstream (a new _meta when there is
// none), replacing whatever trace context the agent sent.
func setTraceMeta(m **mcp.Meta, tc TraceContext) {
	if tc.Parent == "" {
		return
	}
	if *m == nil {
		*m = &mcp.Meta{}
	}
	if (*m).AdditionalFields == nil {
		(*m).AdditionalFields = map[string]any{}
	}
	(*m).AdditionalFields[TraceParentMetaKey] = tc.Parent
	if tc.State != "" {
		(*m).AdditionalFields[TraceStateMetaKey] = tc.State
	} else {
		delete((*m).AdditionalFields, TraceStateMetaKey)
	}
}

// stepErr is the step's own failure in err: a refusal is the step
// deciding, not failing.
func stepErr(err error) error {
	if err == nil || IsDenial(err) {
		return nil
	}
	return err
}

type outgoingTraceKey struct{}

// WithOutgoingTrace carries the trace context an upstream request must
// send (the forward step's span) to the upstream's transport.
func WithOutgoingTrace(ctx context.Context, tc TraceContext) context.Context {
	return context.WithValue(ctx, outgoingTraceKey{}, tc)
}

// OutgoingTrace is the trace context set by WithOutgoingTrace, for an
// upstream transport's headers; zero when tracing is off.
func OutgoingTrace(ctx context.Context) TraceContext {
	tc, _ := ctx.Value(outgoingTraceKey{}).(TraceContext)
	return tc
}

// stepTimer is a step being timed (for Telemetry) and traced (for Tracer).
type stepTimer struct {
	start time.Time
	end   func(error)
}

// startStep starts timing and tracing a step when telemetry or tracing is
// on; sctx holds the step's span, for what the step calls.
func (p *pipeline) startStep(ctx context.Context, c *Call, step StepName) (sctx context.Context, t stepTimer) {
	if p.d.Telemetry == nil && p.d.Tracer == nil {
		return ctx, t
	}
	t.start = time.Now()
	if p.d.Tracer != nil {
		ctx, t.end = p.d.Tracer.StartStep(ctx, c, step, t.start)
	}
	return ctx, t
}

// stepDone ends a step started by startStep; err is the step's own
// failure.
func (p *pipeline) stepDone(ctx context.Context, c *Call, step StepName, t stepTimer, err error) {
	if t.start.IsZero() {
		return
	}
	if p.d.Telemetry != nil {
		p.d.Telemetry.Step(ctx, c, step, time.Since(t.start))
	}
	if t.end != nil {
		t.end(err)
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
