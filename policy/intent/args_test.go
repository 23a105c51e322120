package intent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestClassifyName(t *testing.T) {
	tests := []struct {
		name string
		fam  family
		sure bool
	}{
		{"path", famPath, true},
		{"paths", famPath, true},
		{"filePath", famPath, true},
		{"file_name", famPath, true},
		{"fileName", famPath, true},
		{"output_file", famPath, true},
		{"baseDir", famPath, true},
		{"working-directory", famPath, true},
		{"source", famPath, true},
		{"destination", famPath, true},
		{"DESTINATION", famPath, true},
		{"url", famURL, true},
		{"callbackUrl", famURL, true},
		{"api_endpoint", famURL, true},
		{"host", famURL, true},
		{"pathPrefix", famPath, false},
		{"file_glob", famPath, false},
		{"urlTemplate", famURL, false},
		{"profile", famNone, true},
		{"direction", famNone, true},
		{"message", famNone, true},
		{"content", famNone, true},
		{"source_language", famNone, true},
		{"", famNone, true},
		{"a_b_c_d_e_f_g_h_i_j_path", famPath, true},
	}
	for _, tt := range tests {
		f, sure := classifyName(tt.name)
		if f != tt.fam || sure != tt.sure {
			t.Errorf("classifyName(%q) = %d, %v; want %d, %v", tt.name, f, sure, tt.fam, tt.sure)
		}
	}
}

// toolArgs builds ToolArgs from a schema and the operator's notes.
func toolArgs(t *testing.T, name, schema string, notes map[string]mediator.ArgKind) *ToolArgs {
	t.Helper()
	def := `{"name":"` + name + `","inputSchema":` + schema + `}`
	if !json.Valid([]byte(def)) {
		t.Fatalf("bad schema %s", schema)
	}
	return NewToolArgs(mediator.Tool{Name: "fs__" + name, Original: name, Definition: json.RawMessage(def), Args: notes})
}

