package policy

import (
	"reflect"
	"strings"
	"testing"
)

func TestConditionFunctions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fn   func(...any) (any, error)
		args []any
		want any
		err  string
	}{
		{"host of a URL, lower-cased", fnHostOf, []any{"https://Docs.Example.COM:8443/a?b"}, "docs.example.com", ""},
		{"host with a trailing dot", fnHostOf, []any{"http://example.com./"}, "example.com", ""},
		{"user info does not fool hostOf", fnHostOf, []any{"https://example.com@evil.test/"}, "evil.test", ""},
		{"no host", fnHostOf, []any{"not a url"}, "", ""},
		{"unparsable URL", fnHostOf, []any{"http://[::1"}, "", ""},
		{"hostOf of a number fails", fnHostOf, []any{5.0}, nil, "not a string"},
		{"path inside", fnPathUnder, []any{"secrets/a.txt", "secrets"}, true, ""},
		{"the folder itself", fnPathUnder, []any{"/secrets/", "secrets"}, true, ""},
		{"dot-dot escape", fnPathUnder, []any{"notes/../secrets/k", "secrets"}, true, ""},
		{"backslashes", fnPathUnder, []any{`notes\..\secrets\k`, "secrets"}, true, ""},
		{"a sibling with the same prefix", fnPathUnder, []any{"secrets-public/a", "secrets"}, false, ""},
		{"climbing out of the root stays at the root", fnPathUnder, []any{"../../secrets", "secrets"}, true, ""},
		{"pathUnder wants two arguments", fnPathUnder, []any{"a"}, nil, "want 2 arguments"},
		{"glob", fnGlobMatch, []any{"demo__read_file", "demo__*"}, true, ""},
		{"glob miss", fnGlobMatch, []any{"other__x", "demo__*"}, false, ""},
		{"invalid glob at run time", fnGlobMatch, []any{"x", "["}, nil, "globMatch"},
		{"regexp", fnRegexMatch, []any{"INV-2026-001", `^INV-\d{4}-`}, true, ""},
		{"invalid regexp at run time", fnRegexMatch, []any{"x", "("}, nil, "regexMatch"},
		{"has a key", fnHas, []any{map[string]any{"a": nil}, "a"}, true, ""},
		{"has no key", fnHas, []any{map[string]any{}, "a"}, false, ""},
		{"has on passport attributes", fnHas, []any{map[string]string{"team": "x"}, "team"}, true, ""},
		{"has in a list", fnHas, []any{[]any{"a", "b"}, "b"}, true, ""},
		{"has on nothing", fnHas, []any{nil, "a"}, false, ""},
		{"has on a number fails", fnHas, []any{1.0, "a"}, nil, "not a map or list"},
		{"has with a numeric key fails", fnHas, []any{map[string]any{}, 1.0}, nil, "must be a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.fn(tc.args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// Every exported attribute has a getter, so that no field a condition may
// name (checkPath accepts it) fails at decision time.
func TestGettersCoverAttributes(t *testing.T) {
	t.Parallel()
	for prefix, typ := range requestTypes {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Type.Kind() == reflect.Struct { // r.obj.Shell: a getter per field
				for j := range f.Type.NumField() {
					if _, ok := getters[prefix+"."+f.Name+"."+f.Type.Field(j).Name]; !ok {
						t.Errorf("no getter for %s.%s.%s", prefix, f.Name, f.Type.Field(j).Name)
					}
				}
				continue
			}
			if _, ok := getters[prefix+"."+f.Name]; !ok {
				t.Errorf("no getter for %s.%s", prefix, f.Name)
			}
		}
	}
	a := &Attributes{Sub: Subject{ID: "x", Attrs: map[string]string{"k": "v"}, Trust: 2, TrustName: "medium"},
		Obj:       Object{Args: map[string]any{"a": map[string]any{"b": 1.0}}},
		Behaviour: BehaviourAttrs{Score: 0.7, Reasons: []any{"r"}, Novel: true, Calls: 12, On: true},
		Session:   SessionAttrs{Tainted: true, MaxDataClass: 4, MaxDataClassName: "pii", SecretsSeen: true}}
	a.Obj.ArgSecrets = 2
	a.Obj.Shell = ShellAttrs{Parsed: true, Error: "e", Words: []any{"w"}, Programs: []any{"rm"}, Commands: 2, Compound: true,
		Substitution: true, Heredoc: true, Dynamic: true, PipeToShell: true, Network: true, FetchToShell: true, Destructive: true, Sudo: true}
	a.Obj.Workspace, a.Obj.Paths, a.Obj.Writes, a.Obj.WritesOutside = "/w", []any{"/w/a"}, []any{"/w/b"}, true
	a.Env.attrs = a
	for name, g := range getters {
		parts := strings.Split(name, ".")
		rv := reflect.ValueOf(a).Elem().FieldByName(map[string]string{"r_sub": "Sub", "r_obj": "Obj", "r_env": "Env",
			"r_intent": "Intent", "r_behaviour": "Behaviour", "r_session": "Session"}[parts[0]])
		for _, p := range parts[1:] {
			rv = rv.FieldByName(p)
		}
		got, err := g(paramsOf(a))
		if err != nil || !reflect.DeepEqual(got, rv.Interface()) {
			t.Errorf("getter %s returns %v, %v; the field holds %v", name, got, err, rv)
		}
	}
}

func TestAttributePaths(t *testing.T) {
	t.Parallel()
	a := &Attributes{Sub: Subject{Attrs: map[string]string{"team": "blue"}},
		Obj: Object{Args: map[string]any{"payee": map[string]any{"iban": "DE00"}, "n": 1.0}}}
	cases := []struct {
		path []string
		want any
		err  string
	}{
		{[]string{"r_obj", "Args", "payee", "iban"}, "DE00", ""},
		{[]string{"r_sub", "Attrs", "team"}, "blue", ""},
		{[]string{"r_obj", "Args", "missing"}, nil, `argument "missing" is required`},
		{[]string{"r_obj", "Args", "n", "x"}, nil, `argument "n" is not an object`},
		{[]string{"r_sub", "Attrs", "nope"}, nil, "not present"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.path, "."), func(t *testing.T) {
			g, err := pathGetter(tc.path, anyType)
			if err != nil {
				t.Fatal(err)
			}
			got, err := g(paramsOf(a))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestAnyGlob(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []any
		want any
		err  string
	}{
		{"match in spread list", []any{"**/.github/workflows/**", "/p/main.go", "/p/.github/workflows/ci.yml"}, true, ""},
		{"match in nested list", []any{"**/*.pem", []any{"/p/a.go", "/p/k.pem"}}, true, ""},
		{"no match", []any{"**/*.pem", "/p/a.go"}, false, ""},
		{"empty list", []any{"**/*.pem"}, false, ""},
		{"non-string element", []any{"**", 1.0}, nil, "not strings"},
		{"pattern not a string", []any{1.0, "a"}, nil, "not a glob"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fnAnyGlob(tc.args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
