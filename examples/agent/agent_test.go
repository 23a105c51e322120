package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/sashabaranov/go-openai"

	"github.com/mcp-mediator/mediator/internal/testenv"
)

// --- a scripted OpenAI-compatible model ---------------------------------

// turnFunc checks one chat request and returns the model's reply. It runs
// on the server's goroutine: it reports with t.Errorf, never t.Fatal.
type turnFunc func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage

// fakeModel is an httptest server speaking POST /v1/chat/completions,
// answering each request with the next turn of its script.
type fakeModel struct {
	t      *testing.T
	srv    *httptest.Server
	apiKey string
	turns  []turnFunc

	mu       sync.Mutex
	requests []openai.ChatCompletionRequest
	// fail makes every request fail with HTTP 500.
	fail bool
}

func newFakeModel(t *testing.T, apiKey string, turns ...turnFunc) *fakeModel {
	t.Helper()
	m := &fakeModel{t: t, apiKey: apiKey, turns: turns}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

// BaseURL is the OpenAI base URL of the fake.
func (m *fakeModel) BaseURL() string { return m.srv.URL + "/v1" }

// Client is a go-openai client of the fake.
func (m *fakeModel) Client() *openai.Client {
	cfg := openai.DefaultConfig(m.apiKey)
	cfg.BaseURL = m.BaseURL()
	return openai.NewClientWithConfig(cfg)
}

func (m *fakeModel) Requests() []openai.ChatCompletionRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.requests)
}