// TestCheckEveryPathArgument is finding 4 of issue 14: a path constraint
// on "path" was dodged by read_multiple_files {"paths": [...]} and
// move_file {"source", "destination"}.
func TestCheckEveryPathArgument(t *testing.T) {
	reports := mediator.Constraint{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/reports"}}
	hosts := mediator.Constraint{Arg: "url", Kind: mediator.ConstraintHost, Values: []string{"api.example.com"}}
	out := mediator.Constraint{Arg: "dest", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/out"}}
	moveSchema := `{"type":"object","properties":{"source":{"type":"string"},"destination":{"type":"string"}}}`
	tests := []struct {
		name  string
		cons  []mediator.Constraint
		ta    *ToolArgs
		args  map[string]any
		out   bool
		where string // a reason must contain it
	}{
		{"move inside", []mediator.Constraint{reports}, toolArgs(t, "move_file", moveSchema, nil),
			map[string]any{"source": "/srv/reports/a", "destination": "/srv/reports/b"}, false, ""},
		{"move out", []mediator.Constraint{reports}, toolArgs(t, "move_file", moveSchema, nil),
			map[string]any{"source": "/srv/reports/a", "destination": "/etc/cron.d/x"}, true, `"destination" outside constraint prefix /srv/reports`},
		{"move, schema unknown", []mediator.Constraint{reports}, nil,
			map[string]any{"source": "/etc/shadow", "destination": "/srv/reports/b"}, true, `"source"`},
		{"read many inside", []mediator.Constraint{reports}, nil,
			map[string]any{"paths": []any{"/srv/reports/a", "/srv/reports/b"}}, false, ""},
		{"read many out", []mediator.Constraint{reports}, nil,
			map[string]any{"paths": []any{"/srv/reports/a", "/etc/passwd"}}, true, `"paths"`},
		{"read many, Go strings", []mediator.Constraint{reports}, nil,
			map[string]any{"paths": []string{"/etc/passwd"}}, true, `"paths"`},
		{"nested edits", []mediator.Constraint{reports}, nil,
			map[string]any{"path": "/srv/reports/a", "edits": []any{map[string]any{"file": "/etc/passwd", "text": "x"}}}, true, `"edits.file"`},
		{"arrays in arrays", []mediator.Constraint{reports}, nil,
			map[string]any{"path": "/srv/reports/a", "batches": []any{[]any{[]any{map[string]any{"file": "/etc/passwd"}}}}}, true, `"batches.file"`},
		{"nested options", []mediator.Constraint{reports}, nil,
			map[string]any{"path": "/srv/reports/a", "options": map[string]any{"output_dir": "/tmp"}}, true, `"options.output_dir"`},
		{"files of objects", []mediator.Constraint{reports}, nil,
			map[string]any{"files": []any{map[string]any{"path": "/srv/reports/x"}, map[string]any{"path": "/root/x"}}}, true, `"files.path"`},
		{"object without a path", []mediator.Constraint{reports}, nil,
			map[string]any{"path": "/srv/reports/a", "file": map[string]any{"name": "x"}}, true, `"file" holds no path`},
		{"number under a path-like name", []mediator.Constraint{reports}, nil,
			map[string]any{"path": "/srv/reports/a", "maxFiles": 3.0, "dir": nil}, false, ""},
		{"unclassified in the call", []mediator.Constraint{reports}, nil,
			map[string]any{"path": "/srv/reports/a", "pathPrefix": "/etc"}, true, `"pathPrefix" may hold a path`},
		{"unclassified in the schema", []mediator.Constraint{reports},
			toolArgs(t, "search", `{"type":"object","properties":{"path":{"type":"string"},"opts":{"type":"object","properties":{"file_glob":{"type":"string"}}}}}`, nil),
			map[string]any{"path": "/srv/reports"}, true, `tools: {search: {paths: ["file_glob"]}}`},
		{"unclassified number in the schema", []mediator.Constraint{reports},
			toolArgs(t, "search", `{"type":"object","properties":{"path":{"type":"string"},"file_count":{"type":"integer"}}}`, nil),
			map[string]any{"path": "/srv/reports"}, false, ""},
		{"classified plain by the operator", []mediator.Constraint{reports},
			toolArgs(t, "translate", `{"type":"object","properties":{"source":{"type":"string"},"pathPrefix":{"type":"string"}}}`,
				map[string]mediator.ArgKind{"source": mediator.ArgPlain, "pathPrefix": mediator.ArgPlain}),
			map[string]any{"source": "/etc/passwd", "pathPrefix": "/etc"}, false, ""},
		{"classified path by the operator", []mediator.Constraint{reports},
			toolArgs(t, "copy", `{"type":"object","properties":{"target":{"type":"string"}}}`,
				map[string]mediator.ArgKind{"target": mediator.ArgPath}),
			map[string]any{"target": "/etc/passwd"}, true, `"target" outside`},
		{"operator's path must be a path", []mediator.Constraint{reports},
			toolArgs(t, "copy", `{"type":"object","properties":{"target":{"type":"string"}}}`,
				map[string]mediator.ArgKind{"target": mediator.ArgPath}),
			map[string]any{"target": 7.0}, true, `"target" holds no path`},
		{"echo with boolean subschemas is not constrained", []mediator.Constraint{reports},
			toolArgs(t, "echo", `{"type":"object","properties":{"message":{"type":"string","maxLength":5}},"required":["message"],"additionalProperties":false}`, nil),
			map[string]any{"message": "/etc/passwd"}, false, ""},
		{"a property schema of true is still classified", []mediator.Constraint{reports},
			toolArgs(t, "any", `{"type":"object","properties":{"message":true,"path_hint":true},"items":false}`, nil),
			map[string]any{"message": "x"}, true, `"path_hint" may hold a path`},
		{"echo is not constrained", []mediator.Constraint{reports},
			toolArgs(t, "echo", `{"type":"object","properties":{"message":{"type":"string"}}}`, nil),
			map[string]any{"message": "/etc/passwd"}, false, ""},
		{"each name its own room", []mediator.Constraint{reports, out}, nil,
			map[string]any{"path": "/srv/reports/a", "dest": "/srv/out/b"}, false, ""},
		{"other names answer to every path constraint", []mediator.Constraint{reports, out}, nil,
			map[string]any{"path": "/srv/reports/a", "dest": "/srv/out/b", "source": "/srv/reports/c"}, true, `"source" outside constraint prefix /srv/out`},
		{"the named argument stays strict", []mediator.Constraint{reports}, nil,
			map[string]any{"path": map[string]any{"path": "/srv/reports"}}, true, `"path" is not a string`},
		{"URL under another name", []mediator.Constraint{hosts}, nil,
			map[string]any{"url": "https://api.example.com/x", "webhook": "https://evil.example.net/"}, true, `"webhook" outside constraint host`},
		{"URL by schema format", []mediator.Constraint{hosts},
			toolArgs(t, "notify", `{"type":"object","properties":{"callback":{"type":"string","format":"uri"}}}`, nil),
			map[string]any{"callback": "https://evil.example.net/"}, true, `"callback" outside`},
		{"a schema cannot turn a path into a URL", []mediator.Constraint{reports},
			toolArgs(t, "read_many", `{"type":"object","properties":{"paths":{"type":"array","format":"uri"},"path":{"format":"uri"}}}`, nil),
			map[string]any{"paths": []any{"/etc/passwd"}}, true, `"paths" outside`},
		{"a URL-formatted unclassified name is a URL", []mediator.Constraint{hosts},
			toolArgs(t, "t", `{"type":"object","properties":{"urlTemplate":{"type":"string","format":"uri"}}}`, nil),
			map[string]any{"urlTemplate": "https://api.example.com/{x}"}, false, ""},
		{"URL template unclassified", []mediator.Constraint{hosts}, nil,
			map[string]any{"url": "https://api.example.com/x", "urlTemplate": "https://evil/{x}"}, true, `may hold a URL`},
		{"paths are not URLs", []mediator.Constraint{hosts},
			toolArgs(t, "fetch", `{"type":"object","properties":{"url":{"type":"string"},"path":{"type":"string"}}}`, nil),
			map[string]any{"url": "https://api.example.com/x", "path": "/etc/passwd"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompileScope(t, mediator.Scope{Constraints: tt.cons})
			reasons := c.CheckArgs(mediator.Tool{Name: "fs__x"}, tt.args, tt.ta)
			if (len(reasons) > 0) != tt.out {
				t.Fatalf("reasons %q, want out of scope %v", reasons, tt.out)
			}
			if tt.where != "" && !strings.Contains(strings.Join(reasons, "\n"), tt.where) {
				t.Fatalf("reasons %q lack %q", reasons, tt.where)
			}
			for _, r := range reasons {
				if strings.Contains(r, "/etc/") || strings.Contains(r, "evil") {
					t.Fatalf("reason %q shows an argument's value", r)
				}
			}
		})
	}
}

func TestCheckWalkIsBounded(t *testing.T) {
	c := mustCompileScope(t, mediator.Scope{Constraints: []mediator.Constraint{
		{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/reports"}}}})
	deep := map[string]any{"path": "/srv/reports/a"}
	for range maxWalkDepth + 5 {
		deep = map[string]any{"path": "/srv/reports/a", "next": deep}
	}
	if r := c.Check(mediator.Tool{Name: "t"}, deep); len(r) == 0 || !strings.Contains(strings.Join(r, " "), "nested deeper") {
		t.Fatalf("deep arguments: %q", r)
	}
	wide := make([]any, maxWalkNodes+10)
	for i := range wide {
		wide[i] = "/srv/reports/x"
	}
	if r := c.Check(mediator.Tool{Name: "t"}, map[string]any{"paths": wide}); len(r) == 0 {
		t.Fatal("an argument of more than maxWalkNodes values passed")
	}
	var many []any
	for range 100 {
		many = append(many, map[string]any{"path": "/etc/x"})
	}
	if r := c.Check(mediator.Tool{Name: "t"}, map[string]any{"path": "/srv/reports", "items": many}); len(r) != 1 {
		t.Fatalf("100 failures of one argument gave %d reasons: %q", len(r), r)
	}
}

func TestCheckMin(t *testing.T) {
	min0 := 0.0
	half := 0.5
	c := mustCompileScope(t, mediator.Scope{Constraints: []mediator.Constraint{
		{Arg: "amount", Kind: mediator.ConstraintMin, Min: &min0},
		{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(100)},
		{Arg: "rate", Kind: mediator.ConstraintMin, Min: &half},
	}})
	tests := []struct {
		amount, rate any
		out          bool
	}{
		{0.0, 1.0, false},
		{100.0, 0.5, false},
		{-1.0, 1.0, true},
		{-1e-300, 1.0, true},
		{int64(-1), 1, true},
		{int8(0), uint8(1), false},
		{uint64(5), 0, true}, // rate 0 < 0.5
		{json.Number("-0.0000000000000000000001"), 1.0, true},
		{json.Number("0"), json.Number("0.5"), false},
		{json.Number("1"), json.Number("0.49999999999999999999999"), true}, // rounds to 0.5 as a float64
		{"5", 1.0, true},
	}
	for _, tt := range tests {
		r := c.Check(mediator.Tool{Name: "t"}, map[string]any{"amount": tt.amount, "rate": tt.rate})
		if (len(r) > 0) != tt.out {
			t.Errorf("amount %v (%T), rate %v: reasons %q, want out %v", tt.amount, tt.amount, tt.rate, r, tt.out)
		}
	}
	for _, s := range []string{"amount:min=0", "amount:min=-5.5"} {
		k, err := ParseConstraint(s)
		if err != nil || k.Min == nil || FormatConstraint(k) != s {
			t.Errorf("ParseConstraint(%q) = %+v, %v; formats as %q", s, k, err, FormatConstraint(k))
		}
	}
	for _, bad := range []mediator.Constraint{
		{Arg: "a", Kind: mediator.ConstraintMin},
		{Arg: "a", Kind: mediator.ConstraintMin, Min: &min0, Max: maxPtr(1)},
		{Arg: "a", Kind: mediator.ConstraintMax, Min: &min0, Max: maxPtr(1)},
		{Arg: "a", Kind: mediator.ConstraintEnum, Values: []string{"x"}, Min: &min0},
	} {
		if err := ValidateScope(mediator.Scope{Constraints: []mediator.Constraint{bad}}); err == nil {
			t.Errorf("constraint %+v accepted", bad)
		}
	}
}
