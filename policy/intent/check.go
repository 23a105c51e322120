package intent

import (
	"encoding/json"
	"math"
	"math/big"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mcp-mediator/mediator/mediator"
)

// Limits on the arguments a check looks at. A longer value is out of scope.
const (
	maxPathArg = 4096 // bytes of a path argument (PATH_MAX on Linux)
	maxURLArg  = 8192 // bytes of a URL argument
	// maxDecodeRounds is how many times a path is percent-decoded; a path
	// that still holds '%' after that is out of scope.
	maxDecodeRounds = 4
	// maxListText caps the value lists quoted in reasons.
	maxListText = 200
)

// Compiled is a validated scope ready to check calls against. It is
// immutable and safe for concurrent use. Build it with Compile.
type Compiled struct {
	tools    []namePattern
	allowed  string // the tool globs as reasons list them
	maxClass mediator.DataClass
	maxRisk  mediator.Risk
	cons     []compiledConstraint
	// families has bit famPath (famURL) set when a constraint is of that
	// family.
	families uint8
}

// compiledConstraint is one compiled mediator.Constraint.
type compiledConstraint struct {
	arg  string
	kind mediator.ConstraintKind
	fam  family // path, URL or neither
	desc string // "prefix /srv/reports", for reasons
	// relative: the path values are relative to the upstream's root; they
	// are stored with a leading "/" and relative arguments are anchored
	// the same way after refusing any that climb out ("../").
	relative bool

	prefixes []string        // prefix: cleaned absolute paths
	globs    [][]namePattern // glob: the segments of each pattern
	names    []string        // host: lower-case names; ".example.com" for "*.example.com"
	ips      []netip.Addr
	enum     []string

	max       float64
	maxInt    int64 // floor(max), for exact comparison of integers
	maxIntAll bool  // every int64 is <= max
	maxU      uint64
	maxUAll   bool

	min        float64
	minInt     int64 // ceil(min), for exact comparison of integers
	minIntAll  bool  // every int64 is >= min
	minIntNone bool  // no int64 is >= min
	minU       uint64
	minUAll    bool
	minUNone   bool

	// The reasons, built once.
	outside, missing, badType, empty string
}

// Compile validates s and prepares it for Check: globs are split into
// segments, prefixes cleaned, hosts lower-cased, reason texts built. The
// error wraps ErrInvalidScope.
func Compile(s mediator.Scope) (*Compiled, error) {
	if err := ValidateScope(s); err != nil {
		return nil, err
	}
	c := &Compiled{
		tools:    compileNamePatterns(s.Tools),
		allowed:  reasonList(s.Tools),
		maxClass: s.MaxDataClass,
		maxRisk:  s.MaxRisk,
		cons:     make([]compiledConstraint, len(s.Constraints)),
	}
	for i, sc := range s.Constraints {
		k := &c.cons[i]
		k.arg, k.kind = sc.Arg, sc.Kind
		desc := string(sc.Kind) + " " + reasonList(sc.Values)
		badType := "is not a string or an array of strings"
		switch sc.Kind {
		case mediator.ConstraintPrefix:
			k.relative = !strings.HasPrefix(sc.Values[0], "/")
			for _, v := range sc.Values {
				if k.relative {
					v = "/" + v
				}
				k.prefixes = append(k.prefixes, path.Clean(v))
			}
		case mediator.ConstraintGlob:
			k.relative = !strings.HasPrefix(sc.Values[0], "/")
			for _, v := range sc.Values {
				if k.relative {
					v = "/" + v
				}
				k.globs = append(k.globs, compileNamePatterns(splitGlob(v)))
			}
		case mediator.ConstraintHost:
			for _, v := range sc.Values {
				if a, ok := parseIPValue(v); ok {
					k.ips = append(k.ips, a)
					continue
				}
				v = strings.TrimSuffix(strings.ToLower(v), ".")
				if rest, ok := strings.CutPrefix(v, "*"); ok {
					v = rest // ".example.com"
				}
				k.names = append(k.names, v)
			}
		case mediator.ConstraintEnum:
			k.enum = append([]string(nil), sc.Values...)
			badType = "is not a string, number, boolean or an array of them"
		case mediator.ConstraintMax:
			k.max = *sc.Max
			desc = "max " + strconv.FormatFloat(k.max, 'g', -1, 64)
			badType = "is not a number or an array of numbers"
			f := math.Floor(k.max)
			if f >= 0x1p63 {
				k.maxIntAll = true
			} else {
				k.maxInt = int64(f)
			}
			if f >= 0x1p64 {
				k.maxUAll = true
			} else {
				k.maxU = uint64(f)
			}
		case mediator.ConstraintMin:
			k.min = *sc.Min
			desc = "min " + strconv.FormatFloat(k.min, 'g', -1, 64)
			badType = "is not a number or an array of numbers"
			f := math.Ceil(k.min)
			switch {
			case f <= -0x1p63:
				k.minIntAll = true
			case f >= 0x1p63:
				k.minIntNone = true
			default:
				k.minInt = int64(f)
			}
			switch {
			case f <= 0:
				k.minUAll = true
			case f >= 0x1p64:
				k.minUNone = true
			default:
				k.minU = uint64(f)
			}
		}
		k.fam, k.desc = familyOf(sc.Kind), desc
		if k.fam != famNone {
			c.families |= 1 << k.fam
		}
		q := strconv.Quote(sc.Arg)
		k.outside = "argument " + q + " outside constraint " + desc
		k.missing = "argument " + q + " missing (constrained by " + desc + ")"
		k.badType = "argument " + q + " " + badType + " (constrained by " + desc + ")"
		k.empty = "argument " + q + " is an empty array (constrained by " + desc + ")"
	}
	return c, nil
}

