package mediator

import (
	"testing"
	"unicode/utf8"
)

func TestCutUTF8(t *testing.T) {
	tests := []struct {
		s       string
		limit   int
		want    string
		wantCut bool
	}{
		{"abc", 3, "abc", false},
		{"abc", 5, "abc", false},
		{"abcd", 3, "abc", true},
		{"aé", 2, "a", true},  // é is 2 bytes: not split
		{"a日本", 3, "a", true}, // 日 is 3 bytes
		{"a日本", 4, "a日", true},
		{"日本", 0, "", true},
		{"日本", -1, "", true},
	}
	for _, tc := range tests {
		got, cut := CutUTF8(tc.s, tc.limit)
		if got != tc.want || cut != tc.wantCut {
			t.Errorf("CutUTF8(%q, %d) = %q, %v; want %q, %v", tc.s, tc.limit, got, cut, tc.want, tc.wantCut)
		}
	}
	// Errors quote untrusted names: cut, they stay valid UTF-8.
	if got := trimForError("aé", 2); got != "a…" || !utf8.ValidString(got) {
		t.Errorf("trimForError split a character: %q", got)
	}
}
