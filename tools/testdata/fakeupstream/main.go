// Command fakeupstream is an MCP server for the tests of package tools. It
// speaks stdio by default, or streamable HTTP or SSE (-mode), and offers
// tools that exercise the registry: cancellation, progress and logging,
// crashing mid-call, reporting its environment, a schema with oneOf and
// $defs, adding a tool at runtime, sampling and elicitation.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// SchemaJSON is the raw input schema of the "schema" tool, compact and free
// of characters encoding/json would escape, so it can be compared byte for
// byte.
const SchemaJSON = `{"type":"object","$defs":{"pos":{"type":"integer","minimum":1}},` +
	`"properties":{"target":{"oneOf":[{"type":"string","format":"uri"},{"$ref":"#/$defs/pos"}]}},` +
	`"required":["target"],"additionalProperties":false}`

type headerKey struct{}

var (
	mode       = flag.String("mode", "stdio", "stdio, http or sse")
	addrFile   = flag.String("addr-file", "", "http/sse: write the server's URL to this file")
	cancelFile = flag.String("cancel-file", "", "sleep: write \"cancelled\" here when the call is cancelled")
	name       = flag.String("name", "fake", "server name")
	pageSize   = flag.Int("page-size", 0, "list page size (0: no pagination)")
	extraTools = flag.Int("extra-tools", 0, "add this many trivial tools")
	header     = flag.String("header", "X-Test-Header", "the header the headers tool reports")
	listenAddr = flag.String("listen", "127.0.0.1:0", "http/sse: the address to listen on")
)

func main() {
	flag.Parse()
	fmt.Fprintf(os.Stderr, "fakeupstream %s starting in %s mode\n", *name, *mode)
	s := newServer()
	var err error
	switch *mode {
	case "stdio":
		// stdin is tapped: the sample and elicit tools report the code and
		// data of the client's error answer, which mcp-go drops.
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		err = server.NewStdioServer(s).Listen(ctx, &errTap{r: os.Stdin}, os.Stdout)
	case "http":
		err = serveHTTP(s)
	case "sse":
		err = serveSSE(s)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// rootsChanged counts the client's notifications/roots/list_changed.
var rootsChanged atomic.Int64

// subscribed returns the client sessions subscribed to a resource.
var subscribed func(uri string) []string

func newServer() *server.MCPServer {
	opts := []server.ServerOption{
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithLogging(),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completer{}),
		server.WithElicitation(),
		server.WithTaskCapabilities(true, true, true),
	}
	if *pageSize > 0 {
		opts = append(opts, server.WithPaginationLimit(*pageSize))
	}
	// Subscriptions, per client session, as a server that honours them
	// keeps: touch notifies only the sessions subscribed to the readme.
	var subsMu sync.Mutex
	subs := map[string]bool{}
	hooks := &server.Hooks{}
	hooks.AddAfterSubscribe(func(ctx context.Context, _ any, m *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		if cs := server.ClientSessionFromContext(ctx); cs != nil {
			subsMu.Lock()
			subs[cs.SessionID()+" "+m.Params.URI] = true
			subsMu.Unlock()
		}
	})
	hooks.AddAfterUnsubscribe(func(ctx context.Context, _ any, m *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		if cs := server.ClientSessionFromContext(ctx); cs != nil {
			subsMu.Lock()
			delete(subs, cs.SessionID()+" "+m.Params.URI)
			subsMu.Unlock()
		}
	})
	opts = append(opts, server.WithHooks(hooks))
	s := server.NewMCPServer(*name, "1.0.0", opts...)
	subscribed = func(uri string) []string {
		subsMu.Lock()
		defer subsMu.Unlock()
		var out []string
		for k := range subs {
			if sid, u, _ := strings.Cut(k, " "); u == uri {
				out = append(out, sid)
			}
		}
		return out
	}
	s.EnableSampling()
	addTools(s)
	for i := range *extraTools {
		s.AddTool(mcp.NewTool(fmt.Sprintf("t%03d", i), mcp.WithDescription("extra")), text("extra"))
	}
	s.AddPrompt(mcp.NewPrompt("greet", mcp.WithArgument("who")), func(_ context.Context, r mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("greeting", []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("hello "+r.Params.Arguments["who"])),
		}), nil
	})
	s.AddResource(mcp.NewResource(*name+"://readme", "readme"), func(_ context.Context, r mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: r.Params.URI, Text: "read me"}}, nil
	})
	s.AddResourceTemplate(mcp.NewResourceTemplate(*name+"://items/{id}", "item"), func(_ context.Context, r mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: r.Params.URI, Text: "item"}}, nil
	})
	return s
}

