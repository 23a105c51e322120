package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/internal/testenv"
)

// The end-to-end tests run the real mediator binary with real upstream
// subprocesses, built once (internal/testenv).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// binary builds ./cmd/mediator once and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	return testenv.Build(t, "cmd/mediator")
}

// buildTool builds a Go main package (path relative to the repo root) once
// per test binary and returns the executable.
func buildTool(t testing.TB, pkg string) string {
	t.Helper()
	return testenv.Build(t, pkg)
}

func repoRoot(t testing.TB) string {
	t.Helper()
	return testenv.Root(t)
}

// freeAddr returns a loopback address with a free port (testenv.FreeAddr).
func freeAddr(t testing.TB) string {
	t.Helper()
	return testenv.FreeAddr(t)
}

// noServer is an admin API address where nothing listens, for CLI calls
// that must act on the key file or database directly: a test never leaves
// a command to find the config's default admin port (127.0.0.1:8081),
// where a developer's own mediator may run.
func noServer(t testing.TB) string {
	t.Helper()
	return "http://" + freeAddr(t)
}

// mediatorProc is a running `mediator serve`.
type mediatorProc struct {
	cmd    *exec.Cmd
	URL    string // http://addr/mcp
	Base   string // http://addr
	Admin  string // http://admin-addr, the admin API (admin.go)
	DB     string
	Dir    string
	stderr *lockedBuffer
	done   chan error
}

// startServe writes config (YAML, with {{DIR}} replaced by a temp dir and
// {{ROOT}} by the repository root) and runs `mediator serve` on it in that
// dir until the test ends; it waits for /readyz. An empty config runs the
// embedded default.
func startServe(t testing.TB, config string, extraEnv ...string) *mediatorProc {
	t.Helper()
	return startServeIn(t, "", config, extraEnv...)
}

// startServeIn is startServe in dir ("" for a new temp dir): a restart of
// a mediator in the dir, on the database, key and sandbox an earlier one
// left there.
func startServeIn(t testing.TB, dir, config string, extraEnv ...string) *mediatorProc {
	t.Helper()
	// Another test process may take a port between freeAddr and the
	// mediator's listen: try again on fresh ports, a few times.
	for attempt := 1; ; attempt++ {
		p, err := tryServe(t, dir, config, extraEnv)
		if err == nil {
			return p
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; trying other ports", attempt, err)
	}
}

// errPortTaken marks a start that failed because a port was in use.
var errPortTaken = errors.New("port already in use")

func tryServe(t testing.TB, dir, config string, extraEnv []string) (*mediatorProc, error) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	addr := freeAddr(t)
	cfgPath := filepath.Join(dir, "mediator.yaml")
	config = strings.ReplaceAll(config, "{{DIR}}", dir)
	config = strings.ReplaceAll(config, "{{ROOT}}", repoRoot(t))
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &mediatorProc{URL: "http://" + addr + "/mcp", Base: "http://" + addr, DB: filepath.Join(dir, "mediator.db"), Dir: dir,
		stderr: &lockedBuffer{}, done: make(chan error, 1)}
	// Each mediator's admin API on a port of its own, so that tests run in
	// parallel.
	adminAddr := freeAddr(t)
	p.Admin = "http://" + adminAddr
	args := []string{"serve", "--listen", addr, "--admin-listen", adminAddr, "--db", p.DB}
	if config != "" {
		args = append(args, "--config", cfgPath)
	}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), extraEnv...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	if err := p.ready(60 * time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *mediatorProc) waitReady(t testing.TB, d time.Duration) {
	t.Helper()
	if err := p.ready(d); err != nil {
		t.Fatal(err)
	}
}

// ready waits for /readyz; the error wraps errPortTaken when the mediator
// exited because an address was in use.
func (p *mediatorProc) ready(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err // for stop
			log := p.stderr.String()
			if strings.Contains(log, "address already in use") {
				return fmt.Errorf("mediator exited before ready: %w: %v\n%s", errPortTaken, err, log)
			}
			return fmt.Errorf("mediator exited before ready: %v\n%s", err, log)
		default:
		}
		resp, err := http.Get(p.Base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("mediator not ready after %s\n%s", d, p.stderr.String())
}

// stop sends SIGTERM and waits for a clean exit.
func (p *mediatorProc) stop(t testing.TB) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("mediator did not stop within 30s after SIGTERM\n%s", p.stderr.String())
	}
}

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runMediator runs the binary with args and returns stdout, stderr, exit code.
func runMediator(t testing.TB, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Dir = dir
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// requireTool finds an external tool (node, npx, chromium) for a test that
// needs it. Under CI=true a missing tool fails the test; by hand it skips
// with a message saying how to install it.
func requireTool(t *testing.T, what, hint string, find func() (string, bool)) string {
	t.Helper()
	if p, ok := find(); ok {
		return p
	}
	msg := fmt.Sprintf("%s not available: %s", what, hint)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// scanLines returns the lines of s.
func scanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, len(s)+1) // a record with capped arguments and result is longer than bufio's 64 KiB
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