// reasonList joins values for a reason, quoting those that are not plain and
// cutting the list short after about maxListText bytes.
func reasonList(vals []string) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			if b.Len() > maxListText {
				b.WriteString(", … (" + strconv.Itoa(len(vals)-i) + " more)")
				break
			}
			b.WriteString(", ")
		}
		q := quoteValue(v)
		if len(q) > maxListText {
			q = strconv.Quote(v[:maxListText/2]) + "…"
		}
		b.WriteString(q)
	}
	return b.String()
}

// Check returns the reasons the call of tool t with args is out of the
// scope, nil when it is in scope, knowing nothing of the tool's schema:
// CheckArgs with nil ToolArgs.
func (c *Compiled) Check(t mediator.Tool, args map[string]any) []string {
	return c.CheckArgs(t, args, nil)
}

// maxReasons caps the reasons one check gives.
const maxReasons = 16

// CheckArgs returns the reasons the call of tool t with args is out of the
// scope, nil when it is in scope. ta is what is known of the tool's
// arguments (NewToolArgs); nil means nothing. A call in scope costs no
// allocation, except one per URL a host constraint parses (net/url) and
// those of decoding or cleaning a path that is percent-encoded or not
// clean.
//
// The tool must match one of the scope's tool globs (when it has any). When
// the scope sets MaxDataClass or MaxRisk, the tool's must not be above it;
// a tool without a data class or risk counts as the most severe one.
//
// Max, min and enum constraints test the top-level argument they name.
// Path constraints (prefix, glob) test every argument that holds a path,
// at any depth, and host constraints every argument that holds a URL (see
// the package documentation for how arguments are classified): an argument
// of the constraint's own name answers to the constraints of that name
// only, any other argument of the family to all of them. A string is
// tested; an array is in scope when every element is (an empty one only
// when the argument is not named by a constraint or the operator); an
// object is out of scope under a name a constraint names, and otherwise
// walked, and must hold an argument of the family. A number,
// boolean or null where a path or URL is needed is out of scope for an
// argument named by a constraint or by the operator, and left alone under
// a name that merely looks like a path. An argument named by a constraint
// that the call does not send is out of scope, unless another argument of
// its family was tested, or the tool's schema (known through ta) does not
// declare it: an echo tool is not out of a scope that constrains "path".
// An argument that may hold a path or URL but cannot be classified, in the
// schema or in the call, is out of scope under a constraint of its family.
func (c *Compiled) CheckArgs(t mediator.Tool, args map[string]any, ta *ToolArgs) []string {
	if c == nil {
		return []string{"no scope to check against"}
	}
	var reasons []string
	if len(c.tools) > 0 && !matchNamePatterns(c.tools, t.Name) {
		reasons = append(reasons, "tool "+strconv.Quote(t.Name)+" not in scope (allowed: "+c.allowed+")")
	}
	if c.maxClass != mediator.DataUnknown && classRank(t.DataClass) > classRank(c.maxClass) {
		name := "unknown"
		if mediator.ValidDataClass(t.DataClass) {
			name = string(t.DataClass)
		}
		reasons = append(reasons, "data class "+name+" above declared "+string(c.maxClass))
	}
	if c.maxRisk != mediator.RiskUnknown && riskRank(t.Risk) > riskRank(c.maxRisk) {
		name := "unknown"
		if mediator.ValidRisk(t.Risk) {
			name = string(t.Risk)
		}
		reasons = append(reasons, "risk "+name+" above declared "+string(c.maxRisk))
	}
	for i := range c.cons {
		k := &c.cons[i]
		if k.fam != famNone {
			continue
		}
		v, ok := args[k.arg]
		if !ok {
			if ta.schemaKnown() && !ta.declares(k.arg) {
				continue
			}
			reasons = append(reasons, k.missing)
			continue
		}
		if r := k.test(v); r != resOK {
			reasons = append(reasons, k.reason(r))
		}
	}
	if c.families != 0 {
		// The walk meets arguments in map order: its reasons are sorted.
		n := len(reasons)
		w := argWalk{c: c, ta: ta, reasons: reasons}
		w.check(args)
		reasons = w.reasons
		slices.Sort(reasons[n:])
	}
	return reasons
}

