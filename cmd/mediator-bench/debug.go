package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// snapshot is the server's process state at one moment.
type snapshot struct {
	// RSSBytes is the resident set size.
	RSSBytes int64 `json:"rss_bytes"`
	// Goroutines is 0 when unknown (a process without the debug endpoint).
	Goroutines int `json:"goroutines,omitempty"`
	// HeapAllocBytes is the live heap right after a forced GC.
	HeapAllocBytes int64 `json:"heap_alloc_bytes,omitempty"`
	// CPUSeconds is the CPU time (user and system) the process has used.
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	// AuditRecords and AuditCommits are the mediator's audit writer's
	// totals so far.
	AuditRecords int64 `json:"audit_records,omitempty"`
	AuditCommits int64 `json:"audit_commits,omitempty"`
	// Source says where the figures came from: "debug" (the mediator's
	// /debug/vars) or "proc" (/proc/PID/status of a stdio child).
	Source string `json:"source"`
}

// debugClient reads the mediator's debug endpoint; a nil one does nothing.
type debugClient struct {
	base    string
	profDir string
	hc      *http.Client
	notes   []string
}

func newDebugClient(o *options) *debugClient {
	if o.debugURL == "" {
		return nil
	}
	return &debugClient{base: o.debugURL, profDir: o.profDir, hc: &http.Client{Timeout: 2 * time.Minute}}
}

// processVars is the "process" variable of the mediator's /debug/vars.
type processVars struct {
	RSSBytes       int64   `json:"rss_bytes"`
	Goroutines     int     `json:"goroutines"`
	HeapAllocBytes int64   `json:"heap_alloc_bytes"`
	CPUSeconds     float64 `json:"cpu_seconds"`
}

// snapshot forces a GC (through the heap profile, saved when profiles are
// wanted, with the goroutine profile), then reads /debug/vars.
func (d *debugClient) snapshot(ctx context.Context, tag string) *snapshot {
	if d == nil {
		return nil
	}
	if err := d.save(ctx, "/debug/pprof/heap?gc=1", "heap-"+tag+".pb.gz"); err != nil {
		d.note("%s: %v", tag, err)
		return nil
	}
	if d.profDir != "" {
		for _, p := range []struct{ path, file string }{
			{"/debug/pprof/goroutine?debug=1", "goroutine-" + tag + ".txt"},
			{"/debug/pprof/block", "block-" + tag + ".pb.gz"},
			{"/debug/pprof/mutex", "mutex-" + tag + ".pb.gz"},
		} {
			if err := d.save(ctx, p.path, p.file); err != nil {
				d.note("%s: %v", tag, err)
			}
		}
	}
	var vars struct {
		Process *processVars `json:"process"`
		Audit   *struct {
			Records int64 `json:"records"`
			Commits int64 `json:"commits"`
		} `json:"audit"`
	}
	if err := d.getJSON(ctx, "/debug/vars", &vars); err != nil {
		d.note("%s: %v", tag, err)
		return nil
	}
	if vars.Process == nil {
		d.note("%s: /debug/vars has no \"process\" variable: is this the mediator's debug endpoint?", tag)
		return nil
	}
	p := vars.Process
	snap := &snapshot{RSSBytes: p.RSSBytes, Goroutines: p.Goroutines, HeapAllocBytes: p.HeapAllocBytes,
		CPUSeconds: p.CPUSeconds, Source: "debug"}
	if a := vars.Audit; a != nil {
		snap.AuditRecords, snap.AuditCommits = a.Records, a.Commits
	}
	return snap
}

func (d *debugClient) note(format string, a ...any) {
	d.notes = append(d.notes, fmt.Sprintf("debug endpoint: "+format, a...))
}

func (d *debugClient) get(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp.Body, nil
}

func (d *debugClient) getJSON(ctx context.Context, path string, v any) error {
	body, err := d.get(ctx, path)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := json.NewDecoder(body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// save GETs path into profDir/file, or discards it without a profDir.
func (d *debugClient) save(ctx context.Context, path, file string) error {
	body, err := d.get(ctx, path)
	if err != nil {
		return err
	}
	defer body.Close()
	var w io.Writer = io.Discard
	if d.profDir != "" {
		if err := os.MkdirAll(d.profDir, 0o755); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(d.profDir, file))
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// cpuProfile is a CPU profile being taken while the load runs.
type cpuProfile struct{ done chan error }

// startCPUProfile starts a CPU profile of the run when profiles are wanted.
func (d *debugClient) startCPUProfile(ctx context.Context, o *options) *cpuProfile {
	if d == nil || d.profDir == "" {
		return nil
	}
	secs := o.cpuProf
	if secs == 0 || o.duration > 0 && secs > o.duration {
		secs = o.duration
	}
	if secs == 0 {
		secs = 10 * time.Second
	}
	p := &cpuProfile{done: make(chan error, 1)}
	go func() {
		n := max(int(secs.Round(time.Second)/time.Second), 1)
		p.done <- d.save(ctx, "/debug/pprof/profile?seconds="+strconv.Itoa(n), "cpu.pb.gz")
	}()
	return p
}

// wait waits for the profile to be written.
func (p *cpuProfile) wait() error {
	if p == nil {
		return nil
	}
	return <-p.done
}

// procSnapshot reads a process's resident set size and CPU time from /proc
// (Linux), for a stdio server without the debug endpoint; nil when
// unavailable.
func procSnapshot(pid int) *snapshot {
	if pid <= 0 {
		return nil
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// VmRSS:	   12345 kB
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return nil
			}
			return &snapshot{RSSBytes: kb << 10, CPUSeconds: procCPU(pid), Source: "proc"}
		}
	}
	return nil
}

// procCPU reads utime + stime from /proc/PID/stat, in seconds (assuming
// the usual 100 clock ticks per second); 0 when unavailable.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (ut + st) / 100
}
