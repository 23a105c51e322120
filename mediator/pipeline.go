package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Handler processes one Call. The Call carries the request in and the
// result out; the error says why it did not run.
type Handler func(ctx context.Context, c *Call) error

// Step wraps a Handler with one stage of mediation.
type Step func(next Handler) Handler

// Deps are the parts the pipeline is built from. Upstreams, Authenticator,
// Authorizer and Recorder are required; Intent defaults to "no intent
// declared" and a nil Approver refuses every approval.
type Deps struct {
	Upstreams     Upstreams
	Authenticator Authenticator
	Intent        IntentChecker
	// Behaviour compares calls with their agent's baseline (nil: off).
	Behaviour  BehaviourMonitor
	Authorizer Authorizer
	Approver   Approver
	Recorder   Recorder
	// Health says why the recorder cannot write now (nil: off); while it
	// cannot, calls are refused before they run.
	Health HealthChecker
	// Tracker is told when calls start and are about to be recorded, so
	// that the recorder can commit them in groups (nil: off).
	Tracker CallTracker
	// Declarer serves the mediator's declare_intent and complete_task
	// tools (nil: they are not offered).
	Declarer IntentDeclarer
	// ToolUses finds the decision an agent tool's outcome belongs to
	// (nil: outcomes are recorded without it).
	ToolUses ToolUseFinder
	// Inspector scans arguments and results (nil: off).
	Inspector Inspector
	// Flows remembers what each session touched, for r.session (nil:
	// policy sees an empty session).
	Flows *FlowTracker
	// Telemetry is told of each step's time and each finished call
	// (nil: off).
	Telemetry Telemetry
	// Tracer makes a span of each call and step (nil: off).
	Tracer Tracer
	// AgentTools are the agent tools (Claude Code's Bash, Edit, ...)
	// decided as object kind builtin (nil: none).
	AgentTools AgentTools
	Logger     *slog.Logger
	// Caps bounds what is recorded and forwarded.
	Caps Caps
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Caps are the size limits of the pipeline.
type Caps struct {
	// PromptBytes caps the prompt text taken from _meta (default 16 KiB).
	PromptBytes int
}

// Validate reports a missing required part.
func (d *Deps) Validate() error {
	switch {
	case d.Upstreams == nil:
		return errors.New("mediator: Deps.Upstreams is required")
	case d.Authenticator == nil:
		return errors.New("mediator: Deps.Authenticator is required")
	case d.Authorizer == nil:
		return errors.New("mediator: Deps.Authorizer is required")
	case d.Recorder == nil:
		return errors.New("mediator: Deps.Recorder is required")
	}
	return nil
}

// BuildChain builds the mediation chain, outermost first, in the order of
// DESIGN.md:
//
//	record → recover → authenticate → resolve → intent → behaviour → policy → approval → forward
//
// record wraps everything so that denials, failures and panics are recorded
// too; recover turns a panic into ErrInternal before record sees it.
func BuildChain(d Deps) Handler {
	p := &pipeline{d: d}
	steps := []Step{
		p.record,
		p.recover,
		p.authenticate,
		p.resolve,
		p.checkIntent,
		p.checkBehaviour,
		p.authorize,
		p.approve,
	}
	h := Handler(p.forward)
	for i := len(steps) - 1; i >= 0; i-- {
		h = steps[i](h)
	}
	return h
}

// BuildBuiltinChain builds the short chain of the mediator's own tools:
// record → recover → authenticate → h. They are neither resolved against
// the catalog nor sent to policy: declaring intent can only narrow what a
// session may do.
func BuildBuiltinChain(d Deps, h Handler) Handler {
	p := &pipeline{d: d}
	return p.record(p.recover(p.authenticate(h)))
}

type pipeline struct {
	d Deps
}

func (p *pipeline) now() time.Time {
	if p.d.Now != nil {
		return p.d.Now()
	}
	return time.Now()
}

func (p *pipeline) logger() *slog.Logger {
	if p.d.Logger != nil {
		return p.d.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// HealthChecker is a recorder that knows when it cannot write.
type HealthChecker interface{ Healthy() error }

// CallTracker is a Recorder that commits records in groups (Deps.Tracker).
// The record step calls CallStarted when a call enters the pipeline and
// CallEnded just before it records the call, so the recorder knows how
// many calls are still running: with many, it may wait a moment for their
// records and commit them together rather than one by one; with none, it
// commits at once.
type CallTracker interface {
	CallStarted()
	CallEnded()
}

// record writes one chain record for the call, whatever its outcome. A call
// is refused before it runs when the recorder already knows it cannot write,
// and its result is withheld when its record fails: nothing happens that
// the audit chain does not hold.
func (p *pipeline) record(next Handler) Handler {
	return func(ctx context.Context, c *Call) error {
		if c.Started.IsZero() {
			c.Started = p.now()
		}
		if p.d.Telemetry != nil || p.d.Tracer != nil {
			c.entered = time.Now()
		}
		if p.d.Tracer != nil {
			start := c.entered
			if d, ok := authTime(ctx); ok {
				start = start.Add(-d) // the transport verified the credential first
			}
			ctx = p.d.Tracer.StartCall(ctx, c, start)
		}
		var err error
		if p.d.Health != nil {
			if herr := p.d.Health.Healthy(); herr != nil {
				err = fmt.Errorf("%w: the audit log cannot be written, so no call is forwarded (%w); "+
					"an operator must check the mediator's database", ErrAudit, herr)
			}
		}
		if err == nil {
			err = p.run(ctx, c, next)
		}
		rerr := p.write(ctx, c, err)
		if rerr != nil {
			c.Result = nil
			p.logger().Error("audit record failed; result withheld", "call", c.ID, "method", c.Method, "err", rerr)
			return fmt.Errorf("%w: the call's audit record could not be written, so its result is withheld (%w); "+
				"an operator must check the mediator's database", ErrAudit, rerr)
		}
		return err
	}
}

// run runs the rest of the chain, telling a CallTracker recorder when the
// call starts and when it is about to be recorded.
func (p *pipeline) run(ctx context.Context, c *Call, next Handler) error {
	t := p.d.Tracker
	if t == nil {
		return next(ctx, c)
	}
	t.CallStarted()
	ended := false
	defer func() {
		if !ended { // a panic that got past recover
			t.CallEnded()
		}
	}()
	err := next(ctx, c)
	ended = true
	t.CallEnded()
	return err
}

func (p *pipeline) write(ctx context.Context, c *Call, callErr error) error {
	rec := NewRecord(c, callErr, p.now())
	if callErr == nil && c.RecordResult == nil {
		c.recorded = rec.Result
	}
	p.observe(ctx, c, rec)
	// A cancelled call is still recorded: detach from the agent's context,
	// but bound the wait.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	wctx, st := p.startStep(wctx, c, StepRecord)
	err := p.d.Recorder.Record(wctx, rec)
	p.stepDone(ctx, c, StepRecord, st, err)
	if t := p.d.Telemetry; t != nil {
		t.Call(ctx, c, &rec, time.Since(c.entered), callErr, err)
	}
	if p.d.Tracer != nil {
		p.d.Tracer.EndCall(ctx, c, &rec, callErr, err)
	}
	return err
}

// observe lets the behaviour monitor learn from the finished call. It runs
// outside the recover step, so a panic in it is caught here: the call's
// record is written whatever the monitor does.
func (p *pipeline) observe(ctx context.Context, c *Call, rec ChainRecord) {
	if p.d.Behaviour == nil || c.Agent == nil || c.Target == nil || c.Target.Kind == KindProtocol || c.Method == MethodToolOutcome {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			p.logger().Error("panic in the behaviour monitor; the call is recorded, its behaviour not learned",
				"call", c.ID, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	p.d.Behaviour.Observe(ctx, c, rec.Outcome, len(rec.Result))
}

// recover turns a panic in a later step into ErrInternal, so that the call
// fails closed and is recorded.
func (p *pipeline) recover(next Handler) Handler {
	return func(ctx context.Context, c *Call) (err error) {
		defer func() {
			if r := recover(); r != nil {
				p.logger().Error("panic in pipeline", "call", c.ID, "method", c.Method, "panic", r, "stack", string(debug.Stack()))
				c.Result = nil
				err = fmt.Errorf("%w: the mediator failed while handling this call; it was not forwarded", ErrInternal)
			}
		}()
		return next(ctx, c)
	}
}

// authenticate establishes who is calling. Over HTTP the transport has
// already verified the credential (an HTTP 401 must happen before MCP) and
// put the Agent in the context; over stdio the identity comes from config.
func (p *pipeline) authenticate(next Handler) Handler {
	return func(ctx context.Context, c *Call) error {
		if c.Agent == nil {
			c.Agent = AgentFromContext(ctx)
		}
		if d, ok := authTime(ctx); ok && c.Agent != nil {
			// The transport verified the credential, before the call's
			// span started.
			if p.d.Telemetry != nil {
				p.d.Telemetry.Step(ctx, c, StepAuthenticate, d)
			}
			if p.d.Tracer != nil {
				_, end := p.d.Tracer.StartStep(ctx, c, StepAuthenticate, c.entered.Add(-d))
				end(nil)
			}
		}
		if c.Agent == nil {
			actx, st := p.startStep(ctx, c, StepAuthenticate)
			a, err := p.d.Authenticator.Authenticate(actx, c.Credentials)
			p.stepDone(ctx, c, StepAuthenticate, st, err)
			if err != nil {
				if t := p.d.Telemetry; t != nil {
					t.AuthFailed(AuthFailureReason(err))
				}
				return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
			}
			c.Agent = a
		}
		return next(ctx, c)
	}
}

// resolve maps the requested name to an upstream object.
func (p *pipeline) resolve(next Handler) Handler {
	return func(ctx context.Context, c *Call) error {
		var t Target
		var err error
		if c.Method == MethodToolUse {
			t, err = resolveToolUse(p.d.AgentTools, c)
		} else {
			t, err = Resolve(p.d.Upstreams.Catalog(), c)
		}
		if err != nil {
			return err
		}
		c.Target = &t
		return next(ctx, c)
	}
}

// checkIntent compares the call with the session's declared intent. A
// failure to check is a denial.
func (p *pipeline) checkIntent(next Handler) Handler {
	return func(ctx context.Context, c *Call) error {
		c.Intent = Intent{Verdict: IntentNone}
		if p.d.Intent != nil && c.Target.Kind != KindProtocol {
			ictx, st := p.startStep(ctx, c, StepIntent)
			in, err := p.d.Intent.Check(ictx, c.IntentRequest())
			p.stepDone(ctx, c, StepIntent, st, stepErr(err))
			var deny *DenyError
			if errors.As(err, &deny) {
				// The intent checker refuses outright (a suspended task).
				c.Intent, c.Decision = in, deny.Decision
				return err
			}
			if err != nil {
				c.Decision = Decision{Effect: EffectDeny, Reason: "intent check failed"}
				return fmt.Errorf("%w: the intent check failed, so the call is denied: %w", ErrPolicy, err)
			}
			c.Intent = in
		}
		return next(ctx, c)
	}
}

// checkBehaviour compares the call with its agent's baseline and sets the
// trust level policy sees. A failure to check is a denial.
func (p *pipeline) checkBehaviour(next Handler) Handler {
	return func(ctx context.Context, c *Call) error {
		if p.d.Behaviour == nil || c.Target.Kind == KindProtocol {
			return next(ctx, c)
		}
		bctx, st := p.startStep(ctx, c, StepBehaviour)
		b, err := p.d.Behaviour.Check(bctx, c)
		p.stepDone(ctx, c, StepBehaviour, st, err)
		if err != nil {
			c.Decision = Decision{Effect: EffectDeny, Rule: "behaviour.check", Reason: "behaviour check failed"}
			p.logger().Error("behaviour check failed; denying", "call", c.ID, "err", err)
			return fmt.Errorf("%w: the behaviour check failed, so the call is denied; an operator must check the mediator's log: %w", ErrPolicy, err)
		}
		c.Behaviour = &b
		// The agent may be shared with other calls of its session: the
		// level is set on a copy.
		a := *c.Agent
		a.TrustLevel = string(b.Trust)
		c.Agent = &a
		return next(ctx, c)
	}
}

// authorize asks policy. Protocol methods are decided by the method table;
// everything else by the Authorizer. Deny and error both stop the call.
func (p *pipeline) authorize(next Handler) Handler {
	return func(ctx context.Context, c *Call) error {
		if c.Target.Kind == KindProtocol {
			d, err := decideMethod(c.Method)
			c.Decision = d
			if err != nil {
				return err
			}
			return next(ctx, c)
		}
		actx, st := p.startStep(ctx, c, StepPolicy)
		argSecrets := p.inspectArguments(c)
		d, err := p.d.Authorizer.Decide(actx, AuthzRequest{
			Agent:      *c.Agent,
			Target:     *c.Target,
			Arguments:  c.Arguments,
			Intent:     c.Intent,
			Behaviour:  c.Behaviour,
			RemoteIP:   c.Credentials.RemoteIP,
			ArgSecrets: argSecrets,
			Session:    c.Flow,
			Workspace:  c.Workspace,
		})
		c.Decision = d // what the policy step decided, for its span; refined below
		p.stepDone(ctx, c, StepPolicy, st, stepErr(err))
		if ae, ok := errors.AsType[*ArgumentError](err); ok {
			// The agent's mistake: an argument a rule reads is missing or
			// of another type. Denied, and logged as what it is.
			c.Decision = Decision{Effect: EffectDeny, Rule: ae.Rule, Reason: ae.Error(), PolicyVersion: d.PolicyVersion}
			p.logger().Info("call refused: its arguments do not fit a policy rule", "call", c.ID, "rule", ae.Rule, "arg", ae.Arg)
			return fmt.Errorf("%w: correct the call's arguments and call again", ae)
		}
		if err != nil {
			c.Decision = Decision{Effect: EffectDeny, Reason: "policy error", PolicyVersion: d.PolicyVersion}
			p.logger().Error("policy evaluation failed; denying", "call", c.ID, "err", err)
			return fmt.Errorf("%w: the policy could not be evaluated, so the call is denied; an administrator must check the policy", ErrPolicy)
		}
		c.Decision = explainTrust(tighten(d, c.Intent.Judge), c)
		d = c.Decision
		if d.Shadow {
			// Shadow mode: the would-be decision is recorded with the call,
			// which is forwarded as if allowed.
			if d.Effect != EffectAllow {
				p.logger().Info("shadow policy would refuse", "call", c.ID, "effect", d.Effect, "rule", d.Rule)
			}
			return p.forward(ctx, c)
		}
		switch d.Effect {
		case EffectAllow, EffectApprove:
			return next(ctx, c)
		case EffectDeny:
			return &DenyError{Decision: d, Hint: "Do not retry this call; ask the user or an administrator if it is needed"}
		default:
			c.Decision.Effect = EffectDeny
			return fmt.Errorf("%w: policy returned unknown effect %q", ErrPolicy, d.Effect)
		}
	}
}

// approve sends approve decisions to a human.
func (p *pipeline) approve(next Handler) Handler {
	return func(ctx context.Context, c *Call) error {
		if c.Decision.Effect != EffectApprove {
			return next(ctx, c)
		}
		if p.d.Approver == nil {
			return fmt.Errorf("%w (rule %s): ask an administrator to enable approvals or change the policy", ErrApprovalUnavailable, c.Decision.Rule)
		}
		actx, st := p.startStep(ctx, c, StepApproval)
		v, err := p.d.Approver.Await(actx, Pending{Call: c, Decision: c.Decision})
		if err == nil {
			c.Verdict = &v
		}
		p.stepDone(ctx, c, StepApproval, st, stepErr(err))
		if err != nil {
			return err
		}
		if !v.Approved {
			d := c.Decision
			d.Reason = "denied by approver " + v.Approver + ": " + v.Reason
			return &DenyError{Decision: d}
		}
		if v.Arguments != nil {
			return p.runEdited(ctx, c, next)
		}
		return next(ctx, c)
	}
}

// maxAskedBytes bounds the asked arguments an edited call's record keeps
// beside the edited ones.
const maxAskedBytes = 64 << 10

// runEdited runs the call as its approvers edited it: the edited arguments
// replace the agent's in the call and in the request forwarded, and intent
// and policy (with the outbound secret scan) decide again on them, so that
// an edit cannot take a call where the rules would not let it go. The
// approval covers the edited call when policy allows it or holds it for
// approval under the same rule; any other answer refuses it, and nothing
// is forwarded. The record holds the edited arguments, and the asked ones
// in its approval. The behaviour check is not run again: it scores the
// agent, and the edit is not the agent's.
func (p *pipeline) runEdited(ctx context.Context, c *Call, next Handler) error {
	v := c.Verdict
	req, ok := c.Request.(*mcp.CallToolRequest)
	if !ok {
		c.Decision.Effect = EffectDeny
		return fmt.Errorf("%w: approval %s edits the arguments of a %s call, and only a tool call's can be edited; ask the approver to approve it as asked or deny it",
			ErrApprovalUnavailable, v.ApprovalID, c.Method)
	}
	var args map[string]any
	if err := json.Unmarshal(v.Arguments, &args); err != nil || args == nil {
		c.Decision.Effect = EffectDeny
		return fmt.Errorf("%w: approval %s carries edited arguments that are not a JSON object; ask the approver to decide again",
			ErrApprovalUnavailable, v.ApprovalID)
	}
	asked := c.RecordArguments
	if asked == nil {
		asked, _ = CanonicalValue(c.Arguments)
	}
	if len(asked) > maxAskedBytes {
		asked, _ = json.Marshal(fmt.Sprintf("[%d bytes of asked arguments, longer than the %d kept]", len(asked), maxAskedBytes))
	}
	v.Asked = asked
	approvedRule := c.Decision.Rule
	// RawArguments, when set, is what is forwarded (it keeps large
	// numbers exact): the edit, as the approver wrote it (canonical).
	c.Arguments, req.Params.Arguments, req.Params.RawArguments = args, args, v.Arguments
	c.RecordArguments = nil
	if c.Scan != nil {
		c.Scan.ArgSecrets = nil
	}
	p.logger().Info("running the call with the arguments its approver edited", "call", c.ID, "approval", v.ApprovalID, "approver", v.Approver)
	covered := func(ctx context.Context, c *Call) error {
		if c.Decision.Effect == EffectApprove && c.Decision.Rule != approvedRule {
			d := c.Decision
			d.Effect = EffectDeny
			d.Reason = fmt.Sprintf("the edited call needs approval under rule %s, not %s, which approval %s was for", d.Rule, approvedRule, v.ApprovalID)
			c.Decision = d
			return &DenyError{Decision: d, Hint: "Ask the user; the approver must deny this approval and the call be made as edited, to be approved under its own rule"}
		}
		return next(ctx, c)
	}
	err := p.checkIntent(p.authorize(covered))(ctx, c)
	if err != nil && IsDenial(err) {
		return fmt.Errorf("approval %s edited the call's arguments, and the edited call is refused: %w", v.ApprovalID, err)
	}
	return err
}

// forward sends the call to its upstream. Protocol methods are served by the
// mediator itself and have nothing to forward.
func (p *pipeline) forward(ctx context.Context, c *Call) (err error) {
	start := p.now()
	defer func() { c.UpstreamUS = p.now().Sub(start).Microseconds() }()
	octx := ctx
	ctx, st := p.startStep(ctx, c, StepForward)
	defer func() { p.stepDone(octx, c, StepForward, st, stepErr(err)) }()
	var tc TraceContext
	if p.d.Tracer != nil {
		tc = p.d.Tracer.Outgoing(ctx)
		ctx = WithOutgoingTrace(ctx, tc)
	}
	switch req := c.Request.(type) {
	case nil:
		if c.Target.Kind != KindProtocol {
			return fmt.Errorf("%w: nothing to forward for %s", ErrInternal, c.Method)
		}
		return nil
	case *ToolUseRequest:
		return nil // the agent's client runs the tool: the decision is the answer
	case *taskRequest:
		return req.run(ctx, c) // the mediator is the task's receiver (tasks.go)
	case *mcp.CallToolRequest:
		t, ok := p.d.Upstreams.Catalog().Tool(c.Target.Name)
		if !ok {
			return fmt.Errorf("%w %q: it was removed from the catalog; call tools/list", ErrUnknownTool, c.Target.Name)
		}
		if err := p.writeAhead(ctx, c); err != nil {
			return err
		}
		setTraceMeta(&req.Params.Meta, tc)
		c.Result, err = p.d.Upstreams.CallTool(ctx, t, *req)
	case *mcp.ReadResourceRequest:
		setTraceMeta(&req.Params.Meta, tc)
		c.Result, err = p.d.Upstreams.ReadResource(ctx, c.Target.Server, *req)
	case *mcp.GetPromptRequest:
		pr, ok := p.d.Upstreams.Catalog().Prompt(c.Target.Name)
		if !ok {
			return fmt.Errorf("%w %q: it was removed from the catalog; call prompts/list", ErrUnknownPrompt, c.Target.Name)
		}
		setTraceMeta(&req.Params.Meta, tc)
		c.Result, err = p.d.Upstreams.GetPrompt(ctx, pr, *req)
	case *mcp.CompleteRequest:
		c.Result, err = p.d.Upstreams.Complete(ctx, c.Target.Server, *req)
	case *subscriptionRequest:
		err = req.forward(ctx, p.d.Upstreams, c.Target.Server)
	default:
		return fmt.Errorf("%w: unsupported request type %T", ErrInternal, req)
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	var rpc *UpstreamRPCError
	if errors.As(err, &rpc) {
		return p.inspectUpstreamError(ctx, c, rpc, err)
	}
	if err != nil {
		return err
	}
	return p.inspectResult(ctx, c)
}

// inspectUpstreamError scans the text of an upstream's JSON-RPC error, which
// reaches the agent as the upstream sent it, as it scans a result: a
// secret in its message or data is redacted (or the error withheld, by the
// upstream's configuration) and an injection marks the session. It
// returns err, or the inspector's error when the error is withheld.
func (p *pipeline) inspectUpstreamError(ctx context.Context, c *Call, rpc *UpstreamRPCError, err error) error {
	res := &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(rpc.Message)}}
	if len(rpc.Data) > 0 {
		res.Content = append(res.Content, mcp.NewTextContent(string(rpc.Data)))
	}
	result, recorded := c.Result, c.RecordResult
	c.Result = res
	ierr := p.inspectResult(ctx, c)
	c.Result, c.RecordResult = result, recorded
	if ierr != nil {
		return ierr
	}
	rpc.Message = res.Content[0].(mcp.TextContent).Text
	if len(rpc.Data) > 0 {
		if d := res.Content[1].(mcp.TextContent).Text; json.Valid([]byte(d)) {
			rpc.Data = json.RawMessage(d)
		} else {
			rpc.Data = nil
			rpc.Message += " (the error's data held a secret and was dropped)"
		}
	}
	return err
}

// inspectArguments scans the call's arguments for secrets and reads what
// its session touched before; it returns the number of secrets found.
func (p *pipeline) inspectArguments(c *Call) int {
	c.Flow = p.d.Flows.Get(flowKey(c))
	if p.d.Inspector == nil || len(c.Arguments) == 0 {
		return 0
	}
	found := p.d.Inspector.Arguments(c)
	if len(found) > 0 {
		if c.Scan == nil {
			c.Scan = &ScanReport{}
		}
		c.Scan.ArgSecrets = found
	}
	return len(found)
}

// inspectResult scans the result for secrets and injection markers, and
// adds what the call touched to its session's flow. An inspector error
// withholds the result.
func (p *pipeline) inspectResult(ctx context.Context, c *Call) error {
	var err error
	if p.d.Inspector != nil && c.Result != nil {
		err = p.d.Inspector.Result(ctx, c)
	}
	touched := SessionFlow{}
	if c.Target != nil && c.Target.Kind != KindProtocol {
		touched.MaxDataClass = c.Target.DataClass
	}
	if s := c.Scan; s != nil {
		touched.SecretsSeen = len(s.ResultSecrets) > 0
		for _, f := range s.Injections {
			touched.Tainted = touched.Tainted || f.Severity == SeverityHigh
		}
	}
	if touched != (SessionFlow{}) {
		p.d.Flows.Add(flowKey(c), touched) // nothing touched: no entry
	}
	return err
}

// flowKey names the session whose flow a call adds to: its session key,
// or, for a request with neither an MCP session nor a token (stateless
// HTTP with anonymous identity), its agent, so that what one request
// touched still counts for the next.
func flowKey(c *Call) string {
	if c.Session.Transport == TransportHook && c.Session.Key != "" && c.Agent != nil {
		// The client names a hook's session itself: scoped to the agent,
		// so that one agent cannot taint another's session by naming it.
		return c.Agent.ID + "/" + c.Session.Key
	}
	if c.Session.Key != "" {
		return c.Session.Key
	}
	if c.Agent != nil && c.Agent.ID != "" {
		return "agent-" + c.Agent.ID
	}
	return ""
}

// writeAhead commits the forwarding record of a call that may change
// things before it is forwarded, so that a crash between the upstream's
// action and the outcome record cannot leave the action unrecorded. A
// failure to write it refuses the call.
func (p *pipeline) writeAhead(ctx context.Context, c *Call) error {
	if !NeedsWriteAhead(c) || c.ForwardID != "" {
		return nil
	}
	rec := NewForwardingRecord(c, p.now())
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.d.Recorder.Record(wctx, rec); err != nil {
		p.logger().Error("write-ahead record failed; call not forwarded", "call", c.ID, "err", err)
		return fmt.Errorf("%w: the call's write-ahead record could not be written, so it was not forwarded; "+
			"an operator must check the mediator's database", ErrAudit)
	}
	c.ForwardID = rec.ID
	return nil
}

// RecordRejection returns a function that records a request refused before
// it reached the chain's later steps (a malformed body, an unknown session,
// a credential the transport refused, a tool mcp-go could not find). It uses
// the chain's own record step, so such records look like any other.
func RecordRejection(d Deps) func(ctx context.Context, c *Call, cause error) error {
	p := &pipeline{d: d}
	return func(ctx context.Context, c *Call, cause error) error {
		if c.Decision.Effect == "" {
			c.Decision = Decision{Effect: EffectDeny, Reason: cause.Error()}
		}
		return p.record(func(context.Context, *Call) error { return cause })(ctx, c)
	}
}

// explainTrust adds the agent's lowered trust to a refusal or an approval:
// the agent (and the approver) learns that behaviour is the cause, and the
// operator how to review it.
func explainTrust(d Decision, c *Call) Decision {
	b := c.Behaviour
	if b == nil || d.Effect == EffectAllow || b.Trust == "" || b.Trust == TrustHigh {
		return d
	}
	why := ""
	if b.TrustReason != "" {
		why = " (" + b.TrustReason + ")"
	}
	d.Reason += fmt.Sprintf("; agent %s is at trust %s%s: an operator can review it with `mediator agent show %s` and restore it with `mediator agent trust set %s LEVEL --reason TEXT`",
		c.Agent.ID, b.Trust, why, c.Agent.ID, c.Agent.ID)
	return d
}

// effectRank orders effects by strictness.
func effectRank(e Effect) int {
	switch e {
	case EffectAllow:
		return 0
	case EffectApprove:
		return 1
	}
	return 2
}

// tighten applies the LLM judge's opinion to a policy decision. The judge
// can only make it stricter: allow → approve or deny, approve → deny.
func tighten(d Decision, j *JudgeResult) Decision {
	if j == nil || effectRank(j.Effect) <= effectRank(d.Effect) {
		return d
	}
	why := fmt.Sprintf("the intent judge scored this call %.2f for the task's purpose", j.Score)
	if j.Rationale != "" {
		why += " (" + j.Rationale + ")"
	}
	if j.Fallback != "" {
		why = "the intent judge could not answer (" + j.Fallback + "), so its fallback applies"
	}
	orig := string(d.Effect)
	if d.Rule != "" {
		orig += " by rule " + d.Rule
	}
	d.Reason = why + "; policy said " + orig
	d.Effect = j.Effect
	d.Rule = "intent.judge"
	return d
}
