package main

import (
	"context"
	"fmt"
	"time"

	"github.com/mcp-mediator/mediator/store"
)

func cmdAudit(ctx context.Context, args []string, e env) error {
	if len(args) > 0 && args[0] == "show" {
		return auditShow(ctx, args[1:], e)
	}
	if len(args) == 0 || (args[0] != "verify" && args[0] != "export") {
		fmt.Fprintln(e.stderr, "Usage: mediator audit verify|export|show [--db FILE] [--since TIME] [--session ID | --task ID]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return &exitError{code: 2, err: fmt.Errorf("audit: want verify, export or show")}
	}
	sub := args[0]
	fs := newFlags("audit "+sub, "audit "+sub+" [--db FILE] [--config FILE]", e.stderr)
	var cf commonFlags
	cf.register(fs)
	since := fs.String("since", "", "export: only records at or after this time (RFC 3339, e.g. 2026-11-22T10:00:00Z, or a duration like 24h)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := cf.load(e)
	if err != nil {
		return err
	}
	st, err := openExisting(ctx, cfg) // verifying a mistyped path must not say "OK: 0 records"
	if err != nil {
		return fmt.Errorf("audit %s: %w", sub, err)
	}
	defer st.Close()
	if sub == "verify" {
		return auditVerify(ctx, st, e)
	}
	t, err := parseSince(*since, timeNow())
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	n, err := st.Export(ctx, e.stdout, t)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(e.stderr, "exported %d records\n", n)
	return nil
}

func auditVerify(ctx context.Context, st *store.Store, e env) error {
	res, err := st.Verify(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if !res.OK {
		fmt.Fprintf(e.stdout, "TAMPERED: %d records checked; first bad record seq %d: %s\n", res.Records, res.FirstBad, res.Reason)
		return &exitError{code: 1, err: fmt.Errorf("audit chain broken at record %d", res.FirstBad)}
	}
	fmt.Fprintf(e.stdout, "OK: %d records, chain intact\n", res.Records)
	return nil
}

// parseSince accepts RFC 3339 or a duration back from now; "" is the start.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: use RFC 3339 (2026-11-22T10:00:00Z) or a duration (24h)", s)
}
