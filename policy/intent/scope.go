package intent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mcp-mediator/mediator/mediator"
)

// Sentinel errors of the intent package.
var (
	// ErrInvalidScope is wrapped by every error about a scope or constraint
	// that cannot be accepted (ValidateScope, ParseScopeJSON,
	// ParseConstraint, Compile).
	ErrInvalidScope = errors.New("invalid scope")
	// ErrWidens is wrapped by the error Narrows returns when a child scope
	// allows more than its parent.
	ErrWidens = errors.New("scope widens its parent")
)

// Limits on a scope. They bound the work a check does and the size of the
// reasons it gives.
const (
	// MaxTools is the largest number of tool globs in a scope.
	MaxTools = 64
	// MaxConstraints is the largest number of constraints in a scope.
	MaxConstraints = 64
	// MaxValues is the largest number of values in one constraint.
	MaxValues = 64
	// MaxScopeJSON is the largest scope ParseScopeJSON reads, in bytes.
	MaxScopeJSON = 64 << 10

	maxToolGlobLen = 256
	maxArgLen      = 128
	maxValueLen    = 1024
)

// ValidateScope reports whether s is a scope the checker can enforce. Tool
// globs use path.Match syntax ("*" within a name, "?" one character,
// "[...]" classes); constraints must name a printable argument, have one of
// the six kinds and values fit for that kind:
//
//   - prefix: 1..64 absolute paths without "..", "%", "\" or control
//     characters (normalised with path.Clean by Compile);
//   - glob: 1..64 clean absolute path globs, "*" within a segment, "**" as
//     a whole segment for any number of segments;
//   - host: 1..64 host names ("api.example.com"), "*.example.com" for
//     strict subdomains, or IP literals; no scheme, port or path;
//   - max: no values, Max set, finite and not negative;
//   - min: no values, Min set and finite (any sign);
//   - enum: 1..64 non-empty strings.
//
// MaxDataClass and MaxRisk must be empty (no limit) or known levels.
// Constraints are numbered from 1 in errors. Every error wraps
// ErrInvalidScope.
func ValidateScope(s mediator.Scope) error {
	if err := validateScope(s); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidScope, err)
	}
	return nil
}

func validateScope(s mediator.Scope) error {
	if len(s.Tools) > MaxTools {
		return fmt.Errorf("%d tool globs: at most %d allowed", len(s.Tools), MaxTools)
	}
	for i, g := range s.Tools {
		if err := validateToolGlob(g); err != nil {
			return fmt.Errorf("tool glob %d %q: %w", i+1, g, err)
		}
	}
	if len(s.Constraints) > MaxConstraints {
		return fmt.Errorf("%d constraints: at most %d allowed", len(s.Constraints), MaxConstraints)
	}
	for i, c := range s.Constraints {
		if err := validateConstraint(c); err != nil {
			return fmt.Errorf("constraint %d (arg %q, kind %s): %w", i+1, c.Arg, quoteKind(c.Kind), err)
		}
	}
	if s.MaxDataClass != mediator.DataUnknown && !mediator.ValidDataClass(s.MaxDataClass) {
		return fmt.Errorf("max_data_class %q: use public, internal, confidential, pii or financial", s.MaxDataClass)
	}
	if s.MaxRisk != mediator.RiskUnknown && !mediator.ValidRisk(s.MaxRisk) {
		return fmt.Errorf("max_risk %q: use low, medium, high or critical", s.MaxRisk)
	}
	return nil
}

func validateToolGlob(g string) error {
	switch {
	case g == "":
		return errors.New("must not be empty")
	case len(g) > maxToolGlobLen:
		return fmt.Errorf("longer than %d bytes", maxToolGlobLen)
	case !utf8.ValidString(g):
		return errors.New("must be valid UTF-8")
	}
	for _, r := range g {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return errors.New("must not contain spaces or control characters")
		}
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("bad glob syntax: %w", err)
	}
	return nil
}

