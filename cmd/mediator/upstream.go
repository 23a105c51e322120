package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/tools"
)

const upstreamUsage = `Usage:
  mediator upstream list [--json] [--server URL] [--config FILE]
      show the merged tool catalog of the running mediator; when none answers,
      start the configured upstreams here and show theirs
  mediator upstream add NAME (--command CMD [--arg A]... | --url URL [--transport sse])
                        [--header K=V]... [--env K=V]... [--risk TOOL=LEVEL]... [--data-class TOOL=CLASS]...
                        [--prefix P] [--timeout D] [--optional] [--server URL] [--config FILE]
      register an upstream with the running mediator: started, merged into the catalog (agents are
      told with list_changed) and stored, so it is back after a restart. ${VAR} in --env and --header
      values is expanded from the server's environment when it starts the upstream, and only the
      reference is stored.
  mediator upstream remove NAME [--server URL] [--config FILE]
      stop a registered upstream after its calls in flight finish, and forget it
  mediator upstream review NAME [--tool T] [--approve | --reject] [--note TEXT] [--json]
      show the tools withheld because their definition is new or changed since it was pinned,
      with a diff and the scanner's findings, and approve or reject them
`

func cmdUpstream(ctx context.Context, args []string, e env) error {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return upstreamListCmd(ctx, args[1:], e)
		case "add":
			return upstreamAdd(ctx, args[1:], e)
		case "remove":
			return upstreamRemove(ctx, args[1:], e)
		case "review":
			return upstreamReview(ctx, args[1:], e)
		case "-h", "--help", "help":
			fmt.Fprint(e.stdout, upstreamUsage)
			return errHelp
		}
	}
	fmt.Fprint(e.stderr, upstreamUsage)
	return &exitError{code: 2, err: errors.New("upstream: want list, add, remove or review")}
}

func upstreamListCmd(ctx context.Context, args []string, e env) error {
	fs := newFlags("upstream list", "upstream list [--json] [--server URL] [--config FILE]", e.stderr)
	cfgPath := fs.String("config", "", "config file (default: the embedded default)")
	asJSON := fs.Bool("json", false, "print JSON")
	var af adminFlags
	af.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := LoadConfig(*cfgPath, e.lookup)
	if err != nil {
		return err
	}
	var list upstreamList
	done, err := viaAdmin(ctx, cfg, af.server, e, "starting the configured upstreams here to list them",
		func(c *adminClient) error { return c.do(ctx, http.MethodGet, "/upstreams", nil, &list) })
	switch {
	case err != nil:
		return fmt.Errorf("upstream list: %w", err)
	case !done:
		return listLocal(ctx, cfg, *asJSON, e)
	case *asJSON:
		return printJSON(e.stdout, list)
	}
	printTools(e, list)
	return nil
}

