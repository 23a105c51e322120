package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Defaults for the options.
const (
	DefaultBatchSize      = 256
	DefaultMaxArgBytes    = 64 << 10
	DefaultMaxResultBytes = 64 << 10
	DefaultBusyTimeout    = 10 * time.Second
	// MaxBatchSize bounds WithBatchSize (a batch's ids are looked up in
	// one query, within SQLite's limit on bound parameters).
	MaxBatchSize = 4096
)

// readConns caps the connections used by Verify, Export, Records and Ping.
const readConns = 4

// Store is the SQLite audit store. It implements mediator.Recorder. All
// methods are safe for concurrent use.
type Store struct {
	path           string
	log            *slog.Logger
	syncFull       bool
	batchSize      int
	maxArgBytes    int
	maxResultBytes int
	busyTimeout    time.Duration
	extraPatterns  []*regexp.Regexp
	redactor       *redactor
	// instance names this process in its forwarding records
	// (host/pid/start), see UnfinishedForwards.
	instance string

	wdb *sql.DB // one connection, owned by the writer goroutine
	rdb *sql.DB // read-only connections

	mu     sync.RWMutex // guards closed and sends on queue
	closed bool
	queue  chan request
	done   chan struct{} // closed when the writer has exited
	w      *writer

	healthMu sync.Mutex
	lastErr  error // error of the last write batch, nil if it committed
	// broken is set when a database file was removed from under the
	// process (see fileGuard): no record is written after it.
	broken error
	files  *fileGuard

	closeOnce sync.Once
	closeErr  error
}

var _ mediator.Recorder = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// WithSynchronousFull sets PRAGMA synchronous=FULL: every commit is synced
// to disk, so an acknowledged record also survives a power loss or OS
// crash. The default, NORMAL, survives a crash of the process.
func WithSynchronousFull() Option {
	return func(s *Store) { s.syncFull = true }
}

// WithBatchSize sets how many queued records one transaction may hold
// (default DefaultBatchSize, at least 1, at most MaxBatchSize).
func WithBatchSize(n int) Option {
	return func(s *Store) { s.batchSize = min(max(n, 1), MaxBatchSize) }
}

// WithMaxArgBytes caps the stored size of a record's Arguments (default
// DefaultMaxArgBytes; n <= 0 disables the cap). A longer value is stored as
// a JSON string holding a prefix of its text, and the record is marked
// Truncated.
func WithMaxArgBytes(n int) Option {
	return func(s *Store) { s.maxArgBytes = n }
}

// WithMaxResultBytes caps the stored size of a record's Result, as
// WithMaxArgBytes does for Arguments (default DefaultMaxResultBytes).
func WithMaxResultBytes(n int) Option {
	return func(s *Store) { s.maxResultBytes = n }
}

// WithRedactPatterns adds secret patterns to the built-in ones. Every match
// in a record's Arguments, Result, Prompt, Reasoning, Error, Intent and
// Approval, and in the prompt and purpose of approvals and tasks, is
// replaced with "[REDACTED]"; when a pattern has a subexpression named
// "secret", only that part of the match is replaced.
func WithRedactPatterns(patterns []*regexp.Regexp) Option {
	return func(s *Store) { s.extraPatterns = append(s.extraPatterns, patterns...) }
}

// WithBusyTimeout sets how long a write waits for another process holding
// the database's write lock before failing (default DefaultBusyTimeout).
func WithBusyTimeout(d time.Duration) Option {
	return func(s *Store) { s.busyTimeout = max(d, 0) }
}

// Open opens the SQLite database at path, creating it if needed, applies
// pending schema migrations and starts the writer. It fails, wrapping
// ErrSchemaTooNew, if the database was migrated by a newer build. Several
// Stores, in one process or many, may open the same file: they append to
// one chain.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	s := &Store{instance: processInstance(),
		path: path, log: slog.Default(), batchSize: DefaultBatchSize,
		maxArgBytes: DefaultMaxArgBytes, maxResultBytes: DefaultMaxResultBytes,
		busyTimeout: DefaultBusyTimeout,
	}
	for _, o := range opts {
		o(s)
	}
	if path == "" {
		return nil, fmt.Errorf("%w: open audit store: empty database path", mediator.ErrAudit)
	}
	s.redactor = newRedactor(s.extraPatterns)
	if err := s.createPrivate(); err != nil {
		return nil, fmt.Errorf("%w: open audit store %s: %w", mediator.ErrAudit, path, err)
	}
	if err := s.openDBs(ctx); err != nil {
		return nil, fmt.Errorf("%w: open audit store %s: %w", mediator.ErrAudit, path, err)
	}
	s.files = newFileGuard(s.path)
	s.queue = make(chan request, max(4*s.batchSize, 64))
	s.done = make(chan struct{})
	w, err := newWriter(ctx, s)
	if err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("%w: open audit store %s: %w", mediator.ErrAudit, path, err)
	}
	s.w = w
	go w.run()
	return s, nil
}

