package mediator

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Identities are the names that decide who may do what: an agent's id and
// owner in its token, an approver's account name, the user an SSO proxy
// names. Separation of duties compares them ("nobody approves a call of an
// agent they own"), so two strings that a person reads as the same name
// must compare as the same, and a string that could pass for another name
// is refused where it enters:
//
//   - CheckIdentity, for a value taken as it is (token claims): it must be
//     visible (no control, format, zero-width, bidi or other invisible
//     characters; a plain space only between words), in Unicode normal form
//     NFKC, written in one script (or a usual mix such as Latin with
//     Japanese), and not a Cyrillic or Greek spelling of a Latin name.
//   - NormalizeIdentity, for a name a person types (approver accounts,
//     sign-in, SSO): the same refusals, but it trims and collapses spaces,
//     applies NFKC and case-folds, and returns the canonical form, which is
//     what is stored and looked up.
//   - SameIdentity, to compare: leniently and fail-safe, so that an owner
//     who is spelt differently is still the owner.

// MaxIdentityBytes bounds an identity (after normalization).
const MaxIdentityBytes = 512

// IdentityError says why an identity is refused. It unwraps to
// ErrInvalidIdentity.
type IdentityError struct {
	// Value is the identity refused.
	Value string
	// Reason says what is wrong with it and how to write it instead.
	Reason string
}

// Error quotes the identity with every non-ASCII character escaped, so the
// message itself cannot hide or reorder anything.
func (e *IdentityError) Error() string {
	return "identity " + QuoteIdentity(e.Value) + " " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalidIdentity) true.
func (e *IdentityError) Unwrap() error { return ErrInvalidIdentity }

// QuoteIdentity renders an untrusted identity for messages and logs: in
// double quotes, non-ASCII characters escaped (\u200b, \u0430), cut to 64
// bytes.
func QuoteIdentity(s string) string {
	p, cut := CutUTF8(s, 64)
	q := strconv.QuoteToASCII(p)
	if cut {
		q += "…"
	}
	return q
}

// CheckIdentity refuses an identity that is not usable exactly as written:
// empty, too long, invalid UTF-8, holding an invisible character or a
// space at either end or twice in a row, not in NFKC, mixing scripts, or a
// whole-script look-alike of a Latin name. Case is free: identities compare
// case-insensitively. Errors are *IdentityError.
func CheckIdentity(s string) error {
	if err := checkEncoding(s); err != nil {
		return err
	}
	if err := checkVisible(s); err != nil {
		return err
	}
	if strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") || strings.Contains(s, "  ") {
		return refuse(s, "has a space at an end or two spaces in a row: write it as %s", QuoteIdentity(collapseSpaces(s)))
	}
	if n := norm.NFKC.String(s); n != s {
		return refuse(s, "is not in Unicode normal form NFKC (it holds compatibility characters such as "+
			"full-width letters, ligatures or decomposed accents): write it as %s", QuoteIdentity(n))
	}
	if err := checkScripts(s); err != nil {
		return err
	}
	// It compares folded: folding must not make a look-alike (Γ → γ).
	if err := checkScripts(fold(s)); err != nil {
		return refuse(s, "%s", err.(*IdentityError).Reason)
	}
	return nil
}

// NormalizeIdentity returns the canonical form of an identity a person
// typed: NFKC, spaces trimmed and collapsed, case-folded. It refuses what
// CheckIdentity refuses apart from spacing, normal form and case. Errors
// are *IdentityError.
func NormalizeIdentity(s string) (string, error) {
	if err := checkEncoding(s); err != nil {
		return "", err
	}
	n := norm.NFKC.String(s) // turns no-break and other wide spaces into plain ones
	if err := checkVisible(n); err != nil {
		return "", refuse(s, "%s", err.(*IdentityError).Reason)
	}
	n = collapseSpaces(n)
	if err := checkScripts(n); err != nil {
		return "", refuse(s, "%s", err.(*IdentityError).Reason)
	}
	f := fold(n) // folding can make look-alikes of capitals that had none (Ԁ → ԁ)
	if err := checkScripts(f); err != nil {
		return "", refuse(s, "%s", err.(*IdentityError).Reason)
	}
	switch {
	case f == "":
		return "", refuse(s, "is empty: give a name")
	case len(f) > MaxIdentityBytes:
		return "", refuse(s, "is longer than %d bytes: use a shorter name", MaxIdentityBytes)
	}
	return f, nil
}

