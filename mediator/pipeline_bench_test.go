package mediator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/mediator/metrics"
	"github.com/mcp-mediator/mediator/mediator/tracing"
	"github.com/mcp-mediator/mediator/store"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// The pipeline benchmarks run mediator.BuildChain without any network: a
// tools/call goes through every step to an upstream that answers at once.
// They compare a recorder that does nothing with the real SQLite store in
// a temporary directory, from one caller (one commit per call) and from
// many (the writer batches):
//
//	go test ./mediator -run XXX -bench Pipeline -benchmem
//
// Policy is a fake here: Casbin's own cost is policy.BenchmarkDecide.

type benchUpstreams struct{ cat *mediator.Catalog }

func (u benchUpstreams) Catalog() *mediator.Catalog { return u.cat }
func (u benchUpstreams) CallTool(_ context.Context, _ mediator.Tool, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText(req.GetString("text", "")), nil
}
func (benchUpstreams) ReadResource(context.Context, string, mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	return nil, mediator.ErrNotSupported
}
func (benchUpstreams) GetPrompt(context.Context, mediator.Prompt, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	return nil, mediator.ErrNotSupported
}
func (benchUpstreams) Complete(context.Context, string, mcp.CompleteRequest) (*mediator.CompleteResult, error) {
	return nil, mediator.ErrNotSupported
}
func (benchUpstreams) OnChange(func(*mediator.Catalog))                      {}
func (benchUpstreams) Subscribe(context.Context, string, string) error       { return nil }
func (benchUpstreams) Unsubscribe(context.Context, string, string) error     { return nil }
func (benchUpstreams) OnResourceUpdated(func(string, string, string))        {}
func (benchUpstreams) EndSession(string)                                     {}
func (benchUpstreams) Isolated(string) bool                                  { return false }
func (benchUpstreams) SetLogLevel(context.Context, string, mcp.LoggingLevel) {}
func (benchUpstreams) OnLog(func(string, string, map[string]any))            {}
func (benchUpstreams) RootsChanged(string)                                   {}

type benchAuthn struct{ a *mediator.Agent }

func (b benchAuthn) Authenticate(context.Context, mediator.Credentials) (*mediator.Agent, error) {
	return b.a, nil
}

type benchAllow struct{}

func (benchAllow) Decide(context.Context, mediator.AuthzRequest) (mediator.Decision, error) {
	return mediator.Decision{Effect: mediator.EffectAllow, Rule: "echo", Reason: "allowed", PolicyVersion: "v1"}, nil
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, mediator.ChainRecord) error { return nil }

// benchCatalog has n tools besides demo__echo, so lookups are not trivial.
func benchCatalog(n int) *mediator.Catalog {
	tools := []mediator.Tool{{Name: "demo__echo", Server: "demo", Original: "echo", Risk: mediator.RiskLow, Hash: "h",
		Definition: json.RawMessage(`{"name":"demo__echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}}`)}}
	for i := range n {
		name := fmt.Sprintf("srv%d__tool_%d", i%10, i)
		tools = append(tools, mediator.Tool{Name: name, Server: fmt.Sprintf("srv%d", i%10), Original: fmt.Sprintf("tool_%d", i),
			Definition: json.RawMessage(`{"name":"` + name + `"}`)})
	}
	return mediator.NewCatalog(tools, nil, nil, nil, []mediator.ServerState{{Name: "demo", Connected: true}})
}

func benchDeps(rec mediator.Recorder) mediator.Deps {
	return mediator.Deps{
		Upstreams:     benchUpstreams{cat: benchCatalog(100)},
		Authenticator: benchAuthn{a: &mediator.Agent{ID: "bench-agent", Roles: []string{"writer"}}},
		Authorizer:    benchAllow{},
		Recorder:      rec,
	}
}

func benchStore(b *testing.B) *store.Store {
	b.Helper()
	s, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "audit.db"),
		store.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// echoCall is what the agent-facing server builds for tools/call.
