package main

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mcp-mediator/mediator/mediator"
)

// otlpReceiver is an OTLP/HTTP trace receiver: the protobuf a collector
// accepts at /v1/traces, decoded with the OTLP protocol's own types.
type otlpReceiver struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	raw   []byte // every request body, to search for what must not be there
	svc   map[string]bool
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{t: t, svc: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP receiver: %s %s (%s)", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
			http.Error(w, "want POST /v1/traces", http.StatusBadRequest)
			return
		}
		if got := req.Header.Get("X-Collector-Key"); got != "k3y-from-env" {
			t.Errorf("OTLP export without the headers_env header: %q", got)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ex coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &ex); err != nil {
			t.Errorf("OTLP body: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.raw = append(r.raw, body...)
		for _, rs := range ex.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					r.svc[kv.GetValue().GetStringValue()] = true
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				r.spans = append(r.spans, ss.GetSpans()...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// trace returns the spans of one trace id (hex), waiting until want spans
// have arrived (the mediator exports in batches).
func (r *otlpReceiver) trace(traceID string, want int) []*tracepb.Span {
	r.t.Helper()
	var got []*tracepb.Span
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r.mu.Lock()
		got = got[:0]
		for _, s := range r.spans {
			if hex.EncodeToString(s.GetTraceId()) == traceID {
				got = append(got, s)
			}
		}
		r.mu.Unlock()
		if len(got) >= want {
			return got
		}
	}
	r.t.Fatalf("trace %s: %d spans arrived, want %d: %v", traceID, len(got), want, spanNames(got))
	return nil
}

func spanNames(spans []*tracepb.Span) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.GetName())
	}
	return n
}

func spanAttr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() != key {
			continue
		}
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue
		case *commonpb.AnyValue_BoolValue:
			return strconv.FormatBool(v.BoolValue)
		case *commonpb.AnyValue_IntValue:
			return strconv.FormatInt(v.IntValue, 10)
		}
	}
	return ""
}

// spanTree indexes a trace: its server span (the call), and the children
// of each span by name.
type spanTree struct {
	t        *testing.T
	call     *tracepb.Span
	children map[string]*tracepb.Span
}

func newSpanTree(t *testing.T, spans []*tracepb.Span, callName string) spanTree {
	t.Helper()
	tr := spanTree{t: t, children: map[string]*tracepb.Span{}}
	for _, s := range spans {
		if s.GetName() == callName && s.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
			tr.call = s
		}
	}
	if tr.call == nil {
		t.Fatalf("no server span %q in %v", callName, spanNames(spans))
	}
	for _, s := range spans {
		if string(s.GetParentSpanId()) == string(tr.call.GetSpanId()) {
			tr.children[s.GetName()] = s
		}
	}
	return tr
}

func (tr spanTree) child(name string) *tracepb.Span {
	tr.t.Helper()
	s := tr.children[name]
	if s == nil {
		tr.t.Fatalf("span %q has no child %q; its children: %v", tr.call.GetName(), name, keys(tr.children))
	}
	return s
}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// callWithTrace calls a tool with a W3C traceparent in _meta.
func callWithTrace(t *testing.T, c *client.Client, name string, args map[string]any, traceparent string) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	req.Params.Meta = mcp.NewMetaFromMap(map[string]any{mediator.PromptMetaKey: "SECRET-PROMPT-77", "traceparent": traceparent})
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