func validateConstraint(c mediator.Constraint) error {
	switch {
	case c.Arg == "":
		return errors.New("arg must not be empty")
	case len(c.Arg) > maxArgLen:
		return fmt.Errorf("arg longer than %d bytes", maxArgLen)
	case !printable(c.Arg):
		return errors.New("arg must be printable UTF-8")
	}
	switch c.Kind {
	case mediator.ConstraintPrefix, mediator.ConstraintGlob, mediator.ConstraintHost, mediator.ConstraintEnum:
		if c.Max != nil {
			return fmt.Errorf("max is only for kind max")
		}
		if c.Min != nil {
			return fmt.Errorf("min is only for kind min")
		}
		if len(c.Values) == 0 {
			return errors.New("needs at least one value")
		}
		if len(c.Values) > MaxValues {
			return fmt.Errorf("%d values: at most %d allowed", len(c.Values), MaxValues)
		}
		for _, v := range c.Values {
			if v == "" {
				return errors.New("values must not be empty")
			}
			if len(v) > maxValueLen {
				return fmt.Errorf("value longer than %d bytes", maxValueLen)
			}
			var err error
			switch c.Kind {
			case mediator.ConstraintPrefix:
				err = validatePrefix(v)
			case mediator.ConstraintGlob:
				err = validatePathGlob(v)
			case mediator.ConstraintHost:
				err = validateHostValue(v)
			}
			if err != nil {
				return fmt.Errorf("value %q %w", v, err)
			}
		}
		if c.Kind == mediator.ConstraintPrefix || c.Kind == mediator.ConstraintGlob {
			rel := !strings.HasPrefix(c.Values[0], "/")
			for _, v := range c.Values[1:] {
				if !strings.HasPrefix(v, "/") != rel {
					return errors.New("values must be all absolute paths or all relative paths")
				}
			}
		}
	case mediator.ConstraintMax:
		if len(c.Values) > 0 {
			return errors.New("kind max takes no values, only max")
		}
		if c.Min != nil {
			return errors.New("kind max takes no min: add a constraint of kind min on the same argument")
		}
		if c.Max == nil {
			return errors.New("kind max needs max")
		}
		if math.IsNaN(*c.Max) || math.IsInf(*c.Max, 0) {
			return errors.New("max must be a finite number")
		}
		if *c.Max < 0 {
			return fmt.Errorf("max %s is negative: negative limits are not allowed", strconv.FormatFloat(*c.Max, 'g', -1, 64))
		}
	case mediator.ConstraintMin:
		if len(c.Values) > 0 {
			return errors.New("kind min takes no values, only min")
		}
		if c.Max != nil {
			return errors.New("kind min takes no max: add a constraint of kind max on the same argument")
		}
		if c.Min == nil {
			return errors.New("kind min needs min")
		}
		if math.IsNaN(*c.Min) || math.IsInf(*c.Min, 0) {
			return errors.New("min must be a finite number")
		}
	case "":
		return errors.New("kind must not be empty: use prefix, glob, host, max, min or enum")
	default:
		return errors.New("unknown kind: use prefix, glob, host, max, min or enum")
	}
	return nil
}

// printable reports whether s is valid UTF-8 made only of printable runes
// (the ASCII space included).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// hasControl reports whether s holds an ASCII control character (NUL
// included) or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// hasDotDotSegment reports whether the slash-separated path p has a ".."
// segment.
func hasDotDotSegment(p string) bool {
	for p != "" {
		i := strings.IndexByte(p, '/')
		seg := p
		if i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		if seg == ".." {
			return true
		}
	}
	return false
}

// validatePrefix checks a prefix value: an absolute path, or a relative
// one for upstreams whose paths are relative to their own root (such as
// the demo's sandbox): clean, not "." and not starting with "~".
func validatePrefix(v string) error {
	if !strings.HasPrefix(v, "/") {
		if v == "." || strings.HasPrefix(v, "~") || path.Clean(v) != v || hasDotDotSegment(v) {
			return fmt.Errorf(`must be an absolute path, or a clean relative one (like %q) without "..", "." or "~"`, "reports/q3")
		}
		v = "/" + v
	}
	if hasDotDotSegment(v) {
		return errors.New(`must be an absolute path without ".."`)
	}
	if !utf8.ValidString(v) || hasControl(v) || strings.ContainsAny(v, `%\`) {
		return errors.New(`must not contain "%", "\", control characters or invalid UTF-8`)
	}
	return nil
}

