package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// binPath is the demo-upstream binary built by TestMain. The tests drive it
// as a real subprocess over stdio, as the mediator would.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "demo-upstream-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdir temp:", err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "demo-upstream")
	build := exec.Command("go", "build", "-o", binPath, "../demo-upstream")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// upstream is a running demo-upstream with a client connected to it.
type upstream struct {
	c      *client.Client
	root   string // sandbox root, symlinks resolved
	ledger string
	init   *mcp.InitializeResult
}

// options for start.
type startOptions struct {
	version string   // protocol version to pin; "" negotiates the newest
	env     []string // extra environment, e.g. DEMO_MODE=1
	args    []string // extra flags
}

// start launches demo-upstream on a fresh sandbox and connects a client.
func start(t *testing.T, opts startOptions) *upstream {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "sandbox")
	args := append([]string{"--root", root, "--log-level", "warn"}, opts.args...)

	var clientOpts []client.ClientOption
	if opts.version != "" {
		clientOpts = append(clientOpts, client.WithProtocolVersion(opts.version))
	}
	c := client.NewClient(transport.NewStdio(binPath, opts.env, args...), clientOpts...)
	// The stdio transport ties the child process to the Start context.
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start demo-upstream: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var req mcp.InitializeRequest
	req.Params.ClientInfo = mcp.Implementation{Name: "demo-upstream-test", Version: "1.0.0"}
	init, err := c.Initialize(ctx, req)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return &upstream{c: c, root: root, ledger: filepath.Join(root, defaultLedgerName), init: init}
}

// call calls a tool and fails the test on a protocol error; tool errors are
// returned in the result.
func (u *upstream) call(t *testing.T, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var req mcp.CallToolRequest
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := u.c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("call %s(%v): %v", name, args, err)
	}
	return res
}

