package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

// schemaJSON is the fake's "schema" tool input schema (testdata/fakeupstream).
const schemaJSON = `{"type":"object","$defs":{"pos":{"type":"integer","minimum":1}},` +
	`"properties":{"target":{"oneOf":[{"type":"string","format":"uri"},{"$ref":"#/$defs/pos"}]}},` +
	`"required":["target"],"additionalProperties":false}`

func TestEnvNotLeaked(t *testing.T) {
	t.Setenv("MEDIATOR_SECRET_TOKEN", "hunter2")
	cfg := stdioConfig("fake")
	cfg.Env = map[string]string{"DEMO_MODE": "1"}
	r, _ := startRegistry(t, []Config{cfg})

	env := strings.Split(mustCall(t, r, "fake__env", nil), "\n")
	var keys []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"DEMO_MODE", "HOME", "PATH"}; !slices.Equal(keys, want) {
		t.Errorf("child environment keys = %v, want exactly %v", keys, want)
	}
	for _, kv := range env {
		if strings.Contains(kv, "hunter2") || strings.HasPrefix(kv, "MEDIATOR_") {
			t.Errorf("the mediator's environment leaked into the child: %q", kv)
		}
	}
	if !slices.Contains(env, "DEMO_MODE=1") || !slices.Contains(env, "PATH="+os.Getenv("PATH")) {
		t.Errorf("configured env or PATH missing: %v", env)
	}
}

func TestCatalogKeepsRawDefinitions(t *testing.T) {
	cfg := stdioConfig("fake")
	cfg.Tools = map[string]ToolOverride{"env": {Risk: mediator.RiskHigh, DataClass: mediator.DataConfidential}}
	cfg.Resources = ResourceOverride{DataClass: mediator.DataInternal}
	r, _ := startRegistry(t, []Config{cfg})

	schema := tool(t, r, "fake__schema")
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(schema.Definition, &fields); err != nil {
		t.Fatal(err)
	}
	if got := string(fields["inputSchema"]); got != schemaJSON {
		t.Errorf("inputSchema changed in transit:\n got %s\nwant %s", got, schemaJSON)
	}
	if string(fields["name"]) != `"fake__schema"` || schema.Original != "schema" || schema.Server != "fake" {
		t.Errorf("name: %s / %q / %q", fields["name"], schema.Original, schema.Server)
	}
	original, err := rewriteName(schema.Definition, "schema")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := definitionHash(original); schema.Hash != want {
		t.Errorf("hash %s is not the hash of the definition as received (%s)", schema.Hash, want)
	}

	tests := []struct {
		tool   string
		reason string
		risk   mediator.Risk
		class  mediator.DataClass
	}{
		{"fake__schema", "_meta declares critical/pii", mediator.RiskCritical, mediator.DataPII},
		{"fake__echo", "readOnlyHint → low", mediator.RiskLow, mediator.DataUnknown},
		{"fake__wipe", "destructiveHint → high", mediator.RiskHigh, mediator.DataUnknown},
		{"fake__sleep", "mcp-go's NewTool declares destructiveHint true by default → high", mediator.RiskHigh, mediator.DataUnknown},
		{"fake__env", "configuration overrides", mediator.RiskHigh, mediator.DataConfidential},
	}
	for _, tt := range tests {
		tl := tool(t, r, tt.tool)
		if tl.Risk != tt.risk || tl.DataClass != tt.class {
			t.Errorf("%s (%s): got %q/%q, want %q/%q", tt.tool, tt.reason, tl.Risk, tl.DataClass, tt.risk, tt.class)
		}
	}
	if h := tool(t, r, "fake__schema").Hints; h.Destructive == nil || !*h.Destructive {
		t.Errorf("hints not copied: %+v", h)
	}

	cat := r.Catalog()
	if p, ok := cat.Prompt("fake__greet"); !ok || p.Original != "greet" || !strings.Contains(string(p.Definition), `"name":"fake__greet"`) {
		t.Errorf("prompt: %+v %v", p, ok)
	}
	if server, class, ok := cat.ResourceServer("fake://readme"); !ok || server != "fake" || class != mediator.DataInternal {
		t.Errorf("resource: %q %q %v", server, class, ok)
	}
	if server, _, ok := cat.ResourceServer("fake://items/7"); !ok || server != "fake" {
		t.Errorf("template: %q %v", server, ok)
	}
	st, _ := cat.Server("fake")
	if !st.Connected || st.Transport != "stdio" || st.Protocol == "" || !strings.HasPrefix(st.Server, "fake") || !st.Completions {
		t.Errorf("server state: %+v", st)
	}
}

