package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mcp-mediator/mediator/policy/token"
	"github.com/mcp-mediator/mediator/store"
)

// CheckpointConfig is audit.checkpoints: every Every records or Interval
// (whichever comes first, when there are new records) the chain head is
// signed with the mediator's key and appended to File.
type CheckpointConfig struct {
	// File is where checkpoints are appended. Default: a file per database
	// under $XDG_STATE_HOME/mcp-mediator/checkpoints (else
	// ~/.local/state/...), outside the database's directory, so that
	// replacing or truncating the database cannot take them back. "off"
	// turns checkpoints off.
	File     string        `yaml:"file"`
	Every    int           `yaml:"every"`
	Interval time.Duration `yaml:"interval"`
}

// Defaults of audit.checkpoints.
const (
	defaultCheckpointEvery    = 1000
	defaultCheckpointInterval = time.Minute
)

func (c *CheckpointConfig) validate() []error {
	var errs []error
	if c.Every < 0 || c.Every > 10_000_000 {
		errs = append(errs, fmt.Errorf("audit.checkpoints.every: %d; use 1..10000000 records (default %d)", c.Every, defaultCheckpointEvery))
	}
	if c.Interval < 0 || (c.Interval > 0 && c.Interval < time.Second) {
		errs = append(errs, fmt.Errorf("audit.checkpoints.interval: %s; use at least 1s (default %s)", c.Interval, defaultCheckpointInterval))
	}
	return errs
}

// checkpointFile is where this config's checkpoints go ("" when off).
func (c *Config) checkpointFile(lookup func(string) (string, bool)) string {
	f := c.Audit.Checkpoints.File
	switch f {
	case "off":
		return ""
	case "":
	default:
		return c.path(f)
	}
	db, err := filepath.Abs(c.path(c.Database))
	if err != nil {
		db = c.path(c.Database)
	}
	sum := sha256.Sum256([]byte(db))
	name := filepath.Base(db) + "-" + hex.EncodeToString(sum[:6]) + ".checkpoints"
	if dir, ok := lookup("XDG_STATE_HOME"); ok && filepath.IsAbs(dir) {
		return filepath.Join(dir, "mcp-mediator", "checkpoints", name)
	}
	if home, ok := lookup("HOME"); ok && filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "mcp-mediator", "checkpoints", name)
	}
	return c.path(c.Database) + ".checkpoints" // no home: beside the database (warned)
}

// checkpointer signs the chain head into the checkpoint file.
type checkpointer struct {
	st       *store.Store
	key      *token.Key
	keyFile  string
	file     string
	every    int64
	interval time.Duration
	log      *slog.Logger
	lastSeq  int64
	lastAt   time.Time
}

func newCheckpointer(cfg *Config, st *store.Store, key *token.Key, lookup func(string) (string, bool), log *slog.Logger) (*checkpointer, error) {
	file := cfg.checkpointFile(lookup)
	if file == "" {
		log.Warn("audit.checkpoints.file is off: truncating or rewriting the database would go unnoticed by audit verify")
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("audit.checkpoints.file %s: %w", file, err)
	}
	db, _ := filepath.Abs(cfg.path(cfg.Database))
	if filepath.Dir(file) == filepath.Dir(db) {
		log.Warn("audit checkpoints are kept in the database's directory: whoever can replace the database can replace them too; set audit.checkpoints.file elsewhere", "file", file)
	}
	cp := &checkpointer{st: st, key: key, keyFile: cfg.path(cfg.Auth.KeyFile), file: file, every: int64(cfg.Audit.Checkpoints.Every),
		interval: cfg.Audit.Checkpoints.Interval, log: log, lastAt: time.Now()}
	if cp.every == 0 {
		cp.every = defaultCheckpointEvery
	}
	if cp.interval == 0 {
		cp.interval = defaultCheckpointInterval
	}
	return cp, nil
}

// checkAtStart compares the database with the newest checkpoint and
// logs, loudly, a chain that has fewer records or another head than it.
func (cp *checkpointer) checkAtStart(ctx context.Context) {
	cps, err := lastCheckpoints(cp.file)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		cp.log.Error("audit: cannot read the checkpoint file", "file", cp.file, "err", err)
		return
	}
	if len(cps) == 0 {
		return
	}
	seq, hash, err := cp.st.Head(ctx)
	if err != nil {
		return
	}
	// The head alone, not a walk of the chain: cheap at every start.
	res := store.VerifyResult{OK: true, LastSeq: seq, LastHash: hash}
	keys, err := token.PastKeys(cp.keyFile)
	if err != nil {
		cp.log.Error("audit: cannot read the past signing keys", "err", err)
		return
	}
	keys[cp.key.KID()] = cp.key.Public()
	problems, err := cp.st.CheckCheckpoints(ctx, res, cps[len(cps)-1:], keys)
	if err != nil {
		return
	}
	for _, p := range problems {
		cp.log.Error("audit: the database does not match its newest signed checkpoint; run `mediator audit verify`", "problem", p, "file", cp.file)
	}
	cp.lastSeq = cps[len(cps)-1].Seq
}

// run writes checkpoints until ctx ends, then one last one.
func (cp *checkpointer) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			cp.tick(context.WithoutCancel(ctx), true)
			return
		case <-t.C:
			cp.tick(ctx, false)
		}
	}
}

func (cp *checkpointer) tick(ctx context.Context, final bool) {
	seq, hash, err := cp.st.Head(ctx)
	if err != nil {
		cp.log.Warn("audit: reading the chain head for a checkpoint failed", "err", err)
		return
	}
	if seq <= cp.lastSeq || (!final && seq-cp.lastSeq < cp.every && time.Since(cp.lastAt) < cp.interval) {
		return
	}
	c := store.NewCheckpoint(seq, hash, time.Now(), cp.key.KID(), cp.key.Sign)
	if err := store.AppendCheckpoint(cp.file, c); err != nil {
		cp.log.Error("audit: writing a signed checkpoint failed; truncation after the last one would go unnoticed", "err", err)
		return
	}
	cp.lastSeq, cp.lastAt = seq, time.Now()
}

// lastCheckpoints reads the checkpoints in the last 16 KiB of the file: a
// start needs the newest one, not a year of them.
func lastCheckpoints(path string) ([]store.Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	const tail = 16 << 10
	off := max(0, fi.Size()-tail)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, tail))
	if err != nil {
		return nil, err
	}
	if off > 0 { // the first line is cut: skip it
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return store.ReadCheckpoints(bytes.NewReader(data))
}
