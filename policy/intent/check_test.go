package intent

import (
	"encoding/json"
	"math"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func mustCompileScope(t testing.TB, s mediator.Scope) *Compiled {
	t.Helper()
	c, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func compileOne(t testing.TB, kind mediator.ConstraintKind, arg string, vals ...string) *Compiled {
	return mustCompileScope(t, mediator.Scope{Constraints: []mediator.Constraint{{Arg: arg, Kind: kind, Values: vals}}})
}

// checkArgCase is one argument value and whether it must be in scope.
type checkArgCase struct {
	name string
	v    any
	ok   bool
}

func runCheckArgCases(t *testing.T, c *Compiled, arg string, cases []checkArgCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reasons := c.Check(mediator.Tool{Name: "t"}, map[string]any{arg: tc.v})
			if tc.ok && reasons != nil {
				t.Fatalf("%#v: out of scope: %q", tc.v, reasons)
			}
			if !tc.ok && reasons == nil {
				t.Fatalf("%#v: in scope, want out", tc.v)
			}
		})
	}
}

func TestCheckPrefix(t *testing.T) {
	c := compileOne(t, mediator.ConstraintPrefix, "path", "/srv/reports", "/data/x/")
	runCheckArgCases(t, c, "path", []checkArgCase{
		{"prefix itself", "/srv/reports", true},
		{"below", "/srv/reports/q1.csv", true},
		{"deep", "/srv/reports/2024/q1/a.csv", true},
		{"trailing slash", "/srv/reports/", true},
		{"dot segment", "/srv/reports/./x", true},
		{"dotdot back in", "/srv/reports/../reports/x", true},
		{"double slash", "//srv//reports//x", true},
		{"second prefix, cleaned value", "/data/x/y", true},
		{"percent in name decoded ok", "/srv/reports/a%20b.csv", true},
		{"encoded slash inside", "/srv/reports/a%2fb", true},
		{"backslash separator inside", `/srv/reports\sub\x.csv`, true},
		{"unicode name", "/srv/reports/über.csv", true},

		{"dotdot", "/srv/reports/../../etc/passwd", false},
		{"dotdot start", "../etc/passwd", false},
		{"dotdot one up", "/srv/reports/..", false},
		{"sibling prefix", "/srv/reportsX", false},
		{"sibling prefix below", "/srv/reportsX/a", false},
		{"parent", "/srv", false},
		{"root", "/", false},
		{"relative", "srv/reports/x", false},
		{"dot relative", "./srv/reports/x", false},
		{"empty", "", false},
		{"tilde", "~/srv/reports", false},
		{"tilde user", "~root/x", false},
		{"encoded dotdot slash", "/srv/reports/..%2f..%2fetc/passwd", false},
		{"encoded dots", "/srv/reports/%2e%2e/%2e%2e/etc/passwd", false},
		{"encoded dots upper", "/srv/reports/%2E%2E/%2E%2E/etc", false},
		{"double encoded", "/srv/reports/%252e%252e%252f%252e%252e%252fetc", false},
		{"triple encoded", "/srv/reports/%25252e%25252e%25252f%25252e%25252e%25252fetc", false},
		{"five times encoded", "/srv/reports/%252525252e", false},
		{"backslash dotdot", `/srv/reports\..\..\etc\passwd`, false},
		{"backslash dotdot mixed", `\srv\reports\..\..\etc`, false},
		{"encoded backslash dotdot", "/srv/reports/..%5c..%5cetc", false},
		{"NUL", "/srv/reports/x\x00.csv", false},
		{"encoded NUL", "/srv/reports/x%00.csv", false},
		{"newline", "/srv/reports/x\n", false},
		{"DEL", "/srv/reports/x\x7f", false},
		{"bad escape", "/srv/reports/100%.csv", false},
		{"literal percent", "/srv/reports/100%25.csv", false}, // fails closed: "%" after decoding
		{"invalid utf8", "/srv/reports/\xff", false},
		{"encoded invalid utf8 overlong dot", "/srv/reports/%c0%ae%c0%ae/x", false},
		{"fullwidth dots", "/srv/reports/．．／．．／etc", false},
		{"two dot leader", "/srv/reports/‥/x", false},
		{"windows drive", `C:\srv\reports`, false},
		{"three dots", "/srv/reports/.../x", false},
		{"dotdot space", "/srv/reports/.. /.. /etc", false},
		{"dot space", "/srv/reports/. ", false},
		{"encoded dotdot space", "/srv/reports/..%20/..%20/etc", false},
		{"dotfile ok", "/srv/reports/.hidden", true},
		{"dots in name ok", "/srv/reports/a..b", true},
		{"dotdot prefix name ok", "/srv/reports/..x", true},
		{"too long", "/srv/reports/" + strings.Repeat("a", maxPathArg), false},

		{"number", 42.0, false},
		{"bool", true, false},
		{"null", nil, false},
		{"object", map[string]any{"path": "/srv/reports"}, false},
		{"array ok", []any{"/srv/reports/a", "/data/x"}, true},
		{"string slice ok", []string{"/srv/reports/a"}, true},
		{"array one bad", []any{"/srv/reports/a", "/etc/passwd"}, false},
		{"array number", []any{"/srv/reports/a", 1.0}, false},
		{"array nested", []any{[]any{"/srv/reports/a"}}, false},
		{"empty array", []any{}, false},
		{"empty string slice", []string{}, false},
	})
}

