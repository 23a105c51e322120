package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// request is one record waiting for the writer, and where to send the
// outcome (buffered, so the writer never blocks on it).
type request struct {
	row   row
	reply chan error
}

var _ mediator.CallTracker = (*Store)(nil)

// errDuplicateID is the per-record error for an id already in the chain.
var errDuplicateID = errors.New("a record with this id is already in the audit chain")

// rowsPerInsert is how many rows one multi-row INSERT statement carries.
const rowsPerInsert = 16

// insertSQL returns the statement that appends n rows.
func insertSQL(n int) string {
	const one = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
	return `INSERT INTO audit (seq, id, time, session_id, transport, agent_id, task_id,
	method, kind, server, name, tool_hash, prompt, arguments, intent, decision_effect,
	decision_rule, decision_reason, decision_policy_version, decision_shadow, outcome,
	error, result, truncated, duration_us, upstream_us, prev_hash, hash,
	reasoning, prompt_truncated, approval, remote_addr, behaviour, ref, writer, scan) VALUES ` +
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
	if done, err := s.writeNow(req); done {
		return err
	}
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
		s.w.wake()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: record %s not queued: %w", mediator.ErrAudit, req.row.id, ctx.Err())
	}
}

// CallStarted implements mediator.CallTracker.
func (s *Store) CallStarted() { s.w.inflight.Add(1) }

// CallEnded implements mediator.CallTracker.
func (s *Store) CallEnded() { s.w.inflight.Add(-1) }

// writeNow writes req in the calling goroutine when nothing is queued, no
// batch is being written and few other calls are running: a lone record
// (one agent, one call at a time) is then committed without being handed
// to the writer goroutine and back, two goroutine switches that cost as
// much as the INSERT. It reports whether it handled req, and req's
// outcome. Under load, records queue up and the writer commits them in
// groups.
func (s *Store) writeNow(req request) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return true, s.errClosed()
	}
	if len(s.queue) > 0 || s.w.inflight.Load() >= groupSiblings || !s.w.mu.TryLock() {
		return false, nil
	}
	defer s.w.mu.Unlock()
	s.w.batch = append(s.w.batch[:0], req)
	s.w.fill()
	s.w.flush()
	return true, <-req.reply
}

// writer owns every write to the audit table. Its goroutine writes what is
// queued; a Record call finding it idle writes its own record (writeNow).
// mu is held by whichever of them is writing, and guards the fields below.
type writer struct {
	mu   sync.Mutex
	kick chan struct{} // something was queued, or the queue was closed
	// inflight counts the calls in the pipeline that have not yet reached
	// Record (see mediator.CallTracker).
	inflight atomic.Int64
	timer    *time.Timer // gather's, reused

	records, commits atomic.Int64 // totals, for WriterStats

	s  *Store
	st stmts // prepared on the writer connection
	// newConn: the connection is new since the last commit, so the
	// files it has open are to be found again (see fileGuard).
	newConn bool
	batch   []request
	errs    []error
	rows    []*row
	args    []driver.NamedValue
	buf     []byte
}

func newWriter(ctx context.Context, s *Store) (*writer, error) {
	w := &writer{
		kick:  make(chan struct{}, 1),
		s:     s,
		batch: make([]request, 0, s.batchSize),
		errs:  make([]error, s.batchSize),
		args:  make([]driver.NamedValue, 0, rowsPerInsert*rowColumns),
	}
	// Prepare now, so that a database the writer cannot use fails Open.
	if err := w.withConn(ctx, func(any) error { return nil }); err != nil {
		return nil, err
	}
	return w, nil
}

// close releases the prepared statements.
func (w *writer) close() {
	_ = w.withConn(context.Background(), func(any) error {
		w.st.close()
		return nil
	})
}

// run writes batches until the queue is closed and drained. It takes a
// request off the queue only once it holds mu, so a request waits in the
// queue, not in the writer's hands, while a Record call writes its own.
func (w *writer) run() {
	defer close(w.s.done)
	defer w.close()
	for {
		w.mu.Lock()
		open := w.drain()
		w.mu.Unlock()
		if !open {
			return
		}
		<-w.kick
	}
}

