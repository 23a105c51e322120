package main

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/store"
)

// DebugConfig is the debug endpoint: net/http/pprof and expvar's
// /debug/vars, for profiling and for the load tool (cmd/mediator-bench).
// It is off unless Listen is set, and only binds to loopback: profiles
// reveal memory contents and the command line.
type DebugConfig struct {
	// Listen is the address, e.g. 127.0.0.1:6060; empty turns it off.
	Listen string `yaml:"listen"`
	// BlockProfileRate and MutexProfileFraction turn on the block and
	// mutex profiles (runtime.SetBlockProfileRate, in nanoseconds, and
	// runtime.SetMutexProfileFraction); 0 leaves them off, as they cost
	// time on every contended operation.
	BlockProfileRate     int `yaml:"block_profile_rate"`
	MutexProfileFraction int `yaml:"mutex_profile_fraction"`
}

// validate names the key and the fix; listen is the agent-facing address.
func (d DebugConfig) validate(listen string) []error {
	var errs []error
	if d.Listen != "" {
		if _, _, err := net.SplitHostPort(d.Listen); err != nil {
			errs = append(errs, fmt.Errorf("debug.listen: %q is not host:port (e.g. 127.0.0.1:6060)", d.Listen))
		} else if !isLoopback(d.Listen) {
			errs = append(errs, fmt.Errorf("debug.listen: %q is not a loopback address; the debug endpoint "+
				"exposes profiles of the mediator's memory, so bind it to 127.0.0.1 (e.g. 127.0.0.1:6060)", d.Listen))
		} else if d.Listen == listen {
			errs = append(errs, fmt.Errorf("debug.listen: %q is also the agent-facing listen address; use another port", d.Listen))
		}
	}
	if d.BlockProfileRate < 0 || d.MutexProfileFraction < 0 {
		errs = append(errs, errors.New("debug.block_profile_rate / mutex_profile_fraction: negative; use 0 (off) or more"))
	}
	return errs
}

// startDebug serves the debug endpoint when configured, until the returned
// function is called. The listener is opened before it returns, so a port
// in use is an error at start-up, not a log line later.
func startDebug(ctx context.Context, d DebugConfig, log *slog.Logger, st *store.Store) (stop func(), err error) {
	if d.Listen == "" {
		return func() {}, nil
	}
	if !isLoopback(d.Listen) {
		return nil, fmt.Errorf("debug.listen %s: %w", d.Listen, errDebugNotLoopback)
	}
	ln, err := net.Listen("tcp", d.Listen)
	if err != nil {
		return nil, fmt.Errorf("debug.listen: %w", err)
	}
	runtime.SetBlockProfileRate(d.BlockProfileRate)
	runtime.SetMutexProfileFraction(d.MutexProfileFraction)
	publishProcessVars()
	if st != nil {
		auditStats.Store(st)
	}
	hs := &http.Server{Handler: loopbackOnly(debugMux(), log, st), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug endpoint stopped", "err", err)
		}
	}()
	log.Info("debug endpoint (pprof, expvar)", "url", "http://"+ln.Addr().String()+"/debug/")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
	}, nil
}

var errDebugNotLoopback = errors.New("the debug endpoint only binds to loopback")

// debugMux serves pprof and expvar on their own mux, not on
// http.DefaultServeMux, where the packages' init functions register them.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	return mux
}

// loopbackOnly refuses a request whose Host is not a loopback name, so that
// a web page that rebinds its DNS name to 127.0.0.1 cannot read profiles
// through the user's browser. The refusal is an audit record when the
// endpoint has a store, and a warning in the log.
func loopbackOnly(next http.Handler, log *slog.Logger, st *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := mediator.CheckLoopbackHost(r); err != nil {
			log.Warn("debug endpoint: request refused", "remote", r.RemoteAddr, "err", err)
			if st != nil {
				rec := mediator.ChainRecord{Time: time.Now(), Transport: "http", RemoteAddr: remoteHost(r.RemoteAddr),
					Method: "debug/" + strings.ToLower(r.Method), Kind: mediator.KindProtocol,
					Name: cutPath(r.URL.Path), Outcome: mediator.OutcomeDenied, Error: err.Error(),
					Decision: mediator.Decision{Effect: mediator.EffectDeny, Rule: "debug.host", Reason: "the debug endpoint answers loopback names only"}}
				if rerr := st.Record(r.Context(), rec); rerr != nil {
					log.Error("recording a refused debug request failed", "err", rerr)
				}
			}
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var (
	publishOnce sync.Once
	auditStats  atomic.Pointer[store.Store] // the store whose writer "audit" reports
)

// publishProcessVars adds two variables to /debug/vars, read on every
// request: "process" (resident memory, goroutines, heap, CPU time used,
// open files) and "audit" (records and commits of the audit writer).
func publishProcessVars() {
	publishOnce.Do(func() {
		start := time.Now()
		expvar.Publish("process", expvar.Func(func() any { return processVars(start) }))
		expvar.Publish("audit", expvar.Func(func() any {
			if st := auditStats.Load(); st != nil {
				return st.WriterStats()
			}
			return nil
		}))
	})
}

// processMetrics are the runtime/metrics samples behind processVars.
var processMetrics = []string{
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/gc/cycles/total:gc-cycles",
}

func processVars(start time.Time) map[string]any {
	samples := make([]metrics.Sample, len(processMetrics))
	for i, name := range processMetrics {
		samples[i].Name = name
	}
	metrics.Read(samples)
	val := func(i int) uint64 {
		if samples[i].Value.Kind() == metrics.KindUint64 {
			return samples[i].Value.Uint64()
		}
		return 0
	}
	v := map[string]any{
		"goroutines":       runtime.NumGoroutine(),
		"heap_alloc_bytes": val(0),
		"heap_live_bytes":  val(1),
		"go_total_bytes":   val(2),
		"gc_cycles":        val(3),
		"uptime_s":         time.Since(start).Seconds(),
	}
	// Without /proc, the memory the Go runtime has mapped stands in.
	v["rss_bytes"] = val(2)
	if rss, ok := residentBytes(); ok {
		v["rss_bytes"] = rss
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		v["cpu_seconds"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		v["open_fds"] = len(fds)
	}
	return v
}

// residentBytes reads the resident set size from /proc/self/statm (Linux).
func residentBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

// remoteHost is the IP address of a host:port.
func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// cutPath caps a request path for a record.
func cutPath(p string) string {
	s, _ := mediator.CutUTF8(p, 256)
	return s
}