// createPrivate creates a missing database file readable by its owner only
// (SQLite gives the -wal and -shm files the same mode): the chain holds
// prompts and arguments, and an upstream child running as another user
// must not read them. An existing file readable by others is kept as it
// is (an operator may share it with a group on purpose), with a warning.
func (s *Store) createPrivate() error {
	if strings.HasPrefix(s.path, "file:") || s.path == ":memory:" {
		return nil
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		return f.Close()
	case errors.Is(err, fs.ErrExist):
		if fi, serr := os.Stat(s.path); serr == nil && fi.Mode().Perm()&0o077 != 0 {
			s.log.Warn("the audit database is readable by other users; `chmod 600` it (and its -wal and -shm files) unless that is intended",
				"path", s.path, "mode", fi.Mode().Perm().String())
		}
		return nil
	}
	return fmt.Errorf("create the database file: %w", err)
}

// Writable returns nil when this process can write the database: the file
// opens for writing and its directory takes new files (SQLite's -wal and
// -shm files). SQLite itself opens a read-only database without a word and
// fails at the first record, so a mediator checks this at start; a command
// that only reads (audit verify of a copy) need not.
func (s *Store) Writable() error {
	if strings.HasPrefix(s.path, "file:") || s.path == ":memory:" {
		return nil
	}
	fix := "make it writable by the user the mediator runs as, or set database: to a writable path"
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: the database %s is read-only to this process (%w): %s", mediator.ErrAudit, s.path, err, fix)
	}
	_ = f.Close()
	dir := filepath.Dir(s.path)
	probe, err := os.CreateTemp(dir, ".mediator-write-check-*")
	if err != nil {
		return fmt.Errorf("%w: the database's directory %s is read-only to this process (%w), so SQLite cannot create the database's -wal and -shm files: %s",
			mediator.ErrAudit, dir, err, fix)
	}
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	return nil
}

