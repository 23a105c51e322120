package mediator

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckIdentity(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		want     string // in the error; "" accepts
	}{
		{"plain ASCII id", "alice", ""},
		{"mixed case is fine (it compares folded)", "Alice.Smith@example.com", ""},
		{"a space between words", "team payments", ""},
		{"SPIFFE id", "spiffe://example.org/ns/agent-7", ""},
		{"accented Latin", "josé", ""},
		{"Cyrillic name with letters that are not Latin look-alikes", "дмитрий", ""},
		{"Greek name", "αλέξανδρος", ""},
		{"Japanese with Latin", "tanaka田中さん", ""},
		{"Korean with Latin", "kim김", ""},
		{"trailing space", "alice ", "space at an end"},
		{"leading space", " alice", "space at an end"},
		{"two spaces", "team  payments", "two spaces in a row"},
		{"zero-width space", "alice\u200b", `U+200B, a format character`},
		{"zero-width joiner", "al\u200dice", "U+200D"},
		{"right-to-left override", "\u202eecila", "U+202E, a format character (zero-width, joiner or bidi control)"},
		{"soft hyphen", "ali\u00adce", "U+00AD"},
		{"word joiner", "alice\u2060", "U+2060"},
		{"tag character", "alice\U000E0041", "U+E0041"},
		{"variation selector", "alice\ufe0f", "variation selector"},
		{"Hangul filler", "alice\u3164", "filler"},
		{"combining grapheme joiner", "ali\u034fce", "U+034F"},
		{"braille blank", "alice\u2800", "blank"},
		{"no-break space", "alice\u00a0smith", "white space other than a plain space"},
		{"ideographic space", "alice\u3000", "white space"},
		{"line separator", "alice\u2028", "U+2028"},
		{"newline", "alice\nbob", "control character"},
		{"NUL", "alice\x00", "control character"},
		{"private use", "alice\ue000", "private-use"},
		{"unassigned", "\u0378", "unassigned"},
		{"Cyrillic a among Latin", "\u0430lice", "mixes the scripts Cyrillic and Latin"},
		{"Greek omicron among Latin", "b\u03bfb", "mixes the scripts Greek and Latin"},
		{"all-Cyrillic look-alike of a Latin name", "\u0430\u04cf\u0456\u0441\u0435", `reads as "alice"`},
		{"all-Greek look-alike", "\u039a\u0399\u039c", `reads as "KIM"`},
		{"full-width letters", "ａｌｉｃｅ", `write it as "alice"`},
		{"mathematical bold letters", "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e", "NFKC"},
		{"decomposed accent", "jose\u0301", "NFKC"},
		{"ligature", "ﬁona", "NFKC"},
		{"empty", "", "empty"},
		{"only spaces", "   ", "empty"},
		{"invalid UTF-8", "alice\xff", "not valid UTF-8"},
		{"too long", strings.Repeat("a", MaxIdentityBytes+1), "longer than 512 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckIdentity(tc.in)
			checkIdentityErr(t, err, tc.want)
		})
	}
}

func checkIdentityErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var ie *IdentityError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidIdentity) {
		t.Fatalf("err = %v (%T); want an *IdentityError wrapping ErrInvalidIdentity", err, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q; want it to contain %q", err, want)
	}
	for _, r := range err.Error() {
		if r >= utf8.RuneSelf && r != '…' {
			t.Errorf("error text holds the raw character %U; it must be escaped: %q", r, err)
			break
		}
	}
}