func TestPromptResourceCompletion(t *testing.T) {
	r, _ := startRegistry(t, []Config{stdioConfig("fake")})
	ctx := t.Context()
	p, _ := r.Catalog().Prompt("fake__greet")
	var preq mcp.GetPromptRequest
	preq.Params.Name = p.Name
	preq.Params.Arguments = map[string]string{"who": "ann"}
	pres, err := r.GetPrompt(ctx, p, preq)
	if err != nil {
		t.Fatalf("GetPrompt: %v", err)
	}
	if tc, ok := pres.Messages[0].Content.(mcp.TextContent); !ok || tc.Text != "hello ann" {
		t.Errorf("prompt result: %+v", pres.Messages)
	}

	var rreq mcp.ReadResourceRequest
	rreq.Params.URI = "fake://items/9"
	rres, err := r.ReadResource(ctx, "fake", rreq)
	if err != nil {
		t.Fatalf("ReadResource: %v", err)
	}
	if tc, ok := rres.Contents[0].(mcp.TextResourceContents); !ok || tc.Text != "item" {
		t.Errorf("resource result: %+v", rres.Contents)
	}

	var creq mcp.CompleteRequest
	creq.Params.Ref = mcp.PromptReference{Type: "ref/prompt", Name: "greet"}
	creq.Params.Argument = mcp.CompleteArgument{Name: "who", Value: "an"}
	cres, err := r.Complete(ctx, "fake", creq)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if !slices.Equal(cres.Completion.Values, []string{"an-one", "an-two"}) {
		t.Errorf("completion: %+v", cres.Completion)
	}
}

func TestErrors(t *testing.T) {
	r, _ := startRegistry(t, []Config{stdioConfig("fake")})
	ctx := t.Context()
	tests := []struct {
		name   string
		reason string
		run    func() error
		want   error
		text   string
	}{
		{"unknown server", "a server the registry does not run is unavailable", func() error {
			_, err := r.CallTool(ctx, mediator.Tool{Name: "x__y", Server: "x", Original: "y"}, mcp.CallToolRequest{})
			return err
		}, mediator.ErrUpstreamUnavailable, `no upstream named "x"`},
		{"upstream error", "a JSON-RPC error from the upstream is ErrUpstream with its message", func() error {
			_, err := r.CallTool(ctx, mediator.Tool{Name: "fake__nope", Server: "fake", Original: "nope"}, mcp.CallToolRequest{})
			return err
		}, mediator.ErrUpstream, "nope"},
		{"no original", "a tool without an upstream name is unknown", func() error {
			_, err := r.CallTool(ctx, mediator.Tool{Name: "fake__x", Server: "fake"}, mcp.CallToolRequest{})
			return err
		}, mediator.ErrUnknownTool, "no upstream name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("%s: got %v, want %v containing %q", tt.reason, err, tt.want, tt.text)
			}
		})
	}
}

