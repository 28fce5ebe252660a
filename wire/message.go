// Package wire is the XML envelope and the signatures of the open API (docs/api/README.md (transport, signing)):
// decoding and encoding <xml> documents, signing and verifying them, and reading typed fields
// with the exact protocol error texts. It does no HTTP and no storage.
package wire

import (
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxBodySize is the largest request body accepted (docs/api/README.md: bodies above 64 KiB are refused).
const MaxBodySize = 64 << 10

// The error texts are the protocol return_msg reasons (docs/api/errors.md), so callers can use Error() as is.
var (
	ErrMalformed = errors.New("XML格式错误")
	ErrTooLarge  = errors.New("请求体过大")
)

// Message is one <xml> document: ordered fields with text values.
// Order matters only for encoding; signatures sort the fields themselves.
type Message struct {
	keys []string
	vals map[string]string
}

// NewMessage returns an empty message.
func NewMessage() *Message {
	return &Message{vals: make(map[string]string)}
}

// Get returns the value of field name, or "" when absent.
func (m *Message) Get(name string) string { return m.vals[name] }

// Has reports whether field name is present, even with an empty value.
func (m *Message) Has(name string) bool {
	_, ok := m.vals[name]
	return ok
}

// Set replaces the value of name in place, or appends the field.
// The value is kept exactly; Encode deals with what XML cannot carry.
func (m *Message) Set(name, value string) {
	if _, ok := m.vals[name]; !ok {
		m.keys = append(m.keys, name)
	}
	m.vals[name] = value
}

// Del removes field name if present.
func (m *Message) Del(name string) {
	if _, ok := m.vals[name]; !ok {
		return
	}
	delete(m.vals, name)
	m.keys = slices.DeleteFunc(m.keys, func(k string) bool { return k == name })
}

// Keys returns the field names in insertion order (a copy).
func (m *Message) Keys() []string { return slices.Clone(m.keys) }

// Clone returns an independent copy.
func (m *Message) Clone() *Message {
	c := &Message{keys: slices.Clone(m.keys), vals: make(map[string]string, len(m.vals))}
	for k, v := range m.vals {
		c.vals[k] = v
	}
	return c
}

// Decode reads one document of at most MaxBodySize bytes.
//
// Rules: an optional UTF-8 BOM and XML declaration (UTF-8 only), root element <xml> (no
// namespace; attributes ignored), each child element one field whose text is kept exactly
// (plain text, CDATA and character references concatenated, whitespace included). Whitespace
// and comments may appear between fields and around the root. Anything else — nested elements,
// text beside fields, a second root or junk after </xml>, duplicate fields, DOCTYPE or other
// directives, entities other than the five built-ins, characters XML forbids — is ErrMalformed,
// returned as is (err == ErrMalformed). A read error from r is returned unchanged.
func Decode(r io.Reader) (*Message, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBodySize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBodySize {
		return nil, ErrTooLarge
	}
	return decode(data)
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// isXMLChar is the Char production of XML 1.0.
func isXMLChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= utf8.MaxRune)
}

// Encode writes <xml><name><![CDATA[value]]></name>...</xml> in Keys() order.
// Field names are trusted (ours, or read by Decode) and written as is.
func (m *Message) Encode(w io.Writer) error {
	_, err := w.Write(m.Bytes())
	return err
}

// Bytes returns the encoded document (see Encode).
func (m *Message) Bytes() []byte {
	n := len("<xml></xml>")
	for _, k := range m.keys {
		n += 2*len(k) + len("<></><![CDATA[]]>") + len(m.vals[k])
	}
	b := make([]byte, 0, n)
	b = append(b, "<xml>"...)
	for _, k := range m.keys {
		b = append(b, '<')
		b = append(b, k...)
		b = append(b, '>')
		b = appendCDATA(b, m.vals[k])
		b = append(b, "</"...)
		b = append(b, k...)
		b = append(b, '>')
	}
	return append(b, "</xml>"...)
}

// appendCDATA appends v as CDATA so that Decode gives v back. "]]>" would end the section, so it
// is split across two; a CR would be read back as LF, so it goes out as a character reference.
// Text XML cannot carry at all (invalid UTF-8, control characters) becomes U+FFFD: such a value
// cannot round-trip, and a message signed with one will not verify at the receiver.
func appendCDATA(b []byte, v string) []byte {
	b = append(b, "<![CDATA["...)
	for i := 0; i < len(v); {
		if strings.HasPrefix(v[i:], "]]>") {
			b = append(b, "]]]]><![CDATA[>"...)
			i += 3
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == '\r':
			b = append(b, "]]>&#xD;<![CDATA["...)
		case (r == utf8.RuneError && size == 1) || !isXMLChar(r):
			b = append(b, "\uFFFD"...)
		default:
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return append(b, "]]>"...)
}
