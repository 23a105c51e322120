package main

// Claude Code (the npm package @anthropic-ai/claude-code, pinned in
// testdata/node/package-lock.json) connects to the mediator with the client
// configurations the README gives: `claude mcp add --transport http` against
// `mediator serve`, `claude mcp add NAME -- mediator stdio ...`, and the
// server entry of examples/claude-desktop.json (Claude Desktop's format) with
// `claude mcp add-json`. `claude mcp list` runs each server's health check
// (an MCP initialize) offline: no API key and no network are needed.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireClaude returns the installed claude CLI.
func requireClaude(t *testing.T) string {
	t.Helper()
	return requireTool(t, "Claude Code (npm package @anthropic-ai/claude-code)", nodeHint, func() (string, bool) {
		p, err := filepath.Abs(filepath.Join("testdata", "node", "node_modules", ".bin", "claude"))
		if err != nil {
			return "", false
		}
		if _, err := os.Stat(p); err != nil {
			return "", false
		}
		return p, true
	})
}

// claudeEnv is the environment of an isolated, offline claude: everything
// it writes stays under home, and no Anthropic or Claude settings of the
// person running the tests leak in.
func claudeEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ANTHROPIC_") || strings.HasPrefix(k, "CLAUDE") || strings.HasPrefix(k, "XDG_") ||
			k == "HOME" || k == "TMPDIR" || k == "MCP_TIMEOUT" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+home,
		"TMPDIR="+filepath.Join(home, "tmp"), // claude keeps state in $TMPDIR/claude-UID
		"CLAUDE_CONFIG_DIR="+filepath.Join(home, ".claude"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME="+filepath.Join(home, ".local", "state"),
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_TELEMETRY=1",
		"DISABLE_ERROR_REPORTING=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	)
}

// runClaude runs claude with args in dir and returns its stdout; a non-zero
// exit fails the test.
func runClaude(t *testing.T, claude, home, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, claude, args...)
	cmd.Dir = dir
	if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd.Env = claudeEnv(home)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("claude %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// claudeMCPLogs returns claude's MCP connection logs under home, for a
// failure message.
func claudeMCPLogs(home string) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(home, ".cache", "claude-cli-nodejs", "*", "mcp-logs-*", "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		b.WriteString("== " + f + "\n" + tail(string(data), 4<<10) + "\n")
	}
	return b.String()
}

