package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// rawRequest sends one HTTP request to the agent endpoint and returns the
// status, headers and (capped) body.
func rawRequest(t *testing.T, method, url, tok, sid, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	for k, v := range hdr {
		switch {
		case k == "Host":
			req.Host = v
		case v == "":
			req.Header.Del(k) // e.g. no Mcp-Protocol-Version, as a 2025-03-26 client sends
		default:
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header, string(b)
}

// blockingLLM answers sampling requests only once released, so that an
// attacker can act while the victim's request is pending.
type blockingLLM struct {
	asked   chan struct{}
	release chan struct{}
}

func (b blockingLLM) CreateMessage(ctx context.Context, _ mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	close(b.asked)
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &mcp.CreateMessageResult{Model: "victim-model",
		SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("the victim's own answer")}}, nil
}

// sessionsConfig requires tokens, with small session limits.
func sessionsConfig(t *testing.T) string {
	return policyFragment(t, "p, *, tool, fake__*, allow, fake-all\n") + `
limits: {sessions_per_agent: 3, session_idle_timeout: 2s, read_timeout: 1s}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + "\n"
}

// Issue 14, finding 2: with a victim's session id and a token of its own,
// an attacker could answer the victim's pending sampling request (its
// answer reached the victim's tool result), read the victim's GET stream,
// call tools in it, or DELETE it. Every message of every HTTP method on a
// session must come from the agent that opened it, and each refusal is
// recorded with the attacker's agent and address.
func TestE2ESessionBelongsToItsAgent(t *testing.T) {
	t.Parallel()
	p := startServe(t, sessionsConfig(t))
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	victimTok := mintCLI(t, p.Dir, "--agent", "victim", "--config", cfg)
	attackerTok := mintCLI(t, p.Dir, "--agent", "attacker", "--config", cfg)

	auth := transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + victimTok})
	tr, err := transport.NewStreamableHTTP(p.URL, auth, transport.WithContinuousListening()) //lint:ignore SA1019 the legacy GET stream is what the attacker targets
	if err != nil {
		t.Fatal(err)
	}
	llm := blockingLLM{asked: make(chan struct{}), release: make(chan struct{})}
	victim := initClient(t, client.NewClient(tr, client.WithSamplingHandler(llm)))
	sid := tr.GetSessionId()
	if sid == "" {
		t.Fatal("the victim has no session id")
	}
	done := make(chan *mcp.CallToolResult, 1)
	go func() { done <- callTool(t, victim, "fake__sample", nil) }()
	select {
	case <-llm.asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the victim was never asked to sample")
	}

	// The attack, while the victim's sampling request is pending.
	for id := range 8 {
		forged := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"model":"attacker","role":"assistant","content":{"type":"text","text":"pwned"}}}`, id)
		if st, _, body := rawRequest(t, http.MethodPost, p.URL, attackerTok, sid, forged, nil); st != http.StatusForbidden || !strings.Contains(body, "belongs to another agent") {
			t.Fatalf("forged sampling response %d: %d %s; want 403", id, st, body)
		}
	}
	attacks := []struct{ name, method, body string }{
		{"GET stream", http.MethodGet, ""},
		{"DELETE", http.MethodDelete, ""},
		{"tools/call", http.MethodPost, `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"fake__echo","arguments":{"text":"x"}}}`},
		{"notification", http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":0}}`},
	}
	for _, a := range attacks {
		if st, _, body := rawRequest(t, a.method, p.URL, attackerTok, sid, a.body, nil); st != http.StatusForbidden || !strings.Contains(body, "belongs to another agent") {
			t.Errorf("%s on the victim's session: %d %s; want 403", a.name, st, body)
		}
	}
	if st, _, body := rawRequest(t, http.MethodPost, p.URL, attackerTok, "mcp-session-made-up", attacks[2].body, nil); st != http.StatusNotFound || !strings.Contains(body, "unknown, closed or expired") {
		t.Errorf("made-up session id: %d %s; want 404", st, body)
	}

	close(llm.release)
	var res *mcp.CallToolResult
	select {
	case res = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the victim's call never finished")
	}
	if out := resultText(res); res.IsError || !strings.Contains(out, "victim-model") || strings.Contains(out, "pwned") {
		t.Fatalf("the victim's result: %s", out)
	}
	if out := resultText(callTool(t, victim, "fake__echo", map[string]any{"text": "still mine"})); !strings.Contains(out, "still mine") {
		t.Fatalf("the victim's session no longer works: %s", out)
	}

	p.stop(t)
	methods := map[string]int{}
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.AgentID == "attacker" && r.Outcome == mediator.OutcomeDenied {
			if r.RemoteAddr != "127.0.0.1" {
				t.Errorf("refusal without the remote address: %+v", r)
			}
			methods[r.Method]++
		}
	}
	// 8 forged responses (a response names no method: "http/post"), GET,
	// DELETE, and tools/call twice (the victim's session, a made-up one),
	// the notification.
	if methods["http/get"] != 1 || methods["http/delete"] != 1 || methods["tools/call"] != 2 || methods["notifications/cancelled"] != 1 || methods["http/post"] != 8 {
		t.Fatalf("refusals recorded by method: %v", methods)
	}
}

