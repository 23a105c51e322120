package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/sashabaranov/go-openai"
)

// The mediator's side of the contract (see mediator/builtin.go and
// mediator/call.go). They are spelled out here rather than imported so that
// the example shows what any MCP client has to send.
const (
	// PromptMetaKey is the _meta key of a tools/call that carries the
	// user's prompt: a string, or {"text": ..., "reasoning": ...}.
	PromptMetaKey = "io.mcp-mediator/prompt"
	// ToolDeclareIntent is the mediator's tool that declares the session's
	// purpose; every later call is checked against it.
	ToolDeclareIntent = "declare_intent"
	// ToolCompleteTask is the mediator's tool that ends the task; the
	// session's (and a task-bound token's) further calls are refused.
	ToolCompleteTask = "complete_task"
)

// Size bounds. Model output and tool output are untrusted and can be large;
// what the agent passes on is capped.
const (
	// MaxToolResultBytes caps the tool result text given to the model.
	MaxToolResultBytes = 16 << 10
	// MaxArgumentBytes caps the JSON arguments of one tool call the model
	// asks for.
	MaxArgumentBytes = 64 << 10
	// MaxCallsPerStep caps the tool calls made for one model turn; the
	// rest are answered as errors.
	MaxCallsPerStep = 16
	// MaxReasoningBytes caps the model's text sent along a call as
	// reasoning.
	MaxReasoningBytes = 4 << 10
	// maxSummaryBytes caps the one-line summary sent to complete_task (the
	// mediator's own limit is 4 KiB).
	maxSummaryBytes = 400
	// maxTraceBytes caps the arguments and results kept in a Transcript.
	maxTraceBytes = 2 << 10
)

// DefaultSystemPrompt tells the model how to work through the mediator.
const DefaultSystemPrompt = "You are an assistant that does what the user asks by calling the tools offered. " +
	"Every tool call goes through MCP Mediator, which checks it against policy and the task declared for this " +
	"session, and records it. A refused call comes back as a tool result starting with \"ERROR:\" that says why: " +
	"do not repeat a refused call unchanged; work with what you may do, and tell the user plainly what you could " +
	"not do and why. Call tools only when they help; when you are done, answer the user concisely without " +
	"calling more tools."

// ErrMaxSteps is returned (wrapped) by Run when the model still asked for
// tools after the last allowed step.
var ErrMaxSteps = errors.New("the model did not finish within the step limit")

// ToolCaller is the MCP side of the agent: *client.Client satisfies it.
type ToolCaller interface {
	ListTools(ctx context.Context, req mcp.ListToolsRequest) (*mcp.ListToolsResult, error)
	CallTool(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error)
}

// ChatModel is the model side of the agent: *openai.Client satisfies it,
// against OpenAI or any OpenAI-compatible server (Ollama, vLLM, ...).
type ChatModel interface {
	CreateChatCompletion(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error)
}

// Agent runs one user prompt: it declares the intent, lets the model call
// the tools the mediator offers, and completes the task. The zero values of
// the optional fields are usable defaults.
type Agent struct {
	// MCP is a connected, initialised session with the mediator.
	MCP ToolCaller
	// Model answers chat completions; ModelName names the model.
	Model     ChatModel
	ModelName string
	// Purpose is what declare_intent declares; empty: the prompt.
	Purpose string
	// MaxSteps bounds the model turns that may ask for tools (default 8).
	MaxSteps int
	// System is the system prompt (default DefaultSystemPrompt).
	System string
	// Log receives diagnostics (default: discarded).
	Log *slog.Logger
}

// Transcript is what happened during one Run.
type Transcript struct {
	// TaskID is the task declare_intent returned, when it said.
	TaskID string `json:"task_id,omitempty"`
	// Answer is the model's final text.
	Answer string `json:"answer"`
	// Steps is the number of model turns.
	Steps int `json:"steps"`
	// Calls are the tool calls the model asked for, in order, including
	// the ones the agent refused without calling the mediator.
	Calls []CallTrace `json:"calls"`
	// Completed is true when complete_task succeeded.
	Completed bool `json:"completed"`
}

// CallTrace is one tool call in a Transcript.
type CallTrace struct {
	Step int    `json:"step"`
	Tool string `json:"tool"`
	// Arguments are the arguments as the model sent them (capped).
	Arguments string `json:"arguments"`
	// IsError is true when the call was refused or failed, by the mediator,
	// the tool, or the agent itself (Local).
	IsError bool `json:"is_error"`
	// Local is true when the agent answered the model itself (unknown
	// tool, bad arguments) without calling the mediator.
	Local bool `json:"local,omitempty"`
	// Result is the text given to the model (capped).
	Result   string        `json:"result"`
	Duration time.Duration `json:"duration"`
}

