package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// errKind classifies a failed call.
type errKind int

const (
	kindOK        errKind = iota
	kindTool              // the tool answered with isError
	kindJSONRPC           // the server answered with a JSON-RPC error
	kindTransport         // the connection or the HTTP exchange failed
	kindTimeout           // no answer within --timeout
	numKinds
)

// kindNames are the kinds' names in reports.
var kindNames = [numKinds]string{"ok", "tool_error", "jsonrpc_error", "transport_error", "timeout"}

// classify tells how a call ended. A timeout is checked first because the
// client reports it wrapped as a transport error.
func classify(res *mcp.CallToolResult, err error, cctx context.Context) errKind {
	var te *transport.Error
	switch {
	case err == nil && res != nil && res.IsError:
		return kindTool
	case err == nil:
		return kindOK
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(cctx.Err(), context.DeadlineExceeded):
		return kindTimeout
	case errors.As(err, &te):
		return kindTransport
	default:
		return kindJSONRPC
	}
}

// worker is one loop of calls on one session; it keeps its own figures.
type worker struct {
	s      *session
	lat    hist
	counts [numKinds]int64
	sample [numKinds]string
}

// run is one load run in progress.
type run struct {
	o        *options
	req      mcp.CallToolRequest
	claimed  atomic.Int64 // calls handed out (-n)
	done     atomic.Int64 // calls finished
	failed   atomic.Int64 // calls finished with an error of any kind
	deadline time.Time    // -d
	ctx      context.Context
}

// runLoad opens the sessions, warms up, runs the measured phase and
// gathers the report.
func runLoad(ctx context.Context, o *options, stderr io.Writer) (*report, error) {
	rep := newReport(o)
	dbg := newDebugClient(o)
	rep.Server.Before = dbg.snapshot(ctx, "before")
	sessions, err := openSessions(ctx, o)
	if err != nil {
		return nil, err
	}
	defer closeSessions(sessions)
	r := &run{o: o, ctx: ctx}
	r.req.Params.Name, r.req.Params.Arguments = o.tool, o.args
	workers := make([]*worker, o.workers)
	for i := range workers {
		workers[i] = &worker{s: sessions[i%len(sessions)]}
	}
	if err := r.warmup(workers); err != nil {
		return nil, err
	}
	rep.Server.Open = dbg.snapshot(ctx, "open")
	if rep.Server.Open == nil && len(sessions) == 1 {
		rep.Server.Open = procSnapshot(sessions[0].pid())
	}
	if err := runHook(ctx, "--on-start", o.onStart, sessions); err != nil {
		return nil, err
	}
	prof := dbg.startCPUProfile(ctx, o)
	start := time.Now()
	if o.duration > 0 {
		r.deadline = start.Add(o.duration)
	}
	stopProgress := r.startProgress(stderr, start)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { r.loop(w) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	if err := runHook(ctx, "--on-end", o.onEnd, sessions); err != nil {
		return nil, err
	}
	if err := prof.wait(); err != nil {
		fmt.Fprintln(stderr, "mediator-bench: cpu profile:", err)
	}
	rep.Server.After = dbg.snapshot(ctx, "after")
	if rep.Server.After == nil && len(sessions) == 1 {
		rep.Server.After = procSnapshot(sessions[0].pid())
	}
	rep.fill(workers, elapsed, ctx.Err() != nil)
	if dbg != nil {
		rep.Notes = append(rep.Notes, dbg.notes...)
	}
	return rep, nil
}

// warmup makes o.warmup unmeasured calls per worker, all workers at once.
// A call that fails other than with a tool error stops the run: the
// target, tool or arguments are wrong.
func (r *run) warmup(workers []*worker) error {
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() {
			for range r.o.warmup {
				cctx, cancel := context.WithTimeout(r.ctx, r.o.timeout)
				res, err := w.s.c.CallTool(cctx, r.req)
				k := classify(res, err, cctx)
				cancel()
				if k != kindOK && k != kindTool {
					errs[i] = w.s.explain(fmt.Errorf("warm-up call to %s failed (%s): %w", r.o.tool, kindNames[k], err))
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// next claims the next call, or reports that the run is over.
func (r *run) next() bool {
	if r.ctx.Err() != nil {
		return false
	}
	if !r.deadline.IsZero() {
		return time.Now().Before(r.deadline)
	}
	return r.claimed.Add(1) <= r.o.calls
}

func (r *run) loop(w *worker) {
	for r.next() {
		cctx, cancel := context.WithTimeout(r.ctx, r.o.timeout)
		t0 := time.Now()
		res, err := w.s.c.CallTool(cctx, r.req)
		d := time.Since(t0)
		k := classify(res, err, cctx)
		cancel()
		if r.ctx.Err() != nil {
			return // interrupted: this call is not counted
		}
		w.counts[k]++
		if k == kindOK || k == kindTool {
			w.lat.add(d)
		}
		if k != kindOK {
			r.failed.Add(1)
			if w.sample[k] == "" {
				w.sample[k] = sampleText(res, err)
			}
		}
		r.done.Add(1)
	}
}

// sampleText is a short description of a failure, for the report.
func sampleText(res *mcp.CallToolResult, err error) string {
	s := ""
	if err != nil {
		s = err.Error()
	} else if res != nil {
		for _, c := range res.Content {
			if t, ok := c.(mcp.TextContent); ok {
				s = t.Text
				break
			}
		}
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// startProgress prints a progress line every o.progress until stopped.
func (r *run) startProgress(stderr io.Writer, start time.Time) func() {
	if r.o.progress <= 0 {
		return func() {}
	}
	eol := "\n"
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			eol = "\r"
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.o.progress)
		defer t.Stop()
		var last int64
		lastT := start
		for {
			select {
			case <-stop:
				if eol == "\r" {
					fmt.Fprintln(stderr)
				}
				return
			case now := <-t.C:
				n := r.done.Load()
				rate := float64(n-last) / now.Sub(lastT).Seconds()
				fmt.Fprintf(stderr, "%s  %5.1fs  calls %d  %.0f/s  errors %d%s",
					r.o.label, now.Sub(start).Seconds(), n, rate, r.failed.Load(), eol)
				last, lastT = n, now
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}
