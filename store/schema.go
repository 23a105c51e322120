package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrSchemaTooNew is wrapped by Open when the database was migrated by a
// newer build than this one.
var ErrSchemaTooNew = errors.New("database schema is newer than this build supports")

// migration is one step of the schema. Versions start at 1 and increase by
// one; each migration runs in its own transaction.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations returns the schema history, oldest first. Append only: never
// edit a migration that has shipped.
func migrations() []migration {
	return []migration{{
		version: 1,
		name:    "audit chain",
		stmts: []string{
			`CREATE TABLE audit (
				seq INTEGER PRIMARY KEY,
				id TEXT NOT NULL UNIQUE,
				time TEXT NOT NULL,
				session_id TEXT NOT NULL DEFAULT '',
				transport TEXT NOT NULL DEFAULT '',
				agent_id TEXT NOT NULL DEFAULT '',
				task_id TEXT NOT NULL DEFAULT '',
				method TEXT NOT NULL DEFAULT '',
				kind TEXT NOT NULL DEFAULT '',
				server TEXT NOT NULL DEFAULT '',
				name TEXT NOT NULL DEFAULT '',
				tool_hash TEXT NOT NULL DEFAULT '',
				prompt TEXT NOT NULL DEFAULT '',
				arguments TEXT,
				intent TEXT,
				decision_effect TEXT NOT NULL DEFAULT '',
				decision_rule TEXT NOT NULL DEFAULT '',
				decision_reason TEXT NOT NULL DEFAULT '',
				decision_policy_version TEXT NOT NULL DEFAULT '',
				decision_shadow INTEGER NOT NULL DEFAULT 0,
				outcome TEXT NOT NULL DEFAULT '',
				error TEXT NOT NULL DEFAULT '',
				result TEXT,
				truncated INTEGER NOT NULL DEFAULT 0,
				duration_us INTEGER NOT NULL DEFAULT 0,
				upstream_us INTEGER NOT NULL DEFAULT 0,
				prev_hash TEXT NOT NULL,
				hash TEXT NOT NULL
			)`,
			`CREATE INDEX audit_time ON audit(time)`,
			`CREATE INDEX audit_session ON audit(session_id, seq)`,
			`CREATE INDEX audit_agent ON audit(agent_id, seq)`,
			`CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
				BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused'); END`,
			`CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
				BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused'); END`,
		},
	}, {
		version: 2,
		name:    "revocations and settings",
		stmts: []string{
			`CREATE TABLE revocations (
				seq INTEGER PRIMARY KEY,
				jti TEXT NOT NULL DEFAULT '',
				task_id TEXT NOT NULL DEFAULT '',
				agent_id TEXT NOT NULL DEFAULT '',
				reason TEXT NOT NULL DEFAULT '',
				at TEXT NOT NULL,
				CHECK ((jti != '') + (task_id != '') + (agent_id != '') = 1)
			)`,
			`CREATE TRIGGER revocations_no_update BEFORE UPDATE ON revocations
				BEGIN SELECT RAISE(ABORT, 'revocations are append-only: UPDATE refused'); END`,
			`CREATE TRIGGER revocations_no_delete BEFORE DELETE ON revocations
				BEGIN SELECT RAISE(ABORT, 'revocations are append-only: DELETE refused'); END`,
			`CREATE TABLE settings (
				key TEXT PRIMARY KEY,
				value TEXT NOT NULL,
				updated_at TEXT NOT NULL
			)`,
		},
	}, {
		version: 3,
		name:    "approvals",
		stmts:   approvalsSchema,
	}, {
		version: 4,
		name:    "tasks; reasoning, prompt truncation and approval in the audit chain",
		stmts:   tasksSchema,
	}, {
		version: 5,
		name:    "remote address in the audit chain",
		stmts:   []string{`ALTER TABLE audit ADD COLUMN remote_addr TEXT NOT NULL DEFAULT ''`},
	}, {
		version: 6,
		name:    "behaviour profiles and trust; behaviour in the audit chain",
		stmts:   behaviourSchema,
	}, {
		version: 7,
		name:    "write-ahead: forwarding records and their outcomes",
		stmts: []string{
			`ALTER TABLE audit ADD COLUMN ref TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE audit ADD COLUMN writer TEXT NOT NULL DEFAULT ''`,
			`CREATE INDEX audit_ref ON audit(ref) WHERE ref != ''`,
			`CREATE INDEX audit_forwarding ON audit(seq) WHERE outcome = 'forwarding'`,
		},
	}, {
		version: 8,
		name:    "chain base: where a pruned chain starts",
		stmts: []string{
			`CREATE TABLE chain_base (
				id INTEGER PRIMARY KEY CHECK (id = 1),
				seq INTEGER NOT NULL,
				hash TEXT NOT NULL,
				archived_at TEXT NOT NULL
			)`,
		},
	}, {
		version: 9,
		name:    "tool-supply pins and tool-set hashes; scan reports in the audit chain",
		stmts:   pinsSchema,
	}}
}

// migrate brings the schema of db up to date. db must begin transactions
// with BEGIN IMMEDIATE, so that concurrent processes opening the same file
// apply each migration once.
func migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`
	if _, err := db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	list := migrations()
	latest := list[len(list)-1].version
	for _, m := range list {
		if err := applyMigration(ctx, db, m, latest, log); err != nil {
			return err
		}
	}
	return nil
}

// applyMigration applies m unless the database already has it, in one
// transaction that also checks the database is not newer than latest.
func applyMigration(ctx context.Context, db *sql.DB, m migration, latest int, log *slog.Logger) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %d: begin: %w", m.version, err)
	}
	defer func() { _ = tx.Rollback() }()
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migration %d: read schema version: %w", m.version, err)
	}
	if current > latest {
		return fmt.Errorf("%w: database has schema version %d, this build knows up to version %d; upgrade the mediator",
			ErrSchemaTooNew, current, latest)
	}
	if current >= m.version {
		return nil
	}
	for _, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	const record = `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`
	if _, err := tx.ExecContext(ctx, record, m.version, m.name, formatTime(time.Now())); err != nil {
		return fmt.Errorf("migration %d: record version: %w", m.version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %d: commit: %w", m.version, err)
	}
	log.Info("audit store migrated", "version", m.version, "name", m.name)
	return nil
}
