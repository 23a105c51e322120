package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// urlUser accepts every elicitation and keeps the requests it saw.
type urlUser struct {
	mu   sync.Mutex
	seen []mcp.ElicitationParams
}

func (u *urlUser) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	u.mu.Lock()
	u.seen = append(u.seen, req.Params)
	u.mu.Unlock()
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept}}, nil
}

// capsAgent is a 2025-11-25 agent session (with its GET stream open, where
// session notifications arrive) declaring caps, with the handlers caps
// needs; completed receives the ids of notifications/elicitation/complete.
type capsAgent struct {
	c         *client.Client
	user      *urlUser
	completed chan string
}

func newCapsAgent(t *testing.T, url string, caps mcp.ClientCapabilities) *capsAgent {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithContinuousListening()) //lint:ignore SA1019 the legacy GET stream is what 2025-11-25 clients use
	if err != nil {
		t.Fatal(err)
	}
	a := &capsAgent{user: &urlUser{}, completed: make(chan string, 8)}
	var opts []client.ClientOption
	if caps.Elicitation != nil {
		opts = append(opts, client.WithElicitationHandler(a.user))
	}
	if caps.Sampling != nil {
		opts = append(opts, client.WithSamplingHandler(fakeLLM{}))
	}
	a.c = client.NewClient(tr, opts...)
	a.c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/elicitation/complete" {
			id, _ := n.Params.AdditionalFields["elicitationId"].(string)
			a.completed <- id
		}
	})
	initLegacy(t, a.c, caps)
	return a
}

// initLegacy starts c and initialises it at protocol 2025-11-25 declaring
// caps; it is closed when the test ends.
func initLegacy(t *testing.T, c *client.Client, caps mcp.ClientCapabilities) {
	t.Helper()
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e-legacy", Version: "1"}
	init.Params.Capabilities = caps
	if _, err := c.Initialize(t.Context(), init); err != nil {
		t.Fatal(err)
	}
}

// upstreamSaw is the client capabilities the fake upstream was given, as
// JSON.
func upstreamSaw(t *testing.T, c *client.Client) map[string]json.RawMessage {
	t.Helper()
	out := resultText(callTool(t, c, "fake__client_caps", nil))
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("fake__client_caps: %q: %v", out, err)
	}
	return m
}

// completion waits for the completion of elicitation id, failing when
// another id arrives first or none within 10 s.
func (a *capsAgent) completion(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-a.completed:
		if got != id {
			t.Fatalf("notifications/elicitation/complete for %q; want %q", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no notifications/elicitation/complete for %q within 10 s", id)
	}
}

// noCompletion fails when any completion arrives within d.
func (a *capsAgent) noCompletion(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-a.completed:
		t.Fatalf("an unexpected notifications/elicitation/complete for %q", got)
	case <-time.After(d):
	}
}

