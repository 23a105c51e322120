package store

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// A database file removed from under a serving process (rm mediator.db-wal,
// or the database itself, or a rename over it): the store notices after
// the next commit, writes nothing more, and says why. A deleted log's
// records are saved into the database file first, so a restart finds them.
func TestFileRemovedWhileWriting(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the file guard reads /proc/self/fd, which only Linux has")
	}
	cases := []struct {
		name   string
		remove func(t *testing.T, path string)
		saved  bool   // the records committed before are in the database after a restart (and the error's steps)
		want   string // in the error
	}{
		{"write-ahead log deleted", func(t *testing.T, path string) { must(t, os.Remove(path+"-wal")) }, true, "write-ahead log"},
		{"write-ahead log replaced by a rename", func(t *testing.T, path string) {
			must(t, os.WriteFile(path+".other", nil, 0o600))
			must(t, os.Rename(path+".other", path+"-wal"))
		}, true, "write-ahead log"},
		{"database file deleted", func(t *testing.T, path string) { must(t, os.Remove(path)) }, true, ".recovered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := testDB(t)
			s := openTest(t, path)
			for i := range 3 {
				must(t, s.Record(t.Context(), testRecord("f", i)))
			}
			tc.remove(t, path)
			time.Sleep(checkEvery) // the guard looks at most this often
			// The commit after the removal finds it (the log's records are
			// saved, so that record stands); the one after is refused.
			_ = s.Record(t.Context(), testRecord("f", 3))
			err := s.Record(t.Context(), testRecord("f", 4))
			if !errors.Is(err, mediator.ErrAudit) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "deleted or replaced") {
				t.Fatalf("Record after the removal = %v, want ErrAudit naming the %s", err, tc.want)
			}
			if h := s.Healthy(); h == nil || !strings.Contains(h.Error(), "no call is forwarded") {
				t.Fatalf("Healthy = %v, want the cause and that no call is forwarded", h)
			}
			if !tc.saved {
				return
			}
			must(t, s.Close())
			if err := os.Remove(path + "-wal"); err != nil && !os.IsNotExist(err) {
				t.Fatal(err) // the stranger's file, if closing left it
			}
			if _, err := os.Stat(path + ".recovered"); err == nil {
				// What the error tells the operator to do.
				must(t, os.Rename(path+".recovered", path))
			}
			s2 := openTest(t, path)
			res, err := s2.Verify(t.Context())
			if err != nil || !res.OK || res.Records != 4 {
				t.Fatalf("after a restart: %+v, %v; want the 4 records committed before the refusal, chain intact", res, err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
