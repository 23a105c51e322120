package scan

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	ahocorasick "github.com/BobuSumisu/aho-corasick"

	"github.com/mcp-mediator/mediator/mediator"
)

// maxMatch bounds the matched text kept in a finding.
const maxMatch = 120

// finding builds a finding with its match quoted (escaped, so invisible
// characters show) and cut.
func finding(rule, family string, sev mediator.Severity, path, match string) mediator.Finding {
	if len(match) > maxMatch {
		cut := maxMatch
		for cut > 0 && !utf8.RuneStart(match[cut]) {
			cut--
		}
		match = match[:cut] + "…"
	}
	return mediator.Finding{Rule: rule, Family: family, Severity: sev, Path: path, Match: fmt.Sprintf("%+q", match)}
}

// invisible classifies a rune the model reads but a person does not see.
// It returns the rule id, or "".
func invisible(r rune) string {
	switch {
	case r >= 0xE0000 && r <= 0xE007F:
		return "unicode.tag"
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return "unicode.bidi"
	case r == 0x200B, r == 0x200C, r == 0x200D, r >= 0x2060 && r <= 0x2064, r == 0xFEFF, r == 0x180E,
		r == 0x00AD, r == 0x034F, r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0:
		return "unicode.invisible"
	case r >= 0xFFF9 && r <= 0xFFFB:
		return "unicode.invisible"
	case unicode.Is(unicode.Co, r):
		return "unicode.private_use"
	}
	return ""
}

// pictographic reports whether r is an emoji-like symbol, which a zero-width
// joiner or variation selector may legitimately follow.
func pictographic(r rune) bool {
	return unicode.Is(unicode.So, r) || (r >= 0x1F000 && r <= 0x1FAFF) || (r >= 0x2600 && r <= 0x27BF) ||
		r == 0xFE0F || (r >= 0x1F3FB && r <= 0x1F3FF) // emoji presentation selector, skin tones
}

// scanInvisible reports hidden characters in s. A zero-width joiner
// between two pictographs (an emoji sequence) is not hidden.
func scanInvisible(path, s string, out []mediator.Finding) []mediator.Finding {
	var isolates map[int]bool
	if strings.Contains(s, "\u2069") {
		isolates = rtlIsolates(s)
	}
	seen := map[string]bool{}
	var prev rune
	inFlag := false // inside an emoji tag sequence: 🏴 then tag letters, then cancel tag
	for i, r := range s {
		rule := invisible(r)
		if rule == "unicode.tag" && (prev == 0x1F3F4 || inFlag) && (r >= 0xE0061 && r <= 0xE007A || r >= 0xE0030 && r <= 0xE0039 || r == 0xE007F) {
			inFlag = r != 0xE007F
			prev = r
			continue
		}
		inFlag = false
		if rule == "unicode.invisible" && r == 0x200D && pictographic(prev) {
			next, _ := utf8.DecodeRuneInString(s[i+utf8.RuneLen(r):])
			if pictographic(next) {
				rule = ""
			}
		}
		prev = r
		if rule == "unicode.bidi" && isolates[i] {
			rule = ""
		}
		if rule == "" || seen[rule] {
			continue
		}
		seen[rule] = true
		start := max(0, i-20)
		for start > 0 && !utf8.RuneStart(s[start]) {
			start--
		}
		out = append(out, finding(rule, "hidden_chars", mediator.SeverityHigh, path, s[start:min(len(s), i+40)]))
	}
	return out
}

// rtlIsolates returns the offsets of directional isolates used as Unicode
// recommends: an isolate opener (U+2066–U+2068), right-to-left words
// (with spaces, digits and punctuation) and its U+2069, within 64
// characters. Such a pair makes "Uploaded by محمد" render correctly and
// can reorder nothing a reader would not see as right-to-left text; any
// other bidi control, or Latin letters inside, stays a finding.
func rtlIsolates(s string) map[int]bool {
	ok := map[int]bool{}
	for i, r := range s {
		if r < 0x2066 || r > 0x2068 {
			continue
		}
		rtl, n := false, 0
		for j, c := range s[i+utf8.RuneLen(r):] {
			n++
			if c == 0x2069 {
				if rtl {
					ok[i], ok[i+utf8.RuneLen(r)+j] = true, true
				}
				break
			}
			if n > 64 || invisible(c) != "" || unicode.IsLetter(c) && !rightToLeft(c) {
				break
			}
			rtl = rtl || rightToLeft(c)
		}
	}
	return ok
}

