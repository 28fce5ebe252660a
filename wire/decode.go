package wire

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// Where decode is in the document.
const (
	beforeRoot = iota
	inRoot
	inField
	afterRoot
)

var bom = []byte("\uFEFF")

// errGeneral: the document uses something decode leaves to decodeStd.
var errGeneral = errors.New("wire: needs the general decoder")

// decode parses without a size limit (the fuzz test re-decodes encoder output, which can be
// larger than its input).
//
// It is a single pass over the bytes written for the flat documents of this API, an order of
// magnitude faster than encoding/xml's tokenizer with a quarter of its allocations
// (BenchmarkDecodeFlat, BenchmarkDecodeStd), and accepts exactly what decodeStd accepts: it
// follows encoding/xml token by token (FuzzDecodeEquivalent). Where a name has a ':' (namespaces) or a byte outside
// ASCII, or an attribute is xmlns, the answer depends on namespace bookkeeping and Unicode name
// tables that are not worth repeating here, so the document goes to decodeStd whole.
func decode(data []byte) (*Message, error) {
	m, err := decodeFlat(data)
	if err == errGeneral {
		return decodeStd(data)
	}
	return m, err
}

type flat struct {
	b       []byte
	i       int
	scratch []byte // decoded text when it differs from the input
}

func decodeFlat(data []byte) (*Message, error) {
	p := flat{b: bytes.TrimPrefix(data, bom)}
	n := bytes.Count(p.b, []byte("</")) // about the number of fields
	m := &Message{keys: make([]string, 0, n), vals: make(map[string]string, n)}
	state := beforeRoot
	var (
		field []byte // name of the open field
		first []byte // its only text so far, still in the input
		acc   []byte // its text, once copied
		segs  int
	)
	for {
		if p.i == len(p.b) {
			if state == afterRoot {
				return m, nil
			}
			return nil, ErrMalformed
		}
		if p.b[p.i] != '<' {
			text, inInput, err := p.text(0)
			if err != nil {
				return nil, err
			}
			if state != inField {
				if !isSpace(text) {
					return nil, ErrMalformed
				}
				continue
			}
			if segs == 0 && inInput {
				first = text
			} else {
				if segs == 0 {
					acc = acc[:0]
				} else if first != nil {
					acc, first = append(acc[:0], first...), nil
				}
				acc = append(acc, text...)
			}
			segs++
			continue
		}
		p.i++
		if p.i == len(p.b) {
			return nil, ErrMalformed
		}
		switch p.b[p.i] {
		case '/':
			p.i++
			name, err := p.name()
			if err != nil {
				return nil, err
			}
			p.space()
			if p.i == len(p.b) || p.b[p.i] != '>' {
				return nil, ErrMalformed
			}
			p.i++
			switch {
			case state == inField && string(name) == string(field):
				k := string(field)
				m.keys = append(m.keys, k)
				switch {
				case first != nil:
					m.vals[k] = string(first)
				case segs > 0:
					m.vals[k] = string(acc)
				default:
					m.vals[k] = ""
				}
				state = inRoot
			case state == inRoot && string(name) == "xml":
				state = afterRoot
			default: // mismatched, or no element open
				return nil, ErrMalformed
			}

		case '?':
			// Only the XML declaration, before the root. Any other target is refused, so the
			// name need not be read further than to know it is not "xml".
			p.i++
			rest := p.b[p.i:]
			if len(rest) < 4 || string(rest[:3]) != "xml" || rest[3] >= utf8.RuneSelf || isNameByte(rest[3]) ||
				state != beforeRoot {
				return nil, ErrMalformed
			}
			p.i += 3
			p.space()
			end := bytes.Index(p.b[p.i:], []byte("?>"))
			if end < 0 {
				return nil, ErrMalformed
			}
			decl := p.b[p.i : p.i+end]
			p.i += end + 2
			if v := declParam(decl, "version"); len(v) > 0 && string(v) != "1.0" {
				return nil, ErrMalformed
			}
			if e := declParam(decl, "encoding"); len(e) > 0 && !bytes.EqualFold(e, []byte("utf-8")) {
				return nil, ErrMalformed
			}

		case '!':
			rest := p.b[p.i+1:]
			switch {
			case bytes.HasPrefix(rest, []byte("--")):
				// encoding/xml ends a comment at the first "--", which must be followed by '>'.
				body := rest[2:]
				end := bytes.Index(body, []byte("--"))
				if end < 0 || end+2 >= len(body) || body[end+2] != '>' {
					return nil, ErrMalformed
				}
				p.i += 1 + 2 + end + 3
			case bytes.HasPrefix(rest, []byte("[CDATA[")):
				p.i += 1 + len("[CDATA[")
				end := bytes.Index(p.b[p.i:], []byte("]]>"))
				if end < 0 {
					return nil, ErrMalformed
				}
				text, inInput, err := p.cdata(p.b[p.i : p.i+end])
				if err != nil {
					return nil, err
				}
				p.i += end + 3
				if state != inField {
					if !isSpace(text) {
						return nil, ErrMalformed
					}
					continue
				}
				if segs == 0 && inInput {
					first = text
				} else {
					if segs == 0 {
						acc = acc[:0]
					} else if first != nil {
						acc, first = append(acc[:0], first...), nil
					}
					acc = append(acc, text...)
				}
				segs++
			default: // DOCTYPE, ENTITY, or broken: never needed
				return nil, ErrMalformed
			}

		default: // a start tag
			name, err := p.name()
			if err != nil {
				return nil, err
			}
			empty, err := p.attributes()
			if err != nil {
				return nil, err
			}
			switch {
			case state == beforeRoot && string(name) == "xml":
				state = inRoot
				if empty {
					state = afterRoot
				}
			case state == inRoot && !m.Has(string(name)):
				if empty {
					k := string(name)
					m.keys = append(m.keys, k)
					m.vals[k] = ""
					continue
				}
				field, first, segs, state = name, nil, 0, inField
			default: // wrong root, duplicate field, nested element, second root
				return nil, ErrMalformed
			}
		}
	}
}

