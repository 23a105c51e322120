package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// The echo benchmarks measure one tools/call round trip on a trivial tool,
// directly against the upstream and through the mediator, in the same run:
//
//	go test ./cmd/mediator -run XXX -bench Echo -benchtime 3s -count 5 | tee bench.txt
//
// Compare stdio with stdio and HTTP with HTTP; the mediated figures include
// authentication, the method table, Casbin and a durable audit record.

func stdioClient(b testing.TB, command string, args ...string) *client.Client {
	b.Helper()
	tr := transport.NewStdioWithOptions(command, nil, args,
		transport.WithCommandFunc(func(ctx context.Context, cmd string, _ []string, args []string) (*exec.Cmd, error) {
			c := exec.CommandContext(ctx, cmd, args...)
			c.Env = os.Environ()
			c.Dir = b.TempDir()
			return c, nil
		}))
	return initClient(b, client.NewClient(tr))
}

func benchEcho(b *testing.B, c *client.Client, name string) {
	b.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, map[string]any{"text": "ping"}
	ctx := b.Context()
	if res, err := c.CallTool(ctx, req); err != nil || res.IsError {
		b.Fatalf("warm-up call: %v %+v", err, res)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.CallTool(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEchoDirectStdio(b *testing.B) {
	benchEcho(b, stdioClient(b, buildTool(b, "tools/testdata/fakeupstream")), "echo")
}

func BenchmarkEchoMediatedStdio(b *testing.B) {
	cfg := filepath.Join(b.TempDir(), "m.yaml")
	if err := os.WriteFile(cfg, []byte(fakeConfig(b, "log: {level: warn}\n")), 0o600); err != nil {
		b.Fatal(err)
	}
	c := stdioClient(b, binary(b), "stdio", "--config", cfg, "--db", filepath.Join(b.TempDir(), "m.db"))
	benchEcho(b, c, "fake__echo")
}

func BenchmarkEchoDirectHTTP(b *testing.B) {
	benchEcho(b, httpClient(b, startRemoteUpstream(b, "http")), "echo")
}

func BenchmarkEchoMediatedHTTP(b *testing.B) {
	p := startServe(b, fakeConfig(b, "log: {level: warn}\n"))
	benchEcho(b, httpClient(b, p.URL), "fake__echo")
}
