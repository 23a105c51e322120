package mediator

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// The upstream's completion goes out as sent only while it still says what
// the parsed result says.
func TestExactCompletion(t *testing.T) {
	parsed := func(raw string) *CompleteResult {
		var res CompleteResult
		if err := json.Unmarshal([]byte(`{"completion":`+raw+`}`), &res.CompleteResult); err != nil {
			t.Fatal(err)
		}
		res.RawCompletion = json.RawMessage(raw)
		return &res
	}
	cases := []struct {
		name string
		res  *CompleteResult
		want string
	}{
		{"hasMore false kept", parsed(`{"values":["a"], "total":0, "hasMore":false}`), `{"values":["a"],"total":0,"hasMore":false}`},
		{"none sent", &CompleteResult{}, ""},
		{"values changed on the way", func() *CompleteResult {
			r := parsed(`{"values":["secret"]}`)
			r.Completion.Values = []string{"[redacted]"}
			return r
		}(), ""},
		{"values null", parsed(`{"values":null}`), ""},
		{"a member mcp-go drops", parsed(`{"values":["a"],"note":"secret"}`), ""},
		{"a key given twice", parsed(`{"values":["secret"],"values":["a"]}`), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := exactCompletion(c.res); string(got) != c.want {
				t.Errorf("exactCompletion = %s, want %q", got, c.want)
			}
		})
	}
}

// What begin keeps for a request's context is found by the provider and
// taken once by the after (or error) hook.
func TestCompletionsByContext(t *testing.T) {
	var cs inflight
	ctx, other := context.WithValue(t.Context(), passScopeKey{}, 1), context.WithValue(t.Context(), passScopeKey{}, 2)
	req := &mcp.CompleteRequest{}
	tagRequestID(&req.Header, 7)
	cs.beginComplete(ctx, 7, req)
	if cs.get(other) != nil {
		t.Error("another request's context found an entry")
	}
	cg := cs.get(ctx)
	if cg == nil || taggedID(cg.header) == "" {
		t.Fatalf("the request's entry: %+v", cg)
	}
	if cs.end(ctx) != cg || cs.end(ctx) != nil || cs.get(ctx) != nil {
		t.Error("the entry was not taken exactly once")
	}
}
