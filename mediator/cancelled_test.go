package mediator

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestCancelledIDs(t *testing.T) {
	tests := []struct {
		name     string
		notes    []string // what the agent sent on session "s"
		session  string
		response string
		drop     bool
	}{
		{"a number id", []string{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":41,"reason":"stop"}}`},
			"s", `{"jsonrpc":"2.0","id":41,"result":{}}` + "\n", true},
		{"a string id", []string{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow"}}`},
			"s", `{"jsonrpc":"2.0","id":"slow","error":{"code":-32603,"message":"x"}}`, true},
		{"in an SSE event", []string{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}`},
			"s", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n", true},
		{"number and string differ", []string{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"7"}}`},
			"s", `{"jsonrpc":"2.0","id":7,"result":{}}`, false},
		{"another id", []string{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`},
			"s", `{"jsonrpc":"2.0","id":2,"result":{}}`, false},
		{"another session", []string{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`},
			"t", `{"jsonrpc":"2.0","id":1,"result":{}}`, false},
		{"a request with that id is not a response", []string{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`},
			"s", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, false},
		{"not a cancellation", []string{`{"jsonrpc":"2.0","method":"notifications/progress","params":{"requestId":1,"note":"notifications/cancelled"}}`},
			"s", `{"jsonrpc":"2.0","id":1,"result":{}}`, false},
		{"an object id is no id", []string{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":{"a":1}}}`},
			"s", `{"jsonrpc":"2.0","id":{"a":1},"result":{}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c cancelledIDs
			for _, n := range tt.notes {
				c.note("s", []byte(n))
			}
			if got := c.drop(tt.session, []byte(tt.response)); got != tt.drop {
				t.Fatalf("drop = %v, want %v", got, tt.drop)
			}
			if tt.drop && c.drop(tt.session, []byte(tt.response)) {
				t.Error("dropped twice: an id is forgotten once its response is dropped")
			}
		})
	}
}

func TestCancelledIDsBounded(t *testing.T) {
	var c cancelledIDs
	for i := range cancelledMax * 2 {
		c.note("s", []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`+strconv.Itoa(i)+`}}`))
	}
	if n := len(c.m["s"]); n > cancelledMax {
		t.Errorf("%d ids kept, want at most %d", n, cancelledMax)
	}
	if int(c.n.Load()) != len(c.m["s"]) {
		t.Errorf("count %d, held %d", c.n.Load(), len(c.m["s"]))
	}
	c.forget("s")
	if c.n.Load() != 0 {
		t.Errorf("count %d after forget", c.n.Load())
	}
}

// FuzzCancelledIDs: whatever an agent sends, noting it and checking a
// response does not panic, and the count matches what is held.
func FuzzCancelledIDs(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":41}}`), []byte(`{"jsonrpc":"2.0","id":41,"result":{}}`))
	f.Add([]byte(`{"method":"notifications/cancelled","params":{"requestId":"x"}}`), []byte("data: {\"id\":\"x\"}\n"))
	f.Fuzz(func(t *testing.T, note, response []byte) {
		var c cancelledIDs
		c.note("s", note)
		c.drop("s", response)
		if int(c.n.Load()) != len(c.m["s"]) {
			t.Fatalf("count %d, held %d", c.n.Load(), len(c.m["s"]))
		}
	})
}

func TestCancelledIDsStopWithReason(t *testing.T) {
	long := strings.Repeat("é", maxCancelReason)
	tests := []struct {
		name      string
		id        any    // the request's JSON-RPC id, as mcp-go decodes it
		session   string // where the cancellation came
		note      string
		cancelled bool
		reason    string
	}{
		{"the agent's reason", float64(41), "s", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":41,"reason":"the user pressed stop"}}`, true, "the user pressed stop"},
		{"a string id, no reason", "slow", "s", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow"}}`, true, ""},
		{"a long reason is cut", "r", "s", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"r","reason":"` + long + `"}}`, true, long[:maxCancelReason] + "…[truncated]"},
		{"another id", float64(41), "s", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42}}`, false, ""},
		{"a number is not its string", float64(41), "s", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"41"}}`, false, ""},
		{"another session", float64(41), "t", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":41}}`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c cancelledIDs
			var h http.Header
			tagRequestID(&h, tt.id)
			ctx, done := c.start(context.Background(), "s", taggedID(h))
			defer done()
			c.note(tt.session, []byte(tt.note))
			if got := ctx.Err() != nil; got != tt.cancelled {
				t.Fatalf("cancelled = %v, want %v", got, tt.cancelled)
			}
			if !tt.cancelled {
				return
			}
			var ac *AgentCancelled
			if !errors.As(context.Cause(ctx), &ac) || ac.Reason != tt.reason {
				t.Errorf("cause = %v, want the agent's reason %q", context.Cause(ctx), tt.reason)
			}
		})
	}
	t.Run("ended requests are forgotten", func(t *testing.T) {
		var c cancelledIDs
		ctx, done := c.start(context.Background(), "s", "1")
		done()
		if context.Cause(ctx) != context.Canceled || len(c.running) != 0 {
			t.Errorf("after done: cause %v, %d running", context.Cause(ctx), len(c.running))
		}
	})
}

// When a later request reuses a running request's id, the earlier one's
// end leaves the later one cancellable with its reason.
func TestCancelledIDsLaterRequestKeepsItsRegistration(t *testing.T) {
	var c cancelledIDs
	_, doneFirst := c.start(context.Background(), "s", `7`)
	second, doneSecond := c.start(context.Background(), "s", `7`)
	defer doneSecond()
	doneFirst()
	c.note("s", []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"stop"}}`))
	var ac *AgentCancelled
	if !errors.As(context.Cause(second), &ac) || ac.Reason != "stop" {
		t.Errorf("the later request's cause = %v, want the agent's reason", context.Cause(second))
	}
}
