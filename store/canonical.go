package store

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

// CanonicalJSON returns the canonical form of the JSON value v: object keys
// sorted by their UTF-8 bytes, no insignificant whitespace, numbers with
// their original text (decoded with json.Decoder.UseNumber), strings escaped
// as appendJSONString does (no HTML escaping, U+2028 and U+2029 escaped,
// invalid UTF-8 replaced by U+FFFD). Of duplicate keys the last one wins.
//
// Equal values give equal bytes, so the result can be hashed and compared.
// CanonicalJSON is idempotent. If v is empty or not a single valid JSON
// value, v is returned unchanged.
func CanonicalJSON(v json.RawMessage) json.RawMessage {
	x, err := decodeJSON(v)
	if err != nil {
		return v
	}
	return appendCanonical(make([]byte, 0, len(v)), x)
}

// decodeJSON decodes exactly one JSON value from b, keeping numbers as
// json.Number. Trailing data other than whitespace is an error.
func decodeJSON(b []byte) (any, error) {
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

// appendCanonical appends the canonical encoding of x, a value produced by
// decodeJSON (nil, bool, json.Number, string, []any, map[string]any).
func appendCanonical(buf []byte, x any) []byte {
	switch v := x.(type) {
	case nil:
		return append(buf, "null"...)
	case bool:
		return strconv.AppendBool(buf, v)
	case json.Number:
		return append(buf, v...)
	case string:
		return appendJSONString(buf, v)
	case []any:
		return appendCanonicalArray(buf, v)
	case map[string]any:
		return appendCanonicalObject(buf, v)
	default:
		// Unreachable for decoded values; encode a description rather than panic.
		return appendJSONString(buf, fmt.Sprint(v))
	}
}

func appendCanonicalArray(buf []byte, a []any) []byte {
	buf = append(buf, '[')
	for i, e := range a {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCanonical(buf, e)
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
		buf = appendJSONString(buf, k)
		buf = append(buf, ':')
		buf = appendCanonical(buf, m[k])
	}
	return append(buf, '}')
}

// appendJSONString appends s as a JSON string. It escapes '"', '\\' and the
// control characters below U+0020 (\b \f \n \r \t by name, others as
// \u00XX), escapes U+2028 and U+2029 as \u2028 and \u2029, writes every
// other character as raw UTF-8, and replaces each invalid UTF-8 byte with a
// raw U+FFFD, so the output is always valid JSON and re-encoding it after a
// decode gives the same bytes.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
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
	return append(buf, '"')
}
