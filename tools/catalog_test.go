package tools

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestRewriteName(t *testing.T) {
	tests := []struct {
		name, reason, def, newName, want string
	}{
		{"simple", "only the name value changes",
			`{"name":"read","description":"x"}`, "files__read", `{"name":"files__read","description":"x"}`},
		{"layout kept", "white space, key order and escapes elsewhere stay as sent",
			"{ \"b\" : \"<\\u00e9>\" ,\n \"name\" :  \"read\" , \"a\":[1, 2.50] }", "p__read",
			"{ \"b\" : \"<\\u00e9>\" ,\n \"name\" :  \"p__read\" , \"a\":[1, 2.50] }"},
		{"nested names", "only the top-level name is the tool's",
			`{"inputSchema":{"properties":{"name":{"type":"string"}}},"name":"t"}`, "x__t",
			`{"inputSchema":{"properties":{"name":{"type":"string"}}},"name":"x__t"}`},
		{"duplicate names", "every top-level name is rewritten, whichever a decoder keeps",
			`{"name":"a","name":"b"}`, "z", `{"name":"z","name":"z"}`},
		{"quoting", "the new name is JSON-encoded",
			`{"name":"a"}`, `we"ird`, `{"name":"we\"ird"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rewriteName([]byte(tt.def), tt.newName)
			if err != nil {
				t.Fatalf("%s: %v", tt.reason, err)
			}
			if string(got) != tt.want {
				t.Errorf("%s:\n got %s\nwant %s", tt.reason, got, tt.want)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"x":1}`, `{"name":1,`, ``, `"name"`} {
		if _, err := rewriteName([]byte(bad), "n"); err == nil {
			t.Errorf("rewriteName(%q) accepted an invalid definition", bad)
		}
	}
}

func FuzzRewriteName(f *testing.F) {
	f.Add([]byte(`{"name":"read","inputSchema":{"type":"object"}}`), "files__read")
	f.Add([]byte(`{ "name" : "x" , "name":"y"}`), "")
	f.Add([]byte(`{"a":{"name":"n"},"name":"\u00e9"}`), "\x00<>&")
	f.Add([]byte(`[1,2]`), "n")
	f.Fuzz(func(t *testing.T, def []byte, name string) {
		out, err := rewriteName(def, name)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out of %q: %q", def, out)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("not an object: %q", out)
		}
		var got string
		if err := json.Unmarshal(m["name"], &got); err != nil {
			t.Fatalf("name is not a string in %q", out)
		}
		if utf8.ValidString(name) && got != name {
			t.Fatalf("name = %q, want %q", got, name)
		}
	})
}