// printTools prints the tools as a table, and the upstreams that are not
// connected on stderr.
func printTools(e env, list upstreamList) {
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tSERVER\tSTATE\tRISK\tDATA CLASS\tHASH")
	for _, t := range list.Tools {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Server, orDash(string(t.State)), orDash(string(t.Risk)), orDash(string(t.DataClass)), short(t.Hash))
	}
	_ = tw.Flush()
	for _, t := range list.Tools {
		if t.Reason != "" {
			fmt.Fprintf(e.stderr, "withheld: %s\n", t.Reason)
		}
	}
	for _, s := range list.Servers {
		if !s.Connected {
			fmt.Fprintf(e.stderr, "upstream %s not connected: %s\n", s.Name, s.Error)
		}
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listLocal starts the configured upstreams in this process and lists
// their catalog (no server needed).
func listLocal(ctx context.Context, cfg *Config, asJSON bool, e env) error {
	log, closeLog, err := newLogger(LogConfig{Level: "warn", Format: "text"}, e.stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	reg := tools.New(cfg.resolveUpstreams(e.self), tools.WithLogger(log), tools.WithMaxMessageBytes(cfg.Limits.MaxMessageBytes),
		tools.WithBaseEnv(baseEnv(e.lookup)), tools.WithClientInfo("mcp-mediator", version))
	if err := reg.Start(ctx); err != nil {
		return err
	}
	defer reg.Close()
	cat := reg.Catalog()
	if asJSON {
		return printJSON(e.stdout, map[string]any{"servers": cat.Servers, "tools": cat.Tools, "prompts": cat.Prompts,
			"resources": cat.Resources, "resource_templates": cat.Templates})
	}
	list := upstreamList{}
	for _, s := range cat.Servers {
		list.Servers = append(list.Servers, serverView{ServerState: s, Source: "config"})
	}
	for _, t := range cat.Tools {
		list.Tools = append(list.Tools, toolView{Name: t.Name, Server: t.Server, Risk: t.Risk, DataClass: t.DataClass, Hash: t.Hash})
	}
	printTools(e, list)
	return nil
}

// addFlags are the flags of `upstream add`.
type addFlags struct {
	adminFlags
	cfgPath, command, url, transport, prefix string
	timeout                                  time.Duration
	optional                                 bool
	args, headers, env, risks, classes       listFlag
}

func (a *addFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.cfgPath, "config", "", "config file (default: the embedded default)")
	fs.StringVar(&a.command, "command", "", "program of a stdio upstream (a relative path is made absolute here)")
	fs.Var(&a.args, "arg", "an argument of --command (repeatable)")
	fs.StringVar(&a.url, "url", "", "endpoint of a remote upstream (streamable HTTP, or SSE with --transport sse)")
	fs.StringVar(&a.transport, "transport", "", "stdio, http or sse (default: inferred)")
	fs.Var(&a.headers, "header", "a header K=V sent to a remote upstream (repeatable)")
	fs.Var(&a.env, "env", "an environment variable K=V of a stdio upstream (repeatable)")
	fs.Var(&a.risks, "risk", "TOOL=LEVEL: the risk (low, medium, high, critical) of a tool, by its upstream name (repeatable)")
	fs.Var(&a.classes, "data-class", "TOOL=CLASS: the data class (public, internal, confidential, pii, financial) of a tool (repeatable)")
	fs.StringVar(&a.prefix, "prefix", "", "namespace of its tools (default NAME__)")
	fs.DurationVar(&a.timeout, "timeout", 0, "bound on each forwarded call (default: the registry's)")
	fs.BoolVar(&a.optional, "optional", false, "readiness does not wait for this upstream")
	a.adminFlags.register(fs)
}

// config builds the upstream's configuration from the flags.
func (a *addFlags) upstream(fs *flag.FlagSet, name string) (tools.Config, error) {
	c := tools.Config{Name: name, Command: a.command, Args: a.args, URL: a.url, Transport: a.transport, Timeout: a.timeout}
	if strings.Contains(c.Command, "/") && !filepath.IsAbs(c.Command) {
		abs, err := filepath.Abs(c.Command)
		if err != nil {
			return c, fmt.Errorf("--command: %w", err)
		}
		c.Command = abs
	}
	if flagSet(fs, "prefix") {
		c.Prefix = &a.prefix
	}
	if a.optional {
		c.Required = new(bool)
	}
	var err error
	if c.Env, err = parseKV("--env", a.env); err != nil {
		return c, err
	}
	if c.Headers, err = parseKV("--header", a.headers); err != nil {
		return c, err
	}
	if c.Tools, err = toolOverrides(a.risks, a.classes); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// parseKV parses repeated K=V flags.
func parseKV(flagName string, kvs []string) (map[string]string, error) {
	var out map[string]string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: use KEY=VALUE", flagName, kv)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out, nil
}

// toolOverrides merges --risk and --data-class into per-tool overrides.
func toolOverrides(risks, classes []string) (map[string]tools.ToolOverride, error) {
	r, err := parseKV("--risk", risks)
	if err != nil {
		return nil, err
	}
	d, err := parseKV("--data-class", classes)
	if err != nil {
		return nil, err
	}
	var out map[string]tools.ToolOverride
	set := func(tool string, f func(*tools.ToolOverride)) {
		if out == nil {
			out = map[string]tools.ToolOverride{}
		}
		o := out[tool]
		f(&o)
		out[tool] = o
	}
	for tool, level := range r {
		set(tool, func(o *tools.ToolOverride) { o.Risk = mediator.Risk(level) })
	}
	for tool, class := range d {
		set(tool, func(o *tools.ToolOverride) { o.DataClass = mediator.DataClass(class) })
	}
	return out, nil
}

// oneName parses flags around exactly one positional NAME.
func oneName(fs *flag.FlagSet, what string, args []string) (string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", &exitError{code: 2, err: fmt.Errorf("%s: want one upstream NAME", what)}
	}
	return pos[0], nil
}

func upstreamAdd(ctx context.Context, args []string, e env) error {
	fs := newFlags("upstream add", "upstream add NAME (--command CMD [--arg A]... | --url URL) [flags]", e.stderr)
	var a addFlags
	a.register(fs)
	name, err := oneName(fs, "upstream add", args)
	if err != nil {
		return err
	}
	up, err := a.upstream(fs, name)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("upstream add: %w", err)}
	}
	cfg, err := LoadConfig(a.cfgPath, e.lookup)
	if err != nil {
		return err
	}
	var list upstreamList
	err = mustAdmin(ctx, cfg, a.server, e, func(c *adminClient) error {
		return c.do(ctx, http.MethodPost, "/upstreams", specOf(up), &list)
	})
	if err != nil {
		return fmt.Errorf("upstream add: %w", err)
	}
	state := "connected"
	for _, s := range list.Servers {
		if !s.Connected {
			state = "not connected yet (" + s.Error + "); the mediator keeps retrying"
		}
	}
	fmt.Fprintf(e.stdout, "registered upstream %s (%d tools): %s\n", name, len(list.Tools), state)
	if len(list.Tools) > 0 {
		list.Servers = nil
		printTools(e, list)
		printDraft(e.stdout, name, list.Tools)
	}
	return nil
}

func upstreamRemove(ctx context.Context, args []string, e env) error {
	fs := newFlags("upstream remove", "upstream remove NAME [--server URL] [--config FILE]", e.stderr)
	cfgPath := fs.String("config", "", "config file (default: the embedded default)")
	var af adminFlags
	af.register(fs)
	name, err := oneName(fs, "upstream remove", args)
	if err != nil {
		return err
	}
	cfg, err := LoadConfig(*cfgPath, e.lookup)
	if err != nil {
		return err
	}
	err = mustAdmin(ctx, cfg, af.server, e, func(c *adminClient) error {
		return c.do(ctx, http.MethodDelete, "/upstreams/"+url.PathEscape(name), nil, nil)
	})
	if err != nil {
		return fmt.Errorf("upstream remove: %w", err)
	}
	fmt.Fprintf(e.stdout, "removed upstream %s: its calls in flight finished first; agents are told the tool list changed\n", name)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