func echoCall() *mediator.Call {
	args := map[string]any{"text": "ping"}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "demo__echo", args
	return &mediator.Call{ID: newBenchID(), Method: "tools/call", Name: "demo__echo", Arguments: args, Request: &req,
		Session: mediator.SessionInfo{ID: "bench-session", Transport: "stdio"}, Prompt: "echo ping for the benchmark"}
}

var benchSeq int64

func newBenchID() string { benchSeq++; return fmt.Sprintf("bench-%d", benchSeq) }

func BenchmarkPipeline(b *testing.B) {
	b.Run("recorder=none", func(b *testing.B) { benchChain(b, nopRecorder{}) })
	b.Run("recorder=sqlite", func(b *testing.B) { benchChain(b, benchStore(b)) })
	b.Run("recorder=sqlite/parallel=32", func(b *testing.B) { benchChainParallel(b, benchStore(b), 32) })
}

// BenchmarkPipelineTelemetry is what metrics and tracing add to a call:
// the same chain (recorder none) with the real Prometheus metrics, with
// the real OpenTelemetry tracer sampling every call (batched to an
// exporter that drops the spans, so that the figure is the mediator's
// side and not a collector's), and with both, every call or one in ten
// sampled:
//
//	go test ./mediator -run XXX -bench PipelineTelemetry -benchmem
func BenchmarkPipelineTelemetry(b *testing.B) {
	withMetrics := func(d *mediator.Deps) { d.Telemetry = metrics.New(metrics.Sources{Version: "bench"}) }
	tracingAt := func(ratio float64) func(d *mediator.Deps) {
		return func(d *mediator.Deps) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
				sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			d.Tracer = tracing.NewWithProvider(tp)
		}
	}
	withTracing := tracingAt(1)
	for _, tc := range []struct {
		name string
		opts []func(*mediator.Deps)
	}{
		{"off", nil},
		{"metrics", []func(*mediator.Deps){withMetrics}},
		{"tracing", []func(*mediator.Deps){withTracing}},
		{"both", []func(*mediator.Deps){withMetrics, withTracing}},
		{"both/sampled=0.1", []func(*mediator.Deps){withMetrics, tracingAt(0.1)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d := benchDeps(nopRecorder{})
			for _, o := range tc.opts {
				o(&d)
			}
			benchChainDeps(b, d)
		})
	}
}

func benchChain(b *testing.B, rec mediator.Recorder) { benchChainDeps(b, benchDeps(rec)) }

func benchChainDeps(b *testing.B, d mediator.Deps) {
	h := mediator.BuildChain(d)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if err := h(ctx, echoCall()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

func benchChainParallel(b *testing.B, rec mediator.Recorder, par int) {
	h := mediator.BuildChain(benchDeps(rec))
	ctx := b.Context()
	ids := make(chan string, 1024)
	go func() {
		for i := 0; ; i++ {
			select {
			case ids <- fmt.Sprintf("par-%d", i):
			case <-ctx.Done():
				return
			}
		}
	}()
	b.SetParallelism(max(par/runtime.GOMAXPROCS(0), 1))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := echoCall()
			c.ID = <-ids
			if err := h(ctx, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkNewRecord is the caller's share of recording: turning a
// finished call into a ChainRecord (canonical arguments, result JSON).
func BenchmarkNewRecord(b *testing.B) {
	c := echoCall()
	c.Result = mcp.NewToolResultText("ping")
	c.Agent = &mediator.Agent{ID: "bench-agent"}
	t := mediator.ToolTarget(mediator.Tool{Name: "demo__echo", Server: "demo", Original: "echo"})
	c.Target = &t
	b.ReportAllocs()
	for b.Loop() {
		_ = mediator.NewRecord(c, nil, c.Started)
	}
}

// BenchmarkCatalogLookup resolves a tools/call name in a catalog of 1,000
// tools (the pipeline's resolve step, and forward's second lookup).
func BenchmarkCatalogLookup(b *testing.B) {
	cat := benchCatalog(1000)
	c := echoCall()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mediator.Resolve(cat, c); err != nil {
			b.Fatal(err)
		}
	}
}
