package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestRecordAndVerify(t *testing.T) {
	tests := []struct {
		name string
		n    int
		opts []Option
	}{
		{"empty chain", 0, nil},
		{"one record", 1, nil},
		{"many records", 50, nil},
		{"synchronous full", 10, []Option{WithSynchronousFull()}},
		{"batch size one", 10, []Option{WithBatchSize(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, testDB(t), tt.opts...)
			if err := recordN(t.Context(), s, "a", tt.n); err != nil {
				t.Fatal(err)
			}
			mustVerify(t, s, int64(tt.n))
			checkContiguous(t, s, tt.n)
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	s := openTest(t, testDB(t))
	in := testRecord("rt", 7)
	if err := s.Record(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records(t.Context(), Filter{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Records = %d, %v", len(recs), err)
	}
	got := recs[0]
	if got.Seq != 1 || got.PrevHash != genesisHash || len(got.Hash) != 64 {
		t.Errorf("chain fields: seq %d prev %q hash %q", got.Seq, got.PrevHash, got.Hash)
	}
	if !got.Time.Equal(in.Time) {
		t.Errorf("time %v, want %v", got.Time, in.Time)
	}
	if want := `{"n":1.50,"path":"/tmp/7.txt"}`; string(got.Arguments) != want {
		t.Errorf("arguments %s, want canonical %s", got.Arguments, want)
	}
	in.Seq, in.PrevHash, in.Hash, in.Time = got.Seq, got.PrevHash, got.Hash, got.Time
	in.Arguments, in.Result = got.Arguments, got.Result
	a, _ := json.Marshal(in)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Errorf("round trip differs:\n got %s\nwant %s", b, a)
	}
}

func TestRecordFillsIDAndTime(t *testing.T) {
	s := openTest(t, testDB(t))
	for range 3 {
		if err := s.Record(t.Context(), mediator.ChainRecord{Method: "ping"}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.Records(t.Context(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ID == "" || r.Time.IsZero() {
			t.Errorf("record %d: id %q time %v", r.Seq, r.ID, r.Time)
		}
	}
	mustVerify(t, s, 3)
}

func TestConcurrentRecords(t *testing.T) {
	s := openTest(t, testDB(t))
	const workers, perWorker = 8, 500
	if err := recordParallel(t.Context(), s, "w", workers, perWorker); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, workers*perWorker)
	checkContiguous(t, s, workers*perWorker)
}

func TestTwoStoresOneFile(t *testing.T) {
	path := testDB(t)
	a := openTest(t, path, WithBatchSize(16))
	b := openTest(t, path, WithBatchSize(16))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = recordParallel(t.Context(), a, "a", 4, 250) })
	wg.Go(func() { errs[1] = recordParallel(t.Context(), b, "b", 4, 250) })
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, a, 2000)
	mustVerify(t, b, 2000)
	checkContiguous(t, a, 2000)
}

func TestDuplicateID(t *testing.T) {
	s := openTest(t, testDB(t))
	r := testRecord("dup", 1)
	if err := s.Record(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	err := s.Record(t.Context(), r)
	if !errors.Is(err, mediator.ErrAudit) || !strings.Contains(err.Error(), "already") {
		t.Fatalf("second Record = %v, want duplicate error wrapping ErrAudit", err)
	}
	if err := s.Healthy(); err != nil {
		t.Errorf("Healthy after a duplicate = %v, want nil", err)
	}
	if err := s.Record(t.Context(), testRecord("dup", 2)); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, 2)
}

func TestRecordContextDone(t *testing.T) {
	s := openTest(t, testDB(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Record(ctx, testRecord("c", 1))
	if !errors.Is(err, mediator.ErrAudit) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Record(cancelled) = %v, want ErrAudit and context.Canceled", err)
	}
}

func TestCloseFlushesQueuedRecords(t *testing.T) {
	path := testDB(t)
	s := openTest(t, path, WithBatchSize(1))
	// Hold the write lock so the writer blocks on its first batch while
	// the rest queue up behind it.
	lock := holdWriteLock(t, path)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.Record(context.Background(), testRecord("q", i)) })
	}
	waitFor(t, func() bool { return len(s.queue) == n-1 })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	time.Sleep(50 * time.Millisecond)
	lock()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("queued records failed: %v", err)
	}
	s2 := openTest(t, path)
	mustVerify(t, s2, n)
}

