package wire

import (
	"slices"
	"testing"
)

// edgeCases are documents at the corners of what encoding/xml accepts; FuzzDecodeEquivalent
// starts from them.
var edgeCases = []string{
	`<xml><a>1</a></xml>`,
	"\uFEFF\uFEFF<xml/>",
	` <?xml version="1.0"?><?xml encoding='utf-8'?><xml/>`,
	`<?xml version=""?><xml/>`,
	`<?xml version=x version="1.1"?><xml/>`,
	`<?xml encoding="UTF-8" version='1.0' ?><xml/>`,
	`<?xml encoding="utf-16"?><xml/>`,
	`<?xml?><xml/>`,
	`<?xmlx?><xml/>`,
	`<?xml-stylesheet href="a"?><xml/>`,
	`<?XML?><xml/>`,
	`<xml/><?xml?>`,
	`<!----><xml><!--a-b--><a><!-- - -->x<!---->y</a></xml><!-- -->`,
	`<xml><!-- a -- b --><a>1</a></xml>`,
	`<xml><!---><a>1</a></xml>-->`,
	`<xml><!--->--><a>1</a></xml>`,
	`<!- x --><xml/>`,
	`<![CDATA[ ]]><xml/>`,
	`<![CDATA[x]]><xml/>`,
	`<![CDATA[<xml/>`,
	`<![CDAT[x]]><xml/>`,
	`&#32;&#x9;&#xA;&#13;<xml/>&#x20;`,
	`&lt;<xml/>`,
	`<xml>&#x20;<a/></xml>`,
	`<xml><a>]]></a></xml>`,
	`<xml><a>]]&gt;</a></xml>`,
	`<xml><a>]&#93;></a></xml>`,
	`<xml><a>]]&amp;></a></xml>`,
	`<xml><a>]]]]></a></xml>`,
	`<xml><a><![CDATA[]]]]><![CDATA[>]]></a></xml>`,
	"<xml><a>\r</a><b>\r\n\r\n</b><c>\r<![CDATA[\n]]></c><d>&amp;\r\n\r</d><e>\r&#10;</e></xml>",
	"<xml><a><![CDATA[\r\n\r]]></a></xml>",
	`<xml><a>&#xD800;</a><b>&#xFFFE;</b></xml>`,
	`<xml><a>&#xDFFF;</a></xml>`,
	`<xml><a>&#x10FFFF;&#1114111;</a></xml>`,
	`<xml><a>&#x110000;</a></xml>`,
	`<xml><a>&#99999999999999999999999;</a></xml>`,
	`<xml><a>&#x0000000000000000041;&#0065;</a></xml>`,
	`<xml><a>&#X41;</a></xml>`,
	`<xml><a>&#x;&#;</a></xml>`,
	`<xml><a>&#65</a></xml>`,
	`<xml><a>&#x4g;</a></xml>`,
	`<xml><a>&;</a></xml>`,
	`<xml><a>&amp</a></xml>`,
	`<xml><a>&AMP;</a></xml>`,
	`<xml><a>&lt</a></xml>`,
	`<xml><a>&l t;</a></xml>`,
	`<xml><a>&é;</a></xml>`,
	"<xml><a>\x7f\u0085\uFFFD</a></xml>",
	"<xml><a>\uFFFF</a></xml>",
	"<xml><a>\xed\xa0\x80</a></xml>",
	"<xml><a>\xc3</a></xml>",
	"<xml><!-- \xff --><a>1</a></xml>",
	"<?xml version='1.0' \xff?><xml/>",
	"<xml><a>\x00</a></xml>",
	`<xml a="1"b='2' c = "&lt;]]>" d="&#10;"><a e="">1</a></xml>`,
	`<xml a="<"/>`,
	`<xml a=1/>`,
	`<xml a/>`,
	`<xml a="&bad;"/>`,
	"<xml a=\"\xff\"/>",
	`<xml a="x`,
	`<xml a='"'/>`,
	`<xml xmlns=""><a>1</a></xml>`,
	`<xml xmlns="u"/>`,
	`<xml xmlns:p="u"><a>1</a></xml>`,
	`<xml><xmlns>1</xmlns></xml>`,
	`<xml><a:b>1</a:b></xml>`,
	`<xml><:a>1</:a></xml>`,
	`<xml><a:>1</a:></xml>`,
	`<xml><a:b:c>1</a:b:c></xml>`,
	`<xml xml:lang="zh"><a>1</a></xml>`,
	`<xml><xml:a>1</xml:a></xml>`,
	`<xml><é>1</é></xml>`,
	"<xml><a\xff>1</a\xff></xml>",
	`<xml><_a-b.c>1</_a-b.c><A9>2</A9></xml>`,
	`<xml><1a>1</1a></xml>`,
	`<xml><-a>1</-a></xml>`,
	`<xml><.a>1</.a></xml>`,
	`<xml><a >1</a ></xml >`,
	"<xml\n><a\t/></xml\r\n>",
	`< xml/>`,
	`<xml></ xml>`,
	`<xml><a></b></xml>`,
	`<xml><a>1</a><a>2</a></xml>`,
	`<xml><a/><a/></xml>`,
	`<xml><a><b/></a></xml>`,
	`<xml></xml></xml>`,
	`</xml>`,
	`<xml/><xml/>`,
	`<xml/>x`,
	`<xml/> `,
	`<xml>`,
	`<xml><a>1</a></xml`,
	`<xml><a/`,
	`<xml><a/x></xml>`,
	`<xml><a>1</a></xml><!--`,
	`<!DOCTYPE xml><xml/>`,
	`<!ENTITY a "b"><xml/>`,
	`<!><xml/>`,
	`<xml><?php?></xml>`,
	`<`,
	`<xml><</xml>`,
	`<xml/>` + "\u00a0",
	`<xml></xml>` + "\v",
}

