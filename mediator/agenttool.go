package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Agent tools are the tools an agent's own client runs without an MCP
// server: Claude Code's Bash, Edit, Write, WebFetch. The client asks the
// mediator before each use (a PreToolUse hook, or the permission_prompt
// tool), and the use is decided by the same chain as an MCP tool call,
// with object kind builtin: identity, intent, behaviour, policy, approval,
// record. Nothing is forwarded: the decision is the answer, and the client
// runs the tool, or does not. What the tool did is reported afterwards
// (PostToolUse) and recorded against the same call.
const (
	// KindBuiltin is the object kind of an agent tool.
	KindBuiltin Kind = "builtin"
	// MethodToolUse is the method recorded for a decision on an agent tool.
	MethodToolUse = "agent/tool_use"
	// MethodToolOutcome is the method recorded for what an agent tool did
	// after it was allowed; its Ref names the tool_use record.
	MethodToolOutcome = "agent/tool_outcome"
	// OutcomeAllowed is how an allowed tool use ends in the mediator: the
	// agent's client runs it; its outcome record may follow.
	OutcomeAllowed Outcome = "allowed"
	// ToolPermissionPrompt is the mediator's own tool for Claude Code's
	// --permission-prompt-tool (mcp__<server>__permission_prompt).
	ToolPermissionPrompt = "permission_prompt"
)

// AgentTools are the agent tools the mediator knows (config builtins:).
type AgentTools interface {
	// AgentTool returns the tool of a catalog name ("claude__Bash").
	AgentTool(name string) (Tool, bool)
	// AgentToolName maps a client's own tool name ("Bash") to its
	// catalog name.
	AgentToolName(client, name string) string
	// Workspace is the project directory policy sees for a use whose
	// client claims claimed (its cwd or MCP root): the configured one
	// when the operator fixed it, else the claim.
	Workspace(claimed string) string
}

// ToolUse is one use of an agent tool, asked about before it runs.
type ToolUse struct {
	// Tool is the catalog name, e.g. "claude__Bash".
	Tool string
	// Input is the tool's input as the client will run it.
	Input map[string]any
	// UseID is the client's id of the use (Claude Code's tool_use_id),
	// which ties the outcome to the decision.
	UseID string
	// Session is the client's own session id; "" when it sent none.
	Session string
	// Client names the client ("claude-code").
	Client string
	// Workspace is the absolute project directory the client works in;
	// relative paths are taken against it, and policy sees it.
	Workspace string
	// Prompt is the user request that led to the use, when known.
	Prompt string
}

// ToolUseRequest is the Request of a tool-use Call.
type ToolUseRequest struct{ Use ToolUse }

// ToolUseVerdict is the mediator's answer about a tool use.
type ToolUseVerdict struct {
	// Allow is true when the tool may run.
	Allow bool
	// Reason says why, with what to do next when refused.
	Reason string
	// Rule is the rule that decided.
	Rule string
	// CallID is the id of the use's record.
	CallID string
	// ApprovalID and ApprovalURL name the approval the use waits for,
	// when it is pending.
	ApprovalID, ApprovalURL string
}

// ToolOutcome is what an agent tool did, as the client reports it.
type ToolOutcome struct {
	Tool, UseID, Session, Client, Workspace string
	// Response is the tool's output as the client reported it.
	Response any
	// Failed is true when the client reported the tool failed.
	Failed bool
}

// ToolUseFinder finds the record of a tool use by its client's id
// (Deps.ToolUses; the store implements it).
type ToolUseFinder interface {
	// FindToolUse returns the newest tool_use record of the session with
	// that use id.
	FindToolUse(ctx context.Context, session, useID string) (ChainRecord, bool, error)
}

// maxOutcomeBytes caps the output of an agent tool that is scanned and
// recorded; the store caps again by audit.max_result_bytes.
const maxOutcomeBytes = 256 << 10

// TransportHook is the transport recorded for a tool use asked by a hook
// (a process per use, or an HTTP request), not through an MCP session.
const TransportHook = "hook"

// hookSessionKey names a client session in records and intent bindings.
func hookSessionKey(client, session string) string {
	if session == "" {
		return ""
	}
	return client + "-" + session
}

