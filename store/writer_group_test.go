package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
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

// Under sustained writes the WAL is restarted from its beginning after
// checkpoints instead of growing with every record (a checkpoint that runs
// while records are appended never lets it restart). The WAL header's
// checkpoint sequence number (bytes 12-15) counts the restarts.
func TestWALRestartsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 4,000 records")
	}
	path := testDB(t)
	s := openTest(t, path)
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.Record(context.Background(), testRecord(fmt.Sprintf("l%d", w), i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	f, err := os.Open(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hdr [16]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if seq := binary.BigEndian.Uint32(hdr[12:]); seq == 0 {
		t.Fatal("the WAL was never restarted while 4,000 records were written")
	}
}