// rightToLeft reports whether r is a letter of a right-to-left script.
func rightToLeft(r rune) bool {
	return unicode.In(r, unicode.Arabic, unicode.Hebrew, unicode.Syriac, unicode.Thaana, unicode.Nko) && unicode.IsLetter(r)
}

// pattern is one phrase rule. anchors are lower-case words one of which
// every match contains: the expression runs only when the text has one
// (a regular expression with gaps costs far more than a substring test).
type pattern struct {
	rule, family string
	sev          mediator.Severity
	re           *regexp.Regexp
	anchors      []string
}

func pat(rule, family string, sev mediator.Severity, anchors, expr string) pattern {
	return pattern{rule: rule, family: family, sev: sev, re: regexp.MustCompile(`(?i)` + expr), anchors: strings.Split(anchors, "|")}
}

// anchored reports whether lower holds one of p's anchors.
func (p *pattern) anchored(lower string) bool {
	for _, a := range p.anchors {
		if strings.Contains(lower, a) {
			return true
		}
	}
	return false
}

// instructionPatterns match text aimed at the model rather than at the
// person reading a tool's description or a result.
var instructionPatterns = newPatternSet(append(englishInstructions, foreignInstructions...))

// englishInstructions are the instruction rules in English.
var englishInstructions = []pattern{
	pat("instruction.override", "model_instruction", mediator.SeverityHigh, "ignore|disregard|forget|override",
		`\b(ignore|disregard|forget|override)\b[^.\n]{0,30}\b(previous|prior|above|earlier|all|any|other|your|system)\b[^.\n]{0,20}\b(instructions?|prompts?|rules|guidelines|directives|messages)\b`),
	pat("instruction.secrecy", "model_instruction", mediator.SeverityHigh, "n't|not|never|without|keep|remain",
		`\b(do ?n[o']t|never|must not|should not)\b[^.\n]{0,20}\b(tell|mention|inform|reveal|show|notify|alert|disclose|say)\b[^.\n]{0,25}\b(the )?(user|human|operator|them)\b|\bwithout (telling|informing|notifying|alerting|asking)\b[^.\n]{0,15}\b(the )?(user|human)\b|\b(user|human)\b[^.\n]{0,15}\b(must|should|need) not (know|see|be told|notice)\b|\b(keep|remain) (this )?(secret|hidden|silent|quiet)\b`),
	pat("instruction.tag", "model_instruction", mediator.SeverityHigh, "<|[|system",
		`<\s*/?\s*(important|system|instructions?|secret|hidden|admin|assistant|sys)\s*>|\[\s*(system|inst|important)\s*\]|<\|im_start\|>|\bsystem (message|prompt|override)\s*:`),
	pat("instruction.sensitive_file", "model_instruction", mediator.SeverityHigh, ".ssh|ssh|id_|id |mcp.json|.aws|.env|/etc/|.netrc|.git-cred|.kube|.docker|.config/gh|hosts.yml|.npmrc|.pypirc|environ|history|private|keychain",
		`\b(read(s|ing)?|cat|open(s|ing)?|load(s|ing)?|include|pass|send|attach|upload|provide|get|fetch|extract|copy|contents? (of|from))\b[^\n]{0,60}`+sensitivePath),
	pat("instruction.coercion", "model_instruction", mediator.SeverityHigh, "must|have to|required to|need to|before",
		`\b(you|the (assistant|agent|ai|model|llm))\b[^.\n]{0,15}\b(must|have to|are required to|need to)\b[^.\n]{0,15}\b(always|first|immediately|also|before)\b[^.\n]{0,40}\b(call|use|invoke|run|read|send|include|pass)\b|\bbefore (using|calling|invoking) (this|any|the) tool\b[^.\n]{0,60}\b(read|call|use|invoke|send|pass|include|fetch)\b`),
	pat("instruction.authority", "model_instruction", mediator.SeverityHigh, "precedence|priority|message|instruction|notice|consented|approved|authori|agreed|care|ask|even if",
		`\b(takes?|have|has) (precedence|priority) over\b[^.\n]{0,20}\b(the user|user's|your|all|any|other)\b|\bthis is an? (system|developer|admin(istrator)?) (message|instruction|notice)\b|\b(obey|follow|execute|carry out)\b[^.\n]{0,10}\b(any|all|the)\b[^.\n]{0,10}\binstructions\b[^.\n]{0,20}\b(contained|in (it|them|the (result|response|output))|found|returned)\b|\b(user|owner|author) (has )?(already )?(consented|approved|authori[sz]ed|agreed|does not care)\b|\bdo ?n[o']t ask\b[^.\n]{0,20}\b(confirmation|permission|the user|again)\b|\beven if the user\b[^.\n]{0,20}\b(asks|requests|says|tells)\b`),
	pat("instruction.role", "model_instruction", mediator.SeverityMedium, "you are now|act as|pretend|new instruction|from now on",
		`\b(you are now|act as|pretend to be|new instructions?|from now on)\b`),
	// Turning off the human in the loop: an approval flag set to false, a
	// review skipped.
	pat("instruction.bypass_approval", "model_instruction", mediator.SeverityHigh, "approv|review|consent|safety|confirm",
		`\b[\w]*(approval|confirm(ation)?|consent|review)[\w]*\b\s*(to|=|:|as)\s*(false|off|0|no|none|disabled)\b|\b(disable|bypass|circumvent|turn off|switch off|suppress)\b[^.\n]{0,20}\b(user |human |the )?(approvals?|human review|reviews?|review step|consent( prompts?)?|safety checks?|permission prompts?)\b|\bskip\b[^.\n]{0,10}\b(any|all|the)\b[^.\n]{0,10}\b(code )?reviews?\b`),
	// What a tool returns presented as the user's or the system's word.
	pat("instruction.authority", "model_instruction", mediator.SeverityHigh, "treat|regard|consider",
		`\b(treat|regard|consider)\b[^.\n]{0,10}\b(any|all|every|each)\b[^.\n]{0,10}\b(instructions?|text|content|output|results?)\b[^.\n]{0,40}\bas\b[^.\n]{0,10}\b(coming from the user|from the user|the user's|trusted|authoritative|system|a system)\b`),
	// A credential the model is told to fetch and hand over.
	pat("exfil.collect_secrets", "exfiltration", mediator.SeverityHigh, "environment|env|keychain|.config|shell",
		`\b(read|get|take|grab|fetch|copy|look up|find|extract)\b[^.\n]{0,40}\b(from|in) (the )?(environment|env|shell|keychain|~/\.config|config files?|dotfiles?)\b[^.\n]{0,60}\b(put|paste|pass|place|include|insert|supply|send)\b[^.\n]{0,15}\b(it|them|the value|its value|the token|the key)\b`),
}