// toolUseCall builds the Call of a tool use.
func (s *Server) toolUseCall(ctx context.Context, creds Credentials, method string, u ToolUse) *Call {
	c := &Call{ID: NewID(), Method: method, Name: u.Tool, Arguments: u.Input, Started: s.now(), Credentials: creds}
	c.Agent = AgentFromContext(ctx)
	c.Session = SessionInfo{ID: hookSessionKey(u.Client, u.Session), Transport: TransportHook, Client: u.Client}
	if si := sessionInfo(ctx, creds.Transport); si.ID != "" {
		c.Session = si // asked through an MCP session: its calls share its key
	}
	c.Session.Key = sessionKey(c.Session, c.Agent, s.stdioKey)
	c.Workspace = u.Workspace
	if s.deps.AgentTools != nil {
		c.Workspace = s.deps.AgentTools.Workspace(u.Workspace)
	}
	if u.Prompt != "" {
		c.Prompt, c.PromptTruncated = capText(u.Prompt, s.promptCap())
	}
	return c
}

// DecideToolUse decides one use of an agent tool through the chain. It
// never fails: every error is a refusal that says why. An approval is
// held as for an MCP call; when the hold runs out the use is refused with
// the approval's id, and the identical use asked again runs once approved.
func (s *Server) DecideToolUse(ctx context.Context, creds Credentials, u ToolUse) ToolUseVerdict {
	c := s.toolUseCall(ctx, creds, MethodToolUse, u)
	c.Request = &ToolUseRequest{Use: u}
	err := s.run(ctx, c, nil)
	v := ToolUseVerdict{CallID: c.ID, Rule: c.Decision.Rule}
	if err == nil {
		v.Allow = true
		v.Reason = "allowed by the mediator"
		if c.Decision.Rule != "" {
			v.Reason += " (rule " + c.Decision.Rule + ")"
		}
		return v
	}
	v.Reason = err.Error()
	if pe, ok := errors.AsType[*PendingError](err); ok {
		v.ApprovalID, v.ApprovalURL = pe.ApprovalID, pe.URL
	}
	return v
}

// RecordToolOutcome records what an allowed agent tool did, against its
// tool_use record (found by the client's use id). An outcome with no
// matching decision is recorded too, as a tool that ran without one.
func (s *Server) RecordToolOutcome(ctx context.Context, creds Credentials, o ToolOutcome) error {
	c := s.toolUseCall(ctx, creds, MethodToolOutcome, ToolUse{Tool: o.Tool, UseID: o.UseID, Session: o.Session,
		Client: o.Client, Workspace: o.Workspace})
	c.Arguments = nil
	c.Request = &o
	return s.outcome(ctx, c)
}

// runToolOutcome is the last step of the outcome chain.
func (s *Server) runToolOutcome(ctx context.Context, c *Call) error {
	o, ok := c.Request.(*ToolOutcome)
	if !ok {
		return fmt.Errorf("%w: no tool outcome", ErrInternal)
	}
	c.Target = &Target{Kind: KindBuiltin, Name: c.Name, Original: c.Name}
	if t, ok := s.agentTool(c.Name); ok {
		c.Target = &Target{Kind: KindBuiltin, Server: t.Server, Name: t.Name, Original: t.Original,
			Risk: t.Risk, DataClass: t.DataClass, Hints: t.Hints, Hash: t.Hash}
	}
	c.Intent = Intent{Verdict: IntentNone, Score: -1}
	c.Decision = Decision{Effect: EffectDeny, Rule: "agent.outcome",
		Reason: "the client reported this tool use, but the mediator has no decision for it: the tool ran unchecked"}
	c.Result = outcomeResult(o)
	if finder := s.deps.ToolUses; finder != nil && o.UseID != "" {
		use, found, err := finder.FindToolUse(ctx, c.Session.Key, o.UseID)
		if err != nil {
			return fmt.Errorf("%w: the tool use's decision could not be read: %w", ErrAudit, err)
		}
		if found && use.AgentID != c.Agent.ID {
			return fmt.Errorf("%w: tool use %s was decided for another agent", ErrUnauthenticated, trimForError(o.UseID, 64))
		}
		if found {
			c.ForwardID, c.Decision = use.ID, use.Decision
			c.Intent.TaskID = use.TaskID
			if use.Outcome != OutcomeAllowed {
				c.Decision.Reason = "the client reported running a tool use the mediator refused (" + string(use.Outcome) + ")"
				c.Decision.Rule = "agent.outcome"
			}
		}
	}
	if s.deps.Inspector != nil {
		if err := s.deps.Inspector.Result(ctx, c); err != nil {
			c.Result = nil // withheld from the record; the scan report says why
			return err
		}
	}
	return nil
}

