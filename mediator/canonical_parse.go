package mediator

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Rewrite changes a JSON value while AppendCanonicalJSON canonicalises it:
// the store redacts arguments and results this way, in the same pass.
type Rewrite struct {
	// String, when set, replaces every string value (object keys are not
	// values).
	String func(s string) string
	// Hide, when set, reports whether the value of the object member named
	// key (valid only during the call) is replaced by the string Hidden. A
	// null value is kept.
	Hide   func(key []byte) bool
	Hidden string
	// HideValue, when set instead of Hide, decides by key and value: raw
	// is the member's value as given (before any rewriting; not null). It
	// returns the string that replaces the value, and whether to.
	HideValue func(key, raw []byte) (string, bool)
}

// maxDepth is the deepest nesting accepted, as in encoding/json.
const maxDepth = 10000

// AppendCanonicalJSON appends the canonical form of the single JSON value
// in raw (see CanonicalJSON) to dst, applying rw when it is not nil. It is
// the same as decoding raw with DecodeJSON, rewriting the decoded value and
// encoding it with AppendCanonical, in one pass and without building maps:
// the pipeline and the store run it on every call. On error, dst is
// returned unchanged with an error saying where raw stops being JSON.
func AppendCanonicalJSON(dst, raw []byte, rw *Rewrite) ([]byte, error) {
	p := parsers.Get().(*parser)
	defer p.release()
	p.in, p.pos, p.rw = raw, 0, rw
	p.skipSpace()
	if p.pos == len(p.in) {
		return dst, errors.New("decode JSON: no value")
	}
	out, err := p.value(dst, 0)
	if err != nil {
		return dst, err
	}
	p.skipSpace()
	if p.pos != len(p.in) {
		return dst, errors.New("decode JSON: trailing data after the value")
	}
	return out, nil
}

// parser reads one JSON value from in, writing its canonical form.
type parser struct {
	in  []byte
	pos int
	rw  *Rewrite
	// members holds the members of the objects being read, innermost
	// last; str and obj are scratch space.
	members []member
	str     []byte
	obj     []byte
}

// member is one object member: its decoded key and where its canonical
// value was written in the output.
type member struct {
	key      []byte
	from, to int
}

var parsers = sync.Pool{New: func() any { return new(parser) }}

// release returns p to the pool, unless it grew large.
func (p *parser) release() {
	if cap(p.str) > 64<<10 || cap(p.obj) > 64<<10 || cap(p.members) > 1024 {
		return
	}
	clear(p.members[:cap(p.members)])
	p.in, p.rw, p.members = nil, nil, p.members[:0]
	parsers.Put(p)
}

func (p *parser) fail(what string) error {
	if p.pos >= len(p.in) {
		return fmt.Errorf("decode JSON: unexpected end of input (%s)", what)
	}
	return fmt.Errorf("decode JSON: invalid character %q at offset %d (%s)", p.in[p.pos], p.pos, what)
}

func (p *parser) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value appends the canonical form of the value at p.pos, which depth
// arrays and objects enclose.
func (p *parser) value(dst []byte, depth int) ([]byte, error) {
	if p.pos >= len(p.in) {
		return dst, p.fail("looking for a value")
	}
	switch c := p.in[p.pos]; {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return dst, errors.New("decode JSON: exceeded max depth")
		}
		if c == '{' {
			return p.object(dst, depth+1)
		}
		return p.array(dst, depth+1)
	case c == '"':
		s, _, err := p.string()
		if err != nil {
			return dst, err
		}
		if p.rw != nil && p.rw.String != nil {
			return AppendJSONString(dst, p.rw.String(string(s))), nil
		}
		return appendJSONBytes(dst, s), nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number(dst)
	case c == 't':
		return p.literal(dst, "true")
	case c == 'f':
		return p.literal(dst, "false")
	case c == 'n':
		return p.literal(dst, "null")
	}
	return dst, p.fail("looking for a value")
}

func (p *parser) literal(dst []byte, lit string) ([]byte, error) {
	if !strings.HasPrefix(string(p.in[p.pos:min(p.pos+len(lit), len(p.in))]), lit) {
		return dst, p.fail("in literal " + lit)
	}
	p.pos += len(lit)
	return append(dst, lit...), nil
}

// number copies a number's text after checking its syntax.
func (p *parser) number(dst []byte) ([]byte, error) {
	start := p.pos
	if p.in[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.in) && p.in[p.pos] == '0':
		p.pos++
	case p.pos < len(p.in) && p.in[p.pos] >= '1' && p.in[p.pos] <= '9':
		p.digits()
	default:
		return dst, p.fail("in numeric literal")
	}
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return dst, p.fail("after decimal point in numeric literal")
		}
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return dst, p.fail("in exponent of numeric literal")
		}
	}
	return append(dst, p.in[start:p.pos]...), nil
}

func (p *parser) digits() int {
	start := p.pos
	for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
		p.pos++
	}
	return p.pos - start
}

func (p *parser) array(dst []byte, depth int) ([]byte, error) {
	p.pos++ // '['
	dst = append(dst, '[')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		return append(dst, ']'), nil
	}
	for n := 0; ; n++ {
		if n > 0 {
			dst = append(dst, ',')
		}
		p.skipSpace()
		var err error
		if dst, err = p.value(dst, depth); err != nil {
			return dst, err
		}
		p.skipSpace()
		if p.pos >= len(p.in) {
			return dst, p.fail("after array element")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return append(dst, ']'), nil
		default:
			return dst, p.fail("after array element")
		}
	}
}

