package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// agentTokenEnv names the environment variable holding an agent's bearer
// token for the commands that call the mediator as an agent.
const agentTokenEnv = "MEDIATOR_TOKEN"

// maxCallArgs bounds --args.
const maxCallArgs = 1 << 20

// cmdCall calls one tool through a running mediator, as an agent would:
// the way to try a decision from the shell (an allowed call, a denial,
// an approval that waits for a human).
func cmdCall(ctx context.Context, args []string, e env) error {
	fs := newFlags("call", "call TOOL [--args JSON] [--prompt TEXT] [--url URL] [--config FILE] [--timeout 70s]", e.stderr)
	cfgPath := fs.String("config", "", "config file whose listen address is called (default: the embedded default)")
	url := fs.String("url", "", "the mediator's MCP endpoint (default: http://LISTEN/mcp of the config)")
	argsJSON := fs.String("args", "{}", "the tool's arguments as a JSON object")
	prompt := fs.String("prompt", "", "the user's prompt, recorded with the call (default: one naming this command)")
	timeout := fs.Duration("timeout", 70*time.Second, "how long to wait for the answer (a call held for approval answers when approvals.hold ends, 45s by default)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		_ = parseFlags(fs, args)
		return &exitError{code: 2, err: errors.New("call: name the tool first: mediator call TOOL [--args JSON]")}
	}
	tool := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if len(*argsJSON) > maxCallArgs {
		return &exitError{code: 2, err: fmt.Errorf("call: --args is longer than %d bytes", maxCallArgs)}
	}
	var arguments map[string]any
	if err := json.Unmarshal([]byte(*argsJSON), &arguments); err != nil || arguments == nil {
		return &exitError{code: 2, err: fmt.Errorf(`call: --args: want a JSON object such as '{"path": "notes.txt"}'`)}
	}
	endpoint := *url
	if endpoint == "" {
		cfg, err := LoadConfig(*cfgPath, e.lookup)
		if err != nil {
			return err
		}
		endpoint = "http://" + cfg.Listen + "/mcp"
	}
	var opts []transport.StreamableHTTPCOption
	if tok, ok := e.lookup(agentTokenEnv); ok && strings.TrimSpace(tok) != "" {
		opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + strings.TrimSpace(tok)}))
	}
	tr, err := transport.NewStreamableHTTP(endpoint, opts...)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("call: --url %q: %w", endpoint, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := client.NewClient(tr)
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("call: %s: %w (is mediator serve running there?)", endpoint, err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "mediator-call", Version: version}
	if _, err := c.Initialize(ctx, init); err != nil {
		var op *net.OpError
		var authz *transport.AuthorizationRequiredError
		switch {
		case errors.As(err, &op) && op.Op == "dial":
			return fmt.Errorf("call: nothing answers at %s (%w): is mediator serve running there? (--url or --config names it)", endpoint, op.Err)
		case errors.As(err, &authz):
			return fmt.Errorf("call: %s wants a bearer token: export %s=$(mediator token mint --agent ID --config FILE)", endpoint, agentTokenEnv)
		}
		return fmt.Errorf("call: initialize at %s: %w", endpoint, err)
	}
	if *prompt == "" {
		*prompt = "mediator call " + tool + " from the shell"
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, arguments
	req.Params.Meta = mcp.NewMetaFromMap(map[string]any{mediator.PromptMetaKey: *prompt})
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return fmt.Errorf("call %s: %w", tool, err)
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	if res.IsError {
		msg := strings.Join(text, "\n")
		var info map[string]any
		if res.Meta != nil {
			info, _ = res.Meta.AdditionalFields[mediator.ErrorMetaKey].(map[string]any)
		}
		if info != nil {
			if code, _ := info["code"].(string); code != "" {
				msg = code + ": " + msg
			}
		}
		return &exitError{code: 1, err: fmt.Errorf("call %s: %s", tool, msg)}
	}
	for _, t := range text {
		fmt.Fprintln(e.stdout, t)
	}
	return nil
}
