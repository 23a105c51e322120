package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// batchTimeout bounds one write transaction, lock wait included.
const batchTimeout = time.Minute

// request is one record waiting for the writer, and where to send the
// outcome (buffered, so the writer never blocks on it).
type request struct {
	row   row
	reply chan error
}

// errDuplicateID is the per-record error for an id already in the chain.
var errDuplicateID = errors.New("a record with this id is already in the audit chain")

// rowsPerInsert is how many rows one multi-row INSERT statement carries.
const rowsPerInsert = 16

// insertSQL returns the statement that appends n rows.
func insertSQL(n int) string {
	const one = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
	return `INSERT INTO audit (seq, id, time, session_id, transport, agent_id, task_id,
	method, kind, server, name, tool_hash, prompt, arguments, intent, decision_effect,
	decision_rule, decision_reason, decision_policy_version, decision_shadow, outcome,
	error, result, truncated, duration_us, upstream_us, prev_hash, hash) VALUES ` +
		strings.TrimSuffix(strings.Repeat(one+",", n), ",")
}

// Record redacts and caps r, appends it to the audit chain and returns once
// the transaction holding it has committed. Store sets Seq, PrevHash and
// Hash; an empty ID or zero Time is filled in. If ctx ends first, Record
// returns ctx's error (the record may still be committed). Every error
// wraps mediator.ErrAudit.
func (s *Store) Record(ctx context.Context, r mediator.ChainRecord) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: record not sent: %w", mediator.ErrAudit, err)
	}
	w, err := s.prepare(r)
	if err != nil {
		return fmt.Errorf("%w: %w", mediator.ErrAudit, err)
	}
	req := request{row: w, reply: make(chan error, 1)}
	if err := s.enqueue(ctx, req); err != nil {
		return err
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: gave up waiting for the commit of record %s (it may still be committed): %w",
			mediator.ErrAudit, w.id, ctx.Err())
	}
}

// enqueue hands req to the writer unless the store is closed or ctx ends.
// Close waits for enqueue calls in progress, so whatever enqueue accepted
// is flushed.
func (s *Store) enqueue(ctx context.Context, req request) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return s.errClosed()
	}
	select {
	case s.queue <- req:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: record %s not queued: %w", mediator.ErrAudit, req.row.id, ctx.Err())
	}
}

// writer is the goroutine that owns every write to the audit table.
type writer struct {
	s          *Store
	head       *sql.Stmt // reads the chain head
	insertOne  *sql.Stmt // appends one row
	insertMany *sql.Stmt // appends rowsPerInsert rows
	batch      []request
	errs       []error
	rows       []*row
	args       []any
	buf        []byte
}

