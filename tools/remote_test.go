package tools

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mcp-mediator/mediator/mediator"
)

// startRemoteFake runs the fake upstream as an HTTP ("http") or SSE ("sse")
// server and returns its URL. It is killed when the test ends.
func startRemoteFake(t *testing.T, mode, name string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(fakeBin, append([]string{"-mode", mode, "-name", name, "-addr-file", addrFile}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var url string
	waitFor(t, "the remote fake to listen", func() bool {
		b, err := os.ReadFile(addrFile)
		url = string(b)
		return err == nil && url != ""
	})
	return url, cmd
}

func TestRemoteUpstreams(t *testing.T) {
	for _, mode := range []string{TransportHTTP, TransportSSE} {
		t.Run(mode, func(t *testing.T) {
			cancelFile := filepath.Join(t.TempDir(), "cancelled")
			url, _ := startRemoteFake(t, mode, "remote", "-cancel-file", cancelFile)
			cfg := Config{Name: "remote", URL: url, Transport: mode, Timeout: patience,
				Headers: map[string]string{"X-Test-Header": "token-${REMOTE_TOKEN}"}}
			if err := cfg.Expand(func(k string) (string, bool) { return "abc", k == "REMOTE_TOKEN" }); err != nil {
				t.Fatal(err)
			}
			r, _ := startRegistry(t, []Config{cfg})
			if err := r.Ready(); err != nil {
				t.Fatalf("Ready: %v", err)
			}

			// The agent's own credentials are not in play: only configured
			// headers reach the upstream.
			peer := &fakePeer{id: "agent"}
			ctx := mediator.WithPeer(t.Context(), peer)
			res, err := call(ctx, t, r, "remote__headers", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := resultText(res); got != "X-Test-Header=token-abc;Authorization=" {
				t.Errorf("headers seen by the upstream: %q", got)
			}
			if st, _ := r.Catalog().Server("remote"); st.Transport != mode || !st.Connected {
				t.Errorf("state: %+v", st)
			}
			schema := tool(t, r, "remote__schema")
			if !strings.Contains(string(schema.Definition), schemaJSON) {
				t.Errorf("schema changed over %s: %s", mode, schema.Definition)
			}

			req := mcp.CallToolRequest{}
			req.Params.Arguments = map[string]any{"steps": 2}
			req.Params.Meta = &mcp.Meta{ProgressToken: 42}
			if _, err := r.CallTool(ctx, tool(t, r, "remote__progress"), req); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "progress over "+mode, func() bool { return len(peer.received("notifications/progress")) == 2 })
			for _, n := range peer.received("notifications/progress") {
				if n.params["progressToken"] != 42 {
					t.Errorf("token: %#v", n.params["progressToken"])
				}
			}

			cctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			sleep := tool(t, r, "remote__sleep")
			go func() {
				req := mcp.CallToolRequest{}
				req.Params.Arguments = map[string]any{"seconds": 120}
				_, err := r.CallTool(cctx, sleep, req)
				errc <- err
			}()
			waitFor(t, "the upstream to start the call", func() bool { return fileHas(cancelFile+".started", "started") })
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled call over %s: %v", mode, err)
			}
			waitFor(t, "the upstream to see the cancellation", func() bool { return fileHas(cancelFile, "cancelled") })

			mustCall(t, r, "remote__add_tool", map[string]any{"name": "late"})
			waitFor(t, "list_changed over "+mode, func() bool {
				_, ok := r.Catalog().Tool("remote__late")
				return ok
			})
		})
	}
}

func TestRemoteSampling(t *testing.T) {
	url, _ := startRemoteFake(t, TransportHTTP, "remote")
	r, _ := startRegistry(t, []Config{{Name: "remote", URL: url, Timeout: patience}})
	peer := &fakePeer{id: "agent", createMessage: func(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		return &mcp.CreateMessageResult{Model: "m-http", SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("ok")}}, nil
	}}
	res, err := call(mediator.WithPeer(t.Context(), peer), t, r, "remote__sample", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resultText(res), "sampled m-http") {
		t.Errorf("sampling over http: %q", resultText(res))
	}
}

func TestRemoteReconnects(t *testing.T) {
	url, cmd := startRemoteFake(t, TransportHTTP, "remote")
	r, _ := startRegistry(t, []Config{{Name: "remote", URL: url, Timeout: 5 * time.Second}})
	mustCall(t, r, "remote__echo", map[string]any{"text": "a"})

	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	_, err := call(t.Context(), t, r, "remote__echo", map[string]any{"text": "b"})
	if !errors.Is(err, mediator.ErrUpstreamUnavailable) {
		t.Fatalf("call to a dead server: %v", err)
	}
	waitFor(t, "the registry to notice", func() bool {
		st, _ := r.Catalog().Server("remote")
		return !st.Connected && st.Error != ""
	})

	// The server comes back on the same address: the registry reconnects.
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/mcp")
	startRemoteFake(t, TransportHTTP, "remote", "-listen", host)
	waitFor(t, "the registry to reconnect", func() bool { return r.Ready() == nil })
	if got := mustCall(t, r, "remote__echo", map[string]any{"text": "back"}); got != "back" {
		t.Errorf("after reconnecting: %q", got)
	}
}

// A legacy SSE upstream cannot send the mediator requests (mcp-go's SSE
// client transport takes none), so the mediator does not advertise
// sampling, elicitation or roots to it (before: advertised, and an upstream that
// asked waited for an answer that could not come); a streamable HTTP
// upstream, which can ask, sees both.
func TestRemoteAdvertisesWhatItRelays(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		relayed bool
	}{{TransportSSE, false}, {TransportHTTP, true}} {
		t.Run(tc.mode, func(t *testing.T) {
			url, _ := startRemoteFake(t, tc.mode, "remote")
			r, _ := startRegistry(t, []Config{{Name: "remote", URL: url, Transport: tc.mode, Timeout: patience}})
			caps := mustCall(t, r, "remote__client_caps", nil)
			for _, c := range []string{`"sampling"`, `"elicitation"`, `"roots"`} {
				if strings.Contains(caps, c) != tc.relayed {
					t.Errorf("over %s the upstream sees client capabilities %s; want %s advertised: %v", tc.mode, caps, c, tc.relayed)
				}
			}
		})
	}
}
