package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

var _ mediator.TaskStore = (*Store)(nil)

// tasksSchema is migration 4: the tasks table (stored intents), and the
// audit columns for the fields added to mediator.ChainRecord. The new
// audit columns default to what records written before them held (no
// reasoning, prompt not truncated, no approval), which is also what the
// chain hash omits (see "Chain format" in the package documentation), so
// existing chains verify unchanged.
var tasksSchema = []string{
	`CREATE TABLE tasks (
		id TEXT PRIMARY KEY,
		agent_id TEXT NOT NULL,
		parent_id TEXT NOT NULL DEFAULT '',
		session_id TEXT NOT NULL DEFAULT '',
		source TEXT NOT NULL DEFAULT '',
		purpose TEXT NOT NULL DEFAULT '',
		scope TEXT NOT NULL,
		status TEXT NOT NULL,
		status_by TEXT NOT NULL DEFAULT '',
		status_reason TEXT NOT NULL DEFAULT '',
		prompt TEXT NOT NULL DEFAULT '',
		created TEXT NOT NULL,
		updated TEXT NOT NULL,
		expires TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE INDEX tasks_agent ON tasks(agent_id, created)`,
	`CREATE INDEX tasks_parent ON tasks(parent_id, status)`,
	`CREATE INDEX tasks_session ON tasks(session_id, status)`,
	`CREATE INDEX tasks_status ON tasks(status)`,
	`ALTER TABLE audit ADD COLUMN reasoning TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE audit ADD COLUMN prompt_truncated INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE audit ADD COLUMN approval TEXT`,
	`CREATE INDEX audit_task ON audit(task_id, seq)`,
}

// Limits of Tasks.
const (
	DefaultTaskLimit = 100
	MaxTaskLimit     = 1000
)

// ErrTaskExists is wrapped, together with mediator.ErrInvalidRequest, by
// CreateTask when a task with the same id is already stored.
var ErrTaskExists = errors.New("a task with this id already exists")

// taskColumns lists the tasks columns in the order scanTask reads them.
const taskColumns = `id, agent_id, parent_id, session_id, source, purpose, scope, status,
	status_by, status_reason, prompt, created, updated, expires`

