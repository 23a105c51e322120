// Command conformance-upstream is an MCP server that exposes the tools,
// resources and prompts that the server scenarios of the official MCP
// conformance suite (@modelcontextprotocol/conformance on npm) expect.
//
// It serves MCP over stdio by default, so that it can run as an upstream
// behind the mediator, and over streamable HTTP with --http ADDR, so that the
// suite can also be run against it directly. See README.md for the suite
// version, the command line and the results.
//
// Usage:
//
//	conformance-upstream                         # stdio
//	conformance-upstream --http 127.0.0.1:3001   # streamable HTTP at /mcp
//
// Logs go to stderr; stdout carries the protocol when serving stdio.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mark3labs/mcp-go/server"
)

// version is the version reported in the MCP initialize result and by
// --version. It can be overridden at link time with -ldflags "-X main.version=...".
var version = "0.1.0"

// serverName is the implementation name reported to clients.
const serverName = "mcp-mediator-conformance-upstream"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "conformance-upstream: %v\n", err)
		os.Exit(1)
	}
}

// run parses args and serves until the transport ends or a signal arrives.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conformance-upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "", "serve streamable HTTP on `ADDR` (endpoint /mcp) instead of stdio, e.g. 127.0.0.1:3001; the legacy SSE transport is served at /sse on the same address")
	logLevel := fs.String("log-level", "info", "stderr log level: debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *showVersion {
		_, err := fmt.Fprintf(stdout, "%s %s\n", serverName, version)
		return err
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("invalid --log-level %q: %w", *logLevel, err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	srv := newServer(logger)

	if *httpAddr != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serveHTTP(ctx, srv, *httpAddr, logger, nil)
	}

	logger.Info("serving MCP over stdio", "version", version)
	if err := server.ServeStdio(srv, server.WithErrorLogger(slog.NewLogLogger(logger.Handler(), slog.LevelError))); err != nil {
		return fmt.Errorf("serve stdio: %w", err)
	}
	return nil
}