// text joins the text content of a result.
func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, content := range res.Content {
		if tc, ok := content.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// ledgerLines returns the transfers in the ledger file.
func ledgerLines(t *testing.T, path string) []transfer {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []transfer
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec transfer
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("ledger line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

func TestListTools(t *testing.T) {
	type hints struct{ readOnly, destructive, idempotent, openWorld bool }
	want := map[string]hints{
		toolReadFile:       {readOnly: true, idempotent: true},
		toolWriteFile:      {destructive: true, idempotent: true},
		toolListFiles:      {readOnly: true, idempotent: true},
		toolLookupCustomer: {readOnly: true, idempotent: true},
		toolTransferFunds:  {destructive: true, openWorld: true},
		toolFetchURL:       {readOnly: true, idempotent: true, openWorld: true},
		toolEcho:           {readOnly: true, idempotent: true},
	}
	required := map[string][]string{
		toolReadFile:       {"path"},
		toolWriteFile:      {"path", "content"},
		toolListFiles:      nil,
		toolLookupCustomer: {"query"},
		toolTransferFunds:  {"from_account", "to_account", "amount", "currency"},
		toolFetchURL:       {"url"},
		toolEcho:           {"message"},
	}
	for _, version := range []string{"2025-06-18", "2025-11-25", ""} {
		t.Run("protocol="+version, func(t *testing.T) {
			u := start(t, startOptions{version: version})
			res, err := u.c.ListTools(context.Background(), mcp.ListToolsRequest{})
			if err != nil {
				t.Fatalf("list tools: %v", err)
			}
			if len(res.Tools) != len(want) {
				t.Errorf("got %d tools, want %d", len(res.Tools), len(want))
			}
			for _, tool := range res.Tools {
				w, ok := want[tool.Name]
				if !ok {
					t.Errorf("unexpected tool %s", tool.Name)
					continue
				}
				a := tool.Annotations
				if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil || a.Title == "" {
					t.Errorf("%s: incomplete annotations %+v", tool.Name, a)
					continue
				}
				got := hints{*a.ReadOnlyHint, *a.DestructiveHint, *a.IdempotentHint, *a.OpenWorldHint}
				if got != w {
					t.Errorf("%s: annotations %+v, want %+v", tool.Name, got, w)
				}
				if len(tool.Description) < 40 {
					t.Errorf("%s: description too thin: %q", tool.Name, tool.Description)
				}
				if tool.InputSchema.Type != "object" {
					t.Errorf("%s: input schema type %q", tool.Name, tool.InputSchema.Type)
				}
				if tool.InputSchema.AdditionalProperties != false {
					t.Errorf("%s: input schema allows additional properties", tool.Name)
				}
				if strings.Join(tool.InputSchema.Required, ",") != strings.Join(required[tool.Name], ",") {
					t.Errorf("%s: required %v, want %v", tool.Name, tool.InputSchema.Required, required[tool.Name])
				}
				for _, r := range required[tool.Name] {
					if _, ok := tool.InputSchema.Properties[r]; !ok {
						t.Errorf("%s: property %s missing from schema", tool.Name, r)
					}
				}
				hasOutput := tool.OutputSchema.Type == "object"
				if hasOutput != (tool.Name == toolLookupCustomer) {
					t.Errorf("%s: output schema present = %v", tool.Name, hasOutput)
				}
			}
		})
	}
}

func TestFileTools(t *testing.T) {
	u := start(t, startOptions{})
	tests := []struct {
		name     string
		tool     string
		args     map[string]any
		contains []string
		absent   []string
	}{
		{name: "read seeded csv", tool: toolReadFile, args: map[string]any{"path": "reports/q3-churn.csv"}, contains: []string{"churn_rate", "2025-09,free"}},
		{name: "read seeded md", tool: toolReadFile, args: map[string]any{"path": "notes/todo.md"}, contains: []string{"# Team to-do"}},
		{name: "list root", tool: toolListFiles, args: map[string]any{}, contains: []string{"notes/", "reports/", "README.txt"}, absent: []string{defaultLedgerName}},
		{name: "list sub", tool: toolListFiles, args: map[string]any{"path": "reports"}, contains: []string{"reports/q3-churn.csv"}},
		{name: "create", tool: toolWriteFile, args: map[string]any{"path": "out/summary.md", "content": "# Summary\nall good\n"}, contains: []string{"Created out/summary.md (19 bytes)"}},
		{name: "read back", tool: toolReadFile, args: map[string]any{"path": "out/summary.md"}, contains: []string{"all good"}},
		{name: "overwrite", tool: toolWriteFile, args: map[string]any{"path": "out/summary.md", "content": "v2"}, contains: []string{"Overwrote out/summary.md (2 bytes)"}},
		{name: "read overwritten", tool: toolReadFile, args: map[string]any{"path": "./out//summary.md"}, contains: []string{"v2"}},
		{name: "write empty file", tool: toolWriteFile, args: map[string]any{"path": "empty.txt", "content": ""}, contains: []string{"Created empty.txt (0 bytes)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := u.call(t, tt.tool, tt.args)
			if res.IsError {
				t.Fatalf("unexpected tool error: %s", text(res))
			}
			got := text(res)
			for _, s := range tt.contains {
				if !strings.Contains(got, s) {
					t.Errorf("result lacks %q:\n%s", s, got)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(got, s) {
					t.Errorf("result contains %q:\n%s", s, got)
				}
			}
		})
	}

	t.Run("list structured", func(t *testing.T) {
		res := u.call(t, toolListFiles, map[string]any{"path": "notes"})
		raw, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		var listing struct {
			Entries []fileEntry `json:"entries"`
		}
		if err := json.Unmarshal(raw, &listing); err != nil {
			t.Fatal(err)
		}
		if len(listing.Entries) != 1 || listing.Entries[0].Path != "notes/todo.md" || listing.Entries[0].Type != "file" || listing.Entries[0].Size == 0 {
			t.Errorf("structured listing = %+v", listing.Entries)
		}
	})
}

func TestPathEscapesRefused(t *testing.T) {
	u := start(t, startOptions{})
	outside := filepath.Join(filepath.Dir(u.root), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secret, []byte("TOP SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"link-dir":  outside,
		"link-file": secret,
		"link-rel":  filepath.Join("..", "outside"),
	} {
		if err := os.Symlink(target, filepath.Join(u.root, link)); err != nil {
			t.Skipf("symlinks not supported: %v", err)
		}
	}
	// Make the ledger exist.
	if res := u.call(t, toolTransferFunds, map[string]any{"from_account": "A", "to_account": "B", "amount": 1, "currency": "USD"}); res.IsError {
		t.Fatalf("transfer: %s", text(res))
	}

	paths := []string{
		"../etc/passwd",
		"../../../../../../etc/passwd",
		"notes/../../outside/secret.txt",
		"/etc/passwd",
		secret,
		"link-dir/secret.txt",
		"link-dir",
		"link-file",
		"link-rel/secret.txt",
		"link-dir/new.txt",
		defaultLedgerName,
		"notes/\x00todo.md",
	}
	for _, path := range paths {
		for _, tool := range []string{toolReadFile, toolWriteFile, toolListFiles} {
			t.Run(tool+"/"+strings.ReplaceAll(path, "/", "|"), func(t *testing.T) {
				args := map[string]any{"path": path}
				if tool == toolWriteFile {
					args["content"] = "pwned"
				}
				res := u.call(t, tool, args)
				if !res.IsError {
					t.Fatalf("%s(%q) was not refused: %s", tool, path, text(res))
				}
				if strings.Contains(text(res), "TOP SECRET") || strings.Contains(text(res), "root:") {
					t.Fatalf("%s(%q) leaked content: %s", tool, path, text(res))
				}
			})
		}
	}

	if data, err := os.ReadFile(secret); err != nil || string(data) != "TOP SECRET" {
		t.Errorf("file outside the sandbox changed: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "new.txt")); !os.IsNotExist(err) {
		t.Errorf("a file was created outside the sandbox: %v", err)
	}
	if got := ledgerLines(t, u.ledger); len(got) != 1 {
		t.Errorf("ledger has %d lines after refused writes, want 1", len(got))
	}
}

func TestSizeLimits(t *testing.T) {
	u := start(t, startOptions{})
	if err := os.WriteFile(filepath.Join(u.root, "big.log"), make([]byte, maxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := u.call(t, toolReadFile, map[string]any{"path": "big.log"}); !res.IsError || !strings.Contains(text(res), "limit") {
		t.Errorf("reading an oversized file: %s", text(res))
	}
	big := strings.Repeat("x", maxFileSize+1)
	if res := u.call(t, toolWriteFile, map[string]any{"path": "big.txt", "content": big}); !res.IsError {
		t.Errorf("writing oversized content was not refused")
	}
	if _, err := os.Stat(filepath.Join(u.root, "big.txt")); !os.IsNotExist(err) {
		t.Errorf("oversized content was written: %v", err)
	}
}

func TestLookupCustomer(t *testing.T) {
	u := start(t, startOptions{})
	tests := []struct {
		query   string
		want    []string // customer ids
		wantErr bool
	}{
		{query: "quill", want: []string{"cus_0001"}},
		{query: "HANA.MORIKAWA@", want: []string{"cus_0008"}},
		{query: "la", want: []string{"cus_0002", "cus_0011", "cus_0015"}},
		{query: "no such person", want: []string{}},
		{query: "x", wantErr: true},
		{query: strings.Repeat("y", 101), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res := u.call(t, toolLookupCustomer, map[string]any{"query": tt.query})
			if res.IsError != tt.wantErr {
				t.Fatalf("isError = %v: %s", res.IsError, text(res))
			}
			if tt.wantErr {
				return
			}
			raw, err := json.Marshal(res.StructuredContent)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Count     int        `json:"count"`
				Truncated bool       `json:"truncated"`
				Customers []customer `json:"customers"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("structured content %s: %v", raw, err)
			}
			var ids []string
			for _, c := range out.Customers {
				ids = append(ids, c.ID)
				if c.Email == "" || c.Phone == "" {
					t.Errorf("record without PII fields: %+v", c)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tt.want, ",") || out.Count != len(tt.want) || out.Truncated {
				t.Errorf("got %v (count %d), want %v", ids, out.Count, tt.want)
			}
			var fromText struct {
				Customers []customer `json:"customers"`
			}
			if err := json.Unmarshal([]byte(text(res)), &fromText); err != nil || len(fromText.Customers) != len(tt.want) {
				t.Errorf("text content is not the same JSON: %v", err)
			}
		})
	}
}

func TestCustomCRMFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crm.json")
	data := `[{"id":"c9","name":"Zed Example","email":"zed@example.test","phone":"+1-555-0199","country":"US","plan":"pro","lifetime_value":1}]`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	u := start(t, startOptions{args: []string{"--crm", path}})
	res := u.call(t, toolLookupCustomer, map[string]any{"query": "zed"})
	if res.IsError || !strings.Contains(text(res), "zed@example.test") {
		t.Errorf("custom CRM not used: %s", text(res))
	}
	if res := u.call(t, toolLookupCustomer, map[string]any{"query": "quill"}); strings.Contains(text(res), "cus_0001") {
		t.Errorf("sample data served alongside custom CRM")
	}
}

func TestTransferFunds(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "books", "ledger.jsonl")
	u := start(t, startOptions{args: []string{"--ledger", ledger}})

	res := u.call(t, toolTransferFunds, map[string]any{
		"from_account": "ACME-OPS", "to_account": "VENDOR-42", "amount": 1250.5, "currency": "EUR", "memo": "invoice 2025-117",
	})
	if res.IsError {
		t.Fatalf("transfer failed: %s", text(res))
	}
	lines := ledgerLines(t, ledger)
	if len(lines) != 1 {
		t.Fatalf("ledger has %d lines, want 1", len(lines))
	}
	rec := lines[0]
	if !strings.HasPrefix(rec.ID, transferIDPrefix) || !strings.Contains(text(res), rec.ID) {
		t.Errorf("confirmation %q does not name ledger id %q", text(res), rec.ID)
	}
	if rec.FromAccount != "ACME-OPS" || rec.ToAccount != "VENDOR-42" || rec.Amount != 1250.5 || rec.Currency != "EUR" || rec.Memo != "invoice 2025-117" {
		t.Errorf("ledger record %+v", rec)
	}
	if time.Since(rec.Time) > time.Minute {
		t.Errorf("ledger time %v", rec.Time)
	}

	invalid := []struct {
		name string
		args map[string]any
	}{
		{"zero amount", map[string]any{"from_account": "A", "to_account": "B", "amount": 0, "currency": "USD"}},
		{"negative amount", map[string]any{"from_account": "A", "to_account": "B", "amount": -10, "currency": "USD"}},
		{"amount over limit", map[string]any{"from_account": "A", "to_account": "B", "amount": 1e9 + 1, "currency": "USD"}},
		{"fractional cents", map[string]any{"from_account": "A", "to_account": "B", "amount": 10.001, "currency": "USD"}},
		{"amount as string", map[string]any{"from_account": "A", "to_account": "B", "amount": "100", "currency": "USD"}},
		{"missing amount", map[string]any{"from_account": "A", "to_account": "B", "currency": "USD"}},
		{"unknown currency", map[string]any{"from_account": "A", "to_account": "B", "amount": 10, "currency": "JPY"}},
		{"lower-case currency", map[string]any{"from_account": "A", "to_account": "B", "amount": 10, "currency": "usd"}},
		{"empty from", map[string]any{"from_account": "", "to_account": "B", "amount": 10, "currency": "USD"}},
		{"blank to", map[string]any{"from_account": "A", "to_account": "   ", "amount": 10, "currency": "USD"}},
		{"same account", map[string]any{"from_account": "A", "to_account": "A", "amount": 10, "currency": "USD"}},
		{"unknown field", map[string]any{"from_account": "A", "to_account": "B", "amount": 10, "currency": "USD", "approve": true}},
		{"long memo", map[string]any{"from_account": "A", "to_account": "B", "amount": 10, "currency": "USD", "memo": strings.Repeat("m", 281)}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			res := u.call(t, toolTransferFunds, tt.args)
			if !res.IsError {
				t.Fatalf("accepted: %s", text(res))
			}
			if text(res) == "" {
				t.Errorf("error without a message")
			}
		})
	}
	if got := ledgerLines(t, ledger); len(got) != 1 {
		t.Errorf("ledger has %d lines after invalid transfers, want 1", len(got))
	}
}

func TestFetchURL(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", (maxFetchBody/16)+100)
	// elsewhere stands for a host the mediator's egress rules never saw.
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "reached another host")
	}))
	defer elsewhere.Close()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hello":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "hello from %s", r.Header.Get("User-Agent"))
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, big)
		case "/redirect":
			http.Redirect(w, r, "/hello", http.StatusFound)
		case "/elsewhere":
			http.Redirect(w, r, elsewhere.URL+"/", http.StatusFound)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/binary":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write([]byte{0xff, 0xfe, 0xfd, 0x00})
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()

	u := start(t, startOptions{})
	tests := []struct {
		name     string
		url      string
		wantErr  bool
		contains []string
		absent   []string
	}{
		{name: "ok", url: ts.URL + "/hello", contains: []string{"HTTP 200 OK", "text/plain", "hello from mcp-mediator-demo-upstream/"}},
		{name: "not found", url: ts.URL + "/missing", contains: []string{"HTTP 404 Not Found"}},
		{name: "redirect", url: ts.URL + "/redirect", contains: []string{"HTTP 200 OK", "/hello", "hello from"}},
		{name: "truncated", url: ts.URL + "/big", contains: []string{"[truncated"}, absent: []string{big}},
		{name: "binary", url: ts.URL + "/binary", contains: []string{"[binary content, 4 bytes"}},
		{name: "redirect to file", url: ts.URL + "/to-file", wantErr: true},
		{name: "redirect to another host", url: ts.URL + "/elsewhere", wantErr: true, contains: []string{"leads to another host"}, absent: []string{"reached another host"}},
		{name: "file scheme", url: "file:///etc/passwd", wantErr: true},
		{name: "ftp scheme", url: "ftp://127.0.0.1/x", wantErr: true},
		{name: "no scheme", url: "127.0.0.1/hello", wantErr: true},
		{name: "credentials", url: strings.Replace(ts.URL, "http://", "http://user:pw@", 1) + "/hello", wantErr: true},
		{name: "connection refused", url: "http://127.0.0.1:1/", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := u.call(t, toolFetchURL, map[string]any{"url": tt.url})
			got := text(res)
			if res.IsError != tt.wantErr {
				t.Fatalf("isError = %v: %s", res.IsError, got)
			}
			for _, s := range tt.contains {
				if !strings.Contains(got, s) {
					t.Errorf("result lacks %q:\n%.300s", s, got)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(got, s) {
					t.Errorf("result contains %.40q", s)
				}
			}
			if strings.Contains(got, "root:") {
				t.Errorf("result leaks a local file: %.300s", got)
			}
		})
	}
	t.Run("body cap", func(t *testing.T) {
		got := text(u.call(t, toolFetchURL, map[string]any{"url": ts.URL + "/big"}))
		body := got[strings.Index(got, "\n\n")+2 : strings.LastIndex(got, "\n\n[truncated")]
		if len(body) != maxFetchBody {
			t.Errorf("body is %d bytes, want %d", len(body), maxFetchBody)
		}
	})
}

func TestEcho(t *testing.T) {
	u := start(t, startOptions{})
	for _, msg := range []string{"hello", "", "ünïcødé ✓", strings.Repeat("z", 64<<10)} {
		res := u.call(t, toolEcho, map[string]any{"message": msg})
		if res.IsError || text(res) != msg {
			t.Errorf("echo(%.20q) = %.20q (isError %v)", msg, text(res), res.IsError)
		}
	}
	if res := u.call(t, toolEcho, map[string]any{}); !res.IsError {
		t.Errorf("echo without message accepted")
	}
}

func TestResourceAndPrompt(t *testing.T) {
	u := start(t, startOptions{})
	ctx := context.Background()

	list, err := u.c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Resources) != 1 || list.Resources[0].URI != resourceCRMSchema {
		t.Fatalf("resources = %+v", list.Resources)
	}
	read, err := u.c.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: resourceCRMSchema}})
	if err != nil {
		t.Fatal(err)
	}
	body, ok := read.Contents[0].(mcp.TextResourceContents)
	if !ok {
		t.Fatalf("schema content %T", read.Contents[0])
	}
	var schema struct {
		Fields []struct {
			Name string `json:"name"`
			PII  bool   `json:"pii"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(body.Text), &schema); err != nil || len(schema.Fields) != 7 {
		t.Fatalf("schema resource: %v, %d fields", err, len(schema.Fields))
	}

	prompts, err := u.c.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(prompts.Prompts) != 1 || prompts.Prompts[0].Name != promptSummarizeFile || len(prompts.Prompts[0].Arguments) != 1 || !prompts.Prompts[0].Arguments[0].Required {
		t.Fatalf("prompts = %+v", prompts.Prompts)
	}
	got, err := u.c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: promptSummarizeFile, Arguments: map[string]string{"path": "notes/todo.md"}}})
	if err != nil {
		t.Fatal(err)
	}
	var embedded string
	for _, m := range got.Messages {
		if r, ok := m.Content.(mcp.EmbeddedResource); ok {
			if tr, ok := r.Resource.(mcp.TextResourceContents); ok {
				embedded = tr.Text
			}
		}
	}
	if !strings.Contains(embedded, "Team to-do") {
		t.Errorf("prompt does not embed the file: %+v", got.Messages)
	}
	for _, path := range []string{"../etc/passwd", "/etc/passwd", defaultLedgerName} {
		if _, err := u.c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: promptSummarizeFile, Arguments: map[string]string{"path": path}}}); err == nil {
			t.Errorf("summarize_file accepted %q", path)
		}
	}
}

func TestInstructionsAndDemoMode(t *testing.T) {
	plain := start(t, startOptions{})
	if strings.Contains(plain.init.Instructions, "DEMO_MODE") {
		t.Errorf("instructions mention DEMO_MODE without it set")
	}
	if plain.init.ServerInfo.Version != version {
		t.Errorf("server version %q", plain.init.ServerInfo.Version)
	}
	demo := start(t, startOptions{env: []string{"DEMO_MODE=1"}})
	if !strings.Contains(demo.init.Instructions, "DEMO_MODE") {
		t.Errorf("instructions do not mention DEMO_MODE: %q", demo.init.Instructions)
	}
}

func TestCommandLine(t *testing.T) {
	out, err := exec.Command(binPath, "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "demo-upstream "+version {
		t.Errorf("--version: %q, %v", out, err)
	}
	for _, args := range [][]string{
		{"--log-level", "loud"},
		{"--crm", filepath.Join(t.TempDir(), "missing.json")},
		{"extra-arg"},
	} {
		cmd := exec.Command(binPath, append([]string{"--root", t.TempDir()}, args...)...)
		cmd.Stdin = strings.NewReader("")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("%v: exited 0: %s", args, out)
		}
	}
	// stdout must carry nothing but protocol: with stdin closed at once, the
	// server writes nothing there.
	cmd := exec.Command(binPath, "--root", t.TempDir())
	cmd.Stdin = strings.NewReader("")
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("run with empty stdin: %v", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("wrote to stdout: %q", stdout.String())
	}
}
