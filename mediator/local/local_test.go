package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// sockDir is a short temp dir: t.TempDir's path with a long test name
// can pass the 103 bytes a socket path may have.
func sockDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "mlt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func TestListen(t *testing.T) {
	dir := sockDir(t)
	path := filepath.Join(dir, "m.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v mode %v; want a socket of mode 0600", err, fi.Mode())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".mediator-sock-*")); len(leftovers) != 0 {
		t.Fatalf("staging left behind: %v", leftovers)
	}
	if _, err := Listen(path); !errors.Is(err, ErrInUse) {
		t.Fatalf("a second Listen on a live socket: %v; want ErrInUse", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("Close left the socket: %v", err)
	}

	// A socket nobody accepts on (a serve killed -9) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = stale.Close()
	ln, err = Listen(path)
	if err != nil {
		t.Fatalf("a stale socket was not replaced: %v", err)
	}
	_ = ln.Close()

	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "x" {
		t.Fatal("Listen touched a regular file in its way")
	}
	long := filepath.Join(dir, strings.Repeat("d", MaxSocketPath))
	if _, err := Listen(long); err == nil || !strings.Contains(err.Error(), "local.socket") {
		t.Fatalf("Listen on a path too long for a socket: %v", err)
	}
}

func TestReadLine(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     []string
	}{
		{"lines", "a\nbc\n", 8, []string{"a\n", "bc\n"}},
		{"no final newline", "a\nbc", 8, []string{"a\n", "bc"}},
		{"exactly max", "abcd\n", 4, []string{"abcd\n"}},
		{"longer is cut at max+1", "abcdefgh\nz\n", 4, []string{"abcde", "z\n"}},
		{"longer than the buffer", strings.Repeat("x", 200<<10) + "\ny\n", 100 << 10, []string{strings.Repeat("x", 100<<10+1), "y\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tc.in), 64<<10)
			var got []string
			for {
				l, err := readLine(br, tc.max)
				if len(l) > 0 {
					got = append(got, string(l))
				}
				if err != nil {
					break
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadEvents(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      bool
	}{
		{"events", "event: message\ndata: {\"a\":1}\n\ndata: {\"b\":2}\n\n", []string{`{"a":1}`, `{"b":2}`}, false},
		{"crlf and id", "id: 7\r\ndata: x\r\n\r\n", []string{"x"}, false},
		{"data on two lines", "data: a\ndata: b\n\n", []string{"a\nb"}, false},
		{"comments and empty events", ": ping\n\n\nevent: message\n\n", nil, false},
		{"an event cut off is dropped", "data: {\"a\":1}\n\ndata: {\"b\"", []string{`{"a":1}`}, false},
		{"too large", "data: " + strings.Repeat("x", 100) + "\n\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := readEvents(strings.NewReader(tc.in), 64, func(b []byte) { got = append(got, string(b)) })
			if (err != nil) != tc.err || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %q, %v; want %q, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add([]byte("event: message\ndata: {\"a\":1}\n\n"))
	f.Add([]byte("data: a\ndata: b\n\ndata"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_ = readEvents(bytes.NewReader(in), 256, func(b []byte) {
			if len(b) > 256 {
				t.Fatalf("an event of %d bytes passed a 256 byte cap", len(b))
			}
		})
	})
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`))
	f.Add([]byte(`[{"id":1}]`))
	f.Add([]byte(`{"id":null,"method":"x"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		h := parseHead(in)
		if h.request && h.id == nil && !bytes.HasPrefix(bytes.TrimSpace(in), []byte("[")) {
			t.Fatalf("a request without an id: %q", in)
		}
		if h.id != nil {
			_ = withID([]byte(`{"id":null}`), h.id)
		}
	})
}

// testServe is a real mcp-go streamable HTTP server on a local socket,
// standing in for a serve: a tool that reports progress, one that waits.
type testServe struct {
	path    string
	hs      *http.Server
	release chan struct{}
	mu      sync.Mutex
	sids    []string
	active  int // wait calls running
	peak    int
}

func startTestServe(t *testing.T) *testServe {
	t.Helper()
	ts := &testServe{path: filepath.Join(sockDir(t), "s.sock"), release: make(chan struct{})}
	hooks := &server.Hooks{}
	hooks.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) {
		ts.mu.Lock()
		ts.sids = append(ts.sids, s.SessionID())
		ts.mu.Unlock()
	})
	ms := server.NewMCPServer("test", "1", server.WithToolCapabilities(false), server.WithHooks(hooks))
	ms.AddTool(mcp.NewTool("steps"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var token any
		if req.Params.Meta != nil {
			token = req.Params.Meta.ProgressToken
		}
		for i := 1; i <= 3; i++ {
			_ = server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/progress",
				map[string]any{"progressToken": token, "progress": i, "total": 3})
		}
		return mcp.NewToolResultText("done"), nil
	})
	ms.AddTool(mcp.NewTool("wait"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ts.mu.Lock()
		ts.active++
		ts.peak = max(ts.peak, ts.active)
		ts.mu.Unlock()
		defer func() { ts.mu.Lock(); ts.active--; ts.mu.Unlock() }()
		select {
		case <-ts.release:
		case <-ctx.Done():
		}
		return mcp.NewToolResultText("released"), nil
	})
	ln, err := Listen(ts.path)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(MCPPath, server.NewStreamableHTTPServer(ms, server.WithEndpointPath(MCPPath), server.WithStateful(true)))
	ts.hs = &http.Server{Handler: mux, ConnContext: ConnContext}
	go func() { _ = ts.hs.Serve(ln) }()
	t.Cleanup(func() { _ = ts.hs.Close() })
	return ts
}

// bridgeRun runs a Bridge to ts; send writes a line to its stdin, lines
// delivers what it writes to stdout.
type bridgeRun struct {
	in    *io.PipeWriter
	lines chan map[string]any
	done  chan error
	log   *bytes.Buffer
	mu    *sync.Mutex
}

type syncBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (s syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func runBridge(t *testing.T, path string) *bridgeRun {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	r := &bridgeRun{in: inW, lines: make(chan map[string]any, 64), done: make(chan error, 1), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	b := &Bridge{Socket: path, In: inR, Out: outW, Log: slog.New(slog.NewTextHandler(syncBuf{r.mu, r.log}, nil)), MaxLine: 1 << 20}
	go func() { r.done <- b.Run(t.Context()); _ = outW.Close() }()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("the bridge wrote a line that is not JSON: %q", sc.Text())
				continue
			}
			r.lines <- m
		}
		close(r.lines)
	}()
	t.Cleanup(func() { _ = inW.Close() })
	return r
}

func (r *bridgeRun) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(r.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (r *bridgeRun) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m, ok := <-r.lines:
		if !ok {
			t.Fatal("the bridge's stdout ended")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("nothing from the bridge within 10 s")
	}
	return nil
}

func (r *bridgeRun) logText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

const initLine = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func (r *bridgeRun) initialize(t *testing.T) {
	t.Helper()
	r.send(t, initLine)
	if m := r.next(t); m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	r.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

// sseServe answers every request on its own SSE stream: 3 progress
// events, then the result, with a pause between, the way the mediator's
// serve answers a tools/call that reports progress.
func sseServe(t *testing.T) string {
	t.Helper()
	path := filepath.Join(sockDir(t), "s.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&m)
		if m.Method == "initialize" {
			w.Header().Set("Mcp-Session-Id", "s-1")
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"t","version":"1"}}}`, m.ID)
			return
		}
		if len(m.ID) == 0 {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"p%s\",\"progress\":%d}}\n\n", m.ID, i)
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
		fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{}}\n\n", m.ID)
	})}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return path
}

// What the serve sends on a call's stream reaches the agent in its order
// (progress before the result), with calls in flight side by side; the
// end of stdin ends the bridge cleanly.
func TestBridgeRelaysCallsInOrder(t *testing.T) {
	r := runBridge(t, sseServe(t))
	r.initialize(t)
	const n = 8
	for i := 1; i <= n; i++ {
		r.send(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"steps","arguments":{}}}`, i))
	}
	progress := map[string]float64{}
	for done := 0; done < n; {
		m := r.next(t)
		if m["method"] == "notifications/progress" {
			p := m["params"].(map[string]any)
			tok := p["progressToken"].(string)
			if p["progress"].(float64) != progress[tok]+1 {
				t.Fatalf("progress of %s out of order: %v after %v", tok, p["progress"], progress[tok])
			}
			progress[tok] = p["progress"].(float64)
			continue
		}
		id := fmt.Sprint(m["id"])
		if progress["p"+id] != 3 {
			t.Fatalf("result of call %s before its 3 progress events (%v)", id, progress["p"+id])
		}
		done++
	}
	_ = r.in.Close()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run after stdin ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge did not end with its stdin")
	}
}