func validatePathGlob(v string) error {
	if !strings.HasPrefix(v, "/") {
		if strings.HasPrefix(v, "~") || strings.HasPrefix(v, "./") {
			return errors.New(`a relative path glob must not start with "~" or "./"`)
		}
		v = "/" + v // relative to the upstream's root
	}
	if hasDotDotSegment(v) {
		return errors.New(`must be an absolute path glob without ".."`)
	}
	if !utf8.ValidString(v) || hasControl(v) || strings.ContainsAny(v, `%\`) {
		return errors.New(`must not contain "%", "\", control characters or invalid UTF-8`)
	}
	if path.Clean(v) != v {
		return fmt.Errorf(`must be clean (no empty or "." segments, no trailing slash): use %q`, path.Clean(v))
	}
	for _, seg := range splitGlob(v) {
		if seg == "**" {
			continue
		}
		if strings.Contains(seg, "**") {
			return errors.New(`"**" must be a whole path segment`)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("bad glob syntax in segment %q: %w", seg, err)
		}
	}
	return nil
}

// splitGlob splits a clean absolute glob into its segments ("/" has none).
func splitGlob(v string) []string {
	v = strings.TrimPrefix(v, "/")
	if v == "" {
		return nil
	}
	return strings.Split(v, "/")
}

func validateHostValue(v string) error {
	if isIPValue(v) {
		return nil
	}
	if hasControl(v) || strings.ContainsAny(v, " /:@?#[]\\%") {
		return errors.New("must be a host name, *.domain or IP literal, without scheme, port or path")
	}
	name := strings.TrimPrefix(v, "*.")
	if strings.Contains(name, "*") {
		return errors.New(`"*" is only allowed as the whole leftmost label ("*.example.com")`)
	}
	if !validHostName(strings.TrimSuffix(name, ".")) {
		return errors.New("must be a host name: letters, digits, '-' and '_' in dot-separated labels of 1..63 bytes, the last one not numeric")
	}
	return nil
}

// isIPValue reports whether v is an IP literal a host constraint accepts:
// IPv4 or IPv6, optionally bracketed, without zone.
func isIPValue(v string) bool {
	_, ok := parseIPValue(v)
	return ok
}

func parseIPValue(v string) (netip.Addr, bool) {
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		v = v[1 : len(v)-1]
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// validHostName reports whether h (no trailing dot) is a DNS name of
// letters, digits, '-' and '_' in non-empty labels of at most 63 bytes, at
// most 253 bytes in all, whose last label is not numeric (an all-digit or
// "0x" last label is an IPv4 shorthand to many resolvers). Case is ignored.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(h); i++ {
		if i < len(h) && h[i] != '.' {
			c := h[i] | 0x20
			if !(c >= 'a' && c <= 'z' || h[i] >= '0' && h[i] <= '9' || h[i] == '-' || h[i] == '_') {
				return false
			}
			continue
		}
		label := h[start:i]
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		if i == len(h) && numericLabel(label) {
			return false
		}
		start = i + 1
	}
	return true
}

// numericLabel reports whether label is all digits or starts with "0x":
// as the last label of a host it makes the host an IPv4 literal to
// inet_aton-style parsers.
func numericLabel(label string) bool {
	if len(label) >= 2 && label[0] == '0' && label[1]|0x20 == 'x' {
		return true
	}
	for i := 0; i < len(label); i++ {
		if label[i] < '0' || label[i] > '9' {
			return false
		}
	}
	return true
}

