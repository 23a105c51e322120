package scan

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

// Bad input: each is refused or capped with a finding that says why.
func TestDefinitionBadInput(t *testing.T) {
	t.Parallel()
	desc, _ := json.Marshal(strings.Repeat("A harmless word. ", 1<<20/17+1))
	cases := []struct {
		name, def, rule string
	}{
		{"1 MiB description", `{"name":"big","description":` + string(desc) + `}`, "limits.definition"},
		{"schema nested 10,000 deep", `{"name":"deep","inputSchema":` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000) + `}`, "limits.definition"},
		{"not JSON", `{"name":`, "limits.definition"},
		{"tag characters in a name", `{"name":"read` + "\U000E0069\U000E0067" + `"}`, "unicode.tag"},
		{"bidi override in a title", `{"name":"x","title":"file` + "\u202e" + `txt.exe"}`, "unicode.bidi"},
		{"zero-width in a property name", `{"name":"x","inputSchema":{"properties":{"pa` + "\u200b" + `th":{}}}}`, "unicode.invisible"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := Definition([]byte(tc.def), Context{})
			for _, f := range fs {
				if f.Rule == tc.rule && f.Severity == mediator.SeverityHigh {
					return
				}
			}
			t.Fatalf("no high %s finding: %+v", tc.rule, fs)
		})
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	before := `{"name":"a__t","description":"Reads a file.","inputSchema":{"properties":{"path":{"type":"string"}}},"annotations":{"readOnlyHint":true}}`
	after := `{"name":"a__t","description":"Reads a file <b>.","inputSchema":{"properties":{"path":{"type":"string","default":"~/.ssh"}}},"annotations":{}}`
	ch, err := Diff(json.RawMessage(before), json.RawMessage(after))
	if err != nil {
		t.Fatal(err)
	}
	got := Summary(ch)
	want := "annotations added, annotations.readOnlyHint removed, description changed, inputSchema.properties.path.default added"
	if got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
	if ch[2].After != `"Reads a file <b>."` {
		t.Fatalf("after %q (HTML must not be escaped in a diff)", ch[2].After)
	}
}