// holdWriteLock takes the database's write lock from another connection
// and returns the function that releases it.
func holdWriteLock(t *testing.T, path string) func() {
	t.Helper()
	conn, err := rawDB(t, path).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
			t.Errorf("release lock: %v", err)
		}
		_ = conn.Close()
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestClosed(t *testing.T) {
	s := openTest(t, testDB(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	checks := map[string]error{
		"Record":  s.Record(t.Context(), testRecord("x", 1)),
		"Healthy": s.Healthy(),
		"Ping":    s.Ping(t.Context()),
	}
	_, checks["Verify"] = s.Verify(t.Context())
	_, checks["Records"] = s.Records(t.Context(), Filter{})
	_, checks["Export"] = s.Export(t.Context(), &bytes.Buffer{}, time.Time{})
	for name, err := range checks {
		if !errors.Is(err, mediator.ErrAudit) || !strings.Contains(err.Error(), "closed") {
			t.Errorf("%s after Close = %v, want closed error wrapping ErrAudit", name, err)
		}
	}
}

func TestHealthAfterFailedBatch(t *testing.T) {
	path := testDB(t)
	s := openTest(t, path, WithBusyTimeout(100*time.Millisecond))
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy on open = %v", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping = %v", err)
	}
	release := holdWriteLock(t, path)
	err := s.Record(t.Context(), testRecord("h", 1))
	if !errors.Is(err, mediator.ErrAudit) {
		t.Fatalf("Record under a held lock = %v, want ErrAudit", err)
	}
	if err := s.Healthy(); !errors.Is(err, mediator.ErrAudit) {
		t.Fatalf("Healthy after failed batch = %v, want ErrAudit", err)
	}
	release()
	if err := s.Record(t.Context(), testRecord("h", 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy after recovery = %v", err)
	}
	mustVerify(t, s, 1)
}

func TestTriggersBlockUpdateAndDelete(t *testing.T) {
	path := testDB(t)
	s := openTest(t, path)
	if err := recordN(t.Context(), s, "t", 3); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	for _, stmt := range []string{
		`UPDATE audit SET agent_id = 'mallory' WHERE seq = 2`,
		`DELETE FROM audit WHERE seq = 2`,
		`DELETE FROM audit`,
	} {
		_, err := db.ExecContext(t.Context(), stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", stmt, err)
		}
	}
	mustVerify(t, s, 3)
}

func TestMigrations(t *testing.T) {
	path := testDB(t)
	s := openTest(t, path)
	if err := recordN(t.Context(), s, "m", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	mustVerify(t, s, 3)
	latest := migrations()[len(migrations())-1].version
	var rows, version int
	err := rawDB(t, path).QueryRowContext(t.Context(),
		`SELECT count(*), max(version) FROM schema_migrations`).Scan(&rows, &version)
	if err != nil || rows != latest || version != latest {
		t.Fatalf("schema_migrations: %d rows, version %d, %v; want %d", rows, version, err, latest)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = rawDB(t, path).ExecContext(t.Context(),
		`INSERT INTO schema_migrations(version, name, applied_at) VALUES (99, 'future', '')`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), path)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") ||
		!strings.Contains(err.Error(), fmt.Sprintf("up to version %d", latest)) {
		t.Fatalf("Open newer schema = %v, want ErrSchemaTooNew naming 99 and %d", err, latest)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct{ name, path string }{
		{"empty path", ""},
		{"missing directory", "/nonexistent-dir/sub/audit.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.path)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, mediator.ErrAudit) {
				t.Errorf("Open = %v, want ErrAudit", err)
			}
		})
	}
}

func TestOddPath(t *testing.T) {
	path := t.TempDir() + "/a?b#c%d.db"
	s := openTest(t, path)
	if err := recordN(t.Context(), s, "p", 2); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, 2)
}

func TestRecordsFilter(t *testing.T) {
	s := openTest(t, testDB(t))
	for _, tag := range []string{"a", "b"} {
		if err := recordN(t.Context(), s, tag, 5); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		f        Filter
		wantSeqs []int64
	}{
		{"all", Filter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"session", Filter{SessionID: "sess-b"}, []int64{6, 7, 8, 9, 10}},
		{"agent", Filter{AgentID: "agent-a"}, []int64{1, 2, 3, 4, 5}},
		{"limit keeps newest", Filter{AgentID: "agent-a", Limit: 2}, []int64{4, 5}},
		{"since", Filter{Since: time.Date(2025, 3, 4, 5, 6, 7, 3, time.UTC)}, []int64{4, 5, 9, 10}},
		{"no match", Filter{SessionID: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := s.Records(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range recs {
				got = append(got, r.Seq)
			}
			if !equalSeqs(got, tt.wantSeqs) {
				t.Errorf("seqs %v, want %v", got, tt.wantSeqs)
			}
		})
	}
}

func equalSeqs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExport(t *testing.T) {
	s := openTest(t, testDB(t))
	if err := recordN(t.Context(), s, "e", 6); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		since time.Time
		want  int64
	}{
		{"all", time.Time{}, 6},
		{"since", time.Date(2025, 3, 4, 5, 6, 7, 2, time.UTC), 4},
		{"future", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := s.Export(t.Context(), &buf, tt.since)
			if err != nil || n != tt.want {
				t.Fatalf("Export = %d, %v; want %d", n, err, tt.want)
			}
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if n == 0 {
				lines = nil
			}
			var prev int64
			for _, line := range lines {
				var r mediator.ChainRecord
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if r.Seq <= prev || r.Hash == "" || r.Intent == nil {
					t.Errorf("bad exported record %+v after seq %d", r, prev)
				}
				prev = r.Seq
			}
			if int64(len(lines)) != tt.want {
				t.Errorf("%d lines, want %d", len(lines), tt.want)
			}
		})
	}
}

func TestDuplicateIDInOneBatch(t *testing.T) {
	s := openTest(t, testDB(t))
	if err := s.Record(t.Context(), testRecord("stored", 0)); err != nil {
		t.Fatal(err)
	}
	// Drive a writer directly so that the batch is exactly these records.
	w, err := newWriter(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	ids := []string{"x", "y", "x", "stored-0", "z"}
	wantErr := []bool{false, false, true, true, false}
	for i, id := range ids {
		r := testRecord("b", i)
		r.ID = id
		row, err := s.prepare(r)
		if err != nil {
			t.Fatal(err)
		}
		w.batch = append(w.batch, request{row: row, reply: make(chan error, 1)})
	}
	replies := make([]chan error, len(w.batch))
	for i := range w.batch {
		replies[i] = w.batch[i].reply
	}
	w.flush()
	for i, reply := range replies {
		err := <-reply
		if (err != nil) != wantErr[i] || (err != nil && !errors.Is(err, mediator.ErrAudit)) {
			t.Errorf("record %d (%s): err = %v, want error %v", i, ids[i], err, wantErr[i])
		}
	}
	if err := s.Healthy(); err != nil {
		t.Errorf("Healthy = %v", err)
	}
	mustVerify(t, s, 4)
}