func TestChildDeathMidCall(t *testing.T) {
	r, _ := startRegistry(t, []Config{stdioConfig("fake")})
	pid := childPID(t, r, "fake")

	start := time.Now()
	_, err := call(t.Context(), t, r, "fake__crash", nil)
	if !errors.Is(err, mediator.ErrUpstreamUnavailable) {
		t.Fatalf("call on a dying child: got %v, want ErrUpstreamUnavailable", err)
	}
	for _, want := range []string{`"fake"`, "exit status 3", "restarted"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the in-flight call took %s to fail", d)
	}

	waitFor(t, "the upstream to be restarted", func() bool {
		st, _ := r.Catalog().Server("fake")
		return st.Connected && r.Ready() == nil && currentPID(r, "fake") != pid
	})
	if got := mustCall(t, r, "fake__echo", map[string]any{"text": "again"}); got != "again" {
		t.Errorf("call after restart: %q", got)
	}
	assertReaped(t, pid)
}

// currentPID returns the pid of the upstream's current child, or 0.
func currentPID(r *Registry, name string) int {
	u, err := r.lookup(name)
	if err != nil {
		return 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil || u.conn.proc == nil {
		return 0
	}
	return u.conn.proc.pid()
}

// childPID returns the pid of the upstream's current child.
func childPID(t *testing.T, r *Registry, name string) int {
	t.Helper()
	u, err := r.lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil || u.conn.proc == nil {
		t.Fatalf("upstream %s has no child", name)
	}
	return u.conn.proc.pid()
}

// assertReaped checks that pid is gone entirely (not even a zombie).
func assertReaped(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, "the child to be reaped", func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
}

func TestListChanged(t *testing.T) {
	r, _ := startRegistry(t, []Config{stdioConfig("fake")})
	changed := make(chan *mediator.Catalog, 16)
	r.OnChange(func(c *mediator.Catalog) { changed <- c })

	mustCall(t, r, "fake__add_tool", map[string]any{"name": "fresh"})
	timeout := time.After(patience)
	for {
		select {
		case c := <-changed:
			if _, ok := c.Tool("fake__fresh"); ok {
				if got := mustCall(t, r, "fake__fresh", nil); got != "i am fresh" {
					t.Errorf("new tool answered %q", got)
				}
				return
			}
		case <-timeout:
			t.Fatalf("no catalog with the new tool; have %v", toolNames(r.Catalog()))
		}
	}
}

func TestProgressAndLogging(t *testing.T) {
	r, _ := startRegistry(t, []Config{stdioConfig("fake")})
	peer := &fakePeer{id: "agent-1"}
	req := mcp.CallToolRequest{}
	req.Params.Name = "fake__progress"
	req.Params.Arguments = map[string]any{"steps": 3}
	req.Params.Meta = &mcp.Meta{ProgressToken: "agent-token-7", AdditionalFields: map[string]any{"trace": "t1"}}
	res, err := r.CallTool(mediator.WithPeer(t.Context(), peer), tool(t, r, "fake__progress"), req)
	if err != nil || resultText(res) != "done" {
		t.Fatalf("call: %v %v", res, err)
	}
	waitFor(t, "progress and log notifications", func() bool {
		return len(peer.received("notifications/progress")) == 3 && len(peer.received("notifications/message")) == 3
	})
	for _, n := range peer.received("notifications/progress") {
		if n.params["progressToken"] != "agent-token-7" {
			t.Errorf("progress token not restored: %v", n.params)
		}
	}
	for _, n := range peer.received("notifications/message") {
		// The logger stays the upstream's; the server is named in _meta.
		meta, _ := n.params["_meta"].(map[string]any)
		if n.params["logger"] != "worker" || n.params["level"] != "info" || meta[mediator.ServerMetaKey] != "fake" {
			t.Errorf("log message: %v", n.params)
		}
	}

	// Without a token the upstream is asked for no progress, and a peer
	// that did not call gets nothing.
	other := &fakePeer{id: "agent-2"}
	if _, err := call(mediator.WithPeer(t.Context(), other), t, r, "fake__progress", map[string]any{"steps": 1, "linger_ms": 0}); err != nil {
		t.Fatal(err)
	}
	if n := len(peer.received("notifications/progress")); n != 3 {
		t.Errorf("a notification reached a peer that did not make the call: %d", n)
	}
	if n := len(other.received("notifications/progress")); n != 0 {
		t.Errorf("progress without a token: %d", n)
	}
}

func TestCancellationReachesUpstream(t *testing.T) {
	cancelFile := filepath.Join(t.TempDir(), "cancelled")
	r, _ := startRegistry(t, []Config{stdioConfig("fake", "-cancel-file", cancelFile)})

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	sleep := tool(t, r, "fake__sleep")
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Arguments = map[string]any{"seconds": 120}
		_, err := r.CallTool(ctx, sleep, req)
		errc <- err
	}()
	waitFor(t, "the upstream to start the call", func() bool { return fileHas(cancelFile+".started", "started") })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled call: got %v, want context.Canceled", err)
		}
	case <-time.After(patience):
		t.Fatal("the cancelled call did not return")
	}
	waitFor(t, "the upstream to see notifications/cancelled", func() bool { return fileHas(cancelFile, "cancelled") })
}

