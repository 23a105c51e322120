package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

func httpClient(t testing.TB, url string) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url)
	if err != nil {
		t.Fatal(err)
	}
	return initClient(t, client.NewClient(tr))
}

func initClient(t testing.TB, c *client.Client) *client.Client {
	t.Helper()
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e", Version: "1"}
	if _, err := c.Initialize(t.Context(), init); err != nil {
		t.Fatal(err)
	}
	return c
}

func callTool(t testing.TB, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	req.Params.Meta = mcp.NewMetaFromMap(map[string]any{mediator.PromptMetaKey: "e2e prompt for " + name})
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

func resultText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func toolNames(t testing.TB, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

func exportRecords(t *testing.T, dir, db string) []mediator.ChainRecord {
	t.Helper()
	out, errOut, code := runMediator(t, dir, "audit", "export", "--db", db)
	if code != 0 {
		t.Fatalf("audit export exit %d: %s", code, errOut)
	}
	var recs []mediator.ChainRecord
	for _, line := range scanLines(out) {
		var r mediator.ChainRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("export line not JSON: %v: %s", err, line)
		}
		recs = append(recs, r)
	}
	return recs
}

// The quickstart: the embedded default serves the demo upstream under the
// example policy; allowed calls run, denied ones are errors, all recorded.
func TestE2EQuickstartDefault(t *testing.T) {
	t.Parallel()
	p := startServe(t, "")
	c := httpClient(t, p.URL)
	names := toolNames(t, c)
	for _, want := range []string{"demo__read_file", "demo__list_files", "demo__echo", "demo__write_file", "demo__lookup_customer"} {
		if !contains(names, want) {
			t.Fatalf("tools/list %v lacks %s", names, want)
		}
	}
	for _, hidden := range []string{"demo__transfer_funds", "demo__fetch_url"} {
		if contains(names, hidden) {
			t.Fatalf("tools/list shows %s, which the example policy never allows", hidden)
		}
	}
	if res := callTool(t, c, "demo__echo", map[string]any{"message": "hello"}); res.IsError || !strings.Contains(resultText(res), "hello") {
		t.Fatalf("echo: %+v", res)
	}
	if res := callTool(t, c, "demo__write_file", map[string]any{"path": "notes/e2e.txt", "content": "written through the mediator"}); res.IsError {
		t.Fatalf("write_file: %s", resultText(res))
	}
	if res := callTool(t, c, "demo__read_file", map[string]any{"path": "notes/e2e.txt"}); res.IsError || !strings.Contains(resultText(res), "written through the mediator") {
		t.Fatalf("read_file: %s", resultText(res))
	}
	res := callTool(t, c, "demo__transfer_funds", map[string]any{"from_account": "a", "to_account": "b", "amount": 5000, "currency": "USD"})
	if !res.IsError || !strings.Contains(resultText(res), "funds-finance-only") {
		t.Fatalf("transfer_funds (hidden, deny-only): %s, want a denial naming the rule", resultText(res))
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "sandbox", "notes", "e2e.txt")); err != nil {
		t.Fatalf("the demo upstream did not write into ./sandbox: %v", err)
	}
	p.stop(t)
	recs := exportRecords(t, p.Dir, p.DB)
	var calls, forwards []mediator.ChainRecord
	for _, r := range recs {
		switch {
		case r.Method == "tools/call" && r.Outcome == mediator.OutcomeForwarding:
			forwards = append(forwards, r)
		case r.Method == "tools/call":
			calls = append(calls, r)
		}
	}
	if len(calls) != 4 {
		t.Fatalf("got %d tools/call records, want 4: %+v", len(calls), calls)
	}
	// The write (not read-only) was recorded before it was forwarded.
	if len(forwards) != 1 || forwards[0].Name != "demo__write_file" || calls[1].Ref != forwards[0].ID || forwards[0].Seq >= calls[1].Seq {
		t.Fatalf("write-ahead records %+v; the write's outcome %+v", forwards, calls[1])
	}
	last := calls[3]
	if last.Name != "demo__transfer_funds" || last.Outcome != mediator.OutcomeDenied {
		t.Fatalf("denied transfer recorded as %+v", last)
	}
	if calls[0].Prompt == "" || calls[0].Decision.Rule != "echo" || calls[0].ToolHash == "" || calls[0].AgentID != "local-agent" {
		t.Fatalf("echo record lacks prompt/rule/hash/agent: %+v", calls[0])
	}
	out, _, code := runMediator(t, p.Dir, "audit", "verify", "--db", p.DB)
	if code != 0 || !strings.HasPrefix(out, "OK:") {
		t.Fatalf("audit verify exit %d: %s", code, out)
	}
}