func TestDefinitionHashIsCanonical(t *testing.T) {
	a, err := definitionHash([]byte(`{"name":"x","a":[1,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := definitionHash([]byte("{ \"a\" : [1, 2], \"name\":\"x\" }"))
	c, _ := definitionHash([]byte(`{"name":"x","a":[2,1]}`))
	if a != b || a == c || len(a) != 64 {
		t.Errorf("hashes: %s %s %s", a, b, c)
	}
}

func TestClassify(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name, reason string
		override     ToolOverride
		def          string
		hints        mediator.Hints
		risk         mediator.Risk
		class        mediator.DataClass
	}{
		{"read only", "readOnlyHint means low risk", ToolOverride{}, `{}`, mediator.Hints{ReadOnly: &yes},
			mediator.RiskLow, mediator.DataUnknown},
		{"destructive", "destructiveHint means high risk", ToolOverride{}, `{}`, mediator.Hints{Destructive: &yes},
			mediator.RiskHigh, mediator.DataUnknown},
		{"no hints", "nothing said means medium", ToolOverride{}, `{}`, mediator.Hints{ReadOnly: &no},
			mediator.RiskMedium, mediator.DataUnknown},
		{"meta", "the tool's _meta beats its hints", ToolOverride{},
			`{"_meta":{"io.mcp-mediator/risk":"critical","io.mcp-mediator/data_class":"pii"}}`,
			mediator.Hints{ReadOnly: &yes}, mediator.RiskCritical, mediator.DataPII},
		{"bad meta", "an unknown _meta value is ignored", ToolOverride{},
			`{"_meta":{"io.mcp-mediator/risk":"none","io.mcp-mediator/data_class":7}}`,
			mediator.Hints{}, mediator.RiskMedium, mediator.DataUnknown},
		{"override", "configuration beats everything", ToolOverride{Risk: "low", DataClass: "financial"},
			`{"_meta":{"io.mcp-mediator/risk":"critical","io.mcp-mediator/data_class":"pii"}}`,
			mediator.Hints{Destructive: &yes}, mediator.RiskLow, mediator.DataFinancial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := objectFields([]byte(tt.def))
			if err != nil {
				t.Fatal(err)
			}
			risk, class := classify(tt.override, m, tt.hints)
			if risk != tt.risk || class != tt.class {
				t.Errorf("%s: got %q/%q, want %q/%q", tt.reason, risk, class, tt.risk, tt.class)
			}
		})
	}
}

func TestBuildListingRefusesBadObjects(t *testing.T) {
	cfg := &Config{Name: "u", Command: "x"}
	raw := rawListing{
		tools: []json.RawMessage{
			json.RawMessage(`{"name":"ok","annotations":{"readOnlyHint":true}}`),
			json.RawMessage(`{"name":"ok"}`),              // listed twice
			json.RawMessage(`{"name":""}`),                // empty name
			json.RawMessage(`{"name":"a\u0007b"}`),        // control character
			json.RawMessage(`{"description":"nameless"}`), // no name
			json.RawMessage(`["not","an","object"]`),
			json.RawMessage(`{"name":"odd","annotations":"not an object"}`),
		},
		resources: []json.RawMessage{json.RawMessage(`{"uri":"a://1"}`), json.RawMessage(`{"uri":"a://1"}`), json.RawMessage(`{}`)},
		templates: []json.RawMessage{json.RawMessage(`{"uriTemplate":"a://{x}"}`), json.RawMessage(`{"uriTemplate":""}`)},
		prompts:   []json.RawMessage{json.RawMessage(`{"name":"p"}`), json.RawMessage(`{"name":5}`)},
	}
	var logs bytes.Buffer
	l := buildListing(cfg, "u__", raw, slog.New(slog.NewTextHandler(&logs, nil)))
	if len(l.tools) != 2 || l.tools[0].Name != "u__ok" || l.tools[1].Name != "u__odd" {
		t.Errorf("tools: %+v", l.tools)
	}
	if l.tools[0].Risk != mediator.RiskLow || l.tools[1].Risk != mediator.RiskMedium {
		t.Errorf("risks: %q %q", l.tools[0].Risk, l.tools[1].Risk)
	}
	if len(l.resources) != 1 || len(l.templates) != 1 || len(l.prompts) != 1 || l.prompts[0].Name != "u__p" {
		t.Errorf("listing: %+v", l)
	}
	if n := strings.Count(logs.String(), "refused"); n != 9 {
		t.Errorf("want 9 refusals logged, got %d:\n%s", n, logs.String())
	}
}

func TestMergeRefusesCollisions(t *testing.T) {
	a := snapshot{state: mediator.ServerState{Name: "a"}, listing: &listing{
		tools:     []mediator.Tool{{Name: "read", Server: "a"}},
		resources: []mediator.Resource{{URI: "file:///x", Server: "a"}},
	}}
	b := snapshot{state: mediator.ServerState{Name: "b"}, listing: &listing{
		tools:     []mediator.Tool{{Name: "read", Server: "b"}, {Name: "write", Server: "b"}},
		resources: []mediator.Resource{{URI: "file:///x", Server: "b"}},
	}}
	cat, found := merge([]snapshot{a, b})
	if tl, _ := cat.Tool("read"); tl.Server != "a" {
		t.Errorf("read served by %q, want a (first configured)", tl.Server)
	}
	if _, ok := cat.Tool("write"); !ok {
		t.Error("b's other tool was dropped")
	}
	if len(found) != 2 {
		t.Fatalf("collisions: %+v", found)
	}
	err := collisionsError(found)
	if !errors.Is(err, ErrNameCollision) || !strings.Contains(err.Error(), `tool "read" of upstream "b" is refused because upstream "a"`) {
		t.Errorf("error: %v", err)
	}
	if got := newCollisions(found, found); len(got) != 0 {
		t.Errorf("known collisions reported again: %v", got)
	}
}

func TestReadBoundedLine(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader(strings.Repeat("a", 40)+"\nok\r\n"), 16)
	line, truncated, err := readBoundedLine(r)
	if len(line) != 16 || !truncated || err != nil {
		t.Errorf("long line: %q %v %v", line, truncated, err)
	}
	line, truncated, err = readBoundedLine(r)
	if string(line) != "ok" || truncated || err != nil {
		t.Errorf("next line: %q %v %v", line, truncated, err)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Now()
	l := &rateLimit{tokens: stderrBurst, last: now}
	allowed := 0
	for range stderrBurst + 50 {
		if l.allow(now) {
			allowed++
		}
	}
	if allowed != stderrBurst || l.takeDropped() != 50 {
		t.Errorf("burst: allowed %d", allowed)
	}
	if !l.allow(now.Add(time.Second)) {
		t.Error("no refill after a second")
	}
}

// Tool names with invisible characters are refused into the catalog, and
// the refusal names the tool with its characters escaped (issue 14,
// finding 10).
func TestBuildToolRefusesInvisibleNames(t *testing.T) {
	cfg := &Config{Name: "u", Command: "x"}
	for _, name := range []string{"read\u200bfile", "read\u202efile", "read\u00adfile", "read\tfile"} {
		def, _ := json.Marshal(map[string]any{"name": name, "inputSchema": map[string]any{"type": "object"}})
		_, err := buildTool(cfg, "u__", def)
		if err == nil {
			t.Fatalf("%q accepted", name)
		}
		if q := mediator.QuoteIdentity(name); !strings.Contains(err.Error(), "tool "+q) || !utf8.ValidString(err.Error()) ||
			strings.ContainsFunc(err.Error(), func(r rune) bool { return r > 0x7e }) {
			t.Fatalf("%q: error %q does not name the tool as %s", name, err, q)
		}
	}
	if _, err := buildTool(cfg, "u__", json.RawMessage(`{"name":"read_file","inputSchema":{"type":"object"}}`)); err != nil {
		t.Fatal(err)
	}
}