// SameIdentity reports whether a and b name the same person or agent, for
// separation of duties. It errs towards "same": it ignores invisible
// characters, spacing, compatibility forms and case, and reads Cyrillic and
// Greek look-alikes as the Latin letters they resemble. Empty names are
// never the same as anything.
func SameIdentity(a, b string) bool {
	ka, kb := skeleton(a), skeleton(b)
	return ka != "" && ka == kb
}

// checkEncoding refuses empty, over-long and invalid UTF-8 input.
func checkEncoding(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return refuse(s, "is empty: give a name")
	case len(s) > MaxIdentityBytes:
		return refuse(s, "is longer than %d bytes: use a shorter name", MaxIdentityBytes)
	case !utf8.ValidString(s):
		return refuse(s, "is not valid UTF-8: give the name as UTF-8 text")
	}
	return nil
}

// checkVisible refuses the first invisible character of s.
func checkVisible(s string) error {
	for _, r := range s {
		if why := invisible(r); why != "" {
			return refuse(s, "holds %U, %s: write the name with visible characters only", r, why)
		}
	}
	return nil
}

// invisible says what kind of invisible (or unassigned) character r is,
// "" for a visible one. A plain space is visible.
func invisible(r rune) string {
	switch {
	case r == ' ':
		return ""
	case r == utf8.RuneError:
		return "the replacement character (the text was not valid UTF-8)"
	case unicode.IsControl(r):
		return "a control character"
	case unicode.Is(unicode.Cf, r):
		return "a format character (zero-width, joiner or bidi control)"
	case unicode.IsSpace(r) || unicode.Is(unicode.Z, r):
		return "white space other than a plain space"
	case unicode.Is(unicode.Variation_Selector, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
		return "an invisible character (variation selector or filler)"
	case r == '\u2800':
		return "a blank (braille pattern blank)"
	case unicode.Is(unicode.Co, r):
		return "a private-use character"
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S):
		return "a character unassigned in Unicode " + unicode.Version
	}
	return ""
}

// collapseSpaces trims plain spaces and collapses runs of them.
func collapseSpaces(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " ")
}

// fold case-folds s and brings it back to NFKC (folding can leave it
// outside), to a fixed point.
func fold(s string) string {
	for range 4 {
		f := norm.NFKC.String(cases.Fold().String(s))
		if f == s {
			break
		}
		s = f
	}
	return s
}

// refuse builds an *IdentityError.
func refuse(s, format string, args ...any) error {
	return &IdentityError{Value: s, Reason: fmt.Sprintf(format, args...)}
}

// Scripts that usually mix in one name (Unicode TS #39, "highly
// restrictive"): Latin with Japanese, Chinese or Korean.
var scriptMixes = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// checkScripts refuses a name that mixes scripts (other than the usual
// mixes), and one spelt wholly in Cyrillic or Greek letters that each look
// like a Latin letter.
func checkScripts(s string) error {
	scripts := scriptsOf(s)
	if len(scripts) > 1 && !slices.ContainsFunc(scriptMixes, func(mix []string) bool {
		return !slices.ContainsFunc(scripts, func(sc string) bool { return !slices.Contains(mix, sc) })
	}) {
		return refuse(s, "mixes the scripts %s (a look-alike of another name?): write it in one script",
			strings.Join(scripts, " and "))
	}
	if len(scripts) == 1 && (scripts[0] == "Cyrillic" || scripts[0] == "Greek") {
		if latin, ok := latinLookalike(s); ok {
			return refuse(s, "is written in %s letters that all look like Latin ones, so it reads as %s: "+
				"write it in Latin letters, or in %s with letters that do not pass for Latin ones", scripts[0], strconv.Quote(latin), scripts[0])
		}
	}
	return nil
}

