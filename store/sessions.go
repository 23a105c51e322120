package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Limits of SessionRecords and TaskRecords.
const (
	DefaultChainViewLimit = 1000
	MaxChainViewLimit     = 100000
)

// Limits of Sessions.
const (
	DefaultSessionLimit = 100
	MaxSessionLimit     = 1000
)

// SessionRecords returns the records of the MCP session sessionID in seq
// order (oldest first). When the session has more than limit records, only
// the newest limit are returned, as Records does with Filter.Limit. limit
// <= 0 means DefaultChainViewLimit; it is at most MaxChainViewLimit. An
// empty sessionID returns no records (records outside any session are not
// a session).
func (s *Store) SessionRecords(ctx context.Context, sessionID string, limit int) ([]mediator.ChainRecord, error) {
	if sessionID == "" {
		return nil, nil
	}
	return s.Records(ctx, Filter{SessionID: sessionID,
		Limit: boundLimit(limit, DefaultChainViewLimit, MaxChainViewLimit)})
}

// TaskRecords returns the records bound to task taskID, as SessionRecords
// does for a session.
func (s *Store) TaskRecords(ctx context.Context, taskID string, limit int) ([]mediator.ChainRecord, error) {
	if taskID == "" {
		return nil, nil
	}
	return s.Records(ctx, Filter{TaskID: taskID,
		Limit: boundLimit(limit, DefaultChainViewLimit, MaxChainViewLimit)})
}

// SessionFilter selects sessions for Sessions. Zero fields match
// everything.
type SessionFilter struct {
	// AgentID and TaskID keep sessions with at least one record of that
	// agent or task; only those records are counted.
	AgentID string
	TaskID  string
	// Since keeps sessions with a record whose Time is at or after it;
	// only those records are counted.
	Since time.Time
	// Limit keeps the Limit sessions with the newest records (<= 0:
	// DefaultSessionLimit; at most MaxSessionLimit).
	Limit int
}

// SessionSummary describes the records of one MCP session in the chain.
type SessionSummary struct {
	SessionID string `json:"session_id"`
	// AgentID, TaskID and Transport are those of the session's last
	// (counted) record.
	AgentID   string `json:"agent_id,omitempty"`
	TaskID    string `json:"task_id,omitempty"`
	Transport string `json:"transport,omitempty"`
	// Records counts the session's records; FirstSeq and LastSeq are the
	// first and last of them, First and Last their times.
	Records  int64     `json:"records"`
	FirstSeq int64     `json:"first_seq"`
	LastSeq  int64     `json:"last_seq"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
}

// Sessions lists the sessions that have records matching f, the session
// with the newest record first. Records without a session id are not
// listed. It reads every matching record's seq (through an index when
// f.AgentID or f.TaskID is set).
func (s *Store) Sessions(ctx context.Context, f SessionFilter) ([]SessionSummary, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	q, args := sessionsQuery(f)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%w: list sessions: %w", mediator.ErrAudit, err)
	}
	defer rows.Close()
	var out []SessionSummary
	for rows.Next() {
		var ss SessionSummary
		var first, last string
		err := rows.Scan(&ss.SessionID, &ss.AgentID, &ss.TaskID, &ss.Transport, &ss.Records,
			&ss.FirstSeq, &ss.LastSeq, &first, &last)
		if err == nil {
			ss.First, err = parseTime(first)
		}
		if err == nil {
			ss.Last, err = parseTime(last)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: list sessions: %w", mediator.ErrAudit, err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: list sessions: %w", mediator.ErrAudit, err)
	}
	return out, nil
}

func sessionsQuery(f SessionFilter) (string, []any) {
	conds, args := []string{"session_id != ''"}, []any(nil)
	add := func(cond string, v any) { conds, args = append(conds, cond), append(args, v) }
	if f.AgentID != "" {
		add("agent_id = ?", f.AgentID)
	}
	if f.TaskID != "" {
		add("task_id = ?", f.TaskID)
	}
	if !f.Since.IsZero() {
		add("time >= ?", formatTime(f.Since))
	}
	q := `SELECT g.session_id, l.agent_id, l.task_id, l.transport, g.n, g.first_seq, g.last_seq, f.time, l.time
	FROM (SELECT session_id, count(*) AS n, min(seq) AS first_seq, max(seq) AS last_seq
		FROM audit WHERE ` + strings.Join(conds, " AND ") + `
		GROUP BY session_id ORDER BY last_seq DESC LIMIT ?) AS g
	JOIN audit AS f ON f.seq = g.first_seq
	JOIN audit AS l ON l.seq = g.last_seq
	ORDER BY g.last_seq DESC`
	return q, append(args, boundLimit(f.Limit, DefaultSessionLimit, MaxSessionLimit))
}
