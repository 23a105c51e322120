package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestRevokeValidation(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	tests := []struct {
		name string
		r    mediator.Revocation
		ok   bool
	}{
		{"jti only", mediator.Revocation{JTI: "j1", Reason: "leaked"}, true},
		{"task only", mediator.Revocation{TaskID: "t1"}, true},
		{"agent only", mediator.Revocation{AgentID: "a1"}, true},
		{"nothing named: would revoke nothing, or everything", mediator.Revocation{Reason: "oops"}, false},
		{"two targets: ambiguous", mediator.Revocation{JTI: "j", TaskID: "t"}, false},
		{"all three: ambiguous", mediator.Revocation{JTI: "j", TaskID: "t", AgentID: "a"}, false},
	}
	for _, tt := range tests {
		err := s.Revoke(t.Context(), tt.r)
		if tt.ok && err != nil {
			t.Errorf("%s: Revoke: %v", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidRevocation) {
			t.Errorf("%s: Revoke = %v, want ErrInvalidRevocation", tt.name, err)
		}
	}
}

func TestRevocationsRoundTrip(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	in := []mediator.Revocation{
		{JTI: "j1", Reason: "leaked in a log", At: at},
		{TaskID: "task-9", Reason: "task ended", At: at.Add(time.Second)},
		{AgentID: "agent-7", At: at.Add(2 * time.Second)},
	}
	for _, r := range in {
		if err := s.Revoke(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RevocationsSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("got %d revocations, want %d", len(got), len(in))
	}
	for i, r := range got {
		want := in[i]
		want.Seq = int64(i + 1)
		if r.Seq != want.Seq || r.JTI != want.JTI || r.TaskID != want.TaskID || r.AgentID != want.AgentID ||
			r.Reason != want.Reason || !r.At.Equal(want.At) {
			t.Errorf("revocation %d = %+v, want %+v", i, r, want)
		}
	}
	tail, err := s.RevocationsSince(t.Context(), 2)
	if err != nil || len(tail) != 1 || tail[0].AgentID != "agent-7" {
		t.Fatalf("RevocationsSince(2) = %+v, %v; want only the agent revocation", tail, err)
	}
	none, err := s.RevocationsSince(t.Context(), 3)
	if err != nil || len(none) != 0 {
		t.Fatalf("RevocationsSince(3) = %+v, %v; want none", none, err)
	}
}

func TestRevokeFillsTime(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	before := time.Now()
	if err := s.Revoke(t.Context(), mediator.Revocation{JTI: "j"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.RevocationsSince(t.Context(), 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if got[0].At.Before(before.Add(-time.Second)) || got[0].At.After(time.Now().Add(time.Second)) {
		t.Errorf("At = %v, want about now", got[0].At)
	}
}

// Revocations are append-only: un-revoking by editing the table is refused.
func TestRevocationsAppendOnly(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	s := openTest(t, path)
	if err := s.Revoke(t.Context(), mediator.Revocation{JTI: "j"}); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	if _, err := db.Exec(`DELETE FROM revocations`); err == nil {
		t.Error("DELETE FROM revocations succeeded; want it refused")
	}
	if _, err := db.Exec(`UPDATE revocations SET jti = 'other'`); err == nil {
		t.Error("UPDATE revocations succeeded; want it refused")
	}
}

// Two Stores on one file (two processes in production) see each other's
// revocations and settings, and writes interleave with audit batches.
func TestRevocationsAndSettingsTwoStores(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	a, b := openTest(t, path), openTest(t, path)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Go(func() { errs <- recordParallel(ctx, a, "a", 4, 50) })
	wg.Go(func() { errs <- recordParallel(ctx, b, "b", 4, 50) })
	wg.Go(func() { errs <- revokeN(ctx, a, "a", 20) })
	wg.Go(func() { errs <- revokeN(ctx, b, "b", 20) })
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mustVerify(t, a, 400)
	for _, s := range []*Store{a, b} {
		got, err := s.RevocationsSince(ctx, 0)
		if err != nil || len(got) != 40 {
			t.Fatalf("RevocationsSince = %d, %v; want 40", len(got), err)
		}
		for i, r := range got {
			if r.Seq != int64(i+1) {
				t.Fatalf("revocation %d has seq %d; want contiguous", i, r.Seq)
			}
		}
	}
	if err := a.SetSetting(ctx, "alert_level", "incident"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := b.Setting(ctx, "alert_level"); err != nil || !ok || v != "incident" {
		t.Fatalf("other store reads %q, %v, %v; want incident", v, ok, err)
	}
}

func revokeN(ctx context.Context, s *Store, tag string, n int) error {
	for i := range n {
		if err := s.Revoke(ctx, mediator.Revocation{JTI: fmt.Sprintf("%s-%d", tag, i)}); err != nil {
			return err
		}
	}
	return nil
}

func TestRevocationsSettingsClosed(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), testDB(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Revoke(ctx, mediator.Revocation{JTI: "j"}); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("Revoke on closed store = %v", err)
	}
	if _, err := s.RevocationsSince(ctx, 0); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("RevocationsSince on closed store = %v", err)
	}
	if err := s.SetSetting(ctx, "k", "v"); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("SetSetting on closed store = %v", err)
	}
	if _, _, err := s.Setting(ctx, "k"); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("Setting on closed store = %v", err)
	}
}

// A database migrated by the previous build (schema 1) gains the new
// tables, and its audit chain is untouched.
func TestMigrationFromVersion1(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	s := openTest(t, path)
	if err := recordN(t.Context(), s, "old", 3); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	for _, q := range []string{`DROP TABLE revocations`, `DROP TABLE settings`,
		`DROP TABLE approvals`, `DROP TABLE approval_grants`, `DROP TABLE approvers`,
		`DROP TABLE tasks`, `DROP INDEX audit_task`, `ALTER TABLE audit DROP COLUMN reasoning`,
		`ALTER TABLE audit DROP COLUMN prompt_truncated`, `ALTER TABLE audit DROP COLUMN approval`,
		`ALTER TABLE audit DROP COLUMN remote_addr`, `ALTER TABLE audit DROP COLUMN behaviour`,
		`DROP TABLE behaviour_profiles`, `DROP TABLE agent_trust`,
		`DROP INDEX audit_ref`, `DROP INDEX audit_forwarding`, `ALTER TABLE audit DROP COLUMN ref`, `ALTER TABLE audit DROP COLUMN writer`,
		`DROP TABLE chain_base`, `DROP TABLE tool_pins`, `DROP TABLE tool_sets`, `ALTER TABLE audit DROP COLUMN scan`,
		`DELETE FROM schema_migrations WHERE version >= 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s2 := openTest(t, path)
	mustVerify(t, s2, 3)
	if err := s2.Revoke(t.Context(), mediator.Revocation{TaskID: "t"}); err != nil {
		t.Fatalf("Revoke after migration: %v", err)
	}
}