// ParseScopeJSON decodes a scope strictly and validates it: at most 64 KiB,
// one JSON object, no unknown, duplicate or differently-cased keys, no
// trailing data. Every error wraps ErrInvalidScope.
func ParseScopeJSON(b []byte) (mediator.Scope, error) {
	var s mediator.Scope
	if len(b) > MaxScopeJSON {
		return s, fmt.Errorf("%w: scope JSON is %d bytes, at most %d allowed", ErrInvalidScope, len(b), MaxScopeJSON)
	}
	if err := checkKeys(b); err != nil {
		return mediator.Scope{}, fmt.Errorf("%w: %w", ErrInvalidScope, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return mediator.Scope{}, fmt.Errorf("%w: %w", ErrInvalidScope, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return mediator.Scope{}, fmt.Errorf("%w: trailing data after the scope object", ErrInvalidScope)
	}
	if err := ValidateScope(s); err != nil {
		return mediator.Scope{}, err
	}
	return s, nil
}

// scopeKeys are the only object keys a scope document may hold, at any
// depth: those of mediator.Scope and mediator.Constraint.
var scopeKeys = map[string]bool{
	"tools": true, "constraints": true, "max_data_class": true, "max_risk": true,
	"arg": true, "kind": true, "values": true, "max": true,
}

// checkKeys walks the JSON document b and refuses what encoding/json lets
// through: a top level that is not one object, trailing data, keys spelled
// with another case (encoding/json matches names case-insensitively) and
// duplicate keys (encoding/json keeps the last), so that every reader of a
// scope sees the same scope.
func checkKeys(b []byte) error {
	type frame struct {
		obj       bool
		expectKey bool
		keys      map[string]bool
	}
	const maxDepth = 8
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []frame
	done := false
	// valueDone marks the end of one complete value in the current container.
	valueDone := func() {
		if len(stack) == 0 {
			done = true
			return
		}
		if top := &stack[len(stack)-1]; top.obj {
			top.expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if !done {
				return errors.New("scope JSON is empty or incomplete")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("scope JSON: %w", err)
		}
		if done {
			return errors.New("trailing data after the scope object")
		}
		if len(stack) == 0 {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return errors.New("scope JSON must be an object")
			}
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k, _ := tok.(string)
			if !scopeKeys[k] {
				return fmt.Errorf("unknown field %q", k)
			}
			if stack[n-1].keys[k] {
				return fmt.Errorf("duplicate field %q", k)
			}
			stack[n-1].keys[k] = true
			stack[n-1].expectKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxDepth {
				return errors.New("scope JSON nested too deeply")
			}
			obj := tok == json.Delim('{')
			f := frame{obj: obj, expectKey: obj}
			if obj {
				f.keys = map[string]bool{}
			}
			stack = append(stack, f)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// ParseConstraint parses the command-line form of a constraint,
// ARG:KIND=V1,V2 — "path:prefix=/srv/reports",
// "url:host=api.example.com,*.example.org", "amount:max=100",
// "format:enum=csv,json", "path:glob=/srv/**/*.csv" — and validates it.
// ARG runs to the last ':' before the first '='; values are split on ','
// and trimmed of surrounding white space, so an argument name holding '='
// or a value holding ',' or surrounding spaces needs the JSON form. Every
// error wraps ErrInvalidScope.
func ParseConstraint(s string) (mediator.Constraint, error) {
	var c mediator.Constraint
	head, vals, ok := strings.Cut(s, "=")
	if !ok {
		return c, fmt.Errorf("%w: constraint %q: use ARG:KIND=V1,V2 (e.g. path:prefix=/srv/reports)", ErrInvalidScope, s)
	}
	i := strings.LastIndexByte(head, ':')
	if i < 0 {
		return c, fmt.Errorf("%w: constraint %q: missing \":KIND\" before '=' (use ARG:KIND=V1,V2)", ErrInvalidScope, s)
	}
	c.Arg, c.Kind = head[:i], mediator.ConstraintKind(head[i+1:])
	if c.Kind == mediator.ConstraintMax || c.Kind == mediator.ConstraintMin {
		v := strings.TrimSpace(vals)
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return mediator.Constraint{}, fmt.Errorf("%w: constraint %q: %s %q is not a number", ErrInvalidScope, s, c.Kind, v)
		}
		if c.Kind == mediator.ConstraintMax {
			c.Max = &f
		} else {
			c.Min = &f
		}
	} else {
		for _, v := range strings.Split(vals, ",") {
			c.Values = append(c.Values, strings.TrimSpace(v))
		}
	}
	if err := validateConstraint(c); err != nil {
		return mediator.Constraint{}, fmt.Errorf("%w: constraint %q: %w", ErrInvalidScope, s, err)
	}
	return c, nil
}

// FormatConstraint is the command-line form of c, ARG:KIND=V1,V2, for
// display. For valid constraints whose values hold no ',' and no
// surrounding white space, ParseConstraint(FormatConstraint(c)) is c.
func FormatConstraint(c mediator.Constraint) string {
	var b strings.Builder
	b.WriteString(c.Arg)
	b.WriteByte(':')
	b.WriteString(string(c.Kind))
	b.WriteByte('=')
	if c.Kind == mediator.ConstraintMax || c.Kind == mediator.ConstraintMin {
		if v := c.Max; v != nil || c.Min != nil {
			if v == nil {
				v = c.Min
			}
			b.WriteString(strconv.FormatFloat(*v, 'g', -1, 64))
		}
		return b.String()
	}
	b.WriteString(strings.Join(c.Values, ","))
	return b.String()
}

// Narrows returns nil when child allows nothing parent does not, and
// otherwise an error wrapping ErrWidens that names everything that widens:
//
//   - a MaxDataClass or MaxRisk above the parent's (an empty maximum on the
//     parent is no limit; an empty one on the child inherits the parent's);
//   - a child tool glob that matches a catalog tool none of the parent's
//     globs match (a parent without tool globs allows any tool; a child
//     without tool globs inherits the parent's).
//
// Tool globs are judged against catalog, the tools that exist now. That is
// enough because the checker enforces the parent scope as well as the
// child's on every call: a tool added later is still bounded by the parent.
// For the same reason constraints never widen and are not compared: a
// child constraint can only add a test, never remove one of the parent's.
// Both scopes are validated first; an invalid one is an error wrapping
// ErrInvalidScope.
func Narrows(parent, child mediator.Scope, catalog []mediator.Tool) error {
	if err := ValidateScope(parent); err != nil {
		return fmt.Errorf("parent scope: %w", err)
	}
	if err := ValidateScope(child); err != nil {
		return fmt.Errorf("child scope: %w", err)
	}
	var msgs []string
	if parent.MaxDataClass != mediator.DataUnknown && child.MaxDataClass != mediator.DataUnknown &&
		classRank(child.MaxDataClass) > classRank(parent.MaxDataClass) {
		msgs = append(msgs, fmt.Sprintf("max_data_class %s above the parent's %s", child.MaxDataClass, parent.MaxDataClass))
	}
	if parent.MaxRisk != mediator.RiskUnknown && child.MaxRisk != mediator.RiskUnknown &&
		riskRank(child.MaxRisk) > riskRank(parent.MaxRisk) {
		msgs = append(msgs, fmt.Sprintf("max_risk %s above the parent's %s", child.MaxRisk, parent.MaxRisk))
	}
	if len(parent.Tools) > 0 {
		for _, g := range child.Tools {
			var extra []string
			for _, t := range catalog {
				if globMatchAny([]string{g}, t.Name) && !globMatchAny(parent.Tools, t.Name) {
					extra = append(extra, strconv.Quote(t.Name))
				}
			}
			if len(extra) > 0 {
				const show = 5
				list := strings.Join(extra[:min(show, len(extra))], ", ")
				if len(extra) > show {
					list += fmt.Sprintf(" and %d more", len(extra)-show)
				}
				msgs = append(msgs, fmt.Sprintf("tool glob %q allows %s, which the parent scope does not", g, list))
			}
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%w: %s", ErrWidens, strings.Join(msgs, "; "))
	}
	return nil
}

// globMatchAny reports whether name matches one of the (valid) tool globs.
func globMatchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, err := path.Match(g, name); ok && err == nil {
			return true
		}
	}
	return false
}

// riskRank orders risk levels: low 1 .. critical 4. RiskUnknown (and
// anything else) ranks as critical: an ungraded tool is treated as the
// worst it could be.
func riskRank(r mediator.Risk) int {
	switch r {
	case mediator.RiskLow:
		return 1
	case mediator.RiskMedium:
		return 2
	case mediator.RiskHigh:
		return 3
	}
	return 4
}

// classRank orders data classes: public 1 .. financial 5. DataUnknown (and
// anything else) ranks as financial, the most sensitive class.
func classRank(d mediator.DataClass) int {
	switch d {
	case mediator.DataPublic:
		return 1
	case mediator.DataInternal:
		return 2
	case mediator.DataConfidential:
		return 3
	case mediator.DataPII:
		return 4
	}
	return 5
}

// quoteValue returns s as is when it is plain (printable ASCII without space,
// quotes, commas or backslashes) and Go-quoted otherwise, so that text built
// from scope values cannot forge log lines or reason lists.
func quoteValue(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == '\\' || c == '\'' {
			return strconv.Quote(s)
		}
	}
	return s
}

// quoteKind names a kind in an error: as is when it is one of the five,
// quoted otherwise.
func quoteKind(k mediator.ConstraintKind) string {
	switch k {
	case mediator.ConstraintPrefix, mediator.ConstraintGlob, mediator.ConstraintHost, mediator.ConstraintMax,
		mediator.ConstraintMin, mediator.ConstraintEnum:
		return string(k)
	}
	return strconv.Quote(string(k))
}
