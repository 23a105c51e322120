package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

var _ mediator.RevocationStore = (*Store)(nil)

// smallWriteTimeout bounds one small write (a revocation, a setting), lock
// wait included.
const smallWriteTimeout = 30 * time.Second

// ErrInvalidRevocation is wrapped by Revoke when the revocation does not
// name exactly one of a token id, a task id or an agent id.
var ErrInvalidRevocation = errors.New("invalid revocation")

// Revoke records r durably and returns once it is committed. Exactly one of
// r.JTI, r.TaskID and r.AgentID must be set; a zero r.At is the current
// time. The store assigns r.Seq; revocations are append-only. Every
// process sharing the database sees r through RevocationsSince.
//
// Revoke writes on the store's one write connection in its own short
// BEGIN IMMEDIATE transaction, between the audit writer's batches, rather
// than through the audit batcher.
func (s *Store) Revoke(ctx context.Context, r mediator.Revocation) error {
	if err := validRevocation(r); err != nil {
		return err
	}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	const q = `INSERT INTO revocations(jti, task_id, agent_id, reason, at) VALUES (?, ?, ?, ?, ?)`
	return s.smallWrite(ctx, "revoke", q, r.JTI, r.TaskID, r.AgentID, r.Reason, formatTime(r.At))
}

// validRevocation checks that r names exactly one target.
func validRevocation(r mediator.Revocation) error {
	n := 0
	for _, v := range []string{r.JTI, r.TaskID, r.AgentID} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: set exactly one of the token id (jti), the task id or the agent id (got %d)",
			ErrInvalidRevocation, n)
	}
	return nil
}

// RevocationsSince returns the revocations with Seq > after, oldest first.
// Polling it with the last Seq seen picks up revocations made by any
// process sharing the database.
func (s *Store) RevocationsSince(ctx context.Context, after int64) ([]mediator.Revocation, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	const q = `SELECT seq, jti, task_id, agent_id, reason, at FROM revocations WHERE seq > ? ORDER BY seq`
	rows, err := s.rdb.QueryContext(ctx, q, after)
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	defer rows.Close()
	var out []mediator.Revocation
	for rows.Next() {
		var r mediator.Revocation
		var at string
		if err := rows.Scan(&r.Seq, &r.JTI, &r.TaskID, &r.AgentID, &r.Reason, &at); err != nil {
			return nil, fmt.Errorf("read revocations: %w", err)
		}
		if r.At, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("read revocations: seq %d: bad time %q: %w", r.Seq, at, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	return out, nil
}

// smallWrite runs one statement in its own transaction on the write
// connection. The connection pool holds one connection, so the statement
// waits for the audit writer's batch in progress, if any; the transaction
// begins with BEGIN IMMEDIATE (see dsn), so it also waits, up to the busy
// timeout, for other processes writing the same file.
func (s *Store) smallWrite(ctx context.Context, what, q string, args ...any) error {
	return s.writeTx(ctx, what, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}