func (m *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
	t := m.t
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		t.Errorf("fake model: unexpected %s %s", r.Method, r.URL.Path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if m.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+m.apiKey {
		t.Errorf("fake model: Authorization %q; want the API key as bearer", r.Header.Get("Authorization"))
	}
	var req openai.ChatCompletionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		t.Errorf("fake model: request is not a chat completion request: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m.mu.Lock()
	n := len(m.requests)
	m.requests = append(m.requests, req)
	fail := m.fail
	m.mu.Unlock()
	if fail {
		http.Error(w, `{"error":{"message":"the model is overloaded","type":"server_error"}}`, http.StatusInternalServerError)
		return
	}
	if n >= len(m.turns) {
		t.Errorf("fake model: request %d, but the script has %d turns", n+1, len(m.turns))
		http.Error(w, `{"error":{"message":"script exhausted"}}`, http.StatusInternalServerError)
		return
	}
	msg := m.turns[n](t, req)
	msg.Role = openai.ChatMessageRoleAssistant
	finish := openai.FinishReasonStop
	if len(msg.ToolCalls) > 0 {
		finish = openai.FinishReasonToolCalls
	}
	resp := openai.ChatCompletionResponse{ID: fmt.Sprintf("chatcmpl-%d", n+1), Object: "chat.completion", Model: req.Model,
		Choices: []openai.ChatCompletionChoice{{Index: 0, Message: msg, FinishReason: finish}}}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// callOf is a tool call of the model.
func callOf(id, name, args string) openai.ToolCall {
	return openai.ToolCall{ID: id, Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: name, Arguments: args}}
}

// offeredNames are the names of the tools in a request, sorted.
func offeredNames(req openai.ChatCompletionRequest) []string {
	var names []string
	for _, tl := range req.Tools {
		if tl.Function != nil {
			names = append(names, tl.Function.Name)
		}
	}
	slices.Sort(names)
	return names
}

// toolMessage finds the tool message answering call id.
func toolMessage(t *testing.T, req openai.ChatCompletionRequest, id string) (openai.ChatCompletionMessage, bool) {
	t.Helper()
	for _, m := range req.Messages {
		if m.Role == openai.ChatMessageRoleTool && m.ToolCallID == id {
			return m, true
		}
	}
	t.Errorf("fake model: no tool message answers call %s; messages: %+v", id, req.Messages)
	return openai.ChatCompletionMessage{}, false
}

// --- a fake mediator (MCP side) -----------------------------------------

// seenCall is one tools/call the fake mediator received.
type seenCall struct {
	Name   string
	Args   map[string]any
	Prompt any // the value of _meta[PromptMetaKey]
}

// fakeMediator is an MCP server over streamable HTTP with the mediator's
// two tools and two demo tools, requiring a bearer token.
type fakeMediator struct {
	URL   string
	Token string

	mu         sync.Mutex
	calls      []seenCall
	badAuth    int
	declareErr string
}

const listFilesSchema = `{"type":"object","properties":{"path":{"type":"string","description":"Directory relative to the sandbox root."}},"additionalProperties":false}`

func newFakeMediator(t *testing.T) *fakeMediator {
	t.Helper()
	f := &fakeMediator{Token: "test-token"}
	s := server.NewMCPServer("fake-mediator", "1", server.WithToolCapabilities(true))
	record := func(req mcp.CallToolRequest) {
		var p any
		if req.Params.Meta != nil {
			p = req.Params.Meta.AdditionalFields[PromptMetaKey]
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, seenCall{Name: req.Params.Name, Args: req.GetArguments(), Prompt: p})
	}
	s.AddTool(mcp.NewTool(ToolDeclareIntent, mcp.WithString("purpose", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			record(req)
			f.mu.Lock()
			refusal := f.declareErr
			f.mu.Unlock()
			if refusal != "" {
				return mcp.NewToolResultError(refusal), nil
			}
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("Intent declared as task task-1.")},
				StructuredContent: map[string]any{"task_id": "task-1"}}, nil
		})
	s.AddTool(mcp.NewTool(ToolCompleteTask, mcp.WithString("summary")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			record(req)
			return mcp.NewToolResultText("Task task-1 completed."), nil
		})
	s.AddTool(mcp.Tool{Name: "demo__list_files", Description: "List a sandbox directory.", RawInputSchema: json.RawMessage(listFilesSchema)},
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			record(req)
			return mcp.NewToolResultText("q3-churn.csv\nq4-plan.txt"), nil
		})
	s.AddTool(mcp.NewTool("demo__echo", mcp.WithDescription("Echo a message."), mcp.WithString("message", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			record(req)
			msg, _ := req.GetArguments()["message"].(string)
			if msg == "fail" {
				return mcp.NewToolResultError("echo failed: fail"), nil
			}
			return mcp.NewToolResultText(msg), nil
		})
	h := server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp"), server.WithStateful(true))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.Token {
			f.mu.Lock()
			f.badAuth++
			f.mu.Unlock()
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL + "/mcp"
	return f
}

func (f *fakeMediator) Calls() []seenCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func connectFake(t *testing.T, f *fakeMediator) *Agent {
	t.Helper()
	c, err := Connect(t.Context(), f.URL, f.Token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &Agent{MCP: c, ModelName: "scripted"}
}

// --- 1. the loop against a scripted model -------------------------------

// The model calls a tool, then (after seeing its result) several, some of
// them malformed, then answers. What the model is offered and told, and
// what the mediator receives, are checked at every step.
func TestRunScriptedModel(t *testing.T) {
	const prompt = "What is in the reports folder?"
	const purpose = "List the reports folder for the user"
	const reasoning = "I will list the reports folder first."
	med := newFakeMediator(t)
	model := newFakeModel(t, "sk-test-key",
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			if req.Model != "scripted" {
				t.Errorf("turn 1: model %q", req.Model)
			}
			if got := offeredNames(req); !slices.Equal(got, []string{"demo__echo", "demo__list_files"}) {
				t.Errorf("turn 1: tools offered %v; want the demo tools and not the mediator's own", got)
			}
			for _, tl := range req.Tools {
				if tl.Type != openai.ToolTypeFunction || tl.Function == nil {
					t.Errorf("turn 1: tool %+v is not a function", tl)
					continue
				}
				if tl.Function.Name == "demo__list_files" {
					// mcp-go's client decodes inputSchema into its struct,
					// which adds an empty "required".
					want := strings.Replace(listFilesSchema, `"additionalProperties"`, `"required":[],"additionalProperties"`, 1)
					got, _ := json.Marshal(tl.Function.Parameters)
					if !jsonEqual(t, got, []byte(want)) {
						t.Errorf("turn 1: list_files parameters %s; want the tool's input schema %s", got, want)
					}
					if tl.Function.Description != "List a sandbox directory." {
						t.Errorf("turn 1: description %q", tl.Function.Description)
					}
				}
			}
			if len(req.Messages) != 2 || req.Messages[0].Role != openai.ChatMessageRoleSystem ||
				req.Messages[1].Role != openai.ChatMessageRoleUser || req.Messages[1].Content != prompt {
				t.Errorf("turn 1: messages %+v; want system and the user's prompt", req.Messages)
			}
			return openai.ChatCompletionMessage{Content: reasoning,
				ToolCalls: []openai.ToolCall{callOf("c1", "demo__list_files", `{"path":"reports"}`)}}
		},
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			if m, ok := toolMessage(t, req, "c1"); ok && m.Content != "q3-churn.csv\nq4-plan.txt" {
				t.Errorf("turn 2: tool result %q; want the listing", m.Content)
			}
			if a := req.Messages[len(req.Messages)-2]; a.Role != openai.ChatMessageRoleAssistant || len(a.ToolCalls) != 1 ||
				a.ToolCalls[0].ID != "c1" || a.Content != reasoning {
				t.Errorf("turn 2: the assistant's turn is not kept: %+v", a)
			}
			return openai.ChatCompletionMessage{ToolCalls: []openai.ToolCall{
				callOf("c2", "delete_everything", `{}`),
				callOf("c3", "demo__echo", `[1, 2]`),
				callOf("c4", "demo__echo", `{"message":"hello"}`),
				callOf("c5", "demo__echo", `{"message":"fail"}`),
				callOf("c6", ToolCompleteTask, `{"summary":"the model must not end the task itself"}`),
			}}
		},
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			want := map[string]string{
				"c2": `ERROR: there is no tool named "delete_everything"; the tools offered are: demo__echo, demo__list_files`,
				"c3": "ERROR: the arguments of demo__echo are an array, not a JSON object",
				"c4": "hello",
				"c5": "ERROR: echo failed: fail",
				"c6": `ERROR: there is no tool named "complete_task"`,
			}
			for id, prefix := range want {
				if m, ok := toolMessage(t, req, id); ok && !strings.HasPrefix(m.Content, prefix) {
					t.Errorf("turn 3: result of %s is %q; want it to start with %q", id, m.Content, prefix)
				}
			}
			return openai.ChatCompletionMessage{Content: "The reports folder holds q3-churn.csv and q4-plan.txt."}
		},
	)
	a := connectFake(t, med)
	a.Model, a.Purpose = model.Client(), purpose
	tr, err := a.Run(t.Context(), prompt)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if tr.Answer != "The reports folder holds q3-churn.csv and q4-plan.txt." || tr.Steps != 3 || tr.TaskID != "task-1" || !tr.Completed {
		t.Fatalf("transcript %+v", tr)
	}
	var got []string
	for _, c := range tr.Calls {
		got = append(got, fmt.Sprintf("%s error=%v local=%v", c.Tool, c.IsError, c.Local))
	}
	wantCalls := []string{
		"demo__list_files error=false local=false",
		"delete_everything error=true local=true",
		"demo__echo error=true local=true",
		"demo__echo error=false local=false",
		"demo__echo error=true local=false",
		"complete_task error=true local=true",
	}
	if !slices.Equal(got, wantCalls) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantCalls, "\n"))
	}
	if n := len(model.Requests()); n != 3 {
		t.Fatalf("%d model requests; want 3", n)
	}

	// What the mediator received: the declaration, the three well-formed
	// calls with the prompt (and the model's text as reasoning), the end.
	seen := med.Calls()
	var names []string
	for _, c := range seen {
		names = append(names, c.Name)
	}
	if want := []string{ToolDeclareIntent, "demo__list_files", "demo__echo", "demo__echo", ToolCompleteTask}; !slices.Equal(names, want) {
		t.Fatalf("the mediator saw %v; want %v", names, want)
	}
	if p, _ := seen[0].Args["purpose"].(string); p != purpose || seen[0].Prompt != prompt {
		t.Errorf("declare_intent: %+v", seen[0])
	}
	if m, ok := seen[1].Prompt.(map[string]any); !ok || m["text"] != prompt || m["reasoning"] != reasoning {
		t.Errorf("list_files _meta prompt %#v; want {text: prompt, reasoning: the model's text}", seen[1].Prompt)
	}
	if seen[1].Args["path"] != "reports" {
		t.Errorf("list_files arguments %v", seen[1].Args)
	}
	for _, c := range seen[2:] {
		if c.Prompt != prompt {
			t.Errorf("%s _meta prompt %#v; want the prompt", c.Name, c.Prompt)
		}
	}
	if s, _ := seen[4].Args["summary"].(string); !strings.HasPrefix(s, "Answered after 6 tool calls (4 refused or failed): The reports folder") {
		t.Errorf("complete_task summary %q", s)
	}
	if med.badAuth != 0 {
		t.Errorf("%d requests reached the fake mediator without the token", med.badAuth)
	}
}

