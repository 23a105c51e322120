package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mcp-mediator/mediator/mediator"
)

// otlpCollector is a real OTLP/HTTP logs receiver: it decodes each
// export with the OTLP protobuf definitions and keeps the records; while
// down it answers 503 and keeps nothing.
type otlpCollector struct {
	mu      sync.Mutex
	records []mediator.ChainRecord
	attrs   []map[string]string
	service string
	down    atomic.Bool
	headers http.Header
}

func startOTLPCollector(t *testing.T) (*otlpCollector, string) {
	t.Helper()
	col := &otlpCollector{}
	addr := freeAddr(t)
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/logs of application/x-protobuf", http.StatusBadRequest)
			return
		}
		if col.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		var req collogs.ExportLogsServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		col.mu.Lock()
		defer col.mu.Unlock()
		col.headers = r.Header.Clone()
		for _, rl := range req.ResourceLogs {
			for _, a := range rl.Resource.GetAttributes() {
				if a.Key == "service.name" {
					col.service = a.Value.GetStringValue()
				}
			}
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					var rec mediator.ChainRecord
					if err := json.Unmarshal([]byte(lr.Body.GetStringValue()), &rec); err != nil {
						http.Error(w, "body is not a chain record: "+err.Error(), http.StatusBadRequest)
						return
					}
					attrs := map[string]string{"severity": lr.SeverityText}
					for _, a := range lr.Attributes {
						attrs[a.Key] = a.Value.GetStringValue()
						if a.Key == "mcp_mediator.seq" && a.Value.GetIntValue() != rec.Seq {
							http.Error(w, "mcp_mediator.seq is not the record's seq", http.StatusBadRequest)
							return
						}
					}
					col.records = append(col.records, rec)
					col.attrs = append(col.attrs, attrs)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	})}
	go func() { _ = srv.ListenAndServe() }()
	t.Cleanup(func() { _ = srv.Close() })
	waitFor(t, 5*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, "the OTLP collector did not start")
	return col, "http://" + addr
}

// find returns the first record for tool holding text.
func (col *otlpCollector) find(tool, text string) (mediator.ChainRecord, map[string]string, bool) {
	col.mu.Lock()
	defer col.mu.Unlock()
	for i, r := range col.records {
		if r.Name == tool && strings.Contains(string(r.Arguments), text) {
			return r, col.attrs[i], true
		}
	}
	return mediator.ChainRecord{}, nil, false
}

// Issue 12: records shipped as OTLP logs to a real OTLP/HTTP receiver,
// with the headers from headers_env; an outage (the collector answering
// 503) delays nothing and loses nothing, and is itself recorded; every
// record of the chain reaches the collector, in order.
func TestE2EShipToOTLPLogs(t *testing.T) {
	t.Parallel()
	col, url := startOTLPCollector(t)
	p := startServe(t, fakeConfig(t, "audit:\n  ship: {otlp: {endpoint: "+url+", service_name: audit-test, headers_env: TEST_OTLP_HEADERS}}\n"),
		"TEST_OTLP_HEADERS=Authorization=Bearer collector-key")
	c := httpClient(t, p.URL)
	callTool(t, c, "fake__echo", map[string]any{"text": "to the collector"})
	var rec mediator.ChainRecord
	var attrs map[string]string
	waitFor(t, 10*time.Second, func() bool {
		var ok bool
		rec, attrs, ok = col.find("fake__echo", "to the collector")
		return ok
	}, "the call's record did not reach the OTLP collector")
	col.mu.Lock()
	service, auth := col.service, col.headers.Get("Authorization")
	col.mu.Unlock()
	if rec.Hash == "" || attrs["mcp_mediator.hash"] != rec.Hash || attrs["mcp_mediator.name"] != "fake__echo" ||
		attrs["severity"] != "INFO" || service != "audit-test" || auth != "Bearer collector-key" {
		t.Fatalf("record %+v, attributes %v, service %q, authorization %q", rec, attrs, service, auth)
	}
	col.down.Store(true)
	start := time.Now()
	callTool(t, c, "fake__echo", map[string]any{"text": "while the collector is down"})
	if time.Since(start) > 2*time.Second {
		t.Fatal("a call waited for the collector")
	}
	waitFor(t, 10*time.Second, func() bool {
		for _, r := range exportRecords(t, p.Dir, p.DB) {
			if r.Method == "mediator/ship" && r.Name == "otlp" && r.Outcome == mediator.OutcomeFailed && strings.Contains(r.Error, "records are kept") {
				return true
			}
		}
		return false
	}, "the collector's outage was not recorded")
	col.down.Store(false)
	waitFor(t, 10*time.Second, func() bool {
		_, _, ok := col.find("fake__echo", "while the collector is down")
		return ok
	}, "the record made during the outage never reached the collector")
	p.stop(t)
	// Every record of the chain up to the last shipped one, in order, none twice.
	all := exportRecords(t, p.Dir, p.DB)
	col.mu.Lock()
	defer col.mu.Unlock()
	got := map[int64]bool{}
	last := int64(0)
	for _, r := range col.records {
		if got[r.Seq] || r.Seq <= last {
			t.Fatalf("record %d arrived twice or out of order", r.Seq)
		}
		got[r.Seq], last = true, r.Seq
	}
	first := col.records[0].Seq
	for _, r := range all {
		if r.Seq >= first && r.Seq <= last && !got[r.Seq] {
			t.Errorf("record %d (%s %s) never reached the collector", r.Seq, r.Method, r.Name)
		}
	}
}