// quotedExample reports whether the match at [start,end) of s sits inside
// quotation marks: a security tool citing a phrase it detects.
func quotedExample(s string, start, end int) bool {
	before, after := s[:start], s[end:]
	for _, q := range [][2]string{{`"`, `"`}, {"“", "”"}, {"'", "'"}, {"`", "`"}, {"«", "»"}} {
		i := strings.LastIndex(before, q[0])
		if i >= 0 && i >= len(before)-8 && strings.Contains(after[:min(len(after), 16)], q[1]) {
			return true
		}
	}
	return false
}

// citedBefore matches words that introduce a phrase as an example of what a
// tool detects, rather than using it.
var citedBefore = regexp.MustCompile(`(?i)\b(such as|e\.g\.|for example|for instance|like|flags|detects?|detecting|matches|catches|phrases?|fake|examples?|patterns?|signatures?|classif(y|ies))\b[^.\n]{0,40}$`)

// negatedBefore matches a negation just before a phrase: "never reads
// ~/.ssh" describes what a tool does not do.
var negatedBefore = regexp.MustCompile(`(?i)\b(never|not|n't|no|without|nor)\b\W*(\w+\W+){0,2}$`)

// maxPatterns bounds a patternSet, so that a scan marks its rules on the
// stack.
const maxPatterns = 64

