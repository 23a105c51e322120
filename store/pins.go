package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

var _ mediator.PinStore = (*Store)(nil)

// pinsSchema is migration 9: the tool-supply pins (one row per upstream
// tool, by its original name), the hash of each server's pinned tool set,
// and the audit column for mediator.ChainRecord.Scan.
var pinsSchema = []string{
	`CREATE TABLE tool_pins (
		server TEXT NOT NULL,
		tool TEXT NOT NULL,
		state TEXT NOT NULL CHECK (state IN ('pinned', 'new', 'changed', 'rejected')),
		hash TEXT NOT NULL DEFAULT '',
		definition TEXT,
		seen_hash TEXT NOT NULL DEFAULT '',
		seen_definition TEXT,
		findings TEXT,
		first_seen TEXT NOT NULL,
		updated TEXT NOT NULL,
		reviewer TEXT NOT NULL DEFAULT '',
		note TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (server, tool)
	)`,
	`CREATE TABLE tool_sets (
		server TEXT PRIMARY KEY,
		set_hash TEXT NOT NULL,
		updated TEXT NOT NULL
	)`,
	`ALTER TABLE audit ADD COLUMN scan TEXT`,
}

// Bounds on what a pin stores.
const (
	maxPinDefinition = 1 << 20
	maxPinNote       = 4 << 10
)

// ToolPins returns the pins of server's tools, by tool name. A row that
// does not decode is an error: the caller fails closed.
func (s *Store) ToolPins(ctx context.Context, server string) ([]mediator.ToolPin, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT server, tool, state, hash, definition, seen_hash, seen_definition,
		findings, first_seen, updated, reviewer, note FROM tool_pins WHERE server = ? ORDER BY tool`, server)
	if err != nil {
		return nil, fmt.Errorf("read tool pins of %q: %w", server, err)
	}
	defer rows.Close()
	var out []mediator.ToolPin
	for rows.Next() {
		p, err := scanPin(rows)
		if err != nil {
			return nil, fmt.Errorf("read tool pins of %q: %w", server, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tool pins of %q: %w", server, err)
	}
	return out, nil
}

func scanPin(rows interface{ Scan(...any) error }) (mediator.ToolPin, error) {
	var p mediator.ToolPin
	var state, first, updated string
	var def, seen, findings sql.NullString
	if err := rows.Scan(&p.Server, &p.Tool, &state, &p.Hash, &def, &p.SeenHash, &seen, &findings,
		&first, &updated, &p.Reviewer, &p.Note); err != nil {
		return p, err
	}
	p.State = mediator.PinState(state)
	if def.Valid {
		p.Definition = json.RawMessage(def.String)
	}
	if seen.Valid {
		p.SeenDefinition = json.RawMessage(seen.String)
	}
	if findings.Valid {
		if err := json.Unmarshal([]byte(findings.String), &p.Findings); err != nil {
			return p, fmt.Errorf("tool %q: findings do not decode: %w", p.Tool, err)
		}
	}
	var err error
	if p.FirstSeen, err = time.Parse(time.RFC3339Nano, first); err != nil {
		return p, fmt.Errorf("tool %q: first_seen: %w", p.Tool, err)
	}
	if p.Updated, err = time.Parse(time.RFC3339Nano, updated); err != nil {
		return p, fmt.Errorf("tool %q: updated: %w", p.Tool, err)
	}
	for _, d := range []json.RawMessage{p.Definition, p.SeenDefinition} {
		if d != nil && !json.Valid(d) {
			return p, fmt.Errorf("tool %q: stored definition is not JSON", p.Tool)
		}
	}
	return p, nil
}

// PutToolPins inserts or replaces pins of server and records its tool-set
// hash, in one transaction.
func (s *Store) PutToolPins(ctx context.Context, server, setHash string, pins []mediator.ToolPin) error {
	for _, p := range pins {
		if p.Server != server || p.Tool == "" || len(p.Definition) > maxPinDefinition || len(p.SeenDefinition) > maxPinDefinition {
			return fmt.Errorf("put tool pins of %q: pin of %q is for another server, unnamed or over %d bytes", server, p.Tool, maxPinDefinition)
		}
	}
	return s.writeTx(ctx, fmt.Sprintf("put tool pins of %q", server), func(tx *sql.Tx) error {
		const q = `INSERT OR REPLACE INTO tool_pins(server, tool, state, hash, definition, seen_hash, seen_definition,
			findings, first_seen, updated, reviewer, note) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`
		for _, p := range pins {
			if err := putPin(ctx, tx, q, p); err != nil {
				return err
			}
		}
		if setHash == "" {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO tool_sets(server, set_hash, updated) VALUES (?,?,?)`,
			server, setHash, formatTime(time.Now()))
		return err
	})
}

