package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// setData returns a merge function that stores data whatever is stored.
func setData(data string) func([]byte) ([]byte, error) {
	return func([]byte) ([]byte, error) { return []byte(data), nil }
}

// increment is a merge function for a decimal counter ("" or absent is 0).
func increment(stored []byte) ([]byte, error) {
	n := 0
	if len(stored) > 0 {
		var err error
		if n, err = strconv.Atoi(string(stored)); err != nil {
			return nil, err
		}
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

func mustMerge(t *testing.T, s *Store, key, agent, version string, merge func([]byte) ([]byte, error)) mediator.ProfileRow {
	t.Helper()
	p, err := s.MergeProfile(t.Context(), key, agent, version, merge)
	if err != nil {
		t.Fatalf("MergeProfile(%q): %v", key, err)
	}
	return p
}

func mustSetTrust(t *testing.T, s *Store, ts mediator.TrustState) mediator.TrustState {
	t.Helper()
	got, err := s.SetTrust(t.Context(), ts)
	if err != nil {
		t.Fatalf("SetTrust(%+v): %v", ts, err)
	}
	return got
}

func TestProfileRoundTrip(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	if _, ok, err := s.Profile(t.Context(), "a1"); ok || err != nil {
		t.Fatalf("Profile of a missing key = ok %v, %v; want not ok, nil", ok, err)
	}
	var seen [][]byte
	record := func(data string) func([]byte) ([]byte, error) {
		return func(stored []byte) ([]byte, error) {
			seen = append(seen, stored)
			return []byte(data), nil
		}
	}
	before := time.Now()
	p1 := mustMerge(t, s, "a1", "agent-1", "", record(`{"calls":1}`))
	p2 := mustMerge(t, s, "a1@v2", "agent-1", "v2", record("\x00binary\xff"))
	p3 := mustMerge(t, s, "a1", "agent-1", "", record(`{"calls":2}`))
	if len(seen) != 3 || seen[0] != nil || seen[1] != nil || string(seen[2]) != `{"calls":1}` {
		t.Fatalf("merge saw %q, want [nil nil {\"calls\":1}]", seen)
	}
	if p1.Rev >= p2.Rev || p2.Rev >= p3.Rev {
		t.Errorf("revs %d, %d, %d do not increase", p1.Rev, p2.Rev, p3.Rev)
	}
	if p3.Updated.Before(before.Add(-time.Millisecond)) || p3.Updated.After(time.Now()) {
		t.Errorf("Updated = %v, want about now", p3.Updated)
	}
	for _, want := range []mediator.ProfileRow{p2, p3} {
		got, ok, err := s.Profile(t.Context(), want.Key)
		if err != nil || !ok {
			t.Fatalf("Profile(%q) = ok %v, %v", want.Key, ok, err)
		}
		if !profileEqual(got, want) {
			t.Errorf("Profile(%q) = %+v, want %+v as MergeProfile returned", want.Key, got, want)
		}
	}
	all, err := s.ProfilesSince(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || !profileEqual(all[0], p2) || !profileEqual(all[1], p3) {
		t.Errorf("ProfilesSince(0) = %+v, want [%+v %+v]", all, p2, p3)
	}
}

// An empty merge result is stored and read back as empty data, not as a
// missing profile, and the next merge sees it as empty (not nil).
func TestProfileEmptyData(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	mustMerge(t, s, "k", "a", "", setData(""))
	got, ok, err := s.Profile(t.Context(), "k")
	if err != nil || !ok || got.Data == nil || len(got.Data) != 0 {
		t.Fatalf("Profile = %+v, ok %v, %v; want empty non-nil data", got, ok, err)
	}
	mustMerge(t, s, "k", "a", "", func(stored []byte) ([]byte, error) {
		if stored == nil {
			t.Error("merge got nil for a stored empty profile")
		}
		return nil, nil
	})
}

func profileEqual(a, b mediator.ProfileRow) bool {
	return a.Key == b.Key && a.AgentID == b.AgentID && a.Version == b.Version &&
		bytes.Equal(a.Data, b.Data) && a.Updated.Equal(b.Updated) && a.Rev == b.Rev
}

func trustEqual(a, b mediator.TrustState) bool {
	return a.AgentID == b.AgentID && a.Level == b.Level && a.Ceiling == b.Ceiling && a.Reason == b.Reason &&
		a.By == b.By && a.Changed.Equal(b.Changed) && a.Rev == b.Rev
}

func TestTrustRoundTrip(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	changed := time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.FixedZone("X", 3600))
	long := strings.Repeat("é", MaxTrustReasonBytes) // 2 bytes a rune
	tests := []struct {
		name string
		in   mediator.TrustState
		// want is in as stored, without its Rev.
		want mediator.TrustState
	}{
		{"all fields",
			mediator.TrustState{AgentID: "a", Level: mediator.TrustMedium, Ceiling: mediator.TrustMedium,
				Reason: "drift: new server", By: "mediator", Changed: changed},
			mediator.TrustState{AgentID: "a", Level: mediator.TrustMedium, Ceiling: mediator.TrustMedium,
				Reason: "drift: new server", By: "mediator", Changed: changed}},
		{"replaces the earlier state",
			mediator.TrustState{AgentID: "a", Level: mediator.TrustNone, By: "alice", Changed: changed.Add(time.Hour)},
			mediator.TrustState{AgentID: "a", Level: mediator.TrustNone, By: "alice", Changed: changed.Add(time.Hour)}},
		{"long reason is cut",
			mediator.TrustState{AgentID: "b", Level: mediator.TrustLow, Reason: long, Changed: changed},
			mediator.TrustState{AgentID: "b", Level: mediator.TrustLow, Changed: changed,
				Reason: strings.Repeat("é", (MaxTrustReasonBytes-len("…"))/2) + "…"}},
	}
	var last int64
	for _, tt := range tests {
		got := mustSetTrust(t, s, tt.in)
		if got.Rev <= last {
			t.Errorf("%s: Rev %d, want more than %d", tt.name, got.Rev, last)
		}
		last = got.Rev
		tt.want.Rev = got.Rev
		if !trustEqual(got, tt.want) {
			t.Errorf("%s: SetTrust = %+v, want %+v", tt.name, got, tt.want)
		}
		if len(got.Reason) > MaxTrustReasonBytes {
			t.Errorf("%s: reason is %d bytes", tt.name, len(got.Reason))
		}
		read, err := s.TrustSince(t.Context(), got.Rev-1, 1)
		if err != nil || len(read) != 1 || !trustEqual(read[0], got) {
			t.Errorf("%s: TrustSince = %+v, %v; want [%+v]", tt.name, read, err, got)
		}
	}
	all, err := s.TrustSince(t.Context(), 0, 0)
	if err != nil || len(all) != 2 || all[0].AgentID != "a" || all[1].AgentID != "b" {
		t.Errorf("TrustSince(0) = %+v, %v; want a then b, one state each", all, err)
	}

	before := time.Now()
	now := mustSetTrust(t, s, mediator.TrustState{AgentID: "c", Level: mediator.TrustHigh})
	if now.Changed.Before(before.Add(-time.Millisecond)) || now.Changed.After(time.Now()) {
		t.Errorf("zero Changed stored as %v, want about now", now.Changed)
	}
}

// Each table's Rev increases with every write, whatever the other table
// does, and *Since returns the rows after a Rev in Rev order, up to limit.
func TestBehaviourRevIncreases(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	var profRevs, trustRevs []int64
	for i := range 10 {
		p := mustMerge(t, s, fmt.Sprintf("k%d", i%3), "a", "", increment)
		profRevs = append(profRevs, p.Rev)
		ts := mustSetTrust(t, s, mediator.TrustState{AgentID: fmt.Sprintf("a%d", i%4), Level: mediator.TrustLow})
		trustRevs = append(trustRevs, ts.Rev)
	}
	for name, revs := range map[string][]int64{"profile": profRevs, "trust": trustRevs} {
		for i := 1; i < len(revs); i++ {
			if revs[i] <= revs[i-1] {
				t.Errorf("%s revs %v do not strictly increase", name, revs)
				break
			}
		}
	}
	after := profRevs[6]
	got, err := s.ProfilesSince(t.Context(), after, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Keys k0..k2 were last written at i = 9, 7, 8.
	if len(got) != 3 || got[0].Key != "k1" || got[1].Key != "k2" || got[2].Key != "k0" {
		t.Fatalf("ProfilesSince(%d) = %+v, want k1, k2, k0", after, got)
	}
	if got[2].Rev != profRevs[9] || string(got[2].Data) != "4" {
		t.Errorf("k0 = rev %d data %q, want rev %d data 4", got[2].Rev, got[2].Data, profRevs[9])
	}
	if got, err := s.ProfilesSince(t.Context(), after, 2); err != nil || len(got) != 2 || got[1].Key != "k2" {
		t.Errorf("ProfilesSince(%d, limit 2) = %+v, %v; want k1, k2", after, got, err)
	}
	if got, err := s.TrustSince(t.Context(), trustRevs[9], 0); err != nil || len(got) != 0 {
		t.Errorf("TrustSince(last) = %+v, %v; want none", got, err)
	}
	if got, err := s.TrustSince(t.Context(), 0, 3); err != nil || len(got) != 3 {
		t.Errorf("TrustSince(0, limit 3) = %+v, %v; want 3", got, err)
	}
}

// Two Stores on one file (two processes) see each other's writes, and
// never assign the same Rev.
func TestBehaviourTwoStores(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	a, b := openTest(t, path), openTest(t, path)
	pa := mustMerge(t, a, "k", "agent", "", setData("from a"))
	pb := mustMerge(t, b, "k2", "agent", "", setData("from b"))
	if pb.Rev <= pa.Rev {
		t.Errorf("b's rev %d, want more than a's %d", pb.Rev, pa.Rev)
	}
	got, err := b.ProfilesSince(t.Context(), 0, 0)
	if err != nil || len(got) != 2 || !profileEqual(got[0], pa) || !profileEqual(got[1], pb) {
		t.Fatalf("b.ProfilesSince(0) = %+v, %v; want a's then b's", got, err)
	}
	pa2 := mustMerge(t, a, "k2", "agent", "", func(stored []byte) ([]byte, error) {
		return append(stored, " and a"...), nil
	})
	if got, err := b.ProfilesSince(t.Context(), pb.Rev, 0); err != nil || len(got) != 1 ||
		!profileEqual(got[0], pa2) || string(got[0].Data) != "from b and a" {
		t.Fatalf("b.ProfilesSince(%d) = %+v, %v; want [%+v]", pb.Rev, got, err, pa2)
	}
	ta := mustSetTrust(t, a, mediator.TrustState{AgentID: "agent", Level: mediator.TrustLow, By: "mediator"})
	tb := mustSetTrust(t, b, mediator.TrustState{AgentID: "other", Level: mediator.TrustHigh})
	if tb.Rev <= ta.Rev {
		t.Errorf("b's trust rev %d, want more than a's %d", tb.Rev, ta.Rev)
	}
	if got, err := a.TrustSince(t.Context(), ta.Rev, 0); err != nil || len(got) != 1 || !trustEqual(got[0], tb) {
		t.Errorf("a.TrustSince(%d) = %+v, %v; want [%+v]", ta.Rev, got, err, tb)
	}
}

// Concurrent merges by two Stores on one file lose no update, and every
// merge gets its own Rev.
func TestMergeProfileConcurrent(t *testing.T) {
	t.Parallel()
	const perStore = 50
	path := testDB(t)
	stores := []*Store{openTest(t, path), openTest(t, path)}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		revs = map[int64]bool{}
		errs []error
	)
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				p, err := s.MergeProfile(t.Context(), "counter", "agent", "", increment)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if revs[p.Rev] {
					errs = append(errs, fmt.Errorf("rev %d assigned twice", p.Rev))
				}
				revs[p.Rev] = true
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	want := strconv.Itoa(len(stores) * perStore)
	for i, s := range stores {
		p, ok, err := s.Profile(t.Context(), "counter")
		if err != nil || !ok || string(p.Data) != want {
			t.Errorf("store %d: counter = %q (ok %v, %v), want %s", i, p.Data, ok, err, want)
		}
		if p.Rev != int64(len(stores)*perStore) {
			t.Errorf("store %d: final rev %d, want %d", i, p.Rev, len(stores)*perStore)
		}
	}
}

// A failed merge, or a merge result over the cap, stores nothing.
func TestMergeProfileRollsBack(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	orig := mustMerge(t, s, "k", "agent", "v1", setData("original"))
	errMerge := errors.New("cannot decode the baseline")
	tests := []struct {
		name    string
		merge   func([]byte) ([]byte, error)
		wantErr error
		wantMsg string
	}{
		{"merge error", func([]byte) ([]byte, error) { return []byte("partial"), errMerge }, errMerge,
			"cannot decode the baseline"},
		{"merged data over the cap", setData(strings.Repeat("x", MaxProfileBytes+1)), mediator.ErrInvalidRequest,
			strconv.Itoa(MaxProfileBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.MergeProfile(t.Context(), "k", "other-agent", "v2", tt.merge)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("MergeProfile = %v, want %v naming %q", err, tt.wantErr, tt.wantMsg)
			}
			got, ok, err := s.Profile(t.Context(), "k")
			if err != nil || !ok || !profileEqual(got, orig) {
				t.Errorf("after the failed merge Profile = %+v (ok %v, %v), want %+v", got, ok, err, orig)
			}
		})
	}
	// The failed merges assigned no rev that a poller could have missed.
	if next := mustMerge(t, s, "k2", "agent", "", setData("x")); next.Rev != orig.Rev+1 {
		t.Errorf("next rev %d, want %d", next.Rev, orig.Rev+1)
	}
	// Data exactly at the cap is accepted.
	mustMerge(t, s, "k3", "agent", "", setData(strings.Repeat("x", MaxProfileBytes)))
}

func TestBehaviourInvalid(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	long := strings.Repeat("k", MaxBehaviourIDBytes+1)
	merge := func(key, agent, version string) func() error {
		return func() error {
			_, err := s.MergeProfile(t.Context(), key, agent, version, setData("x"))
			return err
		}
	}
	trust := func(ts mediator.TrustState) func() error {
		return func() error {
			_, err := s.SetTrust(t.Context(), ts)
			return err
		}
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"empty profile key", merge("", "a", ""), "empty profile key"},
		{"empty profile agent id", merge("k", "", ""), "empty agent id"},
		{"long profile key", merge(long, "a", ""), "profile key is 1025 bytes, longer than 1024"},
		{"long profile agent id", merge("k", long, ""), "agent id is 1025 bytes"},
		{"long version", merge("k", "a", long), "version is longer than 1024"},
		{"no merge function", func() error {
			_, err := s.MergeProfile(t.Context(), "k", "a", "", nil)
			return err
		}, "no merge function"},
		{"unknown level", trust(mediator.TrustState{AgentID: "a", Level: "trusted"}), `level: invalid request: trust level "trusted"`},
		{"empty level", trust(mediator.TrustState{AgentID: "a"}), `trust level ""`},
		{"unknown ceiling", trust(mediator.TrustState{AgentID: "a", Level: mediator.TrustLow, Ceiling: "max"}),
			`ceiling: invalid request: trust level "max"`},
		{"empty trust agent id", trust(mediator.TrustState{Level: mediator.TrustLow}), "empty agent id"},
		{"long trust agent id", trust(mediator.TrustState{AgentID: long, Level: mediator.TrustLow}), "agent id is 1025 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, mediator.ErrInvalidRequest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInvalidRequest naming %q", err, tt.want)
			}
		})
	}
	if got, err := s.ProfilesSince(t.Context(), 0, 0); err != nil || len(got) != 0 {
		t.Errorf("profiles after refused writes = %+v, %v", got, err)
	}
	if got, err := s.TrustSince(t.Context(), 0, 0); err != nil || len(got) != 0 {
		t.Errorf("trust after refused writes = %+v, %v", got, err)
	}
	// The database refuses an unknown level by itself too.
	_, err := rawDB(t, s.path).ExecContext(t.Context(),
		`INSERT INTO agent_trust(agent_id, level, changed_at, rev) VALUES ('x', 'trusted', '', 1)`)
	if err == nil || !strings.Contains(err.Error(), "CHECK") {
		t.Errorf("raw insert of an unknown level = %v, want a CHECK failure", err)
	}
}

