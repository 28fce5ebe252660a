package sqlstore

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// decodeFields decodes the stored fields of an order or refund: the JSON object that
// json.Marshal made of a map[string]string. Every order read decodes one, and encoding/json's
// reflection was a tenth of queryorder's CPU; the common case, an object of plain strings in
// Marshal's compact form, is split here, and anything else (an escape, whitespace, a value
// that is not a string) goes to encoding/json. FuzzDecodeFields checks the two agree.
func decodeFields(data []byte) (map[string]string, error) {
	if m, ok := decodeFieldsPlain(data); ok {
		return m, nil
	}
	var m map[string]string
	err := json.Unmarshal(data, &m)
	return m, err
}

// decodeFieldsPlain decodes {"k":"v",…} with no backslash, control character or invalid
// UTF-8 anywhere and nothing between the tokens; ok false means it did not decide.
func decodeFieldsPlain(b []byte) (map[string]string, bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}
	for _, c := range b {
		if c == '\\' || c < 0x20 {
			return nil, false
		}
	}
	if !utf8.Valid(b) {
		return nil, false
	}
	// One string holds every key and value: the map's strings share it.
	body := string(b[1 : len(b)-1])
	m := make(map[string]string, strings.Count(body, `":"`))
	for len(body) > 0 {
		if body[0] != '"' {
			return nil, false
		}
		i := strings.IndexByte(body[1:], '"')
		if i < 0 {
			return nil, false
		}
		key := body[1 : 1+i]
		body = body[2+i:]
		if len(body) < 2 || body[0] != ':' || body[1] != '"' {
			return nil, false
		}
		body = body[2:]
		j := strings.IndexByte(body, '"')
		if j < 0 {
			return nil, false
		}
		m[key] = body[:j]
		body = body[j+1:]
		if len(body) == 0 {
			break
		}
		if body[0] != ',' || len(body) == 1 {
			return nil, false
		}
		body = body[1:]
	}
	return m, true
}