// name reads an element or attribute name: the longest run of name bytes (any byte from 0x80
// counts, as in encoding/xml), which must be an ASCII XML name without ':'.
func (p *flat) name() ([]byte, error) {
	start, wide := p.i, false
	for ; p.i < len(p.b); p.i++ {
		c := p.b[p.i]
		if c >= utf8.RuneSelf {
			wide = true
		} else if !isNameByte(c) {
			break
		}
	}
	name := p.b[start:p.i]
	switch {
	case p.i == len(p.b) || len(name) == 0: // encoding/xml needs a byte after the name
		return nil, ErrMalformed
	case wide || bytes.IndexByte(name, ':') >= 0:
		return nil, errGeneral
	case name[0] == '-' || name[0] == '.' || ('0' <= name[0] && name[0] <= '9'):
		return nil, ErrMalformed
	}
	return name, nil
}

func isNameByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '_' || c == ':' || c == '.' || c == '-'
}

func (p *flat) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// attributes reads the rest of a start tag after its name and reports whether it was <name/>.
// Values are checked and dropped.
func (p *flat) attributes() (empty bool, err error) {
	for {
		p.space()
		if p.i == len(p.b) {
			return false, ErrMalformed
		}
		switch p.b[p.i] {
		case '/':
			if p.i+1 == len(p.b) || p.b[p.i+1] != '>' {
				return false, ErrMalformed
			}
			p.i += 2
			return true, nil
		case '>':
			p.i++
			return false, nil
		}
		name, err := p.name()
		if err != nil {
			return false, err
		}
		if string(name) == "xmlns" {
			return false, errGeneral
		}
		p.space()
		if p.i == len(p.b) || p.b[p.i] != '=' {
			return false, ErrMalformed
		}
		p.i++
		p.space()
		if p.i == len(p.b) || (p.b[p.i] != '"' && p.b[p.i] != '\'') {
			return false, ErrMalformed
		}
		q := p.b[p.i]
		p.i++
		if _, _, err := p.text(q); err != nil {
			return false, err
		}
	}
}