func sameResult(m1 *Message, err1 error, m2 *Message, err2 error) bool {
	if err1 != nil || err2 != nil {
		return err1 == err2 && m1 == nil && m2 == nil
	}
	return slices.Equal(fields(m1), fields(m2))
}

// FuzzDecodeEquivalent: decode, and decodeFlat wherever it does not defer to decodeStd, give
// exactly what the encoding/xml decoder gives, message or ErrMalformed.
// Seeds: edgeCases and testdata/fuzz/FuzzDecodeEquivalent.
func FuzzDecodeEquivalent(f *testing.F) {
	for _, s := range edgeCases {
		f.Add([]byte(s))
	}
	f.Add(unifiedOrder("").Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := decodeStd(data)
		flat, flatErr := decodeFlat(data)
		if flatErr != errGeneral && !sameResult(flat, flatErr, want, wantErr) {
			t.Fatalf("%q:\ndecodeFlat: %q, %v\ndecodeStd:  %q, %v", data, fieldsOrNil(flat), flatErr, fieldsOrNil(want), wantErr)
		}
		got, err := decode(data)
		if !sameResult(got, err, want, wantErr) {
			t.Fatalf("%q: decode: %q, %v; decodeStd: %q, %v", data, fieldsOrNil(got), err, fieldsOrNil(want), wantErr)
		}
	})
}

func fieldsOrNil(m *Message) []string {
	if m == nil {
		return nil
	}
	return fields(m)
}

// TestDecodeFlatCommon: the documents clients send are parsed by decodeFlat itself, and the
// ones it leaves to decodeStd are only those with namespaces or names outside ASCII.
func TestDecodeFlatCommon(t *testing.T) {
	t.Parallel()
	own := []string{
		string(unifiedOrder("").Bytes()),
		string(unifiedOrder(SignTypeHMACSHA256).Bytes()),
		"\uFEFF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <appid>wx1</appid>\r\n  <body>挂号&amp;诊疗&#x4E2D;</body>\n <!-- note --> <sign><![CDATA[ABC]]></sign>\n</xml>\n",
		`<xml version="1"><a t="x">1</a><b/></xml>`,
	}
	for _, s := range own {
		if _, err := decodeFlat([]byte(s)); err == errGeneral {
			t.Errorf("decodeFlat deferred %q", s)
		}
	}
	general := []string{
		`<xml xmlns=""><a>1</a></xml>`,
		`<xml><p:a>1</p:a></xml>`,
		`<xml><é>1</é></xml>`,
		`<xml xml:lang="zh"/>`,
	}
	for _, s := range general {
		if _, err := decodeFlat([]byte(s)); err != errGeneral {
			t.Errorf("decodeFlat(%q) = %v, want errGeneral", s, err)
		}
	}
}