// object writes each member's value to dst as it is read, then rewrites
// the members in key order (the last of duplicate keys wins) in its place.
func (p *parser) object(dst []byte, depth int) ([]byte, error) {
	p.pos++ // '{'
	start, base := len(dst), len(p.members)
	defer func() { p.members = p.members[:base] }()
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return append(dst, '{', '}'), nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return dst, p.fail("looking for beginning of object key string")
		}
		key, ascii, err := p.string()
		if err != nil {
			return dst, err
		}
		if !ascii {
			key = bytes.Clone(key) // p.str is reused by the next string
		}
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return dst, p.fail("after object key")
		}
		p.pos++
		p.skipSpace()
		from, start := len(dst), p.pos
		if dst, err = p.value(dst, depth); err != nil {
			return dst, err
		}
		if p.rw != nil && string(dst[from:]) != "null" {
			switch {
			case p.rw.HideValue != nil:
				if s, hide := p.rw.HideValue(key, p.in[start:p.pos]); hide {
					dst = AppendJSONString(dst[:from], s)
				}
			case p.rw.Hide != nil && p.rw.Hide(key):
				dst = AppendJSONString(dst[:from], p.rw.Hidden)
			}
		}
		p.members = append(p.members, member{key: key, from: from, to: len(dst)})
		p.skipSpace()
		if p.pos >= len(p.in) {
			return dst, p.fail("after object key:value pair")
		}
		if p.in[p.pos] == '}' {
			p.pos++
			break
		}
		if p.in[p.pos] != ',' {
			return dst, p.fail("after object key:value pair")
		}
		p.pos++
	}
	return p.sortMembers(dst, start, p.members[base:]), nil
}

// sortMembers replaces dst[start:], the values of ms in input order, with
// the canonical object.
func (p *parser) sortMembers(dst []byte, start int, ms []member) []byte {
	slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	out := append(p.obj[:0], '{')
	for i, m := range ms {
		if i+1 < len(ms) && bytes.Equal(ms[i+1].key, m.key) {
			continue // a later duplicate wins
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = appendJSONBytes(out, m.key)
		out = append(out, ':')
		out = append(out, dst[m.from:m.to]...)
	}
	out = append(out, '}')
	dst = append(dst[:start], out...)
	p.obj = out[:0]
	return dst
}

// string reads a string and returns its decoded text, valid until the
// next call, and whether it is printable ASCII without '"' or '\', which
// canonical JSON writes as it is. Decoding is encoding/json's: invalid
// UTF-8 bytes and lone surrogates become U+FFFD.
func (p *parser) string() ([]byte, bool, error) {
	p.pos++ // '"'
	start := p.pos
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			return p.in[start : p.pos-1], true, nil
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return p.slowString(start)
		}
		p.pos++
	}
	return nil, false, p.fail("in string literal")
}

func (p *parser) slowString(start int) ([]byte, bool, error) {
	b := append(p.str[:0], p.in[start:p.pos]...)
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.str = b
			return b, false, nil
		case c < 0x20:
			return nil, false, p.fail("in string literal")
		case c == '\\':
			var ok bool
			if b, ok = p.escape(b); !ok {
				return nil, false, p.fail("in string escape code")
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.in[p.pos:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, unicode.ReplacementChar)
			} else {
				b = append(b, p.in[p.pos:p.pos+size]...)
			}
			p.pos += size
		}
	}
	return nil, false, p.fail("in string literal")
}

// escape decodes the escape sequence at p.pos.
func (p *parser) escape(b []byte) ([]byte, bool) {
	if p.pos+1 >= len(p.in) {
		return b, false
	}
	c := p.in[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(b, c), true
	case 'b':
		return append(b, '\b'), true
	case 'f':
		return append(b, '\f'), true
	case 'n':
		return append(b, '\n'), true
	case 'r':
		return append(b, '\r'), true
	case 't':
		return append(b, '\t'), true
	case 'u':
		r := p.hex4()
		if r < 0 {
			return b, false
		}
		if utf16.IsSurrogate(r) {
			save := p.pos
			if p.pos+1 < len(p.in) && p.in[p.pos] == '\\' && p.in[p.pos+1] == 'u' {
				p.pos += 2
				if r2 := p.hex4(); r2 >= 0 {
					if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
						return utf8.AppendRune(b, d), true
					}
				}
			}
			p.pos = save
			r = unicode.ReplacementChar
		}
		return utf8.AppendRune(b, r), true
	}
	return b, false
}

// hex4 reads four hex digits, or returns -1 (p.pos then undefined).
func (p *parser) hex4() rune {
	if p.pos+4 > len(p.in) {
		return -1
	}
	var r rune
	for _, c := range p.in[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	p.pos += 4
	return r
}

// appendJSONBytes is AppendJSONString for bytes, copying the printable
// ASCII prefix, which needs no escaping, as it is.
func appendJSONBytes(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i, c := range s {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			dst = append(dst, s[:i]...)
			return append(appendStringBody(dst, string(s[i:])), '"')
		}
	}
	dst = append(dst, s...)
	return append(dst, '"')
}
