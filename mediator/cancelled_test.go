package mediator

import (
	"strconv"
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