// outcomeResult is the recorded form of a tool's output: its text, capped.
func outcomeResult(o *ToolOutcome) *mcp.CallToolResult {
	var text string
	switch r := o.Response.(type) {
	case string:
		text = r
	case nil:
	default:
		b, err := json.Marshal(r)
		if err != nil {
			text = fmt.Sprintf("(output could not be encoded: %v)", err)
		} else {
			text = string(b)
		}
	}
	if len(text) > maxOutcomeBytes {
		text = fmt.Sprintf("%s… (%d bytes; the first %d are recorded)", strings.ToValidUTF8(text[:maxOutcomeBytes], ""), len(text), maxOutcomeBytes)
	}
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(text)}, IsError: o.Failed}
}

// agentTool looks up an agent tool.
func (s *Server) agentTool(name string) (Tool, bool) {
	if s.deps.AgentTools == nil {
		return Tool{}, false
	}
	return s.deps.AgentTools.AgentTool(name)
}

// resolveToolUse maps a tool-use call to its agent tool.
func resolveToolUse(at AgentTools, c *Call) (Target, error) {
	if at == nil {
		return Target{}, fmt.Errorf("%w: agent tools are not configured on this mediator (builtins: in its config)", ErrMethodNotAllowed)
	}
	t, ok := at.AgentTool(c.Name)
	if !ok {
		return Target{}, fmt.Errorf("%w %q: the mediator knows no agent tool of that name; an administrator may add it under builtins: in the config",
			ErrUnknownTool, trimForError(c.Name, 128))
	}
	return Target{Kind: KindBuiltin, Server: t.Server, Name: t.Name, Original: t.Original,
		Risk: t.Risk, DataClass: t.DataClass, Hints: t.Hints, Hash: t.Hash}, nil
}

// capText cuts s to at most max bytes on a rune boundary.
func capText(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	return strings.ToValidUTF8(s[:max], ""), true
}

// toolUseAnswer is the recorded answer to a tool use, allowed or not: the
// client's use id (which ties the outcome to it) and the decision.
func toolUseAnswer(c *Call, callErr error) json.RawMessage {
	req, _ := c.Request.(*ToolUseRequest)
	if req == nil {
		return nil
	}
	decision := "allow"
	switch {
	case errors.Is(callErr, ErrApprovalPending):
		decision = "pending"
	case callErr != nil:
		decision = "deny"
	}
	b, err := CanonicalValue(map[string]any{"tool_use_id": req.Use.UseID, "decision": decision})
	if err != nil {
		return nil
	}
	return b
}

