package intent

import (
	"encoding/json"
	"net/url"
	"path"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mcp-mediator/mediator/mediator"
)

var pathSeeds = []string{
	"/srv/reports", "/srv/reports/a.csv", "/srv/reports/./x", "/srv/reports/../reports/x",
	"/srv/reports/../../etc/passwd", "/srv/reportsX", "srv/reports", "../etc", "~/x",
	"/srv/reports/..%2f..%2fetc", "/srv/reports/%2e%2e/%2e%2e/etc", "/srv/reports/%252e%252e%252f",
	`/srv/reports\..\..\etc`, "/srv/reports/x\x00", "/srv/reports/%00", "/srv/reports/%c0%ae%c0%ae/",
	"/srv/reports/．．／x", "/srv/reports/100%", "//srv/reports", "/srv/reports/%5c..%5c..%5cetc",
}

// FuzzCheckPath: whatever a prefix constraint "/srv/reports" accepts lies
// under /srv/reports in every form (raw and each percent-decoding, with
// backslashes as separators, cleaned), and the glob "/srv/reports/**"
// accepts exactly the same paths.
func FuzzCheckPath(f *testing.F) {
	for _, s := range pathSeeds {
		f.Add(s)
	}
	prefix := compileOne(f, mediator.ConstraintPrefix, "path", "/srv/reports")
	glob := compileOne(f, mediator.ConstraintGlob, "path", "/srv/reports/**")
	tool := mediator.Tool{Name: "t"}
	f.Fuzz(func(t *testing.T, s string) {
		args := map[string]any{"path": s}
		inPrefix := prefix.Check(tool, args) == nil
		if inGlob := glob.Check(tool, args) == nil; inGlob != inPrefix {
			t.Fatalf("%q: prefix says %v, glob /srv/reports/** says %v", s, inPrefix, inGlob)
		}
		if !inPrefix {
			return
		}
		form := s
		for round := 0; ; round++ {
			if !utf8.ValidString(form) || strings.ContainsFunc(form, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("%q accepted with a control character or invalid UTF-8 in form %q", s, form)
			}
			p := strings.ReplaceAll(form, `\`, "/")
			if !strings.HasPrefix(p, "/") {
				t.Fatalf("%q accepted, form %q is not absolute", s, form)
			}
			clean := path.Clean(p)
			if clean != "/srv/reports" && !strings.HasPrefix(clean, "/srv/reports/") {
				t.Fatalf("%q accepted, form %q cleans to %q outside /srv/reports", s, form, clean)
			}
			for _, seg := range strings.Split(clean, "/") {
				if seg == ".." {
					t.Fatalf("%q accepted, form %q keeps a \"..\" segment", s, form)
				}
			}
			if !strings.Contains(form, "%") {
				break
			}
			if round == maxDecodeRounds {
				t.Fatalf("%q accepted though still encoded after %d rounds", s, round)
			}
			next, err := url.PathUnescape(form)
			if err != nil {
				t.Fatalf("%q accepted with a malformed escape: %v", s, err)
			}
			form = next
		}
	})
}

var hostSeeds = []string{
	"https://api.example.com/x", "https://api.example.com:8443/x", "HTTPS://API.EXAMPLE.COM./",
	"https://api.example.com.evil.com", "https://evil.com#api.example.com", "https://api.example.com@evil.com",
	"javascript:alert(1)", "ftp://api.example.com", "https://a.example.org", "https://example.org",
	"http://10.0.0.1/", "http://[::1]/", `https://api.example.com\@evil.com`, "https://api.example.com%40evil.com",
	"http://10.1/", "https://u:p@a.example.org/",
}

// FuzzCheckHost: whatever the host constraint accepts is an absolute http
// or https URL without user information whose host is allowed, both as
// net/url reads it and as a naive authority split reads it.
func FuzzCheckHost(f *testing.F) {
	for _, s := range hostSeeds {
		f.Add(s)
	}
	c := compileOne(f, mediator.ConstraintHost, "url", "api.example.com", "*.example.org", "10.0.0.1")
	tool := mediator.Tool{Name: "t"}
	allowed := func(h string) bool {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		return h == "api.example.com" || h == "10.0.0.1" ||
			strings.HasSuffix(h, ".example.org") && len(h) > len(".example.org")
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c.Check(tool, map[string]any{"url": s}) != nil {
			return
		}
		if strings.ContainsAny(s, "\\ \t\r\n\x00") {
			t.Fatalf("%q accepted with white space, NUL or backslash", s)
		}
		for _, r := range s {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				t.Fatalf("%q accepted with white space or control character", s)
			}
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("%q accepted but net/url refuses it: %v", s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.User != nil || u.Opaque != "" {
			t.Fatalf("%q accepted: scheme %q, user %v, opaque %q", s, u.Scheme, u.User, u.Opaque)
		}
		if !allowed(u.Hostname()) {
			t.Fatalf("%q accepted with host %q", s, u.Hostname())
		}
		// A second reading: the authority runs from "//" to the first of
		// "/?#"; it must hold no '@' and name the same host.
		_, rest, ok := strings.Cut(s, "//")
		if !ok {
			t.Fatalf("%q accepted without //", s)
		}
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		if strings.Contains(rest, "@") {
			t.Fatalf("%q accepted with '@' in the authority", s)
		}
		host := rest
		if strings.HasPrefix(host, "[") {
			host = host[:strings.IndexByte(host, ']')+1]
		} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
		if !allowed(host) {
			t.Fatalf("%q accepted; the naive authority split reads host %q", s, host)
		}
	})
}

// FuzzParseScopeJSON: ParseScopeJSON never panics, what it accepts
// validates, compiles, and survives a round trip through encoding/json,
// and Check never panics on any arguments.
func FuzzParseScopeJSON(f *testing.F) {
	seeds := [][2]string{
		{`{"tools":["files__read_*"],"constraints":[{"arg":"path","kind":"prefix","values":["/srv/reports"]}],"max_risk":"low"}`,
			`{"path":"/srv/reports/x"}`},
		{`{"constraints":[{"arg":"amount","kind":"max","max":100},{"arg":"f","kind":"enum","values":["csv","1"]}]}`,
			`{"amount":5,"f":["csv",1]}`},
		{`{"constraints":[{"arg":"url","kind":"host","values":["*.example.com","::1"]}],"max_data_class":"pii"}`,
			`{"url":"https://a.example.com"}`},
		{`{"constraints":[{"arg":"p","kind":"glob","values":["/srv/**/*.csv"]}]}`, `{"p":[["x"]]}`},
		{`{"constraints":[{"arg":"amount","kind":"max","max":-1}]}`, `{}`},
		{`{"tools":["a"],"tools":["b"]}`, `null`},
		{`{"Tools":["a"]}`, `[]`},
		{`{} {}`, `{"a":{"b":null}}`},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	tools := []mediator.Tool{
		{Name: "files__read_file", Risk: mediator.RiskLow, DataClass: mediator.DataPublic},
		{Name: "x"},
	}
	f.Fuzz(func(t *testing.T, scope, argsJSON []byte) {
		s, err := ParseScopeJSON(scope)
		if err != nil {
			return
		}
		if err := ValidateScope(s); err != nil {
			t.Fatalf("accepted scope does not validate: %v", err)
		}
		c, err := Compile(s)
		if err != nil {
			t.Fatalf("accepted scope does not compile: %v", err)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseScopeJSON(b)
		if err != nil {
			t.Fatalf("re-encoded scope %s refused: %v", b, err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip changed the scope: %+v, %+v", s, again)
		}
		if err := Narrows(s, s, tools); err != nil {
			t.Fatalf("a scope widens itself: %v", err)
		}
		var args map[string]any
		_ = json.Unmarshal(argsJSON, &args)
		for _, tool := range tools {
			c.Check(tool, args)
		}
		if x, err := mediator.DecodeJSON(argsJSON); err == nil {
			m, _ := x.(map[string]any)
			for _, tool := range tools {
				c.Check(tool, m)
			}
		}
	})
}

// FuzzParseConstraint: ParseConstraint never panics, and what it accepts
// formats back to text it parses to the same constraint.
func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{"path:prefix=/srv/reports", "url:host=api.example.com,*.example.org", "amount:max=100",
		"format:enum=csv,json", "path:glob=/srv/**/*.csv", "a:b:enum=x=y", "amount:max=-1", "amount:max=0x1p4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConstraint(s)
		if err != nil {
			return
		}
		if err := ValidateScope(mediator.Scope{Constraints: []mediator.Constraint{c}}); err != nil {
			t.Fatalf("accepted constraint does not validate: %v", err)
		}
		text := FormatConstraint(c)
		again, err := ParseConstraint(text)
		if err != nil {
			t.Fatalf("%q formats to %q, refused: %v", s, text, err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("%q: round trip through %q changed %+v to %+v", s, text, c, again)
		}
	})
}

// FuzzCheckArgs feeds untrusted tool schemas and arguments to the
// classification and the walk: they must not panic, and a path outside the
// scope placed under "paths", at the top or nested, is always out of scope.
func FuzzCheckArgs(f *testing.F) {
	for _, s := range [][2]string{
		{`{"type":"object","properties":{"paths":{"type":"array","items":{"type":"string"}}}}`, `{"paths":["/srv/reports/a"]}`},
		{`{"type":"object","properties":{"source":{},"destination":true},"additionalProperties":false}`, `{"source":"/srv/reports/a","destination":"/srv/reports/b"}`},
		{`{"type":["object","null"],"properties":{"x":{"anyOf":[{"format":"uri"},false]}}}`, `{"x":"https://a"}`},
		{`{"type":"object","properties":{"edits":{"items":{"properties":{"file":{"type":"string"}}}}}}`, `{"edits":[{"file":"/srv/reports/x"}]}`},
		{`not json`, `{"a":{"b":{"c":[1,2,{"dir":null}]}}}`},
		{`{"type":"object","properties":{"pathPrefix":{"type":"string"}}}`, `{}`},
		{`{"type":"object","properties":{"paths":{"format":"uri"}}}`, `{"paths":"https://api.example.com/"}`},
	} {
		f.Add(s[0], s[1])
	}
	c, err := Compile(mediator.Scope{Constraints: []mediator.Constraint{
		{Arg: "path", Kind: mediator.ConstraintPrefix, Values: []string{"/srv/reports"}},
		{Arg: "url", Kind: mediator.ConstraintHost, Values: []string{"api.example.com"}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, schema, argsJSON string) {
		def, _ := json.Marshal(map[string]json.RawMessage{"name": json.RawMessage(`"t"`), "inputSchema": json.RawMessage(schema)})
		ta := NewToolArgs(mediator.Tool{Name: "u__t", Definition: def})
		var args map[string]any
		if json.Unmarshal([]byte(argsJSON), &args) != nil || args == nil {
			return
		}
		_ = c.CheckArgs(mediator.Tool{Name: "u__t"}, args, ta)
		args["paths"] = []any{"/etc/passwd"}
		if r := c.CheckArgs(mediator.Tool{Name: "u__t"}, args, ta); len(r) == 0 {
			t.Fatalf("paths /etc/passwd in scope with schema %s and args %s", schema, argsJSON)
		}
		nested := map[string]any{"wrap": []any{map[string]any{"paths": []any{"/etc/passwd"}}}}
		if r := c.CheckArgs(mediator.Tool{Name: "u__t"}, nested, ta); len(r) == 0 {
			t.Fatalf("nested paths /etc/passwd in scope with schema %s", schema)
		}
	})
}