func TestCheckRootPrefix(t *testing.T) {
	c := compileOne(t, mediator.ConstraintPrefix, "path", "/")
	runCheckArgCases(t, c, "path", []checkArgCase{
		{"root", "/", true},
		{"any absolute", "/etc/passwd", true},
		{"dotdot clamps at root", "/../../etc", true},
		{"relative", "etc", false},
	})
}

func TestCheckGlob(t *testing.T) {
	c := compileOne(t, mediator.ConstraintGlob, "path", "/srv/**/*.csv", "/data/*/report-??.txt", "/exact/file")
	runCheckArgCases(t, c, "path", []checkArgCase{
		{"zero segments", "/srv/a.csv", true},
		{"one segment", "/srv/x/a.csv", true},
		{"many segments", "/srv/x/y/z/a.csv", true},
		{"cleaned", "/srv/x/../y/./a.csv", true},
		{"star within segment", "/data/q1/report-01.txt", true},
		{"exact", "/exact/file", true},

		{"wrong extension", "/srv/x/a.txt", false},
		{"star does not cross slash", "/data/q1/q2/report-01.txt", false},
		{"question one char", "/data/q1/report-1.txt", false},
		{"escape", "/srv/../etc/a.csv", false},
		{"encoded escape", "/srv/x/..%2f..%2f..%2fetc/a.csv", false},
		{"outside", "/etc/a.csv", false},
		{"relative", "srv/a.csv", false},
		{"exact prefix is not glob", "/exact/file/x", false},
		{"NUL", "/srv/a\x00.csv", false},
	})
	root := compileOne(t, mediator.ConstraintGlob, "p", "/")
	runCheckArgCases(t, root, "p", []checkArgCase{{"root", "/", true}, {"not root", "/a", false}})
	all := compileOne(t, mediator.ConstraintGlob, "p", "/**")
	runCheckArgCases(t, all, "p", []checkArgCase{{"root", "/", true}, {"deep", "/a/b/c", true}, {"relative", "a", false}})
	mid := compileOne(t, mediator.ConstraintGlob, "p", "/a/**/b/**/c")
	runCheckArgCases(t, mid, "p", []checkArgCase{
		{"minimal", "/a/b/c", true}, {"spread", "/a/x/b/y/z/c", true}, {"b twice", "/a/b/b/c", true},
		{"no b", "/a/x/c", false}, {"trailing", "/a/b/c/d", false},
	})
}

func TestMatchSegments(t *testing.T) {
	tests := []struct {
		glob, path string
		want       bool
	}{
		{"/**/x", "/x", true},
		{"/**/x", "/a/b/x", true},
		{"/**/x", "/a/b/y", false},
		{"/**/**/x", "/a/x", true},
		{"/a/**", "/a", true},
		{"/a/**", "/ab", false},
		{"/*/*", "/a", false},
		{"/*/*", "/a/b", true},
		{"/[a-c]*/d", "/bz/d", true},
		{"/[a-c]*/d", "/dz/d", false},
		{"/**/a/**/a/**/a/**/b", "/" + strings.Repeat("a/", 40) + "c", false},
	}
	for _, tt := range tests {
		if got := matchSegments(compileNamePatterns(splitGlob(tt.glob)), tt.path[1:]); got != tt.want {
			t.Errorf("matchSegments(%q, %q) = %v, want %v", tt.glob, tt.path, got, tt.want)
		}
	}
}