// argWalk checks a call's arguments against the path and host constraints.
type argWalk struct {
	c       *Compiled
	ta      *ToolArgs
	reasons []string
	tested  uint64 // bit i: constraint i tested a value
	ntested int    // values tested
	nodes   int
	over    bool
	// loc is the chain of keys down to the value being tested.
	loc [maxWalkDepth + 2]string
}

func (w *argWalk) check(args map[string]any) {
	for _, u := range w.ta.unsureNames() {
		if fams, _, _ := w.ta.classOf(u.name); fams&(1<<u.fam) == 0 && w.c.families&(1<<u.fam) != 0 &&
			w.c.namedFamily(u.name) == famNone {
			w.unsure(u.name, u.fam)
		}
	}
	w.object(args, 0)
	for i := range w.c.cons {
		k := &w.c.cons[i]
		if k.fam == famNone || w.tested&(1<<i) != 0 {
			continue
		}
		if _, sent := args[k.arg]; sent {
			continue // tested and failed, or tested by nothing (null under a looked-like name)
		}
		if w.ta.schemaKnown() && !w.ta.declares(k.arg) {
			continue
		}
		if !w.anyTested(k.fam) {
			w.add(k.missing)
		}
	}
	if w.over {
		w.add("arguments nested deeper than " + strconv.Itoa(maxWalkDepth) + " levels or holding more than " +
			strconv.Itoa(maxWalkNodes) + " values: too large to check against the scope's path and host constraints")
	}
}

// anyTested reports whether some constraint of family f tested a value.
func (w *argWalk) anyTested(f family) bool {
	for i := range w.c.cons {
		if w.c.cons[i].fam == f && w.tested&(1<<i) != 0 {
			return true
		}
	}
	return false
}

func (w *argWalk) add(reason string) {
	if slices.Contains(w.reasons, reason) {
		return
	}
	if len(w.reasons) == maxReasons {
		w.reasons = append(w.reasons, "… and more")
	}
	if len(w.reasons) > maxReasons {
		return
	}
	w.reasons = append(w.reasons, reason)
}

// enter counts a value; false when the walk must stop.
func (w *argWalk) enter(depth int) bool {
	w.nodes++
	if depth > maxWalkDepth || w.nodes > maxWalkNodes {
		w.over = true
		return false
	}
	return true
}

func (w *argWalk) object(m map[string]any, depth int) {
	for key, v := range m {
		if !w.enter(depth) {
			return
		}
		w.loc[depth] = key
		w.visit(key, v, depth)
	}
}

