package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// columns lists the audit columns in the order scanRow reads them.
const columns = `seq, id, time, session_id, transport, agent_id, task_id, method, kind, server,
	name, tool_hash, prompt, arguments, intent, decision_effect, decision_rule, decision_reason,
	decision_policy_version, decision_shadow, outcome, error, result, truncated, duration_us,
	upstream_us, prev_hash, hash, reasoning, prompt_truncated, approval, remote_addr, behaviour, ref, writer, scan`

// scanRow reads one row selected with columns.
func scanRow(rows *sql.Rows) (row, error) {
	var r row
	var args, intent, result, approval, beh, scan sql.RawBytes
	err := rows.Scan(&r.seq, &r.id, &r.time, &r.sessionID, &r.transport, &r.agentID, &r.taskID,
		&r.method, &r.kind, &r.server, &r.name, &r.toolHash, &r.prompt, &args, &intent,
		&r.effect, &r.rule, &r.reason, &r.policyVersion, &r.shadow, &r.outcome, &r.errText,
		&result, &r.truncated, &r.durationUS, &r.upstreamUS, &r.prevHash, &r.hash,
		&r.reasoning, &r.promptTruncated, &approval, &r.remoteAddr, &beh, &r.ref, &r.writer, &scan)
	if err != nil {
		return row{}, fmt.Errorf("scan audit row: %w", err)
	}
	r.arguments, r.intent, r.result = cloneBytes(args), cloneBytes(intent), cloneBytes(result)
	r.approval = cloneBytes(approval)
	r.behaviour = cloneBytes(beh)
	r.scan = cloneBytes(scan)
	return r, nil
}

// cloneBytes copies b, keeping nil (SQL NULL) distinct from empty.
func cloneBytes(b sql.RawBytes) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// Filter selects records for Records. Zero fields match everything.
type Filter struct {
	SessionID string
	AgentID   string
	TaskID    string
	// Since keeps records whose Time is at or after it.
	Since time.Time
	// Limit keeps only the newest Limit matching records (<= 0: all).
	Limit int
}

// Records returns the records matching f, oldest (lowest seq) first.
func (s *Store) Records(ctx context.Context, f Filter) ([]mediator.ChainRecord, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	q, args := recordsQuery(f)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%w: query audit records: %w", mediator.ErrAudit, err)
	}
	defer rows.Close()
	var out []mediator.ChainRecord
	err = eachRecord(rows, func(c mediator.ChainRecord) error {
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: query audit records: %w", mediator.ErrAudit, err)
	}
	return out, nil
}

// recordsQuery builds the SQL for f.
func recordsQuery(f Filter) (string, []any) {
	var conds []string
	var args []any
	if f.SessionID != "" {
		conds, args = append(conds, "session_id = ?"), append(args, f.SessionID)
	}
	if f.AgentID != "" {
		conds, args = append(conds, "agent_id = ?"), append(args, f.AgentID)
	}
	if f.TaskID != "" {
		conds, args = append(conds, "task_id = ?"), append(args, f.TaskID)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "time >= ?"), append(args, formatTime(f.Since))
	}
	q := "SELECT " + columns + " FROM audit"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	if f.Limit <= 0 {
		return q + " ORDER BY seq", args
	}
	q = "SELECT * FROM (" + q + " ORDER BY seq DESC LIMIT ?) ORDER BY seq"
	return q, append(args, f.Limit)
}

// eachRecord scans every row into a ChainRecord and calls fn with it.
func eachRecord(rows *sql.Rows, fn func(mediator.ChainRecord) error) error {
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return err
		}
		c, err := r.record()
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit rows: %w", err)
	}
	return nil
}

// Export writes the records whose Time is at or after since (all records
// when since is zero) to w as JSON Lines, one mediator.ChainRecord per
// line, in seq order. It returns the number of records written.
func (s *Store) Export(ctx context.Context, w io.Writer, since time.Time) (int64, error) {
	if s.isClosed() {
		return 0, s.errClosed()
	}
	q, args := recordsQuery(Filter{Since: since})
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("%w: export audit records: %w", mediator.ErrAudit, err)
	}
	defer rows.Close()
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var n int64
	err = eachRecord(rows, func(c mediator.ChainRecord) error {
		if err := enc.Encode(c); err != nil {
			return fmt.Errorf("write record seq %d: %w", c.Seq, err)
		}
		n++
		return nil
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return n, fmt.Errorf("%w: export audit records: %w", mediator.ErrAudit, err)
	}
	return n, nil
}

// ExportAfter writes up to limit records with seq > after, in seq order,
// as JSON Lines (the format of Export), and returns the seq of the last
// one written (after when none) and how many it wrote. `audit export
// --follow` calls it in a loop to stream new records from where it
// stopped.
func (s *Store) ExportAfter(ctx context.Context, w io.Writer, after int64, limit int) (int64, int, error) {
	if s.isClosed() {
		return after, 0, s.errClosed()
	}
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+columns+" FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
	if err != nil {
		return after, 0, fmt.Errorf("%w: export audit records: %w", mediator.ErrAudit, err)
	}
	defer rows.Close()
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n, last := 0, after
	err = eachRecord(rows, func(c mediator.ChainRecord) error {
		if err := enc.Encode(c); err != nil {
			return fmt.Errorf("write record seq %d: %w", c.Seq, err)
		}
		n, last = n+1, c.Seq
		return nil
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return last, n, fmt.Errorf("%w: export audit records: %w", mediator.ErrAudit, err)
	}
	return last, n, nil
}

// RecordsAfter returns up to limit records with seq > after, in seq
// order (limit <= 0: 1000).
func (s *Store) RecordsAfter(ctx context.Context, after int64, limit int) ([]mediator.ChainRecord, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	if limit <= 0 {
		limit = 1000
	}
	return s.queryRecords(ctx, "audit records", "SELECT "+columns+" FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
}