// Issue 18, item 4: an agent session's own upstream session (isolation:
// session) is offered exactly what the agent's client declared (roots,
// sampling and elicitation with their sub-capabilities, URL elicitation
// among them), not what the mediator could relay for any agent; a shared
// session is offered the common set. A URL elicitation reaches an agent
// that declared it, with its URL and id, and the upstream's
// notifications/elicitation/complete reaches that agent session after the
// call was answered — also for an elicitation named in a -32042 error —
// and no other; an agent declaring form elicitation only is not asked for
// a URL.
func TestE2EClientCapabilitiesRelayed(t *testing.T) {
	t.Parallel()
	full := mcp.ClientCapabilities{
		Elicitation: &mcp.ElicitationCapability{Form: &struct{}{}, URL: &struct{}{}},
		Sampling:    &mcp.SamplingCapability{Tools: &struct{}{}},
	}
	formOnly := mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{Form: &struct{}{}}}

	t.Run("isolated", func(t *testing.T) {
		t.Parallel()
		p := startServe(t, fakeConfig(t, "    isolation: session\n"))
		a := newCapsAgent(t, p.URL, full)
		b := newCapsAgent(t, p.URL, mcp.ClientCapabilities{})

		sawA := upstreamSaw(t, a.c)
		if string(sawA["elicitation"]) != `{"form":{},"url":{}}` || string(sawA["sampling"]) != `{"tools":{}}` {
			t.Fatalf("A's own upstream session was offered %v; want A's elicitation {form,url} and sampling {tools}", sawA)
		}
		if _, ok := sawA["roots"]; ok {
			t.Fatalf("A's own upstream session was offered roots, which A did not declare: %v", sawA)
		}
		if sawB := upstreamSaw(t, b.c); len(sawB) != 0 {
			t.Fatalf("B declared nothing; its own upstream session was offered %v", sawB)
		}

		if out := resultText(callTool(t, a.c, "fake__elicit_url", map[string]any{"id": "el-a"})); out != "elicited accept" {
			t.Fatalf("URL elicitation through the mediator: %q", out)
		}
		a.user.mu.Lock()
		seen := a.user.seen
		a.user.mu.Unlock()
		if len(seen) != 1 || seen[0].Mode != "url" || seen[0].ElicitationID != "el-a" || seen[0].URL != "https://auth.example.com/connect?el=el-a" {
			t.Fatalf("the agent was asked %+v; want one URL elicitation el-a with its URL", seen)
		}
		a.completion(t, "el-a")

		if out := resultText(callTool(t, b.c, "fake__elicit_url", nil)); !strings.Contains(out, "elicitation failed") {
			t.Fatalf("an agent that declared no elicitation was asked anyway: %q", out)
		}
		b.noCompletion(t, 500*time.Millisecond)
	})

	t.Run("shared", func(t *testing.T) {
		t.Parallel()
		p := startServe(t, fakeConfig(t, ""))
		a := newCapsAgent(t, p.URL, full)
		f := newCapsAgent(t, p.URL, formOnly)

		saw := upstreamSaw(t, a.c)
		for _, k := range []string{"elicitation", "sampling", "roots"} {
			if _, ok := saw[k]; !ok {
				t.Fatalf("the shared upstream session was not offered %s: %v", k, saw)
			}
		}
		if strings.Contains(string(saw["elicitation"]), "url") {
			t.Fatalf("the shared upstream session was offered URL elicitation, which not every agent has: %s", saw["elicitation"])
		}

		// The agent declaring URL elicitation is asked and completed.
		if out := resultText(callTool(t, a.c, "fake__elicit_url", map[string]any{"id": "el-s"})); out != "elicited accept" {
			t.Fatalf("URL elicitation for an agent declaring it: %q", out)
		}
		a.completion(t, "el-s")
		// The form-only agent is refused, saying which mode it lacks.
		if out := resultText(callTool(t, f.c, "fake__elicit_url", map[string]any{"id": "el-f"})); !strings.Contains(out, "url-mode elicitation") {
			t.Fatalf("URL elicitation for a form-only agent: %q; want a refusal naming url-mode elicitation", out)
		}
		f.user.mu.Lock()
		asked := len(f.user.seen)
		f.user.mu.Unlock()
		if asked != 0 {
			t.Fatal("the form-only agent was shown a URL elicitation")
		}

		// An elicitation named in A's -32042 error: its completion, sent
		// later by the upstream (here when F's call asks for it), reaches A
		// only. An id nobody was given reaches no one.
		req := mcp.CallToolRequest{}
		req.Params.Name = "fake__needs_url"
		if _, err := a.c.CallTool(t.Context(), req); err == nil || !strings.Contains(err.Error(), "URL elicitation required") {
			t.Fatalf("fake__needs_url: %v; want the upstream's -32042", err)
		}
		if out := resultText(callTool(t, f.c, "fake__complete_elicitation", map[string]any{"id": "el-7"})); out != "completed el-7" {
			t.Fatalf("fake__complete_elicitation: %q", out)
		}
		a.completion(t, "el-7")
		f.noCompletion(t, 300*time.Millisecond)
		callTool(t, f.c, "fake__complete_elicitation", map[string]any{"id": "el-7"}) // a second completion of the same id
		callTool(t, f.c, "fake__complete_elicitation", map[string]any{"id": "el-unknown"})
		a.noCompletion(t, 500*time.Millisecond)
		f.noCompletion(t, 100*time.Millisecond)
	})
}

