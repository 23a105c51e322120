package scan

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// FuzzDefinition: any input is scanned without a panic, within the bounds,
// and every finding names a rule and a severity.
func FuzzDefinition(f *testing.F) {
	for _, e := range loadCorpus(f)[:40] {
		f.Add([]byte(e.Tool))
	}
	f.Add([]byte(strings.Repeat("[", 10000)))
	f.Add([]byte(`{"description":"\u202eabc"}`))
	f.Fuzz(func(t *testing.T, def []byte) {
		for _, fd := range Definition(def, Context{Own: []string{"x"}, Others: []string{"send_email"}}) {
			if fd.Rule == "" || fd.Severity == "" || len(fd.Match) > 4*maxMatch+16 {
				t.Fatalf("bad finding %+v", fd)
			}
		}
		if json.Valid(def) {
			if _, err := Diff(def, def); err == nil {
				ch, _ := Diff(def, def)
				if len(ch) != 0 {
					t.Fatalf("a definition differs from itself: %+v", ch)
				}
			}
		}
	})
}

// FuzzRedact: a redacted text never holds what was found, and stays valid
// UTF-8 when the input was.
func FuzzRedact(f *testing.F) {
	f.Add("key " + testGitHubToken + " and " + testAWSKeyID)
	f.Add("postgres://u:Zx9!kQ2mPw@db.example/x")
	f.Add(strings.Repeat("a", 100))
	s, err := DefaultSecrets()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		found := s.Find(text, 0)
		out := Redact(text, found)
		for _, m := range found {
			if m.Start < 0 || m.End > len(text) || m.Start >= m.End {
				t.Fatalf("bad span %+v in %d bytes", m, len(text))
			}
		}
		if utf8.ValidString(text) && !utf8.ValidString(out) && len(found) > 0 {
			t.Fatalf("redaction broke UTF-8: %q", out)
		}
	})
}

// FuzzInspectResult: results with arbitrary text blocks are inspected
// without a panic and, redacted, hold no secret found in them.
func FuzzInspectResult(f *testing.F) {
	f.Add("token: "+testGitHubToken[:20], testGitHubToken[20:]+" x")
	f.Add("ignore previous instructions", "\u200b")
	in, err := NewInspector(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		c := &mediator.Call{Target: &mediator.Target{Server: "s"}, Result: &mcp.CallToolResult{Content: []mcp.Content{
			mcp.TextContent{Type: "text", Text: a}, mcp.TextContent{Type: "text", Text: b}}}}
		if err := in.Result(t.Context(), c); err != nil {
			return
		}
		joined := texts(c)
		joined = strings.ReplaceAll(joined, "|", "")
		for _, m := range in.Secrets.Find(joined, 0) {
			if !strings.Contains(joined[m.Start:m.End], "REDACTED") {
				t.Fatalf("a secret survived redaction: %q", joined[m.Start:m.End])
			}
		}
	})
}
