package mediator

import (
	"encoding/json"
	"strings"
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
			if j, _ := b.open(c.ids, c.answers); j != nil {
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
	if j, _ := b.open([]string{"", ""}, make([][]byte, 2)); j != nil {
		t.Errorf("notifications only answered: %s", j)
	}
	bad := []byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"x"}}`)
	if j, _ := b.open([]string{""}, [][]byte{bad}); string(j) != "["+string(bad)+"]" {
		t.Errorf("refusal only: %s", j)
	}
	if held, _ := b.take([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`), true); held {
		t.Error("a response held with no batch waiting")
	}
}

// A request whose id an earlier batch still waits for is refused at once
// and marked busy (it must not run); when the input ends, what still
// waits is answered with an error per missing member.
func TestStdioBatchesBusyAndAbandoned(t *testing.T) {
	var b stdioBatches
	if j, busy := b.open([]string{"5", "6"}, make([][]byte, 2)); j != nil || busy[0] || busy[1] {
		t.Fatalf("first batch: %s %v", j, busy)
	}
	j, busy := b.open([]string{"5"}, make([][]byte, 1))
	if !busy[0] || !strings.Contains(string(j), "still running") {
		t.Errorf("a busy id: joined %s, busy %v", j, busy)
	}
	if held, _ := b.take([]byte(`{"jsonrpc":"2.0","id":6,"result":{}}`), true); !held {
		t.Error("the first batch's answer not held")
	}
	out := b.abandon()
	if len(out) != 1 || !strings.Contains(string(out[0]), `{"jsonrpc":"2.0","id":6,"result":{}}`) || !strings.Contains(string(out[0]), "input ended") {
		t.Errorf("abandoned: %s", out)
	}
	if b.waiting.Load() != 0 || len(b.abandon()) != 0 {
		t.Error("still waiting after abandon")
	}
}

// Members that are no JSON-RPC message are refused one by one.
func TestBatchMember(t *testing.T) {
	cases := []struct {
		msg, want string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"ping"}`, ""},
		{`{"jsonrpc":"2.0","method":"notifications/x"}`, ""},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, ""},
		{`{"jsonrpc":"2.0","id":5,"method":"ping","result":{}}`, "both a method and a result"},
		{`{"jsonrpc":"2.0","id":true,"method":"ping"}`, "string or a number"},
		{`{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, "string or a number"},
		{`{"jsonrpc":"2.0","id":1,"method":"initialize"}`, "initialize cannot"},
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, "another batch"},
		{`7`, "not a JSON-RPC message object"},
	}
	for _, c := range cases {
		method, _, kind := inspectBody([]byte(c.msg))
		err := batchMember([]byte(c.msg), kind, method)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("batchMember(%s) = %v, want %q", c.msg, err, c.want)
		}
	}
}
