package mediator

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A result goes out as sent only when it says exactly what its parsed
// form says: order, spacing and escapes may differ, nothing else.
func TestSameResult(t *testing.T) {
	encoded := json.RawMessage(`{"content":[{"text":"a<b","type":"text"}],"isError":false}`)
	cases := []struct {
		name, raw string
		want      bool
	}{
		{"member order, spacing, escapes", `{ "isError": false, "content": [ {"type":"text", "text":"a\u003cb"} ] }`, true},
		{"a member mcp-go drops", `{"content":[{"type":"text","text":"a<b","note":"secret"}],"isError":false}`, false},
		{"a key given twice", `{"content":[{"type":"text","text":"secret","text":"a<b"}],"isError":false}`, false},
		{"a top-level extra", `{"content":[{"type":"text","text":"a<b"}],"isError":false,"x":1}`, false},
		{"null", `null`, false},
		{"not UTF-8", "{\"content\":[{\"type\":\"text\",\"text\":\"a<b\xff\"}],\"isError\":false}", false},
		{"trailing data", `{"content":[{"type":"text","text":"a<b"}],"isError":false} {}`, false},
		{"another value", `{"content":[{"type":"text","text":"a>b"}],"isError":false}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sameResult(json.RawMessage(c.raw), encoded); got != c.want {
				t.Errorf("sameResult(%s) = %v, want %v", c.raw, got, c.want)
			}
		})
	}
	deep := strings.Repeat("[", 10002) + strings.Repeat("]", 10002)
	if sameResult(json.RawMessage(`{"a":`+deep+`}`), json.RawMessage(`{"a":[]}`)) {
		t.Error("a value nested past the limit compared")
	}
}

// What waits past the TTL is dropped when entries are added; the bytes
// held are bounded; a response that is not written gives its entry back.
func TestPassthroughBounds(t *testing.T) {
	var p passthrough
	sc := &passScope{}
	old := time.Now().Add(-2 * passTTL)
	if !p.put("stale", passEntry{whole: json.RawMessage(`{}`), scope: sc, at: old}) {
		t.Fatal("put refused")
	}
	token := p.issueListing(sc, passEntry{whole: json.RawMessage(`{"a":1}`)})
	if _, ok := p.m["stale"]; ok {
		t.Error("an entry past its TTL was kept")
	}
	if p.bytes != len(`{"a":1}`) {
		t.Errorf("bytes held = %d", p.bytes)
	}
	big := make(json.RawMessage, passMaxBytes)
	if p.issueListing(sc, passEntry{whole: big}) != "" {
		t.Error("an entry over the byte bound was kept")
	}
	p.discard([]byte(`{"jsonrpc":"2.0","id":1,"result":{"_meta":{"`+listingMetaKey+`":"`+token+`"}}}`), sc)
	if len(p.m) != 0 || p.bytes != 0 {
		t.Errorf("after discard: %d entries, %d bytes", len(p.m), p.bytes)
	}
}