// At the step limit the model is asked to answer with the tools withheld;
// if it still asks for tools the run fails with ErrMaxSteps. Either way the
// task is completed.
func TestRunMaxSteps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lastReply openai.ChatCompletionMessage
		wantErr   bool
	}{
		{"answers when told", openai.ChatCompletionMessage{Content: "Here is what I found."}, false},
		{"keeps calling tools", openai.ChatCompletionMessage{ToolCalls: []openai.ToolCall{callOf("x", "demo__echo", `{"message":"more"}`)}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			med := newFakeMediator(t)
			echo := func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
				if len(req.Tools) == 0 {
					t.Errorf("tools withheld before the last step")
				}
				return openai.ChatCompletionMessage{ToolCalls: []openai.ToolCall{callOf("", "demo__echo", `{"message":"again"}`)}}
			}
			last := func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
				if len(req.Tools) != 0 {
					t.Errorf("last request offers %d tools; want none", len(req.Tools))
				}
				if m := req.Messages[len(req.Messages)-1]; m.Role != openai.ChatMessageRoleUser || !strings.Contains(m.Content, "Answer now") {
					t.Errorf("last request ends with %+v; want the instruction to answer", m)
				}
				// The calls without an id got one, and their results name it.
				if _, ok := toolMessage(t, req, "call_2_0"); !ok {
					t.Errorf("no generated tool call id")
				}
				return tc.lastReply
			}
			model := newFakeModel(t, "", echo, echo, last)
			a := connectFake(t, med)
			a.Model, a.MaxSteps = model.Client(), 2
			tr, err := a.Run(t.Context(), "Echo things")
			if tc.wantErr != errors.Is(err, ErrMaxSteps) {
				t.Fatalf("err %v; want ErrMaxSteps: %v", err, tc.wantErr)
			}
			if !tc.wantErr && (err != nil || tr.Answer != "Here is what I found.") {
				t.Fatalf("err %v, answer %q", err, tr.Answer)
			}
			if tr.Steps != 3 || len(tr.Calls) != 2 || !tr.Completed {
				t.Fatalf("transcript %+v", tr)
			}
			seen := med.Calls()
			last2 := seen[len(seen)-1]
			s, _ := last2.Args["summary"].(string)
			if last2.Name != ToolCompleteTask || tc.wantErr != strings.HasPrefix(s, "Stopped at the step limit") {
				t.Fatalf("last call %+v", last2)
			}
		})
	}
}