// visit classifies the argument key and tests or walks its value v.
func (w *argWalk) visit(key string, v any, depth int) {
	fams, unsure, strict := w.ta.classOf(key)
	named := w.c.namedFamily(key)
	if named != famNone {
		fams |= 1 << named
		unsure &^= 1 << named
		strict = true
	}
	if u := unsure & w.c.families; u != 0 && holdsText(v) {
		for _, f := range [...]family{famPath, famURL} {
			if u&(1<<f) != 0 {
				w.unsure(key, f)
			}
		}
	}
	tested := false
	for _, f := range [...]family{famPath, famURL} {
		if fams&w.c.families&(1<<f) != 0 {
			w.value(key, f, strict, named == f, v, depth)
			tested = true
		}
	}
	if !tested {
		w.container(v, depth)
	}
}

// container walks v when it is an object or an array, for the arguments
// nested in it.
func (w *argWalk) container(v any, depth int) {
	switch x := v.(type) {
	case map[string]any:
		w.object(x, depth+1)
	case []any:
		for _, e := range x {
			if !w.enter(depth + 1) {
				return
			}
			switch y := e.(type) {
			case map[string]any:
				w.object(y, depth+1)
			case []any:
				// An array in an array names no key: it walks at the same
				// depth of keys, bounded by the count of values.
				w.container(y, depth)
			}
		}
	}
}

// value tests v, held by the argument key of family f. strict: the key
// is named by a constraint or the operator, so that anything but a path
// (URL) is out of scope. named: a constraint names the key; such an
// argument holds paths (URLs) itself, not objects of them, and answers to
// the constraints of its name only.
func (w *argWalk) value(key string, f family, strict, named bool, v any, depth int) {
	switch x := v.(type) {
	case string:
		w.test(key, f, named, x, depth)
	case []string:
		if len(x) == 0 && strict {
			w.fail(key, f, named, resEmpty, depth)
		}
		for _, e := range x {
			w.test(key, f, named, e, depth)
		}
	case []any:
		if len(x) == 0 && strict {
			w.fail(key, f, named, resEmpty, depth)
		}
		for _, e := range x {
			if !w.enter(depth + 1) {
				return
			}
			switch e.(type) {
			case string:
				w.value(key, f, strict, named, e, depth)
			case map[string]any:
				if named {
					w.fail(key, f, named, resType, depth)
				} else {
					w.value(key, f, strict, named, e, depth)
				}
			default:
				if strict || e != nil {
					w.fail(key, f, named, resType, depth)
				}
			}
		}
	case map[string]any:
		if named {
			w.fail(key, f, named, resType, depth)
			return
		}
		before, n := w.ntested, len(w.reasons)
		w.object(x, depth+1)
		if w.ntested == before && len(w.reasons) == n {
			w.fail(key, f, named, resType, depth)
		}
	default:
		if strict {
			w.fail(key, f, named, resType, depth)
		}
	}
}

// test tests the string s of the argument key against the constraints of
// family f that answer for key.
func (w *argWalk) test(key string, f family, named bool, s string, depth int) {
	w.judge(key, f, named, s, resOK, depth)
}

// fail reports a value of the wrong type (or an empty array) under key to
// the constraints of family f that answer for it.
func (w *argWalk) fail(key string, f family, named bool, r argResult, depth int) {
	w.judge(key, f, named, "", r, depth)
}

// judge gives the constraints of family f that answer for key the result
// r, or, when r is resOK, the result of testing s.
func (w *argWalk) judge(key string, f family, named bool, s string, r argResult, depth int) {
	for i := range w.c.cons {
		k := &w.c.cons[i]
		if k.fam != f || (named && k.arg != key) {
			continue
		}
		w.tested |= 1 << i
		res := r
		if r == resOK {
			w.ntested++
			res = k.str(s)
		}
		if res != resOK {
			w.reportAt(k, res, depth)
		}
	}
}