// Issue 14, findings 8 and 9: sessions expire and are capped per agent; a
// slow body, a batch, oversize headers, a foreign Host and a refused token
// are each answered with their cause and recorded (a 401 with the remote
// address).
func TestE2EHTTPLimitsAreRecorded(t *testing.T) {
	t.Parallel()
	p := startServe(t, sessionsConfig(t))
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	tok := mintCLI(t, p.Dir, "--agent", "greedy", "--config", cfg)

	var sids []string
	for range 3 {
		st, hdr, body := postInitialize(t, p.URL, tok)
		if st != http.StatusOK {
			t.Fatalf("initialize: %d %s", st, body)
		}
		sids = append(sids, hdr.Get("Mcp-Session-Id"))
	}
	st, _, body := postInitialize(t, p.URL, tok)
	if st != http.StatusTooManyRequests || !strings.Contains(body, "limits.sessions_per_agent") {
		t.Fatalf("fourth session: %d %s; want 429 naming the limit", st, body)
	}
	if st, _, body := rawRequest(t, http.MethodDelete, p.URL, tok, sids[0], "", nil); st != http.StatusOK {
		t.Fatalf("DELETE own session: %d %s", st, body)
	}
	if st, _, body := postInitialize(t, p.URL, tok); st != http.StatusOK {
		t.Fatalf("initialize after closing one: %d %s", st, body)
	}
	// The idle timeout is 2s; the sweeper runs every second.
	time.Sleep(4 * time.Second)
	ping := `{"jsonrpc":"2.0","id":5,"method":"ping"}`
	if st, _, body := rawRequest(t, http.MethodPost, p.URL, tok, sids[1], ping, nil); st != http.StatusNotFound || !strings.Contains(body, "expired") {
		t.Fatalf("idle session: %d %s; want 404", st, body)
	}
	if st, _, body := postInitialize(t, p.URL, tok); st != http.StatusOK {
		t.Fatalf("initialize after the others idled out: %d %s", st, body)
	}

	cases := []struct {
		name, body string
		hdr        map[string]string
		tok        string
		status     int
		want       string
	}{
		{"batch", `[` + ping + `]`, nil, tok, http.StatusBadRequest, "batches are not accepted"},
		{"not JSON", `{"jsonrpc":`, nil, tok, http.StatusBadRequest, "not valid JSON"},
		{"headers over the cap", ping, map[string]string{"X-Pad": strings.Repeat("p", 70<<10)}, tok, http.StatusRequestHeaderFieldsTooLarge, "limits.max_header_bytes"},
		{"foreign Host", ping, map[string]string{"Host": "attacker.example:80"}, tok, http.StatusForbidden, "DNS rebinding"},
		{"bad token", ping, nil, "not-a-token", http.StatusUnauthorized, "unauthorized"},
	}
	for _, tc := range cases {
		if st, _, body := rawRequest(t, http.MethodPost, p.URL, tc.tok, "", tc.body, tc.hdr); st != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s; want %d with %q", tc.name, st, body, tc.status, tc.want)
		}
	}
	if st, line := slowBody(t, strings.TrimPrefix(p.Base, "http://"), tok); st != "408" {
		t.Errorf("slow body: %s; want 408", line)
	}

	p.stop(t)
	found := map[string]bool{}
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.Outcome != mediator.OutcomeDenied {
			continue
		}
		for _, w := range []string{"limits.sessions_per_agent", "expired MCP session", "batches", "not valid JSON",
			"limits.max_header_bytes", "DNS rebinding", "limits.read_timeout", "token"} {
			if strings.Contains(r.Error, w) && r.RemoteAddr == "127.0.0.1" {
				found[w] = true
			}
		}
	}
	if len(found) != 8 {
		t.Fatalf("refusals recorded (with the remote address): %v; want all 8", found)
	}
}

// slowBody sends a request whose body stops half-way, and returns the
// status code of the answer and its status line.
func slowBody(t *testing.T, addr, tok string) (string, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
		"Accept: application/json, text/event-stream\r\nContent-Length: 200\r\n\r\n{\"jsonrpc\":\"2.0\",", addr, tok)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("slow body: no answer: %v", err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return "", line
	}
	return f[1], line
}

// Issue 14, finding 11: on stdio, a line that is not JSON is answered with
// a parse error and recorded; an oversize line gets an error that names
// the cap (not "method not found"), and is recorded; the session goes on.
func TestE2EStdioBadLinesAreRecorded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mediator.yaml")
	if err := os.WriteFile(cfg, []byte("limits: {max_request_bytes: 2048}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "mediator.db")
	cmd := exec.CommandContext(t.Context(), binary(t), "stdio", "--config", cfg, "--db", db)
	cmd.Dir = dir
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(outPipe)
	answer := func(line string) string {
		t.Helper()
		if _, err := io.WriteString(in, line+"\n"); err != nil {
			t.Fatal(err)
		}
		got, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("no answer to %.60q: %v (stderr %s)", line, err, stderr.String())
		}
		return got
	}
	answer(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`)
	if _, err := io.WriteString(in, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	if got := answer("this is not JSON"); !strings.Contains(got, "-32700") {
		t.Errorf("non-JSON line: %s; want a parse error", got)
	}
	big := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"` + strings.Repeat("m", 4096) + `"}}}`
	if got := answer(big); !strings.Contains(got, `"id":3`) || !strings.Contains(got, "limits.max_request_bytes") {
		t.Errorf("oversize line: %s; want an error naming the cap", got)
	}
	if got := answer(`{"jsonrpc":"2.0","id":4,"method":"ping"}`); !strings.Contains(got, `"id":4,"result"`) {
		t.Errorf("ping after the bad lines: %s", got)
	}
	_ = in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stdio: %v (%s)", err, stderr.String())
	}
	var notJSON, tooLarge bool
	for _, r := range exportRecords(t, dir, db) {
		if r.Outcome != mediator.OutcomeDenied || r.Transport != "stdio" || r.AgentID == "" {
			continue
		}
		notJSON = notJSON || strings.Contains(r.Error, "not valid JSON")
		tooLarge = tooLarge || strings.Contains(r.Error, "limits.max_request_bytes")
	}
	if !notJSON || !tooLarge {
		t.Fatalf("records with the stdio agent: non-JSON line %v, oversize line %v", notJSON, tooLarge)
	}
}