func newWriter(ctx context.Context, s *Store) (*writer, error) {
	w := &writer{
		s:     s,
		batch: make([]request, 0, s.batchSize),
		errs:  make([]error, s.batchSize),
		args:  make([]any, 0, rowsPerInsert*28),
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&w.head, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`},
		{&w.insertOne, insertSQL(1)},
		{&w.insertMany, insertSQL(rowsPerInsert)},
	} {
		stmt, err := s.wdb.PrepareContext(ctx, p.sql)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("prepare writer statements: %w", err)
		}
		*p.stmt = stmt
	}
	return w, nil
}

// close releases the prepared statements.
func (w *writer) close() {
	for _, stmt := range []*sql.Stmt{w.head, w.insertOne, w.insertMany} {
		if stmt != nil {
			_ = stmt.Close()
		}
	}
}

// run writes batches until the queue is closed and drained.
func (w *writer) run() {
	defer close(w.s.done)
	defer w.close()
	for req := range w.s.queue {
		w.batch = append(w.batch[:0], req)
		w.fill()
		w.flush()
	}
}

// fill adds queued requests to the batch, without waiting, up to the batch size.
func (w *writer) fill() {
	for len(w.batch) < w.s.batchSize {
		select {
		case req, ok := <-w.s.queue:
			if !ok {
				return
			}
			w.batch = append(w.batch, req)
		default:
			return
		}
	}
}

// flush writes the batch in one transaction and replies to every waiter.
func (w *writer) flush() {
	errs := w.errs[:len(w.batch)]
	clear(errs)
	err := w.write(errs)
	w.s.setHealth(err)
	if err != nil {
		w.s.log.Error("audit write failed", "records", len(w.batch), "err", err)
		err = fmt.Errorf("%w: write batch of %d records: %w", mediator.ErrAudit, len(w.batch), err)
	}
	for i, req := range w.batch {
		switch {
		case err != nil:
			req.reply <- err
		case errs[i] != nil:
			req.reply <- fmt.Errorf("%w: record %s: %w", mediator.ErrAudit, req.row.id, errs[i])
		default:
			req.reply <- nil
		}
		w.batch[i] = request{}
	}
}

// write appends the batch to the chain in one BEGIN IMMEDIATE transaction
// (see writeOnce). If an insert fails, most likely because a record's id is
// already stored, it retries once with the ids checked first: records
// whose id is taken get errDuplicateID in errs and the rest are written.
func (w *writer) write(errs []error) error {
	err := w.writeOnce(errs, false)
	var ie *insertError
	if errors.As(err, &ie) {
		w.s.log.Warn("audit insert failed; retrying the batch with duplicate ids set aside", "err", err)
		err = w.writeOnce(errs, true)
	}
	return err
}

// insertError is an INSERT failure, as opposed to a failure to begin or
// commit the transaction.
type insertError struct{ err error }

func (e *insertError) Error() string { return e.err.Error() }
func (e *insertError) Unwrap() error { return e.err }

// writeOnce reads the chain head inside the transaction (another process
// may have appended since), optionally sets aside records whose id is
// already stored or repeated, links and hashes the others in order,
// inserts them and commits.
func (w *writer) writeOnce(errs []error, checkIDs bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	seq, prev, err := chainHead(ctx, tx.StmtContext(ctx, w.head))
	if err != nil {
		return err
	}
	if checkIDs {
		if err := w.markDuplicates(ctx, tx, errs); err != nil {
			return err
		}
	}
	w.link(seq, prev, errs)
	if err := w.insertRows(ctx, tx); err != nil {
		return &insertError{err}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// chainHead returns the seq and hash of the last record, or 0 and the
// genesis hash for an empty chain.
func chainHead(ctx context.Context, head *sql.Stmt) (int64, string, error) {
	var seq int64
	var hash string
	err := head.QueryRowContext(ctx).Scan(&seq, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, genesisHash, nil
	case err != nil:
		return 0, "", fmt.Errorf("read chain head: %w", err)
	}
	return seq, hash, nil
}

// markDuplicates sets errs[i] for every record of the batch whose id is
// already stored or appears earlier in the batch.
func (w *writer) markDuplicates(ctx context.Context, tx *sql.Tx, errs []error) error {
	ids := make([]any, len(w.batch))
	seen := make(map[string]bool, len(w.batch))
	for i := range w.batch {
		id := w.batch[i].row.id
		ids[i] = id
		if seen[id] {
			errs[i] = errDuplicateID
		}
		seen[id] = true
	}
	q := "SELECT id FROM audit WHERE id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
	rows, err := tx.QueryContext(ctx, q, ids...)
	if err != nil {
		return fmt.Errorf("look up record ids: %w", err)
	}
	defer rows.Close()
	stored := make(map[string]bool)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("look up record ids: %w", err)
		}
		stored[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up record ids: %w", err)
	}
	for i := range w.batch {
		if stored[w.batch[i].row.id] {
			errs[i] = errDuplicateID
		}
	}
	return nil
}

// link gives every accepted record of the batch, in order, the next seq,
// the previous record's hash and its own hash, and collects them in w.rows.
func (w *writer) link(seq int64, prev string, errs []error) {
	w.rows = w.rows[:0]
	for i := range w.batch {
		if errs[i] != nil {
			continue
		}
		r := &w.batch[i].row
		seq++
		r.seq, r.prevHash = seq, prev
		r.hash, w.buf = chainHash(w.buf, r)
		prev = r.hash
		w.rows = append(w.rows, r)
	}
}

// insertRows inserts w.rows, rowsPerInsert at a time, then one by one.
func (w *writer) insertRows(ctx context.Context, tx *sql.Tx) error {
	defer clear(w.args[:cap(w.args)])
	one, many := tx.StmtContext(ctx, w.insertOne), tx.StmtContext(ctx, w.insertMany)
	rows := w.rows
	for len(rows) > 0 {
		stmt, n := many, rowsPerInsert
		if len(rows) < rowsPerInsert {
			stmt, n = one, 1
		}
		w.args = w.args[:0]
		for _, r := range rows[:n] {
			w.args = appendArgs(w.args, r)
		}
		if _, err := stmt.ExecContext(ctx, w.args...); err != nil {
			return fmt.Errorf("insert records seq %d to %d: %w", rows[0].seq, rows[n-1].seq, err)
		}
		rows = rows[n:]
	}
	return nil
}

// appendArgs appends r's column values in insertSQL order.
func appendArgs(args []any, r *row) []any {
	return append(args, r.seq, r.id, r.time, r.sessionID, r.transport, r.agentID,
		r.taskID, r.method, r.kind, r.server, r.name, r.toolHash, r.prompt, nullText(r.arguments),
		nullText(r.intent), r.effect, r.rule, r.reason, r.policyVersion, r.shadow, r.outcome,
		r.errText, nullText(r.result), r.truncated, r.durationUS, r.upstreamUS, r.prevHash, r.hash)
}

// nullText binds b as TEXT, or NULL when b is nil.
func nullText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
