package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/policy/token"
	"github.com/mcp-mediator/mediator/store"
)

func cmdAudit(ctx context.Context, args []string, e env) error {
	if len(args) > 0 && args[0] == "show" {
		return auditShow(ctx, args[1:], e)
	}
	if len(args) == 0 || (args[0] != "verify" && args[0] != "export" && args[0] != "checkpoint" && args[0] != "prune") {
		fmt.Fprintln(e.stderr, "Usage: mediator audit verify|export|show|checkpoint|prune [--db FILE] [--checkpoint FILE] [--archive FILE] [--since TIME] [--before TIME] [--session ID | --task ID]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return &exitError{code: 2, err: fmt.Errorf("audit: want verify, export, show, checkpoint or prune")}
	}
	sub := args[0]
	fs := newFlags("audit "+sub, "audit "+sub+" [--db FILE] [--config FILE]", e.stderr)
	var cf commonFlags
	cf.register(fs)
	since := fs.String("since", "", "export: only records at or after this time (RFC 3339, e.g. 2026-11-22T10:00:00Z, or a duration like 24h)")
	follow := fs.Bool("follow", false, "export: keep streaming new records as they are committed (for a SIEM), until interrupted")
	afterSeq := fs.Int64("after-seq", -1, "export: only records with a seq above N (resume a --follow where it stopped)")
	before := fs.String("before", "", "prune: archive and remove the records older than this (RFC 3339, or a duration back from now like 2160h)")
	archive := fs.String("archive", "", "prune: the archive file to create (default: beside the database, named by time); "+
		"verify: check this archive on its own")
	cpFile := fs.String("checkpoint", "", "verify: check against the signed checkpoints in FILE (one kept out of band, "+
		"e.g. printed by `audit checkpoint`) instead of audit.checkpoints.file")
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
	switch sub {
	case "verify":
		if *archive != "" {
			return verifyArchive(cfg, *archive, e)
		}
		res, err := auditVerify(ctx, st, e)
		if err != nil {
			return err
		}
		return verifyCheckpoints(ctx, cfg, st, res, *cpFile, e)
	case "checkpoint":
		return printCheckpoint(ctx, cfg, st, e)
	case "prune":
		return auditPrune(ctx, cfg, st, *before, *archive, e)
	}
	if *follow || *afterSeq >= 0 {
		if *since != "" {
			return &exitError{code: 2, err: fmt.Errorf("export: --since and --after-seq/--follow do not combine; resume by seq")}
		}
		return exportFollow(ctx, st, max(*afterSeq, 0), *follow, e)
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

func auditVerify(ctx context.Context, st *store.Store, e env) (store.VerifyResult, error) {
	res, err := st.Verify(ctx)
	if err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	if !res.OK {
		fmt.Fprintf(e.stdout, "TAMPERED: %d records checked; first bad record seq %d: %s\n", res.Records, res.FirstBad, res.Reason)
		return res, &exitError{code: 1, err: fmt.Errorf("audit chain broken at record %d", res.FirstBad)}
	}
	fmt.Fprintf(e.stdout, "OK: %d records, chain intact\n", res.Records)
	return res, listUnknownOutcomes(ctx, st, e.stdout)
}

// listUnknownOutcomes prints the forwarded calls whose outcome is unknown:
// closed as such by a start after a crash, or still without any outcome.
func listUnknownOutcomes(ctx context.Context, st *store.Store, w io.Writer) error {
	closed, err := st.UnknownOutcomes(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	open, err := st.UnfinishedForwards(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if len(closed)+len(open) == 0 {
		return nil
	}
	fmt.Fprintf(w, "outcome unknown: %d forwarded calls have no recorded outcome (the mediator stopped after forwarding them; "+
		"the upstream may have executed them — check there):\n", len(closed)+len(open))
	for _, r := range closed {
		fmt.Fprintf(w, "  %s %s by %s: forwarded in record %s, marked outcome unknown at seq %d\n", stamp(r.Time),
			oneLine(r.Name, 120), oneLine(r.AgentID, 80), r.Ref, r.Seq)
	}
	for _, r := range open {
		fmt.Fprintf(w, "  %s %s by %s: forwarded at seq %d by %s, no outcome yet (still running there, or it crashed and "+
			"no mediator has started on this database since)\n", stamp(r.Time), oneLine(r.Name, 120), oneLine(r.AgentID, 80),
			r.Seq, oneLine(r.Writer, 120))
	}
	return nil
}

// auditPrune archives and removes the records older than before.
func auditPrune(ctx context.Context, cfg *Config, st *store.Store, before, archive string, e env) error {
	if before == "" {
		return &exitError{code: 2, err: errors.New("prune: --before TIME is required (RFC 3339, or a duration back from now like 2160h)")}
	}
	t, err := parseSince(before, timeNow())
	if err != nil {
		return &exitError{code: 2, err: errors.New(strings.Replace(err.Error(), "--since", "--before", 1))}
	}
	key, err := token.LoadKey(cfg.path(cfg.Auth.KeyFile))
	if err != nil {
		return fmt.Errorf("auth.key_file: %w (the archive's checkpoint is signed with it; pass the --config of the mediator)", err)
	}
	if archive == "" {
		archive = cfg.path(cfg.Database) + ".archive-" + timeNow().UTC().Format("20060102T150405Z") + ".jsonl"
	}
	res, err := st.Prune(ctx, t, archive, func(seq int64, hash string) store.Checkpoint {
		return store.NewCheckpoint(seq, hash, timeNow(), key.KID(), key.Sign)
	})
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if res.To == 0 {
		fmt.Fprintf(e.stdout, "nothing to prune: no record before %s (the newest record always stays)\n", t.UTC().Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(e.stdout, "archived records %d to %d to %s and removed them; the chain continues from seq %d\n", res.From, res.To, archive, res.To)
	fmt.Fprintf(e.stdout, "keep the archive: `mediator audit verify --archive %s` checks it on its own\n", archive)
	return nil
}

// verifyArchive checks an archive written by prune.
func verifyArchive(cfg *Config, path string, e env) error {
	keys, err := mediatorKeys(cfg)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	first, last, err := store.VerifyArchive(f, keys)
	if err != nil {
		fmt.Fprintf(e.stdout, "TAMPERED: archive %s: %v\n", path, err)
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(e.stdout, "OK: archive %s holds records %d to %d, intact and signed\n", path, first, last)
	return nil
}

// exportFollow streams records with seq > after as JSON Lines; with
// follow it keeps polling for new ones (every 250 ms) until ctx ends, and
// says on stderr where to resume.
func exportFollow(ctx context.Context, st *store.Store, after int64, follow bool, e env) error {
	var total int64
	defer func() {
		fmt.Fprintf(e.stderr, "exported %d records; resume with --after-seq %d\n", total, after)
	}()
	for {
		last, n, err := st.ExportAfter(ctx, e.stdout, after, 1000)
		after, total = last, total+int64(n)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("export: %w", err)
		}
		if n == 1000 {
			continue
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// mediatorKeys are the public keys checkpoints are verified with: the
// mediator's key file, read (never created), and the keys rotated out of
// it (mediator keys rotate).
func mediatorKeys(cfg *Config) (map[string]ed25519.PublicKey, error) {
	key, err := token.LoadKey(cfg.path(cfg.Auth.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("auth.key_file: %w (checkpoints are signed with it; pass the --config of the mediator)", err)
	}
	keys, err := token.PastKeys(cfg.path(cfg.Auth.KeyFile))
	if err != nil {
		return nil, err
	}
	keys[key.KID()] = key.Public()
	return keys, nil
}

// verifyCheckpoints checks the (intact) chain against its signed
// checkpoints: none removed after one, none rewritten up to one.
func verifyCheckpoints(ctx context.Context, cfg *Config, st *store.Store, res store.VerifyResult, file string, e env) error {
	explicit := file != ""
	if !explicit {
		file = cfg.checkpointFile(e.lookup)
	}
	if file == "" {
		fmt.Fprintln(e.stdout, "checkpoints: off (audit.checkpoints.file: off): truncation of the chain cannot be detected")
		return nil
	}
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		fmt.Fprintf(e.stdout, "checkpoints: none yet in %s (a running mediator writes one every %d records or %s)\n",
			file, defaultCheckpointEvery, defaultCheckpointInterval)
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	defer f.Close()
	cps, err := store.ReadCheckpoints(f)
	if err != nil {
		fmt.Fprintf(e.stdout, "TAMPERED: checkpoint file %s: %v\n", file, err)
		return &exitError{code: 1, err: err}
	}
	keys, err := mediatorKeys(cfg)
	if err != nil {
		return err
	}
	problems, err := st.CheckCheckpoints(ctx, res, cps, keys)
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	if len(problems) > 0 {
		fmt.Fprintf(e.stdout, "TAMPERED: the chain does not match %d of %d signed checkpoints in %s:\n", len(problems), len(cps), file)
		for _, p := range problems {
			fmt.Fprintf(e.stdout, "  %s\n", p)
		}
		return &exitError{code: 1, err: fmt.Errorf("audit chain does not match its signed checkpoints")}
	}
	if len(cps) > 0 {
		last := cps[len(cps)-1]
		fmt.Fprintf(e.stdout, "checkpoints: %d signed checkpoints match (newest: seq %d at %s) in %s\n", len(cps), last.Seq,
			last.Time.UTC().Format(time.RFC3339), file)
	}
	return nil
}

// printCheckpoint prints the current chain head, signed, as one JSON line
// to keep elsewhere (audit verify --checkpoint FILE checks against it).
func printCheckpoint(ctx context.Context, cfg *Config, st *store.Store, e env) error {
	key, err := token.LoadKey(cfg.path(cfg.Auth.KeyFile))
	if err != nil {
		return fmt.Errorf("auth.key_file: %w (checkpoints are signed with it; pass the --config of the mediator)", err)
	}
	seq, hash, err := st.Head(ctx)
	if err != nil {
		return err
	}
	c := store.NewCheckpoint(seq, hash, timeNow(), key.KID(), key.Sign)
	return json.NewEncoder(e.stdout).Encode(c)
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
