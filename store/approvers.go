package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// AddGrant stores g: calls of g.Tool in g's scope whose canonical arguments
// fully match g.Pattern run without a new approval until g.Expires.
func (s *Store) AddGrant(ctx context.Context, g mediator.ApprovalGrant) error {
	if g.ID == "" {
		g.ID = "grt_" + newApprovalID()[4:]
	}
	if g.Created.IsZero() {
		g.Created = time.Now()
	}
	const q = `INSERT INTO approval_grants(id, approval_id, agent_id, task_id, session_id, tool, pattern,
		approver, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	return s.smallWrite(ctx, "add grant", q, g.ID, g.ApprovalID, g.AgentID, g.TaskID, g.SessionID, g.Tool,
		g.Pattern, g.Approver, formatTime(g.Created), formatTime(g.Expires))
}

// MatchingGrants returns the grants for the scope and tool that have not
// expired at now, newest first.
func (s *Store) MatchingGrants(ctx context.Context, agentID, taskID, sessionID, tool string, now time.Time) ([]mediator.ApprovalGrant, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	const q = `SELECT id, approval_id, agent_id, task_id, session_id, tool, pattern, approver, created, expires
		FROM approval_grants WHERE agent_id = ? AND task_id = ? AND session_id = ? AND tool = ? AND expires > ?
		ORDER BY created DESC`
	rows, err := s.rdb.QueryContext(ctx, q, agentID, taskID, sessionID, tool, formatTime(now))
	if err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	defer rows.Close()
	var out []mediator.ApprovalGrant
	for rows.Next() {
		var g mediator.ApprovalGrant
		var created, expires string
		if err := rows.Scan(&g.ID, &g.ApprovalID, &g.AgentID, &g.TaskID, &g.SessionID, &g.Tool, &g.Pattern,
			&g.Approver, &created, &expires); err != nil {
			return nil, fmt.Errorf("read grants: %w", err)
		}
		g.Created, _ = time.Parse(time.RFC3339Nano, created)
		g.Expires, _ = time.Parse(time.RFC3339Nano, expires)
		out = append(out, g)
	}
	return out, rows.Err()
}

// PutApprover creates or replaces the account a.Name.
func (s *Store) PutApprover(ctx context.Context, a mediator.ApproverAccount) error {
	if err := mediator.CheckIdentity(a.Name); err != nil {
		return fmt.Errorf("%w: approver name: %w", mediator.ErrInvalidRequest, err)
	}
	if a.Name == "" || !mediator.ValidApproverRole(a.Role) || a.PasswordHash == "" {
		return fmt.Errorf("%w: an approver needs a name, a role (approver, admin, auditor) and a password hash",
			mediator.ErrInvalidRequest)
	}
	// One person, one account: "Alice" beside "alice" (or a look-alike of
	// it) would be a second identity for separation of duties to miss.
	existing, err := s.Approvers(ctx)
	if err != nil {
		return err
	}
	for _, e := range existing {
		if e.Name != a.Name && mediator.SameIdentity(e.Name, a.Name) {
			return fmt.Errorf("%w: approver name %s: the account %s already has that name under another spelling; "+
				"change that account instead", mediator.ErrInvalidRequest, mediator.QuoteIdentity(a.Name), mediator.QuoteIdentity(e.Name))
		}
	}
	now := formatTime(time.Now())
	const q = `INSERT INTO approvers(name, role, password_hash, created, updated) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash,
		updated = excluded.updated`
	return s.smallWrite(ctx, "put approver", q, a.Name, string(a.Role), a.PasswordHash, now, now)
}

// DeleteApprover removes the account name.
func (s *Store) DeleteApprover(ctx context.Context, name string) error {
	if _, err := s.Approver(ctx, name); err != nil {
		return err
	}
	return s.smallWrite(ctx, "delete approver", `DELETE FROM approvers WHERE name = ?`, name)
}

// Approver returns the account name.
func (s *Store) Approver(ctx context.Context, name string) (mediator.ApproverAccount, error) {
	list, err := s.approvers(ctx, `WHERE name = ?`, name)
	if err != nil {
		return mediator.ApproverAccount{}, err
	}
	if len(list) == 0 {
		return mediator.ApproverAccount{}, fmt.Errorf("%w %q", mediator.ErrUnknownApprover, name)
	}
	return list[0], nil
}

// Approvers lists every account by name.
func (s *Store) Approvers(ctx context.Context) ([]mediator.ApproverAccount, error) {
	return s.approvers(ctx, "")
}

func (s *Store) approvers(ctx context.Context, where string, args ...any) ([]mediator.ApproverAccount, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, role, password_hash, created, updated FROM approvers `+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("read approvers: %w", err)
	}
	defer rows.Close()
	var out []mediator.ApproverAccount
	for rows.Next() {
		a, err := scanApprover(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func scanApprover(rows *sql.Rows) (mediator.ApproverAccount, error) {
	var a mediator.ApproverAccount
	var role, created, updated string
	if err := rows.Scan(&a.Name, &role, &a.PasswordHash, &created, &updated); err != nil {
		return a, fmt.Errorf("read approvers: %w", err)
	}
	a.Role = mediator.ApproverRole(role)
	a.Created, _ = time.Parse(time.RFC3339Nano, created)
	a.Updated, _ = time.Parse(time.RFC3339Nano, updated)
	return a, nil
}
