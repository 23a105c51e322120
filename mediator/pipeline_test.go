package mediator

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

func newTestDeps(rec *fakeRecorder, up *fakeUpstreams) Deps {
	return Deps{
		Upstreams:     up,
		Authenticator: fakeAuthn{agent: &Agent{ID: "agent-1", Roles: []string{"r"}}},
		Authorizer:    fakeAuthz{decide: allowEcho},
		Recorder:      rec,
	}
}

func toolCall(name string, args map[string]any) *Call {
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	return &Call{ID: "c1", Method: "tools/call", Name: name, Arguments: args, Request: &req,
		Session: SessionInfo{ID: "s1", Transport: "stdio"}}
}

func TestChainOutcomes(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	cases := []struct {
		name      string
		call      *Call
		authz     func(AuthzRequest) (Decision, error)
		approver  Approver
		upstream  func(context.Context, Tool, mcp.CallToolRequest) (*mcp.CallToolResult, error)
		wantErr   error
		outcome   Outcome
		forwarded bool
	}{
		{name: "allowed call is forwarded and recorded ok", call: toolCall("demo__echo", map[string]any{"message": "hi"}),
			outcome: OutcomeOK, forwarded: true},
		{name: "unknown tool is refused without forwarding", call: toolCall("nope", nil),
			wantErr: ErrUnknownTool, outcome: OutcomeDenied},
		{name: "policy deny is a denial", call: toolCall("demo__pay", nil),
			wantErr: ErrDenied, outcome: OutcomeDenied},
		{name: "policy error fails closed", call: toolCall("demo__echo", nil),
			authz:   func(AuthzRequest) (Decision, error) { return Decision{Effect: EffectAllow}, boom },
			wantErr: ErrPolicy, outcome: OutcomeDenied},
		{name: "unknown effect fails closed", call: toolCall("demo__echo", nil),
			authz:   func(AuthzRequest) (Decision, error) { return Decision{Effect: "maybe"}, nil },
			wantErr: ErrPolicy, outcome: OutcomeDenied},
		{name: "approve without an approver is refused", call: toolCall("demo__echo", nil),
			authz:   func(AuthzRequest) (Decision, error) { return Decision{Effect: EffectApprove, Rule: "ask"}, nil },
			wantErr: ErrApprovalUnavailable, outcome: OutcomeDenied},
		{name: "approver says no", call: toolCall("demo__echo", nil),
			authz:    func(AuthzRequest) (Decision, error) { return Decision{Effect: EffectApprove, Rule: "ask"}, nil },
			approver: fakeApprover{await: func(Pending) (Verdict, error) { return Verdict{Approved: false, Approver: "bob", Reason: "no"}, nil }},
			wantErr:  ErrDenied, outcome: OutcomeDenied},
		{name: "approver says yes", call: toolCall("demo__echo", nil),
			authz:    func(AuthzRequest) (Decision, error) { return Decision{Effect: EffectApprove, Rule: "ask"}, nil },
			approver: fakeApprover{await: func(Pending) (Verdict, error) { return Verdict{Approved: true}, nil }},
			outcome:  OutcomeOK, forwarded: true},
		{name: "upstream failure is failed", call: toolCall("demo__echo", nil),
			upstream: func(context.Context, Tool, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return nil, ErrUpstreamUnavailable
			},
			wantErr: ErrUpstreamUnavailable, outcome: OutcomeFailed, forwarded: true},
		{name: "tool error result is recorded as tool_error", call: toolCall("demo__echo", nil),
			upstream: func(context.Context, Tool, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultError("bad"), nil
			},
			outcome: OutcomeToolError, forwarded: true},
		{name: "panic fails closed and is recorded", call: toolCall("demo__echo", nil),
			upstream: func(context.Context, Tool, mcp.CallToolRequest) (*mcp.CallToolResult, error) { panic("x") },
			wantErr:  ErrInternal, outcome: OutcomeFailed, forwarded: true},
		{name: "shadow deny is forwarded and recorded with the would-be decision", call: toolCall("demo__pay", nil),
			authz: func(AuthzRequest) (Decision, error) {
				return Decision{Effect: EffectDeny, Rule: "r", Shadow: true}, nil
			},
			outcome: OutcomeOK, forwarded: true},
		{name: "protocol method allowed by the method table", call: &Call{Method: "tools/list"}, outcome: OutcomeOK},
		{name: "unknown protocol method", call: &Call{Method: "tasks/lst"}, wantErr: ErrMethodNotAllowed, outcome: OutcomeDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &fakeRecorder{}
			forwarded := false
			up := &fakeUpstreams{cat: testCatalog(), callTool: func(ctx context.Context, tl Tool, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				forwarded = true
				if tc.upstream != nil {
					return tc.upstream(ctx, tl, r)
				}
				return echoResult(ctx, tl, r)
			}}
			d := newTestDeps(rec, up)
			if tc.authz != nil {
				d.Authorizer = fakeAuthz{decide: tc.authz}
			}
			d.Approver = tc.approver
			err := BuildChain(d)(t.Context(), tc.call)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if forwarded != tc.forwarded {
				t.Fatalf("forwarded = %v, want %v", forwarded, tc.forwarded)
			}
			recs := rec.all()
			if len(recs) == 2 && recs[0].Outcome == OutcomeForwarding {
				// A call that may change things: its write-ahead record first.
				if !tc.forwarded || recs[1].Ref != recs[0].ID {
					t.Fatalf("write-ahead record %+v, outcome %+v", recs[0], recs[1])
				}
				recs = recs[1:]
			}
			if len(recs) != 1 {
				t.Fatalf("got %d records, want exactly 1", len(recs))
			}
			if recs[0].Outcome != tc.outcome {
				t.Fatalf("outcome = %s, want %s (record %+v)", recs[0].Outcome, tc.outcome, recs[0])
			}
			if err != nil && recs[0].Decision.Effect == EffectAllow && recs[0].Outcome == OutcomeDenied {
				t.Fatal("a denied call is recorded with effect allow")
			}
		})
	}
}