func fileHas(path, want string) bool {
	b, err := os.ReadFile(path)
	return err == nil && string(b) == want
}

func TestTimeout(t *testing.T) {
	cancelFile := filepath.Join(t.TempDir(), "cancelled")
	cfg := stdioConfig("fake", "-cancel-file", cancelFile)
	cfg.Timeout = 2 * time.Second
	r, _ := startRegistry(t, []Config{cfg})

	_, err := call(t.Context(), t, r, "fake__sleep", map[string]any{"seconds": 120})
	if !errors.Is(err, mediator.ErrUpstreamTimeout) {
		t.Fatalf("got %v, want ErrUpstreamTimeout", err)
	}
	for _, want := range []string{`"fake"`, "2s", "raise timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	waitFor(t, "the upstream to be told to stop", func() bool { return fileHas(cancelFile, "cancelled") })
	if got := mustCall(t, r, "fake__echo", map[string]any{"text": "still up"}); got != "still up" {
		t.Errorf("after a timeout: %q", got)
	}
}

func TestSamplingAndElicitation(t *testing.T) {
	r, _ := startRegistry(t, []Config{stdioConfig("fake")})
	peer := &fakePeer{
		id: "agent-1",
		createMessage: func(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			if len(req.Messages) != 1 {
				return nil, errors.New("unexpected request")
			}
			return &mcp.CreateMessageResult{Model: "model-x", SamplingMessage: mcp.SamplingMessage{
				Role: mcp.RoleAssistant, Content: mcp.NewTextContent("hi there"),
			}}, nil
		},
		elicit: func(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
				Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"name": "bob"},
			}}, nil
		},
	}
	ctx := mediator.WithPeer(t.Context(), peer)
	tests := []struct {
		tool, reason, want string
		ctx                context.Context
		isError            bool
	}{
		{"fake__sample", "sampling is relayed to the calling agent", "sampled model-x", ctx, false},
		{"fake__elicit", "elicitation is relayed to the calling agent", `elicited accept {"name":"bob"}`, ctx, false},
		{"fake__sample", "with no agent to ask, the request is refused", "no agent call is in flight", t.Context(), true},
	}
	for _, tt := range tests {
		res, err := call(tt.ctx, t, r, tt.tool, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.reason, err)
		}
		if res.IsError != tt.isError || !strings.Contains(resultText(res), tt.want) {
			t.Errorf("%s: got %q (isError %v), want %q", tt.reason, resultText(res), res.IsError, tt.want)
		}
	}
}

