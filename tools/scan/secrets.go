package scan

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"

	ahocorasick "github.com/BobuSumisu/aho-corasick"
	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"

	"github.com/mcp-mediator/mediator/mediator"
)

// Secrets finds credentials in text with the gitleaks default rule set
// (github.com/zricethezav/gitleaks/v8, its embedded gitleaks.toml),
// compiled here into a matcher for in-memory strings: a keyword prefilter,
// then each rule's regular expression, its entropy threshold and its
// allowlists (regexes and stop words; the path and commit conditions of a
// repository scan do not apply). Safe for concurrent use.
type Secrets struct {
	rules  []secretRule
	global []*config.Allowlist
	// keywords finds every rule keyword in one pass over the text;
	// kwRules maps a keyword (its pattern number) to the rules it enables.
	keywords *ahocorasick.Trie
	kwRules  [][]int
}

type secretRule struct {
	id       string
	re       *regexp.Regexp
	keywords []string // lower case; none: always run
	entropy  float64
	group    int
	allow    []*config.Allowlist
}

// SecretMatch is one secret found: its rule and its byte span in the text.
type SecretMatch struct {
	Rule       string
	Start, End int
}

var (
	defaultSecrets     *Secrets
	defaultSecretsErr  error
	defaultSecretsOnce sync.Once
)

// DefaultSecrets returns the scanner of the gitleaks default rules,
// compiled on first use (about 0.1 s).
func DefaultSecrets() (*Secrets, error) {
	defaultSecretsOnce.Do(func() { defaultSecrets, defaultSecretsErr = compileSecrets(config.DefaultConfig) })
	return defaultSecrets, defaultSecretsErr
}