// patternSet is phrase rules with their anchors in one automaton, so
// that a text is read once to learn which rules can match, not once per
// anchor.
type patternSet struct {
	pats    []pattern
	anchors *ahocorasick.Trie
	owners  [][]int // per anchor, the rules it belongs to
}

func newPatternSet(pats []pattern) *patternSet {
	if len(pats) > maxPatterns {
		panic(fmt.Sprintf("scan: %d phrase rules in one set, at most %d", len(pats), maxPatterns))
	}
	ps := &patternSet{pats: pats}
	index := map[string]int{}
	var words []string
	for i, p := range pats {
		for _, a := range p.anchors {
			n, ok := index[a]
			if !ok {
				n = len(words)
				index[a] = n
				words = append(words, a)
				ps.owners = append(ps.owners, nil)
			}
			ps.owners[n] = append(ps.owners[n], i)
		}
	}
	ps.anchors = ahocorasick.NewTrieBuilder().AddStrings(words).Build()
	return ps
}

// scanPatterns applies the rules of ps to s. A phrase quoted or cited as
// an example is low.
func scanPatterns(ps *patternSet, path, s string, out []mediator.Finding) []mediator.Finding {
	var wanted [maxPatterns]bool
	n := 0
	ps.anchors.Walk([]byte(strings.ToLower(s)), func(_, _, a int64) bool {
		for _, i := range ps.owners[a] {
			if !wanted[i] {
				wanted[i] = true
				n++
			}
		}
		return n < len(ps.pats)
	})
	for i := range ps.pats {
		if !wanted[i] {
			continue
		}
		p := &ps.pats[i]
		loc := p.re.FindStringIndex(s)
		if loc == nil {
			continue
		}
		sev := p.sev
		before := s[max(0, loc[0]-60):loc[0]]
		if quotedExample(s, loc[0], loc[1]) || citedBefore.MatchString(before) || negatedBefore.MatchString(before) {
			sev = mediator.SeverityLow
		}
		out = append(out, finding(p.rule, p.family, sev, path, s[loc[0]:loc[1]]))
	}
	return out
}

var (
	base64Run = regexp.MustCompile(`[A-Za-z0-9+/_-]{20,}={0,2}`)
	hexRun    = regexp.MustCompile(`(?i)(?:\\x[0-9a-f]{2}){12,}|\b(?:0x)?(?:[0-9a-f]{2}[ :]?){16,}\b`)
	hexClean  = strings.NewReplacer(" ", "", ":", "", `\x`, "", `\X`, "", "0x", "", "0X", "")
	// payloadWords are what an encoded blob must decode to to be a payload.
	payloadWords = regexp.MustCompile(`(?i)\b(curl|wget|bash|sh -c|/bin/sh|nc -e|ncat|powershell|rm -rf|chmod|eval|exec|python -c|base64 -d|socket|subprocess|pty\.spawn|iex|invoke-expression|downloadstring|invoke-webrequest|xmrig|miner)\b|/dev/tcp/|https?://|\b(ignore|instructions?|assistant|system prompt|do not tell|you are now|unrestricted mode|developer mode|without (asking|telling|confirmation)|(execute|run) (any|every|all) commands?)\b|~/\.|/etc/`)
)

// scanEncoded decodes base64 and hex runs in s (twice, for a payload
// encoded twice) and reports those that hold commands, URLs or
// instructions.
func scanEncoded(path, s string, out []mediator.Finding) []mediator.Finding {
	if dec, rule, m := decodePayload(s, 2); rule != "" {
		return append(out, finding(rule, "encoded_payload", mediator.SeverityHigh, path, m+" → "+dec))
	}
	return out
}

