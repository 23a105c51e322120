package store

import (
	"context"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

// A forwarding record without an outcome is listed as unfinished; the
// next start (CloseUnfinishedForwards) records "outcome unknown" for the
// forwards of a writer that is gone, and leaves a live writer's alone.
func TestUnfinishedForwards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := testDB(t)
	s := openTest(t, path)
	fwd := func(st *Store, id string) mediator.ChainRecord {
		r := testRecord("fwd", 1)
		r.ID, r.Outcome, r.Method, r.Name, r.Server = id, mediator.OutcomeForwarding, "tools/call", "demo__pay", "demo"
		if err := st.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// A completed forward: its outcome names it.
	fwd(s, "f-done")
	done := testRecord("out", 2)
	done.Ref = "f-done"
	if err := s.Record(ctx, done); err != nil {
		t.Fatal(err)
	}
	// One of this (live) process, one of a process that crashed.
	fwd(s, "f-live")
	s.instance = "" + hostname(t) + "/999999999/1"
	fwd(s, "f-crashed")
	s.instance = processInstance()

	list, err := s.UnfinishedForwards(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "f-live" || list[1].ID != "f-crashed" {
		t.Fatalf("unfinished = %+v, %v", list, err)
	}
	if list[0].Writer != processInstance() || !strings.HasSuffix(list[1].Writer, "/999999999/1") {
		t.Fatalf("writers %q %q", list[0].Writer, list[1].Writer)
	}
	closed, err := s.CloseUnfinishedForwards(ctx)
	if err != nil || len(closed) != 1 || closed[0].Ref != "f-crashed" || closed[0].Outcome != mediator.OutcomeUnknown ||
		!strings.Contains(closed[0].Error, "may have executed it") {
		t.Fatalf("closed = %+v, %v", closed, err)
	}
	if list, _ = s.UnfinishedForwards(ctx); len(list) != 1 || list[0].ID != "f-live" {
		t.Fatalf("after closing: %+v", list)
	}
	if again, _ := s.CloseUnfinishedForwards(ctx); len(again) != 0 {
		t.Fatalf("a second start closed %d again", len(again))
	}
	mustVerify(t, s, 5)
}

func TestWriterAlive(t *testing.T) {
	t.Parallel()
	self := processInstance()
	host := hostname(t)
	for _, tc := range []struct {
		w    string
		want bool
	}{{self, true}, {host + "/1/5", true}, {host + "/999999999/5", false}, {"other-host.example/1/1", true},
		{"garbage", false}, {host + "/-3/1", false}} {
		if got := writerAlive(tc.w, self); got != tc.want {
			t.Errorf("writerAlive(%q) = %v, want %v", tc.w, got, tc.want)
		}
	}
}

func hostname(t *testing.T) string {
	t.Helper()
	h := strings.SplitN(processInstance(), "/", 2)[0]
	return h
}