func TestSamplingAmbiguousPeersRefused(t *testing.T) {
	cancelFile := filepath.Join(t.TempDir(), "c")
	r, _ := startRegistry(t, []Config{stdioConfig("fake", "-cancel-file", cancelFile)})
	asked := false
	var mu sync.Mutex
	peer := func(id string) *fakePeer {
		return &fakePeer{id: id, createMessage: func(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			mu.Lock()
			asked = true
			mu.Unlock()
			return &mcp.CreateMessageResult{Model: "m"}, nil
		}}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	defer func() {
		cancel()
		<-done
	}()
	sleep := tool(t, r, "fake__sleep")
	go func() {
		defer close(done)
		req := mcp.CallToolRequest{}
		req.Params.Arguments = map[string]any{"seconds": 120}
		_, _ = r.CallTool(mediator.WithPeer(ctx, peer("a")), sleep, req)
	}()
	waitFor(t, "the first call to be in flight", func() bool { return fileHas(cancelFile+".started", "started") })

	res, err := call(mediator.WithPeer(t.Context(), peer("b")), t, r, "fake__sample", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(resultText(res), "2 agents have calls in flight") {
		t.Errorf("ambiguous sampling: %q", resultText(res))
	}
	mu.Lock()
	defer mu.Unlock()
	if asked {
		t.Error("an agent was asked although the registry could not tell which")
	}
}

func TestNameCollisionWithEmptyPrefix(t *testing.T) {
	a := stdioConfig("a")
	a.Prefix = ptr("")
	b := stdioConfig("b", "-extra-tools", "1")
	b.Prefix = ptr("")
	r, logs := newRegistry(t, []Config{a, b})
	err := r.Start(t.Context())
	if !errors.Is(err, ErrNameCollision) {
		t.Fatalf("Start: got %v, want ErrNameCollision", err)
	}
	if !strings.Contains(err.Error(), `tool "echo" of upstream "b" is refused because upstream "a" already serves`) {
		t.Errorf("error does not name both servers: %v", err)
	}
	if tl := tool(t, r, "echo"); tl.Server != "a" {
		t.Errorf("echo served by %q, want a", tl.Server)
	}
	if tl := tool(t, r, "t000"); tl.Server != "b" {
		t.Errorf("b's own tool missing or misattributed: %q", tl.Server)
	}
	if !strings.Contains(logs.String(), "catalog name collision") {
		t.Error("the collision was not logged")
	}
}

func TestPagination(t *testing.T) {
	r, _ := startRegistry(t, []Config{stdioConfig("fake", "-page-size", "4", "-extra-tools", "23")})
	n := 0
	for _, tl := range r.Catalog().Tools {
		if strings.HasPrefix(tl.Name, "fake__t0") {
			n++
		}
	}
	if n != 23 {
		t.Errorf("listed %d of 23 paginated extra tools", n)
	}
}

func TestAddRemove(t *testing.T) {
	r, _ := startRegistry(t, []Config{stdioConfig("one")})
	if err := r.Add(t.Context(), stdioConfig("one")); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("adding a duplicate name: %v", err)
	}
	if err := r.Add(t.Context(), stdioConfig("two")); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if got := mustCall(t, r, "two__echo", map[string]any{"text": "x"}); got != "x" {
		t.Errorf("added upstream answered %q", got)
	}
	pid := childPID(t, r, "two")
	twoEcho := tool(t, r, "two__echo")

	if err := r.Remove(t.Context(), "two"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, ok := r.Catalog().Tool("two__echo"); ok {
		t.Error("removed upstream's tool still in the catalog")
	}
	if _, ok := r.Catalog().Server("two"); ok {
		t.Error("removed upstream still listed")
	}
	if _, err := r.CallTool(t.Context(), twoEcho, mcp.CallToolRequest{}); !errors.Is(err, mediator.ErrUpstreamUnavailable) {
		t.Errorf("call to a removed upstream: %v", err)
	}
	assertReaped(t, pid)
	if err := r.Remove(t.Context(), "two"); !errors.Is(err, mediator.ErrUpstreamUnavailable) {
		t.Errorf("removing twice: %v", err)
	}
}

func TestRemoveDrainsCalls(t *testing.T) {
	r, _ := startRegistry(t, []Config{stdioConfig("fake")})
	errc := make(chan error, 1)
	sleep := tool(t, r, "fake__sleep")
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Arguments = map[string]any{"seconds": 1}
		res, err := r.CallTool(t.Context(), sleep, req)
		if err == nil && resultText(res) != "slept" {
			err = errors.New(resultText(res))
		}
		errc <- err
	}()
	u, _ := r.lookup("fake")
	waitFor(t, "the call to be in flight", func() bool {
		u.mu.Lock()
		defer u.mu.Unlock()
		return len(u.calls) == 1
	})
	if err := r.Remove(t.Context(), "fake"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Errorf("the in-flight call was not drained: %v", err)
	}
}

func TestReadyAndFailedUpstreams(t *testing.T) {
	missing := Config{Name: "missing", Command: filepath.Join(t.TempDir(), "no-such-program")}
	optional := Config{Name: "optional", Command: "/bin/false", Required: ptr(false)}
	r, _ := newRegistry(t, []Config{stdioConfig("fake"), missing, optional})
	if err := r.Ready(); err == nil {
		t.Error("Ready before Start")
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("a failing upstream must not fail Start: %v", err)
	}
	err := r.Ready()
	if !errors.Is(err, mediator.ErrUpstreamUnavailable) || !strings.Contains(err.Error(), "missing") ||
		strings.Contains(err.Error(), "optional") {
		t.Errorf("Ready: %v", err)
	}
	st, _ := r.Catalog().Server("missing")
	if st.Connected || st.Error == "" || !st.Required {
		t.Errorf("state of a failed upstream: %+v", st)
	}
	if got := mustCall(t, r, "fake__echo", map[string]any{"text": "ok"}); got != "ok" {
		t.Errorf("healthy upstream: %q", got)
	}
	if err := r.Remove(t.Context(), "missing"); err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(); err != nil {
		t.Errorf("Ready with only an optional upstream down: %v", err)
	}
}

func TestCloseReapsChildren(t *testing.T) {
	r, _ := newRegistry(t, []Config{stdioConfig("a"), stdioConfig("b")})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pids := []int{childPID(t, r, "a"), childPID(t, r, "b")}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		assertReaped(t, pid)
	}
	if _, err := call(t.Context(), t, r, "a__echo", nil); !errors.Is(err, mediator.ErrUpstreamUnavailable) {
		t.Errorf("call after Close: %v", err)
	}
}

