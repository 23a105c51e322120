package mediator

import (
	"encoding/json"
	"strings"
	"testing"
)

// A listing token is honoured once, only on the stream it was issued for;
// the definitions replace mcp-go's encodings and the token leaves the result.
func TestRewriteListing(t *testing.T) {
	var p passthrough
	mine, other := &passScope{}, &passScope{}
	defs := []json.RawMessage{nil, json.RawMessage(`{"name":"up__b","description":""}`)}
	response := func(token string) []byte {
		return []byte(`{"jsonrpc":"2.0","id":7,"result":{"_meta":{"` + listingMetaKey + `":"` + token + `"},"tools":[{"name":"own","annotations":{}},{"name":"up__b","annotations":{}}]}}` + "\n")
	}
	token := p.issueListing(mine, passEntry{listKey: "tools", defs: defs})
	if !strings.HasPrefix(token, listingTokenPrefix) {
		t.Fatalf("token %q", token)
	}
	if out, _ := p.rewrite(response(token), other); string(out) != string(response(token)) {
		t.Errorf("another stream's response was rewritten: %s", out)
	}
	out, _ := p.rewrite(response(token), mine)
	want := `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"own","annotations":{}},{"name":"up__b","description":""}]}}` + "\n"
	if string(out) != want {
		t.Errorf("rewritten:\n  %s\nwant\n  %s", out, want)
	}
	if again, _ := p.rewrite(response(token), mine); string(again) != string(response(token)) {
		t.Errorf("a token was honoured twice: %s", again)
	}
	sse := append([]byte("event: message\ndata: "), response(p.issueListing(mine, passEntry{listKey: "tools", defs: defs}))...)
	if out, _ := p.rewrite(sse, mine); !strings.HasPrefix(string(out), "event: message\ndata: {") || strings.Contains(string(out), listingMetaKey) {
		t.Errorf("an SSE event not rewritten: %s", out)
	}
}

// An upstream's text holding the error token's prefix does not keep a
// listing from its rewrite.
func TestRewriteListingBesideErrorPrefix(t *testing.T) {
	var p passthrough
	sc := &passScope{}
	def := json.RawMessage(`{"name":"up__a","description":"see ` + passTokenPrefix + `0000"}`)
	token := p.issueListing(sc, passEntry{listKey: "tools", defs: []json.RawMessage{def}})
	in := `{"jsonrpc":"2.0","id":1,"result":{"_meta":{"` + listingMetaKey + `":"` + token + `"},"tools":[{"name":"up__a","description":"see ` + passTokenPrefix + `0000","annotations":{}}]}}`
	out, _ := p.rewrite([]byte(in), sc)
	if want := `{"jsonrpc":"2.0","id":1,"result":{"tools":[` + string(def) + `]}}`; string(out) != want {
		t.Errorf("rewritten:\n  %s\nwant\n  %s", out, want)
	}
}

// A whole result goes out as the upstream wrote it (compacted, nothing
// escaped), found by its token even when the upstream's text holds the
// listing prefix too; another stream's token is not honoured.
func TestRewriteWholeResult(t *testing.T) {
	var p passthrough
	sc, other := &passScope{}, &passScope{}
	raw := json.RawMessage("{\"content\":[{\"type\":\"text\",\n \"text\":\"<b> " + listingTokenPrefix + "0123456789abcdef0123456789abcdef\"}]}")
	token := p.issueListing(sc, passEntry{whole: raw})
	in := `{"jsonrpc":"2.0","id":"x","result":{"content":[{"text":"<b> ` + listingTokenPrefix + `0123456789abcdef0123456789abcdef","type":"text"}],"_meta":{"` + listingMetaKey + `":"` + token + `"}}}`
	if out, _ := p.rewrite([]byte(in), other); string(out) != in {
		t.Errorf("another stream's response was rewritten: %s", out)
	}
	out, _ := p.rewrite([]byte(in), sc)
	want := `{"jsonrpc":"2.0","id":"x","result":{"content":[{"type":"text","text":"<b> ` + listingTokenPrefix + `0123456789abcdef0123456789abcdef"}]}}`
	if string(out) != want {
		t.Errorf("rewritten:\n  %s\nwant\n  %s", out, want)
	}
}
