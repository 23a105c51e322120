package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

var _ mediator.BehaviourStore = (*Store)(nil)

// behaviourSchema is migration 6: behavioural baselines, agents' trust,
// and the audit column for mediator.ChainRecord.Behaviour. The audit column
// is NULL for records written before it, which is also what the chain hash
// omits, so existing chains verify unchanged.
//
// Each table's rev is assigned inside the write transaction as one more
// than the table's largest, and every write transaction begins with BEGIN
// IMMEDIATE, so revs are unique and committed in increasing order across
// every process sharing the file: a reader polling rev > after never misses
// a row.
var behaviourSchema = []string{
	`ALTER TABLE audit ADD COLUMN behaviour TEXT`,
	`CREATE TABLE behaviour_profiles (
		key TEXT PRIMARY KEY,
		agent_id TEXT NOT NULL,
		version TEXT NOT NULL DEFAULT '',
		data BLOB NOT NULL,
		rev INTEGER NOT NULL,
		updated_at TEXT NOT NULL
	)`,
	`CREATE INDEX behaviour_profiles_rev ON behaviour_profiles(rev)`,
	`CREATE INDEX behaviour_profiles_agent ON behaviour_profiles(agent_id)`,
	`CREATE TABLE agent_trust (
		agent_id TEXT PRIMARY KEY,
		level TEXT NOT NULL CHECK (level IN ('high', 'medium', 'low', 'none')),
		ceiling TEXT NOT NULL DEFAULT '',
		reason TEXT NOT NULL DEFAULT '',
		by_whom TEXT NOT NULL DEFAULT '',
		changed_at TEXT NOT NULL,
		rev INTEGER NOT NULL
	)`,
	`CREATE INDEX agent_trust_rev ON agent_trust(rev)`,
}

// Limits of the behaviour store.
const (
	// MaxProfileBytes caps the data of one stored profile.
	MaxProfileBytes = 256 << 10
	// MaxBehaviourIDBytes caps a profile's key, agent id and version, and
	// a trust state's agent id and author.
	MaxBehaviourIDBytes = 1024
	// MaxTrustReasonBytes caps a trust state's reason; a longer one is cut
	// at a UTF-8 boundary and ends with "…".
	MaxTrustReasonBytes = 4096
	// DefaultBehaviourLimit is the limit of ProfilesSince and TrustSince
	// when theirs is not positive.
	DefaultBehaviourLimit = 1000
)

// MergeProfile stores the profile of key in one BEGIN IMMEDIATE write
// transaction: merge gets the stored data (nil when there is none) and
// returns the data to store, which gets a new Rev and the current time as
// Updated. Because the transaction holds the database's write lock, merges
// by any process sharing the file never lose one another's updates; merge
// should therefore be quick and must not use the store. When merge fails,
// nothing is stored and its error is returned wrapped. A key or agent id
// that is empty or longer than MaxBehaviourIDBytes, a longer version, and
// data longer than MaxProfileBytes are refused with an error wrapping
// mediator.ErrInvalidRequest.
func (s *Store) MergeProfile(ctx context.Context, key, agentID, version string,
	merge func(stored []byte) ([]byte, error)) (mediator.ProfileRow, error) {
	if err := validBehaviourID("profile key", key); err != nil {
		return mediator.ProfileRow{}, fmt.Errorf("merge behaviour profile: %w", err)
	}
	if err := validBehaviourID("agent id", agentID); err != nil {
		return mediator.ProfileRow{}, fmt.Errorf("merge behaviour profile %q: %w", key, err)
	}
	if len(version) > MaxBehaviourIDBytes {
		return mediator.ProfileRow{}, fmt.Errorf("%w: merge behaviour profile %q: the version is longer than %d bytes",
			mediator.ErrInvalidRequest, key, MaxBehaviourIDBytes)
	}
	if merge == nil {
		return mediator.ProfileRow{}, fmt.Errorf("%w: merge behaviour profile %q: no merge function",
			mediator.ErrInvalidRequest, key)
	}
	p := mediator.ProfileRow{Key: key, AgentID: agentID, Version: version}
	err := s.writeTx(ctx, fmt.Sprintf("merge behaviour profile %q", key), func(tx *sql.Tx) error {
		var stored []byte
		err := tx.QueryRowContext(ctx, `SELECT data FROM behaviour_profiles WHERE key = ?`, key).Scan(&stored)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			stored = nil
		case err != nil:
			return fmt.Errorf("read: %w", err)
		case stored == nil:
			stored = []byte{} // present but empty: tell it from absent
		}
		data, err := merge(stored)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		if len(data) > MaxProfileBytes {
			return fmt.Errorf("%w: the merged data is %d bytes, more than the cap of %d bytes (MaxProfileBytes)",
				mediator.ErrInvalidRequest, len(data), MaxProfileBytes)
		}
		if data == nil {
			data = []byte{}
		}
		updated := formatTime(time.Now())
		const q = `INSERT INTO behaviour_profiles(key, agent_id, version, data, rev, updated_at)
			VALUES (?, ?, ?, ?, (SELECT coalesce(max(rev), 0) + 1 FROM behaviour_profiles), ?)
			ON CONFLICT(key) DO UPDATE SET agent_id = excluded.agent_id, version = excluded.version,
				data = excluded.data, rev = excluded.rev, updated_at = excluded.updated_at
			RETURNING rev`
		if err := tx.QueryRowContext(ctx, q, key, agentID, version, data, updated).Scan(&p.Rev); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		p.Data = data
		p.Updated, err = time.Parse(time.RFC3339Nano, updated)
		return err
	})
	if err != nil {
		return mediator.ProfileRow{}, err
	}
	return p, nil
}