func text(s string) server.ToolHandlerFunc {
	return func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(s), nil
	}
}

func addTools(s *server.MCPServer) {
	s.AddTool(mcp.NewTool("echo", mcp.WithString("text"), mcp.WithReadOnlyHintAnnotation(true)),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(r.GetString("text", "")), nil
		})
	// structured answers with its text in structuredContent only (the
	// text content says nothing of it).
	s.AddTool(mcp.NewTool("structured", mcp.WithString("text"), mcp.WithReadOnlyHintAnnotation(true)),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultStructured(map[string]any{"value": r.GetString("text", "")}, "see structuredContent"), nil
		})
	s.AddTool(mcp.NewTool("sleep", mcp.WithNumber("seconds")), sleepTool)
	// slow_task may be called as a task; only_task must be (this server
	// runs it as one).
	s.AddTool(mcp.NewTool("slow_task", mcp.WithNumber("seconds"), mcp.WithString("text"),
		mcp.WithTaskSupport(mcp.TaskSupportOptional)), slowTask)
	s.AddTool(mcp.NewTool("only_task", mcp.WithNumber("seconds"), mcp.WithString("text"),
		mcp.WithTaskSupport(mcp.TaskSupportRequired)), func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		// mcp-go runs a task on its request's context, which its stdio
		// server may end once the CreateTaskResult is written: the task
		// then ends "cancelled", without a result. Not this server's
		// point, so the task outlives it.
		return slowTask(context.WithoutCancel(ctx), r)
	})
	s.AddTool(mcp.NewTool("progress", mcp.WithNumber("steps")), progressTool(s))
	s.AddTool(mcp.NewTool("crash"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		fmt.Fprintln(os.Stderr, "crashing on request")
		os.Exit(3)
		return nil, nil
	})
	// fail answers with a JSON-RPC error (mcp-go sends a handler's error
	// as -32603 with its text); needs_url with -32042 and the
	// elicitations in its data, as protocol version 2025-11-25 asks.
	s.AddTool(mcp.NewTool("fail", mcp.WithString("why")), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, errors.New(r.GetString("why", "the ledger is locked"))
	})
	s.AddTool(mcp.NewTool("needs_url"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, mcp.URLElicitationRequiredError{Elicitations: []mcp.ElicitationParams{{
			Mode: mcp.ElicitationModeURL, ElicitationID: "el-7", URL: "https://auth.example.com/connect?el=7",
			Message: "Connect your account to continue",
		}}}
	})
	s.AddTool(mcp.NewTool("env"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		env := os.Environ()
		sort.Strings(env)
		return mcp.NewToolResultText(strings.Join(env, "\n")), nil
	})
	// cat returns a file's contents, or the error reading it (what a
	// compromised upstream would try on the mediator's key).
	s.AddTool(mcp.NewTool("cat", mcp.WithString("path")), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		b, err := os.ReadFile(r.GetString("path", ""))
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultText(string(b)), nil
	})
	// cat_many, copy and stash take their paths under other names than
	// "path" (a scope's path constraint must still see them).
	s.AddTool(mcp.NewTool("cat_many", mcp.WithArray("paths", mcp.WithStringItems())),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var out strings.Builder
			for _, p := range r.GetStringSlice("paths", nil) {
				b, err := os.ReadFile(p)
				if err != nil {
					return mcp.NewToolResultError(err.Error()), nil
				}
				out.Write(b)
			}
			return mcp.NewToolResultText(out.String()), nil
		})
	s.AddTool(mcp.NewTool("copy", mcp.WithString("source"), mcp.WithString("destination")),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			b, err := os.ReadFile(r.GetString("source", ""))
			if err == nil {
				err = os.WriteFile(r.GetString("destination", ""), b, 0o600)
			}
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText("copied"), nil
		})
	// ledger appends entry to file and syncs it before answering: what the
	// upstream executed, durably, for tests that kill the mediator.
	s.AddTool(mcp.NewTool("ledger", mcp.WithString("file"), mcp.WithString("entry")),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			f, err := os.OpenFile(r.GetString("file", ""), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			defer f.Close()
			if _, err := f.WriteString(r.GetString("entry", "") + "\n"); err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			if err := f.Sync(); err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText("recorded"), nil
		})
	s.AddTool(mcp.NewTool("stash", mcp.WithString("target"), mcp.WithString("text")),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if err := os.WriteFile(r.GetString("target", ""), []byte(r.GetString("text", "")), 0o600); err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText("stashed"), nil
		})
	schema := mcp.NewToolWithRawSchema("schema", "takes a target", json.RawMessage(SchemaJSON))
	schema.Meta = &mcp.Meta{AdditionalFields: map[string]any{
		"io.mcp-mediator/risk": "critical", "io.mcp-mediator/data_class": "pii",
	}}
	schema.Annotations.DestructiveHint = mcp.ToBoolPtr(true)
	s.AddTool(schema, text("ok"))
	// remember and recall keep a value in this process's memory, as a
	// server with session state does; pid names the process.
	var memMu sync.Mutex
	memory := map[string]string{}
	s.AddTool(mcp.NewTool("remember", mcp.WithString("key"), mcp.WithString("value")),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			memMu.Lock()
			memory[r.GetString("key", "")] = r.GetString("value", "")
			memMu.Unlock()
			return mcp.NewToolResultText("remembered"), nil
		})
	s.AddTool(mcp.NewTool("recall", mcp.WithString("key")),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			memMu.Lock()
			v, ok := memory[r.GetString("key", "")]
			memMu.Unlock()
			if !ok {
				return mcp.NewToolResultText("nothing remembered"), nil
			}
			return mcp.NewToolResultText("recalled " + v), nil
		})
	s.AddTool(mcp.NewTool("pid"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(strconv.Itoa(os.Getpid())), nil
	})
	// log_level reports the level the client asked for (logging/setLevel).
	s.AddTool(mcp.NewTool("log_level"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		cs, ok := server.ClientSessionFromContext(ctx).(server.SessionWithLogging)
		if !ok {
			return mcp.NewToolResultError("the session keeps no log level"), nil
		}
		return mcp.NewToolResultText(string(cs.GetLogLevel())), nil
	})
	// log_later sends every client a log message (level, default warning)
	// delay_ms after the call has been answered: a message between calls.
	s.AddTool(mcp.NewTool("log_later"), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		level := r.GetString("level", "warning")
		delay := time.Duration(r.GetInt("delay_ms", 300)) * time.Millisecond
		go func() {
			time.Sleep(delay)
			s.SendNotificationToAllClients("notifications/message", map[string]any{"level": level, "logger": "later", "data": "between calls"})
		}()
		return mcp.NewToolResultText("scheduled"), nil
	})
	// roots asks the client for its roots and reports them;
	// roots_changed how many notifications/roots/list_changed came.
	s.AddTool(mcp.NewTool("roots"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := s.RequestRoots(ctx, mcp.ListRootsRequest{})
		if err != nil {
			return mcp.NewToolResultError("roots failed: " + err.Error() + lastClientError()), nil
		}
		b, _ := json.Marshal(res.Roots)
		return mcp.NewToolResultText("roots " + string(b)), nil
	})
	s.AddTool(mcp.NewTool("roots_changed"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(strconv.Itoa(int(rootsChanged.Load()))), nil
	})
	s.AddNotificationHandler("notifications/roots/list_changed", func(context.Context, mcp.JSONRPCNotification) {
		rootsChanged.Add(1)
	})
	// client_caps reports the capabilities the client declared.
	s.AddTool(mcp.NewTool("client_caps"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		cs, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
		if !ok {
			return mcp.NewToolResultError("the session keeps no client info"), nil
		}
		b, _ := json.Marshal(cs.GetClientCapabilities())
		return mcp.NewToolResultText(string(b)), nil
	})
	// touch announces that <name>://readme changed (for subscriptions).
	s.AddTool(mcp.NewTool("touch"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		uri := *name + "://readme"
		n := 0
		for _, sid := range subscribed(uri) {
			if s.SendNotificationToSpecificClient(sid, "notifications/resources/updated", map[string]any{"uri": uri}) == nil {
				n++
			}
		}
		return mcp.NewToolResultText(fmt.Sprintf("touched; %d subscribed sessions notified", n)), nil
	})
	s.AddTool(mcp.NewTool("wipe", mcp.WithDestructiveHintAnnotation(true)), text("wiped"))
	// add_tool adds a tool, or redefines one (a "rug pull") when name is
	// taken, with an optional description.
	s.AddTool(mcp.NewTool("add_tool", mcp.WithString("name"), mcp.WithString("description")),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n := r.GetString("name", "added")
			s.AddTool(mcp.NewTool(n, mcp.WithDescription(r.GetString("description", ""))), text("i am "+n))
			return mcp.NewToolResultText("added " + n), nil
		})
	s.AddTool(mcp.NewTool("big", mcp.WithNumber("bytes")), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(strings.Repeat("x", r.GetInt("bytes", 1<<20))), nil
	})
	s.AddTool(mcp.NewTool("sample"), sampleTool(s))
	s.AddTool(mcp.NewTool("elicit"), elicitTool(s))
	// add_prompt adds a prompt named name with description (for the
	// supply guard's scan of prompt definitions).
	s.AddTool(mcp.NewTool("add_prompt", mcp.WithString("name"), mcp.WithString("description")),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n := r.GetString("name", "extra")
			s.AddPrompt(mcp.NewPrompt(n, mcp.WithPromptDescription(r.GetString("description", ""))),
				func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
					return mcp.NewGetPromptResult("prompt "+n, []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("i am "+n))}), nil
				})
			return mcp.NewToolResultText("added prompt " + n), nil
		})
	// elicit_url asks for a URL-mode elicitation and, once the user
	// accepted it, completes it 200 ms after answering the call;
	// complete_elicitation completes the elicitation id (one named in
	// needs_url's error, say) on the calling session.
	s.AddTool(mcp.NewTool("elicit_url", mcp.WithString("id")), elicitURLTool(s))
	s.AddTool(mcp.NewTool("complete_elicitation", mcp.WithString("id")), func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id := r.GetString("id", "")
		err := s.SendNotificationToClient(ctx, "notifications/elicitation/complete", map[string]any{"elicitationId": id})
		if err != nil {
			return mcp.NewToolResultError("completing " + id + ": " + err.Error()), nil
		}
		return mcp.NewToolResultText("completed " + id), nil
	})
	// trace reports the W3C trace context the request carried: in _meta
	// (every transport) and in the HTTP traceparent header (http, sse).
	s.AddTool(mcp.NewTool("trace"), func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var meta string
		if m := r.Params.Meta; m != nil && m.AdditionalFields != nil {
			meta, _ = m.AdditionalFields["traceparent"].(string)
		}
		h, _ := ctx.Value(headerKey{}).(http.Header)
		return mcp.NewToolResultText("meta=" + meta + ";header=" + h.Get("Traceparent")), nil
	})
	s.AddTool(mcp.NewTool("headers"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		h, _ := ctx.Value(headerKey{}).(http.Header)
		return mcp.NewToolResultText(fmt.Sprintf("%s=%s;Authorization=%s", *header, h.Get(*header), h.Get("Authorization"))), nil
	})
}

