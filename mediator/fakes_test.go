package mediator

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
)

// Hand-written fakes with function fields (see STYLE.md). The pipeline's
// real parts are exercised end to end in cmd/mediator with real upstream
// subprocesses; these isolate the chain's own logic.

type fakeUpstreams struct {
	cat      *Catalog
	callTool func(ctx context.Context, t Tool, req mcp.CallToolRequest) (*mcp.CallToolResult, error)
	mu       sync.Mutex
	onChange []func(*Catalog)
}

func (f *fakeUpstreams) Catalog() *Catalog { return f.cat }
func (f *fakeUpstreams) CallTool(ctx context.Context, t Tool, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return f.callTool(ctx, t, req)
}
func (f *fakeUpstreams) ReadResource(context.Context, string, mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	return &mcp.ReadResourceResult{Contents: []mcp.ResourceContents{mcp.TextResourceContents{URI: "x://y", Text: "hello"}}}, nil
}
func (f *fakeUpstreams) GetPrompt(context.Context, Prompt, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	return &mcp.GetPromptResult{Description: "p"}, nil
}
func (f *fakeUpstreams) Complete(context.Context, string, mcp.CompleteRequest) (*CompleteResult, error) {
	return &CompleteResult{}, nil
}
func (f *fakeUpstreams) OnChange(fn func(*Catalog)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onChange = append(f.onChange, fn)
}

func (f *fakeUpstreams) Subscribe(context.Context, string, string) error       { return nil }
func (f *fakeUpstreams) Unsubscribe(context.Context, string, string) error     { return nil }
func (f *fakeUpstreams) OnResourceUpdated(func(string, string, string))        {}
func (f *fakeUpstreams) EndSession(string)                                     {}
func (f *fakeUpstreams) Isolated(string) bool                                  { return false }
func (f *fakeUpstreams) SetLogLevel(context.Context, string, mcp.LoggingLevel) {}
func (f *fakeUpstreams) OnLog(func(string, string, map[string]any))            {}
func (f *fakeUpstreams) RootsChanged(string)                                   {}

type fakeRecorder struct {
	mu      sync.Mutex
	records []ChainRecord
	err     error
	healthy error
	// failForwarding fails write-ahead records only.
	failForwarding error
}

func (f *fakeRecorder) Record(_ context.Context, r ChainRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if f.failForwarding != nil && r.Outcome == OutcomeForwarding {
		return f.failForwarding
	}
	f.records = append(f.records, r)
	return nil
}

func (f *fakeRecorder) Healthy() error { return f.healthy }

func (f *fakeRecorder) all() []ChainRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ChainRecord(nil), f.records...)
}

type fakeAuthz struct {
	decide func(AuthzRequest) (Decision, error)
}

func (f fakeAuthz) Decide(_ context.Context, r AuthzRequest) (Decision, error) { return f.decide(r) }

type fakeAuthn struct{ agent *Agent }

func (f fakeAuthn) Authenticate(context.Context, Credentials) (*Agent, error) { return f.agent, nil }

type fakeApprover struct {
	await func(Pending) (Verdict, error)
}

func (f fakeApprover) Await(_ context.Context, p Pending) (Verdict, error) { return f.await(p) }

func testCatalog() *Catalog {
	def := json.RawMessage(`{"name":"demo__echo","inputSchema":{"type":"object","oneOf":[{"required":["a"]},{"required":["b"]}],"$defs":{"x":{"type":"string"}}},"annotations":{"readOnlyHint":true}}`)
	return NewCatalog([]Tool{
		{Name: "demo__echo", Server: "demo", Original: "echo", Definition: def, Risk: RiskLow, Hash: "h1", Hints: Hints{ReadOnly: &readOnly}},
		{Name: "demo__pay", Server: "demo", Original: "pay", Definition: json.RawMessage(`{"name":"demo__pay","inputSchema":{"type":"object"}}`), Risk: RiskHigh, Hash: "h2"},
	}, nil, nil, nil, []ServerState{{Name: "demo", Connected: true}})
}

var readOnly = true

func allowEcho(r AuthzRequest) (Decision, error) {
	if r.Target.Name == "demo__echo" {
		return Decision{Effect: EffectAllow, Rule: "echo"}, nil
	}
	return Decision{Effect: EffectDeny, Rule: "default"}, nil
}

func echoResult(_ context.Context, _ Tool, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText("echo:" + req.GetString("message", "")), nil
}
