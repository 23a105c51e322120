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

// subscriber is an agent session that counts its resource updates.
type subscriber struct {
	c       *client.Client
	updated chan string
}

func newSubscriber(t *testing.T, url string) *subscriber {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithContinuousListening()) //lint:ignore SA1019 the legacy GET stream is what 2025-11-25 clients use
	if err != nil {
		t.Fatal(err)
	}
	s := &subscriber{c: client.NewClient(tr), updated: make(chan string, 16)}
	s.c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/resources/updated" {
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			s.updated <- uri
		}
	})
	initClient(t, s.c)
	return s
}

func (s *subscriber) subscription(t *testing.T, unsubscribe bool, uri string) {
	t.Helper()
	var err error
	if unsubscribe {
		req := mcp.UnsubscribeRequest{}
		req.Params.URI = uri
		err = s.c.Unsubscribe(t.Context(), req) //lint:ignore SA1019 resources/unsubscribe is how 2025-11-25 clients unsubscribe
	} else {
		req := mcp.SubscribeRequest{}
		req.Params.URI = uri
		err = s.c.Subscribe(t.Context(), req) //lint:ignore SA1019 resources/subscribe is how 2025-11-25 clients subscribe
	}
	if err != nil {
		t.Fatalf("(un)subscribe %s: %v", uri, err)
	}
}

// got reports whether an update for uri arrives within wait.
func (s *subscriber) got(uri string, wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case u := <-s.updated:
			if u == uri {
				return true
			}
		case <-t.C:
			return false
		}
	}
}

// Issue 18, item 1: agents share one upstream session, so the upstream holds
// one subscription for all of them. One agent's unsubscribe, or one for a
// resource it never subscribed to, must not end another's updates: the
// unsubscribe reaches the upstream only when the last listener leaves.
// (Before: every unsubscribe was forwarded, and B's updates stopped.) The
// fake upstream honours subscriptions per session, as a real server does.
func TestE2ESharedSubscriptionsCounted(t *testing.T) {
	t.Parallel()
	p := startServe(t, policyFragment(t, "p, *, tool, fake__*, allow, fake-all\np, *, resource, fake://readme, allow, readme\n")+`
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
upstreams:
  - name: fake
    command: `+buildTool(t, "tools/testdata/fakeupstream")+"\n")
	const uri = "fake://readme"
	a, b, c := newSubscriber(t, p.URL), newSubscriber(t, p.URL), newSubscriber(t, p.URL)
	a.subscription(t, false, uri)
	b.subscription(t, false, uri)
	touch := func(want string) {
		t.Helper()
		if out := resultText(callTool(t, c.c, "fake__touch", nil)); !strings.Contains(out, want) {
			t.Fatalf("touch: %q, want %q", out, want)
		}
	}

	c.subscription(t, true, uri) // C never subscribed
	touch("1 subscribed sessions notified")
	if !a.got(uri, 10*time.Second) || !b.got(uri, 10*time.Second) {
		t.Fatal("after an unsubscribe by an agent that never subscribed, A or B got no update")
	}
	a.subscription(t, true, uri)
	touch("1 subscribed sessions notified")
	if !b.got(uri, 10*time.Second) {
		t.Fatal("after A unsubscribed, B (still subscribed) got no update")
	}
	if a.got(uri, 300*time.Millisecond) {
		t.Fatal("A got an update after unsubscribing")
	}
	b.subscription(t, true, uri) // the last listener: now the upstream is told
	touch("0 subscribed sessions notified")
}