// Session is an initialised MCP session with the mediator.
type Session struct {
	*client.Client
	auth *authTransport
}

// Refusal is the reason the mediator gave with its last HTTP 401 ("token
// revoked (task ... revoked at ...)"), or "". mcp-go's error for a 401
// says only "authorization required".
func (s *Session) Refusal() string { return s.auth.refusal() }

// Connect opens and initialises a streamable-HTTP MCP session with the
// mediator at url, sending token (if any) as a bearer credential. The
// client stays on the initialize handshake (protocol 2025-11-25): the
// mediator's HTTP endpoint is stateful, and an intent declared without a
// task-bound token is bound to the MCP session.
func Connect(ctx context.Context, url, token string) (*Session, error) {
	// The token goes on the HTTP client rather than WithHTTPHeaders:
	// mcp-go sends the session's closing DELETE without custom headers.
	auth := &authTransport{token: token, next: http.DefaultTransport}
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPBasicClient(&http.Client{Transport: auth}))
	if err != nil {
		return nil, fmt.Errorf("mediator %s: %w", url, err)
	}
	s := &Session{Client: client.NewClient(tr, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION)), auth: auth}
	if err := s.Start(ctx); err != nil {
		return nil, fmt.Errorf("mediator %s: start: %w", url, err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "mediator-example-agent", Version: "1"}
	if _, err := s.Initialize(ctx, init); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("mediator %s: initialize: %w%s", url, err, authHint(err, s))
	}
	return s, nil
}

// authTransport sends the token on every request of the session and keeps
// the reason of the last 401.
type authTransport struct {
	token string
	next  http.RoundTripper

	mu     sync.Mutex
	reason string
}

// errorDescription is the error_description of a WWW-Authenticate header.
var errorDescription = regexp.MustCompile(`error_description="([^"]*)"`)

func (a *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if a.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		if m := errorDescription.FindStringSubmatch(resp.Header.Get("WWW-Authenticate")); m != nil {
			a.mu.Lock()
			a.reason = oneLine(m[1], 300)
			a.mu.Unlock()
		}
	}
	return resp, err
}

func (a *authTransport) refusal() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reason
}

// authHint explains a 401 from the mediator, with the reason src (a
// *Session) kept, if any.
func authHint(err error, src any) string {
	if !errors.Is(err, transport.ErrAuthorizationRequired) {
		return ""
	}
	if r, ok := src.(interface{ Refusal() string }); ok && r.Refusal() != "" {
		return " (the mediator refused the credential: " + r.Refusal() + ")"
	}
	return " (the mediator refused the credential; pass a token from `mediator task start` with --token or " +
		"MEDIATOR_TOKEN: a token stops working when its task is completed, ended or expires)"
}

// Run does what prompt asks. It returns the transcript so far with any
// error; the task is completed (or, after an error, ended as abandoned)
// whenever the intent was declared.
func (a *Agent) Run(ctx context.Context, prompt string) (Transcript, error) {
	var tr Transcript
	prompt = strings.TrimSpace(prompt)
	if prompt == "" {
		return tr, errors.New("empty prompt")
	}
	if a.MCP == nil || a.Model == nil {
		return tr, errors.New("agent: MCP and Model are required")
	}
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	purpose := strings.TrimSpace(a.Purpose)
	if purpose == "" {
		purpose = prompt
	}
	taskID, err := a.declare(ctx, purpose, prompt)
	if err != nil {
		return tr, err
	}
	tr.TaskID = taskID
	log.Info("intent declared", "task", taskID)

	err = a.loop(ctx, prompt, &tr, log)
	summary := summarize(tr, err)
	// The task ends even when the run failed or was interrupted: an
	// abandoned task should not keep its credential alive.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if cerr := a.complete(cctx, summary, prompt); cerr != nil {
		log.Warn("complete_task failed", "err", cerr)
		if err == nil {
			err = cerr
		}
	} else {
		tr.Completed = true
		log.Info("task completed", "task", taskID)
	}
	return tr, err
}