// copyExamples copies examples/quickstart and examples/policy into a new
// temp dir, where the quickstart config's relative paths (policy, database,
// sandbox) resolve, and returns that dir.
func copyExamples(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"quickstart", "policy"} {
		if err := os.CopyFS(filepath.Join(root, "examples", d), os.DirFS(filepath.Join(repoRoot(t), "examples", d))); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// desktopServer returns the "mediator" server of examples/claude-desktop.json
// with its placeholder paths pointing at the test binary and at root, a copy
// of the examples (copyExamples).
func desktopServer(t *testing.T, root string) (raw string, command string, args []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "claude-desktop.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("examples/claude-desktop.json: %v", err)
	}
	srv, ok := file.MCPServers["mediator"]
	if !ok {
		t.Fatalf("examples/claude-desktop.json has no mcpServers.mediator")
	}
	raw = strings.NewReplacer("/ABSOLUTE/PATH/TO/bin/mediator", binary(t),
		"/ABSOLUTE/PATH/TO/mcp-mediator", root).Replace(string(srv))
	if strings.Contains(raw, "/ABSOLUTE/PATH/TO") {
		t.Fatalf("examples/claude-desktop.json has a placeholder this test does not know: %s", raw)
	}
	var s struct {
		Command string   `json:"command"`
		Args    []string `json:"args"`
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	return raw, s.Command, s.Args
}

// TestClaudeCodeConnects: Claude Code's `mcp list` health check reports the
// mediator as connected, configured the README's ways: over streamable HTTP
// to `mediator serve`, and over stdio (`claude mcp add -- mediator stdio
// ...`, and the server entry of examples/claude-desktop.json given to
// `claude mcp add-json`).
func TestClaudeCodeConnects(t *testing.T) {
	t.Parallel()
	claude := requireClaude(t)
	home, project := t.TempDir(), t.TempDir()

	// The README's quickstart: `mediator serve` on the embedded default.
	p := startServe(t, "")

	// `mediator stdio` on the quickstart config, with a database of its own.
	stdioCfg := filepath.Join(copyExamples(t), "examples", "quickstart", "mediator.yaml")
	stdioArgs := []string{binary(t), "stdio", "--config", stdioCfg, "--db", filepath.Join(t.TempDir(), "stdio.db")}

	// examples/claude-desktop.json, on another copy of the quickstart.
	desktopJSON, desktopCmd, desktopArgs := desktopServer(t, copyExamples(t))

	runClaude(t, claude, home, project, "mcp", "add", "--transport", "http", "mediator", p.URL)
	runClaude(t, claude, home, project, append([]string{"mcp", "add", "mediator-stdio", "--"}, stdioArgs...)...)
	runClaude(t, claude, home, project, "mcp", "add-json", "mediator-desktop", desktopJSON)
	out := runClaude(t, claude, home, project, "mcp", "list")
	t.Logf("claude mcp list:\n%s", out)

	want := map[string]string{
		"mediator":         "mediator: " + p.URL + " (HTTP) - ✔ Connected",
		"mediator-stdio":   "mediator-stdio: " + strings.Join(stdioArgs, " ") + " - ✔ Connected",
		"mediator-desktop": "mediator-desktop: " + strings.Join(append([]string{desktopCmd}, desktopArgs...), " ") + " - ✔ Connected",
	}
	for _, name := range []string{"mediator", "mediator-stdio", "mediator-desktop"} {
		var got string
		for _, l := range scanLines(out) {
			if strings.HasPrefix(l, name+": ") {
				got = strings.TrimSpace(l)
			}
		}
		if got != want[name] {
			t.Errorf("claude mcp list, server %s:\n got: %q\nwant: %q", name, got, want[name])
		}
	}
	if t.Failed() {
		t.Logf("claude MCP logs:\n%s\nmediator serve log:\n%s", claudeMCPLogs(home), tail(p.stderr.String(), 4<<10))
	}
}

// A mediator that requires tokens: Claude Code connects with a
// headersHelper that mints a fresh token on every connection (`token mint
// --header-json`), so nothing expires in ~/.claude.json and nothing secret
// is stored there; without it, the same server is not connected.
func TestClaudeCodeHeadersHelper(t *testing.T) {
	t.Parallel()
	claude := requireClaude(t)
	home, project := t.TempDir(), t.TempDir()
	p := startServe(t, "agent: {id: claude-dev}\n") // a config file: tokens required
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	helper := binary(t) + " token mint --agent claude-dev --role writer --header-json --config " + cfg + " --server " + noServer(t)
	spec, err := json.Marshal(map[string]any{"type": "http", "url": p.URL, "headersHelper": helper})
	if err != nil {
		t.Fatal(err)
	}
	runClaude(t, claude, home, project, "mcp", "add-json", "--scope", "user", "mediator", string(spec))
	runClaude(t, claude, home, project, "mcp", "add", "--transport", "http", "mediator-no-token", p.URL)
	out := runClaude(t, claude, home, project, "mcp", "list")
	t.Logf("claude mcp list:\n%s", out)
	lines := map[string]string{}
	for _, l := range scanLines(out) {
		if name, _, ok := strings.Cut(l, ": "); ok {
			lines[name] = l
		}
	}
	if !strings.HasSuffix(lines["mediator"], "✔ Connected") {
		t.Errorf("with the headersHelper: %q", lines["mediator"])
	}
	if strings.Contains(lines["mediator-no-token"], "✔ Connected") || lines["mediator-no-token"] == "" {
		t.Errorf("without a token: %q; want it not connected", lines["mediator-no-token"])
	}
	raw, _ := os.ReadFile(filepath.Join(home, ".claude.json"))
	if strings.Contains(string(raw), "eyJ") {
		t.Errorf("a token is stored in ~/.claude.json")
	}
	if t.Failed() {
		t.Logf("claude MCP logs:\n%s\nmediator serve log:\n%s", claudeMCPLogs(home), tail(p.stderr.String(), 4<<10))
	}
}
