// Command demo-upstream is a stdio MCP server with the kind of tools an
// agent-authorization gateway such as MCP Mediator exists to police: file
// access confined to a sandbox folder, a CRM lookup that returns personal
// data, an irreversible funds transfer, an open-world URL fetch, and a
// harmless echo for benchmarks. All of its data is fictional.
//
// Usage:
//
//	demo-upstream [--root DIR] [--crm FILE] [--ledger FILE] [--log-level LEVEL]
//	demo-upstream --version
//
// The sandbox folder is created when missing and seeded with sample files
// when empty. Transfers are appended to the ledger, a JSON Lines file
// (default: .ledger.jsonl in the sandbox, which the file tools refuse to
// touch). Setting the environment variable DEMO_MODE adds a demo notice to the
// server instructions.
//
// stdout carries the MCP protocol; logs go to stderr.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcp-mediator/mediator/examples/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, os.Args[1:], os.Getenv("DEMO_MODE"), os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "demo-upstream: %v\n", err)
		os.Exit(1)
	}
}