// A turn with more tool calls than MaxCallsPerStep: the excess is answered
// as errors, every call gets its answer, and only the cap reaches the
// mediator.
func TestRunTooManyCalls(t *testing.T) {
	med := newFakeMediator(t)
	n := MaxCallsPerStep + 4
	model := newFakeModel(t, "",
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			var calls []openai.ToolCall
			for i := range n {
				calls = append(calls, callOf(fmt.Sprintf("c%d", i), "demo__echo", fmt.Sprintf(`{"message":"m%d"}`, i)))
			}
			return openai.ChatCompletionMessage{ToolCalls: calls}
		},
		func(t *testing.T, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
			for i := range n {
				m, ok := toolMessage(t, req, fmt.Sprintf("c%d", i))
				if want := fmt.Sprintf("m%d", i); ok && i < MaxCallsPerStep && m.Content != want {
					t.Errorf("call %d: %q; want %q", i, m.Content, want)
				}
				if ok && i >= MaxCallsPerStep && !strings.HasPrefix(m.Content, "ERROR: not called") {
					t.Errorf("call %d: %q; want it not made", i, m.Content)
				}
			}
			return openai.ChatCompletionMessage{Content: "done"}
		},
	)
	a := connectFake(t, med)
	a.Model = model.Client()
	tr, err := a.Run(t.Context(), "Echo a lot")
	if err != nil || len(tr.Calls) != n {
		t.Fatalf("transcript %+v, err %v", tr, err)
	}
	echoes := 0
	for _, c := range med.Calls() {
		if c.Name == "demo__echo" {
			echoes++
		}
	}
	if echoes != MaxCallsPerStep {
		t.Fatalf("the mediator saw %d echo calls; want %d", echoes, MaxCallsPerStep)
	}
}

