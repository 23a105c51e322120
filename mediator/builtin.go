package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The mediator's own tools. They are always listed (when intent
// declarations are configured), never forwarded, and every call of them is
// recorded like any other.
const (
	// ToolDeclareIntent declares (or narrows) the session's intent.
	ToolDeclareIntent = "declare_intent"
	// ToolCompleteTask ends the session's task.
	ToolCompleteTask = "complete_task"
	// BuiltinServer is the server name recorded for the mediator's own tools.
	BuiltinServer = "mediator"
	// builtinRule is the rule recorded for the mediator's own tools.
	builtinRule = "mediator.builtin"
)

// maxPurposeBytes bounds a declared purpose.
const maxPurposeBytes = 4 << 10

// IsBuiltinTool reports whether name is one of the mediator's own tools.
func IsBuiltinTool(name string) bool {
	return name == ToolDeclareIntent || name == ToolCompleteTask || name == ToolPermissionPrompt
}

// ownToolListed reports whether the mediator's own tool name is offered:
// the intent tools when intent is configured, permission_prompt when
// agent tools are.
func (s *Server) ownToolListed(name string) bool {
	if name == ToolPermissionPrompt {
		return s.deps.AgentTools != nil
	}
	return IsBuiltinTool(name) && s.declarer() != nil
}

func (s *Server) declarer() IntentDeclarer {
	return s.deps.Declarer
}

// builtinTools are the mcp-go registrations of the mediator's own tools.
func (s *Server) builtinTools() []server.ServerTool {
	var out []server.ServerTool
	if s.deps.AgentTools != nil {
		out = append(out, server.ServerTool{Tool: permissionPromptTool(), Handler: s.handlePermissionPrompt})
	}
	if s.declarer() == nil {
		return out
	}
	declare := mcp.NewTool(ToolDeclareIntent,
		mcp.WithDescription("Declare what you are doing before you call other tools: the user's purpose and, "+
			"optionally, the narrowest scope you need (tool name globs, argument constraints, highest data "+
			"class and risk). Every later call is checked against it; calls outside it may be refused or need "+
			"human approval. If your credential is bound to a task, you can only narrow that task's scope. "+
			"Pass the user's request in _meta[\""+PromptMetaKey+"\"]."),
		mcp.WithString("purpose", mcp.Required(), mcp.MaxLength(maxPurposeBytes),
			mcp.Description("What the user asked you to do, in one or two sentences.")),
		mcp.WithObject("scope", mcp.Description(`Optional narrowing: {"tools": ["server__tool_glob", ...], `+
			`"constraints": [{"arg": "path", "kind": "prefix|glob|host|max|enum", "values": ["..."], "max": 10}], `+
			`"max_data_class": "public|internal|confidential|pii|financial", "max_risk": "low|medium|high|critical"}`)),
		mcp.WithString("ttl", mcp.Description(`How long the intent holds, as a Go duration ("30m"); never past the task's own expiry.`)),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
	complete := mcp.NewTool(ToolCompleteTask,
		mcp.WithDescription("End the task you declared or were given, once the user's request is done. "+
			"Further calls of this session are refused; a credential bound to the task stops working."),
		mcp.WithString("summary", mcp.MaxLength(maxPurposeBytes), mcp.Description("One line on what was done.")),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
	return append(out,
		server.ServerTool{Tool: declare, Handler: s.handleBuiltin},
		server.ServerTool{Tool: complete, Handler: s.handleBuiltin})
}

// handleBuiltin runs one of the mediator's own tools through the short
// chain: record → recover → authenticate → the tool.
func (s *Server) handleBuiltin(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c := s.newCall(ctx, "tools/call", req.Params.Name)
	c.Arguments = req.GetArguments()
	takePrompt(c, req.Params.Meta, s.promptCap())
	stripMediatorMeta(req.Params.Meta)
	c.Request = &req
	ctx = WithCall(ctx, c)
	if err := s.builtin(ctx, c); err != nil {
		return ErrorResult(err), nil
	}
	res, ok := c.Result.(*mcp.CallToolResult)
	if !ok || res == nil {
		return ErrorResult(fmt.Errorf("%w: no result", ErrInternal)), nil
	}
	return res, nil
}

// runBuiltin is the last step of the builtin chain.
func (s *Server) runBuiltin(ctx context.Context, c *Call) error {
	c.Target = &Target{Kind: KindTool, Server: BuiltinServer, Name: c.Name, Original: c.Name, Risk: RiskLow, DataClass: DataPublic}
	c.Decision = Decision{Effect: EffectAllow, Rule: builtinRule, Reason: "the mediator's own tool"}
	c.Intent = Intent{Verdict: IntentNone, Score: -1}
	d := s.declarer()
	if d == nil {
		return fmt.Errorf("%w: intent declarations are not configured on this mediator", ErrMethodNotAllowed)
	}
	switch c.Name {
	case ToolDeclareIntent:
		return s.declareIntent(ctx, d, c)
	case ToolCompleteTask:
		return s.completeTask(ctx, d, c)
	}
	return fmt.Errorf("%w %q", ErrUnknownTool, c.Name)
}

func (s *Server) declareIntent(ctx context.Context, d IntentDeclarer, c *Call) error {
	decl := Declaration{Agent: c.Agent, Session: c.Session, Prompt: c.Prompt}
	args := c.Arguments
	for k := range args {
		if k != "purpose" && k != "scope" && k != "ttl" {
			return fmt.Errorf("%w: declare_intent has no argument %q (use purpose, scope, ttl)", ErrInvalidRequest, trimForError(k, 64))
		}
	}
	purpose, _ := args["purpose"].(string)
	purpose = strings.TrimSpace(purpose)
	if purpose == "" {
		return fmt.Errorf("%w: declare_intent needs a purpose: what the user asked you to do", ErrInvalidRequest)
	}
	if len(purpose) > maxPurposeBytes {
		return fmt.Errorf("%w: purpose is %d bytes; the limit is %d", ErrInvalidRequest, len(purpose), maxPurposeBytes)
	}
	decl.Purpose = purpose
	if raw, ok := args["scope"]; ok && raw != nil {
		sc, err := decodeScope(raw)
		if err != nil {
			return fmt.Errorf("%w: scope: %w", ErrInvalidRequest, err)
		}
		decl.Scope = &sc
	}
	if v, ok := args["ttl"]; ok && v != nil {
		str, _ := v.(string)
		ttl, err := time.ParseDuration(str)
		if err != nil || ttl <= 0 {
			return fmt.Errorf("%w: ttl %q: use a positive Go duration such as \"30m\"", ErrInvalidRequest, trimForError(fmt.Sprint(v), 32))
		}
		decl.TTL = ttl
	}
	t, err := d.Declare(ctx, decl)
	if err != nil {
		return err
	}
	c.Intent = Intent{Verdict: IntentInScope, TaskID: t.ID, Score: -1}
	text := fmt.Sprintf("Intent declared as task %s: %q, until %s. Every call of this session is now checked against it; "+
		"call complete_task when the user's request is done.", t.ID, t.Purpose, t.Expires.UTC().Format(time.RFC3339))
	c.Result = &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(text)},
		StructuredContent: taskSummary(t),
	}
	return nil
}

