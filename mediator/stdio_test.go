package mediator

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestLineCapReader(t *testing.T) {
	t.Parallel()
	big := `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"x":"` + strings.Repeat("a", 300) + `"}}` + "\n"
	cases := []struct {
		name, in string
		want     []string // lines out
	}{
		{"small lines pass", "{\"a\":1}\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"last line without newline", "{\"a\":1}", []string{`{"a":1}`}},
		{"oversized line replaced, keeps id", big + "{\"c\":3}\n", []string{`"id":42,"method":"mediator/request_too_large"`, `{"c":3}`}},
		{"oversized line without id", strings.Repeat("z", 500) + "\n", []string{`"id":null`}},
		{"string id kept", `{"id":"abc","x":"` + strings.Repeat("b", 300) + "\"}\n", []string{`"id":"abc"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := io.ReadAll(newLineCapReader(strings.NewReader(tc.in), 200))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines %q, want %d", len(lines), lines, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Fatalf("line %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}

func FuzzLineCapReader(f *testing.F) {
	f.Add([]byte("{\"id\":1}\n"), 16)
	f.Add([]byte(strings.Repeat("x", 100)+"\n{}\n"), 10)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		out, err := io.ReadAll(newLineCapReader(bytes.NewReader(in), max))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.SplitAfter(out, []byte("\n")) {
			body := bytes.TrimSuffix(line, []byte("\n"))
			if len(body) > max && !json.Valid(body) {
				t.Fatalf("oversized line passed through: %q", body)
			}
		}
	})
}
