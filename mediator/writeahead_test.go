package mediator

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// A call that may change things is recorded before it is forwarded; its
// outcome record names the write-ahead record. A read-only call keeps one
// record. A write-ahead record that cannot be written refuses the call
// before anything reaches the upstream.
func TestWriteAhead(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		tool      string
		failFwd   bool
		records   []Outcome
		forwarded bool
		wantErr   error
	}{
		{name: "a tool not marked read-only", tool: "demo__pay", records: []Outcome{OutcomeForwarding, OutcomeOK}, forwarded: true},
		{name: "a read-only tool", tool: "demo__echo", records: []Outcome{OutcomeOK}, forwarded: true},
		{name: "the write-ahead record fails", tool: "demo__pay", failFwd: true, records: []Outcome{OutcomeDenied}, wantErr: ErrAudit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &fakeRecorder{}
			if tc.failFwd {
				rec.failForwarding = errors.New("disk full")
			}
			var order []string
			up := &fakeUpstreams{cat: testCatalog(), callTool: func(ctx context.Context, tl Tool, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				order = append(order, "forwarded with "+strconv.Itoa(len(rec.all()))+" records")
				return echoResult(ctx, tl, r)
			}}
			d := newTestDeps(rec, up)
			d.Authorizer = fakeAuthz{decide: func(AuthzRequest) (Decision, error) { return Decision{Effect: EffectAllow, Rule: "all"}, nil }}
			err := BuildChain(d)(t.Context(), toolCall(tc.tool, map[string]any{"amount": 5.0}))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if (len(order) > 0) != tc.forwarded {
				t.Fatalf("forwarded %v, want %v", order, tc.forwarded)
			}
			recs := rec.all()
			if len(recs) != len(tc.records) {
				t.Fatalf("records %+v, want outcomes %v", recs, tc.records)
			}
			for i, o := range tc.records {
				if recs[i].Outcome != o {
					t.Fatalf("record %d outcome %s, want %s", i, recs[i].Outcome, o)
				}
			}
			if len(recs) == 2 {
				fwd, out := recs[0], recs[1]
				if out.Ref != fwd.ID || fwd.ID == out.ID || fwd.Result != nil || string(fwd.Arguments) != `{"amount":5}` {
					t.Fatalf("forwarding %+v, outcome %+v", fwd, out)
				}
				if order[0] != "forwarded with 1 records" {
					t.Fatalf("the upstream was called %s", order[0])
				}
			}
		})
	}
}