func TestCheckHost(t *testing.T) {
	c := compileOne(t, mediator.ConstraintHost, "url", "api.example.com", "*.example.org", "10.0.0.1", "::1", "Upper.Example.NET.")
	runCheckArgCases(t, c, "url", []checkArgCase{
		{"exact", "https://api.example.com/v1/x", true},
		{"http", "http://api.example.com", true},
		{"port", "https://api.example.com:8443/x", true},
		{"upper case and trailing dot", "HTTPS://API.EXAMPLE.COM./x", true},
		{"query and fragment", "https://api.example.com/x?y=1#z", true},
		{"at in path", "https://api.example.com/@evil.com", true},
		{"subdomain", "https://a.example.org/", true},
		{"deep subdomain", "https://a.b.example.org/", true},
		{"ipv4", "http://10.0.0.1:8080/", true},
		{"ipv6", "http://[::1]:8080/", true},
		{"ipv6 other spelling", "http://[0:0::1]/", true},
		{"upper-case value", "https://upper.example.net/", true},

		{"wildcard apex", "https://example.org/", false},
		{"suffix trick", "https://api.example.com.evil.com/", false},
		{"prefix trick", "https://evilapi.example.com/", false},
		{"wildcard suffix trick", "https://a.example.org.evil.com/", false},
		{"wildcard label trick", "https://aexample.org/", false},
		{"fragment", "https://evil.com#api.example.com", false},
		{"fragment with path", "https://evil.com/#@api.example.com", false},
		{"userinfo", "https://api.example.com@evil.com", false},
		{"userinfo allowed host", "https://user@api.example.com/", false},
		{"userinfo with password", "https://u:p@api.example.com/", false},
		{"encoded at", "https://api.example.com%40evil.com/", false},
		{"backslash", `https://api.example.com\@evil.com/`, false},
		{"backslash authority", `https:\\api.example.com`, false},
		{"space", "https://api.example.com /", false},
		{"leading space", " https://api.example.com/", false},
		{"tab", "https://api.\texample.com/", false},
		{"newline", "https://api.example.com/\n", false},
		{"NUL", "https://api.example.com\x00.evil.com/", false},
		{"unicode space", "https://api.example.com\u00a0/", false},
		{"invalid utf8", "https://api.example.com/\xff", false},
		{"javascript", "javascript:alert(1)//api.example.com", false},
		{"ftp", "ftp://api.example.com/", false},
		{"file", "file:///etc/passwd", false},
		{"data", "data:text/plain,api.example.com", false},
		{"opaque http", "http:api.example.com", false},
		{"no scheme", "api.example.com", false},
		{"scheme relative", "//api.example.com/x", false},
		{"empty host", "https:///api.example.com", false},
		{"port only", "https://:443/", false},
		{"bad port", "https://api.example.com:x/", false},
		{"ipv4 other", "http://10.0.0.2/", false},
		{"ipv4 shorthand", "http://10.1/", false},
		{"ipv4 trailing dot", "http://10.0.0.1./", false},
		{"ipv4 in brackets", "http://[10.0.0.1]/", false},
		{"query with at", "https://api.example.com?x=@evil.com", true},
		{"empty port", "https://api.example.com:/", true},
		{"userinfo with port", "https://api.example.com:8443@evil.com", false},
		{"wildcard trailing dot", "https://a.example.org.", true},
		{"wildcard empty label", "https://.example.org", false},
		{"ipv4 decimal", "http://167772161/", false},
		{"ipv4 hex", "http://0xa.0.0.1/", false},
		{"ipv4 octal", "http://010.0.0.1/", false},
		{"ipv4 in brackets mapped", "http://[::ffff:10.0.0.1]/", false},
		{"ipv6 zone", "http://[::1%25eth0]/", false},
		{"ipv6 other", "http://[::2]/", false},
		{"unicode host", "https://аpi.example.com/", false}, // Cyrillic а
		{"punycode other", "https://xn--pi-7ld.example.com/", false},
		{"empty", "", false},
		{"too long", "https://api.example.com/" + strings.Repeat("a", maxURLArg), false},
		{"number", 1.0, false},
		{"array ok", []any{"https://api.example.com/", "https://x.example.org"}, true},
		{"array one bad", []any{"https://api.example.com/", "https://evil.com"}, false},
	})
}

