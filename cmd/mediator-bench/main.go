// Command mediator-bench is the load tool of MCP Mediator. It opens N
// concurrent MCP sessions against an MCP server — the mediator, or an
// upstream called directly — and has each call one tool with given
// arguments, for a number of calls or a duration. It reports throughput,
// latency percentiles, errors by kind and, when the server exposes the
// mediator's debug endpoint, its memory and goroutines before and after.
//
// Usage:
//
//	mediator-bench --url http://127.0.0.1:8080/mcp --tool demo__echo --args '{"text":"hi"}' -c 32 -d 10s
//	mediator-bench --tool fake__echo -n 10000 -- mediator stdio --config m.yaml
//
// Only loopback targets are accepted: this is a tool for measuring on one
// machine, not for loading someone else's server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue *usageError
	switch {
	case err == nil:
	case errors.Is(err, errHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "mediator-bench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "mediator-bench:", err)
		os.Exit(1)
	}
}

// startSelfProfile profiles this process, so that the load tool's own cost
// can be told apart from the server's.
func startSelfProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// Run parses args, runs the load and writes the report to stdout. Progress
// goes to stderr. A run whose calls failed is still a successful run: the
// failures are in the report.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if handled, err := runHelper(ctx, args[0], args[1:], stdout); handled {
			return err
		}
	}
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	if o.selfProf != "" {
		stop, err := startSelfProfile(o.selfProf)
		if err != nil {
			return err
		}
		defer stop()
	}
	rep, err := runLoad(ctx, o, stderr)
	if err != nil {
		return err
	}
	rep.writeBrief(stderr)
	if o.json {
		return rep.writeJSON(stdout)
	}
	return rep.writeTable(stdout)
}
