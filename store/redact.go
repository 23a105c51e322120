package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mcp-mediator/mediator/mediator"
)

// redactedText replaces every secret the redactor finds.
const redactedText = "[REDACTED]"

// secretGroup is the name of the subexpression that, when a pattern has it,
// is the only part of a match that gets replaced.
const secretGroup = "secret"

// builtinPattern is a built-in secret pattern and its needles: lower-case
// literals of which a string must contain at least one for the pattern to
// possibly match, checked first because regexp matching is slow.
type builtinPattern struct {
	text    string
	needles []string
}

// builtinPatterns lists the secret patterns every store redacts. A pattern
// with a subexpression named "secret" has only that part replaced.
func builtinPatterns() []builtinPattern {
	return []builtinPattern{
		// OpenAI / Anthropic style keys: sk-..., sk-proj-..., sk-ant-...
		{`\bsk-[A-Za-z0-9_-]{16,}`, []string{"sk-"}},
		// GitHub tokens.
		{`\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}`, []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}},
		{`\bgithub_pat_[A-Za-z0-9_]{20,}`, []string{"github_pat_"}},
		// AWS access key ids.
		{`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`, []string{"akia", "asia"}},
		// Slack tokens.
		{`\bxox[abposr]-[A-Za-z0-9-]{10,}`, []string{"xox"}},
		// Bearer tokens (the word "Bearer" stays).
		{`(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/-]{8,}=*)`, []string{"bearer"}},
		// Authorization header values of any scheme.
		{`(?i)\bauthorization["']?\s*[:=]\s*["']?(?:(?:basic|bearer|token)\s+)?(?P<secret>[^\s"',;}]+)`,
			[]string{"authorization"}},
		// JSON Web Tokens.
		{`\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*`, []string{"eyj"}},
		// key=value and "key": "value" inside text.
		{`(?i)(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)["']?\s*[:=]\s*["']?(?P<secret>[^\s"'&,;}]+)`,
			[]string{"passw", "secret", "token", "key"}},
		// Passwords in URLs: scheme://user:password@host.
		{`(?i)\b[a-z][a-z0-9+.-]*://[^:/?#\s@]+:(?P<secret>[^@/?#\s]+)@`, []string{"://"}},
		// PEM private keys.
		{`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----`, []string{"private key"}},
	}
}

// pattern is one compiled secret pattern.
type pattern struct {
	re *regexp.Regexp
	// needles prefilter the pattern (see builtinPattern); nil: always run.
	needles []string
	// group is the index of the "secret" subexpression, or 0 for the whole match.
	group int
}

// redactor replaces secrets in text and in JSON values.
type redactor struct {
	patterns []pattern
	rewrite  mediator.Rewrite // redacts while canonicalising JSON
	// approval redacts arguments for the approval page: by value, see
	// withhold.
	approval mediator.Rewrite
	// minNeedle is the length of the shortest needle when every pattern
	// has needles: no shorter text can match any pattern (lower-casing
	// never turns fewer bytes into more ASCII letters). 0 otherwise.
	minNeedle int
}

// newRedactor builds a redactor from the built-in patterns plus extra.
func newRedactor(extra []*regexp.Regexp) *redactor {
	r := &redactor{}
	for _, b := range builtinPatterns() {
		r.add(regexp.MustCompile(b.text), b.needles)
	}
	for _, re := range extra {
		if re != nil {
			r.add(re, nil)
		}
	}
	r.rewrite = mediator.Rewrite{String: r.text, Hide: sensitiveKeyBytes, Hidden: redactedText}
	r.approval = mediator.Rewrite{String: r.text, HideValue: withhold}
	r.minNeedle = minNeedle(r.patterns)
	return r
}

func minNeedle(ps []pattern) int {
	n := 0
	for _, p := range ps {
		if p.needles == nil {
			return 0
		}
		for _, nd := range p.needles {
			if n == 0 || len(nd) < n {
				n = len(nd)
			}
		}
	}
	return n
}

func (r *redactor) add(re *regexp.Regexp, needles []string) {
	g := re.SubexpIndex(secretGroup)
	if g < 0 {
		g = 0
	}
	r.patterns = append(r.patterns, pattern{re: re, needles: needles, group: g})
}