// decodePayload returns the first encoded run of s that decodes (through
// up to depth layers) to a payload.
func decodePayload(s string, depth int) (decoded, rule, match string) {
	if depth == 0 {
		return "", "", ""
	}
	try := func(dec, r, m string) (string, string, string) {
		if payloadWords.MatchString(dec) {
			return dec, r, m
		}
		if d, _, _ := decodePayload(dec, depth-1); d != "" {
			return d, r, m
		}
		return "", "", ""
	}
	for _, m := range base64Run.FindAllString(s, 8) {
		if dec, ok := decodeBase64(m); ok {
			if d, r, mm := try(dec, "encoded.base64", m); r != "" {
				return d, r, mm
			}
		}
	}
	for _, m := range hexRun.FindAllString(s, 8) {
		if b, err := hex.DecodeString(hexClean.Replace(m)); err == nil {
			if dec, ok := text(b); ok {
				if d, r, mm := try(dec, "encoded.hex", m); r != "" {
					return d, r, mm
				}
			}
		}
	}
	return "", "", ""
}

func decodeBase64(s string) (string, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return text(b)
		}
	}
	return "", false
}

// text returns b as text when it is mostly printable: UTF-8, or UTF-16LE
// (what PowerShell's -EncodedCommand carries).
func text(b []byte) (string, bool) {
	if len(b) >= 8 && len(b)%2 == 0 {
		zeros := 0
		for i := 1; i < len(b); i += 2 {
			if b[i] == 0 {
				zeros++
			}
		}
		if zeros*10 >= len(b)/2*9 {
			u := make([]byte, 0, len(b)/2)
			for i := 0; i < len(b); i += 2 {
				u = append(u, b[i])
			}
			b = u
		}
	}
	if printable(string(b)) {
		return string(b), true
	}
	return "", false
}

// printable reports whether s is mostly printable UTF-8 text.
func printable(s string) bool {
	if !utf8.ValidString(s) || len(s) < 8 {
		return false
	}
	bad := 0
	for _, r := range s {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != '\r' {
			bad++
		}
	}
	return bad*10 < len(s)
}

var (
	exfilHost  = regexp.MustCompile(`(?i)https?://[^\s"'<>)]*(webhook\.site|requestbin|pipedream\.net|ngrok(-free)?\.(io|app)|burpcollaborator|interact\.sh|oast\.(fun|pro|live|site|me|online)|beeceptor|hookbin|canarytokens|pastebin\.com|transfer\.sh|discord(app)?\.com/api/webhooks|ipinfo\.io)`)
	exfilImage = regexp.MustCompile(`(?i)!\[[^\]]*\]\(\s*https?://[^)\s]*[?&][^)\s]*=`)
	// sentence is text that does not end a sentence: a full stop counts
	// only before a space or the end (".env" and "example.com" do not).
	exfilSend = regexp.MustCompile(`(?i)\b(send|post|forward|upload|append|transmit|exfiltrate|report|copy|sync|mirror|log)\b` + sentence + `{0,100}\b(to|at|into)\b\s+<?https?://[^\s"'<>)]+`)
	urlData   = regexp.MustCompile(`(?i)https?://[^\s"'<>)]*[?&][a-z_]*=\{[^}]*\}`)
	// exfilCollect asks the model to gather what it must never send out.
	exfilCollect = regexp.MustCompile(`(?i)\b(include|put|pass|add|send|paste|provide|attach|collect|copy|gather|dump|append|forward)\b[^.\n]{0,40}\b(api[ _-]?keys?|access tokens?|credentials|passwords?|environment variables|all (the )?variables|output of .?(env|printenv|set)\b.?|unredacted|secrets|system prompt|(full|entire|whole|complete) (user('s)? )?(prompt|conversation|chat|history|thread)|contents? of all|all open files|private (repos|repositories|files|data))\b`)
	exfilPublic  = regexp.MustCompile(`(?i)\b(private|confidential|internal|secret)\b[^\n]{0,200}\b(public (repo|repository|gist|channel|issue|pull request|bucket)|pastebin|publicly)\b`)
	// exfilMeta is a cloud instance's metadata service, where its
	// credentials are: a path to them is high, a bare mention (an SSRF
	// block list, the instance identity document) medium.
	exfilMeta      = regexp.MustCompile(`(?i)169\.254\.169\.254|\[?fd00:ec2::254\]?|metadata\.google\.internal|/latest/meta-data|/computeMetadata/|/metadata/identity`)
	exfilMetaCreds = regexp.MustCompile(`(?i)(169\.254\.169\.254|metadata\.google\.internal|fd00:ec2::254\]?)[^\s"'<>]*/(latest/(meta-data/iam|api/token)|computeMetadata/v1/instance/service-accounts|metadata/identity/oauth2)|security-credentials|service-accounts/[^\s/]+/token|\b(iam|role|instance|service account)[^.\n]{0,20}credentials[^.\n]{0,40}(169\.254\.169\.254|metadata (service|server|endpoint))|(169\.254\.169\.254|metadata (service|server|endpoint))[^.\n]{0,60}\b(iam|role|service account)[^.\n]{0,20}(credentials|token)`)
	// exfilEncodeSecret hides a secret in an encoding that a lookup or
	// an address carries out: "resolve <v>.q.evil.net where <v> is the
	// hex of each API token".
	exfilEncodeSecret = regexp.MustCompile(`(?i)\b(hex|base32|base64|url)[- ]?encod(e|ed|ing)\b[^.\n]{0,60}\b(api[ _-]?keys?|tokens?|secrets?|passwords?|credentials?)\b|\bencode\b[^.\n]{0,40}\b(api[ _-]?keys?|tokens?|secrets?|passwords?|credentials?)\b[^.\n]{0,30}\b(hex|base32|base64)\b`)
	templatedHost     = regexp.MustCompile(`[<{\[$][\w -]{1,30}[>}\]]\.([a-z0-9-]+\.)+[a-z]{2,}\b`)
	// exfilCredShared is a credential the description says goes to a
	// third party.
	exfilCredShared = regexp.MustCompile(`(?i)\b(forwarded|sent|shared|passed|transmitted|uploaded)\b[^.\n]{0,20}\b(to|with)\b[^.\n]{0,30}\b(partners?|third[- ]part(y|ies)|affiliates?)\b`)
	credWord        = regexp.MustCompile(`(?i)\b(api[ _-]?keys?|access tokens?|tokens?|passwords?|secrets?|credentials?)\b`)
)