// wake tells the writer goroutine that the queue changed.
func (w *writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// drain writes batches until the queue is empty; it reports false once the
// queue is closed and empty.
func (w *writer) drain() bool {
	for {
		w.batch = w.batch[:0]
		open := w.fill()
		if len(w.batch) == 0 {
			return open
		}
		if open && len(w.batch) < w.s.batchSize && w.inflight.Load() >= groupSiblings {
			w.gather()
		}
		w.flush()
	}
}

// Group commit. A commit costs about as much CPU as a whole call's
// mediation, and every record in it waits for it; with many calls running,
// their records arrive a few at a time. When at least groupSiblings calls
// are still running, the writer waits up to groupDelay for more records
// before it commits, as PostgreSQL's commit_delay does with
// commit_siblings: fewer, larger commits, for a bounded wait. With fewer
// calls running, records are committed at once (and a lone call commits
// its own record, see writeNow).
const (
	groupSiblings = 4
	groupDelay    = 200 * time.Microsecond
)

// gather adds records to the batch as they are queued, until it is full,
// no other call is running, groupDelay has passed or the queue is closed
// (the next fill sees that).
func (w *writer) gather() {
	if w.timer == nil {
		w.timer = time.NewTimer(groupDelay)
	} else {
		w.timer.Reset(groupDelay)
	}
	defer w.timer.Stop()
	for len(w.batch) < w.s.batchSize && w.inflight.Load() > 0 {
		select {
		case req, ok := <-w.s.queue:
			if !ok {
				return
			}
			w.batch = append(w.batch, req)
		case <-w.timer.C:
			return
		}
	}
}

// fill adds queued requests to the batch, without waiting, up to the batch
// size. It reports false when the queue is closed and empty.
func (w *writer) fill() bool {
	for len(w.batch) < w.s.batchSize {
		select {
		case req, ok := <-w.s.queue:
			if !ok {
				return false
			}
			w.batch = append(w.batch, req)
		default:
			return true
		}
	}
	return true
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
	if err := w.s.brokenErr(); err != nil {
		return err
	}
	err := w.withConn(context.Background(), func(any) error { return w.writeOnce(errs, false) })
	var ie *insertError
	if errors.As(err, &ie) {
		w.s.log.Warn("audit insert failed; retrying the batch with duplicate ids set aside", "err", err)
		err = w.withConn(context.Background(), func(any) error { return w.writeOnce(errs, true) })
	}
	if err == nil {
		if gone := w.s.files.check(w.newConn); gone != nil {
			err = w.s.lostFile(gone)
		}
		w.newConn = false
	}
	if err == nil {
		w.records.Add(int64(len(w.rows)))
		w.commits.Add(1)
	}
	return err
}

// WriterStats counts what the writer has committed since Open.
type WriterStats struct {
	Records int64 `json:"records"`
	Commits int64 `json:"commits"`
}

// WriterStats returns the writer's totals: Records/Commits is the mean
// group size, which shows whether group commit is taking effect.
func (s *Store) WriterStats() WriterStats {
	return WriterStats{Records: s.w.records.Load(), Commits: s.w.commits.Load()}
}

// insertError is an INSERT failure, as opposed to a failure to begin or
// commit the transaction.
type insertError struct{ err error }

func (e *insertError) Error() string { return e.err.Error() }
func (e *insertError) Unwrap() error { return e.err }

// writeOnce reads the chain head inside the transaction (another process
// may have appended since), optionally sets aside records whose id is
// already stored or repeated, links and hashes the others in order,
// inserts them and commits. It runs inside withConn.
func (w *writer) writeOnce(errs []error, checkIDs bool) (err error) {
	if err := w.st.exec(w.st.begin, nil); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = w.st.exec(w.st.rollback, nil) // fails harmlessly if the transaction is over
		}
	}()
	seq, prev, err := w.st.chainHead()
	if err != nil {
		return err
	}
	if checkIDs {
		if err := w.markDuplicates(errs); err != nil {
			return err
		}
	}
	w.link(seq, prev, errs)
	if err := w.insertRows(); err != nil {
		return &insertError{err}
	}
	if err := w.st.exec(w.st.commit, nil); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// markDuplicates sets errs[i] for every record of the batch whose id is
