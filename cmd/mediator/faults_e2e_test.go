package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// Issue 12's faults, each against a real serve: the database's
// write-ahead log deleted while serving, the disk full, the database made
// read-only. In each, calls are refused with an error that names the
// cause, no call reaches the upstream without its record, and once the
// fault is gone (or the mediator restarted, for a deleted log) calls run
// again and the chain verifies.
func TestE2EAuditFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		tmpfs bool
		fault func(t *testing.T, dir string) (undo func())
		cause string // in the refusal
		// restart: the fault is over only after a restart.
		restart bool
	}{
		{"write-ahead log deleted", false, func(t *testing.T, dir string) func() {
			if err := os.Remove(filepath.Join(dir, "mediator.db-wal")); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}, "write-ahead log", true},
		{"disk full", true, func(t *testing.T, dir string) func() {
			filler := filepath.Join(dir, "filler")
			fillDisk(t, filler)
			return func() {
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
			}
		}, "full", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := ""
			if tc.tmpfs {
				dir = mountTmpfs(t, "16m")
			}
			ledger := filepath.Join(t.TempDir(), "ledger.txt") // off the faulty disk
			p := startServeIn(t, dir, fakeConfig(t, ""))
			c := httpClient(t, p.URL)
			for i := range 3 {
				if ok, text := ledgerCall(c, ledger, fmt.Sprintf("before-%d", i), 0); !ok {
					t.Fatalf("call before the fault refused: %s", text)
				}
			}
			undo := tc.fault(t, p.Dir)
			t.Logf("fault: %s", tc.name)
			// Calls go on until one is refused; a large argument makes the
			// log grow, so that a full disk shows.
			var refusal string
			for i := 0; i < 200 && refusal == ""; i++ {
				if ok, text := ledgerCall(c, ledger, fmt.Sprintf("during-%d", i), 16<<10); !ok {
					refusal = text
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(refusal, "audit") || !strings.Contains(strings.ToLower(refusal), tc.cause) {
				t.Fatalf("refusal %q, want one naming the audit log and %q\n%s", refusal, tc.cause, tail(p.stderr.String(), 3000))
			}
			t.Logf("refused: %s", refusal)
			// Refused from now on, before the upstream sees anything.
			executed := len(readLedger(t, ledger))
			for i := range 3 {
				if ok, text := ledgerCall(c, ledger, fmt.Sprintf("refused-%d", i), 0); ok {
					t.Fatalf("a call ran while the fault lasted: %s", text)
				}
			}
			if n := len(readLedger(t, ledger)); n != executed {
				t.Fatalf("the upstream executed %d calls after the refusal", n-executed)
			}
			undo()
			if tc.restart {
				p.stop(t)
				p = startServeIn(t, p.Dir, fakeConfig(t, ""))
				c = httpClient(t, p.URL)
			}
			ran := false
			for i := 0; i < 5 && !ran; i++ { // the first may be refused: its record is what shows the store works again
				ran, _ = ledgerCall(c, ledger, fmt.Sprintf("after-%d", i), 0)
			}
			if !ran {
				t.Fatalf("calls still refused after the fault ended\n%s", tail(p.stderr.String(), 3000))
			}
			p.stop(t)
			recorded := map[string]bool{}
			for _, r := range exportRecords(t, p.Dir, p.DB) {
				var args struct{ Entry string }
				if r.Name == "fake__ledger" && json.Unmarshal(r.Arguments, &args) == nil {
					recorded[args.Entry] = true
				}
			}
			for _, e := range readLedger(t, ledger) {
				if !recorded[e] {
					t.Errorf("the upstream executed %s, which has no record", e)
				}
			}
			if out, errOut, code := runMediator(t, p.Dir, "audit", "verify", "--db", p.DB); code != 0 || !strings.HasPrefix(out, "OK: ") {
				t.Fatalf("audit verify after the fault: %d\n%s%s", code, out, errOut)
			}
		})
	}
}

// ledgerCall asks the fake upstream to append entry to file (padded to pad
// bytes of argument); ok is false when the mediator refused, with its text.
func ledgerCall(c *client.Client, file, entry string, pad int) (bool, string) {
	req := mcp.CallToolRequest{}
	req.Params.Name = "fake__ledger"
	args := map[string]any{"file": file, "entry": entry}
	if pad > 0 {
		args["pad"] = strings.Repeat("x", pad)
	}
	req.Params.Arguments = args
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return false, err.Error()
	}
	return !res.IsError, resultText(res)
}

// mountTmpfs mounts a tmpfs of size on a new temp dir, unmounted when the
// test ends (after the mediator on it has stopped). It skips the test when
// mounting is not allowed: CI runs as root, by hand it needs sudo.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("this fault needs a small disk of its own: mounting a tmpfs failed (%v: %s); run the tests as root (CI does) to include it",
			err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes to path until the disk is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// The last few bytes, down to a block.
	small := make([]byte, 512)
	for {
		if _, err := f.Write(small); err != nil {
			return
		}
	}
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// The database made read-only (a file or filesystem remounted read-only,
// as the kernel does on disk errors; Linux refuses to remount with files
// open for writing, so the mediator is stopped first and the database file
// alone is bind-mounted read-only over itself): serve refuses to start,
// naming the database and the cause, and starts again, its chain intact,
// once the file is writable.
func TestE2EReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	ledger := filepath.Join(t.TempDir(), "ledger.txt")
	cfg := fakeConfig(t, "")
	p := startServe(t, cfg)
	c := httpClient(t, p.URL)
	if ok, text := ledgerCall(c, ledger, "before", 0); !ok {
		t.Fatal(text)
	}
	p.stop(t)
	if out, err := exec.Command("mount", "--bind", p.DB, p.DB).CombinedOutput(); err != nil {
		t.Skipf("this fault needs a read-only mount: bind-mounting the database failed (%v: %s); run the tests as root (CI does) to include it",
			err, strings.TrimSpace(string(out)))
	}
	unmounted := false
	unmount := func() {
		if !unmounted {
			unmounted = true
			mustRun(t, "umount", p.DB)
		}
	}
	t.Cleanup(unmount)
	mustRun(t, "mount", "-o", "remount,ro,bind", p.DB)
	_, err := tryServe(t, p.Dir, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), p.DB) {
		t.Fatalf("serve on a read-only database: %v; want a refusal to start naming the database and that it is read-only", err)
	}
	t.Logf("refused: %s", tail(err.Error(), 600))
	unmount()
	p = startServeIn(t, p.Dir, cfg)
	c = httpClient(t, p.URL)
	if ok, text := ledgerCall(c, ledger, "after", 0); !ok {
		t.Fatal(text)
	}
	p.stop(t)
	if out, errOut, code := runMediator(t, p.Dir, "audit", "verify", "--db", p.DB); code != 0 || !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("audit verify: %d\n%s%s", code, out, errOut)
	}
}