// A failing model ends the run with an error, and the task is still ended.
func TestRunModelFailureEndsTask(t *testing.T) {
	med := newFakeMediator(t)
	model := newFakeModel(t, "")
	model.fail = true
	a := connectFake(t, med)
	a.Model = model.Client()
	tr, err := a.Run(t.Context(), "Anything")
	if err == nil || !strings.Contains(err.Error(), "model, step 1") {
		t.Fatalf("err %v; want the model's failure", err)
	}
	seen := med.Calls()
	if len(seen) != 2 || seen[1].Name != ToolCompleteTask || !tr.Completed {
		t.Fatalf("calls %+v, transcript %+v; want the task completed", seen, tr)
	}
	if s, _ := seen[1].Args["summary"].(string); !strings.HasPrefix(s, "Abandoned after 0 tool calls") {
		t.Fatalf("summary %q", s)
	}
}

// A refused declaration stops the run before the model is asked.
func TestRunDeclarationRefused(t *testing.T) {
	med := newFakeMediator(t)
	med.declareErr = "declare_intent: scope wider than the task"
	model := newFakeModel(t, "")
	a := connectFake(t, med)
	a.Model = model.Client()
	_, err := a.Run(t.Context(), "Anything")
	if err == nil || !strings.Contains(err.Error(), "scope wider than the task") {
		t.Fatalf("err %v; want the refusal", err)
	}
	if n := len(model.Requests()); n != 0 {
		t.Fatalf("the model was asked %d times", n)
	}
	if n := len(med.Calls()); n != 1 {
		t.Fatalf("the mediator saw %d calls; want only the declaration", n)
	}
}

// A wrong token is a clear error at connect time.
func TestConnectRefused(t *testing.T) {
	med := newFakeMediator(t)
	_, err := Connect(t.Context(), med.URL, "wrong")
	if !errors.Is(err, transport.ErrAuthorizationRequired) || !strings.Contains(err.Error(), "refused the credential") {
		t.Fatalf("err %v; want a 401 explained", err)
	}
}

// --- 3. conversion and model-output checks ------------------------------

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Errorf("not JSON: %s", a)
		return false
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Errorf("not JSON: %s", b)
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestConvertTool(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tool       mcp.Tool
		wantParams string // JSON; "" when an error is wanted
		wantDesc   string
		wantErr    string
	}{
		{
			name:       "raw schema kept as is",
			tool:       mcp.Tool{Name: "demo__read_file", Description: "Read.", RawInputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","minLength":1}},"required":["path"],"oneOf":[{"required":["path"]}]}`)},
			wantParams: `{"type":"object","properties":{"path":{"type":"string","minLength":1}},"required":["path"],"oneOf":[{"required":["path"]}]}`,
			wantDesc:   "Read.",
		},
		{
			name:       "structured schema marshalled",
			tool:       mcp.NewTool("demo__echo", mcp.WithDescription("Echo."), mcp.WithString("message", mcp.Required(), mcp.Description("text"))),
			wantParams: `{"type":"object","properties":{"message":{"type":"string","description":"text"}},"required":["message"]}`,
			wantDesc:   "Echo.",
		},
		{
			name:       "empty structured schema becomes an object",
			tool:       mcp.Tool{Name: "noargs", Title: "No arguments"},
			wantParams: `{"type":"object","properties":{},"required":[]}`,
			wantDesc:   "No arguments",
		},
		{
			name:       "raw schema without a type",
			tool:       mcp.Tool{Name: "untyped", RawInputSchema: json.RawMessage(`{"properties":{"n":{"type":"integer"}}}`)},
			wantParams: `{"type":"object","properties":{"n":{"type":"integer"}}}`,
		},
		{
			name:    "raw schema of another type",
			tool:    mcp.Tool{Name: "stringy", RawInputSchema: json.RawMessage(`{"type":"string"}`)},
			wantErr: `input schema type "string"`,
		},
		{
			name:    "raw schema not an object",
			tool:    mcp.Tool{Name: "arr", RawInputSchema: json.RawMessage(`[1,2]`)},
			wantErr: "not a JSON object",
		},
		{
			name:    "schema type not a string",
			tool:    mcp.Tool{Name: "weird", RawInputSchema: json.RawMessage(`{"type":["object","null"]}`)},
			wantErr: "is not a string",
		},
		{
			name:    "name OpenAI refuses",
			tool:    mcp.Tool{Name: "files/read.v2", RawInputSchema: json.RawMessage(`{"type":"object"}`)},
			wantErr: "function name",
		},
		{
			name:    "name too long",
			tool:    mcp.Tool{Name: strings.Repeat("a", 65), RawInputSchema: json.RawMessage(`{"type":"object"}`)},
			wantErr: "function name",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConvertTool(tc.tool)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != openai.ToolTypeFunction || got.Function == nil || got.Function.Name != tc.tool.Name ||
				got.Function.Description != tc.wantDesc {
				t.Fatalf("tool %+v", got)
			}
			// What goes on the wire.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var wire struct {
				Type     string `json:"type"`
				Function struct {
					Name       string          `json:"name"`
					Parameters json.RawMessage `json:"parameters"`
				} `json:"function"`
			}
			if err := json.Unmarshal(b, &wire); err != nil {
				t.Fatal(err)
			}
			if wire.Type != "function" || wire.Function.Name != tc.tool.Name || !jsonEqual(t, wire.Function.Parameters, []byte(tc.wantParams)) {
				t.Fatalf("on the wire %s; want parameters %s", b, tc.wantParams)
			}
		})
	}
}