// Issue 18: over a streamable HTTP upstream, mcp-go's client gives a
// request of the upstream 30 s, whatever the call's timeout; a person
// reviewing a sampling request takes longer. The relayed request now lives
// as long as the agent's call (here the upstream's timeout of 90 s), so an
// answer after 32 s reaches the upstream. (The agent here is a stdio
// client of this test's own: mcp-go's HTTP client has the same 30 s limit
// for the requests it is sent.)
func TestE2ESlowSamplingThroughHTTPUpstream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mediator.yaml")
	must(t, os.WriteFile(cfg, []byte(policyFragment(t, "p, *, tool, web__*, allow, web-all\n")+`
agent: {id: e2e-agent}
upstreams:
  - name: web
    transport: http
    url: `+startRemoteUpstream(t, "http")+`
    timeout: 90s
`), 0o600))
	agent := startStdioPeerWith(t, dir, `{"sampling":{}}`, binary(t), "stdio", "--attach", "never", "--config", cfg, "--db", filepath.Join(dir, "mediator.db"))
	if _, err := io.WriteString(agent.in, `{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"web__sample","arguments":{}}}`+"\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		line, err := agent.out.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading the mediator's output: %v\n%s", err, agent.stderr.String())
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal(line, &msg) != nil {
			continue
		}
		switch {
		case msg.Method == "sampling/createMessage":
			time.Sleep(32 * time.Second) // a person reviewing the request
			answer := `{"jsonrpc":"2.0","id":` + string(msg.ID) + `,"result":{"role":"assistant","content":{"type":"text","text":"hi after a while"},"model":"slow-human-model"}}` + "\n"
			if _, err := io.WriteString(agent.in, answer); err != nil {
				t.Fatal(err)
			}
		case string(msg.ID) == `"call-1"`:
			if !strings.Contains(string(msg.Result), "sampled slow-human-model") {
				t.Fatalf("a sampling request answered after 32 s, through an HTTP upstream: %s %s (after %s)\n%s",
					msg.Result, msg.Error, time.Since(start).Round(time.Second), agent.stderr.String())
			}
			return
		}
	}
}

// fakeRoots lists one root.
type fakeRoots struct{}

func (fakeRoots) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///work/project", Name: "project"}}}, nil
}

// Issue 18, item 2: an upstream's sampling, elicitation and roots requests
// during a call go on that call's own POST stream, as MCP's streamable
// HTTP transport says. mcp-go's server sends them only on the session's
// GET stream, so an agent that holds none (here mcp-go's client without
// continuous listening) never saw them and the call hung until its
// timeout (10 s here).
func TestE2EAgentAskedOnItsCallsStream(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, "    timeout: 10s\n"))
	tr, err := transport.NewStreamableHTTP(p.URL) // no GET stream
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithSamplingHandler(fakeLLM{}), client.WithElicitationHandler(fakeUser{}), client.WithRootsHandler(fakeRoots{}))
	initLegacy(t, c, mcp.ClientCapabilities{})
	for _, tc := range []struct{ tool, want string }{
		{"fake__sample", "sampled agent-side-model"},
		{"fake__elicit", `elicited accept {"name":"Ada"}`},
		{"fake__roots", "file:///work/project"},
	} {
		start := time.Now()
		if out := resultText(callTool(t, c, tc.tool, nil)); !strings.Contains(out, tc.want) {
			t.Fatalf("%s for an agent without a GET stream: %q after %s; want %q", tc.tool, out, time.Since(start).Round(time.Millisecond), tc.want)
		}
	}
}

// The answer to a request the mediator wrote on agent session A's call
// stream is taken only from session A: session B posting A's request id
// is not taken for it (and A's call still completes with A's answer).
func TestE2EAskAnsweredOnlyByItsSession(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, "    timeout: 20s\n"))
	sidA, _ := rawSession(t, p.URL, `{"sampling":{}}`)
	sidB, _ := rawSession(t, p.URL, `{"sampling":{}}`)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.URL,
		strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"fake__sample","arguments":{}}}`))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sidA)
	req.Header.Set("Mcp-Protocol-Version", mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- l
			}
		}
		close(events)
	}()
	next := func() string {
		select {
		case l, ok := <-events:
			if !ok {
				t.Fatal("A's call stream ended early")
			}
			return l
		case <-time.After(15 * time.Second):
			t.Fatal("nothing on A's call stream within 15 s")
		}
		return ""
	}
	var ask struct {
		ID     string `json:"id"`
		Method string `json:"method"`
	}
	if l := next(); json.Unmarshal([]byte(l), &ask) != nil || ask.Method != "sampling/createMessage" || !strings.HasPrefix(ask.ID, "mediator-ask-") {
		t.Fatalf("A's call stream: %s; want the sampling request first", l)
	}
	answer := func(sid, model string) int {
		st, _, _ := rawRequest(t, "POST", p.URL, "", sid,
			`{"jsonrpc":"2.0","id":"`+ask.ID+`","result":{"role":"assistant","content":{"type":"text","text":"hi"},"model":"`+model+`"}}`,
			map[string]string{"Mcp-Protocol-Version": mcp.LATEST_LEGACY_PROTOCOL_VERSION})
		return st
	}
	if st := answer(sidB, "forged-by-b"); st == http.StatusAccepted {
		t.Fatal("session B's answer to A's request was accepted")
	}
	if st := answer(sidA, "a-model"); st != http.StatusAccepted {
		t.Fatalf("A's answer: HTTP %d", st)
	}
	if l := next(); !strings.Contains(l, "sampled a-model") || strings.Contains(l, "forged") {
		t.Fatalf("A's call result: %s; want A's answer", l)
	}
}
