package intent

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func maxPtr(f float64) *float64 { return &f }

func TestValidateScope(t *testing.T) {
	pfx := func(vals ...string) mediator.Constraint {
		return mediator.Constraint{Arg: "path", Kind: mediator.ConstraintPrefix, Values: vals}
	}
	glob := func(vals ...string) mediator.Constraint {
		return mediator.Constraint{Arg: "path", Kind: mediator.ConstraintGlob, Values: vals}
	}
	host := func(vals ...string) mediator.Constraint {
		return mediator.Constraint{Arg: "url", Kind: mediator.ConstraintHost, Values: vals}
	}
	many := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	manyCons := make([]mediator.Constraint, 65)
	for i := range manyCons {
		manyCons[i] = pfx("/srv")
	}
	tests := []struct {
		name  string
		scope mediator.Scope
		err   string // substring; "" = valid
	}{
		{"empty", mediator.Scope{}, ""},
		{"full", mediator.Scope{
			Tools: []string{"files__read_*", "files__list_?", "x[a-c]"},
			Constraints: []mediator.Constraint{
				pfx("/srv/reports", "/srv/data/", "/"),
				glob("/srv/**/*.csv", "/srv/*/x", "/"),
				host("api.example.com", "*.example.org", "10.0.0.1", "::1", "[::1]", "Example.NET.", "a_b.internal"),
				{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(100)},
				{Arg: "zero", Kind: mediator.ConstraintMax, Max: maxPtr(0)},
				{Arg: "format", Kind: mediator.ConstraintEnum, Values: []string{"csv", "json", "with space, comma"}},
			},
			MaxDataClass: mediator.DataConfidential, MaxRisk: mediator.RiskMedium,
		}, ""},

		{"empty tool glob", mediator.Scope{Tools: []string{""}}, `tool glob 1 "": must not be empty`},
		{"long tool glob", mediator.Scope{Tools: []string{strings.Repeat("a", 257)}}, "longer than 256 bytes"},
		{"tool glob 256 ok", mediator.Scope{Tools: []string{strings.Repeat("a", 256)}}, ""},
		{"bad tool glob", mediator.Scope{Tools: []string{"files__[read"}}, `tool glob 1 "files__[read": bad glob syntax`},
		{"bad tool glob escape", mediator.Scope{Tools: []string{`a\`}}, "bad glob syntax"},
		{"tool glob space", mediator.Scope{Tools: []string{"a b"}}, "spaces or control"},
		{"tool glob control", mediator.Scope{Tools: []string{"a\x00"}}, "spaces or control"},
		{"65 tool globs", mediator.Scope{Tools: many(65, "a")}, "65 tool globs: at most 64"},
		{"64 tool globs", mediator.Scope{Tools: many(64, "a")}, ""},
		{"65 constraints", mediator.Scope{Constraints: manyCons}, "65 constraints: at most 64"},

		{"empty arg", mediator.Scope{Constraints: []mediator.Constraint{{Kind: mediator.ConstraintEnum, Values: []string{"a"}}}},
			`constraint 1 (arg "", kind enum): arg must not be empty`},
		{"long arg", mediator.Scope{Constraints: []mediator.Constraint{{Arg: strings.Repeat("a", 129), Kind: mediator.ConstraintEnum, Values: []string{"a"}}}},
			"arg longer than 128 bytes"},
		{"unprintable arg", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "a\nb", Kind: mediator.ConstraintEnum, Values: []string{"a"}}}},
			"arg must be printable"},
		{"invalid utf8 arg", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "a\xffb", Kind: mediator.ConstraintEnum, Values: []string{"a"}}}},
			"arg must be printable"},
		{"empty kind", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "a", Values: []string{"a"}}}},
			"kind must not be empty"},
		{"unknown kind", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "a", Kind: "regex", Values: []string{"a"}}}},
			`constraint 1 (arg "a", kind "regex"): unknown kind`},
		{"no values", mediator.Scope{Constraints: []mediator.Constraint{pfx()}}, "needs at least one value"},
		{"65 values", mediator.Scope{Constraints: []mediator.Constraint{pfx(many(65, "/srv")...)}}, "65 values: at most 64"},
		{"empty value", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "f", Kind: mediator.ConstraintEnum, Values: []string{"a", ""}}}},
			"values must not be empty"},
		{"long value", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "f", Kind: mediator.ConstraintEnum, Values: []string{strings.Repeat("a", 1025)}}}},
			"value longer than 1024 bytes"},
		{"max on enum", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "f", Kind: mediator.ConstraintEnum, Values: []string{"a"}, Max: maxPtr(1)}}},
			"max is only for kind max"},

		{"prefix relative to the upstream's root", mediator.Scope{Constraints: []mediator.Constraint{pfx("srv/reports")}}, ""},
		{"prefix relative unclean", mediator.Scope{Constraints: []mediator.Constraint{pfx("srv/./reports")}}, "clean relative"},
		{"prefix relative home", mediator.Scope{Constraints: []mediator.Constraint{pfx("~/x")}}, "clean relative"},
		{"prefix relative dot", mediator.Scope{Constraints: []mediator.Constraint{pfx(".")}}, "clean relative"},
		{"prefix mixed absolute and relative", mediator.Scope{Constraints: []mediator.Constraint{pfx("/srv", "notes")}}, "all absolute paths or all relative"},
		{"prefix dotdot", mediator.Scope{Constraints: []mediator.Constraint{pfx("/srv", "../etc")}},
			`constraint 1 (arg "path", kind prefix): value "../etc" must be an absolute path, or a clean relative one`},
		{"prefix inner dotdot", mediator.Scope{Constraints: []mediator.Constraint{pfx("/srv/../etc")}}, `without ".."`},
		{"prefix dots in name ok", mediator.Scope{Constraints: []mediator.Constraint{pfx("/srv/a..b")}}, ""},
		{"prefix NUL", mediator.Scope{Constraints: []mediator.Constraint{pfx("/srv\x00")}}, "control characters"},
		{"prefix percent", mediator.Scope{Constraints: []mediator.Constraint{pfx("/srv/%2e")}}, `"%"`},
		{"prefix backslash", mediator.Scope{Constraints: []mediator.Constraint{pfx(`/srv\x`)}}, `"\"`},
		{"prefix tilde", mediator.Scope{Constraints: []mediator.Constraint{pfx("~/x")}}, "absolute"},

		{"glob relative to the upstream's root", mediator.Scope{Constraints: []mediator.Constraint{glob("*.csv")}}, ""},
		{"glob relative home", mediator.Scope{Constraints: []mediator.Constraint{glob("~/*.csv")}}, `must not start with "~"`},
		{"glob dotdot", mediator.Scope{Constraints: []mediator.Constraint{glob("/srv/**/../x")}}, `without ".."`},
		{"glob unclean", mediator.Scope{Constraints: []mediator.Constraint{glob("/srv//x")}}, `must be clean`},
		{"glob trailing slash", mediator.Scope{Constraints: []mediator.Constraint{glob("/srv/")}}, `must be clean`},
		{"glob dot", mediator.Scope{Constraints: []mediator.Constraint{glob("/srv/./x")}}, `must be clean`},
		{"glob bad class", mediator.Scope{Constraints: []mediator.Constraint{glob("/srv/[x")}}, "bad glob syntax"},
		{"glob partial doublestar", mediator.Scope{Constraints: []mediator.Constraint{glob("/srv/**.csv")}}, `"**" must be a whole path segment`},
		{"glob percent", mediator.Scope{Constraints: []mediator.Constraint{glob("/srv/%2a")}}, `"%"`},
		{"glob backslash", mediator.Scope{Constraints: []mediator.Constraint{glob(`/srv/\*`)}}, `"\"`},

		{"host star alone", mediator.Scope{Constraints: []mediator.Constraint{host("*")}}, `"*" is only allowed`},
		{"host star middle", mediator.Scope{Constraints: []mediator.Constraint{host("api.*.com")}}, `"*" is only allowed`},
		{"host star partial", mediator.Scope{Constraints: []mediator.Constraint{host("*api.example.com")}}, `"*" is only allowed`},
		{"host scheme", mediator.Scope{Constraints: []mediator.Constraint{host("https://api.example.com")}}, "without scheme, port or path"},
		{"host port", mediator.Scope{Constraints: []mediator.Constraint{host("api.example.com:443")}}, "without scheme, port or path"},
		{"host path", mediator.Scope{Constraints: []mediator.Constraint{host("api.example.com/x")}}, "without scheme, port or path"},
		{"host userinfo", mediator.Scope{Constraints: []mediator.Constraint{host("u@api.example.com")}}, "without scheme, port or path"},
		{"host space", mediator.Scope{Constraints: []mediator.Constraint{host("api example.com")}}, "without scheme, port or path"},
		{"host empty label", mediator.Scope{Constraints: []mediator.Constraint{host("api..example.com")}}, "must be a host name"},
		{"host dash label", mediator.Scope{Constraints: []mediator.Constraint{host("-api.example.com")}}, "must be a host name"},
		{"host numeric tld", mediator.Scope{Constraints: []mediator.Constraint{host("*.0.0.1")}}, "must be a host name"},
		{"host ipv4 shorthand", mediator.Scope{Constraints: []mediator.Constraint{host("127.1")}}, "must be a host name"},
		{"host unicode", mediator.Scope{Constraints: []mediator.Constraint{host("bücher.example")}}, "must be a host name"},
		{"host zone", mediator.Scope{Constraints: []mediator.Constraint{host("fe80::1%eth0")}}, "without scheme"},
		{"host long label", mediator.Scope{Constraints: []mediator.Constraint{host(strings.Repeat("a", 64) + ".com")}}, "must be a host name"},

		{"max negative", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(-1)}}},
			`constraint 1 (arg "amount", kind max): max -1 is negative: negative limits are not allowed`},
		{"max missing", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "amount", Kind: mediator.ConstraintMax}}}, "kind max needs max"},
		{"max NaN", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(math.NaN())}}}, "finite"},
		{"max Inf", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(math.Inf(1))}}}, "finite"},
		{"max with values", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(1), Values: []string{"2"}}}}, "takes no values"},

		{"bad data class", mediator.Scope{MaxDataClass: "secret"}, `max_data_class "secret"`},
		{"bad risk", mediator.Scope{MaxRisk: "extreme"}, `max_risk "extreme"`},
		{"second constraint numbered 2", mediator.Scope{Constraints: []mediator.Constraint{pfx("/srv"), pfx("/srv", "../etc")}},
			`constraint 2 (arg "path", kind prefix): value "../etc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateScope(tt.scope)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("ValidateScope: %v", err)
				}
				if _, err := Compile(tt.scope); err != nil {
					t.Fatalf("Compile: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateScope accepted, want error containing %q", tt.err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %q does not contain %q", err, tt.err)
			}
			if !errors.Is(err, ErrInvalidScope) {
				t.Fatalf("error %v does not wrap ErrInvalidScope", err)
			}
			if _, cerr := Compile(tt.scope); cerr == nil {
				t.Fatal("Compile accepted an invalid scope")
			}
		})
	}
}

func TestParseScopeJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  string
		want mediator.Scope
	}{
		{"full", `{"tools":["files__read_*"],"constraints":[{"arg":"path","kind":"prefix","values":["/srv/reports"]},
			{"arg":"amount","kind":"max","max":100}],"max_data_class":"internal","max_risk":"low"}`, "",
			mediator.Scope{Tools: []string{"files__read_*"}, Constraints: []mediator.Constraint{
				{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/reports"}},
				{Arg: "amount", Kind: mediator.ConstraintMax, Max: maxPtr(100)}},
				MaxDataClass: mediator.DataInternal, MaxRisk: mediator.RiskLow}},
		{"empty object", `{}`, "", mediator.Scope{}},
		{"white space", " \n{ }\n ", "", mediator.Scope{}},
		{"unknown field", `{"tools":[],"extra":1}`, `unknown field "extra"`, mediator.Scope{}},
		{"unknown nested field", `{"constraints":[{"arg":"a","kind":"enum","values":["x"],"regex":"y"}]}`, `unknown field "regex"`, mediator.Scope{}},
		{"case variant", `{"Tools":["a"]}`, `unknown field "Tools"`, mediator.Scope{}},
		{"duplicate field", `{"max_risk":"low","max_risk":"critical"}`, `duplicate field "max_risk"`, mediator.Scope{}},
		{"duplicate nested field", `{"constraints":[{"arg":"a","arg":"b","kind":"enum","values":["x"]}]}`, `duplicate field "arg"`, mediator.Scope{}},
		{"trailing object", `{}{}`, "trailing data", mediator.Scope{}},
		{"trailing garbage", `{} x`, "", mediator.Scope{}}, // any error
		{"null", `null`, "must be an object", mediator.Scope{}},
		{"array", `[]`, "must be an object", mediator.Scope{}},
		{"empty", ``, "empty", mediator.Scope{}},
		{"truncated", `{"tools":[`, "", mediator.Scope{}},
		{"wrong type", `{"tools":"a"}`, "cannot unmarshal", mediator.Scope{}},
		{"string max", `{"constraints":[{"arg":"a","kind":"max","max":"5"}]}`, "cannot unmarshal", mediator.Scope{}},
		{"negative max", `{"constraints":[{"arg":"amount","kind":"max","max":-5}]}`, "negative limits are not allowed", mediator.Scope{}},
		{"invalid glob", `{"tools":["a["]}`, "bad glob syntax", mediator.Scope{}},
		{"deep nesting", `{"tools":[[[[[[[[[[]]]]]]]]]]}`, "", mediator.Scope{}},
		{"too big", `{"tools":["` + strings.Repeat("a", MaxScopeJSON) + `"]}`, "at most 65536", mediator.Scope{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScopeJSON([]byte(tt.in))
			if tt.err == "" && tt.name != "trailing garbage" && tt.name != "truncated" && tt.name != "deep nesting" {
				if err != nil {
					t.Fatalf("ParseScopeJSON: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, got %+v", got)
			}
			if !errors.Is(err, ErrInvalidScope) {
				t.Fatalf("error %v does not wrap ErrInvalidScope", err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %q does not contain %q", err, tt.err)
			}
			if !reflect.DeepEqual(got, mediator.Scope{}) {
				t.Fatalf("error with non-zero scope %+v", got)
			}
		})
	}
}

func TestParseConstraint(t *testing.T) {
	tests := []struct {
		in   string
		want mediator.Constraint
		err  string
		fmt  string // FormatConstraint of want; "" = in
	}{
		{in: "path:prefix=/srv/reports", want: mediator.Constraint{Arg: "path", Kind: "prefix", Values: []string{"/srv/reports"}}},
		{in: "url:host=api.example.com,*.example.org", want: mediator.Constraint{Arg: "url", Kind: "host", Values: []string{"api.example.com", "*.example.org"}}},
		{in: "url:host=api.example.com, *.example.org", want: mediator.Constraint{Arg: "url", Kind: "host", Values: []string{"api.example.com", "*.example.org"}},
			fmt: "url:host=api.example.com,*.example.org"},
		{in: "amount:max=100", want: mediator.Constraint{Arg: "amount", Kind: "max", Max: maxPtr(100)}},
		{in: "amount:max=2.5", want: mediator.Constraint{Arg: "amount", Kind: "max", Max: maxPtr(2.5)}},
		{in: "amount:max=1e3", want: mediator.Constraint{Arg: "amount", Kind: "max", Max: maxPtr(1000)}, fmt: "amount:max=1000"},
		{in: "format:enum=csv,json", want: mediator.Constraint{Arg: "format", Kind: "enum", Values: []string{"csv", "json"}}},
		{in: "path:glob=/srv/**/*.csv", want: mediator.Constraint{Arg: "path", Kind: "glob", Values: []string{"/srv/**/*.csv"}}},
		{in: "ns:arg:enum=a=b", want: mediator.Constraint{Arg: "ns:arg", Kind: "enum", Values: []string{"a=b"}}},

		{in: "amount:max=-1", err: "negative limits are not allowed"},
		{in: "amount:max=inf", err: "finite"},
		{in: "amount:max=NaN", err: "finite"},
		{in: "amount:max=abc", err: `max "abc" is not a number`},
		{in: "amount:max=1,2", err: "is not a number"},
		{in: "path:prefix=../etc", err: `value "../etc" must be an absolute path, or a clean relative one`},
		{in: "path:prefix=", err: "values must not be empty"},
		{in: "path:prefix=/srv,", err: "values must not be empty"},
		{in: "path=/srv", err: `missing ":KIND"`},
		{in: "path:prefix", err: "use ARG:KIND=V1,V2"},
		{in: ":prefix=/srv", err: "arg must not be empty"},
		{in: "path:regex=.*", err: "unknown kind"},
		{in: "path:PREFIX=/srv", err: "unknown kind"},
		{in: "url:host=*", err: `"*" is only allowed`},
		{in: "path:glob=/srv/[", err: "bad glob syntax"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseConstraint(tt.in)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				if !errors.Is(err, ErrInvalidScope) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %q: want ErrInvalidScope containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			wantFmt := tt.fmt
			if wantFmt == "" {
				wantFmt = tt.in
			}
			if f := FormatConstraint(got); f != wantFmt {
				t.Fatalf("FormatConstraint = %q, want %q", f, wantFmt)
			}
			again, err := ParseConstraint(FormatConstraint(got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestNarrows(t *testing.T) {
	catalog := []mediator.Tool{
		{Name: "files__read_file"}, {Name: "files__read_multiple"}, {Name: "files__list_directory"},
		{Name: "files__write_file"}, {Name: "files__delete"}, {Name: "web__fetch"},
	}
	tests := []struct {
		name          string
		parent, child mediator.Scope
		err           []string // substrings; nil = narrows
	}{
		{"both empty", mediator.Scope{}, mediator.Scope{}, nil},
		{"child narrower tools", mediator.Scope{Tools: []string{"files__*"}}, mediator.Scope{Tools: []string{"files__read_*"}}, nil},
		{"child same tools", mediator.Scope{Tools: []string{"files__read_*"}}, mediator.Scope{Tools: []string{"files__read_*"}}, nil},
		{"child empty tools inherits", mediator.Scope{Tools: []string{"files__read_*"}}, mediator.Scope{}, nil},
		{"parent any tool", mediator.Scope{}, mediator.Scope{Tools: []string{"*"}}, nil},
		{"child glob matching nothing", mediator.Scope{Tools: []string{"files__read_*"}}, mediator.Scope{Tools: []string{"db__*"}}, nil},
		{"child different glob same tools", mediator.Scope{Tools: []string{"files__read_file", "files__read_multiple"}},
			mediator.Scope{Tools: []string{"files__read_*"}}, nil},
		{"child wider tools", mediator.Scope{Tools: []string{"files__read_*"}}, mediator.Scope{Tools: []string{"files__*"}},
			[]string{`tool glob "files__*" allows "files__list_directory", "files__write_file", "files__delete"`}},
		{"child star", mediator.Scope{Tools: []string{"files__read_file"}}, mediator.Scope{Tools: []string{"*"}},
			[]string{`tool glob "*" allows "files__read_multiple", "files__list_directory", "files__write_file", "files__delete", "web__fetch"`}},
		{"child lower class", mediator.Scope{MaxDataClass: mediator.DataPII}, mediator.Scope{MaxDataClass: mediator.DataInternal}, nil},
		{"child equal class", mediator.Scope{MaxDataClass: mediator.DataPII}, mediator.Scope{MaxDataClass: mediator.DataPII}, nil},
		{"child inherits class", mediator.Scope{MaxDataClass: mediator.DataPII}, mediator.Scope{}, nil},
		{"parent unlimited class", mediator.Scope{}, mediator.Scope{MaxDataClass: mediator.DataFinancial}, nil},
		{"child higher class", mediator.Scope{MaxDataClass: mediator.DataConfidential}, mediator.Scope{MaxDataClass: mediator.DataPII},
			[]string{"max_data_class pii above the parent's confidential"}},
		{"child higher risk", mediator.Scope{MaxRisk: mediator.RiskMedium}, mediator.Scope{MaxRisk: mediator.RiskCritical},
			[]string{"max_risk critical above the parent's medium"}},
		{"child lower risk", mediator.Scope{MaxRisk: mediator.RiskHigh}, mediator.Scope{MaxRisk: mediator.RiskLow}, nil},
		{"everything widens", mediator.Scope{Tools: []string{"web__*"}, MaxRisk: mediator.RiskLow, MaxDataClass: mediator.DataPublic},
			mediator.Scope{Tools: []string{"files__delete"}, MaxRisk: mediator.RiskHigh, MaxDataClass: mediator.DataInternal},
			[]string{"max_data_class internal", "max_risk high", `tool glob "files__delete" allows "files__delete"`}},
		{"constraints never widen", mediator.Scope{Constraints: []mediator.Constraint{{Arg: "path", Kind: "prefix", Values: []string{"/srv/reports"}}}},
			mediator.Scope{Constraints: []mediator.Constraint{{Arg: "path", Kind: "prefix", Values: []string{"/"}}}}, nil},
		{"invalid child", mediator.Scope{}, mediator.Scope{MaxRisk: "extreme"}, []string{"child scope", "invalid scope"}},
		{"invalid parent", mediator.Scope{Tools: []string{"["}}, mediator.Scope{}, []string{"parent scope", "invalid scope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Narrows(tt.parent, tt.child, catalog)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("Narrows: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Narrows accepted a wider child")
			}
			for _, s := range tt.err {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not contain %q", err, s)
				}
			}
			invalid := strings.Contains(tt.name, "invalid")
			if invalid != errors.Is(err, ErrInvalidScope) || invalid == errors.Is(err, ErrWidens) {
				t.Fatalf("error %v: wrong sentinel", err)
			}
		})
	}
	// More than five widening tools are summarised.
	var big []mediator.Tool
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7"} {
		big = append(big, mediator.Tool{Name: n})
	}
	err := Narrows(mediator.Scope{Tools: []string{"b"}}, mediator.Scope{Tools: []string{"a*"}}, big)
	if err == nil || !strings.Contains(err.Error(), `"a5" and 2 more`) {
		t.Fatalf("summary: %v", err)
	}
}