// openDBs opens the writer and reader pools and migrates the schema.
func (s *Store) openDBs(ctx context.Context) error {
	var err error
	if s.wdb, err = sql.Open("sqlite", s.dsn(true)); err != nil {
		return fmt.Errorf("open writer: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxIdleTime(0)
	s.wdb.SetConnMaxLifetime(0)
	if err := s.connect(ctx); err != nil {
		s.closeDBs()
		return fmt.Errorf("connect: %w", err)
	}
	if err := migrate(ctx, s.wdb, s.log); err != nil {
		s.closeDBs()
		return err
	}
	if s.rdb, err = sql.Open("sqlite", s.dsn(false)); err != nil {
		s.closeDBs()
		return fmt.Errorf("open reader: %w", err)
	}
	s.rdb.SetMaxOpenConns(readConns)
	return nil
}

// connect opens the writer connection. Two processes opening a new
// database at once can both try to switch it to WAL; SQLite then answers
// SQLITE_BUSY without consulting the busy handler, so retry for as long as
// the busy timeout allows.
func (s *Store) connect(ctx context.Context) error {
	deadline := time.Now().Add(s.busyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := s.wdb.PingContext(ctx)
		if err == nil || !strings.Contains(err.Error(), "database is locked") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// dsn builds the connection string. The writer begins every transaction
// with BEGIN IMMEDIATE and sets the journal and sync modes; readers are
// query-only.
func (s *Store) dsn(writer bool) string {
	var b strings.Builder
	b.WriteString("file:")
	b.WriteString(strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.Clean(s.path)))
	b.WriteString("?_pragma=busy_timeout(")
	b.WriteString(strconv.FormatInt(s.busyTimeout.Milliseconds(), 10))
	b.WriteString(")&_pragma=foreign_keys(1)")
	if !writer {
		b.WriteString("&_pragma=query_only(1)")
		return b.String()
	}
	b.WriteString("&_pragma=journal_mode(WAL)")
	if s.syncFull {
		b.WriteString("&_pragma=synchronous(FULL)")
	} else {
		b.WriteString("&_pragma=synchronous(NORMAL)")
	}
	b.WriteString("&_txlock=immediate")
	return b.String()
}

func (s *Store) closeDBs() error {
	var errs []error
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	return errors.Join(errs...)
}

// Close stops accepting records, writes every record already queued, stops
// the writer and closes the database. Records sent after Close fail with
// an error wrapping mediator.ErrAudit. Close is idempotent; later calls
// return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.queue)
		s.w.wake()
		s.mu.Unlock()
		<-s.done
		if err := s.closeDBs(); err != nil {
			s.closeErr = fmt.Errorf("close audit store %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// errClosed is returned by operations on a closed Store.
func (s *Store) errClosed() error {
	return fmt.Errorf("%w: audit store %s is closed", mediator.ErrAudit, s.path)
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// Healthy returns nil when the store is open and its last write batch
// committed, otherwise an error wrapping mediator.ErrAudit that names the
// cause. The pipeline checks it before forwarding a call. A failed batch
// makes the store unhealthy until a later batch commits (for instance the
// record of a call refused because the store was unhealthy).
func (s *Store) Healthy() error {
	if s.isClosed() {
		return s.errClosed()
	}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	if s.lastErr != nil {
		return fmt.Errorf("%w: last audit write failed: %w", mediator.ErrAudit, s.lastErr)
	}
	return nil
}

// recoverDeleted checkpoints the log into the deleted database file the
// process still has open as fd, and copies that file to path (synced).
func (s *Store) recoverDeleted(fd int, path string) error {
	var busy, logged, moved int
	if err := s.wdb.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logged, &moved); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("the checkpoint was blocked by a reader (%d of %d pages copied)", moved, logged)
	}
	src, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func (s *Store) brokenErr() error {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	return s.broken
}

// lostFile handles a database file removed from under the process after
// a commit. A deleted write-ahead log is still open, so the records it
// holds are copied into the database file (a checkpoint) and the batch
// stands; a deleted database file cannot be saved from here. Either way
// the store writes nothing more: what it wrote next would be lost when the
// process ends. It returns the batch's error (nil when its records are
// safe in the database file).
func (s *Store) lostFile(g *fileGone) error {
	var broken, batch error
	if g.wal {
		var busy, logged, moved int
		err := s.wdb.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logged, &moved)
		if err == nil && busy != 0 {
			err = fmt.Errorf("the checkpoint was blocked by a reader (%d of %d pages copied)", moved, logged)
		}
		if err == nil {
			broken = fmt.Errorf("%w: %v; the records it held were saved into %s, and no record is written (so no call is forwarded) "+
				"until the mediator is restarted, which opens a new log", mediator.ErrAudit, g, s.path)
		} else {
			broken = fmt.Errorf("%w: %v, and saving its records into %s failed (%w): they are lost when this process ends; "+
				"no call is forwarded. Before restarting, stop the mediator with SIGTERM (it checkpoints on close) "+
				"or copy the open log from /proc/%d/fd", mediator.ErrAudit, g, s.path, err, os.Getpid())
			batch = broken
		}
	} else {
		// The deleted file is still open: fold the log into it and copy
		// it out, so that nothing it holds is lost.
		to := g.path + ".recovered"
		err := s.recoverDeleted(g.fd, to)
		if err == nil {
			broken = fmt.Errorf("%w: %v; its records, up to this one, were copied to %s, and no call is forwarded. "+
				"Stop the mediator, move %s to %s, and start it again", mediator.ErrAudit, g, to, to, g.path)
		} else {
			broken = fmt.Errorf("%w: %v, and copying it out failed (%w); no call is forwarded, and the records since the file was "+
				"deleted are only in the file this process still has open: copy /proc/%d/fd/%d to %s before the mediator stops",
				mediator.ErrAudit, g, err, os.Getpid(), g.fd, g.path)
		}
		batch = broken
	}
	s.log.Error("audit store lost a file", "err", broken)
	s.healthMu.Lock()
	s.broken = broken
	s.healthMu.Unlock()
	return batch
}

func (s *Store) setHealth(err error) {
	s.healthMu.Lock()
	s.lastErr = err
	s.healthMu.Unlock()
}

// Ping checks that the store is open and its database answers a query; it
// is the readiness probe. It does not check Healthy.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return s.errClosed()
	}
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("%w: ping audit store %s: %w", mediator.ErrAudit, s.path, err)
	}
	return nil
}
