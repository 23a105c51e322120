package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// options is one run's configuration, from the command line.
type options struct {
	url      string   // streamable HTTP endpoint, or
	command  []string // a stdio server's command line
	tool     string
	args     map[string]any
	label    string
	bearer   string
	workers  int
	sessions int
	calls    int64
	duration time.Duration
	warmup   int
	timeout  time.Duration
	progress time.Duration
	debugURL string
	profDir  string
	cpuProf  time.Duration
	json     bool
	selfProf string
	// onStart and onEnd are shell commands run just before the first and
	// just after the last measured call (see hooks.go).
	onStart, onEnd string
}

var errHelp = errors.New("help requested")

// usageError is a bad command line (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

const synopsis = `Usage:
  mediator-bench --url http://127.0.0.1:PORT/mcp --tool NAME [flags]
  mediator-bench --tool NAME [flags] -- COMMAND [ARGS...]   (a stdio MCP server)

Helpers for scripts/bench.sh: "mediator-bench free-addr", "mediator-bench wait
URL [TIMEOUT]", "mediator-bench summarize RESULTS_DIR BENCHMARKS.md".

Opens --sessions MCP sessions (default: one per worker) and runs -c workers,
worker i on session i mod sessions, each calling --tool with --args until -n
calls are done or -d has passed. Sessions beyond -c stay open and idle (to
measure memory per open session). Only loopback targets are accepted. Over
stdio each session is a process of its own; "{session}" in COMMAND's ARGS
becomes the session's number (1, 2, ...).

Flags:
`

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mediator-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, synopsis); fs.PrintDefaults() }
	var argsJSON string
	fs.StringVar(&o.url, "url", "", "streamable HTTP endpoint of the server (loopback only)")
	fs.StringVar(&o.tool, "tool", "", "the tool to call (required)")
	fs.StringVar(&argsJSON, "args", "{}", "the tool's arguments, a JSON object")
	fs.StringVar(&o.label, "label", "", "a name for this run in the report")
	fs.StringVar(&o.bearer, "bearer", "", "HTTP: send Authorization: Bearer TOKEN")
	fs.IntVar(&o.workers, "c", 1, "concurrent workers, each with one call in flight")
	fs.IntVar(&o.sessions, "sessions", 0, "MCP sessions to open (default -c); stdio: one process each")
	fs.Int64Var(&o.calls, "n", 0, "total calls to make (default 1000 unless -d is set)")
	fs.DurationVar(&o.duration, "d", 0, "run for this long instead of a number of calls")
	fs.IntVar(&o.warmup, "warmup", 5, "unmeasured calls per worker before the run")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-call timeout (counted as a timeout error)")
	fs.DurationVar(&o.progress, "progress", time.Second, "interval of the progress line on stderr (0: none)")
	fs.StringVar(&o.debugURL, "debug-url", "", "the mediator's debug endpoint, e.g. http://127.0.0.1:6060 (reads /debug/vars before and after)")
	fs.StringVar(&o.profDir, "profile-dir", "", "with --debug-url: save heap and goroutine profiles before and after, and a CPU profile of the run, here")
	fs.DurationVar(&o.cpuProf, "cpu-profile", 0, "with --profile-dir: length of the CPU profile (default: the run's -d, else 10s)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&o.selfProf, "self-cpuprofile", "", "write a CPU profile of mediator-bench itself to this file")
	fs.StringVar(&o.onStart, "on-start", "", "shell command run after the warm-up, just before the first measured call "+
		"($MEDIATOR_BENCH_PIDS: the stdio servers' process ids); a failure stops the run")
	fs.StringVar(&o.onEnd, "on-end", "", "shell command run just after the last measured call, before the sessions close "+
		"(as --on-start)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, &usageError{err}
	}
	o.command = fs.Args()
	if err := json.Unmarshal([]byte(argsJSON), &o.args); err != nil || o.args == nil {
		return nil, usagef("--args: %q is not a JSON object", argsJSON)
	}
	return o, o.validate()
}

// validate checks the options and fills in defaults.
func (o *options) validate() error {
	switch {
	case o.tool == "":
		return usagef("--tool is required")
	case (o.url == "") == (len(o.command) == 0):
		return usagef("give either --url or a stdio command after --, not both")
	case o.workers < 1:
		return usagef("-c: %d; use 1 or more", o.workers)
	case o.calls < 0 || o.duration < 0:
		return usagef("-n and -d must not be negative")
	case o.calls > 0 && o.duration > 0:
		return usagef("give -n or -d, not both")
	case o.timeout <= 0:
		return usagef("--timeout must be positive")
	case o.warmup < 0:
		return usagef("--warmup must not be negative")
	case o.profDir != "" && o.debugURL == "":
		return usagef("--profile-dir needs --debug-url")
	}
	if o.sessions == 0 {
		o.sessions = o.workers
	}
	if o.sessions < 1 {
		return usagef("--sessions: %d; use 1 or more", o.sessions)
	}
	if o.calls == 0 && o.duration == 0 {
		o.calls = 1000
	}
	if o.url != "" {
		if err := checkLoopbackURL(o.url); err != nil {
			return usagef("--url: %w", err)
		}
	}
	if o.debugURL != "" {
		if err := checkLoopbackURL(o.debugURL); err != nil {
			return usagef("--debug-url: %w", err)
		}
		o.debugURL = strings.TrimRight(o.debugURL, "/")
	}
	if o.label == "" {
		o.label = o.target()
	}
	return nil
}

// target names what is loaded, for the report.
func (o *options) target() string {
	if o.url != "" {
		return o.url
	}
	return strings.Join(o.command, " ")
}

// checkLoopbackURL accepts only http URLs whose host is a loopback address
// or "localhost" (which must then resolve to loopback only).
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: use an http:// URL", raw)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("%q is not a loopback address; mediator-bench only loads servers on this machine (use 127.0.0.1)", host)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		addrs, err := net.LookupIP(host)
		if err != nil || len(addrs) == 0 {
			return false
		}
		for _, a := range addrs {
			if !a.IsLoopback() {
				return false
			}
		}
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