func putPin(ctx context.Context, tx *sql.Tx, q string, p mediator.ToolPin) error {
	var findings any
	if len(p.Findings) > 0 {
		b, err := json.Marshal(p.Findings)
		if err != nil {
			return err
		}
		findings = string(b)
	}
	if p.FirstSeen.IsZero() {
		p.FirstSeen = time.Now()
	}
	if p.Updated.IsZero() {
		p.Updated = time.Now()
	}
	_, err := tx.ExecContext(ctx, q, p.Server, p.Tool, string(p.State), p.Hash, rawOrNull(p.Definition),
		p.SeenHash, rawOrNull(p.SeenDefinition), findings, formatTime(p.FirstSeen), formatTime(p.Updated),
		p.Reviewer, p.Note)
	return err
}

func rawOrNull(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// PinnedServers returns the upstreams that have tool pins, sorted.
func (s *Store) PinnedServers(ctx context.Context) ([]string, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT DISTINCT server FROM tool_pins ORDER BY server`)
	if err != nil {
		return nil, fmt.Errorf("list pinned upstreams: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list pinned upstreams: %w", err)
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// ToolSetHash returns the stored hash of server's tool set ("" when none).
func (s *Store) ToolSetHash(ctx context.Context, server string) (string, error) {
	if s.isClosed() {
		return "", s.errClosed()
	}
	var h string
	err := s.rdb.QueryRowContext(ctx, `SELECT set_hash FROM tool_sets WHERE server = ?`, server).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the tool set of %q: %w", server, err)
	}
	return h, nil
}

// ReviewToolPin approves or rejects the definition of server's tool that
// has hash seenHash. Approving makes it the pinned definition; rejecting
// keeps the old pin (if any) and withholds the tool until the upstream
// offers the pinned definition again or a later review approves.
func (s *Store) ReviewToolPin(ctx context.Context, server, tool, seenHash string, approve bool, reviewer, note string) (mediator.ToolPin, error) {
	if len(note) > maxPinNote {
		note = note[:maxPinNote]
	}
	var out mediator.ToolPin
	err := s.writeTx(ctx, fmt.Sprintf("review tool %q of %q", tool, server), func(tx *sql.Tx) error {
		row := tx.QueryRowContext(ctx, `SELECT server, tool, state, hash, definition, seen_hash, seen_definition,
			findings, first_seen, updated, reviewer, note FROM tool_pins WHERE server = ? AND tool = ?`, server, tool)
		p, err := scanPin(row)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: upstream %q has no tool %q", mediator.ErrPinNotFound, server, tool)
		}
		if err != nil {
			return err
		}
		offered := p.SeenHash
		if offered == "" {
			offered = p.Hash
		}
		if seenHash == "" || seenHash != offered {
			return fmt.Errorf("%w: the review names definition %s, the upstream now offers %s; show the review again",
				mediator.ErrReviewStale, shortHash(seenHash), shortHash(offered))
		}
		switch {
		case approve && p.SeenDefinition != nil:
			p.Hash, p.Definition = p.SeenHash, p.SeenDefinition
			fallthrough
		case approve:
			p.State, p.SeenHash, p.SeenDefinition, p.Findings = mediator.PinPinned, "", nil, nil
		default:
			p.State = mediator.PinRejected
		}
		p.Reviewer, p.Note, p.Updated = reviewer, note, time.Now()
		const q = `INSERT OR REPLACE INTO tool_pins(server, tool, state, hash, definition, seen_hash, seen_definition,
			findings, first_seen, updated, reviewer, note) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`
		out = p
		return putPin(ctx, tx, q, p)
	})
	return out, err
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}
