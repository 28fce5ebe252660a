package hsa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Clean drops null, "", {} and [] recursively (booleans and zeros stay) and returns the result
// in the generic form of encoding/json: map[string]any, []any, string, bool and json.Number
// (numbers keep their JSON text). A value that cleans away entirely is nil. Go values of other
// types (structs, typed maps) are first marshalled with encoding/json; a value it cannot marshal
// cleans to nil (Seal reports it as an error).
func Clean(v any) any {
	c, err := clean(v)
	if err != nil {
		return nil
	}
	return c
}

// CompactJSON writes v with object keys sorted by byte order at every level, no spaces, and
// non-ASCII characters as themselves: the form that is signed and encrypted. It does not clean v.
func CompactJSON(v any) ([]byte, error) {
	g, err := generic(v)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	writeCompact(&b, g)
	return b.Bytes(), nil
}

func clean(v any) (any, error) {
	g, err := generic(v)
	if err != nil {
		return nil, err
	}
	return cleanGeneric(g), nil
}

func cleanGeneric(v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		if v == "" {
			return nil
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if c := cleanGeneric(e); c != nil {
				out[k] = c
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			if c := cleanGeneric(e); c != nil {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	default: // bool, json.Number
		return v
	}
}

// generic converts v to the generic JSON form, keeping numbers as their JSON text.
func generic(v any) (any, error) {
	switch v := v.(type) {
	case nil, string, bool:
		return v, nil
	case json.Number:
		if !isJSONNumber(string(v)) {
			return nil, fmt.Errorf("hsa: %q is not a JSON number", string(v))
		}
		return v, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			g, err := generic(e)
			if err != nil {
				return nil, err
			}
			out[k] = g
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			g, err := generic(e)
			if err != nil {
				return nil, err
			}
			out[i] = g
		}
		return out, nil
	case json.RawMessage:
		return decodeJSON(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(b)
}

// decodeJSON parses exactly one JSON value, numbers as json.Number.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("hsa: trailing data after JSON value")
	}
	return v, nil
}

var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

func isJSONNumber(s string) bool { return jsonNumber.MatchString(s) }

func writeCompact(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case json.Number:
		b.WriteString(string(v))
	case string:
		writeString(b, v)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCompact(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // byte order
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeCompact(b, v[k])
		}
		b.WriteByte('}')
	}
}

// writeString quotes s escaping only what JSON requires: the quote, the backslash and control
// characters (the short forms where JSON has them). Everything else, including non-ASCII, '<',
// '>', '&', U+2028 and U+2029, is written as itself, as the other implementations of the
// protocol do; invalid UTF-8 becomes U+FFFD.
func writeString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				b.WriteString(`\"`)
			case c == '\\':
				b.WriteString(`\\`)
			case c == '\b':
				b.WriteString(`\b`)
			case c == '\f':
				b.WriteString(`\f`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