func (s *Server) completeTask(ctx context.Context, d IntentDeclarer, c *Call) error {
	for k := range c.Arguments {
		if k != "summary" {
			return fmt.Errorf("%w: complete_task has no argument %q (use summary)", ErrInvalidRequest, trimForError(k, 64))
		}
	}
	summary, _ := c.Arguments["summary"].(string)
	if len(summary) > maxPurposeBytes {
		return fmt.Errorf("%w: summary is %d bytes; the limit is %d", ErrInvalidRequest, len(summary), maxPurposeBytes)
	}
	t, err := d.CompleteTask(ctx, c.Agent, c.Session, strings.TrimSpace(summary))
	if err != nil {
		return err
	}
	c.Intent = Intent{Verdict: IntentInScope, TaskID: t.ID, Score: -1}
	text := fmt.Sprintf("Task %s completed. Further calls under it are refused", t.ID)
	if t.Source == TaskSourceAdmin {
		text += "; its credential no longer works"
	}
	c.Result = &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(text + ".")},
		StructuredContent: taskSummary(t),
	}
	return nil
}

// taskSummary is what the mediator's tools return about a task.
func taskSummary(t Task) map[string]any {
	return map[string]any{
		"task_id": t.ID, "purpose": t.Purpose, "status": string(t.Status),
		"expires": t.Expires.UTC().Format(time.RFC3339), "scope": t.Scope,
	}
}

// decodeScope turns the scope argument into a Scope, refusing unknown
// fields. Validation of globs and constraints is the IntentDeclarer's.
func decodeScope(v any) (Scope, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Scope{}, err
	}
	if len(b) > 64<<10 {
		return Scope{}, fmt.Errorf("scope is %d bytes; the limit is 64 KiB", len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sc Scope
	if err := dec.Decode(&sc); err != nil {
		return Scope{}, fmt.Errorf("%w (fields: tools, constraints, max_data_class, max_risk)", err)
	}
	return sc, nil
}