func TestBehaviourClosed(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]func() error{
		"MergeProfile": func() error { _, err := s.MergeProfile(ctx, "k", "a", "", setData("x")); return err },
		"Profile":      func() error { _, _, err := s.Profile(ctx, "k"); return err },
		"ProfilesSince": func() error {
			_, err := s.ProfilesSince(ctx, 0, 0)
			return err
		},
		"SetTrust": func() error {
			_, err := s.SetTrust(ctx, mediator.TrustState{AgentID: "a", Level: mediator.TrustLow})
			return err
		},
		"TrustSince": func() error { _, err := s.TrustSince(ctx, 0, 0); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, mediator.ErrAudit) || !strings.Contains(err.Error(), "closed") {
			t.Errorf("%s on a closed store = %v, want ErrAudit naming closed", name, err)
		}
	}
}

// A database at schema version 5 (the build before behaviour) gains the
// behaviour tables and column, and its audit chain still verifies.
func TestMigrationFromVersion5(t *testing.T) {
	t.Parallel()
	path := testDB(t)
	s := openTest(t, path)
	if err := recordN(t.Context(), s, "old", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	for _, q := range []string{`DROP TABLE behaviour_profiles`, `DROP TABLE agent_trust`,
		`DROP INDEX audit_ref`, `DROP INDEX audit_forwarding`, `ALTER TABLE audit DROP COLUMN ref`, `ALTER TABLE audit DROP COLUMN writer`,
		`DROP TABLE chain_base`, `DROP TABLE tool_pins`, `DROP TABLE tool_sets`, `ALTER TABLE audit DROP COLUMN scan`,
		`ALTER TABLE audit DROP COLUMN behaviour`, `DELETE FROM schema_migrations WHERE version >= 6`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s2 := openTest(t, path)
	mustVerify(t, s2, 3)
	var name string
	if err := db.QueryRow(`SELECT name FROM schema_migrations WHERE version = 6`).Scan(&name); err != nil ||
		name != "behaviour profiles and trust; behaviour in the audit chain" {
		t.Errorf("migration 6 recorded as %q, %v", name, err)
	}
	var nulls int
	if err := db.QueryRow(`SELECT count(*) FROM audit WHERE behaviour IS NULL`).Scan(&nulls); err != nil || nulls != 3 {
		t.Errorf("old records with NULL behaviour: %d, %v; want 3", nulls, err)
	}
	if p := mustMerge(t, s2, "k", "agent-old", "", increment); p.Rev != 1 || string(p.Data) != "1" {
		t.Errorf("first profile after migration = %+v, want rev 1 data 1", p)
	}
	if ts := mustSetTrust(t, s2, mediator.TrustState{AgentID: "agent-old", Level: mediator.TrustMedium}); ts.Rev != 1 {
		t.Errorf("first trust after migration has rev %d, want 1", ts.Rev)
	}
	if err := recordN(t.Context(), s2, "new", 2); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s2, 5)
}