func TestNormalizeIdentity(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		err            string
	}{
		{"already canonical", "alice", "alice", ""},
		{"case", "Alice", "alice", ""},
		{"surrounding spaces", "  alice ", "alice", ""},
		{"spaces inside collapse", "team   payments", "team payments", ""},
		{"no-break space becomes a space", "team\u00a0payments", "team payments", ""},
		{"full-width", "ＡＬＩＣＥ", "alice", ""},
		{"mathematical bold", "\U0001d400lice", "alice", ""},
		{"sharp s folds", "Straße", "strasse", ""},
		{"Greek final sigma folds", "ΟΔΥΣΣΕΥΣ", "οδυσσευσ", ""},
		{"zero-width space still refused", "alice\u200b", "", "U+200B"},
		{"bidi override still refused", "\u202ealice", "", "U+202E"},
		{"Cyrillic look-alike still refused", "\u0430lice", "", "mixes the scripts"},
		{"tab refused, not collapsed", "alice\tbob", "", "control character"},
		{"empty", " ", "", "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeIdentity(tc.in)
			checkIdentityErr(t, err, tc.err)
			if got != tc.want {
				t.Errorf("NormalizeIdentity(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSameIdentity(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		a, b string
		same bool
	}{
		{"equal", "alice", "alice", true},
		{"case", "Alice", "alice", true},
		{"trailing space", "alice ", "alice", true},
		{"zero-width space", "alice\u200b", "alice", true},
		{"bidi mark", "alice\u200e", "alice", true},
		{"Cyrillic a", "\u0430lice", "alice", true},
		{"all Cyrillic look-alike", "\u0430\u04cf\u0456\u0441\u0435", "alice", true},
		{"full-width", "ａｌｉｃｅ", "Alice", true},
		{"sharp s", "straße", "STRASSE", true},
		{"different people", "alice", "bob", false},
		{"prefix is not the same", "alice", "alice2", false},
		{"empty is nobody", "", "", false},
		{"invisible only is nobody", "\u200b", "\u200c", false},
	}
	for _, tc := range cases {
		if got := SameIdentity(tc.a, tc.b); got != tc.same {
			t.Errorf("%s: SameIdentity(%q, %q) = %v; want %v", tc.name, tc.a, tc.b, got, tc.same)
		}
		if got := SameIdentity(tc.b, tc.a); got != tc.same {
			t.Errorf("%s: SameIdentity is not symmetric for %q, %q", tc.name, tc.a, tc.b)
		}
	}
}

// FuzzIdentity checks the three functions against each other on any
// input: nothing panics; a canonical form is stable, passes CheckIdentity,
// holds nothing invisible and is the same identity as its input; whatever
// CheckIdentity accepts normalizes.
func FuzzIdentity(f *testing.F) {
	for _, s := range []string{"alice", "Alice ", "alice\u200b", "\u0430lice", "ａｌｉｃｅ", "Straße", "tanaka田中",
		"team  payments", "\u202eecila", "jose\u0301", "ﬁ", "ΣΑΣ", "\u0130stanbul", "\xff", "", "\u3164"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeIdentity(s)
		checkErr := CheckIdentity(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidIdentity) {
				t.Fatalf("NormalizeIdentity(%q) error %v does not wrap ErrInvalidIdentity", s, err)
			}
			if checkErr == nil {
				t.Fatalf("CheckIdentity accepts %q, which NormalizeIdentity refuses: %v", s, err)
			}
			return
		}
		if n2, err := NormalizeIdentity(n); err != nil || n2 != n {
			t.Fatalf("not stable: %q -> %q -> %q, %v", s, n, n2, err)
		}
		if err := CheckIdentity(n); err != nil {
			t.Fatalf("canonical form %q of %q refused: %v", n, s, err)
		}
		if !SameIdentity(s, n) {
			t.Fatalf("%q and its canonical form %q are not the same identity", s, n)
		}
		for _, r := range n {
			if invisible(r) != "" {
				t.Fatalf("canonical form %q holds invisible %U", n, r)
			}
		}
	})
}

// BenchmarkCheckIdentity measures the check a token's claims pass on
// verification (cached afterwards), for an ASCII and a non-Latin name.
func BenchmarkCheckIdentity(b *testing.B) {
	for _, s := range []string{"agent-42@example.com", strings.Repeat("дмитрий", 10)} {
		b.Run(strings.ToValidUTF8(s[:4], ""), func(b *testing.B) {
			for b.Loop() {
				if err := CheckIdentity(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