func TestToolsForModel(t *testing.T) {
	list := []mcp.Tool{
		mcp.NewTool(ToolDeclareIntent, mcp.WithString("purpose")),
		mcp.NewTool("demo__read_file", mcp.WithString("path")),
		{Name: "bad.name", RawInputSchema: json.RawMessage(`{"type":"object"}`)},
		mcp.NewTool(ToolCompleteTask),
		mcp.NewTool("demo__echo", mcp.WithString("message")),
	}
	tools, offered := ToolsForModel(list, nil)
	var names []string
	for _, tl := range tools {
		names = append(names, tl.Function.Name)
	}
	if !slices.Equal(names, []string{"demo__read_file", "demo__echo"}) || len(offered) != 2 || !offered["demo__echo"] ||
		offered[ToolDeclareIntent] || offered["bad.name"] {
		t.Fatalf("tools %v, offered %v", names, offered)
	}
}

func TestCheckToolCall(t *testing.T) {
	offered := map[string]bool{"demo__echo": true, "demo__list_files": true}
	for _, tc := range []struct {
		name, tool, args string
		wantArgs         map[string]any
		wantProblem      string
	}{
		{"object", "demo__echo", `{"message":"hi"}`, map[string]any{"message": "hi"}, ""},
		{"empty arguments", "demo__list_files", ``, map[string]any{}, ""},
		{"blank arguments", "demo__list_files", " \n ", map[string]any{}, ""},
		{"empty object", "demo__list_files", `{}`, map[string]any{}, ""},
		{"unknown tool", "rm_rf", `{}`, nil, `there is no tool named "rm_rf"; the tools offered are: demo__echo, demo__list_files`},
		{"mediator's own tool", ToolDeclareIntent, `{"purpose":"x"}`, nil, `there is no tool named "declare_intent"`},
		{"empty name", "", `{}`, nil, `there is no tool named ""`},
		{"array", "demo__echo", `["hi"]`, nil, "are an array, not a JSON object"},
		{"string", "demo__echo", `"hi"`, nil, "are a string, not a JSON object"},
		{"number", "demo__echo", `42`, nil, "are a number, not a JSON object"},
		{"null", "demo__echo", `null`, nil, "are null, not a JSON object"},
		{"invalid JSON", "demo__echo", `{"message": hi}`, nil, "are not valid JSON"},
		{"truncated JSON", "demo__echo", `{"message": "hi"`, nil, "are not valid JSON"},
		{"trailing data", "demo__echo", `{"a":1}{"b":2}`, nil, "are not valid JSON"},
		{"too large", "demo__echo", `{"message":"` + strings.Repeat("x", MaxArgumentBytes) + `"}`, nil, "the limit is 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, problem := CheckToolCall(callOf("id", tc.tool, tc.args), offered)
			if tc.wantProblem == "" {
				if problem != "" {
					t.Fatalf("problem %q", problem)
				}
				if !jsonEqual(t, mustJSON(t, args), mustJSON(t, tc.wantArgs)) || args == nil {
					t.Fatalf("args %#v; want %#v", args, tc.wantArgs)
				}
				return
			}
			if !strings.Contains(problem, tc.wantProblem) || args != nil {
				t.Fatalf("problem %q, args %v; want %q", problem, args, tc.wantProblem)
			}
			if len(problem) > 4096 {
				t.Fatalf("problem is %d bytes", len(problem))
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResultText(t *testing.T) {
	big := strings.Repeat("é", 20<<10) // 40 KiB of two-byte runes
	for _, tc := range []struct {
		name string
		res  *mcp.CallToolResult
		want string // exact, or a prefix when ending in "…"
	}{
		{"text joined", &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("a"), mcp.NewTextContent("b")}}, "a\nb"},
		{"error prefixed", mcp.NewToolResultError("denied by policy rule x"), "ERROR: denied by policy rule x"},
		{"image named", &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("see"), mcp.NewImageContent("AAAA", "image/png")}}, "see\n[image omitted]"},
		{"structured only", &mcp.CallToolResult{StructuredContent: map[string]any{"n": 1}}, `{"n":1}`},
		{"nothing", &mcp.CallToolResult{}, "(no output)"},
		{"error with nothing", &mcp.CallToolResult{IsError: true}, "ERROR: (no output)"},
		{"nil", nil, "ERROR: empty result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ResultText(tc.res, MaxToolResultBytes); got != tc.want {
				t.Fatalf("got %q; want %q", got, tc.want)
			}
		})
	}
	t.Run("capped", func(t *testing.T) {
		got := ResultText(&mcp.CallToolResult{IsError: true, Content: []mcp.Content{mcp.NewTextContent(big)}}, MaxToolResultBytes)
		if len(got) > MaxToolResultBytes || !strings.HasPrefix(got, "ERROR: éé") || !strings.HasSuffix(got, fmt.Sprintf("[cut; %d bytes in all]", len(big)+len("ERROR: "))) {
			t.Fatalf("capped result is %d bytes: %q…%q", len(got), got[:20], got[len(got)-20:])
		}
		if !json.Valid(mustJSON(t, got)) || strings.ContainsRune(got, '\uFFFD') {
			t.Fatal("the cut split a rune")
		}
	})
}

