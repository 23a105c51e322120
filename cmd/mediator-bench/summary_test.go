package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// writeRun writes one run's report as scripts/bench.sh names it.
func writeRun(t *testing.T, dir, name string, thr, p50, p99, cpu float64) {
	t.Helper()
	r := report{Transport: "stdio", Calls: int64(thr), OK: int64(thr), Throughput: thr,
		Latency: latency{P50: p50, P90: p50, P99: p99, Max: p99}, ServerCPUPerCall: cpu}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runs", name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// summarize turns a results directory into the generated section of
// BENCHMARKS.md, keeping what is outside the markers, and splits the
// mediator's overhead at the bare relay when the rounds ran it.
func TestSummarize(t *testing.T) {
	tests := []struct {
		name      string
		withRelay bool
		telemetry bool
		want      []string
		dontWant  []string
	}{
		{"direct and mediated", false, false,
			[]string{"| stdio | 1 | 10000 | 2000 | 0.20 | 0.100 / 0.200 | 0.500 / 1.500 | +0.400 | +1.300 |"},
			[]string{"The floor"}},
		{"with the relay", true, false,
			[]string{
				"| stdio | 1 | 10000 | 2000 | 0.20 |",
				"### The floor: a bare mcp-go relay",
				// relay/direct 4000/10000, mediated/relay 2000/4000; hop
				// 0.25−0.10, pipeline 0.50−0.25.
				"| stdio | 1 | 4000 | 0.40 | 0.50 | 0.250 / 0.500 | +0.150 / +0.300 | +0.250 / +1.000 | 150 | 400 |",
				"| 1 | stdio | 1 | relay | 4000 |",
			}, nil},
		{"with metrics and tracing", false, true,
			[]string{
				"### Metrics and tracing on versus off",
				// 1900/2000, 0.55−0.5, 1.6−1.5, CPU 420 / 400.
				"| stdio | 1 | 3 | 0.950 | +0.050 / +0.100 | 420 / 400 |",
				"The sink received 45600 spans in 90 exports (1.2 MB of protobuf; 0 requests refused) for 5700 measured calls: 8.00 spans a call",
				"| 2 | stdio | 1 | telemetry | 1900 |",
			}, []string{"Metrics on versus off"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "machine.txt"), []byte("cpus (nproc): 2\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, r := range []string{"1", "2", "3"} {
				writeRun(t, dir, "r"+r+"-stdio-c1-direct.json", 10000, 0.1, 0.2, 40)
				writeRun(t, dir, "r"+r+"-stdio-c1-mediated.json", 2000, 0.5, 1.5, 400)
				if tc.withRelay {
					writeRun(t, dir, "r"+r+"-stdio-c1-relay.json", 4000, 0.25, 0.5, 150)
				}
				if tc.telemetry {
					writeRun(t, dir, "r"+r+"-stdio-c1-telemetry.json", 1900, 0.55, 1.6, 420)
				}
			}
			if tc.telemetry {
				st, _ := json.Marshal(sinkStats{Requests: 90, Bytes: 1_200_000, Spans: 45600})
				if err := os.WriteFile(filepath.Join(dir, "otlp-sink-telemetry.json"), st, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			writeRun(t, dir, "r1-stdio-c1-other.json", 1, 1, 1, 1) // not a run name: ignored
			out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
			const before, after = "# Benchmarks\n\nanalysis above\n\n", "\nanalysis below\n"
			old := before + beginMarker + "\nstale\n" + endMarker + "\n" + after
			if err := os.WriteFile(out, []byte(old), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := summarize(dir, out); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			if !strings.HasPrefix(got, before+beginMarker) || !strings.HasSuffix(got, endMarker+"\n"+after) {
				t.Errorf("the text outside the markers changed:\n%s", got)
			}
			if strings.Contains(got, "stale") {
				t.Errorf("the old generated section is still there:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q in:\n%s", w, got)
				}
			}
		})
	}
}

// A directory without runs is an error, not an empty report.
func TestSummarizeNoRuns(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := summarize(dir, filepath.Join(dir, "out.md"))
	if err == nil || !strings.Contains(err.Error(), "no runs") {
		t.Fatalf("summarize of an empty directory: %v, want an error naming it", err)
	}
}

// The OTLP sink counts the spans of real exports and refuses what is not
// one, and writes its counts when it stops.
func TestOTLPSink(t *testing.T) {
	sink := &otlpSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	spans := func(n int) []*tracepb.Span {
		out := make([]*tracepb.Span, n)
		for i := range out {
			out[i] = &tracepb.Span{Name: "tools/call demo__echo", TraceId: make([]byte, 16), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, byte(i)}}
		}
		return out
	}
	export, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans(3)}, {Spans: spans(2)}}},
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans(4)}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		body               []byte
		want               int
	}{
		{"an export", http.MethodPost, "/v1/traces", export, http.StatusOK},
		{"not protobuf", http.MethodPost, "/v1/traces", []byte("{\"resourceSpans\":[]}"), http.StatusBadRequest},
		{"cut short", http.MethodPost, "/v1/traces", export[:len(export)-3], http.StatusBadRequest},
		{"another path", http.MethodPost, "/v1/metrics", export, http.StatusNotFound},
		{"a GET", http.MethodGet, "/v1/traces", nil, http.StatusNotFound},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	want := sinkStats{Requests: 1, Bytes: int64(len(export)), Spans: 9, Rejected: 4}
	if got := sink.stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}

	// As bench.sh runs it: a loopback address, stats written on stop.
	if err := runOTLPSink(t.Context(), []string{"0.0.0.0:0", "x.json"}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("a non-loopback address: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	statsFile := filepath.Join(t.TempDir(), "sink.json")
	done := make(chan error, 1)
	go func() { done <- runOTLPSink(ctx, []string{"127.0.0.1:0", statsFile}) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(statsFile)
	if err != nil || !strings.Contains(string(b), `"spans":0`) {
		t.Errorf("stats file %q, %v", b, err)
	}
}

// countSpans never panics, and on every export the protobuf package
// decodes it counts what that decodes.
func FuzzCountSpans(f *testing.F) {
	ex, _ := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Name: "a"}, {Name: "b"}}}}, SchemaUrl: "x"},
	}})
	f.Add(ex)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := countSpans(b)
		var req coltracepb.ExportTraceServiceRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		var want int64
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				want += int64(len(ss.GetSpans()))
			}
		}
		if err != nil || n != want {
			t.Errorf("countSpans = %d, %v; the protobuf package decodes %d spans", n, err, want)
		}
	})
}