// loop runs the model until it answers without tool calls.
func (a *Agent) loop(ctx context.Context, prompt string, tr *Transcript, log *slog.Logger) error {
	list, err := a.MCP.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return fmt.Errorf("tools/list: %w%s", err, authHint(err, a.MCP))
	}
	tools, offered := ToolsForModel(list.Tools, log)
	log.Info("tools offered to the model", "count", len(tools))

	system := a.System
	if system == "" {
		system = DefaultSystemPrompt
	}
	msgs := []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: system},
		{Role: openai.ChatMessageRoleUser, Content: prompt},
	}
	maxSteps := a.MaxSteps
	if maxSteps <= 0 {
		maxSteps = 8
	}
	for step := 1; ; step++ {
		req := openai.ChatCompletionRequest{Model: a.ModelName, Messages: msgs, Tools: tools}
		if step > maxSteps {
			// Out of steps: ask for an answer with the tools withheld.
			req.Tools = nil
			req.Messages = append(slices.Clip(msgs), openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser,
				Content: "You have used all the tool calls allowed. Answer now with what you have, without calling tools."})
		}
		resp, err := a.Model.CreateChatCompletion(ctx, req)
		if err != nil {
			return fmt.Errorf("model, step %d: %w", step, err)
		}
		tr.Steps = step
		if len(resp.Choices) == 0 {
			return fmt.Errorf("model, step %d: the answer has no choices", step)
		}
		msg := resp.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			tr.Answer = strings.TrimSpace(msg.Content)
			return nil
		}
		if step > maxSteps {
			tr.Answer = strings.TrimSpace(msg.Content)
			return fmt.Errorf("%w (%d steps)", ErrMaxSteps, maxSteps)
		}
		calls := slices.Clone(msg.ToolCalls)
		for i := range calls {
			if calls[i].ID == "" {
				// Some OpenAI-compatible servers leave it out; the reply
				// must still name the call it answers.
				calls[i].ID = fmt.Sprintf("call_%d_%d", step, i)
			}
			if calls[i].Type == "" {
				calls[i].Type = openai.ToolTypeFunction
			}
			calls[i].Index = nil
		}
		// Keep only what the next request needs from the model's turn.
		msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: msg.Content,
			ToolCalls: calls})
		for i, tc := range calls {
			if i >= MaxCallsPerStep {
				// Every call needs an answer; the excess is not made.
				content := fmt.Sprintf("ERROR: not called: at most %d tool calls are made per turn", MaxCallsPerStep)
				tr.Calls = append(tr.Calls, CallTrace{Step: step, Tool: capText(tc.Function.Name, 128),
					Arguments: capText(tc.Function.Arguments, maxTraceBytes), IsError: true, Local: true, Result: content})
				msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, ToolCallID: tc.ID, Content: content})
				continue
			}
			ct, err := a.callTool(ctx, step, tc, offered, prompt, msg.Content)
			tr.Calls = append(tr.Calls, ct.trace)
			if err != nil {
				return err
			}
			log.Debug("tool call", "step", step, "tool", tc.Function.Name, "error", ct.trace.IsError)
			msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, ToolCallID: tc.ID,
				Content: ct.content})
		}
	}
}

// toolOutcome is one answered tool call: the trace and the content of the
// tool message for the model.
type toolOutcome struct {
	trace   CallTrace
	content string
}

// callTool checks one tool call of the model and makes it through the
// mediator. Bad model output becomes an error message for the model; only
// a failure of the session itself (credential refused, session gone,
// context done) is returned as an error.
func (a *Agent) callTool(ctx context.Context, step int, tc openai.ToolCall, offered map[string]bool, prompt, reasoning string) (toolOutcome, error) {
	name := tc.Function.Name
	trace := CallTrace{Step: step, Tool: capText(name, 128), Arguments: capText(tc.Function.Arguments, maxTraceBytes)}
	args, problem := CheckToolCall(tc, offered)
	if problem != "" {
		trace.IsError, trace.Local = true, true
		content := "ERROR: " + problem
		trace.Result = capText(content, maxTraceBytes)
		return toolOutcome{trace: trace, content: content}, nil
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	req.Params.Meta = mcp.NewMetaFromMap(map[string]any{PromptMetaKey: promptMeta(prompt, reasoning)})
	start := time.Now()
	res, err := a.MCP.CallTool(ctx, req)
	trace.Duration = time.Since(start)
	if err != nil {
		if fatalSessionError(ctx, err) {
			trace.IsError = true
			trace.Result = capText(err.Error(), maxTraceBytes)
			return toolOutcome{trace: trace}, fmt.Errorf("tools/call %s: %w%s", name, err, authHint(err, a.MCP))
		}
		// A protocol error for this call only (e.g. invalid params): the
		// model may correct itself.
		content := "ERROR: the call failed: " + err.Error()
		trace.IsError, trace.Result = true, capText(content, maxTraceBytes)
		return toolOutcome{trace: trace, content: capText(content, MaxToolResultBytes)}, nil
	}
	content := ResultText(res, MaxToolResultBytes)
	trace.IsError, trace.Result = res.IsError, capText(content, maxTraceBytes)
	return toolOutcome{trace: trace, content: content}, nil
}

// fatalSessionError reports whether err ends the run rather than one call.
func fatalSessionError(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, transport.ErrAuthorizationRequired) || errors.Is(err, transport.ErrSessionTerminated)
}

