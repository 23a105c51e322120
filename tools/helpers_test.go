package tools

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

// fakeBin is the fake upstream, built once by TestMain.
var fakeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fakeupstream")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeBin = filepath.Join(dir, "fakeupstream")
	out, err := exec.Command("go", "build", "-o", fakeBin, "./testdata/fakeupstream").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fake upstream: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// patience bounds every wait in these tests: generous, for a loaded
// two-core machine.
const patience = 30 * time.Second

// lockedBuffer collects log output from any goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a logger whose output is shown when the test fails
// (logging through t directly would panic in goroutines outliving it).
func testLogger(t *testing.T) (*slog.Logger, *lockedBuffer) {
	t.Helper()
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// baseEnv is what the CLI would pass: PATH and HOME.
func baseEnv(t *testing.T) map[string]string {
	return map[string]string{"PATH": os.Getenv("PATH"), "HOME": t.TempDir()}
}

// stdioConfig is a stdio upstream running the fake.
func stdioConfig(name string, args ...string) Config {
	return Config{Name: name, Command: fakeBin, Args: append([]string{"-name", name}, args...), Timeout: patience}
}

// startRegistry starts a registry over cfgs and closes it when the test
// ends. It fails the test if Start fails.
func startRegistry(t *testing.T, cfgs []Config, opts ...Option) (*Registry, *lockedBuffer) {
	t.Helper()
	r, logs := newRegistry(t, cfgs, opts...)
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return r, logs
}

func newRegistry(t *testing.T, cfgs []Config, opts ...Option) (*Registry, *lockedBuffer) {
	t.Helper()
	log, logs := testLogger(t)
	opts = append([]Option{WithLogger(log), WithBaseEnv(baseEnv(t)), WithRestartBackoff(50*time.Millisecond, time.Second)}, opts...)
	r := New(cfgs, opts...)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r, logs
}

// waitFor polls cond until it holds, failing the test after patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tool returns the catalog tool name, failing the test if it is absent.
func tool(t *testing.T, r *Registry, name string) mediator.Tool {
	t.Helper()
	tl, ok := r.Catalog().Tool(name)
	if !ok {
		t.Fatalf("catalog has no tool %q; it has %v", name, toolNames(r.Catalog()))
	}
	return tl
}

func toolNames(c *mediator.Catalog) []string {
	var names []string
	for _, t := range c.Tools {
		names = append(names, t.Name)
	}
	return names
}

// call calls a catalog tool with arguments.
func call(ctx context.Context, t *testing.T, r *Registry, name string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	return r.CallTool(ctx, tool(t, r, name), req)
}

// resultText joins the text content of a tool result.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// mustCall calls a tool and fails the test on error or a tool error.
func mustCall(t *testing.T, r *Registry, name string, args map[string]any) string {
	t.Helper()
	res, err := call(t.Context(), t, r, name, args)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("call %s: tool error %q", name, resultText(res))
	}
	return resultText(res)
}

// note is a notification a fakePeer received.
type note struct {
	method string
	params map[string]any
}

// fakePeer is the agent side of a call.
type fakePeer struct {
	id            string
	createMessage func(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error)
	elicit        func(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error)
	caps          mcp.ClientCapabilities

	mu    sync.Mutex
	notes []note
}

func (p *fakePeer) Notify(_ context.Context, method string, params map[string]any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notes = append(p.notes, note{method, params})
	return nil
}

func (p *fakePeer) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	if p.createMessage == nil {
		return nil, mediator.ErrNotSupported
	}
	return p.createMessage(ctx, req)
}

func (p *fakePeer) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if p.elicit == nil {
		return nil, mediator.ErrNotSupported
	}
	return p.elicit(ctx, req)
}

func (p *fakePeer) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return nil, mediator.ErrNotSupported
}

func (p *fakePeer) SessionID() string { return p.id }

func (p *fakePeer) ClientCapabilities() mcp.ClientCapabilities { return p.caps }

func (p *fakePeer) NotifySession(method string, params map[string]any) error {
	return p.Notify(context.Background(), method, params)
}

// received returns the notifications of method received so far.
func (p *fakePeer) received(method string) []note {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []note
	for _, n := range p.notes {
		if n.method == method {
			out = append(out, n)
		}
	}
	return out
}
