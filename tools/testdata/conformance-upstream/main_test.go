package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// binPath is the conformance-upstream binary built by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "conformance-upstream-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdir temp:", err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "conformance-upstream")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakeLLM answers sampling and elicitation requests and counts them.
type fakeLLM struct {
	mu          sync.Mutex
	samples     int
	elicitation []mcp.ElicitationRequest
}

// CreateMessage implements client.SamplingHandler.
func (f *fakeLLM) CreateMessage(_ context.Context, _ mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	f.mu.Lock()
	f.samples++
	f.mu.Unlock()
	return &mcp.CreateMessageResult{
		SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("This is a test response from the client")},
		Model:           "test-model",
		StopReason:      "endTurn",
	}, nil
}

// Elicit implements client.ElicitationHandler.
func (f *fakeLLM) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	f.mu.Lock()
	f.elicitation = append(f.elicitation, req)
	f.mu.Unlock()
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action:  mcp.ElicitationResponseActionAccept,
		Content: map[string]any{"username": "testuser", "email": "test@example.com"},
	}}, nil
}

// notifications collects notifications by method.
type notifications struct {
	mu   sync.Mutex
	seen []mcp.JSONRPCNotification
}

func (n *notifications) add(note mcp.JSONRPCNotification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seen = append(n.seen, note)
}

func (n *notifications) count(method string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, note := range n.seen {
		if note.Method == method {
			c++
		}
	}
	return c
}

func (n *notifications) reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seen = nil
}

// transports are the ways the tests reach the server.
var transports = []struct {
	name    string
	version string // "" lets the client negotiate the newest revision
	mode    string // "stdio", "http" (streamable) or "sse" (legacy HTTP+SSE)
}{
	{name: "stdio/2025-11-25", version: "2025-11-25", mode: "stdio"},
	{name: "stdio/latest", mode: "stdio"},
	{name: "http/2025-11-25", version: "2025-11-25", mode: "http"},
	{name: "http/latest", mode: "http"},
	{name: "sse/2025-11-25", version: "2025-11-25", mode: "sse"},
}

