package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the outcome of one run. Its JSON form is what scripts/bench.sh
// reads; keep field names stable.
type report struct {
	Label     string    `json:"label"`
	Target    string    `json:"target"`
	Transport string    `json:"transport"` // "http" or "stdio"
	Tool      string    `json:"tool"`
	Started   time.Time `json:"started"`
	Workers   int       `json:"workers"`
	Sessions  int       `json:"sessions"`
	// Interrupted is true when the run was stopped by a signal; the
	// figures cover the calls finished until then.
	Interrupted bool    `json:"interrupted,omitempty"`
	ElapsedSec  float64 `json:"elapsed_s"`
	// Calls counts every measured call that finished, failed or not.
	Calls int64 `json:"calls"`
	OK    int64 `json:"ok"`
	// Throughput is Calls per second of the measured phase.
	Throughput float64 `json:"throughput_per_s"`
	// Latency covers calls that were answered (ok or tool error).
	Latency latency `json:"latency_ms"`
	// Errors counts failed calls by kind: tool_error, jsonrpc_error,
	// transport_error, timeout; ErrorSamples holds one message per kind.
	Errors       map[string]int64  `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	Server       server            `json:"server"`
	// ServerCPUPerCall is the loaded process's CPU time (user and system)
	// during the measured phase per call, in microseconds: less sensitive
	// to other load on the machine than latency. 0 when unknown.
	ServerCPUPerCall float64 `json:"server_cpu_us_per_call,omitempty"`
	// RecordsPerCommit is the mediator's mean audit group size during the
	// measured phase (records per SQLite commit). 0 when unknown.
	RecordsPerCommit float64    `json:"audit_records_per_commit,omitempty"`
	Notes            []string   `json:"notes,omitempty"`
	Client           clientInfo `json:"client"`
}

// latency is in milliseconds.
type latency struct {
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// server is the loaded server's process state: before the sessions were
// opened, once they were open and warm, and after the run.
type server struct {
	Before *snapshot `json:"before,omitempty"`
	Open   *snapshot `json:"open,omitempty"`
	After  *snapshot `json:"after,omitempty"`
}

type clientInfo struct {
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
}

func newReport(o *options) *report {
	r := &report{Label: o.label, Target: o.target(), Transport: "stdio", Tool: o.tool,
		Started: time.Now().UTC(), Workers: o.workers, Sessions: o.sessions,
		Errors: map[string]int64{}, Client: clientInfo{runtime.Version(), runtime.GOMAXPROCS(0)}}
	if o.url != "" {
		r.Transport = "http"
	}
	for k := kindTool; k < numKinds; k++ {
		r.Errors[kindNames[k]] = 0
	}
	return r
}

// fill merges the workers' figures into the report.
func (r *report) fill(workers []*worker, elapsed time.Duration, interrupted bool) {
	var h hist
	for _, w := range workers {
		h.merge(&w.lat)
		for k := kindOK; k < numKinds; k++ {
			r.Calls += w.counts[k]
			if k == kindOK {
				r.OK += w.counts[k]
				continue
			}
			r.Errors[kindNames[k]] += w.counts[k]
			if w.sample[k] != "" {
				if r.ErrorSamples == nil {
					r.ErrorSamples = map[string]string{}
				}
				if _, ok := r.ErrorSamples[kindNames[k]]; !ok {
					r.ErrorSamples[kindNames[k]] = w.sample[k]
				}
			}
		}
	}
	r.Interrupted = interrupted
	r.ElapsedSec = elapsed.Seconds()
	if r.ElapsedSec > 0 {
		r.Throughput = float64(r.Calls) / r.ElapsedSec
	}
	if o, a := r.Server.Open, r.Server.After; o != nil && a != nil && r.Calls > 0 && a.CPUSeconds > o.CPUSeconds {
		r.ServerCPUPerCall = (a.CPUSeconds - o.CPUSeconds) * 1e6 / float64(r.Calls)
	}
	if o, a := r.Server.Open, r.Server.After; o != nil && a != nil && a.AuditCommits > o.AuditCommits {
		r.RecordsPerCommit = float64(a.AuditRecords-o.AuditRecords) / float64(a.AuditCommits-o.AuditCommits)
	}
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
	r.Latency = latency{Mean: ms(h.mean()), Min: ms(h.min), P50: ms(h.quantile(0.50)),
		P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)), Max: ms(h.max)}
}

// writeBrief writes a one-line summary (to stderr, beside the progress).
func (r *report) writeBrief(w io.Writer) {
	var errs int64
	for _, n := range r.Errors {
		errs += n
	}
	fmt.Fprintf(w, "%s: %d calls in %.1fs, %.0f calls/s, p50 %.3f ms, p99 %.3f ms, errors %d\n",
		r.Label, r.Calls, r.ElapsedSec, r.Throughput, r.Latency.P50, r.Latency.P99, errs)
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	p("run", "%s", r.Label)
	p("target", "%s (%s)", r.Target, r.Transport)
	p("tool", "%s", r.Tool)
	p("workers / sessions", "%d / %d", r.Workers, r.Sessions)
	if r.Interrupted {
		p("interrupted", "yes: figures cover the calls finished before the signal")
	}
	p("calls", "%d in %.2fs (ok %d)", r.Calls, r.ElapsedSec, r.OK)
	p("throughput", "%.0f calls/s", r.Throughput)
	l := r.Latency
	p("latency ms", "p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (mean %.3f, min %.3f)", l.P50, l.P90, l.P99, l.Max, l.Mean, l.Min)
	var errs []string
	for k := kindTool; k < numKinds; k++ {
		errs = append(errs, fmt.Sprintf("%s %d", kindNames[k], r.Errors[kindNames[k]]))
	}
	p("errors", "%s", strings.Join(errs, "  "))
	for k := kindTool; k < numKinds; k++ {
		if s := r.ErrorSamples[kindNames[k]]; s != "" {
			p("  e.g. "+kindNames[k], "%s", oneLine(s))
		}
	}
	for _, s := range []struct {
		name string
		snap *snapshot
	}{{"server before", r.Server.Before}, {"server open", r.Server.Open}, {"server after", r.Server.After}} {
		if s.snap != nil {
			p(s.name, "%s", s.snap)
		}
	}
	if r.ServerCPUPerCall > 0 {
		p("server CPU", "%.0f µs per call", r.ServerCPUPerCall)
	}
	if r.RecordsPerCommit > 0 {
		p("audit", "%.1f records per commit", r.RecordsPerCommit)
	}
	for _, n := range r.Notes {
		p("note", "%s", n)
	}
	return tw.Flush()
}

func (s *snapshot) String() string {
	out := fmt.Sprintf("RSS %.1f MB", float64(s.RSSBytes)/(1<<20))
	if s.Goroutines > 0 {
		out += fmt.Sprintf("  goroutines %d", s.Goroutines)
	}
	if s.HeapAllocBytes > 0 {
		out += fmt.Sprintf("  heap %.1f MB", float64(s.HeapAllocBytes)/(1<<20))
	}
	return out + "  (" + s.Source + ")"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
