package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/internal/testenv"
)

// The tests run the load tool against real MCP servers: the fake upstream
// of package tools (stdio and streamable HTTP) and, once, the mediator
// with its debug endpoint. They check counts and error kinds, never
// timings.

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// build builds a main package (relative to the repository root) once.
func build(t *testing.T, pkg string) string {
	t.Helper()
	return testenv.Build(t, pkg)
}

func fakeUpstream(t *testing.T) string { return build(t, "tools/testdata/fakeupstream") }

// startHTTP runs a server that writes its URL to the file named by the
// argument after "--addr-file", and returns the URL.
func startHTTP(t *testing.T, name string, args ...string) string {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(name, append(args, "--addr-file", addrFile)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(addrFile); len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatal("server did not report its URL")
	return ""
}

// runJSON runs the tool with --json and returns its report.
func runJSON(t *testing.T, args ...string) *report {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := Run(ctx, append([]string{"--json", "--progress", "50ms"}, args...), &out, &errb); err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, errb.String())
	}
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	return &r
}

func TestLoadStdio(t *testing.T) {
	t.Parallel()
	r := runJSON(t, "--tool", "echo", "--args", `{"text":"ping"}`, "-n", "300", "-c", "4", "--sessions", "1", "--", fakeUpstream(t))
	if r.Calls != 300 || r.OK != 300 || r.Transport != "stdio" || r.Workers != 4 || r.Sessions != 1 {
		t.Fatalf("report = %+v, want 300 ok calls over stdio by 4 workers on 1 session", r)
	}
	if r.Latency.P50 <= 0 || r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.Max || r.Throughput <= 0 {
		t.Errorf("latency figures inconsistent: %+v, throughput %v", r.Latency, r.Throughput)
	}
	if r.Server.Open == nil || r.Server.Open.Source != "proc" || r.Server.Open.RSSBytes <= 0 {
		t.Errorf("a single stdio child's RSS should come from /proc: %+v", r.Server.Open)
	}
}

// The bare mcp-go relay that scripts/bench.sh measures as the floor relays
// the upstream's tools under demo__ names, over stdio and over HTTP, with the
// debug endpoint the load tool reads.
func TestLoadThroughRelay(t *testing.T) {
	t.Parallel()
	relay, up := build(t, "tools/testdata/mcpgorelay"), fakeUpstream(t)
	tests := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"stdio", func(*testing.T) []string {
			return []string{"-n", "1000", "-c", "4", "--sessions", "1", "--", relay, "--", up}
		}},
		{"http", func(t *testing.T) []string {
			upURL := startHTTP(t, up, "--mode", "http")
			debug := freeAddr(t)
			url := startHTTP(t, relay, "--mode", "http", "--upstream-url", upURL, "--debug-listen", debug)
			return []string{"-n", "200", "-c", "4", "--sessions", "4", "--url", url, "--debug-url", "http://" + debug}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runJSON(t, append([]string{"--tool", "demo__echo", "--args", `{"text":"ping"}`}, tc.args(t)...)...)
			if r.Calls == 0 || r.OK != r.Calls {
				t.Fatalf("report = %+v (errors %v), want only ok calls through the relay", r, r.ErrorSamples)
			}
			if r.Server.After == nil || r.Server.After.RSSBytes <= 0 || r.ServerCPUPerCall <= 0 {
				t.Errorf("no RSS or CPU figures for the relay: %+v, CPU per call %v, notes %v", r.Server.After, r.ServerCPUPerCall, r.Notes)
			}
		})
	}
}

func TestLoadHTTPManySessions(t *testing.T) {
	t.Parallel()
	url := startHTTP(t, fakeUpstream(t), "--mode", "http")
	r := runJSON(t, "--url", url, "--tool", "echo", "--args", `{"text":"ping"}`, "-d", "300ms", "-c", "3", "--sessions", "8")
	if r.Calls == 0 || r.OK != r.Calls || r.Transport != "http" || r.Sessions != 8 {
		t.Fatalf("report = %+v, want only ok calls over http on 8 sessions", r)
	}
	for kind, n := range r.Errors {
		if n != 0 {
			t.Errorf("%d %s errors: %v", n, kind, r.ErrorSamples)
		}
	}
}

// Each kind of failure is counted as itself.
func TestErrorKinds(t *testing.T) {
	t.Parallel()
	fake := fakeUpstream(t)
	cases := []struct {
		name, tool, args string
		extra            []string
		kind             string
	}{
		{"tool result with isError (sampling is not offered)", "sample", `{}`, nil, "tool_error"},
		{"unknown tool is a JSON-RPC error", "no_such_tool", `{}`, nil, "jsonrpc_error"},
		{"slow call times out", "sleep", `{"seconds":5}`, []string{"--timeout", "100ms"}, "timeout"},
		{"server exits: transport error", "crash", `{}`, nil, "transport_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--tool", tc.tool, "--args", tc.args, "-n", "2", "--warmup", "0"}, tc.extra...)
			r := runJSON(t, append(args, "--", fake)...)
			if r.Calls != 2 || r.Errors[tc.kind] != 2 {
				t.Fatalf("errors = %v (calls %d), want 2 %s; samples %v", r.Errors, r.Calls, tc.kind, r.ErrorSamples)
			}
			if r.ErrorSamples[tc.kind] == "" {
				t.Errorf("no sample message for %s", tc.kind)
			}
		})
	}
}

// A warm-up call that fails outright stops the run: the tool or the
// arguments are wrong, and the figures would mean nothing.
func TestWarmupFailureStopsTheRun(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	err := Run(t.Context(), []string{"--tool", "no_such_tool", "-n", "5", "--", fakeUpstream(t)}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "warm-up") {
		t.Fatalf("err = %v, want a warm-up failure", err)
	}
}

