// Package testenv is the test harness the end-to-end tests of the
// commands share: a process-wide temporary directory for built binaries
// and for the state mediators keep (XDG_STATE_HOME, never the developer's
// own), loopback addresses on free ports (never a default one, such as
// 8080 or 8081, where a developer's own mediator may run), and main
// packages built once per test binary.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	dir string // the process's temporary directory (Main)

	buildMu sync.Mutex
	built   = map[string]string{}

	usedMu sync.Mutex
	used   = map[string]bool{}
)

// Main runs the tests of a package with a temporary directory of their
// own, which holds the built binaries and, as XDG_STATE_HOME, every state
// file a mediator started by the tests writes (audit checkpoints); it is
// removed afterwards. Use it as TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	d, err := os.MkdirTemp("", "mediator-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir = d
	defer os.RemoveAll(d)
	if err := os.Setenv("XDG_STATE_HOME", filepath.Join(d, "state")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Dir is the directory Main made.
func Dir() string { return dir }

// Root returns the repository root: the nearest directory above the
// working directory that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}

// Build builds a main package, named relative to the repository root
// ("cmd/mediator", "tools/testdata/fakeupstream"), once per test binary,
// and returns the executable. It needs Main.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	if dir == "" {
		t.Fatal("testenv.Build needs testenv.Main as the package's TestMain")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("this test builds " + pkg + " and needs the go command on PATH: " + err.Error())
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	out := filepath.Join(dir, "bin", strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "_"))
	cmd := exec.Command("go", "build", "-o", out, "./"+strings.TrimPrefix(pkg, "./"))
	cmd.Dir = Root(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// FreeAddr returns a loopback address with a free port, never one it
// returned before in this process: the kernel hands a just-closed port
// out again, and two addresses taken in a row (listen and admin) could
// otherwise be the same.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		usedMu.Lock()
		seen := used[addr]
		used[addr] = true
		usedMu.Unlock()
		if !seen {
			return addr
		}
	}
	t.Fatal("no unused loopback port after 100 tries")
	return ""
}
