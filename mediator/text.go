package mediator

import "unicode/utf8"

// CutUTF8 returns the longest prefix of s of at most limit bytes that does
// not split a UTF-8 sequence, and whether it cut anything. Callers add their
// own mark of the cut ("…", "…[truncated]").
func CutUTF8(s string, limit int) (string, bool) {
	if len(s) <= limit {
		return s, false
	}
	n := max(limit, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