// `mediator stdio` serves one agent on stdin/stdout; nothing but protocol
// reaches stdout, and its records join the same chain as a serve's.
func TestE2EStdioSharesTheChain(t *testing.T) {
	t.Parallel()
	p := startServe(t, "")
	hc := httpClient(t, p.URL)
	callTool(t, hc, "demo__echo", map[string]any{"message": "from http"})

	// The stdio mediator runs in the serve's directory so ./sandbox is
	// shared; it opens the database itself (a second writer) instead of
	// attaching to the serve (local_e2e_test.go).
	tr := transport.NewStdioWithOptions(binary(t), nil, []string{"stdio", "--attach", "never", "--db", p.DB},
		transport.WithCommandFunc(func(ctx context.Context, command string, env []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Dir = p.Dir
			cmd.Env = os.Environ()
			return cmd, nil
		}))
	sc := initClient(t, client.NewClient(tr))
	if res := callTool(t, sc, "demo__echo", map[string]any{"message": "from stdio"}); res.IsError {
		t.Fatalf("stdio echo: %s", resultText(res))
	}
	if res := callTool(t, sc, "demo__read_file", map[string]any{"path": "../../etc/passwd"}); !res.IsError {
		t.Fatalf("path escape was not refused by the demo upstream: %s", resultText(res))
	}
	_ = sc.Close()
	callTool(t, hc, "demo__echo", map[string]any{"message": "from http again"})
	p.stop(t)
	recs := exportRecords(t, p.Dir, p.DB)
	transports := map[string]int{}
	for _, r := range recs {
		if r.Method == "tools/call" {
			transports[r.Transport]++
		}
	}
	if transports["http"] != 2 || transports["stdio"] != 2 {
		t.Fatalf("tools/call records by transport = %v, want 2 http and 2 stdio", transports)
	}
	if out, _, code := runMediator(t, p.Dir, "audit", "verify", "--db", p.DB); code != 0 {
		t.Fatalf("chain written by two processes does not verify: %s", out)
	}
}

// Editing a byte of the database file is detected and named.
func TestE2EAuditVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	p := startServe(t, "")
	c := httpClient(t, p.URL)
	callTool(t, c, "demo__echo", map[string]any{"message": "tamper-marker-4711"})
	callTool(t, c, "demo__echo", map[string]any{"message": "after the marker"})
	p.stop(t)
	data, err := os.ReadFile(p.DB)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("tamper-marker-4711"))
	if i < 0 {
		t.Fatal("marker not found in the database file (WAL not checkpointed on close?)")
	}
	data[i+len("tamper-marker-471")] = '2'
	if err := os.WriteFile(p.DB, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := runMediator(t, p.Dir, "audit", "verify", "--db", p.DB)
	if code != 1 || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "first bad record") {
		t.Fatalf("verify after tampering: exit %d, %s", code, out)
	}
}

// SIGTERM drains and exits 0; the demo child is gone afterwards.
func TestE2EGracefulShutdown(t *testing.T) {
	t.Parallel()
	p := startServe(t, "")
	c := httpClient(t, p.URL)
	callTool(t, c, "demo__echo", map[string]any{"message": "x"})
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit 20s after SIGTERM")
	}
	t.Logf("shutdown took %s", time.Since(start))
	if out, _, code := runMediator(t, p.Dir, "audit", "verify", "--db", p.DB); code != 0 {
		t.Fatalf("verify after shutdown: %s", out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