// scriptsOf returns the scripts of s's letters, marks and digits, sorted,
// leaving out Common and Inherited (punctuation, symbols, combining marks).
func scriptsOf(s string) []string {
	var out []string
	for _, r := range s {
		sc := scriptOf(r)
		if sc != "" && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	slices.Sort(out)
	return out
}

// commonScripts are tried first: looking through all of unicode.Scripts
// costs about 3 µs a character.
var commonScripts = []string{"Latin", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic",
	"Hebrew", "Devanagari", "Thai", "Armenian", "Georgian", "Bengali", "Tamil", "Bopomofo"}

// scriptOf returns r's script, "" for Common and Inherited.
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return "Latin"
		}
		return ""
	}
	if unicode.In(r, unicode.Common, unicode.Inherited) {
		return ""
	}
	for _, name := range commonScripts {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

// lookalikes maps Cyrillic and Greek letters to the Latin letters they
// cannot be told apart from in common fonts (after Unicode's
// confusables.txt).
var lookalikes = map[rune]rune{
	// Cyrillic
	'а': 'a', 'с': 'c', 'ԁ': 'd', 'е': 'e', 'һ': 'h', 'і': 'i', 'ј': 'j', 'ӏ': 'l', 'о': 'o', 'р': 'p',
	'ԛ': 'q', 'ѕ': 's', 'ԝ': 'w', 'х': 'x', 'у': 'y',
	'А': 'A', 'В': 'B', 'Ԁ': 'D', 'С': 'C', 'Е': 'E', 'Һ': 'H', 'Н': 'H', 'І': 'I', 'Ӏ': 'I', 'Ј': 'J', 'К': 'K',
	'М': 'M', 'О': 'O', 'Р': 'P', 'Ԛ': 'Q', 'Ѕ': 'S', 'Т': 'T', 'Ԝ': 'W', 'Х': 'X', 'У': 'Y', 'Ү': 'Y',
	// Greek
	'α': 'a', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'υ': 'u', 'χ': 'x', 'γ': 'y',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O', 'Ρ': 'P',
	'Τ': 'T', 'Υ': 'Y', 'Χ': 'X', 'Ζ': 'Z',
}

// latinLookalike returns s with its look-alike letters read as Latin, and
// whether every letter of s had one.
func latinLookalike(s string) (string, bool) {
	letters := 0
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) {
			l, ok := lookalikes[r]
			if !ok {
				return "", false
			}
			letters++
			r = l
		}
		b.WriteRune(r)
	}
	return b.String(), letters > 0
}

// foldedLookalikes reads case-folded Cyrillic and Greek letters as the
// folded Latin letters they (or their capitals) resemble, for skeleton.
// Where a letter's small and capital forms resemble different Latin
// letters (Greek ν and Ν), the small form's reading is kept.
var foldedLookalikes = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'с': 'c', 'ԁ': 'd', 'е': 'e', 'һ': 'h', 'н': 'h', 'і': 'i', 'ј': 'j', 'к': 'k',
	'ӏ': 'l', 'м': 'm', 'о': 'o', 'р': 'p', 'ԛ': 'q', 'ѕ': 's', 'т': 't', 'ԝ': 'w', 'х': 'x', 'у': 'y',
	'ү': 'y',
	// Greek
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'h', 'ι': 'i', 'κ': 'k', 'μ': 'm', 'ν': 'v', 'ο': 'o', 'ρ': 'p',
	'τ': 't', 'υ': 'u', 'χ': 'x', 'γ': 'y', 'ζ': 'z',
}

// skeleton is the lenient comparison form of SameIdentity: NFKC, without
// invisible characters, spaces collapsed, case-folded, look-alikes read
// as Latin.
func skeleton(s string) string {
	s = norm.NFKC.String(strings.ToValidUTF8(s, ""))
	var b strings.Builder
	for _, r := range s {
		switch {
		case invisible(r) == "":
			b.WriteRune(r)
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		}
	}
	return strings.Map(func(r rune) rune {
		if l, ok := foldedLookalikes[r]; ok {
			return l
		}
		return r
	}, fold(collapseSpaces(b.String())))
}
