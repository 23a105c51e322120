package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment of the child processes the tests below start by re-running
// this test binary.
const (
	childModeEnv = "STORE_TEST_CHILD_MODE"
	childDBEnv   = "STORE_TEST_CHILD_DB"
	childNEnv    = "STORE_TEST_CHILD_N"
	childTagEnv  = "STORE_TEST_CHILD_TAG"
	ackedLine    = "acked"
)

// TestChildProcess is not a test: it is the body of the child processes.
func TestChildProcess(t *testing.T) {
	mode := os.Getenv(childModeEnv)
	if mode == "" {
		t.Skip("runs only as a child process of the multi-process tests")
	}
	n, err := strconv.Atoi(os.Getenv(childNEnv))
	if err != nil {
		t.Fatalf("bad %s: %v", childNEnv, err)
	}
	s, err := Open(t.Context(), os.Getenv(childDBEnv), WithBatchSize(32))
	if err != nil {
		t.Fatal(err)
	}
	tag := os.Getenv(childTagEnv)
	switch mode {
	case "append":
		if err := recordParallel(t.Context(), s, tag, 4, n/4); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	case "ack-then-die":
		if err := recordParallel(t.Context(), s, tag, 4, n/4); err != nil {
			t.Fatal(err)
		}
		fmt.Println(ackedLine)
		// Keep writing until the parent kills us mid-transaction.
		_ = recordParallel(context.Background(), s, tag+"-more", 4, 1_000_000)
		time.Sleep(time.Hour)
	default:
		t.Fatalf("unknown child mode %q", mode)
	}
}

// child returns the command that runs this test binary as a child.
func child(t *testing.T, mode, path, tag string, n int) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childDBEnv+"="+path,
		childNEnv+"="+strconv.Itoa(n), childTagEnv+"="+tag)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestMultiProcessAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := testDB(t)
	const perChild = 400
	a := child(t, "append", path, "a", perChild)
	b := child(t, "append", path, "b", perChild)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	errA, errB := a.Wait(), b.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("children failed: %v, %v", errA, errB)
	}
	s := openTest(t, path)
	mustVerify(t, s, 2*perChild)
	checkContiguous(t, s, 2*perChild)
}

func TestAcknowledgedRecordsSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := testDB(t)
	const n = 200
	cmd := child(t, "ack-then-die", path, "k", n)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForLine(t, out, ackedLine)
	time.Sleep(20 * time.Millisecond) // let it get into later transactions
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s := openTest(t, path)
	res, err := s.Verify(t.Context())
	if err != nil || !res.OK {
		t.Fatalf("Verify after kill = %+v, %v", res, err)
	}
	for w := range 4 {
		recs, err := s.Records(t.Context(), Filter{SessionID: fmt.Sprintf("sess-k%d", w)})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != n/4 {
			t.Errorf("writer %d: %d acknowledged records after kill, want %d", w, len(recs), n/4)
		}
	}
	t.Logf("%d records in the chain after the kill (%d acknowledged before it)", res.Records, n)
}

// waitForLine reads lines from r until one equals want.
func waitForLine(t *testing.T, r interface{ Read([]byte) (int, error) }, want string) {
	t.Helper()
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == want {
				found <- true
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("child exited before printing %q", want)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("child did not print %q in time", want)
	}
}