// CheckToolCall validates a tool call of the model against the tools it
// was offered. It returns the decoded arguments, or a problem to tell the
// model ("" when the call is fine).
func CheckToolCall(tc openai.ToolCall, offered map[string]bool) (map[string]any, string) {
	name := tc.Function.Name
	if !offered[name] {
		names := make([]string, 0, len(offered))
		for n := range offered {
			names = append(names, n)
		}
		slices.Sort(names)
		list := strings.Join(names, ", ")
		if list == "" {
			list = "none"
		}
		return nil, fmt.Sprintf("there is no tool named %q; the tools offered are: %s", capText(name, 128), capText(list, 2048))
	}
	raw := strings.TrimSpace(tc.Function.Arguments)
	if raw == "" {
		// Some models send nothing for a tool without parameters.
		return map[string]any{}, ""
	}
	if len(raw) > MaxArgumentBytes {
		return nil, fmt.Sprintf("the arguments of %s are %d bytes; the limit is %d", name, len(raw), MaxArgumentBytes)
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, fmt.Sprintf("the arguments of %s are not valid JSON (%v); send a JSON object matching the tool's parameters",
			name, capText(err.Error(), 200))
	}
	args, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Sprintf("the arguments of %s are %s, not a JSON object; send a JSON object matching the tool's parameters",
			name, jsonKind(v))
	}
	return args, ""
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// promptMeta is the value of PromptMetaKey: the prompt alone, or with the
// model's text of the turn as reasoning.
func promptMeta(prompt, reasoning string) any {
	reasoning = strings.TrimSpace(reasoning)
	if reasoning == "" {
		return prompt
	}
	return map[string]any{"text": prompt, "reasoning": capText(reasoning, MaxReasoningBytes)}
}

// openAIName is what OpenAI accepts as a function name.
var openAIName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// ToolsForModel turns the mediator's tool list into the tools offered to
// the model, leaving out the mediator's own tools (the agent calls them
// itself) and tools that cannot be offered (logged). offered holds the
// names given to the model.
func ToolsForModel(list []mcp.Tool, log *slog.Logger) (tools []openai.Tool, offered map[string]bool) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	offered = map[string]bool{}
	for _, t := range list {
		if t.Name == ToolDeclareIntent || t.Name == ToolCompleteTask {
			continue
		}
		ot, err := ConvertTool(t)
		if err != nil {
			log.Warn("tool not offered to the model", "tool", capText(t.Name, 128), "err", err)
			continue
		}
		if offered[t.Name] {
			continue
		}
		offered[t.Name] = true
		tools = append(tools, ot)
	}
	return tools, offered
}

// ConvertTool turns an MCP tool into an OpenAI function tool: same name,
// the description, and the tool's input schema as the parameters
// (RawInputSchema when set, else InputSchema). A schema without a type gets
// "type": "object"; one of another type, or a name OpenAI would refuse, is
// an error.
func ConvertTool(t mcp.Tool) (openai.Tool, error) {
	if !openAIName.MatchString(t.Name) {
		return openai.Tool{}, fmt.Errorf("name %q: a function name is 1 to 64 letters, digits, _ or -", capText(t.Name, 128))
	}
	raw := t.RawInputSchema
	if len(raw) == 0 || string(raw) == "null" {
		b, err := json.Marshal(t.InputSchema)
		if err != nil {
			return openai.Tool{}, fmt.Errorf("tool %s: input schema: %w", t.Name, err)
		}
		raw = b
	}
	var schema map[string]json.RawMessage
	if err := json.Unmarshal(raw, &schema); err != nil || schema == nil {
		return openai.Tool{}, fmt.Errorf("tool %s: the input schema is not a JSON object", t.Name)
	}
	var typ string
	if tj, ok := schema["type"]; ok {
		if err := json.Unmarshal(tj, &typ); err != nil {
			return openai.Tool{}, fmt.Errorf("tool %s: input schema type %s is not a string", t.Name, capText(string(tj), 64))
		}
	}
	switch typ {
	case "object":
	case "":
		schema["type"] = json.RawMessage(`"object"`)
		b, err := json.Marshal(schema)
		if err != nil {
			return openai.Tool{}, fmt.Errorf("tool %s: input schema: %w", t.Name, err)
		}
		raw = b
	default:
		return openai.Tool{}, fmt.Errorf("tool %s: input schema type %q; function parameters must be an object", t.Name, typ)
	}
	desc := t.Description
	if desc == "" {
		desc = t.Title
	}
	return openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
		Name: t.Name, Description: desc, Parameters: json.RawMessage(raw),
	}}, nil
}

