package main

import (
	"context"

	"github.com/mcp-mediator/mediator/examples/demo"
)

// cmdDemoUpstream runs the demo upstream tool server (examples/demo) over
// stdin/stdout, so the embedded default and the quickstart need nothing but
// this binary. Not listed in the usage: it is an upstream, not a mediator.
func cmdDemoUpstream(ctx context.Context, args []string, e env) error {
	mode, _ := e.lookup("DEMO_MODE")
	return demo.Run(ctx, args, mode, e.stdin, e.stdout, e.stderr)
}