// CreateTask stores t. Its ID and AgentID must not be empty and its ID must
// be new (else the error wraps ErrTaskExists and
// mediator.ErrInvalidRequest); an empty Status is mediator.TaskActive, any
// other must be valid. A zero Created is the current time, a zero Updated
// is Created; a zero Expires is stored as "" (no expiry) and reads back
// zero. Purpose and Prompt are redacted as a record's prompt is; the scope
// is stored as canonical JSON.
func (s *Store) CreateTask(ctx context.Context, t mediator.Task) error {
	if err := s.prepareTask(&t); err != nil {
		return err
	}
	scope, err := mediator.CanonicalValue(t.Scope)
	if err != nil {
		return fmt.Errorf("create task %q: encode scope: %w", t.ID, err)
	}
	expires := ""
	if !t.Expires.IsZero() {
		expires = formatTime(t.Expires)
	}
	return s.writeTx(ctx, fmt.Sprintf("create task %q", t.ID), func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM tasks WHERE id = ?`, t.ID).Scan(&one)
		switch {
		case err == nil:
			return fmt.Errorf("%w (%w)", ErrTaskExists, mediator.ErrInvalidRequest)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		const q = `INSERT INTO tasks(` + taskColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
		_, err = tx.ExecContext(ctx, q, t.ID, t.AgentID, t.ParentID, t.SessionID, t.Source, t.Purpose,
			string(scope), string(t.Status), t.StatusBy, t.StatusReason, t.Prompt,
			formatTime(t.Created), formatTime(t.Updated), expires)
		return err
	})
}

// prepareTask validates t and fills its defaults.
func (s *Store) prepareTask(t *mediator.Task) error {
	switch {
	case t.ID == "":
		return fmt.Errorf("%w: create task: empty task id", mediator.ErrInvalidRequest)
	case t.AgentID == "":
		return fmt.Errorf("%w: create task %q: empty agent id", mediator.ErrInvalidRequest, t.ID)
	case t.Status == "":
		t.Status = mediator.TaskActive
	case !t.Status.Valid():
		return fmt.Errorf("%w: create task %q: unknown status %q", mediator.ErrInvalidRequest, t.ID, t.Status)
	}
	if t.Created.IsZero() {
		t.Created = time.Now()
	}
	if t.Updated.IsZero() {
		t.Updated = t.Created
	}
	for _, f := range []*string{&t.ID, &t.AgentID, &t.ParentID, &t.SessionID, &t.Source,
		&t.StatusBy, &t.StatusReason} {
		*f = strings.ToValidUTF8(*f, "\uFFFD")
	}
	t.Purpose = s.redactor.text(strings.ToValidUTF8(t.Purpose, "\uFFFD"))
	t.Prompt = s.redactor.text(strings.ToValidUTF8(t.Prompt, "\uFFFD"))
	return nil
}

// Task returns the task with id; ok is false when there is none.
func (s *Store) Task(ctx context.Context, id string) (mediator.Task, bool, error) {
	if s.isClosed() {
		return mediator.Task{}, false, s.errClosed()
	}
	t, err := getTask(ctx, s.rdb, id)
	switch {
	case errors.Is(err, mediator.ErrUnknownTask):
		return mediator.Task{}, false, nil
	case err != nil:
		return mediator.Task{}, false, fmt.Errorf("read task %q: %w", id, err)
	}
	return t, true, nil
}

// Tasks returns the tasks matching f, newest first (by Created, then by
// id). f.Limit <= 0 means DefaultTaskLimit; it is at most MaxTaskLimit.
func (s *Store) Tasks(ctx context.Context, f mediator.TaskFilter) ([]mediator.Task, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	q, args := tasksQuery(f)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	var out []mediator.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return out, nil
}

func tasksQuery(f mediator.TaskFilter) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) { conds, args = append(conds, cond), append(args, v) }
	if f.AgentID != "" {
		add("agent_id = ?", f.AgentID)
	}
	if f.ParentID != "" {
		add("parent_id = ?", f.ParentID)
	}
	if f.SessionID != "" {
		add("session_id = ?", f.SessionID)
	}
	if f.Status != "" {
		add("status = ?", string(f.Status))
	}
	q := "SELECT " + taskColumns + " FROM tasks"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY created DESC, id DESC LIMIT ?"
	return q, append(args, boundLimit(f.Limit, DefaultTaskLimit, MaxTaskLimit))
}

// boundLimit returns limit, or def when limit <= 0, at most max.
func boundLimit(limit, def, max int) int {
	if limit <= 0 {
		return def
	}
	return min(limit, max)
}

// SetTaskStatus moves task id to status to, recording by, reason and the
// current time as its update, in one BEGIN IMMEDIATE transaction, and
// returns the updated task. When from is not empty the task must be in one
// of those states. Completed and revoked are final: a task in either state
// is never changed. An unknown id is an error wrapping
// mediator.ErrUnknownTask; a task in the wrong state, one wrapping
// mediator.ErrTaskState that names its current state; an invalid to, one
// wrapping mediator.ErrInvalidRequest.
func (s *Store) SetTaskStatus(ctx context.Context, id string, to mediator.TaskStatus, by, reason string,
	from ...mediator.TaskStatus) (mediator.Task, error) {
	if !to.Valid() {
		return mediator.Task{}, fmt.Errorf("%w: set status of task %q: unknown status %q", mediator.ErrInvalidRequest, id, to)
	}
	by = strings.ToValidUTF8(by, "\uFFFD")
	reason = s.redactor.text(strings.ToValidUTF8(reason, "\uFFFD"))
	var t mediator.Task
	err := s.writeTx(ctx, fmt.Sprintf("set status of task %q", id), func(tx *sql.Tx) error {
		var err error
		if t, err = getTask(ctx, tx, id); err != nil {
			return err
		}
		if err := checkTransition(t.Status, to, from); err != nil {
			return err
		}
		now := time.Now().UTC()
		const q = `UPDATE tasks SET status = ?, status_by = ?, status_reason = ?, updated = ? WHERE id = ?`
		if _, err := tx.ExecContext(ctx, q, string(to), by, reason, formatTime(now), id); err != nil {
			return err
		}
		t.Status, t.StatusBy, t.StatusReason, t.Updated = to, by, reason, now
		return nil
	})
	if err != nil {
		return mediator.Task{}, err
	}
	return t, nil
}

// checkTransition refuses a move of a task in state cur to to: out of a
// final state, or from a state not in from (when from is not empty).
func checkTransition(cur, to mediator.TaskStatus, from []mediator.TaskStatus) error {
	if finalTaskStatus(cur) {
		return fmt.Errorf("%w: the task is %s, a final state; it cannot become %s", mediator.ErrTaskState, cur, to)
	}
	if len(from) > 0 && !slices.Contains(from, cur) {
		want := make([]string, len(from))
		for i, f := range from {
			want[i] = string(f)
		}
		return fmt.Errorf("%w: the task is %s, not %s", mediator.ErrTaskState, cur, strings.Join(want, " or "))
	}
	return nil
}

// finalTaskStatus reports whether no task leaves st.
func finalTaskStatus(st mediator.TaskStatus) bool {
	return st == mediator.TaskCompleted || st == mediator.TaskRevoked
}

// getTask reads task id, or returns an error wrapping mediator.ErrUnknownTask.
func getTask(ctx context.Context, q querier, id string) (mediator.Task, error) {
	t, err := scanTask(q.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("%w %q", mediator.ErrUnknownTask, id)
	}
	return t, err
}

// scanTask reads one row selected with taskColumns.
func scanTask(row interface{ Scan(...any) error }) (mediator.Task, error) {
	var t mediator.Task
	var scope, status, created, updated, expires string
	err := row.Scan(&t.ID, &t.AgentID, &t.ParentID, &t.SessionID, &t.Source, &t.Purpose, &scope, &status,
		&t.StatusBy, &t.StatusReason, &t.Prompt, &created, &updated, &expires)
	if err != nil {
		return mediator.Task{}, err
	}
	t.Status = mediator.TaskStatus(status)
	if err := json.Unmarshal([]byte(scope), &t.Scope); err != nil {
		return mediator.Task{}, fmt.Errorf("task %q: decode scope: %w", t.ID, err)
	}
	if t.Created, err = parseTime(created); err != nil {
		return mediator.Task{}, fmt.Errorf("task %q: created: %w", t.ID, err)
	}
	if t.Updated, err = parseTime(updated); err != nil {
		return mediator.Task{}, fmt.Errorf("task %q: updated: %w", t.ID, err)
	}
	if expires != "" {
		if t.Expires, err = parseTime(expires); err != nil {
			return mediator.Task{}, fmt.Errorf("task %q: expires: %w", t.ID, err)
		}
	}
	return t, nil
}

// parseTime parses a time stored by formatTime.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: %w", s, err)
	}
	return t, nil
}