func TestChainRecordHoldsTheCall(t *testing.T) {
	t.Parallel()
	rec := &fakeRecorder{}
	up := &fakeUpstreams{cat: testCatalog(), callTool: echoResult}
	c := toolCall("demo__echo", map[string]any{"message": "hi", "b": 1})
	c.Prompt = "say hi"
	if err := BuildChain(newTestDeps(rec, up))(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	r := rec.all()[0]
	if r.AgentID != "agent-1" || r.Server != "demo" || r.Name != "demo__echo" || r.ToolHash != "h1" ||
		r.Prompt != "say hi" || r.Decision.Rule != "echo" || r.SessionID != "s1" {
		t.Fatalf("record misses call data: %+v", r)
	}
	if string(r.Arguments) != `{"b":1,"message":"hi"}` {
		t.Fatalf("arguments not canonical: %s", r.Arguments)
	}
	if !strings.Contains(string(r.Result), "echo:hi") {
		t.Fatalf("result not recorded: %s", r.Result)
	}
}

func TestChainFailsClosedOnAudit(t *testing.T) {
	t.Parallel()
	t.Run("unhealthy recorder: nothing forwarded", func(t *testing.T) {
		rec := &fakeRecorder{healthy: errors.New("disk full")}
		forwarded := false
		up := &fakeUpstreams{cat: testCatalog(), callTool: func(ctx context.Context, tl Tool, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			forwarded = true
			return echoResult(ctx, tl, r)
		}}
		deps := newTestDeps(rec, up)
		deps.Health = rec
		err := BuildChain(deps)(t.Context(), toolCall("demo__echo", nil))
		if !errors.Is(err, ErrAudit) || forwarded {
			t.Fatalf("err=%v forwarded=%v, want ErrAudit and no forward", err, forwarded)
		}
	})
	t.Run("record fails: result withheld", func(t *testing.T) {
		rec := &fakeRecorder{err: errors.New("write failed")}
		up := &fakeUpstreams{cat: testCatalog(), callTool: echoResult}
		c := toolCall("demo__echo", nil)
		err := BuildChain(newTestDeps(rec, up))(t.Context(), c)
		if !errors.Is(err, ErrAudit) || c.Result != nil {
			t.Fatalf("err=%v result=%v, want ErrAudit and no result", err, c.Result)
		}
	})
}

func TestChainCancelledCallIsRecorded(t *testing.T) {
	t.Parallel()
	rec := &fakeRecorder{}
	ctx, cancel := context.WithCancel(t.Context())
	up := &fakeUpstreams{cat: testCatalog(), callTool: func(ctx context.Context, _ Tool, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		cancel()
		<-ctx.Done()
		return nil, ErrUpstreamUnavailable
	}}
	err := BuildChain(newTestDeps(rec, up))(ctx, toolCall("demo__echo", nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := rec.all(); len(got) != 1 || got[0].Outcome != OutcomeCancelled {
		t.Fatalf("records = %+v, want one cancelled", got)
	}
}

func BenchmarkChainAllowed(b *testing.B) {
	rec := &fakeRecorder{}
	up := &fakeUpstreams{cat: testCatalog(), callTool: echoResult}
	h := BuildChain(newTestDeps(rec, up))
	args := map[string]any{"message": "hi"}
	b.ReportAllocs()
	for b.Loop() {
		rec.records = rec.records[:0]
		if err := h(b.Context(), toolCall("demo__echo", args)); err != nil {
			b.Fatal(err)
		}
	}
}
