// Package tracing is the mediator's OpenTelemetry tracer: a span per
// mediated call, with a child span per step of the chain, exported over
// OTLP/HTTP. The agent's trace context (MCP's _meta traceparent, or the
// HTTP request's traceparent header) is the call span's parent, and the
// forward step's span is sent on to the upstream (HTTP headers, and _meta
// for every transport), so one trace runs agent → mediator → upstream.
//
// Spans follow the OpenTelemetry MCP and gen-ai semantic conventions
// (mcp.method.name, mcp.session.id, gen_ai.tool.name, ...) and carry the
// mediator's own decision attributes (mediator.decision, mediator.rule,
// mediator.outcome, ...). They never hold a call's arguments, results,
// prompt, error text or credentials: what a call is, never what it says.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-mediator/mediator/mediator"
)

// Config is where and how spans are exported.
type Config struct {
	// Endpoint is the OTLP/HTTP collector URL (http or https), e.g.
	// http://127.0.0.1:4318; /v1/traces is added when it has no path.
	Endpoint string
	// SampleRatio is the share of new traces sampled, in [0, 1]; a call
	// whose agent sent a trace context follows the agent's decision.
	SampleRatio float64
	// ServiceName is the resource's service.name (default mcp-mediator).
	ServiceName string
	// Version is the resource's service.version.
	Version string
	// Headers are sent with each export (a collector's API key).
	Headers map[string]string
	// Timeout bounds one export (default 10s).
	Timeout time.Duration
}

// maxAttr caps a string attribute taken from a call (names, ids, URIs).
const maxAttr = 256

// Tracer implements mediator.Tracer over an OpenTelemetry tracer.
type Tracer struct {
	tr       trace.Tracer
	prop     propagation.TraceContext
	shutdown func(context.Context) error
}

var _ mediator.Tracer = (*Tracer)(nil)

// ExporterURL is the URL spans are posted to for endpoint: endpoint
// itself, or with /v1/traces when it has no path. An endpoint that is not
// an absolute http or https URL is an error naming the fix.
func ExporterURL(endpoint string) (string, error) {
	return CollectorURL(endpoint, "/v1/traces", "tracing.headers_env")
}

// CollectorURL is the URL one OTLP/HTTP signal is posted to: endpoint
// itself, or with signalPath (e.g. /v1/logs) when it has no path. An
// endpoint that is not an absolute http or https URL, or that holds
// credentials (to be sent as headers, from the setting headersSetting),
// is an error naming the fix; the error never shows a password.
func CollectorURL(endpoint, signalPath, headersSetting string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL of an OTLP/HTTP collector (e.g. http://127.0.0.1:4318)", endpoint)
	}
	if u.User != nil {
		return "", fmt.Errorf("%q holds credentials; send them as a header (%s) instead", u.Redacted(), headersSetting)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = signalPath
	}
	return u.String(), nil
}

// New starts a tracer exporting to cfg.Endpoint in batches (off the
// calls' path: a slow or absent collector drops spans, it never delays a
// call). Shutdown flushes what is queued.
func New(cfg Config) (*Tracer, error) {
	endpoint, err := ExporterURL(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, fmt.Errorf("sample ratio %v is not between 0 and 1", cfg.SampleRatio)
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "mcp-mediator"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint), otlptracehttp.WithTimeout(cfg.Timeout)}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	// The exporter connects on the first export, not here.
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cfg.Version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	t := NewWithProvider(tp)
	t.shutdown = tp.Shutdown
	return t, nil
}

// NewWithProvider is a Tracer over tp (tests: an in-memory exporter).
func NewWithProvider(tp trace.TracerProvider) *Tracer {
	return &Tracer{tr: tp.Tracer("github.com/mcp-mediator/mediator", trace.WithSchemaURL(semconv.SchemaURL))}
}

// Shutdown exports the queued spans and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("flushing traces: %w", err)
	}
	return nil
}

// carrier reads a mediator.TraceContext as propagation headers.
type carrier mediator.TraceContext

