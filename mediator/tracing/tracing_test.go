package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-mediator/mediator/mediator"
)

func newTest(t *testing.T) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return NewWithProvider(tp), exp
}

const agentParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

func TestExporterURL(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "http://127.0.0.1:4318", want: "http://127.0.0.1:4318/v1/traces"},
		{in: "http://127.0.0.1:4318/", want: "http://127.0.0.1:4318/v1/traces"},
		{in: "https://otel.example.com/custom/path", want: "https://otel.example.com/custom/path"},
		{in: "", err: "is not an http(s) URL"},
		{in: "127.0.0.1:4318", err: "is not an http(s) URL"},
		{in: "grpc://127.0.0.1:4317", err: "is not an http(s) URL"},
		{in: "http://user:secret@collector:4318", err: "holds credentials"},
	}
	for _, tt := range tests {
		got, err := ExporterURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ExporterURL(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ExporterURL(%q): the error quotes the password: %v", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ExporterURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Endpoint: "ftp://x"},
		{Endpoint: "http://127.0.0.1:1", SampleRatio: 1.5},
		{Endpoint: "http://127.0.0.1:1", SampleRatio: -0.1},
	} {
		if tr, err := New(cfg); err == nil {
			_ = tr.Shutdown(context.Background())
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

// call is a resolved tool call carrying a secret in its arguments and
// prompt, which no span may hold.
func call(parent string) *mediator.Call {
	return &mediator.Call{
		ID: "call-1", Method: "tools/call", Name: "demo__lookup",
		Arguments:   map[string]any{"customer": "SECRET-ARG-VALUE"},
		Prompt:      "SECRET-PROMPT",
		Trace:       mediator.TraceContext{Parent: parent},
		Session:     mediator.SessionInfo{ID: "sess-1", Key: "sess-1", Transport: "http"},
		Credentials: mediator.Credentials{Transport: "http", Bearer: "SECRET-TOKEN"},
		Agent:       &mediator.Agent{ID: "agent-a", TrustLevel: "high"},
		Target:      &mediator.Target{Kind: mediator.KindTool, Server: "demo", Name: "demo__lookup", Original: "lookup"},
	}
}

// The call span is the agent's child; steps are its children; the forward
// span is what goes upstream; attributes name the call, never its content.
func TestSpanTree(t *testing.T) {
	tr, exp := newTest(t)
	c := call(agentParent)
	ctx := tr.StartCall(context.Background(), c, time.Now())
	_, endPolicy := tr.StartStep(ctx, c, mediator.StepPolicy, time.Now())
	c.Decision = mediator.Decision{Effect: mediator.EffectAllow, Rule: "read-demo"}
	endPolicy(nil)
	fctx, endForward := tr.StartStep(ctx, c, mediator.StepForward, time.Now())
	out := tr.Outgoing(fctx)
	endForward(nil)
	rec := mediator.NewRecord(c, nil, time.Now())
	rec.Outcome = mediator.OutcomeOK
	tr.EndCall(ctx, c, &rec, nil, nil)

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("got %d spans, want 3 (policy, forward, call)", len(spans))
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	root, ok := byName["tools/call demo__lookup"]
	if !ok {
		t.Fatalf("no call span named by method and tool: %v", names(spans))
	}
	if got := root.Parent.TraceID().String(); got != "0af7651916cd43dd8448eb211c80319c" || !root.Parent.IsRemote() {
		t.Errorf("call span parent = %v (remote %v); want the agent's traceparent", got, root.Parent.IsRemote())
	}
	if root.SpanKind != trace.SpanKindServer {
		t.Errorf("call span kind = %v, want server", root.SpanKind)
	}
	fwd, ok := byName["tools/call lookup"]
	if !ok || fwd.SpanKind != trace.SpanKindClient {
		t.Fatalf("no client span to the upstream named by its tool: %v", names(spans))
	}
	for _, s := range []tracetest.SpanStub{byName["mediator.policy"], fwd} {
		if s.Parent.SpanID() != root.SpanContext.SpanID() {
			t.Errorf("%s: parent %v, want the call span", s.Name, s.Parent.SpanID())
		}
	}
	wantOut := fmt.Sprintf("00-%s-%s-01", root.SpanContext.TraceID(), fwd.SpanContext.SpanID())
	if out.Parent != wantOut {
		t.Errorf("outgoing traceparent = %q, want the forward span %q", out.Parent, wantOut)
	}
	attrs := map[string]string{}
	for _, kv := range root.Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, v := range map[string]string{
		"mcp.method.name": "tools/call", "gen_ai.tool.name": "demo__lookup", "gen_ai.operation.name": "execute_tool",
		"mcp.session.id": "sess-1", "network.transport": "tcp", "mediator.decision": "allow", "mediator.rule": "read-demo",
		"mediator.outcome": "ok", "mediator.agent.id": "agent-a", "mediator.upstream": "demo", "mediator.call.id": "call-1",
	} {
		if attrs[k] != v {
			t.Errorf("call span %s = %q, want %q", k, attrs[k], v)
		}
	}
	for _, s := range spans {
		dump := fmt.Sprintf("%+v", s)
		for _, secret := range []string{"SECRET-ARG-VALUE", "SECRET-PROMPT", "SECRET-TOKEN"} {
			if strings.Contains(dump, secret) {
				t.Errorf("span %s holds %s", s.Name, secret)
			}
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}

// A denial is recorded as what the mediator decided (error.type), not as
// a failure; a failure is an error status; a broken traceparent starts a
// new trace instead of failing the call.
func TestOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		parent     string
		callErr    error
		recordErr  error
		wantType   string
		wantStatus codes.Code
	}{
		{name: "denied", parent: agentParent, callErr: &mediator.DenyError{Decision: mediator.Decision{Effect: mediator.EffectDeny}}, wantType: "denied", wantStatus: codes.Unset},
		{name: "upstream failed", parent: agentParent, callErr: fmt.Errorf("%w: down", mediator.ErrUpstream), wantType: mediator.ErrorCode(mediator.ErrUpstream), wantStatus: codes.Error},
		{name: "record failed", parent: "garbage", recordErr: errors.New("disk full"), wantType: "audit", wantStatus: codes.Error},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, exp := newTest(t)
			c := call(tt.parent)
			ctx := tr.StartCall(context.Background(), c, time.Now())
			rec := mediator.NewRecord(c, tt.callErr, time.Now())
			tr.EndCall(ctx, c, &rec, tt.callErr, tt.recordErr)
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans", len(spans))
			}
			s := spans[0]
			var typ string
			for _, kv := range s.Attributes {
				if kv.Key == "error.type" {
					typ = kv.Value.AsString()
				}
			}
			if typ != tt.wantType || s.Status.Code != tt.wantStatus {
				t.Errorf("error.type %q status %v; want %q %v", typ, s.Status.Code, tt.wantType, tt.wantStatus)
			}
			if strings.Contains(s.Status.Description, "down") || strings.Contains(s.Status.Description, "disk") {
				t.Errorf("status holds the error text: %q", s.Status.Description)
			}
			if tt.parent == "garbage" && s.Parent.IsValid() {
				t.Errorf("an invalid traceparent became a parent: %v", s.Parent)
			}
		})
	}
}

