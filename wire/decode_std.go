package wire

import (
	"bytes"
	"encoding/xml"
	"io"
)

// decodeStd is the decoder built on encoding/xml's tokenizer. It defines what Decode accepts:
// decode (decode.go) must give the same message or the same ErrMalformed for every input
// (FuzzDecodeEquivalent), and hands it the rare documents it does not parse itself (namespaces,
// names outside ASCII).
func decodeStd(data []byte) (*Message, error) {
	// Windows clients sometimes send a BOM; encoding/xml would see it as text before the root.
	data = bytes.TrimPrefix(data, bom)
	d := xml.NewDecoder(bytes.NewReader(data)) // Strict, no custom entities: only the built-ins
	m := NewMessage()
	state := beforeRoot
	var name string
	var val []byte
	for {
		tok, err := d.Token()
		if err == io.EOF && state == afterRoot {
			return m, nil
		}
		if err != nil { // includes EOF before </xml>: truncated or empty
			return nil, ErrMalformed
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if state != beforeRoot || t.Target != "xml" {
				return nil, ErrMalformed
			}
		case xml.Directive: // DOCTYPE, ENTITY...: never needed, and a door to entity tricks
			return nil, ErrMalformed
		case xml.Comment:
		case xml.StartElement:
			switch {
			case state == beforeRoot && t.Name == xml.Name{Local: "xml"}:
				state = inRoot
			case state == inRoot && t.Name.Space == "" && !m.Has(t.Name.Local):
				name, val, state = t.Name.Local, val[:0], inField
			default: // wrong root, namespaced or duplicate field, nested element, second root
				return nil, ErrMalformed
			}
		case xml.EndElement: // encoding/xml has already checked it matches
			switch state {
			case inField: // encoding/xml has rejected invalid UTF-8 and non-XML characters
				m.keys = append(m.keys, name)
				m.vals[name] = string(val)
				state = inRoot
			case inRoot:
				state = afterRoot
			}
		case xml.CharData:
			if state == inField {
				val = append(val, t...)
			} else if !isSpace(t) {
				return nil, ErrMalformed
			}
		}
	}
}
