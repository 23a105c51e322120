package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

var (
	_ mediator.ApprovalStore     = (*Store)(nil)
	_ mediator.ApproverDirectory = (*Store)(nil)
)

// approvalsSchema is migration 3. An approval is one row: the columns the
// queue selects and orders by, and body, the whole mediator.Approval as
// JSON (what the approver saw). Every change of a row takes the next rev,
// so "what changed since rev N" is one indexed query for any process.
var approvalsSchema = []string{
	`CREATE TABLE approvals (
		id TEXT PRIMARY KEY,
		key TEXT NOT NULL,
		state TEXT NOT NULL,
		rev INTEGER NOT NULL,
		created TEXT NOT NULL,
		expires TEXT NOT NULL,
		delivered TEXT NOT NULL DEFAULT '',
		agent_id TEXT NOT NULL DEFAULT '',
		tool TEXT NOT NULL DEFAULT '',
		body TEXT NOT NULL
	)`,
	`CREATE INDEX approvals_key ON approvals(key, delivered)`,
	`CREATE INDEX approvals_state ON approvals(state, expires)`,
	`CREATE UNIQUE INDEX approvals_rev ON approvals(rev)`,
	`CREATE TABLE approval_grants (
		id TEXT PRIMARY KEY,
		approval_id TEXT NOT NULL,
		agent_id TEXT NOT NULL,
		task_id TEXT NOT NULL DEFAULT '',
		session_id TEXT NOT NULL DEFAULT '',
		tool TEXT NOT NULL,
		pattern TEXT NOT NULL,
		approver TEXT NOT NULL,
		created TEXT NOT NULL,
		expires TEXT NOT NULL
	)`,
	`CREATE INDEX approval_grants_scope ON approval_grants(agent_id, tool, expires)`,
	`CREATE TABLE approvers (
		name TEXT PRIMARY KEY,
		role TEXT NOT NULL,
		password_hash TEXT NOT NULL,
		created TEXT NOT NULL,
		updated TEXT NOT NULL
	)`,
}

// MaxApprovalReasonBytes caps a decision's reason.
const MaxApprovalReasonBytes = 2000

// writeTx runs fn in one BEGIN IMMEDIATE transaction on the write
// connection (see smallWrite): it is serialized with every other writer,
// in this process and in any other sharing the file.
func (s *Store) writeTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return s.errClosed()
	}
	ctx, cancel := context.WithTimeout(ctx, smallWriteTimeout)
	defer cancel()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// querier is what both *sql.Tx and *sql.DB offer.
type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// OpenApproval stores a as pending, redacting its prompt, purpose and
// arguments, unless an undelivered approval for a.Key exists; then that one
// is returned. A missing ID or Created is filled in.
func (s *Store) OpenApproval(ctx context.Context, a mediator.Approval) (mediator.Approval, bool, error) {
	s.redactApproval(&a)
	created := false
	err := s.writeTx(ctx, "open approval", func(tx *sql.Tx) error {
		old, ok, err := undelivered(ctx, tx, a.Key)
		if err != nil || ok {
			a = old
			return err
		}
		created = true
		return insertApproval(ctx, tx, &a)
	})
	return a, created, err
}

// redactApproval fills defaults and redacts what the agent supplied.
func (s *Store) redactApproval(a *mediator.Approval) {
	if a.ID == "" {
		a.ID = newApprovalID()
	}
	if a.Created.IsZero() {
		a.Created = time.Now()
	}
	a.State, a.Decisions, a.Decided, a.Delivered, a.DeliveredTo = mediator.ApprovalPending, nil, time.Time{}, time.Time{}, ""
	a.Required = max(a.Required, 1)
	a.Prompt = s.redactor.text(a.Prompt)
	a.Purpose = s.redactor.text(a.Purpose)
	a.Arguments = s.redactor.approvalArgs(a.Arguments, s.maxArgBytes)
}

func insertApproval(ctx context.Context, tx *sql.Tx, a *mediator.Approval) error {
	rev, err := nextRev(ctx, tx)
	if err != nil {
		return err
	}
	a.Rev = rev
	body, err := encodeApproval(a)
	if err != nil {
		return err
	}
	const q = `INSERT INTO approvals(id, key, state, rev, created, expires, agent_id, tool, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	_, err = tx.ExecContext(ctx, q, a.ID, a.Key, a.State, a.Rev, formatTime(a.Created), formatTime(a.Expires),
		a.AgentID, a.Tool, body)
	return err
}

func nextRev(ctx context.Context, tx *sql.Tx) (int64, error) {
	var rev int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rev), 0) + 1 FROM approvals`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("next revision: %w", err)
	}
	return rev, nil
}

// updateApproval writes a's state and body back under a new revision.
func updateApproval(ctx context.Context, tx *sql.Tx, a *mediator.Approval) error {
	rev, err := nextRev(ctx, tx)
	if err != nil {
		return err
	}
	a.Rev = rev
	body, err := encodeApproval(a)
	if err != nil {
		return err
	}
	delivered := ""
	if !a.Delivered.IsZero() {
		delivered = formatTime(a.Delivered)
	}
	const q = `UPDATE approvals SET state = ?, rev = ?, delivered = ?, body = ? WHERE id = ?`
	_, err = tx.ExecContext(ctx, q, a.State, a.Rev, delivered, body, a.ID)
	return err
}

