package mediator

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"sorted keys", `{"b":1, "a":{"d":[1, 2], "c":null}}`, `{"a":{"c":null,"d":[1,2]},"b":1}`},
		{"numbers keep text", `[1.0, 1e3, -0, 12345678901234567890]`, `[1.0,1e3,-0,12345678901234567890]`},
		{"no html escaping", `"<a&b>"`, `"<a&b>"`},
		{"escapes", `"\u0001\n\"\\\/\u00e9\u2028"`, "\"\\u0001\\n\\\"\\\\/\u00e9\\u2028\""},
		{"duplicate keys: last wins", `{"a":1,"a":2}`, `{"a":2}`},
		{"unicode key order", `{"é":1,"z":2,"A":3}`, `{"A":3,"z":2,"é":1}`},
		{"whitespace", " \n{ } \t", `{}`},
		{"invalid stays", `{"a":`, `{"a":`},
		{"trailing data stays", `{} {}`, `{} {}`},
		{"empty stays", ``, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err != nil {
				got = []byte(tt.in) // invalid text is an error; the case lists the input
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, seed := range []string{
		`{"b":1,"a":[true,false,null,"x"]}`, `1.50`, `"\u2028\ufffd\u0000"`, "\"\xff\"",
		`{"a":{"a":{"a":[]}}}`, `[1e400]`, `{"a":1,"a":2}`, `nope`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := CanonicalJSON(in)
		if !json.Valid(in) {
			if err == nil {
				t.Fatalf("invalid input %q accepted as %q", in, out)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("canonical form %q of %q is not valid JSON", out, in)
		}
		if again, _ := CanonicalJSON(out); !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
		a, errA := DecodeJSON(in)
		b, errB := DecodeJSON(out)
		if errA == nil && (errB != nil || !reflect.DeepEqual(a, b)) {
			t.Fatalf("canonical form %q differs in meaning from %q", out, in)
		}
	})
}
