package mediator

import (
	"bytes"
	"strings"
	"testing"
)

// The one-pass canonicaliser must give exactly what decoding with
// DecodeJSON and encoding with AppendCanonical gives (the reference), or
// fail where it fails: stored hashes and "identical call" checks depend on
// these bytes.

func referenceCanonical(raw []byte, rw *Rewrite) ([]byte, error) {
	x, err := DecodeJSON(raw)
	if err != nil {
		return nil, err
	}
	return AppendCanonical(nil, referenceRewrite(x, rw)), nil
}

func referenceRewrite(x any, rw *Rewrite) any {
	if rw == nil {
		return x
	}
	switch v := x.(type) {
	case string:
		if rw.String != nil {
			return rw.String(v)
		}
	case []any:
		for i, e := range v {
			v[i] = referenceRewrite(e, rw)
		}
	case map[string]any:
		for k, e := range v {
			if e != nil && rw.Hide != nil && rw.Hide([]byte(k)) {
				v[k] = rw.Hidden
				continue
			}
			v[k] = referenceRewrite(e, rw)
		}
	}
	return x
}

// testRewrite upper-cases strings holding "secret" and hides members whose
// key holds "pass".
var testRewrite = &Rewrite{
	String: func(s string) string {
		if strings.Contains(s, "secret") {
			return strings.ToUpper(s)
		}
		return s
	},
	Hide:   func(k []byte) bool { return bytes.Contains(k, []byte("pass")) },
	Hidden: "[REDACTED]",
}

var canonicalSeeds = []string{
	`{"b":1,"a":[true,false,null,"x"]}`, `1.50`, `"\u2028\ufffd\u0000"`, "\"\xff\"",
	`{"a":{"a":{"a":[]}}}`, `[1e400]`, `{"a":1,"a":2}`, `nope`, ``, ` `, `-`, `01`, `1.`, `1e`, `-0.0e+5`,
	`"\ud800"`, `"\ud800\udc00"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\ud800x"`, `"\u00"`, `"\x"`,
	"\"a\tb\"", `{"a" : 1 , "b" :[ 1 , 2 ] }`, `{"pass":{"x":1},"passwd":null,"k":"my secret"}`,
	`{"é":1,"z":2,"A":3,"a":{"pass":"x","pass":null}}`, `[1,]`, `{"a":1,}`, `{,}`, `[`, `]`, `{"a"}`,
	`truefalse`, `nul`, `[1 2]`, `"` + strings.Repeat("ab\"", 3) + `"`, "\"\x7f\"", `{"a":"\/"}`,
}

// deepSeeds sit at encoding/json's nesting limit (too slow to mutate).
var deepSeeds = []string{
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
}

func TestAppendCanonicalJSONMatchesReference(t *testing.T) {
	for _, seed := range append(canonicalSeeds, deepSeeds...) {
		for _, rw := range []*Rewrite{nil, testRewrite} {
			checkAgainstReference(t, []byte(seed), rw)
		}
	}
}

func FuzzAppendCanonicalJSON(f *testing.F) {
	for _, seed := range canonicalSeeds {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, rewrite bool) {
		rw := (*Rewrite)(nil)
		if rewrite {
			rw = testRewrite
		}
		checkAgainstReference(t, in, rw)
	})
}

func checkAgainstReference(t *testing.T, in []byte, rw *Rewrite) {
	t.Helper()
	want, wantErr := referenceCanonical(in, rw)
	got, err := AppendCanonicalJSON([]byte("prefix"), in, rw)
	switch {
	case (err != nil) != (wantErr != nil):
		t.Fatalf("%.80q (rewrite %v): err = %v, reference err = %v", in, rw != nil, err, wantErr)
	case err != nil:
		if string(got) != "prefix" {
			t.Fatalf("%.80q: failed but changed dst to %.80q", in, got)
		}
	case !bytes.Equal(got, append([]byte("prefix"), want...)):
		t.Fatalf("%.80q (rewrite %v):\n got %.200q\nwant %.200q", in, rw != nil, got[6:], want)
	}
}

func BenchmarkCanonical(b *testing.B) {
	raw := []byte(`{"content":[{"type":"text","text":"ping"}],"structuredContent":{"n":12,"ok":true,"tags":["a","b"]}}`)
	b.Run("one-pass", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = AppendCanonicalJSON(buf[:0], raw, nil)
		}
	})
	b.Run("decode-encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = referenceCanonical(raw, nil)
		}
	})
}