// permissionPromptTool is the definition of the permission_prompt tool.
func permissionPromptTool() mcp.Tool {
	return mcp.NewTool(ToolPermissionPrompt,
		mcp.WithDescription("Claude Code's permission prompt (claude -p --permission-prompt-tool "+
			"mcp__<this server>__permission_prompt): decides whether one of the client's own tools (Bash, Edit, Write, "+
			"WebFetch, ...) may run, by the mediator's policy, and records it. Not for agents to call themselves."),
		mcp.WithString("tool_name", mcp.Required(), mcp.MaxLength(256), mcp.Description("The client's tool, e.g. Bash.")),
		mcp.WithObject("input", mcp.Required(), mcp.Description("The tool's input as the client will run it.")),
		mcp.WithString("tool_use_id", mcp.MaxLength(256), mcp.Description("The client's id of this tool use.")),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// PermissionServerName is the name Claude Code knows the mediator by
// (claude mcp add mediator ...): the permission prompt lets the
// mediator's own tools (mcp__mediator__<tool>) through, since each call of
// them is decided when it arrives. A tool of any other MCP server is an
// agent tool like Bash, unknown unless builtins: names it.
const PermissionServerName = "mediator"

// permissionClient is the client the permission_prompt tool speaks for.
const permissionClient = "claude-code"

// handlePermissionPrompt answers Claude Code's permission prompt: the
// tool use is decided by the chain (one record, kind builtin) and the
// answer is the JSON Claude Code reads from the tool's text:
// {"behavior":"allow","updatedInput":{...}} or {"behavior":"deny","message":"..."}.
func (s *Server) handlePermissionPrompt(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := req.GetArguments()
	name, _ := args["tool_name"].(string)
	input, _ := args["input"].(map[string]any)
	useID, _ := args["tool_use_id"].(string)
	creds := CredentialsFromContext(ctx)
	workspace, ask := s.clientRoot(ctx, req)
	if ask && name != "" && input != nil {
		return server.NewInputRequestBuilder("").Roots(rootsInput).ToolResult(), nil
	}
	if rest, ok := strings.CutPrefix(name, "mcp__"+PermissionServerName+"__"); ok && input != nil {
		if _, listed := s.deps.Upstreams.Catalog().Tool(rest); listed || IsBuiltinTool(rest) {
			// A tool of this mediator: the call is decided (and recorded)
			// by the chain when it arrives.
			return permissionAnswer(ToolUseVerdict{Allow: true}, input), nil
		}
	}
	if name == "" || input == nil {
		c := s.newCall(ctx, MethodToolUse, trimForError(name, 128))
		return permissionAnswer(ToolUseVerdict{Reason: s.reject(ctx, c, fmt.Errorf(
			"%w: permission_prompt needs tool_name (a string) and input (an object)", ErrInvalidRequest)).Error()}, nil), nil
	}
	v := s.DecideToolUse(ctx, creds, ToolUse{Tool: s.deps.AgentTools.AgentToolName(permissionClient, name), Input: input,
		UseID: useID, Client: permissionClient, Workspace: workspace})
	return permissionAnswer(v, input), nil
}

// rootsInput names the roots request of the permission prompt.
const rootsInput = "workspace"

// clientRoot is the client's first file root: the project directory it
// works in, for a permission prompt, which names none. It is asked for
// with MCP's multi round-trip (the tool's first answer asks for the
// client's roots; the client calls again with them; mcp-go bridges older
// clients). ask is true when the answer must be that request; "" when the
// client has no roots.
func (s *Server) clientRoot(ctx context.Context, req mcp.CallToolRequest) (root string, ask bool) {
	if res := server.RootsResponse(req.Params.InputResponses, rootsInput); res != nil {
		for _, r := range res.Roots {
			u, err := url.Parse(r.URI)
			if err == nil && u.Scheme == "file" && path.IsAbs(u.Path) {
				return path.Clean(u.Path), false
			}
		}
		return "", false
	}
	if _, answered := req.Params.InputResponses[rootsInput]; answered {
		return "", false
	}
	cs, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
	if !ok || cs.GetClientCapabilities().Roots == nil {
		return "", false
	}
	return "", true
}

// permissionAnswer is the permission_prompt tool's result for v.
func permissionAnswer(v ToolUseVerdict, input map[string]any) *mcp.CallToolResult {
	answer := map[string]any{"behavior": "deny", "message": "the mediator refused this tool use: " + v.Reason}
	if v.Allow {
		answer = map[string]any{"behavior": "allow", "updatedInput": input}
	}
	b, _ := json.Marshal(answer)
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(string(b))}}
}

// RefuseToolUse records a tool use refused before it could be decided (a
// malformed or oversized hook event, a request the transport refused) and
// returns the error to answer with.
func (s *Server) RefuseToolUse(ctx context.Context, creds Credentials, u ToolUse, cause error) error {
	c := s.toolUseCall(ctx, creds, MethodToolUse, u)
	c.Arguments = nil // not read: what was sent is not what would run
	s.identify(ctx, c)
	if err := s.reject(ctx, c, cause); err != nil && !errors.Is(err, cause) {
		return err
	}
	return cause
}

// AgentToolName maps a client's own tool name to its catalog name
// ("Bash" → "claude__Bash").
func (s *Server) AgentToolName(client, name string) string {
	if s.deps.AgentTools == nil || name == "" {
		return name
	}
	return s.deps.AgentTools.AgentToolName(client, name)
}