// reportAt adds the reason for result r of constraint k at the current
// location: the constraint's own text for its top-level argument.
func (w *argWalk) reportAt(k *compiledConstraint, r argResult, depth int) {
	if depth == 0 && w.loc[0] == k.arg {
		w.add(k.reason(r))
		return
	}
	loc := strings.Join(w.loc[:depth+1], ".")
	var what string
	switch r {
	case resOutside:
		what = " outside constraint " + k.desc
	case resEmpty:
		what = " is an empty array (constrained by " + k.desc + ")"
	default:
		if k.fam == famPath {
			what = " holds no path the constraint can test (constrained by " + k.desc + ")"
		} else {
			what = " holds no URL the constraint can test (constrained by " + k.desc + ")"
		}
	}
	w.add("argument " + strconv.Quote(loc) + what + ", which applies to every " + k.fam.noun() +
		" argument (it names " + strconv.Quote(k.arg) + ")")
}

// unsure reports an argument that may hold a path or URL but is not
// classified.
func (w *argWalk) unsure(name string, f family) {
	tool := "TOOL"
	if w.ta != nil && w.ta.tool != "" {
		tool = w.ta.tool
	}
	key := "paths"
	if f == famURL {
		key = "urls"
	}
	q := strconv.Quote(name)
	w.add("argument " + q + " may hold a " + f.noun() + " the mediator cannot classify, so the scope's " + f.noun() +
		" constraints cannot test it: an operator classifies it in the upstream's config, tools: {" + tool +
		": {" + key + ": [" + q + "]}} or {" + tool + ": {plain: [" + q + "]}}")
}

func (f family) noun() string {
	if f == famURL {
		return "URL"
	}
	return "path"
}

// holdsText reports whether v is a string or a container holding one.
func holdsText(v any) bool {
	switch x := v.(type) {
	case string:
		return true
	case []string:
		return len(x) > 0
	case []any:
		for _, e := range x {
			if holdsText(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if holdsText(e) {
				return true
			}
		}
	}
	return false
}

// namedFamily returns the family of the constraints named key, famNone
// when there is none.
func (c *Compiled) namedFamily(key string) family {
	for i := range c.cons {
		if c.cons[i].arg == key && c.cons[i].fam != famNone {
			return c.cons[i].fam
		}
	}
	return famNone
}

func (k *compiledConstraint) reason(r argResult) string {
	switch r {
	case resOutside:
		return k.outside
	case resType:
		return k.badType
	case resEmpty:
		return k.empty
	}
	return ""
}

// argResult is the outcome of testing one argument.
type argResult uint8

const (
	resOK      argResult = iota
	resOutside           // the right type, but outside the constraint
	resType              // a type the constraint cannot test
	resEmpty             // an empty array
)

// test tests one argument value.
func (k *compiledConstraint) test(v any) argResult {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return resEmpty
		}
		for _, e := range x {
			if r := k.scalar(e); r != resOK {
				return r
			}
		}
		return resOK
	case []string:
		if len(x) == 0 {
			return resEmpty
		}
		for _, e := range x {
			if r := k.str(e); r != resOK {
				return r
			}
		}
		return resOK
	}
	return k.scalar(v)
}

// scalar tests one value that is not an array (an array here, nested in
// another, is the wrong type).
func (k *compiledConstraint) scalar(v any) argResult {
	if s, ok := v.(string); ok {
		return k.str(s)
	}
	switch k.kind {
	case mediator.ConstraintMax, mediator.ConstraintMin:
		return k.number(v)
	case mediator.ConstraintEnum:
		var buf [64]byte
		b, ok := appendJSONText(buf[:0], v)
		if !ok {
			return resType
		}
		if k.enumHas(string(b)) {
			return resOK
		}
		return resOutside
	}
	return resType
}

// str tests a string value.
func (k *compiledConstraint) str(s string) argResult {
	ok := false
	switch k.kind {
	case mediator.ConstraintPrefix, mediator.ConstraintGlob:
		ok = k.pathOK(s)
	case mediator.ConstraintHost:
		ok = k.hostOK(s)
	case mediator.ConstraintEnum:
		ok = k.enumHas(s)
	case mediator.ConstraintMax, mediator.ConstraintMin:
		return resType
	}
	if ok {
		return resOK
	}
	return resOutside
}

func (k *compiledConstraint) enumHas(s string) bool {
	for _, e := range k.enum {
		if e == s {
			return true
		}
	}
	return false
}

