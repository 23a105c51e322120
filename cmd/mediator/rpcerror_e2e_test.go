package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// rpcErr is a JSON-RPC error object as an agent receives it.
type rpcErr struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// rpcResponse is one JSON-RPC response, raw.
type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *rpcErr         `json:"error"`
}

// stdioPeer speaks newline-delimited JSON-RPC to a process over its
// stdin and stdout, as an MCP client launching a server does.
type stdioPeer struct {
	t      *testing.T
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *lockedBuffer
	cmd    *exec.Cmd
	id     int
	// skipped holds the lines call read past (notifications, other
	// responses).
	skipped string
}

func startStdioPeer(t *testing.T, dir string, name string, args ...string) *stdioPeer {
	t.Helper()
	return startStdioPeerWith(t, dir, `{}`, name, args...)
}

// startStdioPeerWith is startStdioPeer initialising with the client
// capabilities caps (JSON).
func startStdioPeerWith(t *testing.T, dir, caps string, name string, args ...string) *stdioPeer {
	t.Helper()
	return startStdioPeerAt(t, dir, "2025-11-25", caps, name, args...)
}

// startStdioPeerAt is startStdioPeerWith initialising at protocol version.
func startStdioPeerAt(t *testing.T, dir, version, caps string, name string, args ...string) *stdioPeer {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &stdioPeer{t: t, in: in, out: bufio.NewReaderSize(out, 1<<20), stderr: &lockedBuffer{}, cmd: cmd}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	p.call("initialize", `{"protocolVersion":"`+version+`","capabilities":`+caps+`,"clientInfo":{"name":"e2e","version":"1"}}`)
	if _, err := io.WriteString(in, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	return p
}

// logged waits up to 10 s for the process's log to hold every one of
// want and returns the log. The log is copied from a pipe by a goroutine
// of os/exec, so a line written before an answer on stdout may reach the
// buffer after it: a test never reads the log once and concludes.
func (p *stdioPeer) logged(want ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := p.stderr.String()
		missing := ""
		for _, w := range want {
			if !strings.Contains(log, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return log
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the stdio process did not log %q within 10 s:\n%s", missing, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call sends a request and returns its response, skipping notifications.
func (p *stdioPeer) call(method, params string) rpcResponse {
	p.t.Helper()
	p.id++
	if _, err := fmt.Fprintf(p.in, `{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`+"\n", p.id, method, params); err != nil {
		p.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		line, err := p.out.ReadBytes('\n')
		if err != nil {
			p.t.Fatalf("%s: no answer: %v (stderr %s)", method, err, p.stderr.String())
		}
		var r rpcResponse
		if json.Unmarshal(line, &r) == nil && string(r.ID) == fmt.Sprint(p.id) {
			return r
		}
		p.skipped += string(line)
	}
	p.t.Fatalf("%s: no answer within 20 s", method)
	return rpcResponse{}
}

// rawSession opens an MCP session of protocol 2025-11-25 on a serve with
// the client capabilities caps (JSON), initialised; it returns the session
// id and the initialize answer's body.
func rawSession(t *testing.T, url, caps string) (sid, initBody string) {
	t.Helper()
	status, hdr, body := rawRequest(t, "POST", url, "", "",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":`+caps+`,"clientInfo":{"name":"e2e","version":"1"}}}`, nil)
	sid = hdr.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize over HTTP: %d %q", status, body)
	}
	rawRequest(t, "POST", url, "", sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	return sid, body
}

// httpCall sends one request to a serve's agent endpoint and returns its
// response, from a JSON body or the SSE stream, and the HTTP status.
func httpCall(t *testing.T, url, sid string, id int, method, params string) (rpcResponse, int) {
	t.Helper()
	status, _, body := rawRequest(t, "POST", url, "", sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params),
		map[string]string{"Mcp-Protocol-Version": "2025-11-25"})
	if r, ok := responseIn(body, id); ok {
		return r, status
	}
	t.Fatalf("%s: no response in HTTP %d body %q", method, status, body)
	return rpcResponse{}, 0
}

// responseIn finds the response to id in an HTTP body, JSON or an SSE
// stream.
func responseIn(body string, id int) (rpcResponse, bool) {
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "data: ")
		var r rpcResponse
		if json.Unmarshal([]byte(l), &r) == nil && string(r.ID) == fmt.Sprint(id) {
			return r, true
		}
	}
	return rpcResponse{}, false
}

// Issue 18, item 3: an upstream's JSON-RPC error reaches the agent with the
// code, message and data it would get calling the upstream directly, over
// stdio and over HTTP; the mediator's own refusals stay error results; an
// upstream cannot forge the mechanism's token; a secret in an error's text
// is redacted like one in a result; and each is recorded.
func TestE2EUpstreamErrorsKeepTheirCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	direct := startStdioPeer(t, dir, buildTool(t, "tools/testdata/fakeupstream"))

	cfg := filepath.Join(dir, "mediator.yaml")
	config := fakeConfig(t, "") + "approvals: {hold: 0s}\n"
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	stdioDB := filepath.Join(dir, "stdio.db")
	viaStdio := startStdioPeer(t, dir, binary(t), "stdio", "--config", cfg, "--db", stdioDB)

	p := startServe(t, fakeConfig(t, ""))
	sid, _ := rawSession(t, p.URL, `{}`)

	forged := "mcpm-upstream-error-" + strings.Repeat("ab", 16)
	httpID := 10
	for _, tc := range []struct{ name, tool, args string }{
		{"an internal error with the upstream's message", "fail", `{"why":"the ledger is locked until 17:00"}`},
		{"URL elicitation required, with its elicitations", "needs_url", `{}`},
		{"a message holding a forged token", "fail", `{"why":"no: ` + forged + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := direct.call("tools/call", `{"name":"`+tc.tool+`","arguments":`+tc.args+`}`)
			if want.Error == nil {
				t.Fatalf("the upstream answered %s directly without an error: %s", tc.tool, want.Result)
			}
			params := `{"name":"fake__` + tc.tool + `","arguments":` + tc.args + `}`
			gotStdio := viaStdio.call("tools/call", params)
			httpID++
			gotHTTP, status := httpCall(t, p.URL, sid, httpID, "tools/call", params)
			for via, got := range map[string]rpcResponse{"stdio": gotStdio, "http": gotHTTP} {
				if got.Error == nil {
					t.Fatalf("via %s: no JSON-RPC error, result %s; want %+v", via, got.Result, *want.Error)
				}
				if got.Error.Code != want.Error.Code || got.Error.Message != want.Error.Message || !sameJSON(got.Error.Data, want.Error.Data) {
					t.Errorf("via %s: error %d %q %s; directly %d %q %s", via, got.Error.Code, got.Error.Message, got.Error.Data,
						want.Error.Code, want.Error.Message, want.Error.Data)
				}
			}
			if status != 200 {
				t.Errorf("HTTP status %d", status)
			}
		})
	}

	// A secret in an upstream's error text is redacted as in a result.
	secret := "ghp_" + strings.Repeat("R4nd0mT0k3n", 3) + "abc"
	got := viaStdio.call("tools/call", `{"name":"fake__fail","arguments":{"why":"bad token `+secret+`"}}`)
	if got.Error == nil || strings.Contains(got.Error.Message, secret) || !strings.Contains(got.Error.Message, "bad token") {
		t.Errorf("secret in an upstream error: %+v; want the error with the secret redacted", got.Error)
	}
	// The mediator's own refusal stays an error result with its code.
	got = viaStdio.call("tools/call", `{"name":"fake__echo","arguments":{"text":"`+strings.Repeat("x", 10)+`"},"_meta":{}}`)
	if got.Error != nil {
		t.Errorf("an allowed echo: %+v", got.Error)
	}

	// Each upstream error is recorded as a failed call naming the code.
	var failed int
	for _, r := range exportRecords(t, dir, stdioDB) {
		if r.Method == "tools/call" && r.Outcome == mediator.OutcomeFailed && strings.Contains(r.Error, "answered tools/call with error") {
			failed++
			if strings.Contains(r.Error, secret) {
				t.Errorf("the record holds the secret: %s", r.Error)
			}
		}
	}
	if failed != 4 {
		t.Errorf("%d upstream errors recorded over stdio, want 4", failed)
	}
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// TestE2EStrayResponseGetsJSONRPCError: a client's response that answers
// no request the mediator sent (issue 18, item 6) is refused with a
// JSON-RPC error body that says why, not mcp-go's text/plain line. An empty
// result is accepted (202), as the transport's rules ask.
func TestE2EStrayResponseGetsJSONRPCError(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, ""))
	sid, _ := rawSession(t, p.URL, `{}`)
	rawRequest(t, "POST", p.URL, "", sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"error answer", `{"jsonrpc":"2.0","id":98,"error":{"code":-1,"message":"User rejected"}}`, 400},
		{"result", `{"jsonrpc":"2.0","id":97,"result":{"role":"assistant","content":{"type":"text","text":"hi"}}}`, 400},
		{"string id", `{"jsonrpc":"2.0","id":"x","result":{"a":1}}`, 400},
		{"empty result", `{"jsonrpc":"2.0","id":96,"result":{}}`, 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := rawRequest(t, "POST", p.URL, "", sid, tc.body, nil)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %q", status, tc.status, body)
			}
			if tc.status == 202 {
				return
			}
			if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json: %q", ct, body)
			}
			var resp rpcResponse
			if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Error == nil {
				t.Fatalf("body is not a JSON-RPC error (%v): %q", err, body)
			}
			if resp.Error.Code != -32600 || !strings.Contains(resp.Error.Message, "answer each request once") || string(resp.ID) != "null" {
				t.Errorf("error = %+v id %s, want -32600 naming what a response may answer, id null", resp.Error, resp.ID)
			}
		})
	}
	// The session still works.
	resp, status := httpCall(t, p.URL, sid, 5, "tools/list", `{}`)
	if status != 200 || !strings.Contains(string(resp.Result), "echo") {
		t.Errorf("tools/list after the stray responses: %d %s %+v", status, resp.Result, resp.Error)
	}
}