// One trace spans agent → mediator → upstream: the agent's trace context
// (from _meta, or from the HTTP header) is the call span's parent; each
// step is a child of the call span; the forward span's context reaches a
// stdio upstream in _meta and an HTTP upstream in its traceparent header.
// A denied call and an approved one have the span trees they should, and
// no span holds an argument, the prompt or a token.
func TestE2ETraces(t *testing.T) {
	t.Parallel()
	rcv := newOTLPReceiver(t)
	webURL := startRemoteUpstream(t, "http")
	cfg := policyFragment(t, "p, *, tool, fake__echo, deny, no-echo\n"+
		"p, *, tool, fake__wipe, approve, wipe-needs-a-human\n"+
		"p, *, tool, fake__*, allow, fake-all\n"+
		"p, *, tool, web__*, allow, web-all\n") + `
agent: {id: trace-agent}
auth: {anonymous: {id: trace-agent, owner: olivia}}
approvals: {hold: 100ms}
tracing: {endpoint: "` + rcv.srv.URL + `", service_name: e2e-mediator, headers_env: E2E_OTLP_HEADERS}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + `
  - name: web
    url: ` + webURL + `
`
	// OTEL_BSP_SCHEDULE_DELAY (the SDK's batch interval, 5 s by default)
	// makes the spans arrive within the test's polls.
	p := startServe(t, cfg, "E2E_OTLP_HEADERS=X-Collector-Key=k3y-from-env", "OTEL_BSP_SCHEDULE_DELAY=200")
	c := httpClient(t, p.URL)

	const (
		agentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		agentSpan  = "00f067aa0ba902b7"
	)
	// A stdio upstream: the trace context arrives in _meta.
	res := callWithTrace(t, c, "fake__trace", map[string]any{"x": "SECRET-ARG-42"}, "00-"+agentTrace+"-"+agentSpan+"-01")
	if res.IsError {
		t.Fatalf("fake__trace: %s", resultText(res))
	}
	spans := rcv.trace(agentTrace, 5)
	tree := newSpanTree(t, spans, "tools/call fake__trace")
	if hex.EncodeToString(tree.call.GetParentSpanId()) != agentSpan {
		t.Errorf("call span parent %x, want the agent's span %s", tree.call.GetParentSpanId(), agentSpan)
	}
	fwd := tree.child("tools/call trace")
	if fwd.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("forward span kind %v, want client", fwd.GetKind())
	}
	want := "meta=00-" + agentTrace + "-" + hex.EncodeToString(fwd.GetSpanId()) + "-01;header="
	if got := resultText(res); got != want {
		t.Errorf("the stdio upstream saw %q, want the forward span in _meta: %q", got, want)
	}
	for _, step := range []string{"mediator.authenticate", "mediator.policy", "mediator.record"} {
		tree.child(step)
	}
	for k, v := range map[string]string{"mcp.method.name": "tools/call", "gen_ai.tool.name": "fake__trace", "mediator.decision": "allow",
		"mediator.rule": "fake-all", "mediator.outcome": "ok", "mediator.agent.id": "trace-agent", "mediator.upstream": "fake", "network.transport": "tcp"} {
		if got := spanAttr(tree.call, k); got != v {
			t.Errorf("call span %s = %q, want %q", k, got, v)
		}
	}

	// An HTTP upstream, the agent's context in its HTTP header: the
	// upstream receives the forward span in its traceparent header.
	const headerTrace = "5bf92f3577b34da6a3ce929d0e0e4737"
	tr, err := transport.NewStreamableHTTP(p.URL, transport.WithHTTPHeaders(map[string]string{"Traceparent": "00-" + headerTrace + "-10f067aa0ba902b7-01"}))
	if err != nil {
		t.Fatal(err)
	}
	hc := initClient(t, client.NewClient(tr))
	res = callTool(t, hc, "web__trace", nil)
	if res.IsError {
		t.Fatalf("web__trace: %s", resultText(res))
	}
	web := newSpanTree(t, rcv.trace(headerTrace, 4), "tools/call web__trace")
	wfwd := web.child("tools/call trace")
	wantTP := "00-" + headerTrace + "-" + hex.EncodeToString(wfwd.GetSpanId()) + "-01"
	if got := resultText(res); !strings.Contains(got, "header="+wantTP) || !strings.Contains(got, "meta="+wantTP) {
		t.Errorf("the HTTP upstream saw %q, want %s in its header and _meta", got, wantTP)
	}

	// A denied call: decided by policy, never forwarded, not an error.
	const deniedTrace = "6bf92f3577b34da6a3ce929d0e0e4738"
	if res := callWithTrace(t, c, "fake__echo", map[string]any{"text": "SECRET-ARG-42"}, "00-"+deniedTrace+"-20f067aa0ba902b7-01"); !res.IsError {
		t.Fatal("fake__echo was not denied")
	}
	denied := newSpanTree(t, rcv.trace(deniedTrace, 4), "tools/call fake__echo")
	if _, ok := denied.children["tools/call echo"]; ok {
		t.Error("a denied call has a forward span")
	}
	if got := spanAttr(denied.child("mediator.policy"), "mediator.decision"); got != "deny" {
		t.Errorf("policy span decision %q, want deny", got)
	}
	for k, v := range map[string]string{"mediator.decision": "deny", "mediator.rule": "no-echo", "mediator.outcome": "denied", "error.type": "denied"} {
		if got := spanAttr(denied.call, k); got != v {
			t.Errorf("denied call span %s = %q, want %q", k, got, v)
		}
	}
	if denied.call.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Error("a denial is marked as a failure of the mediator")
	}

	// An approved call: pending first (its approval span ends as such),
	// approved on the page, then asked again in the same trace.
	const approvedTrace = "7bf92f3577b34da6a3ce929d0e0e4739"
	tp := "00-" + approvedTrace + "-30f067aa0ba902b7-01"
	id, _ := pendingMeta(t, callWithTrace(t, c, "fake__wipe", map[string]any{"target": "SECRET-ARG-42"}, tp))
	if out, err := approverCLI(t, p.DB, testPassword+"\n", "add", "alice", "--role", "approver"); err != nil {
		t.Fatalf("approver add: %v\n%s", err, out)
	}
	approveOverHTTP(t, p, "alice", id)
	if res := callWithTrace(t, c, "fake__wipe", map[string]any{"target": "SECRET-ARG-42"}, tp); res.IsError {
		t.Fatalf("approved wipe: %s", resultText(res))
	}
	all := rcv.trace(approvedTrace, 15) // the pending call's 7 spans, the approved call's 8
	var pending, approved *tracepb.Span
	for _, s := range all {
		if s.GetName() == "tools/call fake__wipe" && s.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
			switch spanAttr(s, "mediator.outcome") {
			case "denied", "failed":
				pending = s
			case "ok":
				approved = s
			}
		}
	}
	if pending == nil || approved == nil {
		t.Fatalf("want a pending and an approved wipe call span, got %v", spanNames(all))
	}
	if got := spanAttr(pending, "error.type"); got != "approval_pending" {
		t.Errorf("the pending call's error.type %q, want approval_pending", got)
	}
	kids := map[string]*tracepb.Span{}
	for _, s := range all {
		if string(s.GetParentSpanId()) == string(approved.GetSpanId()) {
			kids[s.GetName()] = s
		}
	}
	if a := kids["mediator.approval"]; a == nil || spanAttr(a, "mediator.approval.approved") != "true" {
		t.Errorf("the approved call has no approval span saying approved: %v", keys(kids))
	}
	if kids["tools/call wipe"] == nil {
		t.Errorf("the approved call has no forward span: %v", keys(kids))
	}
	if spanAttr(approved, "mediator.approval.id") != id {
		t.Errorf("approved call span approval id %q, want %s", spanAttr(approved, "mediator.approval.id"), id)
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, secret := range []string{"SECRET-ARG-42", "SECRET-PROMPT-77"} {
		if strings.Contains(string(rcv.raw), secret) {
			t.Errorf("an exported span holds %q", secret)
		}
	}
	if !rcv.svc["e2e-mediator"] {
		t.Errorf("service.name of the spans: %v, want e2e-mediator", rcv.svc)
	}
}