func TestParseArgs(t *testing.T) {
	env := map[string]string{"OPENAI_MODEL": "env-model", "OPENAI_API_KEY": "sk-secret-from-env", "MEDIATOR_TOKEN": "tok-from-env"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		name    string
		args    []string
		want    options
		wantErr string
	}{
		{name: "defaults and environment", args: []string{"list", "the", "files"},
			want: options{mediator: "http://127.0.0.1:8080/mcp", token: "tok-from-env", baseURL: "https://api.openai.com/v1",
				model: "env-model", apiKey: "sk-secret-from-env", maxSteps: 8, prompt: "list the files"}},
		{name: "flags win, interspersed", args: []string{"--model", "llama3.1", "list", "--max-steps", "3", "files", "--token=t2",
			"--base-url", "http://127.0.0.1:11434/v1", "--purpose", "p"},
			want: options{mediator: "http://127.0.0.1:8080/mcp", token: "t2", baseURL: "http://127.0.0.1:11434/v1",
				model: "llama3.1", apiKey: "sk-secret-from-env", maxSteps: 3, purpose: "p", prompt: "list files"}},
		{name: "double dash", args: []string{"--", "--model", "is", "a", "word"},
			want: options{mediator: "http://127.0.0.1:8080/mcp", token: "tok-from-env", baseURL: "https://api.openai.com/v1",
				model: "env-model", apiKey: "sk-secret-from-env", maxSteps: 8, prompt: "--model is a word"}},
		{name: "no prompt", args: []string{"--model", "m"}, wantErr: "no prompt"},
		{name: "bad max steps", args: []string{"--max-steps", "0", "x"}, wantErr: "--max-steps 0"},
		{name: "unknown flag", args: []string{"--nope", "x"}, wantErr: "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			got, err := parseArgs(tc.args, &stderr, lookup)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	t.Run("no model", func(t *testing.T) {
		_, err := parseArgs([]string{"x"}, &strings.Builder{}, func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), "no model") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("help hides secrets", func(t *testing.T) {
		var stderr, stdout strings.Builder
		if code := run(t.Context(), []string{"-h"}, &stdout, &stderr, lookup); code != 0 {
			t.Fatalf("exit %d", code)
		}
		if out := stderr.String(); strings.Contains(out, "sk-secret") || strings.Contains(out, "tok-from-env") || !strings.Contains(out, "--max-steps") && !strings.Contains(out, "-max-steps") {
			t.Fatalf("usage:\n%s", out)
		}
	})
}

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