// TestDecodeEdgeCases runs the seeds without the fuzzing engine, and checks some answers so that
// the two decoders cannot agree on something wrong.
func TestDecodeEdgeCases(t *testing.T) {
	t.Parallel()
	for _, s := range edgeCases {
		want, wantErr := decodeStd([]byte(s))
		got, err := decode([]byte(s))
		if !sameResult(got, err, want, wantErr) {
			t.Errorf("%q: decode %q, %v; decodeStd %q, %v", s, fieldsOrNil(got), err, fieldsOrNil(want), wantErr)
		}
	}
	checks := []struct {
		body string
		want []string // nil: ErrMalformed
	}{
		{`<?xml version=""?><xml/>`, []string{}},
		{`<xml><a>&#xD800;</a></xml>`, []string{"a", "\uFFFD"}},
		{`<xml><a>]&#93;></a></xml>`, []string{"a", "]]>"}},
		{"<xml><c>\r<![CDATA[\n]]></c></xml>", []string{"c", "\n\n"}},
		{`&#32;<xml/>`, []string{}},
		{`<xml><a>]]></a></xml>`, nil},
		{`<xml><a>&#xFFFE;</a></xml>`, nil},
		{`<xml><!-- a -- b --><a>1</a></xml>`, nil},
		{`<xml><xmlns>1</xmlns></xml>`, []string{"xmlns", "1"}},
	}
	for _, c := range checks {
		m, err := decode([]byte(c.body))
		switch {
		case c.want == nil && err != ErrMalformed:
			t.Errorf("%q: got %q, %v; want ErrMalformed", c.body, fieldsOrNil(m), err)
		case c.want != nil && (err != nil || !slices.Equal(append([]string{}, fields(m)...), c.want)):
			t.Errorf("%q: got %q, %v; want %q", c.body, fieldsOrNil(m), err, c.want)
		}
	}
}

// The two decoders on the same typical request (BenchmarkDecode adds reading the body).
func BenchmarkDecodeFlat(b *testing.B) { benchDecoder(b, decodeFlat) }
func BenchmarkDecodeStd(b *testing.B)  { benchDecoder(b, decodeStd) }

func benchDecoder(b *testing.B, decode func([]byte) (*Message, error)) {
	body := unifiedOrder("").Bytes()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// xmlPieces are the units FuzzDecodePieces builds documents from: random bytes rarely spell
// markup, so byte-level fuzzing mostly explores the refusals.
var xmlPieces = []string{
	"<xml>", "</xml>", "<xml/>", "<", ">", "</", "/>", "<a>", "</a>", "<b>", "</b>", "a", "b", "xml",
	"<?xml", "?>", " version=", " encoding=", `"1.0"`, `'utf-8'`, `"GBK"`, `""`, "<!--", "-->", "-",
	"<![CDATA[", "]]>", "]", "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&", "&#", "&#x", "D800",
	"41", "0", ";", "=", `"`, "'", " ", "\r", "\n", "\t", "\r\n", "x", "é", "\xff", ":", "xmlns",
	"<!DOCTYPE", "\uFEFF", "\x00", "1",
}

// FuzzDecodePieces is FuzzDecodeEquivalent over documents made of markup pieces, one per byte,
// half of them inside <xml><v>…</v></xml>.
func FuzzDecodePieces(f *testing.F) {
	f.Add([]byte{0, 5, 10, 2, 9, 1})
	f.Add([]byte{14, 16, 18, 15, 0, 5, 25, 10, 26, 9, 1})
	f.Fuzz(func(t *testing.T, picks []byte) {
		var doc []byte
		wrap := len(picks) > 0 && picks[0]%2 == 0 // inside a root and a field, where values are read
		if wrap {
			doc = append(doc, "<xml><v>"...)
		}
		for _, p := range picks {
			doc = append(doc, xmlPieces[int(p)%len(xmlPieces)]...)
		}
		if wrap {
			doc = append(doc, "</v></xml>"...)
		}
		want, wantErr := decodeStd(doc)
		flat, flatErr := decodeFlat(doc)
		if flatErr != errGeneral && !sameResult(flat, flatErr, want, wantErr) {
			t.Fatalf("%q:\ndecodeFlat: %q, %v\ndecodeStd:  %q, %v", doc, fieldsOrNil(flat), flatErr, fieldsOrNil(want), wantErr)
		}
	})
}