// text returns s with every match of every pattern replaced.
func (r *redactor) text(s string) string {
	if len(s) < r.minNeedle {
		return s // most short values: "ok", "id", "42"
	}
	lower := foldForNeedles(s)
	for _, p := range r.patterns {
		if !p.mayMatch(lower) {
			continue
		}
		if t := p.replace(s); t != s {
			s, lower = t, foldForNeedles(t)
		}
	}
	return s
}

// foldForNeedles lower-cases s for the needle check. Besides ASCII, only
// U+212A (Kelvin sign, lower-cased to k) and U+017F (long s) fold to ASCII
// letters in case-insensitive regexps; the latter is mapped here.
func foldForNeedles(s string) string {
	lower := strings.ToLower(s)
	if strings.ContainsRune(lower, '\u017f') {
		lower = strings.ReplaceAll(lower, "\u017f", "s")
	}
	return lower
}

// mayMatch reports whether lower, a lower-cased string, holds one of the
// pattern's needles (always true for a pattern without needles).
func (p pattern) mayMatch(lower string) bool {
	if p.needles == nil {
		return true
	}
	for _, n := range p.needles {
		if strings.Contains(lower, n) {
			return true
		}
	}
	return false
}

func (p pattern) replace(s string) string {
	if p.group == 0 {
		return p.re.ReplaceAllLiteralString(s, redactedText)
	}
	matches := p.re.FindAllStringSubmatchIndex(s, -1)
	if matches == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		start, end := m[2*p.group], m[2*p.group+1]
		if start < 0 {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(redactedText)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// json redacts the JSON value raw and returns it in canonical form: the
// value of every object member whose key names a secret (see sensitiveKey)
// becomes "[REDACTED]", and every string is redacted with text. It fails
// only when raw is not a single valid JSON value.
//
// It is one pass over raw (mediator.AppendCanonicalJSON), without decoding
// it into maps first: it runs for the arguments and the result of every
// call, in the caller's goroutine.
func (r *redactor) json(raw []byte) (json.RawMessage, error) {
	out, err := mediator.AppendCanonicalJSON(make([]byte, 0, len(raw)+16), raw, &r.rewrite)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// value redacts raw, which need not be JSON, and caps it at max bytes
// (max <= 0: no cap). The result is always valid canonical JSON, or nil
// when raw is empty. Text that is not JSON is stored as a JSON string.
// truncated reports whether the cap cut the value.
func (r *redactor) value(raw []byte, max int) (out json.RawMessage, truncated bool) {
	if len(raw) == 0 {
		return nil, false
	}
	out, err := r.json(raw)
	if err != nil {
		out = appendJSONString(nil, r.text(string(raw)))
	}
	if max > 0 && len(out) > max {
		return truncateJSON(out, max), true
	}
	return out, false
}

// truncateJSON returns a JSON string holding the longest prefix of text
// (cut at a UTF-8 boundary) whose encoding fits in max bytes. A max below
// 2 still yields "" (2 bytes).
func truncateJSON(text []byte, max int) json.RawMessage {
	n := min(max-2, len(text))
	for n > 0 {
		for n > 0 && n < len(text) && !utf8.RuneStart(text[n]) {
			n--
		}
		s := appendJSONString(make([]byte, 0, max), string(text[:n]))
		if len(s) <= max {
			return s
		}
		n -= len(s) - max
	}
	return json.RawMessage(`""`)
}

// sensitiveKey reports whether an object key names a secret, e.g.
// "password", "db_password", "apiKey", "x-api-key", "access_token",
// "clientSecret", "Authorization", "private_key". Keys are split into
// lower-case words at punctuation and camelCase boundaries; a word matches
// when it is, or ends in, one of the secret words, or when it is "key"
// after "api", "private", "access", "secret", "signing" or "encryption".
// "max_tokens" does not match.
func sensitiveKey(k string) bool {
	if !maybeSensitiveKey(k) {
		return false
	}
	words := splitKey(k)
	for i, w := range words {
		if secretWord(w) {
			return true
		}
		if w == "key" && i > 0 {
			switch words[i-1] {
			case "api", "private", "access", "secret", "signing", "encryption":
				return true
			}
		}
	}
	return false
}

// keyFragments are lower-case fragments of which a key must contain one to
// name a secret.
var keyFragments = []string{"pass", "pwd", "secret", "token", "key", "auth", "cookie", "credential"}

// maybeSensitiveKey is a quick check, without allocating for most keys,
// that k contains a fragment of some secret word.
func maybeSensitiveKey(k string) bool {
	lower := strings.ToLower(k)
	for _, frag := range keyFragments {
		if strings.Contains(lower, frag) {
			return true
		}
	}
	return false
}

// sensitiveKeyBytes is sensitiveKey for a key as bytes; it allocates only
// for keys that may name a secret (or are not ASCII, whose lower case
// may still spell one, as the Kelvin sign does "k").
func sensitiveKeyBytes(k []byte) bool {
	for _, c := range k {
		if c >= utf8.RuneSelf {
			return sensitiveKey(string(k))
		}
	}
	for _, frag := range keyFragments {
		if containsFoldASCII(k, frag) {
			return sensitiveKey(string(k))
		}
	}
	return false
}

// containsFoldASCII reports whether the ASCII text s contains the
// lower-case ASCII word sub, ignoring case.
func containsFoldASCII(s []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) && s[i+j]|0x20 == sub[j] {
			j++
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

func secretWord(w string) bool {
	switch w {
	case "pass", "pwd", "authorization", "cookie", "credential", "credentials", "secrets":
		return true
	}
	for _, s := range []string{"password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "accesskey"} {
		if strings.HasSuffix(w, s) {
			return true
		}
	}
	return false
}

// splitKey splits k into lower-case words at non-alphanumeric characters
// and at camelCase boundaries ("XApiKey" → x, api, key).
func splitKey(k string) []string {
	var words []string
	rs := []rune(k)
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			words = append(words, strings.ToLower(string(rs[start:end])))
		}
		start = -1
	}
	for i, c := range rs {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			flush(i)
			continue
		}
		if start >= 0 && camelBoundary(rs, i) {
			flush(i)
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(rs))
	return words
}

// camelBoundary reports whether a new word starts at rs[i]: a lower-case
// letter or digit followed by an upper-case one, or the last upper-case
// letter of an acronym followed by a lower-case one.
func camelBoundary(rs []rune, i int) bool {
	prev, cur := rs[i-1], rs[i]
	if !unicode.IsUpper(cur) {
		return false
	}
	if unicode.IsLower(prev) || unicode.IsDigit(prev) {
		return true
	}
	return unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1])
}