// slowTask waits seconds (default 0), then answers "done <text>", or
// fails with isError when text is "fail".
func slowTask(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Duration(r.GetFloat("seconds", 0) * float64(time.Second))):
	}
	if r.GetString("text", "") == "fail" {
		return mcp.NewToolResultError("failed as asked"), nil
	}
	return mcp.NewToolResultText("done " + r.GetString("text", "")), nil
}

func sleepTool(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	d := time.Duration(r.GetFloat("seconds", 60) * float64(time.Second))
	if *cancelFile != "" {
		_ = os.WriteFile(*cancelFile+".started", []byte("started"), 0o600)
	}
	select {
	case <-ctx.Done():
		if *cancelFile != "" {
			_ = os.WriteFile(*cancelFile, []byte("cancelled"), 0o600)
		}
		return nil, ctx.Err()
	case <-time.After(d):
		return mcp.NewToolResultText("slept"), nil
	}
}

func progressTool(s *server.MCPServer) server.ToolHandlerFunc {
	return func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		steps := r.GetInt("steps", 3)
		// Bulk, spread over time, for a test of a client that stops reading.
		pad := strings.Repeat("x", min(r.GetInt("pad", 0), 1<<16))
		gap := time.Duration(min(r.GetInt("gap_ms", 0), 1000)) * time.Millisecond
		var token any
		if r.Params.Meta != nil {
			token = r.Params.Meta.ProgressToken
		}
		for i := 1; i <= steps; i++ {
			if token != nil {
				_ = s.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
					"progressToken": token, "progress": i, "total": steps, "message": fmt.Sprintf("step %d", i) + pad,
				})
			}
			_ = s.SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(mcp.LoggingLevelInfo, "worker", fmt.Sprintf("log %d", i)))
			time.Sleep(gap)
		}
		// The stdio server writes notifications from another goroutine than
		// results: give them time to go out first, as a real tool's work would.
		time.Sleep(time.Duration(r.GetInt("linger_ms", 1500)) * time.Millisecond)
		return mcp.NewToolResultText("done"), nil
	}
}

