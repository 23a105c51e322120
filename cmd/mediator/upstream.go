package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/mcp-mediator/mediator/tools"
)

func cmdUpstream(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprintln(e.stderr, "Usage: mediator upstream list [--config FILE] [--json]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return &exitError{code: 2, err: fmt.Errorf("upstream: want list")}
	}
	fs := newFlags("upstream list", "upstream list [--config FILE] [--json]", e.stderr)
	cfgPath := fs.String("config", "", "config file (default: the embedded default)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := LoadConfig(*cfgPath, e.lookup)
	if err != nil {
		return err
	}
	log, closeLog, err := newLogger(LogConfig{Level: "warn", Format: "text"}, e.stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	reg := tools.New(cfg.resolveUpstreams(e.self), tools.WithLogger(log),
		tools.WithBaseEnv(baseEnv(e.lookup)), tools.WithClientInfo("mcp-mediator", version))
	if err := reg.Start(ctx); err != nil {
		return err
	}
	defer reg.Close()
	cat := reg.Catalog()
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"servers": cat.Servers, "tools": cat.Tools, "prompts": cat.Prompts,
			"resources": cat.Resources, "resource_templates": cat.Templates})
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tSERVER\tRISK\tDATA CLASS\tHASH")
	for _, t := range cat.Tools {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Server, orDash(string(t.Risk)), orDash(string(t.DataClass)), short(t.Hash))
	}
	_ = tw.Flush()
	for _, s := range cat.Servers {
		if !s.Connected {
			fmt.Fprintf(e.stderr, "upstream %s not connected: %s\n", s.Name, s.Error)
		}
	}
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
