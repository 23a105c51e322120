package mediator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// CanonicalJSON returns raw in canonical form: object keys sorted by their
// UTF-8 bytes, no insignificant white space, numbers with their original
// text, strings written by AppendJSONString (no HTML escaping, U+2028 and
// U+2029 escaped, invalid UTF-8 replaced by U+FFFD); of duplicate keys the
// last wins. Equal values give equal bytes and the function is idempotent,
// so it is what hashes and "identical call" comparisons are computed over.
// Text that is not exactly one JSON value is an error wrapping
// ErrInvalidRequest.
func CanonicalJSON(raw []byte) ([]byte, error) {
	out, err := AppendCanonicalJSON(make([]byte, 0, len(raw)), raw, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return out, nil
}

// CanonicalValue is CanonicalJSON for a Go value: it is marshalled with
// encoding/json first.
func CanonicalValue(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return CanonicalJSON(b)
}

// DecodeJSON decodes exactly one JSON value from b, keeping numbers as
// json.Number. Trailing data other than white space is an error.
func DecodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode JSON: trailing data after the value")
	}
	return x, nil
}

// AppendCanonical appends the canonical encoding of x, a value produced by
// DecodeJSON (nil, bool, json.Number, string, []any, map[string]any).
func AppendCanonical(buf []byte, x any) []byte {
	switch v := x.(type) {
	case nil:
		return append(buf, "null"...)
	case bool:
		return strconv.AppendBool(buf, v)
	case json.Number:
		return append(buf, v...)
	case string:
		return AppendJSONString(buf, v)
	case []any:
		return appendCanonicalArray(buf, v)
	case map[string]any:
		return appendCanonicalObject(buf, v)
	default:
		// Unreachable for decoded values; encode a description rather than panic.
		return AppendJSONString(buf, fmt.Sprint(v))
	}
}

func appendCanonicalArray(buf []byte, a []any) []byte {
	buf = append(buf, '[')
	for i, e := range a {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = AppendCanonical(buf, e)
	}
	return append(buf, ']')
}

func appendCanonicalObject(buf []byte, m map[string]any) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = AppendJSONString(buf, k)
		buf = append(buf, ':')
		buf = AppendCanonical(buf, m[k])
	}
	return append(buf, '}')
}

// AppendJSONString appends s as a JSON string, the way canonical JSON
// writes strings. It escapes '"', '\\' and the
// control characters below U+0020 (\b \f \n \r \t by name, others as
// \u00XX), escapes U+2028 and U+2029 as \u2028 and \u2029, writes every
// other character as raw UTF-8, and replaces each invalid UTF-8 byte with a
// raw U+FFFD, so the output is always valid JSON and re-encoding it after a
// decode gives the same bytes.
func AppendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	return append(appendStringBody(buf, s), '"')
}

// appendStringBody is AppendJSONString without the quotes.
func appendStringBody(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		// A run of bytes written as they are goes out in one append.
		j := i
		for j < len(s) && plainASCII[s[j]] {
			j++
		}
		if j > i {
			buf = append(buf, s[i:j]...)
			if i = j; i == len(s) {
				break
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c >= 0x20:
				buf = append(buf, c)
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case c == '\b':
				buf = append(buf, '\\', 'b')
			case c == '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf = utf8.AppendRune(buf, utf8.RuneError)
		case r == '\u2028' || r == '\u2029':
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return buf
}

// plainASCII marks the bytes appendStringBody writes unescaped: printable
// ASCII but the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