// approvalArgs redacts a call's arguments for the approval page. Unlike
// the audit record's, a value is not hidden for its key's name alone: an
// approver must see what they approve (a shell command passed as "token"
// is shown). Detected secrets are redacted everywhere; under a key that
// names a secret, a value that looks like one is withheld, with its length
// and hash (see withhold). Arguments that are not a JSON value, or over
// max bytes, are stored as the audit record would be.
func (r *redactor) approvalArgs(raw []byte, max int) json.RawMessage {
	if len(raw) > 0 && (max <= 0 || len(raw) <= max) {
		if out, err := mediator.AppendCanonicalJSON(make([]byte, 0, len(raw)+16), raw, &r.approval); err == nil {
			return out
		}
	}
	v, _ := r.value(raw, max)
	return v
}

// withhold decides a value under key for the approval page: withheld when
// the key names a secret and the value is not free text.
func withhold(key, raw []byte) (string, bool) {
	if !sensitiveKeyBytes(key) {
		return "", false
	}
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil && freeText(s) {
			return "", false
		}
	} else if len(raw) > 0 && (raw[0] == '{' || raw[0] == '[') {
		return "", false // its members are judged one by one
	}
	sum := sha256.Sum256(raw)
	return fmt.Sprintf("%s%d bytes, sha256 %s]", mediator.WithheldPrefix, len(raw), hex.EncodeToString(sum[:6])), true
}

// freeText reports whether s reads as text or a command rather than a
// credential: it has white space, or is longer than a credential is. (A
// command written without spaces is withheld, and the page says so.)
func freeText(s string) bool {
	return len(s) > 1024 || strings.ContainsFunc(s, unicode.IsSpace)
}
