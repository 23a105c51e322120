package mediator

import (
	"encoding/json"
	"testing"
)

func TestAsksTake(t *testing.T) {
	t.Parallel()
	var a asks
	id, ch, done := a.open("s1")
	defer done()
	cases := []struct {
		name, session, body string
		taken               bool
	}{
		{"another session's", "s2", `{"jsonrpc":"2.0","id":"` + id + `","result":{"x":1}}`, false},
		{"an id never issued", "s1", `{"jsonrpc":"2.0","id":"mediator-ask-0","result":{"x":1}}`, false},
		{"a numeric id", "s1", `{"jsonrpc":"2.0","id":1,"result":{"x":1}}`, false},
		{"not JSON", "s1", `mediator-ask-` + id, false},
		{"the answer", "s1", `{"jsonrpc":"2.0","id":"` + id + `","error":{"code":-1,"message":"user declined","data":{"why":"no"}}}`, true},
		{"the answer again", "s1", `{"jsonrpc":"2.0","id":"` + id + `","result":{"x":1}}`, false},
	}
	for _, tc := range cases {
		if got := a.take(tc.session, []byte(tc.body)); got != tc.taken {
			t.Fatalf("%s: taken %v, want %v", tc.name, got, tc.taken)
		}
	}
	ans := <-ch
	if ans.err == nil || ans.err.Code != -1 || ans.err.Message != "user declined" || string(ans.err.Data) != `{"why":"no"}` {
		t.Fatalf("the agent's error answer: %+v", ans.err)
	}
}

func FuzzAsksTake(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":"mediator-ask-1","result":{"model":"m"}}`))
	f.Add([]byte(`{"id":"mediator-ask-1","error":{"code":1,"message":"x","data":null}}`))
	f.Add([]byte(`{"id":"mediator-ask-1"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var a asks
		id, ch, done := a.open("s")
		defer done()
		taken := a.take("s", body)
		var r struct {
			ID string `json:"id"`
		}
		if taken && (json.Unmarshal(body, &r) != nil || r.ID != id) {
			t.Fatalf("took %q as the answer to %s", body, id)
		}
		if taken {
			ans := <-ch
			if ans.err == nil && len(ans.result) == 0 {
				t.Fatal("an answer with neither a result nor an error")
			}
			if ans.err != nil && (len(ans.err.Message) > MaxUpstreamErrorText+8 || len(ans.err.Data) > MaxUpstreamErrorData) {
				t.Fatal("an unbounded error answer")
			}
		}
	})
}
