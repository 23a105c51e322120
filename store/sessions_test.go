package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// chainViewRecord is record i of session sess, agent agent, task task.
func chainViewRecord(i int, sess, agent, task string) mediator.ChainRecord {
	r := testRecord("v", i)
	r.ID = fmt.Sprintf("v-%d", i)
	r.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Second)
	r.SessionID, r.AgentID, r.TaskID = sess, agent, task
	return r
}

// viewStore holds 10 records: seq 1..10 in sessions s1 (odd seqs, task
// tA), s2 (even seqs up to 8, task tB except seq 8 in tA) and none (seq
// 10, task tB).
func viewStore(t *testing.T) *Store {
	t.Helper()
	s := openTest(t, testDB(t))
	for i := 1; i <= 10; i++ {
		sess, agent, task := "s1", "a1", "tA"
		if i%2 == 0 {
			sess, agent, task = "s2", "a2", "tB"
		}
		if i == 8 {
			task = "tA"
		}
		if i == 10 {
			sess = ""
		}
		if err := s.Record(t.Context(), chainViewRecord(i, sess, agent, task)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func seqs(recs []mediator.ChainRecord) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

func TestSessionAndTaskRecords(t *testing.T) {
	t.Parallel()
	s := viewStore(t)
	tests := []struct {
		name  string
		query func() ([]mediator.ChainRecord, error)
		want  []int64
	}{
		{"session", func() ([]mediator.ChainRecord, error) { return s.SessionRecords(t.Context(), "s1", 0) },
			[]int64{1, 3, 5, 7, 9}},
		{"session, newest 2 in seq order", func() ([]mediator.ChainRecord, error) {
			return s.SessionRecords(t.Context(), "s2", 2)
		}, []int64{6, 8}},
		{"no such session", func() ([]mediator.ChainRecord, error) { return s.SessionRecords(t.Context(), "zz", 0) },
			nil},
		{"empty session id lists nothing", func() ([]mediator.ChainRecord, error) {
			return s.SessionRecords(t.Context(), "", 0)
		}, nil},
		{"task", func() ([]mediator.ChainRecord, error) { return s.TaskRecords(t.Context(), "tA", 0) },
			[]int64{1, 3, 5, 7, 8, 9}},
		{"task across sessions and none", func() ([]mediator.ChainRecord, error) {
			return s.TaskRecords(t.Context(), "tB", -3)
		}, []int64{2, 4, 6, 10}},
		{"task, newest 1", func() ([]mediator.ChainRecord, error) { return s.TaskRecords(t.Context(), "tB", 1) },
			[]int64{10}},
		{"empty task id lists nothing", func() ([]mediator.ChainRecord, error) {
			return s.TaskRecords(t.Context(), "", 0)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.query()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(seqs(got), tt.want) {
				t.Fatalf("seqs = %v, want %v", seqs(got), tt.want)
			}
		})
	}
}

func TestChainViewLimitBounds(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want int }{
		{0, DefaultChainViewLimit}, {-1, DefaultChainViewLimit}, {5, 5},
		{MaxChainViewLimit, MaxChainViewLimit}, {MaxChainViewLimit + 1, MaxChainViewLimit},
	}
	for _, tt := range tests {
		if got := boundLimit(tt.in, DefaultChainViewLimit, MaxChainViewLimit); got != tt.want {
			t.Errorf("boundLimit(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
	s := openTest(t, testDB(t))
	for i := range DefaultChainViewLimit + 3 {
		if err := s.Record(t.Context(), chainViewRecord(i, "big", "a", "t")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.SessionRecords(t.Context(), "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != DefaultChainViewLimit || got[0].Seq != 4 || got[len(got)-1].Seq != DefaultChainViewLimit+3 {
		t.Fatalf("default limit: %d records, seq %d..%d", len(got), got[0].Seq, got[len(got)-1].Seq)
	}
}

func TestSessions(t *testing.T) {
	t.Parallel()
	s := viewStore(t)
	at := func(i int) time.Time { return chainViewRecord(i, "", "", "").Time }
	s1 := SessionSummary{SessionID: "s1", AgentID: "a1", TaskID: "tA", Transport: "stdio",
		Records: 5, FirstSeq: 1, LastSeq: 9, First: at(1), Last: at(9)}
	s2 := SessionSummary{SessionID: "s2", AgentID: "a2", TaskID: "tA", Transport: "stdio",
		Records: 4, FirstSeq: 2, LastSeq: 8, First: at(2), Last: at(8)}
	s2tB := SessionSummary{SessionID: "s2", AgentID: "a2", TaskID: "tB", Transport: "stdio",
		Records: 3, FirstSeq: 2, LastSeq: 6, First: at(2), Last: at(6)}
	s1Since := SessionSummary{SessionID: "s1", AgentID: "a1", TaskID: "tA", Transport: "stdio",
		Records: 2, FirstSeq: 7, LastSeq: 9, First: at(7), Last: at(9)}
	s2Since := SessionSummary{SessionID: "s2", AgentID: "a2", TaskID: "tA", Transport: "stdio",
		Records: 1, FirstSeq: 8, LastSeq: 8, First: at(8), Last: at(8)}
	tests := []struct {
		name string
		f    SessionFilter
		want []SessionSummary
	}{
		{"all, newest first, no empty session", SessionFilter{}, []SessionSummary{s1, s2}},
		{"limit", SessionFilter{Limit: 1}, []SessionSummary{s1}},
		{"agent", SessionFilter{AgentID: "a2"}, []SessionSummary{s2}},
		{"task counts only its records", SessionFilter{TaskID: "tB"}, []SessionSummary{s2tB}},
		{"since", SessionFilter{Since: at(7)}, []SessionSummary{s1Since, s2Since}},
		{"no match", SessionFilter{AgentID: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Sessions(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Sessions = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if !g.First.Equal(w.First) || !g.Last.Equal(w.Last) {
					t.Errorf("session %s times %v..%v, want %v..%v", g.SessionID, g.First, g.Last, w.First, w.Last)
				}
				g.First, g.Last = w.First, w.Last
				if g != w {
					t.Errorf("session %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestChainViewClosedStore(t *testing.T) {
	t.Parallel()
	s := openTest(t, testDB(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionRecords(t.Context(), "s", 0); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("SessionRecords on closed store = %v", err)
	}
	if _, err := s.TaskRecords(t.Context(), "t", 0); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("TaskRecords on closed store = %v", err)
	}
	if _, err := s.Sessions(t.Context(), SessionFilter{}); !errors.Is(err, mediator.ErrAudit) {
		t.Errorf("Sessions on closed store = %v", err)
	}
}