// text decodes character data: up to the next '<' when quote is 0, else an attribute value up to
// and past its closing quote. inInput reports that the result is a slice of the input (nothing
// was replaced); otherwise it is in p.scratch, valid until the next call.
func (p *flat) text(quote byte) (text []byte, inInput bool, err error) {
	start := p.i
	end := len(p.b)
	if quote == 0 {
		if k := bytes.IndexByte(p.b[start:], '<'); k >= 0 {
			end = start + k
		}
	} else {
		k := bytes.IndexByte(p.b[start:], quote)
		if k < 0 {
			return nil, false, ErrMalformed
		}
		end = start + k
	}
	raw := p.b[start:end]
	if quote != 0 && bytes.IndexByte(raw, '<') >= 0 {
		return nil, false, ErrMalformed
	}
	p.i = end
	if quote != 0 {
		p.i++
	}
	if bytes.IndexByte(raw, '&') < 0 {
		if quote == 0 && bytes.Contains(raw, []byte("]]>")) {
			return nil, false, ErrMalformed
		}
		return p.cdata(raw)
	}

	// The general case, byte by byte as encoding/xml reads it: "]]>" is seen in the raw bytes
	// (a reference in between breaks it), CR and CRLF become LF, references are replaced.
	out := p.scratch[:0]
	var b0, b1 byte
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if quote == 0 && b0 == ']' && b1 == ']' && c == '>' {
			return nil, false, ErrMalformed
		}
		if c == '&' {
			r, n, ok := reference(raw[i+1:])
			if !ok {
				return nil, false, ErrMalformed
			}
			out = utf8.AppendRune(out, r)
			i += n
			b0, b1 = 0, 0
			continue
		}
		switch {
		case c == '\r':
			out = append(out, '\n')
		case c == '\n' && b1 == '\r':
		default:
			out = append(out, c)
		}
		b0, b1 = b1, c
	}
	p.scratch = out
	if !validText(out) {
		return nil, false, ErrMalformed
	}
	return out, false, nil
}

// cdata checks raw text without references (a CDATA section's, or plain text without '&') and
// turns CR and CRLF into LF.
func (p *flat) cdata(raw []byte) (text []byte, inInput bool, err error) {
	if !validText(raw) {
		return nil, false, ErrMalformed
	}
	cr := bytes.IndexByte(raw, '\r')
	if cr < 0 {
		return raw, true, nil
	}
	out := append(p.scratch[:0], raw[:cr]...)
	for i := cr; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '\r':
			out = append(out, '\n')
		case c == '\n' && raw[i-1] == '\r':
		default:
			out = append(out, c)
		}
	}
	p.scratch = out
	return out, false, nil
}

// reference reads what follows '&': one of the five built-in entities or a character reference,
// up to its ';'. It returns the character and the number of bytes read. A reference to a
// surrogate gives U+FFFD, as Go's string(rune) does for encoding/xml; one to a character XML
// forbids is returned as is, for the caller's check to refuse.
func reference(b []byte) (r rune, n int, ok bool) {
	if len(b) > 0 && b[0] == '#' {
		i, base := 1, rune(10)
		if len(b) > 1 && b[1] == 'x' {
			i, base = 2, 16
		}
		start, big := i, false
		for ; i < len(b); i++ {
			var d rune
			switch c := b[i]; {
			case '0' <= c && c <= '9':
				d = rune(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				d = rune(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				d = rune(c-'A') + 10
			default:
				d = -1
			}
			if d < 0 {
				break
			}
			if r = r*base + d; r > utf8.MaxRune {
				big, r = true, 0
			}
		}
		if i == start || big || i == len(b) || b[i] != ';' {
			return 0, 0, false
		}
		return r, i + 1, true
	}
	end := bytes.IndexByte(b, ';')
	if end < 0 {
		return 0, 0, false
	}
	switch string(b[:end]) {
	case "lt":
		r = '<'
	case "gt":
		r = '>'
	case "amp":
		r = '&'
	case "apos":
		r = '\''
	case "quot":
		r = '"'
	default:
		return 0, 0, false
	}
	return r, end + 1, true
}

// validText reports whether b is UTF-8 made only of XML characters.
func validText(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if (r == utf8.RuneError && size == 1) || !isXMLChar(r) {
			return false
		}
		i += size
	}
	return true
}

// declParam finds param="value" or param='value' in the text of an XML declaration the way
// encoding/xml does, empty when absent: the first "param=" followed by a quote (the search goes
// on one byte past any other), up to the next such quote.
func declParam(s []byte, param string) []byte {
	key := []byte(param + "=")
	for i := 0; i < len(s); {
		k := bytes.Index(s[i:], key)
		if k < 0 || i+k+len(key) >= len(s) {
			return nil
		}
		at := i + k + len(key)
		i = at + 1
		if q := s[at]; q == '"' || q == '\'' {
			j := bytes.IndexByte(s[i:], q)
			if j < 0 {
				return nil
			}
			return s[i : i+j]
		}
	}
	return nil
}
