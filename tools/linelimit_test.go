package tools

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// A message over the limit is dropped alone: a response becomes an error
// response with its id, whatever the order of its members and whatever
// "id" keys it nests; other messages are dropped; the lines around it
// pass unchanged.
func TestLineLimitReader(t *testing.T) {
	t.Parallel()
	pad := strings.Repeat("x", 300)
	cases := []struct {
		name   string
		in     string
		want   []string // lines out, in order; "" for "no line"
		wantID string   // id reported to onLimit ("" when none)
	}{
		{"small lines pass", "{\"a\":1}\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}, ""},
		{"last line without newline", `{"a":1}`, []string{`{"a":1}`}, ""},
		{"response, id first", `{"jsonrpc":"2.0","id":42,"result":{"t":"` + pad + `"}}` + "\n" + `{"c":3}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":42,"error":{"code":-32603,"message":"the upstream's response of 343 bytes exceeds`, `{"c":3}`}, "42"},
		{"response, id last (TypeScript SDK order)", `{"result":{"id":"inner","t":"` + pad + `"},"jsonrpc":"2.0","id":"req-7"}` + "\n",
			[]string{`"id":"req-7","error":`}, `"req-7"`},
		{"string id with escapes", `{"id":"a\"b","result":"` + pad + `"}` + "\n", []string{`"id":"a\"b"`}, `"a\"b"`},
		{"negative number id at the very end", `{"result":"` + pad + `","id":-3}`, []string{`"id":-3,"error"`}, "-3"},
		{"notification dropped", `{"jsonrpc":"2.0","method":"notifications/message","params":{"d":"` + pad + `"}}` + "\n" + `{"c":3}` + "\n",
			[]string{`{"c":3}`}, ""},
		{"request of the upstream dropped", `{"id":9,"method":"sampling/createMessage","params":{"d":"` + pad + `"}}` + "\n", nil, ""},
		{"not JSON dropped", strings.Repeat("z", 500) + "\n" + `{"c":3}` + "\n", []string{`{"c":3}`}, ""},
		{"id null dropped", `{"id":null,"error":{"message":"` + pad + `"}}` + "\n", nil, ""},
		{"just over the limit", `{"id":1,"result":"` + strings.Repeat("y", 200-19) + `"}` + "\n", []string{`"id":1,"error"`}, "1"},
		{"exactly the limit passes", `{"id":1,"result":"` + strings.Repeat("y", 200-20) + `"}` + "\n", []string{`{"id":1,"result":"yyy`}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var gotID string
			limited := 0
			l := newLineLimitReader(strings.NewReader(tc.in), 200, func(_ int, id string) { limited++; gotID = id })
			out, err := io.ReadAll(l)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			if s := strings.TrimRight(string(out), "\n"); s != "" {
				lines = strings.Split(s, "\n")
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines %q, want %d", len(lines), lines, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
				}
				if !json.Valid([]byte(lines[i])) {
					t.Errorf("line %d is not JSON: %q", i, lines[i])
				}
			}
			if gotID != tc.wantID {
				t.Errorf("onLimit id %q, want %q", gotID, tc.wantID)
			}
			select {
			case <-l.done:
			default:
				t.Error("done not closed at the end of the stream")
			}
		})
	}
}

// A message far larger than the reader's buffer is dropped without being
// held: the reader reads on to the next line.
func TestLineLimitReaderLongMessage(t *testing.T) {
	t.Parallel()
	big := `{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"` + strings.Repeat("b", 3*lineBuffer) + `"}]}}` + "\n"
	in := `{"id":4,"result":{}}` + "\n" + big + `{"id":6,"result":{}}` + "\n"
	r := bufio.NewReader(newLineLimitReader(strings.NewReader(in), lineBuffer+100, nil))
	var got []string
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			got = append(got, line)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 3 || got[0] != `{"id":4,"result":{}}`+"\n" || !strings.HasPrefix(got[1], `{"jsonrpc":"2.0","id":5,"error"`) ||
		got[2] != `{"id":6,"result":{}}`+"\n" {
		t.Fatalf("lines: %.200q", got)
	}
	if !strings.Contains(got[1], "limits.max_message_bytes") {
		t.Errorf("the error does not name the limit: %s", got[1])
	}
}

func FuzzLineLimitReader(f *testing.F) {
	f.Add([]byte("{\"id\":1,\"result\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}\n{}\n"), 16)
	f.Add([]byte(`{"result":{"id":[1,{"id":2}]},"id":"x\\"}`+"\n"), 8)
	f.Add([]byte(strings.Repeat("x", 100)+"\n{}\n"), 10)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		out, err := io.ReadAll(newLineLimitReader(bytes.NewReader(in), max, nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.SplitAfter(out, []byte("\n")) {
			body := bytes.TrimSuffix(line, []byte("\n"))
			if len(body) <= max {
				continue
			}
			// Only a stand-in may be longer than the limit, and it is a
			// JSON-RPC error response.
			var m struct {
				ID    json.RawMessage    `json:"id"`
				Error struct{ Code int } `json:"error"`
			}
			if err := json.Unmarshal(body, &m); err != nil || m.Error.Code != -32603 || len(m.ID) == 0 {
				t.Fatalf("oversized line passed through: %.200q", body)
			}
		}
	})
}