func sampleTool(s *server.MCPServer) server.ToolHandlerFunc {
	return func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		//lint:ignore SA1019 the registry speaks 2025-11-25, where sampling is current; this tool tests its relay
		res, err := s.RequestSampling(ctx, mcp.CreateMessageRequest{CreateMessageParams: mcp.CreateMessageParams{
			Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("say hi")}},
			MaxTokens: 10,
		}})
		if err != nil {
			return mcp.NewToolResultError("sampling failed: " + err.Error() + lastClientError()), nil
		}
		b, _ := json.Marshal(res.Content)
		return mcp.NewToolResultText("sampled " + res.Model + " " + string(b)), nil
	}
}

func elicitTool(s *server.MCPServer) server.ToolHandlerFunc {
	return func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := s.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
			Message:         "your name?",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
		}})
		if err != nil {
			return mcp.NewToolResultError("elicitation failed: " + err.Error() + lastClientError()), nil
		}
		b, _ := json.Marshal(res.Content)
		return mcp.NewToolResultText(fmt.Sprintf("elicited %s %s", res.Action, b)), nil
	}
}

func elicitURLTool(s *server.MCPServer) server.ToolHandlerFunc {
	return func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id := r.GetString("id", "el-1")
		res, err := s.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
			Mode: mcp.ElicitationModeURL, ElicitationID: id, URL: "https://auth.example.com/connect?el=" + id,
			Message: "Connect your account",
		}})
		if err != nil {
			return mcp.NewToolResultError("elicitation failed: " + err.Error() + lastClientError()), nil
		}
		if res.Action == mcp.ElicitationResponseActionAccept {
			sid := server.ClientSessionFromContext(ctx).SessionID()
			go func() {
				time.Sleep(200 * time.Millisecond)
				_ = s.SendNotificationToSpecificClient(sid, "notifications/elicitation/complete", map[string]any{"elicitationId": id})
			}()
		}
		return mcp.NewToolResultText(fmt.Sprintf("elicited %s", res.Action)), nil
	}
}