// A result over the message limit fails the one call it answers, with an
// error naming the limit; the shared child is not killed, and calls on it
// before, during and after go on (issue 14, finding 8: one agent's huge
// result used to kill the child and every other agent's call on it).
func TestOversizedResultFailsOnlyItsCall(t *testing.T) {
	r, logs := newRegistry(t, []Config{stdioConfig("fake")}, WithMaxMessageBytes(64<<10))
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid := childPID(t, r, "fake")
	if got := mustCall(t, r, "fake__big", map[string]any{"bytes": 1000}); len(got) != 1000 {
		t.Fatalf("small result: %d bytes", len(got))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := call(t.Context(), t, r, "fake__echo", map[string]any{"text": fmt.Sprint("other-", i)}); err != nil {
				errs <- err
			}
		}()
	}
	_, err := call(t.Context(), t, r, "fake__big", map[string]any{"bytes": 200 << 10})
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("another call failed beside the oversized one: %v", e)
	}
	if err == nil || !strings.Contains(err.Error(), "limits.max_message_bytes") || !strings.Contains(err.Error(), "65536") {
		t.Fatalf("oversized result: %v; want an error naming the limit", err)
	}
	if got := currentPID(r, "fake"); got != pid {
		t.Fatalf("the child was replaced (pid %d -> %d)", pid, got)
	}
	if !strings.Contains(logs.String(), "larger than the limit") {
		t.Error("the drop was not logged")
	}
	mustCall(t, r, "fake__echo", map[string]any{"text": "ok"})
}
