package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 14, finding 12: upstream children ran as the mediator's own user
// and could read mediator.key and the database. A stdio upstream with
// user: runs as that account (the mediator must be root), and the key and
// the database are readable by their owner only, so the child cannot read
// them; without user:, a child of a root mediator still can, and the
// mediator warns at start.
func TestE2EUpstreamChildRunsAsItsOwnUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child as another user (user: nobody); CI runs the tests as root")
	}
	// The child must be able to run the binary: copy it where nobody can.
	binDir := t.TempDir()
	for _, d := range []string{binDir, filepath.Dir(binDir)} { // the test's temp root is 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fake := filepath.Join(binDir, "fakeupstream")
	copyFile(t, buildTool(t, "tools/testdata/fakeupstream"), fake, 0o755)
	p := startServe(t, policyFragment(t, "p, *, tool, *, allow, all\n")+`
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: shared
    command: `+fake+`
    dir: /
  - name: jailed
    command: `+fake+`
    dir: /
    user: nobody
`)
	// Only the files' own modes protect them: the directory is open.
	if err := os.Chmod(p.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := httpClient(t, p.URL)
	key, db := filepath.Join(p.Dir, "mediator.key"), filepath.Join(p.Dir, "mediator.db")
	for _, f := range []string{key, db} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %s; want readable by its owner only", f, fi.Mode().Perm())
		}
	}
	// The child reads it; the result scanner redacts it before the agent
	// sees it (secrets: redact), which is also the proof it was read.
	if res := callTool(t, c, "shared__cat", map[string]any{"path": key}); res.IsError || !strings.Contains(resultText(res), "[REDACTED:private-key]") {
		t.Fatalf("a child of a root mediator without user: should still read the key (the documented risk): %s", resultText(res))
	}
	for _, f := range []string{key, db} {
		res := callTool(t, c, "jailed__cat", map[string]any{"path": f})
		if !res.IsError || !strings.Contains(resultText(res), "permission denied") {
			t.Errorf("the child running as nobody read %s: %.200s", f, resultText(res))
		}
	}
	if out := resultText(callTool(t, c, "jailed__env", nil)); !strings.Contains(out, "HOME=/nonexistent") {
		t.Errorf("the jailed child's HOME is not nobody's: %s", out)
	}
	p.stop(t)
	if !strings.Contains(p.stderr.String(), "runs as root") {
		t.Error("no warning that the shared upstream runs as root")
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