// already stored or appears earlier in the batch.
func (w *writer) markDuplicates(errs []error) error {
	ids := make([]driver.NamedValue, len(w.batch))
	seen := make(map[string]bool, len(w.batch))
	for i := range w.batch {
		id := w.batch[i].row.id
		ids[i] = driver.NamedValue{Ordinal: i + 1, Value: id}
		if seen[id] {
			errs[i] = errDuplicateID
		}
		seen[id] = true
	}
	q := "SELECT id FROM audit WHERE id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
	stored := make(map[string]bool)
	err := w.st.query(q, ids, func(v []driver.Value) {
		if id, ok := v[0].(string); ok {
			stored[id] = true
		}
	})
	if err != nil {
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
func (w *writer) insertRows() error {
	defer clear(w.args[:cap(w.args)])
	rows := w.rows
	for len(rows) > 0 {
		stmt, n := w.st.insertMany, rowsPerInsert
		if len(rows) < rowsPerInsert {
			stmt, n = w.st.insertOne, 1
		}
		w.args = w.args[:0]
		for _, r := range rows[:n] {
			w.args = appendArgs(w.args, r)
		}
		if err := w.st.exec(stmt, w.args); err != nil {
			return fmt.Errorf("insert records seq %d to %d: %w", rows[0].seq, rows[n-1].seq, err)
		}
		rows = rows[n:]
	}
	return nil
}

// rowColumns is the number of columns insertSQL binds per row.
const rowColumns = 36

// appendArgs appends r's column values in insertSQL order.
func appendArgs(args []driver.NamedValue, r *row) []driver.NamedValue {
	for _, v := range [rowColumns]driver.Value{r.seq, r.id, r.time, r.sessionID, r.transport, r.agentID,
		r.taskID, r.method, r.kind, r.server, r.name, r.toolHash, r.prompt, nullText(r.arguments),
		nullText(r.intent), r.effect, r.rule, r.reason, r.policyVersion, r.shadow, r.outcome,
		r.errText, nullText(r.result), r.truncated, r.durationUS, r.upstreamUS, r.prevHash, r.hash,
		r.reasoning, r.promptTruncated, nullText(r.approval), r.remoteAddr, nullText(r.behaviour), r.ref, r.writer, nullText(r.scan)} {
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
	}
	return args
}

// nullText binds b as TEXT, or NULL when b is nil.
func nullText(b []byte) driver.Value {
	if b == nil {
		return nil
	}
	return string(b)
}

// The writer talks to the SQLite driver's connection directly, through
// database/sql's Conn.Raw, with statements it prepared once: BEGIN and
// COMMIT included, which database/sql would parse on every transaction,
// and without database/sql's locking and bookkeeping around each step. A
// single-record commit costs about a third less.

// headSQL reads the chain head.
const headSQL = `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`

// stmts are the writer's statements, prepared on one driver connection.
type stmts struct {
	dc                          any // the connection they belong to
	begin, commit, rollback     driver.Stmt
	head, insertOne, insertMany driver.Stmt
}

// withConn runs f with the writer connection to itself, its statements
// prepared on it. Nothing else uses the connection meanwhile: database/sql
// hands it out to one user at a time.
func (w *writer) withConn(ctx context.Context, f func(dc any) error) error {
	conn, err := w.s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		if w.st.dc != dc {
			// A new connection (the old one failed): its statements went with it.
			w.newConn = true // and its files are others
			st, err := prepareStmts(ctx, dc)
			if err != nil {
				return err
			}
			w.st = st
		}
		return f(dc)
	})
}

func prepareStmts(ctx context.Context, dc any) (stmts, error) {
	pc, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return stmts{}, fmt.Errorf("prepare writer statements: the driver connection %T cannot prepare", dc)
	}
	st := stmts{dc: dc}
	for _, p := range []struct {
		stmt *driver.Stmt
		sql  string
	}{
		{&st.begin, "BEGIN IMMEDIATE"}, {&st.commit, "COMMIT"}, {&st.rollback, "ROLLBACK"},
		{&st.head, headSQL}, {&st.insertOne, insertSQL(1)}, {&st.insertMany, insertSQL(rowsPerInsert)},
	} {
		s, err := pc.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return stmts{}, fmt.Errorf("prepare writer statements: %w", err)
		}
		*p.stmt = s
	}
	return st, nil
}

// close finalizes the statements; call it holding the connection.
func (st *stmts) close() {
	for _, s := range []driver.Stmt{st.begin, st.commit, st.rollback, st.head, st.insertOne, st.insertMany} {
		if s != nil {
			_ = s.Close()
		}
	}
	*st = stmts{}
}

// exec runs a prepared statement. The context is not cancellable: with a
// deadline, the driver starts a goroutine per statement to watch it. A
// wait for another process's lock is bounded by busy_timeout.
func (st *stmts) exec(s driver.Stmt, args []driver.NamedValue) error {
	ex, ok := s.(driver.StmtExecContext)
	if !ok {
		return fmt.Errorf("the driver statement %T cannot execute", s)
	}
	_, err := ex.ExecContext(context.Background(), args)
	return err
}

// query runs q and calls row for each result row.
func (st *stmts) query(q string, args []driver.NamedValue, row func([]driver.Value)) error {
	s, err := st.dc.(driver.ConnPrepareContext).PrepareContext(context.Background(), q)
	if err != nil {
		return err
	}
	defer s.Close()
	return queryStmt(s, args, row)
}

func queryStmt(s driver.Stmt, args []driver.NamedValue, row func([]driver.Value)) error {
	qc, ok := s.(driver.StmtQueryContext)
	if !ok {
		return fmt.Errorf("the driver statement %T cannot query", s)
	}
	rows, err := qc.QueryContext(context.Background(), args)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		switch err := rows.Next(dest); {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
		row(dest)
	}
}

// chainHead returns the seq and hash of the last record, or 0 and the
// genesis hash for an empty chain.
func (st *stmts) chainHead() (int64, string, error) {
	seq, hash := int64(0), genesisHash
	var bad error
	err := queryStmt(st.head, nil, func(v []driver.Value) {
		s, ok1 := v[0].(int64)
		h, ok2 := v[1].(string)
		if !ok1 || !ok2 {
			bad = fmt.Errorf("unexpected column types %T, %T", v[0], v[1])
			return
		}
		seq, hash = s, h
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return 0, "", fmt.Errorf("read chain head: %w", err)
	}
	return seq, hash, nil
}