// encodeApproval writes a as JSON without HTML escaping, so arguments read
// back exactly as recorded ("<" stays "<"; the page escapes on output).
func encodeApproval(a *mediator.Approval) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("encode approval: %w", err)
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func scanApproval(row interface{ Scan(...any) error }) (mediator.Approval, error) {
	var body string
	if err := row.Scan(&body); err != nil {
		return mediator.Approval{}, err
	}
	var a mediator.Approval
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		return mediator.Approval{}, fmt.Errorf("decode approval: %w", err)
	}
	return a, nil
}

func getApproval(ctx context.Context, q querier, id string) (mediator.Approval, error) {
	a, err := scanApproval(q.QueryRowContext(ctx, `SELECT body FROM approvals WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w %q", mediator.ErrUnknownApproval, id)
	}
	return a, err
}

func undelivered(ctx context.Context, q querier, key string) (mediator.Approval, bool, error) {
	const sel = `SELECT body FROM approvals WHERE key = ? AND delivered = '' ORDER BY rev DESC LIMIT 1`
	a, err := scanApproval(q.QueryRowContext(ctx, sel, key))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return a, false, nil
	case err != nil:
		return a, false, err
	}
	return a, true, nil
}

// Approval returns the approval with id.
func (s *Store) Approval(ctx context.Context, id string) (mediator.Approval, error) {
	if s.isClosed() {
		return mediator.Approval{}, s.errClosed()
	}
	a, err := getApproval(ctx, s.rdb, id)
	if err != nil {
		return a, fmt.Errorf("read approval: %w", err)
	}
	return a, nil
}

// UndeliveredApproval returns the newest approval for key whose decision
// has not reached an agent, as stored: a pending one past its expiry is
// still pending. Expiring is ExpireApprovals' alone, so that whoever
// expires an approval learns of it (and records it).
func (s *Store) UndeliveredApproval(ctx context.Context, key string, _ time.Time) (mediator.Approval, bool, error) {
	if s.isClosed() {
		return mediator.Approval{}, false, s.errClosed()
	}
	a, ok, err := undelivered(ctx, s.rdb, key)
	if err != nil {
		return a, false, fmt.Errorf("read approval: %w", err)
	}
	return a, ok, nil
}

// DecideApproval adds d to the pending approval id; see
// mediator.ApprovalStore. The reason is required for a denial and capped at
// MaxApprovalReasonBytes (longer is refused, not cut).
func (s *Store) DecideApproval(ctx context.Context, id string, d mediator.ApprovalDecision) (mediator.Approval, error) {
	if err := validDecision(d); err != nil {
		return mediator.Approval{}, err
	}
	if d.At.IsZero() {
		d.At = time.Now()
	}
	var a mediator.Approval
	err := s.writeTx(ctx, "decide approval", func(tx *sql.Tx) error {
		var err error
		if a, err = getApproval(ctx, tx, id); err != nil {
			return err
		}
		if err := applyDecision(&a, d); err != nil {
			return err
		}
		return updateApproval(ctx, tx, &a)
	})
	// A decision after the expiry is refused; the approval is left for
	// ExpireApprovals.
	return a, err
}

// NoteApprovalAsker implements mediator.ApprovalStore.
func (s *Store) NoteApprovalAsker(ctx context.Context, id string, ask mediator.ApprovalAsker) error {
	return s.writeTx(ctx, "note approval asker", func(tx *sql.Tx) error {
		a, err := getApproval(ctx, tx, id)
		if err != nil {
			return err
		}
		if a.Final() || !mediator.AddAsker(&a, ask) {
			return nil
		}
		return updateApproval(ctx, tx, &a)
	})
}

func validDecision(d mediator.ApprovalDecision) error {
	switch {
	case strings.TrimSpace(d.Approver) == "":
		return fmt.Errorf("%w: the decision names no approver", mediator.ErrApprovalForbidden)
	case !d.Approve && strings.TrimSpace(d.Reason) == "":
		return fmt.Errorf("%w: a denial needs a reason", mediator.ErrInvalidRequest)
	case len(d.Reason) > MaxApprovalReasonBytes:
		return fmt.Errorf("%w: the reason is longer than %d bytes", mediator.ErrInvalidRequest, MaxApprovalReasonBytes)
	}
	return nil
}

// applyDecision is the state machine's pending → decided step.
func applyDecision(a *mediator.Approval, d mediator.ApprovalDecision) error {
	switch {
	case a.State != mediator.ApprovalPending:
		return fmt.Errorf("%w: approval %s is %s", mediator.ErrApprovalDecided, a.ID, a.State)
	case !d.At.Before(a.Expires):
		return fmt.Errorf("%w: approval %s expired at %s", mediator.ErrApprovalExpired, a.ID, a.Expires.UTC().Format(time.RFC3339))
	}
	for _, old := range a.Decisions {
		if mediator.SameIdentity(old.Approver, d.Approver) {
			return fmt.Errorf("%w: %s already approved %s; a second approver must decide", mediator.ErrApprovalForbidden, d.Approver, a.ID)
		}
		// Two approvers approve one call: the same arguments, as asked
		// or edited alike.
		if d.Approve && old.Approve && !mediator.SameArguments(old.Arguments, d.Arguments) {
			return fmt.Errorf("%w: %s approved %s %s; approve the same arguments, or deny it (with a reason) for the agent to ask again",
				mediator.ErrApprovalForbidden, old.Approver, a.ID, editWords(old.Arguments))
		}
	}
	a.Decisions = append(a.Decisions, d)
	switch {
	case !d.Approve:
		a.State = mediator.ApprovalDenied
	case len(a.Decisions) >= a.Required:
		a.State = mediator.ApprovalApproved
	default:
		return nil
	}
	a.Decided = d.At
	return nil
}

// editWords says what an approving decision approved.
func editWords(args json.RawMessage) string {
	if len(args) == 0 {
		return "as asked"
	}
	const max = 200
	s := string(args)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return "with the arguments edited to " + s
}

// expireTx marks a pending approval expired inside tx.
func expireTx(ctx context.Context, tx *sql.Tx, a *mediator.Approval, now time.Time) error {
	if a.State != mediator.ApprovalPending {
		return nil
	}
	a.State, a.Decided = mediator.ApprovalExpired, now
	return updateApproval(ctx, tx, a)
}

// DeliverApproval marks the decision of approval id taken by callID; it
// reports false when the approval is pending or another call took it.
func (s *Store) DeliverApproval(ctx context.Context, id, callID string, now time.Time) (bool, error) {
	took := false
	err := s.writeTx(ctx, "deliver approval", func(tx *sql.Tx) error {
		a, err := getApproval(ctx, tx, id)
		if err != nil || a.State == mediator.ApprovalPending || !a.Delivered.IsZero() {
			return err
		}
		a.Delivered, a.DeliveredTo, took = now, callID, true
		return updateApproval(ctx, tx, &a)
	})
	return took, err
}

// ExpireApprovals marks every pending approval whose expiry has passed as
// expired and returns them.
func (s *Store) ExpireApprovals(ctx context.Context, now time.Time) ([]mediator.Approval, error) {
	var out []mediator.Approval
	err := s.writeTx(ctx, "expire approvals", func(tx *sql.Tx) error {
		list, err := queryApprovals(ctx, tx, `SELECT body FROM approvals WHERE state = ? AND expires <= ? ORDER BY rev`,
			mediator.ApprovalPending, formatTime(now))
		if err != nil {
			return err
		}
		for i := range list {
			if err := expireTx(ctx, tx, &list[i], now); err != nil {
				return err
			}
		}
		out = list
		return nil
	})
	return out, err
}

func queryApprovals(ctx context.Context, q querier, sel string, args ...any) ([]mediator.Approval, error) {
	rows, err := q.QueryContext(ctx, sel, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []mediator.Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Approvals lists the approvals matching f, newest (highest rev) first.
func (s *Store) Approvals(ctx context.Context, f mediator.ApprovalFilter) ([]mediator.Approval, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	q, args := approvalsQuery(f)
	out, err := queryApprovals(ctx, s.rdb, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return out, nil
}

func approvalsQuery(f mediator.ApprovalFilter) (string, []any) {
	conds, args := []string{"rev > ?"}, []any{f.AfterRev}
	add := func(cond string, v any) { conds, args = append(conds, cond), append(args, v) }
	if f.State != "" {
		add("state = ?", string(f.State))
	}
	if f.AgentID != "" {
		add("agent_id = ?", f.AgentID)
	}
	if f.Tool != "" {
		add("tool = ?", f.Tool)
	}
	if f.Approver != "" {
		add("EXISTS (SELECT 1 FROM json_each(body, '$.decisions') WHERE json_extract(value, '$.approver') = ?)", f.Approver)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 200
	}
	q := "SELECT body FROM approvals WHERE " + strings.Join(conds, " AND ") + " ORDER BY rev DESC LIMIT ?"
	return q, append(args, limit)
}

// LastApprovalRev returns the highest approval revision (0 when none).
func (s *Store) LastApprovalRev(ctx context.Context) (int64, error) {
	if s.isClosed() {
		return 0, s.errClosed()
	}
	var rev int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT coalesce(max(rev), 0) FROM approvals`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("read approval revision: %w", err)
	}
	return rev, nil
}

func newApprovalID() string {
	return "apr_" + strings.ToLower(rand.Text()[:20])
}

// ApprovalCounts returns how many approvals are in each state (metrics).
func (s *Store) ApprovalCounts(ctx context.Context) (map[mediator.ApprovalState]int, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT state, count(*) FROM approvals GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count approvals: %w", err)
	}
	defer rows.Close()
	out := map[mediator.ApprovalState]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count approvals: %w", err)
		}
		out[mediator.ApprovalState(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count approvals: %w", err)
	}
	return out, nil
}
