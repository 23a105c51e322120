package store

import (
	"context"
	"sync"
	"testing"
)

// Records of calls that run side by side (the pipeline tells the store,
// through mediator.CallTracker) are committed in groups; every one of
// them is committed, in one intact chain.
func TestGroupCommitKeepsEveryRecord(t *testing.T) {
	s := openTest(t, testDB(t))
	const calls = 200
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		s.CallStarted()
		wg.Go(func() {
			s.CallEnded()
			errs[i] = s.Record(context.Background(), testRecord("g", i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if st := s.WriterStats(); st.Records != calls || st.Commits < 1 || st.Commits > calls {
		t.Fatalf("WriterStats = %+v, want %d records in 1..%d commits", st, calls, calls)
	}
	mustVerify(t, s, calls)
}

// A record waits for its siblings' records only for a moment: calls that
// never finish (an approval pending for minutes, a slow tool) do not hold
// it back.
func TestGroupCommitDoesNotWaitForever(t *testing.T) {
	s := openTest(t, testDB(t))
	for range groupSiblings + 2 {
		s.CallStarted() // never ended
	}
	for i := range 3 {
		if err := s.Record(t.Context(), testRecord("w", i)); err != nil {
			t.Fatal(err)
		}
	}
	mustVerify(t, s, 3)
}

// Checkpoints run in the background: after many records, and across a
// reopen, the chain is whole.
func TestBackgroundCheckpoints(t *testing.T) {
	path := testDB(t)
	s := openTest(t, path)
	n := 3*ckptRecords + 7
	for i := range n {
		if err := s.Record(t.Context(), testRecord("c", i)); err != nil {
			t.Fatal(err)
		}
	}
	if s.w.ckpt == nil {
		t.Error("no background checkpointer")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, openTest(t, path), int64(n))
}