func (c carrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.Parent
	case "tracestate":
		return c.State
	}
	return ""
}
func (c carrier) Set(string, string) {}
func (c carrier) Keys() []string     { return []string{"traceparent", "tracestate"} }

// StartCall implements mediator.Tracer. The span is named by the method
// until the call is resolved: the agent's requested name is not trusted
// to name a span (an unknown name would be one more span name).
func (t *Tracer) StartCall(ctx context.Context, c *mediator.Call, start time.Time) context.Context {
	if c.Trace.Parent != "" {
		// An invalid traceparent is ignored (W3C): the call starts a trace.
		ctx = t.prop.Extract(ctx, carrier(c.Trace))
	}
	attrs := []attribute.KeyValue{semconv.McpMethodNameKey.String(cut(c.Method))}
	switch c.Session.Transport {
	case "stdio":
		attrs = append(attrs, semconv.NetworkTransportPipe)
	case "http":
		attrs = append(attrs, semconv.NetworkTransportTCP)
	case mediator.TransportLocal:
		attrs = append(attrs, semconv.NetworkTransportUnix)
	}
	if id := c.Session.ID; id != "" && id != "stdio" {
		attrs = append(attrs, semconv.McpSessionIDKey.String(cut(id)))
	}
	ctx, _ = t.tr.Start(ctx, cut(c.Method), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	return ctx
}

// spanName is "{method} {target}" for a resolved tool or prompt (the
// convention's span name), else the method.
func spanName(method string, tg *mediator.Target, name string) string {
	if tg == nil || name == "" {
		return cut(method)
	}
	switch tg.Kind {
	case mediator.KindTool, mediator.KindPrompt, mediator.KindBuiltin:
		return cut(method + " " + name)
	}
	return cut(method)
}

// targetAttrs are the convention's attributes of what the call is for.
func targetAttrs(c *mediator.Call) []attribute.KeyValue {
	tg := c.Target
	if tg == nil {
		return nil
	}
	var attrs []attribute.KeyValue
	switch tg.Kind {
	case mediator.KindTool, mediator.KindBuiltin:
		attrs = append(attrs, semconv.GenAIToolNameKey.String(cut(tg.Name)), semconv.GenAIOperationNameExecuteTool)
	case mediator.KindPrompt:
		attrs = append(attrs, semconv.GenAIPromptNameKey.String(cut(tg.Name)))
	case mediator.KindResource:
		attrs = append(attrs, semconv.McpResourceURIKey.String(cut(tg.Name)))
	}
	if tg.Server != "" {
		attrs = append(attrs, attribute.String("mediator.upstream", cut(tg.Server)))
	}
	return attrs
}

// EndCall implements mediator.Tracer.
func (t *Tracer) EndCall(ctx context.Context, c *mediator.Call, rec *mediator.ChainRecord, callErr, recordErr error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	name := ""
	if c.Target != nil {
		name = c.Target.Name
	}
	span.SetName(spanName(rec.Method, c.Target, name))
	attrs := append(targetAttrs(c),
		attribute.String("mediator.call.id", rec.ID),
		attribute.String("mediator.outcome", string(rec.Outcome)),
	)
	if rec.AgentID != "" {
		attrs = append(attrs, attribute.String("mediator.agent.id", cut(rec.AgentID)))
	}
	if rec.TaskID != "" {
		attrs = append(attrs, attribute.String("mediator.task.id", cut(rec.TaskID)))
	}
	if c.Session.Key != "" {
		attrs = append(attrs, attribute.String("mediator.session", cut(c.Session.Key)))
	}
	if e := rec.Decision.Effect; e != "" {
		attrs = append(attrs, attribute.String("mediator.decision", string(e)))
	}
	if r := rec.Decision.Rule; r != "" {
		attrs = append(attrs, attribute.String("mediator.rule", cut(r)))
	}
	if rec.Decision.Shadow {
		attrs = append(attrs, attribute.Bool("mediator.shadow", true))
	}
	if c.Agent != nil && c.Agent.TrustLevel != "" {
		attrs = append(attrs, attribute.String("mediator.trust_level", c.Agent.TrustLevel))
	}
	if rec.Approval != nil {
		attrs = append(attrs, attribute.String("mediator.approval.id", cut(rec.Approval.ID)))
	}
	switch {
	case recordErr != nil:
		attrs = append(attrs, semconv.ErrorTypeKey.String("audit"))
		span.SetStatus(codes.Error, "the call's audit record could not be written")
	case callErr != nil:
		code := mediator.ErrorCode(callErr)
		attrs = append(attrs, semconv.ErrorTypeKey.String(code))
		if !mediator.IsDenial(callErr) {
			// A refusal is the mediator working; a failure is not.
			span.SetStatus(codes.Error, code)
		}
	case rec.Outcome == mediator.OutcomeToolError:
		attrs = append(attrs, semconv.ErrorTypeKey.String("tool_error"))
	}
	span.SetAttributes(attrs...)
	span.End()
}

// StartStep implements mediator.Tracer. The forward step is a client span
// to the upstream, named as the call to it; the others are internal spans
// named mediator.<step>.
func (t *Tracer) StartStep(ctx context.Context, c *mediator.Call, step mediator.StepName, start time.Time) (context.Context, func(error)) {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		// The call is not sampled, so neither is any step of it (the
		// sampler follows the parent): no span to make. The upstream is
		// sent the call's own, unsampled, context: the same trace id and
		// the sampling decision.
		return ctx, endNothing
	}
	name, kind := "mediator."+string(step), trace.SpanKindInternal
	var attrs []attribute.KeyValue
	if step == mediator.StepForward {
		kind = trace.SpanKindClient
		up := ""
		if c.Target != nil {
			up = c.Target.Original
		}
		name = spanName(c.Method, c.Target, up)
		attrs = append(attrs, semconv.McpMethodNameKey.String(cut(c.Method)))
		if c.Target != nil && c.Target.Server != "" {
			attrs = append(attrs, attribute.String("mediator.upstream", cut(c.Target.Server)))
		}
	}
	ctx, span := t.tr.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if span.IsRecording() {
			stepAttrs(span, c, step)
			if err != nil {
				code := mediator.ErrorCode(err)
				span.SetAttributes(semconv.ErrorTypeKey.String(code))
				span.SetStatus(codes.Error, code)
			}
		}
		span.End()
	}
}

