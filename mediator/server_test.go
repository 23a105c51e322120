package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

type testServer struct {
	url string
	rec *fakeRecorder
	up  *fakeUpstreams
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	rec := &fakeRecorder{}
	up := &fakeUpstreams{cat: testCatalog(), callTool: echoResult}
	srv, err := NewServer(newTestDeps(rec, up), WithMaxRequestBytes(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", srv.HTTPHandler("/mcp"))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &testServer{url: hs.URL + "/mcp", rec: rec, up: up}
}

func (ts *testServer) client(t *testing.T) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(t.Context(), init); err != nil {
		t.Fatal(err)
	}
	return c
}

func (ts *testServer) recordsFor(method string) []ChainRecord {
	var out []ChainRecord
	for _, r := range ts.rec.all() {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

func TestServerListsOnlyWhatPolicyCouldAllow(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t)
	c := ts.client(t)
	res, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) != 1 || res.Tools[0].Name != "demo__echo" {
		t.Fatalf("listed %v, want only demo__echo (demo__pay is deny-only)", res.Tools)
	}
	if len(ts.recordsFor("tools/list")) != 1 {
		t.Fatal("tools/list was not recorded")
	}
}

func TestServerPassesRawSchemaThrough(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t)
	_ = ts.client(t)
	body := post(t, ts.url, sessionOf(t, ts.url), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if !strings.Contains(body, `"oneOf":[{"required":["a"]},{"required":["b"]}]`) || !strings.Contains(body, `"$defs"`) {
		t.Fatalf("oneOf/$defs lost in tools/list: %s", body)
	}
}

func TestServerDeniesHiddenAndUnknownTools(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t)
	c := ts.client(t)
	req := mcp.CallToolRequest{}
	req.Params.Name = "demo__pay"
	res, err := c.CallTool(t.Context(), req)
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "denied by policy (rule default)") {
		t.Fatalf("hidden tool called by name: %v %+v, want a denial naming the rule", err, res)
	}
	req.Params.Name = "no_such_tool"
	if _, err := c.CallTool(t.Context(), req); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown tool: err = %v, want tool not found", err)
	}
	recs := ts.recordsFor("tools/call")
	if len(recs) != 2 {
		t.Fatalf("got %d tools/call records, want 2", len(recs))
	}
	for _, r := range recs {
		if r.Outcome != OutcomeDenied || r.Decision.Effect != EffectDeny {
			t.Fatalf("record %+v is not a denial", r)
		}
	}
}

func TestServerCallsAllowedTool(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t)
	c := ts.client(t)
	req := mcp.CallToolRequest{}
	req.Params.Name = "demo__echo"
	req.Params.Arguments = map[string]any{"message": "hi"}
	req.Params.Meta = mcp.NewMetaFromMap(map[string]any{PromptMetaKey: "please echo hi"})
	var sentMeta *mcp.Meta
	ts.up.callTool = func(ctx context.Context, tl Tool, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		sentMeta = r.Params.Meta
		return echoResult(ctx, tl, r)
	}
	res, err := c.CallTool(t.Context(), req)
	if err != nil || res.IsError {
		t.Fatalf("call failed: %v %+v", err, res)
	}
	if sentMeta != nil && sentMeta.AdditionalFields[PromptMetaKey] != nil {
		t.Fatal("the user's prompt was forwarded upstream")
	}
	if txt := res.Content[0].(mcp.TextContent).Text; txt != "echo:hi" {
		t.Fatalf("result %q", txt)
	}
	recs := ts.recordsFor("tools/call")
	if len(recs) != 1 || recs[0].Prompt != "please echo hi" || recs[0].Outcome != OutcomeOK {
		t.Fatalf("records %+v", recs)
	}
}

func TestServerBadInput(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t)
	_ = ts.client(t)
	sid := sessionOf(t, ts.url)
	cases := []struct {
		name       string
		session    string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"unknown method", sid, `{"jsonrpc":"2.0","id":5,"method":"evil/do"}`, 200, `"code":-32601`},
		{"unknown task", sid, `{"jsonrpc":"2.0","id":6,"method":"tasks/get","params":{"taskId":"nope"}}`, 200, "not found"},
		{"malformed JSON", sid, `{"jsonrpc":"2.0","id":7,"method":`, 0, ""},
		{"forged session id", "mcp-session-00000000-0000-4000-8000-000000000000", `{"jsonrpc":"2.0","id":8,"method":"ping"}`, 404, ""},
		{"over the size cap", sid, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"` + strings.Repeat("x", 70<<10) + `"}}}`, 413, "cap"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(ts.rec.all())
			status, body := postStatus(t, ts.url, tc.session, tc.body)
			if tc.wantStatus != 0 && status != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", status, tc.wantStatus, body)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Fatalf("body %s, want %q", body, tc.wantBody)
			}
			recs := ts.rec.all()[before:]
			if len(recs) == 0 {
				t.Fatal("refused request was not recorded")
			}
			if last := recs[len(recs)-1]; last.Outcome != OutcomeDenied {
				t.Fatalf("record outcome %s, want denied", last.Outcome)
			}
		})
	}
}

func sessionOf(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("no session id issued")
	}
	post(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return sid
}

func post(t *testing.T, url, sid, body string) string {
	t.Helper()
	_, b := postStatus(t, url, sid, body)
	return b
}

func postStatus(t *testing.T, url, sid, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var _ = json.Valid

// failingAuthn refuses every credential, as a revoked or expired token is.
type failingAuthn struct{}

func (failingAuthn) Authenticate(context.Context, Credentials) (*Agent, error) {
	return nil, errors.New("token revoked (task 'task-1')")
}

// A request the HTTP gate refuses is recorded with the method and the name
// of what it asked for, so an auditor sees what a revoked token tried. The
// credential is checked before the body is read: an oversize body from a
// refused credential is a 401, named from the head of its body.
func TestGateRecordsWhatItRefuses(t *testing.T) {
	t.Parallel()
	rec := &fakeRecorder{}
	deps := newTestDeps(rec, &fakeUpstreams{cat: testCatalog(), callTool: echoResult})
	deps.Authenticator = failingAuthn{}
	srv, err := NewServer(deps, WithMaxRequestBytes(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.HTTPHandler("/mcp"))
	t.Cleanup(hs.Close)
	cases := []struct {
		name, body, wantMethod, wantName string
		wantStatus                       int
	}{
		{"tools/call", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"demo__pay","arguments":{"amount":5}}}`,
			"tools/call", "demo__pay", 401},
		{"resources/read", `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}`,
			"resources/read", "file:///etc/passwd", 401},
		{"params of the wrong type", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":["demo__pay"]}`,
			"tools/call", "", 401},
		{"over the size cap", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"demo__echo","arguments":{"m":"` +
			strings.Repeat("x", 70<<10) + `"}}}`, "tools/call", "demo__echo", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.all())
			status, body := postStatus(t, hs.URL+"/mcp", "", tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", status, tc.wantStatus, body)
			}
			recs := rec.all()[before:]
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			r := recs[0]
			if r.Outcome != OutcomeDenied || r.Method != tc.wantMethod || r.Name != tc.wantName {
				t.Errorf("record: outcome %s, method %q, name %q; want denied, %q, %q", r.Outcome, r.Method, r.Name, tc.wantMethod, tc.wantName)
			}
		})
	}
}