// ResultText is the text of a tool result for the model: its text content
// joined by newlines ("ERROR: " first when isError), capped at max bytes.
// Non-text content is named, not inlined; a result without text gives its
// structured content as JSON.
func ResultText(res *mcp.CallToolResult, max int) string {
	if res == nil {
		return "ERROR: empty result"
	}
	var parts []string
	for _, c := range res.Content {
		switch c := c.(type) {
		case mcp.TextContent:
			parts = append(parts, c.Text)
		case mcp.EmbeddedResource:
			if tr, ok := c.Resource.(mcp.TextResourceContents); ok {
				parts = append(parts, tr.Text)
			} else {
				parts = append(parts, "[binary resource omitted]")
			}
		case mcp.ImageContent:
			parts = append(parts, "[image omitted]")
		case mcp.AudioContent:
			parts = append(parts, "[audio omitted]")
		case mcp.ResourceLink:
			parts = append(parts, "[resource link: "+c.URI+"]")
		default:
			parts = append(parts, "[non-text content omitted]")
		}
	}
	text := strings.Join(parts, "\n")
	if strings.TrimSpace(text) == "" && res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			text = string(b)
		}
	}
	if text == "" {
		text = "(no output)"
	}
	if res.IsError {
		text = "ERROR: " + text
	}
	return capText(text, max)
}

// capText cuts s to at most max bytes on a rune boundary, saying how long
// it was.
func capText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	note := fmt.Sprintf(" …[cut; %d bytes in all]", len(s))
	keep := max - len(note)
	if keep < 0 {
		keep = 0
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + note
}

// oneLine flattens s to one line of at most max bytes.
func oneLine(s string, max int) string {
	return capText(strings.Join(strings.Fields(s), " "), max)
}

// declare calls declare_intent and returns the task id it names.
func (a *Agent) declare(ctx context.Context, purpose, prompt string) (string, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = ToolDeclareIntent
	req.Params.Arguments = map[string]any{"purpose": capText(purpose, 4000)}
	req.Params.Meta = mcp.NewMetaFromMap(map[string]any{PromptMetaKey: prompt})
	res, err := a.MCP.CallTool(ctx, req)
	if err != nil {
		return "", fmt.Errorf("declare_intent: %w%s", err, authHint(err, a.MCP))
	}
	if res.IsError {
		return "", fmt.Errorf("declare_intent refused: %s", oneLine(ResultText(res, 1024), 1024))
	}
	if m, ok := res.StructuredContent.(map[string]any); ok {
		if id, ok := m["task_id"].(string); ok {
			return id, nil
		}
	}
	return "", nil
}

// complete calls complete_task.
func (a *Agent) complete(ctx context.Context, summary, prompt string) error {
	req := mcp.CallToolRequest{}
	req.Params.Name = ToolCompleteTask
	req.Params.Arguments = map[string]any{"summary": summary}
	req.Params.Meta = mcp.NewMetaFromMap(map[string]any{PromptMetaKey: prompt})
	res, err := a.MCP.CallTool(ctx, req)
	if err != nil {
		return fmt.Errorf("complete_task: %w%s", err, authHint(err, a.MCP))
	}
	if res.IsError {
		return fmt.Errorf("complete_task refused: %s", oneLine(ResultText(res, 1024), 1024))
	}
	return nil
}

// summarize is the one-line summary of a run for complete_task.
func summarize(tr Transcript, err error) string {
	refused := 0
	for _, c := range tr.Calls {
		if c.IsError {
			refused++
		}
	}
	calls := fmt.Sprintf("%d tool calls (%d refused or failed)", len(tr.Calls), refused)
	switch {
	case errors.Is(err, ErrMaxSteps):
		return oneLine("Stopped at the step limit after "+calls+".", maxSummaryBytes)
	case err != nil:
		return oneLine("Abandoned after "+calls+": "+err.Error(), maxSummaryBytes)
	}
	return oneLine("Answered after "+calls+": "+tr.Answer, maxSummaryBytes)
}