// An agent-chosen name longer than the cap is cut in the span.
func TestAttributesBounded(t *testing.T) {
	tr, exp := newTest(t)
	c := call("")
	c.Agent.ID = strings.Repeat("é", 1000)
	ctx := tr.StartCall(context.Background(), c, time.Now())
	rec := mediator.NewRecord(c, nil, time.Now())
	tr.EndCall(ctx, c, &rec, nil, nil)
	for _, kv := range exp.GetSpans()[0].Attributes {
		if v := kv.Value.String(); len(v) > maxAttr {
			t.Errorf("%s is %d bytes, over the %d cap", kv.Key, len(v), maxAttr)
		}
	}
}

// A call the sampler leaves out makes no span of its steps, and the
// upstream still gets the trace id with the decision (flags 00); a call
// whose agent sampled its trace is traced whatever the ratio.
func TestSampling(t *testing.T) {
	const unsampledParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
	tests := []struct {
		name, parent string
		wantSpans    int
		wantFlags    string
	}{
		{"no parent, ratio 0", "", 0, "-00"},
		{"the agent did not sample", unsampledParent, 0, "-00"},
		{"the agent sampled", agentParent, 3, "-01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
				sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0))))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tr := NewWithProvider(tp)
			c := call(tc.parent)
			ctx := tr.StartCall(context.Background(), c, time.Now())
			_, endPolicy := tr.StartStep(ctx, c, mediator.StepPolicy, time.Now())
			endPolicy(nil)
			fctx, endForward := tr.StartStep(ctx, c, mediator.StepForward, time.Now())
			out := tr.Outgoing(fctx)
			endForward(errors.New("upstream failed"))
			rec := mediator.NewRecord(c, nil, time.Now())
			tr.EndCall(ctx, c, &rec, nil, nil)
			if got := len(exp.GetSpans()); got != tc.wantSpans {
				t.Errorf("exported %d spans, want %d: %v", got, tc.wantSpans, names(exp.GetSpans()))
			}
			if len(out.Parent) != 55 || !strings.HasSuffix(out.Parent, tc.wantFlags) {
				t.Errorf("outgoing traceparent %q, want a valid one ending %s", out.Parent, tc.wantFlags)
			}
			if tc.parent != "" && !strings.Contains(out.Parent, "0af7651916cd43dd8448eb211c80319c") {
				t.Errorf("outgoing traceparent %q lost the agent's trace id", out.Parent)
			}
		})
	}
}
