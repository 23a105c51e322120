// Command mcpgorelay is the floor of the benchmarks (scripts/bench.sh): a
// proxy built from mcp-go alone, with nothing of the mediator's pipeline —
// no identity, policy, intent check or audit record. It connects to one
// upstream as an mcp-go client, offers each upstream tool as demo__NAME
// through an mcp-go server, and forwards every call as it is.
//
// It is set up as the mediator sets up the same two sides (the stdio
// server's 64 tool-call workers, an HTTP client pool of 64 idle connections
// per upstream, a stateful streamable HTTP server), so that mediated minus
// relay is what the pipeline adds, and relay minus direct is what a second
// MCP hop through mcp-go costs on its own.
//
//	mcpgorelay --upstream-url http://127.0.0.1:PORT/mcp [--mode http --addr-file F]
//	mcpgorelay [--mode stdio] -- UPSTREAM-COMMAND [ARGS...]
package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // the load tool reads heap profiles from the debug endpoint
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

var (
	mode        = flag.String("mode", "stdio", "how agents reach the relay: stdio or http")
	addrFile    = flag.String("addr-file", "", "http: write the relay's URL to this file")
	listenAddr  = flag.String("listen", "127.0.0.1:0", "http: the address to listen on")
	upstreamURL = flag.String("upstream-url", "", "the upstream's streamable HTTP URL (else the command after --)")
	prefix      = flag.String("prefix", "demo__", "prefix of the relayed tool names")
	debugListen = flag.String("debug-listen", "", "serve /debug/vars (\"process\": RSS, goroutines, heap, CPU time) "+
		"and /debug/pprof on this loopback address, as the mediator's debug endpoint does, for the load tool")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("mcpgorelay: ")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	if *debugListen != "" {
		if err := serveDebug(*debugListen); err != nil {
			return err
		}
	}
	up, err := connect(ctx)
	if err != nil {
		return err
	}
	defer up.Close()
	s := server.NewMCPServer("mcpgorelay", "1.0.0", server.WithToolCapabilities(false))
	listed, err := up.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return fmt.Errorf("list the upstream's tools: %w", err)
	}
	for _, t := range listed.Tools {
		name := t.Name
		t.Name = *prefix + name
		s.AddTool(t, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			req.Params.Name = name
			return up.CallTool(ctx, req)
		})
	}
	switch *mode {
	case "stdio":
		st := server.NewStdioServer(s)
		server.WithWorkerPoolSize(64)(st)
		return st.Listen(ctx, os.Stdin, os.Stdout)
	case "http":
		ln, err := net.Listen("tcp", *listenAddr)
		if err != nil {
			return err
		}
		if *addrFile != "" {
			if err := os.WriteFile(*addrFile, []byte("http://"+ln.Addr().String()+"/mcp"), 0o600); err != nil {
				return err
			}
		}
		hs := &http.Server{Handler: server.NewStreamableHTTPServer(s, server.WithStateful(true)),
			ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			_ = hs.Close()
		}()
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return ctx.Err()
	default:
		return fmt.Errorf("unknown mode %q (stdio or http)", *mode)
	}
}

// connect starts the upstream client over streamable HTTP or stdio and
// initializes it.
func connect(ctx context.Context) (*client.Client, error) {
	var c *client.Client
	var err error
	if *upstreamURL != "" {
		hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64,
			IdleConnTimeout: 90 * time.Second}}
		c, err = client.NewStreamableHttpClient(*upstreamURL, transport.WithHTTPBasicClient(hc))
	} else {
		if flag.NArg() == 0 {
			return nil, errors.New("name the upstream: --upstream-url URL, or -- COMMAND [ARGS...]")
		}
		c, err = client.NewStdioMCPClient(flag.Arg(0), nil, flag.Args()[1:]...)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream client: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("start the upstream client: %w", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = "2025-11-25"
	init.Params.ClientInfo = mcp.Implementation{Name: "mcpgorelay", Version: "1.0.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("initialize the upstream: %w", err)
	}
	return c, nil
}

// serveDebug serves http.DefaultServeMux (expvar's /debug/vars, pprof) on
// addr, with the "process" variable the load tool reads.
func serveDebug(addr string) error {
	expvar.Publish("process", expvar.Func(func() any {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		v := map[string]any{"goroutines": runtime.NumGoroutine(), "heap_alloc_bytes": ms.HeapAlloc}
		if b, err := os.ReadFile("/proc/self/statm"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 1 {
				if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					v["rss_bytes"] = pages * int64(os.Getpagesize())
				}
			}
		}
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			v["cpu_seconds"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
		return v
	}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug endpoint: %w", err)
	}
	go func() { _ = http.Serve(ln, nil) }()
	return nil
}