// endNothing ends a step that has no span.
func endNothing(error) {}

// stepAttrs are what a step decided.
func stepAttrs(span trace.Span, c *mediator.Call, step mediator.StepName) {
	switch step {
	case mediator.StepIntent:
		if v := c.Intent.Verdict; v != "" {
			span.SetAttributes(attribute.String("mediator.intent.verdict", cut(string(v))))
		}
	case mediator.StepBehaviour:
		if b := c.Behaviour; b != nil {
			span.SetAttributes(attribute.String("mediator.trust_level", string(b.Trust)))
		}
	case mediator.StepPolicy:
		if e := c.Decision.Effect; e != "" {
			span.SetAttributes(attribute.String("mediator.decision", string(e)))
		}
		if r := c.Decision.Rule; r != "" {
			span.SetAttributes(attribute.String("mediator.rule", cut(r)))
		}
	case mediator.StepApproval:
		if v := c.Verdict; v != nil {
			span.SetAttributes(attribute.Bool("mediator.approval.approved", v.Approved))
		}
	}
}

// Outgoing implements mediator.Tracer.
func (t *Tracer) Outgoing(ctx context.Context) mediator.TraceContext {
	m := propagation.MapCarrier{}
	t.prop.Inject(ctx, m)
	return mediator.TraceContext{Parent: m["traceparent"], State: m["tracestate"]}
}

// cut bounds an attribute value taken from a call, on a UTF-8 boundary.
func cut(s string) string {
	s, _ = mediator.CutUTF8(strings.ToValidUTF8(s, "\uFFFD"), maxAttr)
	return s
}