// pathOK reports whether the path argument raw passes a prefix or glob
// constraint. The raw text and each of up to maxDecodeRounds successive
// percent-decodings must all pass; a path still holding '%' after the last
// round, or with a malformed escape, does not.
func (k *compiledConstraint) pathOK(raw string) bool {
	if raw == "" || len(raw) > maxPathArg {
		return false
	}
	cur := raw
	for round := 0; ; round++ {
		if !k.pathFormOK(cur) {
			return false
		}
		if strings.IndexByte(cur, '%') < 0 {
			return true
		}
		if round == maxDecodeRounds {
			return false
		}
		next, err := url.PathUnescape(cur)
		if err != nil {
			return false
		}
		cur = next
	}
}

// pathFormOK tests one form (raw or decoded) of a path: valid UTF-8
// without control characters or slash and dot look-alikes, backslashes
// read as slashes, absolute, then cleaned and matched.
func (k *compiledConstraint) pathFormOK(s string) bool {
	if !safeText(s) || hasLookalike(s) {
		return false
	}
	if strings.IndexByte(s, '\\') >= 0 {
		s = strings.ReplaceAll(s, `\`, "/")
	}
	switch {
	case s == "":
		return false
	case k.relative:
		// Relative to the upstream's root: no absolute paths, no home
		// directories, no drive letters, nothing that climbs out.
		if s[0] == '/' || s[0] == '~' || strings.IndexByte(s, ':') >= 0 {
			return false
		}
		s = path.Clean(s)
		if s == ".." || strings.HasPrefix(s, "../") {
			return false
		}
		s = "/" + s
	case s[0] != '/':
		return false // relative, "~user/...", "C:/..."
	default:
		s = path.Clean(s)
	}
	if hasDotSpaceSegment(s) {
		return false
	}
	if k.kind == mediator.ConstraintPrefix {
		for _, p := range k.prefixes {
			if underPrefix(s, p) {
				return true
			}
		}
		return false
	}
	for _, g := range k.globs {
		if matchSegments(g, s[1:]) {
			return true
		}
	}
	return false
}

// safeText reports whether s is valid UTF-8 without ASCII control
// characters (NUL included) or DEL.
func safeText(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	return ascii || utf8.ValidString(s)
}

// hasLookalike reports whether s holds a character that Unicode
// compatibility normalisation (NFKC) or a legacy "best fit" code page
// conversion turns into '.', '/' or '\': an upstream that normalises could
// read a path like "．．／etc" as "../etc".
func hasLookalike(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			for _, r := range s[i:] {
				switch r {
				case '\u2024', '\u2025', '\u2026', // one and two dot leaders, ellipsis
					'\uFE52', '\uFF0E', // small and fullwidth full stops
					'\uFF0F', '\u2215', '\u2044', '\u29F8', // fullwidth, division, fraction, big solidus
					'\uFF3C', '\uFE68', '\u29F5', '\u29F9': // reverse solidus look-alikes
					return true
				}
			}
			return false
		}
	}
	return false
}

// hasDotSpaceSegment reports whether the clean path s has a segment made of
// dots and spaces only other than "." and ".." (which cleaning removed):
// Windows strips trailing dots and spaces, so ".. " or "..." can climb up a
// directory there.
func hasDotSpaceSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '/' || i+1 >= len(s) || s[i+1] != '.' {
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '.' || s[j] == ' ') {
			j++
		}
		if j == len(s) || s[j] == '/' {
			return true // "." and ".." are gone after cleaning
		}
	}
	return false
}

// underPrefix reports whether the clean absolute path s is prefix p or
// below it.
func underPrefix(s, p string) bool {
	if p == "/" {
		return true
	}
	return strings.HasPrefix(s, p) && (len(s) == len(p) || s[len(p)] == '/')
}

// matchSegments reports whether the path p (clean, absolute, without its
// leading '/') matches the glob segments g: each segment matches one path
// segment with path.Match, "**" any number of them (none included). It
// backtracks only to the last "**", so the work is at most
// len(g)×segments(p) segment matches.
func matchSegments(g []namePattern, p string) bool {
	pos := 0 // start of the current path segment; > len(p) when none is left
	if p == "" {
		pos = 1
	}
	gi, starG, starPos := 0, -1, 0
	for pos <= len(p) {
		end := strings.IndexByte(p[pos:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += pos
		}
		if gi < len(g) {
			if g[gi].kind == patSegments {
				starG, starPos = gi, pos
				gi++
				continue
			}
			if g[gi].match(p[pos:end]) {
				gi++
				pos = end + 1
				continue
			}
		}
		if starG < 0 {
			return false
		}
		// Let the last "**" take one more segment and retry after it.
		next := strings.IndexByte(p[starPos:], '/')
		if next < 0 {
			starPos = len(p) + 1
		} else {
			starPos += next + 1
		}
		pos, gi = starPos, starG+1
	}
	for gi < len(g) && g[gi].kind == patSegments {
		gi++
	}
	return gi == len(g)
}

// namePattern is a compiled path.Match pattern (a tool glob or one segment
// of a path glob) with fast paths for the common shapes.
type namePattern struct {
	kind namePatternKind
	glob string // the pattern, for patGeneral
	lit  string // the literal part, for the other kinds
}

type namePatternKind uint8

const (
	patGeneral  namePatternKind = iota // anything else: path.Match
	patLiteral                         // no meta characters: equality
	patStar                            // "*"
	patPrefix                          // "lit*"
	patSuffix                          // "*lit"
	patSegments                        // "**" as a whole path-glob segment
)

func compileNamePatterns(globs []string) []namePattern {
	out := make([]namePattern, len(globs))
	for i, g := range globs {
		out[i] = compileNamePattern(g)
	}
	return out
}

func compileNamePattern(g string) namePattern {
	if g == "**" {
		return namePattern{kind: patSegments, glob: g}
	}
	meta := strings.IndexAny(g, `*?[\`)
	switch {
	case meta < 0:
		return namePattern{kind: patLiteral, lit: g}
	case g == "*":
		return namePattern{kind: patStar}
	case meta == len(g)-1 && g[meta] == '*':
		return namePattern{kind: patPrefix, lit: g[:meta]}
	case meta == 0 && g[0] == '*' && !strings.ContainsAny(g[1:], `*?[\`):
		return namePattern{kind: patSuffix, lit: g[1:]}
	}
	return namePattern{kind: patGeneral, glob: g}
}

// match reports whether name matches the pattern as path.Match would
// ("*" does not match '/'). A "**" segment pattern is handled by
// matchSegments, not here.
func (p *namePattern) match(name string) bool {
	switch p.kind {
	case patLiteral:
		return name == p.lit
	case patStar:
		return strings.IndexByte(name, '/') < 0
	case patPrefix:
		return strings.HasPrefix(name, p.lit) && strings.IndexByte(name[len(p.lit):], '/') < 0
	case patSuffix:
		return strings.HasSuffix(name, p.lit) && strings.IndexByte(name[:len(name)-len(p.lit)], '/') < 0
	case patGeneral:
		ok, err := path.Match(p.glob, name)
		return ok && err == nil
	}
	return false
}

func matchNamePatterns(ps []namePattern, name string) bool {
	for i := range ps {
		if ps[i].match(name) {
			return true
		}
	}
	return false
}

// hostOK reports whether the URL argument raw passes a host constraint: an
// absolute http or https URL without user information whose host (lower
// case, without trailing dot or port) is allowed.
func (k *compiledConstraint) hostOK(raw string) bool {
	if raw == "" || len(raw) > maxURLArg {
		return false
	}
	ascii := true
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if !ascii {
		if !utf8.ValidString(raw) {
			return false
		}
		for _, r := range raw {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				return false
			}
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") ||
		u.Opaque != "" || u.User != nil || u.Host == "" {
		return false
	}
	host := u.Hostname()
	if u.Host[0] == '[' {
		a, err := netip.ParseAddr(host)
		return err == nil && a.Zone() == "" && k.ipAllowed(a)
	}
	if digitsAndDots(host) {
		// Digits and dots: an IPv4 literal in the one form netip accepts,
		// or nothing we accept ("127.1", "10.0.0.1.", "010.0.0.1").
		a, err := netip.ParseAddr(host)
		return err == nil && a.Is4() && k.ipAllowed(a)
	}
	host = strings.TrimSuffix(host, ".")
	if !validHostName(host) {
		return false // not a name: "127.1", "0x7f.0.0.1", "10.0.0.1.", ...
	}
	for _, n := range k.names {
		if n[0] == '.' {
			if len(host) > len(n) && equalFoldASCII(host[len(host)-len(n):], n) {
				return true
			}
		} else if equalFoldASCII(host, n) {
			return true
		}
	}
	return false
}

// digitsAndDots reports whether s holds only ASCII digits and dots.
func digitsAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

func (k *compiledConstraint) ipAllowed(a netip.Addr) bool {
	for _, ip := range k.ips {
		if ip == a {
			return true
		}
	}
	return false
}

// equalFoldASCII reports whether s equals lower, a lower-case ASCII string,
// ignoring ASCII case only.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// number tests a numeric value against a max constraint.
func (k *compiledConstraint) number(v any) argResult {
	switch x := v.(type) {
	case float64:
		return k.float(x)
	case float32:
		return k.float(float64(x))
	case json.Number:
		return k.jsonNumber(string(x))
	case int:
		return k.int64(int64(x))
	case int8:
		return k.int64(int64(x))
	case int16:
		return k.int64(int64(x))
	case int32:
		return k.int64(int64(x))
	case int64:
		return k.int64(x)
	case uint:
		return k.uint64(uint64(x))
	case uint8:
		return k.uint64(uint64(x))
	case uint16:
		return k.uint64(uint64(x))
	case uint32:
		return k.uint64(uint64(x))
	case uint64:
		return k.uint64(x)
	}
	return resType
}

func (k *compiledConstraint) float(f float64) argResult {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return resOutside
	}
	if k.kind == mediator.ConstraintMin {
		if f < k.min {
			return resOutside
		}
		return resOK
	}
	if f > k.max {
		return resOutside
	}
	return resOK
}

func (k *compiledConstraint) int64(i int64) argResult {
	if k.kind == mediator.ConstraintMin {
		if k.minIntAll || (!k.minIntNone && i >= k.minInt) {
			return resOK
		}
		return resOutside
	}
	if k.maxIntAll || i <= k.maxInt {
		return resOK
	}
	return resOutside
}

func (k *compiledConstraint) uint64(u uint64) argResult {
	if k.kind == mediator.ConstraintMin {
		if k.minUAll || (!k.minUNone && u >= k.minU) {
			return resOK
		}
		return resOutside
	}
	if k.maxUAll || u <= k.maxU {
		return resOK
	}
	return resOutside
}

// jsonNumber tests the text of a JSON number exactly: a number that rounds
// to max as a float64 but is above it is out of scope.
func (k *compiledConstraint) jsonNumber(s string) argResult {
	if !isJSONNumber(s) {
		return resType
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return resOutside // beyond float64: fail closed
	}
	bound, sign := k.max, 1
	if k.kind == mediator.ConstraintMin {
		bound, sign = k.min, -1
	}
	if f != bound {
		return k.float(f)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Cmp(new(big.Rat).SetFloat64(bound))*sign > 0 {
		return resOutside
	}
	return resOK
}

// isJSONNumber reports whether s is a number in JSON syntax.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

// appendJSONText appends the JSON text of a number or boolean, as
// encoding/json writes it; ok is false for any other type and for
// non-finite floats.
func appendJSONText(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case bool:
		return strconv.AppendBool(b, x), true
	case json.Number:
		if !isJSONNumber(string(x)) {
			return b, false
		}
		return append(b, x...), true
	case float64:
		return appendJSONFloat(b, x, 64)
	case float32:
		return appendJSONFloat(b, float64(x), 32)
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case int8:
		return strconv.AppendInt(b, int64(x), 10), true
	case int16:
		return strconv.AppendInt(b, int64(x), 10), true
	case int32:
		return strconv.AppendInt(b, int64(x), 10), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(b, x, 10), true
	}
	return b, false
}

// appendJSONFloat formats f the way encoding/json does.
func appendJSONFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}
