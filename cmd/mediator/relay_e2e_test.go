package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

type fakeLLM struct{}

func (fakeLLM) CreateMessage(_ context.Context, _ mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return &mcp.CreateMessageResult{Model: "agent-side-model",
		SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("hi from the agent")}}, nil
}

type fakeUser struct{}

func (fakeUser) Elicit(_ context.Context, _ mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept,
		Content: map[string]any{"name": "Ada"}}}, nil
}

// An upstream's sampling and elicitation requests reach the agent whose call
// caused them, when its client supports them, and the answers flow back;
// logging notifications reach the caller too.
func TestE2ESamplingElicitationLogging(t *testing.T) {
	t.Parallel()
	p := startServe(t, fakeConfig(t, ""))
	tr, err := transport.NewStreamableHTTP(p.URL, transport.WithContinuousListening()) //lint:ignore SA1019 the legacy GET stream is what 2025-11-25 clients use
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithSamplingHandler(fakeLLM{}), client.WithElicitationHandler(fakeUser{}))
	var mu sync.Mutex
	var logs []string
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/message" {
			mu.Lock()
			logs = append(logs, "log")
			mu.Unlock()
		}
	})
	initClient(t, c)
	if out := resultText(callTool(t, c, "fake__sample", nil)); !strings.Contains(out, "agent-side-model") || !strings.Contains(out, "hi from the agent") {
		t.Fatalf("sampling not relayed: %s", out)
	}
	if out := resultText(callTool(t, c, "fake__elicit", nil)); !strings.Contains(out, "accept") || !strings.Contains(out, "Ada") {
		t.Fatalf("elicitation not relayed: %s", out)
	}
	callTool(t, c, "fake__progress", map[string]any{"steps": 2, "linger_ms": 300})
	mu.Lock()
	defer mu.Unlock()
	if len(logs) == 0 {
		t.Fatal("no logging notification reached the calling agent")
	}

	// A client without the capabilities gets a clear refusal, not a hang.
	plain := httpClient(t, p.URL)
	if out := resultText(callTool(t, plain, "fake__sample", nil)); !strings.Contains(out, "sampling") {
		t.Fatalf("sampling without client support: %s", out)
	}
}

// A subscription is decided by policy, forwarded upstream, and the
// upstream's updates reach the subscribed agent.
func TestE2EResourceSubscription(t *testing.T) {
	t.Parallel()
	cfg := policyFragment(t, "p, *, tool, fake__*, allow, fake-all\np, *, resource, fake://readme, allow, readme\n") + `
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + "\n"
	p := startServe(t, cfg)
	tr, err := transport.NewStreamableHTTP(p.URL, transport.WithContinuousListening()) //lint:ignore SA1019 the legacy GET stream is what 2025-11-25 clients use
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	updated := make(chan string, 4)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/resources/updated" {
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			updated <- uri
		}
	})
	initClient(t, c)
	sub := mcp.SubscribeRequest{}
	sub.Params.URI = "fake://readme"
	//lint:ignore SA1019 resources/subscribe is how 2025-11-25 clients subscribe
	if err := c.Subscribe(t.Context(), sub); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	callTool(t, c, "fake__touch", nil)
	select {
	case uri := <-updated:
		if uri != "fake://readme" {
			t.Fatalf("update for %q", uri)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no notifications/resources/updated reached the subscribed agent")
	}
	denied := mcp.SubscribeRequest{}
	denied.Params.URI = "fake://items/1"
	//lint:ignore SA1019 as above
	if err := c.Subscribe(t.Context(), denied); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("subscribing to a resource no rule allows: err = %v, want a denial", err)
	}
}