func TestTableOutput(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if err := Run(t.Context(), []string{"--tool", "echo", "-n", "50", "--label", "table test", "--", fakeUpstream(t)}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"table test", "throughput", "p50", "p99", "tool_error 0", "transport_error 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// Against the mediator: its memory and goroutines come from the debug
// endpoint before and after, and profiles are saved.
func TestLoadMediatorWithDebugEndpoint(t *testing.T) {
	t.Parallel()
	mediatorBin := build(t, "cmd/mediator")
	dir := t.TempDir()
	debugAddr := freeAddr(t)
	cfg := filepath.Join(dir, "m.yaml")
	config := "agent: {id: bench-test, roles: [writer]}\nlog: {level: warn}\n" +
		"debug: {listen: " + debugAddr + ", block_profile_rate: 10000, mutex_profile_fraction: 10}\n" +
		"upstreams:\n  - {name: demo, command: " + fakeUpstream(t) + "}\n"
	if knowsKey(t, mediatorBin, `admin: {listen: ""}`) {
		config += "admin: {listen: \"\"}\n" // tests run in parallel: no fixed admin port
	}
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	cmd := exec.Command(mediatorBin, "serve", "--config", cfg, "--listen", listen, "--db", filepath.Join(dir, "m.db"))
	logPath := filepath.Join(dir, "stderr.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	waitHTTP(t, "http://"+listen+"/readyz", logPath)
	profDir := filepath.Join(dir, "prof")
	args := []string{"--url", "http://" + listen + "/mcp", "--tool", "demo__echo", "--args", `{"text":"ping"}`,
		"-d", "1s", "-c", "2", "--debug-url", "http://" + debugAddr, "--profile-dir", profDir, "--cpu-profile", "1s"}
	r := runJSON(t, append(args, bearerArgs(t, mediatorBin, cfg)...)...)
	if r.Calls == 0 || r.OK != r.Calls {
		t.Fatalf("report = %+v, want only ok calls", r)
	}
	for name, s := range map[string]*snapshot{"before": r.Server.Before, "open": r.Server.Open, "after": r.Server.After} {
		if s == nil || s.Source != "debug" || s.RSSBytes <= 0 || s.Goroutines <= 0 || s.HeapAllocBytes <= 0 {
			t.Errorf("server %s = %+v, want RSS, goroutines and heap from the debug endpoint (notes %v)", name, s, r.Notes)
		}
	}
	for _, f := range []string{"heap-before.pb.gz", "heap-after.pb.gz", "goroutine-after.txt", "block-after.pb.gz", "mutex-after.pb.gz", "cpu.pb.gz"} {
		if st, err := os.Stat(filepath.Join(profDir, f)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s not saved: %v", f, err)
		}
	}
}

// knowsKey reports whether the mediator accepts the config line (builds
// from before a key refuse it as unknown).
func knowsKey(t *testing.T, mediatorBin, line string) bool {
	t.Helper()
	probe := filepath.Join(t.TempDir(), "probe.yaml")
	if err := os.WriteFile(probe, []byte("agent: {id: probe}\nupstreams: []\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(mediatorBin, "upstream", "list", "--config", probe).CombinedOutput()
	return !strings.Contains(string(out), "not found")
}

// bearerArgs mints an agent token with the mediator when it has agent
// tokens (HTTP agents then need one), for --bearer.
func bearerArgs(t *testing.T, mediatorBin, cfg string) []string {
	t.Helper()
	if exec.Command(mediatorBin, "token", "mint", "--help").Run() != nil {
		return nil // a build from before agent tokens: the configured identity
	}
	out, err := exec.Command(mediatorBin, "token", "mint", "--config", cfg, "--agent", "bench-test", "--role", "writer").Output()
	if err != nil {
		t.Fatalf("token mint: %v", err)
	}
	return []string{"--bearer", strings.TrimSpace(string(out))}
}

func waitHTTP(t *testing.T, url, logPath string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	log, _ := os.ReadFile(logPath)
	t.Fatalf("%s not ready\n%s", url, log)
}

// freeAddr returns a loopback address with a free port (testenv.FreeAddr).
func freeAddr(t *testing.T) string {
	t.Helper()
	return testenv.FreeAddr(t)
}

// --on-start and --on-end run while the stdio server is alive, with its
// process id, and a failing one stops the run with its output.
func TestHooks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start, end := filepath.Join(dir, "start"), filepath.Join(dir, "end")
	alive := func(file string) string { // fails unless every server is running
		return `for p in $MEDIATOR_BENCH_PIDS; do kill -0 "$p" || exit 1; done; test -n "$MEDIATOR_BENCH_PIDS" && echo "$MEDIATOR_BENCH_PIDS" > ` + file
	}
	r := runJSON(t, "--tool", "echo", "-n", "20", "--sessions", "1", "--on-start", alive(start), "--on-end", alive(end), "--", fakeUpstream(t))
	if r.Calls != 20 {
		t.Fatalf("calls = %d, want 20", r.Calls)
	}
	a, errA := os.ReadFile(start)
	b, errB := os.ReadFile(end)
	if errA != nil || errB != nil || len(bytes.TrimSpace(a)) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("hooks wrote %q (%v) and %q (%v), want the same live server pid", a, errA, b, errB)
	}

	tests := []struct{ name, flag string }{{"start", "--on-start"}, {"end", "--on-end"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(t.Context(), []string{"--tool", "echo", "-n", "3", tt.flag, "echo broken hook; exit 3", "--", fakeUpstream(t)}, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.flag) || !strings.Contains(err.Error(), "broken hook") {
				t.Fatalf("err = %v, want the %s failure with its output", err, tt.flag)
			}
		})
	}
}