func TestCheckMax(t *testing.T) {
	c := mustCompileScope(t, mediator.Scope{Constraints: []mediator.Constraint{{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(100)}}})
	runCheckArgCases(t, c, "amount", []checkArgCase{
		{"float below", 99.5, true},
		{"float equal", 100.0, true},
		{"float above", 100.5, false},
		{"negative", -5.0, true},
		{"zero", 0.0, true},
		{"NaN", math.NaN(), false},
		{"Inf", math.Inf(1), false},
		{"-Inf", math.Inf(-1), false},
		{"float32", float32(50), true},
		{"int", 100, true},
		{"int above", 101, false},
		{"int64", int64(-3), true},
		{"uint8", uint8(200), false},
		{"uint64", uint64(100), true},
		{"json.Number", json.Number("100"), true},
		{"json.Number above", json.Number("100.0000000000000000001"), false},
		{"json.Number exactly", json.Number("1e2"), true},
		{"json.Number below", json.Number("99.9999999999999999999"), true},
		{"json.Number huge", json.Number("1e400"), false},
		{"json.Number negative huge", json.Number("-1e400"), false},
		{"json.Number hex", json.Number("0x10"), false},
		{"json.Number inf", json.Number("Inf"), false},
		{"json.Number junk", json.Number("12abc"), false},
		{"string", "50", false},
		{"bool", true, false},
		{"null", nil, false},
		{"object", map[string]any{}, false},
		{"array ok", []any{1.0, json.Number("2"), 100}, true},
		{"array one above", []any{1.0, 101.0}, false},
		{"array with string", []any{1.0, "2"}, false},
		{"empty array", []any{}, false},
		{"string slice", []string{"1"}, false},
	})
	big := mustCompileScope(t, mediator.Scope{Constraints: []mediator.Constraint{{Arg: "n", Kind: mediator.ConstraintMax, Max: maxPtr(1e300)}}})
	runCheckArgCases(t, big, "n", []checkArgCase{
		{"max int64", int64(math.MaxInt64), true},
		{"max uint64", uint64(math.MaxUint64), true},
	})
	exact := mustCompileScope(t, mediator.Scope{Constraints: []mediator.Constraint{{Arg: "n", Kind: mediator.ConstraintMax, Max: maxPtr(9007199254740992)}}})
	runCheckArgCases(t, exact, "n", []checkArgCase{
		{"int equal", int64(9007199254740992), true},
		{"int one above (rounds equal as float)", int64(9007199254740993), false},
		{"json one above", json.Number("9007199254740993"), false},
		{"frac", 2.5, true},
	})
	frac := mustCompileScope(t, mediator.Scope{Constraints: []mediator.Constraint{{Arg: "n", Kind: mediator.ConstraintMax, Max: maxPtr(2.5)}}})
	runCheckArgCases(t, frac, "n", []checkArgCase{{"2", 2, true}, {"3", 3, false}, {"2.5", 2.5, true}, {"-3", -3, true}})
}

func TestCheckEnum(t *testing.T) {
	c := compileOne(t, mediator.ConstraintEnum, "format", "csv", "json", "1", "2.5", "true", "1e-7", "1e+21")
	runCheckArgCases(t, c, "format", []checkArgCase{
		{"string", "csv", true},
		{"other string", "xml", false},
		{"case", "CSV", false},
		{"space", "csv ", false},
		{"int float", 1.0, true},
		{"int", 1, true},
		{"frac", 2.5, true},
		{"float32 frac", float32(2.5), true},
		{"json number", json.Number("1"), true},
		{"json number other text", json.Number("1.0"), false},
		{"json number junk", json.Number("x"), false},
		{"bool", true, true},
		{"false", false, false},
		{"small exp", 1e-7, true},
		{"big exp", 1e21, true},
		{"number not listed", 3.0, false},
		{"NaN", math.NaN(), false},
		{"null", nil, false},
		{"object", map[string]any{"csv": true}, false},
		{"array ok", []any{"csv", 1.0, true}, true},
		{"array bad", []any{"csv", "xml"}, false},
		{"array with null", []any{"csv", nil}, false},
		{"empty array", []any{}, false},
	})
}

func TestAppendJSONFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 2.5, 1e-7, 1e-6, 123456789, 1e20, 1e21, 1.5e300, -3e-9, 0.1, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		want, _ := json.Marshal(f)
		got, ok := appendJSONFloat(nil, f, 64)
		if !ok || string(got) != string(want) {
			t.Errorf("%v: got %s, want %s", f, got, want)
		}
	}
	for _, f := range []float32{0, 1, 2.5, 1e-7, 1e21, 3.4e38, 0.1} {
		want, _ := json.Marshal(f)
		got, ok := appendJSONFloat(nil, float64(f), 32)
		if !ok || string(got) != string(want) {
			t.Errorf("float32 %v: got %s, want %s", f, got, want)
		}
	}
}

