package mediator

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestClientErrors(t *testing.T) {
	const rejected = `{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"User rejected","data":{"why":"no"}}}`
	tests := []struct {
		name    string
		noted   []string // messages the agent sent on session "s"
		session string   // the session the relayed request went to
		err     string   // mcp-go's error for it
		want    *ClientRPCError
	}{
		{"stdio text", []string{rejected}, "s", "sampling request failed: User rejected",
			&ClientRPCError{Code: -1, Message: "User rejected", Data: []byte(`{"why":"no"}`)}},
		{"http text with the code", []string{rejected}, "s", "sampling/createMessage error -1: User rejected",
			&ClientRPCError{Code: -1, Message: "User rejected", Data: []byte(`{"why":"no"}`)}},
		{"http text with another code", []string{rejected}, "s", "sampling/createMessage error -32603: User rejected", nil},
		{"another session's error", []string{rejected}, "other", "sampling request failed: User rejected", nil},
		{"another message", []string{rejected}, "s", "sampling request failed: timeout", nil},
		{"a request is not an answer", []string{`{"jsonrpc":"2.0","id":3,"method":"x","error":{"code":-1,"message":"User rejected"}}`},
			"s", "sampling request failed: User rejected", nil},
		{"a result is not an error", []string{`{"jsonrpc":"2.0","id":3,"result":{"error":{"code":-1,"message":"User rejected"}}}`},
			"s", "sampling request failed: User rejected", nil},
		{"no id", []string{`{"jsonrpc":"2.0","error":{"code":-1,"message":"User rejected"}}`}, "s", "sampling request failed: User rejected", nil},
		{"not JSON", []string{`{"error": nope`}, "s", "sampling request failed: nope", nil},
		{"no data", []string{`{"jsonrpc":"2.0","id":"a","error":{"code":-32001,"message":"declined","data":null}}`}, "s",
			"elicitation request failed: declined", &ClientRPCError{Code: -32001, Message: "declined"}},
		{"the latest of two alike", []string{
			`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}`,
			`{"jsonrpc":"2.0","id":2,"error":{"code":2,"message":"m"}}`}, "s", "sampling request failed: m",
			&ClientRPCError{Code: 2, Message: "m"}},
		{"a message over the cap", []string{`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"` + strings.Repeat("x", MaxUpstreamErrorText+1) + `"}}`},
			"s", "sampling request failed: " + strings.Repeat("x", MaxUpstreamErrorText+1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ce clientErrors
			for _, m := range tt.noted {
				ce.note("s", []byte(m))
			}
			got := ce.take(tt.session, "sampling/createMessage", errors.New(tt.err))
			if (got == nil) != (tt.want == nil) {
				t.Fatalf("take: %+v, want %+v", got, tt.want)
			}
			if got == nil {
				return
			}
			if got.Code != tt.want.Code || got.Message != tt.want.Message || string(got.Data) != string(tt.want.Data) {
				t.Errorf("take: %d %q %s, want %d %q %s", got.Code, got.Message, got.Data, tt.want.Code, tt.want.Message, tt.want.Data)
			}
			if again := ce.take(tt.session, "sampling/createMessage", errors.New(tt.err)); again != nil && len(tt.noted) == 1 {
				t.Errorf("taken twice: %+v", again)
			}
		})
	}
}

func TestClientErrorsBounded(t *testing.T) {
	var ce clientErrors
	for range clientErrMax * 3 {
		ce.note("s", []byte(`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}`))
	}
	if n := len(ce.m["s"]); n != clientErrMax {
		t.Errorf("%d kept, want at most %d", n, clientErrMax)
	}
	ce.m["s"][0].at = time.Now().Add(-2 * clientErrTTL)
	ce.note("s", []byte(`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}`))
	if n := len(ce.m["s"]); n != clientErrMax {
		t.Errorf("after one expired and one more: %d kept, want %d", n, clientErrMax)
	}
	ce.forget("s")
	if ce.take("s", "x", errors.New("failed: m")) != nil {
		t.Error("a forgotten session's error was taken")
	}
}

// FuzzClientErrorsNote: whatever an agent sends, noting it does not panic,
// and what can be taken is an error the agent sent, within the caps.
func FuzzClientErrorsNote(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"User rejected","data":{"why":"no"}}}`), "User rejected")
	f.Add([]byte(`{"id":[],"error":{"message":""}}`), "")
	f.Add([]byte(`{"error":"x","id":1}`), "x")
	f.Fuzz(func(t *testing.T, msg []byte, message string) {
		var ce clientErrors
		ce.note("s", msg)
		got := ce.take("s", "m", errors.New("failed: "+message))
		if got == nil {
			return
		}
		if got.Message != message || len(got.Message) > MaxUpstreamErrorText || len(got.Data) > MaxUpstreamErrorData {
			t.Fatalf("took %+v for %q from %q", got, message, msg)
		}
	})
}