type completer struct{}

func (completer) CompletePromptArgument(_ context.Context, _ string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	return &mcp.Completion{Values: []string{arg.Value + "-one", arg.Value + "-two"}}, nil
}

func withHeaders(ctx context.Context, r *http.Request) context.Context {
	return context.WithValue(ctx, headerKey{}, r.Header.Clone())
}

func listen() (net.Listener, error) {
	return net.Listen("tcp", *listenAddr)
}

func writeAddr(url string) error {
	if *addrFile == "" {
		return nil
	}
	tmp := *addrFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(url), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, *addrFile)
}

func serveHTTP(s *server.MCPServer) error {
	ln, err := listen()
	if err != nil {
		return err
	}
	h := server.NewStreamableHTTPServer(s, server.WithStateful(true), server.WithHTTPContextFunc(withHeaders))
	if err := writeAddr("http://" + ln.Addr().String() + "/mcp"); err != nil {
		return err
	}
	return http.Serve(ln, h)
}

func serveSSE(s *server.MCPServer) error {
	ln, err := listen()
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	h := server.NewSSEServer(s, server.WithBaseURL(base), server.WithSSEContextFunc(withHeaders))
	if err := writeAddr(base + "/sse"); err != nil {
		return err
	}
	return http.Serve(ln, h)
}

// errTap passes stdin through and remembers the last JSON-RPC error
// response the client sent, whole, and writes the last
// notifications/cancelled to the -cancel-file path + ".notification".
type errTap struct {
	r    *os.File
	part []byte
}

var (
	clientErrMu  sync.Mutex
	clientErrMsg string
)

func (t *errTap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.part = append(t.part, p[:n]...)
	for {
		i := strings.IndexByte(string(t.part), '\n')
		if i < 0 {
			break
		}
		var m struct {
			Method string          `json:"method"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal(t.part[:i], &m) == nil && m.Method == "" && len(m.Error) > 0 {
			clientErrMu.Lock()
			clientErrMsg = string(m.Error)
			clientErrMu.Unlock()
		}
		if m.Method == "notifications/cancelled" && *cancelFile != "" {
			// the notification as it came, before mcp-go cancels the call
			_ = os.WriteFile(*cancelFile+".notification", t.part[:i], 0o600)
		}
		t.part = t.part[i+1:]
	}
	return n, err
}

// lastClientError reports (and forgets) the client's last error answer.
func lastClientError() string {
	clientErrMu.Lock()
	defer clientErrMu.Unlock()
	if clientErrMsg == "" {
		return ""
	}
	s := " [client error " + clientErrMsg + "]"
	clientErrMsg = ""
	return s
}