// A session the serve no longer knows (idled out, serve restarted) is
// replaced by one opened with the agent's own initialize, and the call
// that found it gone is sent again.
func TestBridgeReopensALostSession(t *testing.T) {
	ts := startTestServe(t)
	r := runBridge(t, ts.path)
	r.initialize(t)
	ts.mu.Lock()
	sid := ts.sids[0]
	ts.mu.Unlock()
	req, _ := http.NewRequest(http.MethodDelete, "http://localhost"+MCPPath, nil)
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := Client(ts.path).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r.send(t, `{"jsonrpc":"2.0","id":"after","method":"tools/call","params":{"name":"steps","arguments":{}}}`)
	for {
		m := r.next(t)
		if m["id"] == "after" {
			if m["result"] == nil {
				t.Fatalf("the call after the session was lost: %v", m)
			}
			break
		}
	}
	if !strings.Contains(r.logText(), "opened a new one") {
		t.Fatalf("the bridge did not say it opened a new session:\n%s", r.logText())
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	distinct := map[string]bool{}
	for _, id := range ts.sids { // mcp-go registers a session again for its GET stream at times
		distinct[id] = true
	}
	if len(distinct) != 2 {
		t.Fatalf("sessions %v; want the first and its replacement", ts.sids)
	}
}

// The serve goes away with a call in flight: the call is answered with an
// error that says so and what to do, and Run ends with ErrGone.
func TestBridgeServeGone(t *testing.T) {
	ts := startTestServe(t)
	r := runBridge(t, ts.path)
	r.initialize(t)
	r.send(t, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"wait","arguments":{}}}`)
	time.Sleep(200 * time.Millisecond) // the call reaches the tool
	_ = ts.hs.Close()
	m := r.next(t)
	e, _ := m["error"].(map[string]any)
	if fmt.Sprint(m["id"]) != "9" || e == nil || !strings.Contains(fmt.Sprint(e["message"]), "went away") ||
		!strings.Contains(fmt.Sprint(e["message"]), "restart this MCP server") {
		t.Fatalf("the call in flight when the serve went away: %v", m)
	}
	select {
	case err := <-r.done:
		if !errors.Is(err, ErrGone) {
			t.Fatalf("Run: %v; want ErrGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge did not end when its serve went away")
	}
}

// A line longer than MaxLine is sent cut, for the serve to refuse; the
// serve's refusal (which names no id) reaches the agent with its id.
func TestBridgeOversizeLineKeepsItsID(t *testing.T) {
	path := filepath.Join(sockDir(t), "s.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = len(b)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"too large"}}`)
	})}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	inR, inW := io.Pipe()
	var out bytes.Buffer
	b := &Bridge{Socket: path, In: inR, Out: &out, MaxLine: 100}
	done := make(chan error, 1)
	go func() { done <- b.Run(t.Context()) }()
	_, _ = io.WriteString(inW, `{"jsonrpc":"2.0","id":"big-1","method":"tools/call","params":{"x":"`+strings.Repeat("a", 500)+`"}}`+"\n")
	_ = inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got != 101 {
		t.Fatalf("the serve got %d bytes of the oversize line; want MaxLine+1 = 101", got)
	}
	if !strings.Contains(out.String(), `"id":"big-1"`) || !strings.Contains(out.String(), "too large") {
		t.Fatalf("the agent got %q", out.String())
	}
}

