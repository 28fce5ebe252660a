package wire

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecode: Decode never panics, fails only with its sentinels, and whatever it accepts
// encodes to a document that decodes to the same message.
// Seeds: testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`<xml><appid><![CDATA[wx1]]></appid><total_fee>100</total_fee></xml>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(bytes.NewReader(data))
		if err != nil {
			if err != ErrMalformed && err != ErrTooLarge {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		enc := m.Bytes()
		back, err := decode(enc) // no size limit: CDATA framing can make it larger than data
		if err != nil {
			t.Fatalf("re-decode of %q: %v", enc, err)
		}
		if !slices.Equal(fields(back), fields(m)) {
			t.Fatalf("round trip changed the message:\n%q\n%q", fields(m), fields(back))
		}
		if !bytes.Equal(back.Bytes(), enc) {
			t.Fatalf("encoding is not stable")
		}
	})
}

// isXMLText reports whether s is UTF-8 made only of XML characters (so it can round-trip).
func isXMLText(s string) bool {
	for i, r := range s {
		if !isXMLChar(r) || (r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD")) {
			return false
		}
	}
	return true
}

var xmlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FuzzCanonical: for arbitrary fields and key, Sign/Verify agree (also across Encode/Decode),
// and changing one value, or the key, makes Verify fail.
//
// fieldList is "name=value" pairs separated by NUL (a value may hold '=', '&', newlines...).
// Seeds: testdata/fuzz/FuzzCanonical, including the signing vectors.
func FuzzCanonical(f *testing.F) {
	f.Add(key2, "appid=wx0000000000000001\x00cash_fee=0\x00insurance_fee=100", false)
	f.Fuzz(func(t *testing.T, key, fieldList string, hmac bool) {
		m := NewMessage()
		for _, pair := range strings.Split(fieldList, "\x00") {
			name, value, _ := strings.Cut(pair, "=")
			m.Set(name, value)
		}
		m.Del("sign")
		if hmac {
			m.Set("sign_type", SignTypeHMACSHA256)
		}
		if st := m.Get("sign_type"); st != "" && st != SignTypeMD5 && st != SignTypeHMACSHA256 {
			if err := SignInPlace(m, key); err != ErrSignType {
				t.Fatalf("sign_type %q: err = %v, want ErrSignType", st, err)
			}
			m.Set("sign", strings.Repeat("0", 32))
			if Verify(m, key) {
				t.Fatalf("Verify accepted sign_type %q", st)
			}
			return
		}
		if err := SignInPlace(m, key); err != nil {
			t.Fatal(err)
		}
		if !Verify(m, key) {
			t.Fatalf("Verify rejected its own signature; canonical %q", RedactedCanonicalString(m))
		}
		if Verify(m, key+"x") {
			t.Fatalf("Verify accepted another key")
		}

		// Change one value (the first signed field, else add one): the signature must fail.
		changed := m.Clone()
		target := "extra"
		for _, k := range m.Keys() {
			if k != "sign" && k != "sign_type" {
				target = k
				break
			}
		}
		changed.Set(target, changed.Get(target)+"x")
		if Verify(changed, key) {
			t.Fatalf("Verify accepted a changed %q", target)
		}

		// Over the wire, when the names are XML names and the values XML text.
		for _, k := range m.Keys() {
			if !xmlName.MatchString(k) || !isXMLText(m.Get(k)) {
				return
			}
		}
		back, err := decode(m.Bytes())
		if err != nil {
			t.Fatalf("decode(%q): %v", m.Bytes(), err)
		}
		if !Verify(back, key) {
			t.Fatalf("signature lost in transport: %q", Diff(m, back))
		}
	})
}
