package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// testRecord returns a plausible record; tag distinguishes writers.
func testRecord(tag string, i int) mediator.ChainRecord {
	return mediator.ChainRecord{
		ID:         fmt.Sprintf("%s-%d", tag, i),
		Time:       time.Date(2025, 3, 4, 5, 6, 7, i, time.UTC),
		SessionID:  "sess-" + tag,
		Transport:  "stdio",
		AgentID:    "agent-" + tag,
		TaskID:     "task-1",
		Method:     "tools/call",
		Kind:       mediator.KindTool,
		Server:     "files",
		Name:       "files__read_file",
		ToolHash:   "abc123",
		Prompt:     "read the config",
		Arguments:  json.RawMessage(fmt.Sprintf(`{"path": "/tmp/%d.txt", "n": 1.50}`, i)),
		Intent:     &mediator.Intent{Verdict: mediator.IntentInScope, Reasons: []string{"matches task"}, Score: 0.75},
		Decision:   mediator.Decision{Effect: mediator.EffectAllow, Rule: "p1", Reason: "allowed", PolicyVersion: "v1"},
		Outcome:    mediator.OutcomeOK,
		Result:     json.RawMessage(`{"content":[{"type":"text","text":"hello"}]}`),
		DurationUS: int64(100 + i),
		UpstreamUS: int64(50 + i),
	}
}

// testDB returns a fresh database path.
func testDB(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "audit.db")
}

// openTest opens a store at path and closes it when the test ends.
func openTest(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawDB opens path without the store, as an attacker or operator would.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open raw db: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// recordN records n records tagged tag from one goroutine.
func recordN(ctx context.Context, s *Store, tag string, n int) error {
	for i := range n {
		if err := s.Record(ctx, testRecord(tag, i)); err != nil {
			return fmt.Errorf("record %s-%d: %w", tag, i, err)
		}
	}
	return nil
}

// recordParallel records n records from each of workers goroutines.
func recordParallel(ctx context.Context, s *Store, tag string, workers, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() { errs <- recordN(ctx, s, fmt.Sprintf("%s%d", tag, w), n) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// mustVerify fails the test unless the chain verifies with want records.
func mustVerify(t testing.TB, s *Store, want int64) {
	t.Helper()
	res, err := s.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !res.OK || res.Records != want {
		t.Fatalf("Verify = %+v, want OK with %d records", res, want)
	}
}

// checkContiguous fails unless seqs of all records run 1..want.
func checkContiguous(t testing.TB, s *Store, want int) {
	t.Helper()
	recs, err := s.Records(context.Background(), Filter{})
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	if len(recs) != want {
		t.Fatalf("got %d records, want %d", len(recs), want)
	}
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has seq %d, want %d", i, r.Seq, i+1)
		}
	}
}
