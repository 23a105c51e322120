package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Issue 12: rolling the database back to an older copy (a restored
// backup: the newest records gone, the rest intact) passes the chain walk
// but not the signed checkpoints, which a running mediator kept outside
// the database; neither does it pass a checkpoint printed by `audit
// checkpoint` and kept out of band. A start on the rolled-back database
// says so in the log.
func TestE2ECheckpointsDetectRollback(t *testing.T) {
	t.Parallel()
	cps := filepath.Join(t.TempDir(), "elsewhere", "chain.checkpoints")
	cfg := fakeConfig(t, "audit:\n  checkpoints: {file: "+cps+", every: 1, interval: 1s}\n")
	p := startServe(t, cfg)
	c := httpClient(t, p.URL)
	for range 3 {
		callTool(t, c, "fake__echo", map[string]any{"text": "before the backup"})
	}
	p.stop(t)
	backup, err := os.ReadFile(p.DB)
	if err != nil {
		t.Fatal(err)
	}
	p2 := startServeIn(t, p.Dir, cfg)
	c2 := httpClient(t, p2.URL)
	for range 5 {
		callTool(t, c2, "fake__ledger", map[string]any{"file": filepath.Join(p.Dir, "ledger"), "entry": "after the backup"})
	}
	p2.stop(t)
	out, errOut, code := runMediator(t, p.Dir, "audit", "verify", "--config", filepath.Join(p.Dir, "mediator.yaml"), "--db", p.DB)
	if code != 0 || !strings.Contains(out, "signed checkpoints match") {
		t.Fatalf("audit verify of the untouched database: %d\n%s%s", code, out, errOut)
	}
	kept, _, code := runMediator(t, p.Dir, "audit", "checkpoint", "--config", filepath.Join(p.Dir, "mediator.yaml"), "--db", p.DB)
	if code != 0 || !strings.Contains(kept, `"sig"`) {
		t.Fatalf("audit checkpoint: %d %s", code, kept)
	}
	keptFile := filepath.Join(t.TempDir(), "kept.json")
	if err := os.WriteFile(keptFile, []byte(kept), 0o600); err != nil {
		t.Fatal(err)
	}

	// The rollback: the backup replaces the database.
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(p.DB + suffix)
	}
	if err := os.WriteFile(p.DB, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"audit", "verify", "--config", filepath.Join(p.Dir, "mediator.yaml"), "--db", p.DB},
		{"audit", "verify", "--db", p.DB, "--config", filepath.Join(p.Dir, "mediator.yaml"), "--checkpoint", keptFile},
	} {
		out, errOut, code := runMediator(t, p.Dir, args...)
		if code != 1 || !strings.Contains(out, "OK: ") || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "were removed (truncated)") {
			t.Fatalf("%v after a rollback: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	p3 := startServeIn(t, p.Dir, cfg)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p3.stderr.String(), "does not match its newest signed checkpoint") {
		if time.Now().After(deadline) {
			t.Fatalf("a start on the rolled-back database did not say so:\n%s", p3.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// audit export --follow streams records as they are committed, from a
// seq, and says where to resume; --after-seq resumes there.
func TestE2EAuditExportFollow(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, ""))
	c := httpClient(t, p.URL)
	callTool(t, c, "fake__echo", map[string]any{"text": "first"})
	cmd := exec.CommandContext(t.Context(), binary(t), "audit", "export", "--follow", "--db", p.DB)
	cmd.Dir = p.Dir
	var errOut lockedBuffer
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan mediator.ChainRecord, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r mediator.ChainRecord
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				lines <- r
			}
		}
		close(lines)
	}()
	want := func(text string) int64 {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r := <-lines:
				if strings.Contains(string(r.Arguments), text) {
					return r.Seq
				}
			case <-deadline:
				t.Fatalf("the record of %q never streamed", text)
			}
		}
	}
	want("first")
	callTool(t, c, "fake__echo", map[string]any{"text": "second, while following"})
	seq := want("second, while following")
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if !strings.Contains(errOut.String(), "resume with --after-seq") {
		t.Errorf("follow did not say where to resume: %s", errOut.String())
	}
	callTool(t, c, "fake__echo", map[string]any{"text": "third"})
	out, _, code := runMediator(t, p.Dir, "audit", "export", "--after-seq", strconv.FormatInt(seq, 10), "--db", p.DB)
	if code != 0 || strings.Contains(out, "second, while following") || !strings.Contains(out, "third") {
		t.Fatalf("export --after-seq %d: %d\n%s", seq, code, out)
	}
}