// An agent with more requests in flight than MaxInFlight waits for one to
// end before the next reaches the serve; all are answered.
func TestBridgeBoundsRequestsInFlight(t *testing.T) {
	ts := startTestServe(t)
	r := runBridge(t, ts.path)
	r.initialize(t)
	const n = MaxInFlight + 6
	go func() {
		for i := 1; i <= n; i++ {
			if _, err := io.WriteString(r.in, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"wait","arguments":{}}}`+"\n", i)); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts.mu.Lock()
		active := ts.active
		ts.mu.Unlock()
		if active == MaxInFlight {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls running after 10 s; want %d", active, MaxInFlight)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a call beyond the bound to arrive
	close(ts.release)
	for range n {
		if m := r.next(t); m["result"] == nil {
			t.Fatalf("a call: %v", m)
		}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.peak != MaxInFlight {
		t.Fatalf("%d calls ran at once; want at most %d", ts.peak, MaxInFlight)
	}
}

func TestTopLevelID(t *testing.T) {
	big := `{"content":[{"type":"text","text":"a \"quoted\" } ] { [ text"}],"n":[1,{"id":9}]}`
	for _, tc := range []struct {
		name, in, id string
		method, ok   bool
	}{
		{"response", `{"jsonrpc":"2.0","id":7,"result":` + big + `}`, "7", false, true},
		{"id after the result", `{"jsonrpc":"2.0","result":` + big + `,"id":"x-1"}`, `"x-1"`, false, true},
		{"a request", `{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{}}`, "3", true, true},
		{"a notification", ` {"method":"notifications/progress","params":{"id":5}} `, "", true, true},
		{"spaces", "{ \"id\" :\t12 , \"error\" : {\"code\":-1} }", "12", false, true},
		{"empty", `{}`, "", false, true},
		{"not an object", `[{"id":1}]`, "", false, false},
		{"cut off", `{"id":1,"result":{"a":`, "", false, false},
		{"unterminated string", `{"id":"abc`, "", false, false},
		{"trailing comma", `{"id":1,}`, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, method, ok := topLevelID([]byte(tc.in))
			if ok != tc.ok || (ok && (string(id) != tc.id || method != tc.method)) {
				t.Fatalf("topLevelID = %q, %v, %v; want %q, %v, %v", id, method, ok, tc.id, tc.method, tc.ok)
			}
		})
	}
}

// FuzzTopLevelID checks the scan against encoding/json on valid objects
// (exact keys, the last of a repeated one).
func FuzzTopLevelID(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":7,"result":{"a":[1,"}"]}}`))
	f.Add([]byte(`{"method":"x","id":"y"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		id, method, ok := topLevelID(in)
		var m map[string]json.RawMessage
		if bytes.Contains(in, []byte(`\`)) || json.Unmarshal(in, &m) != nil || m == nil {
			return // escapes (json unescapes keys), not JSON, or null
		}
		_, wantMethod := m["method"]
		if !ok || string(id) != string(m["id"]) || method != wantMethod {
			t.Fatalf("%q: topLevelID = %q, %v, %v; encoding/json: id %q, method %v", in, id, method, ok, m["id"], wantMethod)
		}
	})
}

// BenchmarkResponseTo is the bridge's check of a 1 MB result, on every
// call's way back.
func BenchmarkResponseTo(b *testing.B) {
	msg := []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` + strings.Repeat("abcdefgh", 1<<17) + `"}]}}`)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if !responseTo(msg, json.RawMessage("7")) {
			b.Fatal("not the response")
		}
	}
}
