package mediator

import (
	"encoding/json"
	"testing"
)

// A stdio batch's answers are held until its last request is answered,
// then go out as one array in the batch's order; a cancelled request's
// answer is left out; responses to other requests pass.
func TestStdioBatchesJoinInOrder(t *testing.T) {
	cases := []struct {
		name    string
		ids     []string
		answers [][]byte
		writes  []struct {
			msg  string
			keep bool
		}
		want string
	}{
		{
			name:    "out of order",
			ids:     []string{"1", `"a"`, ""},
			answers: [][]byte{nil, nil, []byte(`{"jsonrpc":"2.0","id":9,"error":{"code":-32600,"message":"bad"}}`)},
			writes: []struct {
				msg  string
				keep bool
			}{
				{`{"jsonrpc":"2.0","id":"a","result":{}}`, true},
				{`{"jsonrpc":"2.0","id":7,"result":{}}`, true}, // not the batch's
				{`{"jsonrpc":"2.0","id":1,"result":{"x":1}}` + "\n", true},
			},
			want: `[{"jsonrpc":"2.0","id":1,"result":{"x":1}},{"jsonrpc":"2.0","id":"a","result":{}},{"jsonrpc":"2.0","id":9,"error":{"code":-32600,"message":"bad"}}]`,
		},
		{
			name:    "cancelled member",
			ids:     []string{"1", "2"},
			answers: make([][]byte, 2),
			writes: []struct {
				msg  string
				keep bool
			}{
				{`{"jsonrpc":"2.0","id":2,"result":{}}`, false},
				{`{"jsonrpc":"2.0","id":1,"result":{}}`, true},
			},
			want: `[{"jsonrpc":"2.0","id":1,"result":{}}]`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b stdioBatches
			if j := b.open(c.ids, c.answers); j != nil {
				t.Fatalf("joined before any answer: %s", j)
			}
			var got []byte
			for i, w := range c.writes {
				held, joined := b.take([]byte(w.msg), w.keep)
				if joined != nil {
					if i != len(c.writes)-1 {
						t.Fatalf("joined early, at write %d", i)
					}
					got = joined
				}
				if !held && joined == nil && w.msg[len(`{"jsonrpc":"2.0","id":`)] != '7' {
					t.Errorf("write %d not held: %s", i, w.msg)
				}
			}
			if string(got) != c.want || !json.Valid(got) {
				t.Errorf("joined %s\nwant   %s", got, c.want)
			}
			if b.waiting.Load() != 0 {
				t.Errorf("%d still waiting", b.waiting.Load())
			}
		})
	}
}

// A batch whose members all got their answers at once (refusals only, or
// notifications) is answered at once, or not at all.
func TestStdioBatchesNothingToWaitFor(t *testing.T) {
	var b stdioBatches
	if j := b.open([]string{"", ""}, make([][]byte, 2)); j != nil {
		t.Errorf("notifications only answered: %s", j)
	}
	bad := []byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"x"}}`)
	if j := b.open([]string{""}, [][]byte{bad}); string(j) != "["+string(bad)+"]" {
		t.Errorf("refusal only: %s", j)
	}
	if held, _ := b.take([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`), true); held {
		t.Error("a response held with no batch waiting")
	}
}