func TestCheckToolsAndLevels(t *testing.T) {
	c := mustCompileScope(t, mediator.Scope{
		Tools:        []string{"files__read_*", "files__list_*"},
		MaxDataClass: mediator.DataConfidential,
		MaxRisk:      mediator.RiskMedium,
	})
	tests := []struct {
		name string
		tool mediator.Tool
		want []string
	}{
		{"in scope", mediator.Tool{Name: "files__read_file", Risk: mediator.RiskLow, DataClass: mediator.DataInternal}, nil},
		{"at the maxima", mediator.Tool{Name: "files__list_dir", Risk: mediator.RiskMedium, DataClass: mediator.DataConfidential}, nil},
		{"tool not in scope", mediator.Tool{Name: "files__delete", Risk: mediator.RiskLow, DataClass: mediator.DataPublic},
			[]string{`tool "files__delete" not in scope (allowed: files__read_*, files__list_*)`}},
		{"data class above", mediator.Tool{Name: "files__read_file", Risk: mediator.RiskLow, DataClass: mediator.DataPII},
			[]string{"data class pii above declared confidential"}},
		{"risk above", mediator.Tool{Name: "files__read_file", Risk: mediator.RiskHigh, DataClass: mediator.DataPublic},
			[]string{"risk high above declared medium"}},
		{"unknown levels fail closed", mediator.Tool{Name: "files__read_file"},
			[]string{"data class unknown above declared confidential", "risk unknown above declared medium"}},
		{"bogus levels fail closed", mediator.Tool{Name: "files__read_file", Risk: "meh", DataClass: "meh"},
			[]string{"data class unknown above declared confidential", "risk unknown above declared medium"}},
		{"everything", mediator.Tool{Name: "x\n", Risk: mediator.RiskCritical, DataClass: mediator.DataFinancial},
			[]string{`tool "x\n" not in scope (allowed: files__read_*, files__list_*)`,
				"data class financial above declared confidential", "risk critical above declared medium"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Check(tt.tool, nil); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	// Without maxima, unknown levels are fine; without tools, any tool.
	open := mustCompileScope(t, mediator.Scope{})
	if r := open.Check(mediator.Tool{Name: "anything"}, nil); r != nil {
		t.Fatalf("open scope: %q", r)
	}
	var nilC *Compiled
	if r := nilC.Check(mediator.Tool{Name: "x"}, nil); r == nil {
		t.Fatal("nil Compiled let a call through")
	}
}

func TestCheckReasons(t *testing.T) {
	c := mustCompileScope(t, mediator.Scope{Constraints: []mediator.Constraint{
		{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/reports", "/srv/data"}},
		{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(100)},
		{Arg: "format", Kind: mediator.ConstraintEnum, Values: []string{"csv", "a b"}},
		{Arg: "url", Kind: mediator.ConstraintHost, Values: []string{"*.example.com"}},
	}})
	tool := mediator.Tool{Name: "t"}
	got := c.Check(tool, map[string]any{"path": "/etc/passwd", "amount": "5", "format": []any{}})
	// Argument constraints first, in order; then those of paths and URLs,
	// sorted.
	want := []string{
		`argument "amount" is not a number or an array of numbers (constrained by max 100)`,
		`argument "format" is an empty array (constrained by enum csv, "a b")`,
		`argument "path" outside constraint prefix /srv/reports, /srv/data`,
		`argument "url" missing (constrained by host *.example.com)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	got = c.Check(tool, map[string]any{"path": 1.0, "amount": 500.0, "format": nil, "url": "https://example.com"})
	want = []string{
		`argument "amount" outside constraint max 100`,
		`argument "format" is not a string, number, boolean or an array of them (constrained by enum csv, "a b")`,
		`argument "path" is not a string or an array of strings (constrained by prefix /srv/reports, /srv/data)`,
		`argument "url" outside constraint host *.example.com`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	// Argument values never appear in reasons.
	for _, r := range c.Check(tool, map[string]any{"path": "/secret-token-xyz", "url": "https://secret-host"}) {
		if strings.Contains(r, "secret") {
			t.Fatalf("reason leaks the argument: %q", r)
		}
	}
}

func TestCheckLongValueListIsCut(t *testing.T) {
	var vals []string
	for i := 0; i < 64; i++ {
		vals = append(vals, "/srv/"+strings.Repeat("x", 40)+string(rune('a'+i%26)))
	}
	c := compileOne(t, mediator.ConstraintPrefix, "path", vals...)
	r := c.Check(mediator.Tool{Name: "t"}, map[string]any{"path": "/etc"})
	if len(r) != 1 || len(r[0]) > 400 || !strings.Contains(r[0], "more)") {
		t.Fatalf("reason not cut: %q", r)
	}
}

func TestCheckInScopeDoesNotAllocate(t *testing.T) {
	c, tool, args := benchCheckScope(t)
	if r := c.Check(tool, args); r != nil {
		t.Fatalf("bench call out of scope: %q", r)
	}
	c2 := mustCompileScope(t, mediator.Scope{Tools: []string{"files__*"}, Constraints: []mediator.Constraint{
		{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/reports"}},
		{Arg: "g", Kind: mediator.ConstraintGlob, Values: []string{"/srv/**/*.csv"}},
		{Arg: "n", Kind: mediator.ConstraintMax, Max: maxPtr(10)},
		{Arg: "e", Kind: mediator.ConstraintEnum, Values: []string{"a", "1"}},
	}})
	args2 := map[string]any{"path": "/srv/reports/a.csv", "g": []any{"/srv/x/y.csv"}, "n": json.Number("3"), "e": 1.0}
	if n := testing.AllocsPerRun(100, func() { c2.Check(mediator.Tool{Name: "files__read"}, args2) }); n != 0 {
		t.Fatalf("in-scope Check without host constraints allocates %v times", n)
	}
}

func TestPatternMatchesPathMatch(t *testing.T) {
	globs := []string{"files__read_*", "*", "*_file", "exact", "a*b", "?x", "[a-c]*", `\*lit`, "*.csv", "", "a*", "*a*"}
	names := []string{"", "files__read_file", "files__read_", "files__read/x", "x_file", "a/x_file", "exact", "exactly",
		"ab", "axxb", "a/b", "zx", "bzz", "*lit", "xlit", "q.csv", "a/q.csv", ".csv", "a", "aa/"}
	for _, g := range globs {
		p := compileNamePattern(g)
		for _, n := range names {
			want, _ := path.Match(g, n)
			if got := p.match(n); got != want {
				t.Errorf("pattern %q (kind %d) on %q: got %v, path.Match %v", g, p.kind, n, got, want)
			}
		}
	}
}

// TestCheckRelativePaths covers constraints relative to the upstream's own
// root (the demo upstream's sandbox takes paths like "notes/todo.md").
func TestCheckRelativePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind mediator.ConstraintKind
		val  string
		arg  string
		ok   bool
	}{
		{mediator.ConstraintPrefix, "notes", "notes/todo.md", true},
		{mediator.ConstraintPrefix, "notes", "notes", true},
		{mediator.ConstraintPrefix, "notes", "./notes/todo.md", true},
		{mediator.ConstraintPrefix, "notes", "notes/a/../b.md", true},
		{mediator.ConstraintPrefix, "notes", "notes/../secrets/key", false},
		{mediator.ConstraintPrefix, "notes", "../notes/x", false},
		{mediator.ConstraintPrefix, "notes", "notes/../../etc/passwd", false},
		{mediator.ConstraintPrefix, "notes", "notes%2f..%2f..%2fetc", false},
		{mediator.ConstraintPrefix, "notes", "notes\\..\\..\\etc", false},
		{mediator.ConstraintPrefix, "notes", "/notes/x", false},
		{mediator.ConstraintPrefix, "notes", "~/notes/x", false},
		{mediator.ConstraintPrefix, "notes", "C:notes/x", false},
		{mediator.ConstraintPrefix, "notes", "notesX/y", false},
		{mediator.ConstraintPrefix, "notes", "notes/x\x00.md", false},
		{mediator.ConstraintGlob, "*.csv", "a.csv", true},
		{mediator.ConstraintGlob, "*.csv", "dir/a.csv", false},
		{mediator.ConstraintGlob, "*.csv", "../a.csv", false},
		{mediator.ConstraintGlob, "reports/**/*.csv", "reports/q3/a.csv", true},
		{mediator.ConstraintGlob, "reports/**/*.csv", "reports/../a.csv", false},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind)+" "+tc.val+" "+tc.arg, func(t *testing.T) {
			c := compileOne(t, tc.kind, "path", tc.val)
			reasons := c.Check(mediator.Tool{Name: "demo__read_file"}, map[string]any{"path": tc.arg})
			if (len(reasons) == 0) != tc.ok {
				t.Fatalf("reasons %q; want in scope %v", reasons, tc.ok)
			}
		})
	}
}
