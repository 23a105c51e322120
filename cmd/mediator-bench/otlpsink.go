package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// maxExport bounds one export request the sink reads (a collector's
// default limit is 4 MiB of protobuf).
const maxExport = 16 << 20

// sinkStats are what an OTLP sink received.
type sinkStats struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
	Spans    int64 `json:"spans"`
	Rejected int64 `json:"rejected"`
}

// otlpSink is the least an OTLP/HTTP trace collector does: it accepts
// protobuf exports at /v1/traces and counts their spans, so
// that a benchmark with tracing on pays for real exports and shows that
// they arrived.
type otlpSink struct {
	requests, bytes, spans, rejected atomic.Int64
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		s.rejected.Add(1)
		http.Error(w, "this sink accepts OTLP/HTTP protobuf trace exports: POST /v1/traces", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxExport))
	var n int64
	if err == nil {
		n, err = countSpans(body)
	}
	if err != nil {
		s.rejected.Add(1)
		http.Error(w, "not an OTLP ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.requests.Add(1)
	s.bytes.Add(int64(len(body)))
	s.spans.Add(n)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (s *otlpSink) stats() sinkStats {
	return sinkStats{Requests: s.requests.Load(), Bytes: s.bytes.Load(), Spans: s.spans.Load(), Rejected: s.rejected.Load()}
}

// runOTLPSink serves a sink on addr (loopback only) until ctx ends, then
// writes what it received to statsFile as JSON.
func runOTLPSink(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return usagef("usage: mediator-bench otlp-sink ADDR STATS.json")
	}
	host, _, err := net.SplitHostPort(args[0])
	if err != nil {
		return usagef("otlp-sink: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return usagef("otlp-sink: %s is not a loopback address (e.g. 127.0.0.1:4318)", args[0])
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		return fmt.Errorf("otlp-sink: %w", err)
	}
	sink := &otlpSink{}
	srv := &http.Server{Handler: sink, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-done:
		return fmt.Errorf("otlp-sink: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("otlp-sink: %w", err)
	}
	b, _ := json.Marshal(sink.stats())
	return os.WriteFile(args[1], append(b, '\n'), 0o644)
}

// The field numbers of the OTLP messages countSpans walks
// (opentelemetry/proto/collector/trace/v1 and trace/v1).
const (
	fieldResourceSpans = 1 // ExportTraceServiceRequest.resource_spans
	fieldScopeSpans    = 2 // ResourceSpans.scope_spans
	fieldSpans         = 2 // ScopeSpans.spans
)

// countSpans counts the spans of an ExportTraceServiceRequest by walking
// its protobuf encoding, without decoding the spans: a sink on the same
// machine as the mediator takes as little of its CPU as it can, and still
// refuses what is not an export.
func countSpans(b []byte) (int64, error) {
	var n int64
	err := eachField(b, fieldResourceSpans, func(rs []byte) error {
		return eachField(rs, fieldScopeSpans, func(ss []byte) error {
			return eachField(ss, fieldSpans, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// eachField calls fn with the bytes of each length-delimited field num of
// message b, and checks that every field is well formed.
func eachField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		// A field of the right number and another wire type is an
		// unknown field, as the protobuf package reads it.
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
	}
	return nil
}