func compileSecrets(toml string) (*Secrets, error) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(toml)); err != nil {
		return nil, fmt.Errorf("secret rules: read gitleaks config: %w", err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return nil, fmt.Errorf("secret rules: decode gitleaks config: %w", err)
	}
	cfg, err := vc.Translate()
	if err != nil {
		return nil, fmt.Errorf("secret rules: compile gitleaks config: %w", err)
	}
	s := &Secrets{global: cfg.Allowlists}
	for _, r := range cfg.GetOrderedRules() {
		if r.Regex == nil || r.SkipReport {
			continue // path-only rules judge file names, not content
		}
		kw := make([]string, len(r.Keywords))
		for i, k := range r.Keywords {
			kw[i] = strings.ToLower(k)
		}
		s.rules = append(s.rules, secretRule{id: r.RuleID, re: r.Regex, keywords: kw, entropy: r.Entropy,
			group: r.SecretGroup, allow: r.Allowlists})
	}
	// Specific rules first: a GitHub token is named as one, not as the
	// generic key the catch-all rule also matches.
	slices.SortStableFunc(s.rules, func(a, b secretRule) int {
		return boolInt(strings.HasPrefix(a.id, "generic")) - boolInt(strings.HasPrefix(b.id, "generic"))
	})
	if len(s.rules) == 0 {
		return nil, fmt.Errorf("secret rules: the gitleaks config holds no content rules")
	}
	index := map[string]int{}
	var words []string
	for i, r := range s.rules {
		for _, k := range r.keywords {
			n, ok := index[k]
			if !ok {
				n = len(words)
				index[k] = n
				words = append(words, k)
				s.kwRules = append(s.kwRules, nil)
			}
			s.kwRules[n] = append(s.kwRules[n], i)
		}
	}
	s.keywords = ahocorasick.NewTrieBuilder().AddStrings(words).Build()
	return s, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Rules returns how many rules the scanner applies.
func (s *Secrets) Rules() int { return len(s.rules) }

// Find returns the secrets in text, at most limit (0: no limit), in rule
// order; overlapping matches of later rules are dropped.
func (s *Secrets) Find(text string, limit int) []SecretMatch {
	if len(text) < 8 {
		return nil
	}
	wanted := s.wanted(text)
	var out []SecretMatch
	for i := range s.rules {
		r := &s.rules[i]
		if !wanted[i] && len(r.keywords) > 0 {
			continue
		}
		for _, m := range r.re.FindAllStringSubmatchIndex(text, 16) {
			start, end := secretSpan(m, r.group)
			if start < 0 || overlaps(out, start, end) {
				continue
			}
			secret, match := text[start:end], text[m[0]:m[1]]
			if r.entropy > 0 && entropy(secret) < r.entropy {
				continue
			}
			if allowed(r.allow, secret, match, lineOf(text, m[0], m[1])) || allowed(s.global, secret, match, lineOf(text, m[0], m[1])) {
				continue
			}
			out = append(out, SecretMatch{Rule: r.id, Start: start, End: end})
			if limit > 0 && len(out) >= limit {
				return out
			}
		}
	}
	return findURLCredentials(text, out)
}

// wanted marks the rules one of whose keywords text holds (case
// insensitively), found in one pass.
func (s *Secrets) wanted(text string) []bool {
	out := make([]bool, len(s.rules))
	s.keywords.Walk(asciiLower(text), func(_, _, pattern int64) bool {
		for _, i := range s.kwRules[pattern] {
			out[i] = true
		}
		return true
	})
	return out
}

// asciiLower lower-cases ASCII letters (the keywords are ASCII), keeping
// every byte offset.
func asciiLower(s string) []byte {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

// secretSpan picks the secret out of a match: the rule's group, else the
// first non-empty group, else the whole match (as gitleaks does).
func secretSpan(m []int, group int) (int, int) {
	if group > 0 && 2*group+1 < len(m) && m[2*group] >= 0 {
		return m[2*group], m[2*group+1]
	}
	for g := 1; 2*g+1 < len(m); g++ {
		if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
			return m[2*g], m[2*g+1]
		}
	}
	return m[0], m[1]
}

func overlaps(found []SecretMatch, start, end int) bool {
	for _, f := range found {
		if start < f.End && f.Start < end {
			return true
		}
	}
	return false
}

func lineOf(text string, start, end int) string {
	ls := strings.LastIndexByte(text[:start], '\n') + 1
	le := strings.IndexByte(text[end:], '\n')
	if le < 0 {
		return text[ls:]
	}
	return text[ls : end+le]
}

// allowed applies allowlists to a found secret. Conditions on paths and
// commits cannot hold for a string in memory.
func allowed(lists []*config.Allowlist, secret, match, line string) bool {
	for _, a := range lists {
		target := secret
		switch a.RegexTarget {
		case "match":
			target = match
		case "line":
			target = line
		}
		regexOK := len(a.Regexes) > 0 && a.RegexAllowed(target)
		stopOK := false
		if len(a.StopWords) > 0 {
			stopOK, _ = a.ContainsStopWord(secret)
		}
		if a.MatchCondition == config.AllowlistMatchAnd {
			if len(a.Paths) > 0 || len(a.Commits) > 0 {
				continue
			}
			if (len(a.Regexes) == 0 || regexOK) && (len(a.StopWords) == 0 || stopOK) && (len(a.Regexes) > 0 || len(a.StopWords) > 0) {
				return true
			}
			continue
		}
		if regexOK || stopOK {
			return true
		}
	}
	return false
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	var h float64
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// Redact replaces each match in text with [REDACTED:rule].
func Redact(text string, found []SecretMatch) string {
	if len(found) == 0 {
		return text
	}
	sorted := append([]SecretMatch(nil), found...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j].Start < sorted[j-1].Start; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	var b strings.Builder
	last := 0
	for _, f := range sorted {
		b.WriteString(text[last:f.Start])
		b.WriteString("[REDACTED:" + f.Rule + "]")
		last = f.End
	}
	b.WriteString(text[last:])
	return b.String()
}

// urlCredentials matches a password inside a URL (scheme://user:pass@host),
// which the gitleaks rules leave to their generic rule. The password must
// not be a placeholder.
var (
	urlCredentials = regexp.MustCompile(`\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@"'<>]{1,64}:([^\s@/"'<>]{6,128})@[a-zA-Z0-9.-]+`)
	placeholder    = regexp.MustCompile(`(?i)^(\$\{?[\w-]+\}?|<[^>]*>|\{[^}]*\}|%[\w-]+%|x+|\*+|\.+|password|passw(or)?d|secret|changeme|example|your[_-]?\w*|pass(word)?\d*|test\w*|dummy\w*|placeholder)$`)
)

// findURLCredentials returns the passwords inside URLs in text.
func findURLCredentials(text string, found []SecretMatch) []SecretMatch {
	if !strings.Contains(text, "://") {
		return found
	}
	for _, m := range urlCredentials.FindAllStringSubmatchIndex(text, 8) {
		pw := text[m[2]:m[3]]
		if placeholder.MatchString(pw) || overlaps(found, m[2], m[3]) || entropy(pw) < 2.5 {
			continue
		}
		found = append(found, SecretMatch{Rule: "url-credentials", Start: m[2], End: m[3]})
	}
	return found
}

// docSeverity is how bad a secret in a tool definition is. A JSON Web
// Token in a description is nearly always a sample (tokens expire; decoders
// show one): medium, not enough to quarantine on sight.
func docSeverity(rule string) mediator.Severity {
	if rule == "jwt" || rule == "jwt-base64" {
		return mediator.SeverityMedium
	}
	return mediator.SeverityHigh
}

// secretFindings turns matches into findings, the secret itself masked.
func secretFindings(path, text string, found []SecretMatch) []mediator.Finding {
	out := make([]mediator.Finding, 0, len(found))
	for _, f := range found {
		out = append(out, mediator.Finding{Rule: "secret." + f.Rule, Family: "embedded_secret",
			Severity: docSeverity(f.Rule), Path: path, Match: mask(text[f.Start:f.End])})
	}
	return out
}

// mask shows the first four bytes of a secret and its length.
func mask(secret string) string {
	keep := min(4, len(secret)/4)
	return fmt.Sprintf("%q… (%d bytes)", secret[:keep], len(secret))
}
