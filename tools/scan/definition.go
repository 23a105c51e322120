// Package scan guards the tool supply: it scans upstream tool definitions
// for text aimed at the model (hidden characters, instructions, shadowing
// of other tools, encoded payloads, secrets, exfiltration URLs), pins the
// definitions an administrator accepted and quarantines what changed, and
// scans what flows through a call (secrets both ways, injection markers in
// results). Every scanner is offline and bounded.
package scan

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mcp-mediator/mediator/mediator"
)

// Bounds on a definition the scanner reads.
const (
	MaxDefinitionBytes = 256 << 10
	MaxDefinitionDepth = 64
	maxStrings         = 4096
)

// textField is one string of a definition and where it sits.
type textField struct{ path, text string }

// jsonDepth returns the deepest nesting of arrays and objects in a JSON
// text, without decoding it.
func jsonDepth(b []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// collectStrings returns the strings of a JSON definition (member names
// included) with their paths, in a stable order. It refuses a definition
// over MaxDefinitionBytes, deeper than MaxDefinitionDepth or holding more
// than maxStrings strings.
func collectStrings(def []byte) ([]textField, error) {
	if len(def) > MaxDefinitionBytes {
		return nil, fmt.Errorf("definition is %d bytes, over the %d-byte limit", len(def), MaxDefinitionBytes)
	}
	if d := jsonDepth(def); d > MaxDefinitionDepth {
		return nil, fmt.Errorf("definition nests %d levels, over the limit of %d", d, MaxDefinitionDepth)
	}
	var v any
	if err := json.Unmarshal(def, &v); err != nil {
		return nil, fmt.Errorf("definition is not JSON: %w", err)
	}
	var out []textField
	var walk func(path string, v any) error
	walk = func(path string, v any) error {
		if len(out) > maxStrings {
			return fmt.Errorf("definition holds more than %d strings", maxStrings)
		}
		switch x := v.(type) {
		case string:
			out = append(out, textField{path: path, text: x})
		case []any:
			for i, e := range x {
				if err := walk(join(path, strconv.Itoa(i)), e); err != nil {
					return err
				}
			}
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				p := join(path, k)
				out = append(out, textField{path: p, text: k})
				if err := walk(p, x[k]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("", v); err != nil {
		return nil, err
	}
	return out, nil
}

func join(path, elem string) string {
	if path == "" {
		return elem
	}
	return path + "." + elem
}

// Context is what a definition is scanned against: the tool names of its
// own server (a description may name its siblings) and of every other
// server (naming those is how one server shadows another's tools).
type Context struct {
	Own    []string
	Others []string
}

var (
	shadowWhen = regexp.MustCompile(`(?i)\b(when|whenever|every time|each time|any ?time|if|before|after)\b[^\n]{0,60}?\b(?:the\s+)?([\w.-]*\s*)(tools?|functions?|calls? to|servers?)\b[^.\n]{0,80}\b(always|also|must|should|instead|first|bcc|redirect|replace|change|append|add|send|include)\b`)
	shadowOver = regexp.MustCompile(`(?i)\b(overrides?|replaces?|supersedes?|takes? precedence over|hijacks?|intercepts?)\b[^.\n]{0,40}\b(other|all|any|every|existing|the\s+(built-in\s+)?['"\x60]?[\w.-]+['"\x60]?)\s+(tools?|servers?|functions?|instructions|behaviou?r)|\b(overrides?|supersedes?|takes? precedence over|hijacks?|intercepts?)\b\s+the\s+([\w.-]+\s+){1,3}(mcp\s+)?servers?\b`)
	// shadowNamed is a rule imposed on a tool named in snake case: "when
	// create_pull_request is called, always ...".
	shadowNamed  = regexp.MustCompile(`(?i)\b(?:when|whenever|every time|each time|before|after)\b\s+(?:you\s+)?(?:call|use|invoke|run)?\s*['"\x60]?([a-z][a-z0-9]*(?:_[a-z0-9]+)+)['"\x60]?[^.\n]{0,80}\b(always|also|must|immediately|set|prefix|append|skip|disable|bcc|instead|redirect|replace)\b`)
	shadowPrefer = regexp.MustCompile(`(?i)\b(always )?prefer this (tool|server)\b[^.\n]{0,30}\b(over|to|instead)\b|\b(other|these|those|all other)\b[^.\n]{0,30}\b(tools|servers)\b[^.\n]{0,60}\b(deprecated|malware|malicious|broken|unsafe|insecure|compromised|must not be used|poisoned|unreliable|untrustworthy|hacked|tampered)\b|\b(other|these|those)\b[^.\n]{0,40}\b(tools|servers)\b[^\n]{0,80}\bdo ?n[o']t (call|use|invoke|trust) (them|those|these)\b|\bnever (use|call|invoke)\b[^.\n]{0,15}\b(them|the built-in|other|any other)\b|\binstead of (the |any )?(other|built-in|original)\b|\bnever use the (built-in )?['"\x60]?[\w.-]+['"\x60]?( or [\w.-]+)? tools?\b`)
)

// Definition scans one tool definition (the upstream's JSON) and returns
// its findings, highest severity first. A definition too large, too deep or
// not JSON is itself a high finding (rule limits.*).
func Definition(def []byte, ctx Context) []mediator.Finding {
	fields, err := collectStrings(def)
	if err != nil {
		return []mediator.Finding{{Rule: "limits.definition", Family: "limits", Severity: mediator.SeverityHigh, Match: err.Error()}}
	}
	secrets, serr := DefaultSecrets()
	var out []mediator.Finding
	for _, f := range fields {
		out = scanText(f.path, f.text, ctx, out)
		if serr == nil {
			out = append(out, secretFindings(f.path, f.text, secrets.Find(f.text, 4))...)
		}
	}
	if serr != nil {
		out = append(out, mediator.Finding{Rule: "secret.rules_unavailable", Family: "embedded_secret", Severity: mediator.SeverityHigh, Match: serr.Error()})
	}
	return sortFindings(dedupe(out))
}

// scanText applies the text rules to one string of a definition.
func scanText(path, s string, ctx Context, out []mediator.Finding) []mediator.Finding {
	out = scanInvisible(path, s, out)
	if strings.HasSuffix(path, s) && strings.ContainsAny(s, "_-") {
		// A member name: parameter names are read by the model too.
		s = strings.NewReplacer("_", " ", "-", " ").Replace(s)
	}
	if len(s) < 12 {
		return out
	}
	out = scanPatterns(instructionPatterns, path, s, out)
	out = scanShadowing(path, s, ctx, out)
	out = scanEncoded(path, s, out)
	out = scanDefaultDestination(path, s, out)
	out = scanForeign(path, s, ctx, out)
	return scanExfil(path, s, out)
}

var (
	// destinationParam names a parameter that says where data goes.
	destinationParam = regexp.MustCompile(`(?i)(^|[._ -])(to|cc|bcc|recipients?|forward(_?to)?|archive(_?to)?|callback|webhook|endpoint|upload(_?url)?|report(_?url)?|telemetry|mirror|relay|notify(_?url)?|sink|destination|target_url|post_?url)($|[._ -])`)
	addressOrURL     = regexp.MustCompile(`(?i)^\s*(https?://\S+|[\w.+-]+@[\w-]+(\.[\w-]+)+)\s*$`)
)

// scanDefaultDestination reports a schema default (or const) that fills in
// where a parameter sends data: a tool that pre-addresses its output to
// someone the user never named.
func scanDefaultDestination(path, s string, out []mediator.Finding) []mediator.Finding {
	prop, ok := strings.CutSuffix(path, ".default")
	if !ok {
		prop, ok = strings.CutSuffix(path, ".const")
	}
	if !ok || !addressOrURL.MatchString(s) {
		return out
	}
	if name := prop[strings.LastIndexByte(prop, '.')+1:]; destinationParam.MatchString(name) {
		out = append(out, finding("exfil.default_destination", "exfiltration", mediator.SeverityHigh, path, name+" = "+s))
	}
	return out
}

// directive is a word that imposes on the model: what a sentence naming
// another tool needs to shadow it.
var directive = regexp.MustCompile(`(?i)\b(always|must|never|instead|should|shall|do not|don't|make sure|ensure|required?|only|first|before|whenever|every time|each time|override|overrides|replace|redirect|ignore|prefer|rather than|also|include|add|append|set|send|cc|bcc|important|note to)\b|` +
	i18nAlways[1:len(i18nAlways)-1] + `|` + alt("muss", "müssen", "nie", "niemals", "statt", "anstatt", "wichtig", "jedem", "jeder",
	"debe", "deben", "nunca", "jamás", "en lugar de", "en vez de", "importante", "cada",
	"doit", "doivent", "jamais", "au lieu de", "chaque", "ne jamais",
	"deve", "devem", "em vez de", "ometti", "omettere", "mai", "invece di", "ogni",
	"должен", "должны", "никогда", "вместо", "каждом", "каждый", "важно") +
	`|必须|必須|不要|切勿|而不是|代替|決して|代わりに|しないで|絶対|대신|절대|마다`)

// otherToolNamed reports where s names a tool of another server. Naming
// one is a workflow hint ("typically used after read_file"), medium,
// unless a sentence naming it tells the model what to do (directive):
// high, and that sentence is the match.
func otherToolNamed(path, s string, ctx Context) (mediator.Finding, bool) {
	lower := strings.ToLower(s)
	var first mediator.Finding
	found := false
	for _, name := range ctx.Others {
		if len(name) < 4 || slices.Contains(ctx.Own, name) {
			continue
		}
		n := strings.ToLower(name)
		for off := 0; off < len(lower); {
			i := wordIndex(lower[off:], n)
			if i < 0 {
				break
			}
			i += off
			if directive.MatchString(sentenceAround(s, i)) {
				return finding("shadow.other_tool", "shadowing", mediator.SeverityHigh, path, around(s, i, len(name))), true
			}
			if !found {
				first, found = finding("shadow.other_tool", "shadowing", mediator.SeverityMedium, path, around(s, i, len(name))), true
			}
			off = i + len(n)
		}
	}
	return first, found
}

// sentenceAround is the sentence of s holding offset i.
func sentenceAround(s string, i int) string {
	start, end := 0, len(s)
	for j := i - 1; j > 0; j-- {
		if (s[j] == ' ' || s[j] == '\n') && strings.ContainsRune(".!?\n", rune(s[j-1])) {
			start = j
			break
		}
	}
	for j := i; j < len(s)-1; j++ {
		if strings.ContainsRune(".!?\n", rune(s[j])) && (s[j+1] == ' ' || s[j+1] == '\n') {
			end = j
			break
		}
	}
	return s[start:end]
}

// scanShadowing reports text that tells the model how to use other tools.
func scanShadowing(path, s string, ctx Context, out []mediator.Finding) []mediator.Finding {
	if f, ok := otherToolNamed(path, s, ctx); ok {
		out = append(out, f)
	}
	if m := shadowWhen.FindStringSubmatchIndex(s); m != nil {
		ref := strings.ToLower(strings.TrimSpace(s[m[4]:m[5]]))
		if ref != "this" && ref != "" && !slices.ContainsFunc(ctx.Own, func(o string) bool { return strings.EqualFold(o, ref) }) {
			out = append(out, finding("shadow.when_other_tool", "shadowing", mediator.SeverityHigh, path, s[m[0]:m[1]]))
		}
	}
	if m := shadowNamed.FindStringSubmatchIndex(s); m != nil {
		if ref := s[m[2]:m[3]]; !slices.ContainsFunc(ctx.Own, func(o string) bool { return strings.EqualFold(o, ref) }) {
			out = append(out, finding("shadow.when_other_tool", "shadowing", mediator.SeverityHigh, path, s[m[0]:m[1]]))
		}
	}
	if m := shadowOver.FindString(s); m != "" {
		out = append(out, finding("shadow.override", "shadowing", mediator.SeverityHigh, path, m))
	}
	if m := shadowPrefer.FindString(s); m != "" {
		out = append(out, finding("shadow.preference", "shadowing", mediator.SeverityHigh, path, m))
	}
	return out
}

// wordIndex finds name in s where it is not part of a longer identifier.
func wordIndex(s, name string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], name)
		if i < 0 {
			return -1
		}
		i += off
		end := i + len(name)
		if (i == 0 || !identByte(s[i-1])) && (end == len(s) || !identByte(s[end])) {
			return i
		}
		off = i + 1
	}
}

func identByte(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z'
}

func around(s string, i, n int) string {
	return s[max(0, i-30):min(len(s), i+n+50)]
}

func dedupe(fs []mediator.Finding) []mediator.Finding {
	seen := map[string]bool{}
	return slices.DeleteFunc(fs, func(f mediator.Finding) bool {
		k := f.Rule + "\x00" + f.Path
		if seen[k] {
			return true
		}
		seen[k] = true
		return false
	})
}

func sevRank(s mediator.Severity) int {
	switch s {
	case mediator.SeverityHigh:
		return 3
	case mediator.SeverityMedium:
		return 2
	}
	return 1
}

func sortFindings(fs []mediator.Finding) []mediator.Finding {
	slices.SortStableFunc(fs, func(a, b mediator.Finding) int { return sevRank(b.Severity) - sevRank(a.Severity) })
	return fs
}

// Highest returns the highest severity among fs ("" for none).
func Highest(fs []mediator.Finding) mediator.Severity {
	if len(fs) == 0 {
		return ""
	}
	return sortFindings(slices.Clone(fs))[0].Severity
}