// connect starts a client over the given transport with sampling and
// elicitation support.
func connect(t *testing.T, mode string, version string, llm *fakeLLM, notes *notifications) *client.Client {
	t.Helper()
	opts := []client.ClientOption{
		client.WithSamplingHandler(llm),
		client.WithElicitationHandler(llm),
	}
	if version != "" {
		opts = append(opts, client.WithProtocolVersion(version))
	}

	var tr transport.Interface
	switch mode {
	case "http", "sse":
		ts := httptest.NewServer(newHTTPHandler(newServer(slog.New(slog.NewTextHandler(io.Discard, nil))), slog.New(slog.NewTextHandler(io.Discard, nil))))
		t.Cleanup(ts.Close)
		if mode == "sse" {
			sseTransport, err := transport.NewSSE(ts.URL + sseEndpoint)
			if err != nil {
				t.Fatalf("new SSE transport: %v", err)
			}
			tr = sseTransport
			break
		}
		//lint:ignore SA1019 the legacy GET stream is what 2025-11-25 clients use
		httpTransport, err := transport.NewStreamableHTTP(ts.URL+mcpEndpoint, transport.WithContinuousListening())
		if err != nil {
			t.Fatalf("new HTTP transport: %v", err)
		}
		tr = httpTransport
	case "stdio":
		tr = transport.NewStdio(binPath, nil, "--log-level", "warn")
	default:
		t.Fatalf("unknown transport %q", mode)
	}

	c := client.NewClient(tr, opts...)
	c.OnNotification(notes.add)
	// The stdio transport ties the child process to the Start context.
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var init mcp.InitializeRequest
	init.Params.ClientInfo = mcp.Implementation{Name: "conformance-upstream-test", Version: "1.0.0"}
	init.Params.Capabilities = mcp.ClientCapabilities{Sampling: &mcp.SamplingCapability{}, Elicitation: &mcp.ElicitationCapability{}}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

func callTool(t *testing.T, c *client.Client, name string, args map[string]any, meta *mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var req mcp.CallToolRequest
	req.Params.Name = name
	req.Params.Arguments = args
	req.Params.Meta = meta
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

func firstText(res *mcp.CallToolResult) string {
	for _, content := range res.Content {
		if text, ok := content.(mcp.TextContent); ok {
			return text.Text
		}
	}
	return ""
}

// waitFor polls cond for up to a second.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

func TestScenarios(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			llm := &fakeLLM{}
			notes := &notifications{}
			c := connect(t, tc.mode, tc.version, llm, notes)
			ctx := context.Background()

			t.Run("tools/list", func(t *testing.T) {
				res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
				if err != nil {
					t.Fatalf("list tools: %v", err)
				}
				var names []string
				for _, tool := range res.Tools {
					if tool.Description == "" {
						t.Errorf("tool %s has no description", tool.Name)
					}
					names = append(names, tool.Name)
				}
				for _, want := range []string{
					"test_simple_text", "test_image_content", "test_audio_content", "test_embedded_resource",
					"test_multiple_content_types", "test_tool_with_logging", "test_tool_with_progress",
					"test_error_handling", "test_sampling", "test_elicitation", "test_elicitation_sep1034_defaults",
					"test_elicitation_sep1330_enums", "json_schema_2020_12_tool", "test_reconnection",
				} {
					if !slices.Contains(names, want) {
						t.Errorf("tool %s missing from %v", want, names)
					}
				}
			})

			t.Run("content", func(t *testing.T) {
				for _, tt := range []struct {
					tool     string
					wantType string
				}{
					{"test_simple_text", "text"},
					{"test_image_content", "image"},
					{"test_audio_content", "audio"},
					{"test_embedded_resource", "resource"},
					{"test_multiple_content_types", "resource"},
				} {
					res := callTool(t, c, tt.tool, nil, nil)
					if res.IsError {
						t.Errorf("%s: unexpected isError", tt.tool)
					}
					found := false
					for _, content := range res.Content {
						switch content.(type) {
						case mcp.TextContent:
							found = found || tt.wantType == "text"
						case mcp.ImageContent:
							found = found || tt.wantType == "image"
						case mcp.AudioContent:
							found = found || tt.wantType == "audio"
						case mcp.EmbeddedResource:
							found = found || tt.wantType == "resource"
						}
					}
					if !found {
						t.Errorf("%s: no %s content in %+v", tt.tool, tt.wantType, res.Content)
					}
				}
			})

			t.Run("error", func(t *testing.T) {
				res := callTool(t, c, "test_error_handling", nil, nil)
				if !res.IsError || firstText(res) == "" {
					t.Errorf("want isError with a message, got %+v", res)
				}
			})

			t.Run("logging", func(t *testing.T) {
				//lint:ignore SA1019 logging/setLevel is part of 2025-11-25, which the suite tests
				if err := c.SetLevel(ctx, mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: mcp.LoggingLevelDebug}}); err != nil {
					t.Fatalf("set level: %v", err)
				}
				notes.reset()
				callTool(t, c, "test_tool_with_logging", nil, nil)
				if !waitFor(func() bool { return notes.count("notifications/message") >= 3 }) {
					t.Errorf("got %d log notifications, want 3", notes.count("notifications/message"))
				}
			})

			t.Run("progress", func(t *testing.T) {
				notes.reset()
				callTool(t, c, "test_tool_with_progress", nil, &mcp.Meta{ProgressToken: "progress-test-1"})
				// Progress must arrive before the result, or clients drop it.
				if got := notes.count("notifications/progress"); got != 3 {
					t.Errorf("got %d progress notifications before the result, want 3", got)
				}
			})

			// mcp-go's SSE server sessions cannot send requests to the
			// client: over SSE the tools that sample or elicit fail, and say
			// so (which is why the mediator does not advertise sampling or
			// elicitation to an SSE upstream).
			if tc.mode == "sse" {
				t.Run("sampling and elicitation unsupported", func(t *testing.T) {
					for tool, feature := range map[string]string{"test_sampling": "sampling", "test_elicitation": "elicitation"} {
						var req mcp.CallToolRequest
						req.Params.Name = tool
						req.Params.Arguments = map[string]any{"prompt": "p", "message": "m"}
						_, err := c.CallTool(ctx, req)
						if err == nil || !strings.Contains(err.Error(), "session does not support "+feature) {
							t.Errorf("%s over SSE: err = %v, want \"session does not support %s\"", tool, err, feature)
						}
					}
				})
			} else {
				t.Run("sampling", func(t *testing.T) {
					res := callTool(t, c, "test_sampling", map[string]any{"prompt": "Test prompt for sampling"}, nil)
					if got := firstText(res); got != "LLM response: This is a test response from the client" {
						t.Errorf("sampling result = %q", got)
					}
				})

				t.Run("elicitation", func(t *testing.T) {
					for _, tool := range []string{"test_elicitation", "test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums"} {
						res := callTool(t, c, tool, map[string]any{"message": "Please provide your information"}, nil)
						if got := firstText(res); !strings.Contains(got, "action=accept") {
							t.Errorf("%s result = %q", tool, got)
						}
					}
					llm.mu.Lock()
					defer llm.mu.Unlock()
					if len(llm.elicitation) != 3 {
						t.Errorf("client saw %d elicitation requests, want 3", len(llm.elicitation))
					}
				})
			}

			t.Run("resources", func(t *testing.T) {
				for uri, want := range map[string]string{
					"test://static-text":         "This is the content of the static text resource.",
					"test://template/123/data":   `{"data":"Data for ID: 123","id":"123","templateTest":true}`,
					"test://watched-resource":    "Watched resource content",
					"test://static-binary":       testImagePNG,
					"test://template/abc/data":   `"id":"abc"`,
					"test://template/a-b_c/data": `"id":"a-b_c"`,
				} {
					res, err := c.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri}})
					if err != nil {
						t.Fatalf("read %s: %v", uri, err)
					}
					var got string
					switch v := res.Contents[0].(type) {
					case mcp.TextResourceContents:
						got = v.Text
					case mcp.BlobResourceContents:
						got = v.Blob
					}
					if !strings.Contains(got, want) {
						t.Errorf("read %s = %q, want %q", uri, got, want)
					}
				}
			})

			t.Run("prompts", func(t *testing.T) {
				res, err := c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{
					Name:      "test_prompt_with_arguments",
					Arguments: map[string]string{"arg1": "testValue1", "arg2": "testValue2"},
				}})
				if err != nil {
					t.Fatalf("get prompt: %v", err)
				}
				text, _ := res.Messages[0].Content.(mcp.TextContent)
				if text.Text != "Prompt with arguments: arg1='testValue1', arg2='testValue2'" {
					t.Errorf("prompt text = %q", text.Text)
				}
				list, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
				if err != nil {
					t.Fatalf("list prompts: %v", err)
				}
				if len(list.Prompts) != 4 {
					t.Errorf("got %d prompts, want 4", len(list.Prompts))
				}
			})

			t.Run("completion", func(t *testing.T) {
				res, err := c.Complete(ctx, mcp.CompleteRequest{Params: mcp.CompleteParams{
					Ref:      mcp.PromptReference{Type: "ref/prompt", Name: "test_prompt_with_arguments"},
					Argument: mcp.CompleteArgument{Name: "arg1", Value: "par"},
				}})
				if err != nil {
					t.Fatalf("complete: %v", err)
				}
				if !slices.Equal(res.Completion.Values, []string{"paris", "park", "party"}) {
					t.Errorf("completion = %v", res.Completion.Values)
				}
			})
		})
	}
}

// TestHTTPFlag runs the binary with --http on a free port and checks that it
// answers and rejects a DNS-rebinding Host header.
func TestHTTPFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cmd := exec.Command(binPath, "--http", addr, "--log-level", "warn")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})

	url := "http://" + addr + mcpEndpoint
	var c *client.Client
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err = client.NewStreamableHttpClient(url)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			var init mcp.InitializeRequest
			init.Params.ClientInfo = mcp.Implementation{Name: "flag-test", Version: "1"}
			_, err = c.Initialize(ctx, init)
			cancel()
			if err == nil {
				break
			}
			_ = c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s never answered: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Close()
	res := callTool(t, c, "test_simple_text", nil, nil)
	if firstText(res) != "This is a simple text response for testing." {
		t.Errorf("unexpected result %+v", res)
	}
}

func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(binPath, "--version").Output()
	if err != nil {
		t.Fatalf("--version: %v", err)
	}
	if !strings.HasPrefix(string(out), serverName+" ") {
		t.Errorf("--version printed %q", out)
	}
}