// Profile returns the stored profile of key; ok is false when there is
// none. It reads what every process sharing the database last committed.
func (s *Store) Profile(ctx context.Context, key string) (mediator.ProfileRow, bool, error) {
	if s.isClosed() {
		return mediator.ProfileRow{}, false, s.errClosed()
	}
	const q = `SELECT key, agent_id, version, data, rev, updated_at FROM behaviour_profiles WHERE key = ?`
	p, err := scanProfile(s.rdb.QueryRowContext(ctx, q, key))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return mediator.ProfileRow{}, false, nil
	case err != nil:
		return mediator.ProfileRow{}, false, fmt.Errorf("read behaviour profile %q: %w", key, err)
	}
	return p, true, nil
}

// ProfilesSince returns up to limit profiles with Rev > after, by Rev
// (limit <= 0 is DefaultBehaviourLimit). Polling it with the last Rev seen
// picks up the profiles written by any process sharing the database; a
// profile written again comes back with its new Rev.
func (s *Store) ProfilesSince(ctx context.Context, after int64, limit int) ([]mediator.ProfileRow, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	if limit <= 0 {
		limit = DefaultBehaviourLimit
	}
	const q = `SELECT key, agent_id, version, data, rev, updated_at FROM behaviour_profiles
		WHERE rev > ? ORDER BY rev LIMIT ?`
	rows, err := s.rdb.QueryContext(ctx, q, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read behaviour profiles: %w", err)
	}
	defer rows.Close()
	var out []mediator.ProfileRow
	for rows.Next() {
		p, err := scanProfile(rows)
		if err != nil {
			return nil, fmt.Errorf("read behaviour profiles: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read behaviour profiles: %w", err)
	}
	return out, nil
}

// scanner is what both *sql.Row and *sql.Rows offer.
type scanner interface{ Scan(dest ...any) error }

// scanProfile reads one behaviour_profiles row selected as by Profile.
func scanProfile(r scanner) (mediator.ProfileRow, error) {
	var p mediator.ProfileRow
	var updated string
	if err := r.Scan(&p.Key, &p.AgentID, &p.Version, &p.Data, &p.Rev, &updated); err != nil {
		return mediator.ProfileRow{}, err
	}
	if p.Data == nil {
		p.Data = []byte{}
	}
	var err error
	if p.Updated, err = time.Parse(time.RFC3339Nano, updated); err != nil {
		return mediator.ProfileRow{}, fmt.Errorf("profile %q: bad time %q: %w", p.Key, updated, err)
	}
	return p, nil
}

// SetTrust stores t as its agent's trust, replacing the earlier state, and
// returns it as stored, with its new Rev. A zero t.Changed is the current
// time; a reason longer than MaxTrustReasonBytes is cut. An unknown level
// or ceiling ("" is allowed as the ceiling and means high), and an agent
// id that is empty or longer than MaxBehaviourIDBytes, are refused with an
// error wrapping mediator.ErrInvalidRequest.
func (s *Store) SetTrust(ctx context.Context, t mediator.TrustState) (mediator.TrustState, error) {
	if err := validBehaviourID("agent id", t.AgentID); err != nil {
		return mediator.TrustState{}, fmt.Errorf("set trust: %w", err)
	}
	var err error
	if t.Level, err = mediator.ParseTrustLevel(string(t.Level)); err != nil {
		return mediator.TrustState{}, fmt.Errorf("set trust of %q: level: %w", t.AgentID, err)
	}
	if t.Ceiling != "" {
		if t.Ceiling, err = mediator.ParseTrustLevel(string(t.Ceiling)); err != nil {
			return mediator.TrustState{}, fmt.Errorf("set trust of %q: ceiling: %w", t.AgentID, err)
		}
	}
	capText(&t.Reason, MaxTrustReasonBytes)
	capText(&t.By, MaxBehaviourIDBytes)
	if t.Changed.IsZero() {
		t.Changed = time.Now()
	}
	changed := formatTime(t.Changed)
	if t.Changed, err = time.Parse(time.RFC3339Nano, changed); err != nil {
		return mediator.TrustState{}, fmt.Errorf("%w: set trust of %q: time %v cannot be stored",
			mediator.ErrInvalidRequest, t.AgentID, t.Changed)
	}
	err = s.writeTx(ctx, fmt.Sprintf("set trust of %q", t.AgentID), func(tx *sql.Tx) error {
		const q = `INSERT INTO agent_trust(agent_id, level, ceiling, reason, by_whom, changed_at, rev)
			VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(rev), 0) + 1 FROM agent_trust))
			ON CONFLICT(agent_id) DO UPDATE SET level = excluded.level, ceiling = excluded.ceiling,
				reason = excluded.reason, by_whom = excluded.by_whom, changed_at = excluded.changed_at,
				rev = excluded.rev
			RETURNING rev`
		return tx.QueryRowContext(ctx, q, t.AgentID, string(t.Level), string(t.Ceiling), t.Reason, t.By,
			changed).Scan(&t.Rev)
	})
	if err != nil {
		return mediator.TrustState{}, err
	}
	return t, nil
}

// TrustSince returns up to limit trust states with Rev > after, by Rev
// (limit <= 0 is DefaultBehaviourLimit). Polling it with the last Rev seen
// picks up the changes made by any process sharing the database.
func (s *Store) TrustSince(ctx context.Context, after int64, limit int) ([]mediator.TrustState, error) {
	if s.isClosed() {
		return nil, s.errClosed()
	}
	if limit <= 0 {
		limit = DefaultBehaviourLimit
	}
	const q = `SELECT agent_id, level, ceiling, reason, by_whom, changed_at, rev FROM agent_trust
		WHERE rev > ? ORDER BY rev LIMIT ?`
	rows, err := s.rdb.QueryContext(ctx, q, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read trust: %w", err)
	}
	defer rows.Close()
	var out []mediator.TrustState
	for rows.Next() {
		var t mediator.TrustState
		var changed string
		if err := rows.Scan(&t.AgentID, &t.Level, &t.Ceiling, &t.Reason, &t.By, &changed, &t.Rev); err != nil {
			return nil, fmt.Errorf("read trust: %w", err)
		}
		if t.Changed, err = time.Parse(time.RFC3339Nano, changed); err != nil {
			return nil, fmt.Errorf("read trust: agent %q: bad time %q: %w", t.AgentID, changed, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read trust: %w", err)
	}
	return out, nil
}

// validBehaviourID checks that id, named what, is 1..MaxBehaviourIDBytes
// bytes long.
func validBehaviourID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty %s", mediator.ErrInvalidRequest, what)
	case len(id) > MaxBehaviourIDBytes:
		return fmt.Errorf("%w: the %s is %d bytes, longer than %d", mediator.ErrInvalidRequest, what,
			len(id), MaxBehaviourIDBytes)
	}
	return nil
}
