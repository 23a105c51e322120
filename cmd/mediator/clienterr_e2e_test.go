package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// relayedRequest is a request an MCP server sends its client.
type relayedRequest struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

// rejection is the agent's JSON-RPC error answer to a relayed request, as
// a user declining it in a client would send it.
const rejection = `{"code":-1,"message":"User rejected the request","data":{"reason":"declined in the client","at":"12:00"}}`

// rejectOverStdio calls tool and answers the sampling or elicitation
// request the call causes with rejection; it returns the call's result text.
func rejectOverStdio(t *testing.T, p *stdioPeer, tool string) string {
	t.Helper()
	return answerOverStdio(t, p, tool, `"error":`+rejection)
}

// answerOverStdio calls tool and answers the request the call causes with
// reply (`"result":…` or `"error":…`); it returns the call's result text.
func answerOverStdio(t *testing.T, p *stdioPeer, tool, reply string) string {
	t.Helper()
	p.id++
	callID := p.id
	if _, err := fmt.Fprintf(p.in, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{}}}`+"\n", callID, tool); err != nil {
		t.Fatal(err)
	}
	asked := false
	for {
		line, err := p.out.ReadBytes('\n')
		if err != nil {
			t.Fatalf("%s: no answer: %v (stderr %s)", tool, err, p.stderr.String())
		}
		var req relayedRequest
		if json.Unmarshal(line, &req) == nil && len(req.ID) > 0 && req.Method != "" {
			asked = true
			if _, err := fmt.Fprintf(p.in, `{"jsonrpc":"2.0","id":%s,%s}`+"\n", req.ID, reply); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var r rpcResponse
		if json.Unmarshal(line, &r) == nil && string(r.ID) == fmt.Sprint(callID) {
			if !asked {
				t.Fatalf("%s: answered without asking the agent: %s", tool, line)
			}
			return toolText(t, r)
		}
	}
}

func toolText(t *testing.T, r rpcResponse) string {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("a JSON-RPC error, not a result: %+v", *r.Error)
	}
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res.Content) == 0 {
		t.Fatalf("result %s", r.Result)
	}
	return res.Content[0].Text
}

// rejectOverHTTP is rejectOverStdio for a stateful session (protocol
// 2025-11-25) of a serve: the relayed request arrives on the session's GET
// stream or the call's own POST stream, and the answer is POSTed.
func rejectOverHTTP(t *testing.T, url, sid, tool string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	msgs := make(chan []byte, 16)
	stream := func(method, body string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return // the test's end cancels the GET stream
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadBytes('\n')
			l := strings.TrimPrefix(strings.TrimSpace(string(line)), "data: ")
			if strings.HasPrefix(l, "{") {
				select {
				case msgs <- []byte(l):
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go stream(http.MethodGet, "")
	go stream(http.MethodPost, fmt.Sprintf(`{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, tool))
	asked := false
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("%s over HTTP: no result within 30 s (asked: %v)", tool, asked)
		case m := <-msgs:
			var req relayedRequest
			if json.Unmarshal(m, &req) == nil && len(req.ID) > 0 && req.Method != "" {
				asked = true
				status, _, body := rawRequest(t, "POST", url, "", sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":%s}`, req.ID, rejection),
					map[string]string{"Mcp-Protocol-Version": "2025-11-25"})
				if status != http.StatusAccepted {
					t.Fatalf("posting the rejection: HTTP %d %q", status, body)
				}
				continue
			}
			var r rpcResponse
			if json.Unmarshal(m, &r) == nil && string(r.ID) == "77" {
				if !asked {
					t.Fatalf("%s: answered without asking the agent: %s", tool, m)
				}
				return toolText(t, r)
			}
		}
	}
}

// Issue 18, item 3: when the agent refuses an upstream's sampling or
// elicitation request with a JSON-RPC error (a user rejecting it), the
// upstream gets that error with the agent's code, message and data, as it
// would from the agent directly, whether the agent speaks stdio or HTTP
// (before: -32603 with a text of the mediator's, the code and data lost).
func TestE2EClientErrorsKeepTheirCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const caps = `{"sampling":{},"elicitation":{}}`
	direct := startStdioPeerWith(t, dir, caps, buildTool(t, "tools/testdata/fakeupstream"))

	cfg := filepath.Join(dir, "mediator.yaml")
	if err := os.WriteFile(cfg, []byte(fakeConfig(t, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	viaStdio := startStdioPeerWith(t, dir, caps, binary(t), "stdio", "--config", cfg, "--db", filepath.Join(dir, "stdio.db"))

	p := startServe(t, fakeConfig(t, ""))
	sid, _ := rawSession(t, p.URL, caps)

	for _, tool := range []string{"sample", "elicit"} {
		t.Run(tool, func(t *testing.T) {
			want := rejectOverStdio(t, direct, tool)
			if !strings.Contains(want, `"code":-1`) || !strings.Contains(want, "declined in the client") {
				t.Fatalf("directly, the upstream saw %q; want the agent's error", want)
			}
			if got := rejectOverStdio(t, viaStdio, "fake__"+tool); got != want {
				t.Errorf("through mediator stdio the upstream saw\n  %q\ndirectly\n  %q", got, want)
			}
			if got := rejectOverHTTP(t, p.URL, sid, "fake__"+tool); got != want {
				t.Errorf("through mediator serve (HTTP) the upstream saw\n  %q\ndirectly\n  %q", got, want)
			}
		})
	}
}

// Issue 18, item 4: an upstream's roots/list reaches the agent whose call
// asked, and its answer comes back as the agent gave it, as it would
// directly; the agent's notifications/roots/list_changed reaches the
// upstream (before: the mediator declared no roots, and the upstream's
// request failed).
func TestE2ERootsRelayed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const caps = `{"roots":{"listChanged":true}}`
	const roots = `"result":{"roots":[{"uri":"file:///work/project","name":"project"}]}`
	direct := startStdioPeerWith(t, dir, caps, buildTool(t, "tools/testdata/fakeupstream"))
	cfg := filepath.Join(dir, "mediator.yaml")
	if err := os.WriteFile(cfg, []byte(fakeConfig(t, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	via := startStdioPeerWith(t, dir, caps, binary(t), "stdio", "--config", cfg, "--db", filepath.Join(dir, "stdio.db"))

	want := answerOverStdio(t, direct, "roots", roots)
	if !strings.Contains(want, "file:///work/project") {
		t.Fatalf("directly, the upstream saw %q", want)
	}
	if got := answerOverStdio(t, via, "fake__roots", roots); got != want {
		t.Errorf("through the mediator the upstream saw %q; directly %q", got, want)
	}
	if _, err := fmt.Fprint(via.in, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		r := via.call("tools/call", `{"name":"fake__roots_changed","arguments":{}}`)
		return r.Error == nil && strings.Contains(string(r.Result), `"text":"1"`)
	}, "the agent's roots/list_changed reached the upstream")
}