// After `mediator keys rotate`, the checkpoints the old key signed still
// verify (its public half is kept), and the new ones are signed with the
// new key.
func TestE2ECheckpointsAcrossKeyRotation(t *testing.T) {
	t.Parallel()
	cps := filepath.Join(t.TempDir(), "chain.checkpoints")
	cfg := fakeConfig(t, "audit:\n  checkpoints: {file: "+cps+", every: 1, interval: 1s}\n")
	p := startServe(t, cfg)
	callTool(t, httpClient(t, p.URL), "fake__echo", map[string]any{"text": "signed by the first key"})
	p.stop(t)
	conf := filepath.Join(p.Dir, "mediator.yaml")
	out, errOut, code := runMediator(t, p.Dir, "keys", "rotate", "--config", conf)
	if code != 0 || !strings.Contains(out, "is now") {
		t.Fatalf("keys rotate: %d %s %s", code, out, errOut)
	}
	p2 := startServeIn(t, p.Dir, cfg)
	callTool(t, httpClient(t, p2.URL), "fake__echo", map[string]any{"text": "signed by the second key"})
	p2.stop(t)
	data, _ := os.ReadFile(cps)
	var kids []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c struct{ KID string }
		if json.Unmarshal([]byte(l), &c) == nil && (len(kids) == 0 || kids[len(kids)-1] != c.KID) {
			kids = append(kids, c.KID)
		}
	}
	if len(kids) != 2 {
		t.Fatalf("checkpoints signed by %v, want two keys in turn", kids)
	}
	out, errOut, code = runMediator(t, p.Dir, "audit", "verify", "--config", conf, "--db", p.DB)
	if code != 0 || !strings.Contains(out, "signed checkpoints match") {
		t.Fatalf("audit verify across a rotation: %d\n%s%s", code, out, errOut)
	}
}

// audit prune archives the old records to a file that verifies on its
// own, and the pruned chain still verifies, against its checkpoints too,
// and keeps growing after a restart.
func TestE2EAuditPrune(t *testing.T) {
	t.Parallel()
	cps := filepath.Join(t.TempDir(), "chain.checkpoints")
	cfg := fakeConfig(t, "audit:\n  checkpoints: {file: "+cps+", every: 1, interval: 1s}\n")
	p := startServe(t, cfg)
	c := httpClient(t, p.URL)
	for range 4 {
		callTool(t, c, "fake__echo", map[string]any{"text": "old"})
	}
	p.stop(t)
	conf := filepath.Join(p.Dir, "mediator.yaml")
	archive := filepath.Join(t.TempDir(), "2026.jsonl")
	out, errOut, code := runMediator(t, p.Dir, "audit", "prune", "--before", "0s", "--archive", archive, "--config", conf, "--db", p.DB)
	if code != 0 || !strings.Contains(out, "archived records 1 to ") {
		t.Fatalf("audit prune: %d %s %s", code, out, errOut)
	}
	out, errOut, code = runMediator(t, p.Dir, "audit", "verify", "--archive", archive, "--config", conf, "--db", p.DB)
	if code != 0 || !strings.Contains(out, "intact and signed") {
		t.Fatalf("audit verify --archive: %d %s %s", code, out, errOut)
	}
	p2 := startServeIn(t, p.Dir, cfg)
	callTool(t, httpClient(t, p2.URL), "fake__echo", map[string]any{"text": "new"})
	p2.stop(t)
	out, errOut, code = runMediator(t, p.Dir, "audit", "verify", "--config", conf, "--db", p.DB)
	if code != 0 || !strings.Contains(out, "signed checkpoints match") {
		t.Fatalf("audit verify after a prune: %d\n%s%s", code, out, errOut)
	}
	data, _ := os.ReadFile(archive)
	if err := os.WriteFile(archive, []byte(strings.Replace(string(data), "old", "new", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, code := runMediator(t, p.Dir, "audit", "verify", "--archive", archive, "--config", conf, "--db", p.DB); code != 1 || !strings.Contains(out, "TAMPERED") {
		t.Fatalf("an edited archive: %d %s", code, out)
	}
}