// sentence is a character of one sentence (see exfilSend).
const sentence = `(?:[^.\n]|\.\S)`

// scanExfil reports URLs an agent is told to send data to. A rule runs
// only on text holding one of the words every match of it needs (lower
// case; none: always).
func scanExfil(path, s string, out []mediator.Finding) []mediator.Finding {
	lower := strings.ToLower(s)
	for _, p := range []struct {
		rule string
		re   *regexp.Regexp
		need []string
	}{{"exfil.known_host", exfilHost, []string{"://"}}, {"exfil.markdown_image", exfilImage, []string{"]("}},
		{"exfil.send_to_url", exfilSend, []string{"://"}}, {"exfil.url_template", urlData, []string{"://"}},
		{"exfil.collect_secrets", exfilCollect, nil}, {"exfil.private_to_public", exfilPublic, []string{"private", "confidential", "internal", "secret"}},
		{"exfil.cloud_metadata", exfilMeta, []string{"169.254", "metadata", "meta-data", "fd00:ec2"}}} {
		if p.need != nil && !slices.ContainsFunc(p.need, func(w string) bool { return strings.Contains(lower, w) }) {
			continue
		}
		if m := p.re.FindString(s); m != "" {
			if p.re == exfilMeta && !exfilMetaCreds.MatchString(s) {
				return append(out, finding("exfil.cloud_metadata", "exfiltration", mediator.SeverityMedium, path, m))
			}
			return append(out, finding(p.rule, "exfiltration", mediator.SeverityHigh, path, m))
		}
	}
	// Both expressions have gaps: they run only on text holding the word
	// every match needs.
	if !strings.Contains(lower, "encod") {
	} else if m := exfilEncodeSecret.FindString(s); m != "" && (templatedHost.MatchString(s) || strings.Contains(s, "://")) {
		return append(out, finding("exfil.encoded_secret", "exfiltration", mediator.SeverityHigh, path, m))
	}
	if !strings.Contains(lower, "part") && !strings.Contains(lower, "affiliate") {
	} else if m := exfilCredShared.FindString(s); m != "" && credWord.MatchString(s) {
		return append(out, finding("exfil.credential_shared", "exfiltration", mediator.SeverityHigh, path, m))
	}
	return out
}
