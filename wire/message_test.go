package wire

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fields flattens m to name, value pairs in order, for comparisons.
func fields(m *Message) []string {
	var out []string
	for _, k := range m.Keys() {
		out = append(out, k, m.Get(k))
	}
	return out
}

func TestMessage(t *testing.T) {
	t.Parallel()
	m := NewMessage()
	m.Set("a", "1")
	m.Set("b", "")
	m.Set("c", "3")
	m.Set("a", "one") // replaces in place
	if got, want := fields(m), []string{"a", "one", "b", "", "c", "3"}; !slices.Equal(got, want) {
		t.Fatalf("fields = %q, want %q", got, want)
	}
	if !m.Has("b") || m.Get("b") != "" || m.Has("x") || m.Get("x") != "" {
		t.Errorf("Has/Get wrong for empty or absent field")
	}
	c := m.Clone()
	m.Del("a")
	m.Del("x")          // absent: no-op
	m.Set("a", "again") // re-added at the end
	if got, want := fields(m), []string{"b", "", "c", "3", "a", "again"}; !slices.Equal(got, want) {
		t.Errorf("after Del/Set fields = %q, want %q", got, want)
	}
	if got, want := fields(c), []string{"a", "one", "b", "", "c", "3"}; !slices.Equal(got, want) {
		t.Errorf("clone changed: %q", got)
	}
	k := c.Keys()
	k[0] = "zzz" // Keys is a copy
	if c.Keys()[0] != "a" {
		t.Errorf("Keys shares storage")
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"cdata", `<xml><appid><![CDATA[wx1]]></appid><body><![CDATA[挂号费]]></body></xml>`,
			[]string{"appid", "wx1", "body", "挂号费"}},
		{"plain", `<xml><appid>wx1</appid><total_fee>100</total_fee></xml>`,
			[]string{"appid", "wx1", "total_fee", "100"}},
		{"indented without cdata", "<xml>\n  <openid>o1</openid>\n\t<nonce_str>n1</nonce_str>\r\n  <sign>S</sign>\n</xml>\n",
			[]string{"openid", "o1", "nonce_str", "n1", "sign", "S"}},
		{"declaration, bom and comments", "\uFEFF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c --><xml><!-- c --><a>1</a></xml><!-- c -->\n",
			[]string{"a", "1"}},
		{"entities", `<xml><a>a&amp;b &lt;&gt;&quot;&apos;</a><b>&#x4E2D;&#25991;</b></xml>`,
			[]string{"a", `a&b <>"'`, "b", "中文"}},
		{"text kept exactly", "<xml><a>  x \n y  </a><b> </b></xml>",
			[]string{"a", "  x \n y  ", "b", " "}},
		{"mixed text, cdata and comment", `<xml><a>x<![CDATA[<y>]]><!-- c -->z</a></xml>`,
			[]string{"a", "x<y>z"}},
		{"empty values", `<xml><a></a><b/><c><![CDATA[]]></c></xml>`,
			[]string{"a", "", "b", "", "c", ""}},
		{"empty document", `<xml/>`, nil},
		{"attributes ignored", `<xml version="1"><a t="x">1</a></xml>`, []string{"a", "1"}},
		{"cdata with markup", `<xml><a><![CDATA[<b>&amp;</b>]]></a></xml>`, []string{"a", "<b>&amp;</b>"}},
		{"cr normalised", "<xml><a>1\r\n2</a><b>&#13;</b></xml>", []string{"a", "1\n2", "b", "\r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Decode(strings.NewReader(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := fields(m); !slices.Equal(got, tt.want) {
				t.Errorf("fields = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body string }{
		{"empty body", ""},
		{"only whitespace", " \n"},
		{"not xml", "appid=wx1&mch_id=1"},
		{"json", `{"appid":"wx1"}`},
		{"root not xml", `<root><a>1</a></root>`},
		{"root XML upper case", `<XML><a>1</a></XML>`},
		{"namespaced root", `<xml xmlns="urn:x"><a>1</a></xml>`},
		{"namespaced field", `<xml><p:a xmlns:p="urn:x">1</p:a></xml>`},
		{"nested element", `<xml><a><b>1</b></a></xml>`},
		{"whitespace and child", "<xml><a>\n  <b>1</b>\n</a></xml>"},
		{"text beside fields", `<xml>junk<a>1</a></xml>`},
		{"trailing junk", `<xml><a>1</a></xml>junk`},
		{"second root", `<xml><a>1</a></xml><xml></xml>`},
		{"duplicate field", `<xml><a>1</a><a>1</a></xml>`},
		{"duplicate empty field", `<xml><a/><b>2</b><a></a></xml>`},
		{"doctype", `<!DOCTYPE xml><xml><a>1</a></xml>`},
		{"entity declaration", `<!DOCTYPE xml [<!ENTITY e "x">]><xml><a>&e;</a></xml>`},
		{"undefined entity", `<xml><a>&nbsp;</a></xml>`},
		{"unescaped ampersand", `<xml><a>a&b</a></xml>`},
		{"truncated", `<xml><a>1</a>`},
		{"truncated in field", `<xml><a>1`},
		{"mismatched end", `<xml><a>1</b></xml>`},
		{"processing instruction in root", `<xml><?php x?><a>1</a></xml>`},
		{"gbk declaration", `<?xml version="1.0" encoding="GBK"?><xml><a>1</a></xml>`},
		{"invalid utf-8", "<xml><a>\xff</a></xml>"},
		{"nul reference", `<xml><a>&#0;</a></xml>`},
		{"control character", "<xml><a>\x01</a></xml>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Decode(strings.NewReader(tt.body))
			if err != ErrMalformed { // exactly the sentinel: its text is the return_msg
				t.Errorf("Decode = %v, %v; want ErrMalformed", m, err)
			}
		})
	}
}

func TestDecodeSize(t *testing.T) {
	t.Parallel()
	// body builds a valid document of exactly n bytes.
	body := func(n int) string {
		const frame = "<xml><a></a></xml>"
		return "<xml><a>" + strings.Repeat("x", n-len(frame)) + "</a></xml>"
	}
	m, err := Decode(strings.NewReader(body(MaxBodySize)))
	if err != nil || len(m.Get("a")) != MaxBodySize-18 {
		t.Fatalf("exactly MaxBodySize: err = %v", err)
	}
	if _, err := Decode(strings.NewReader(body(MaxBodySize + 1))); err != ErrTooLarge {
		t.Errorf("MaxBodySize+1: err = %v, want ErrTooLarge", err)
	}
	// The limit applies to the bytes read, even if a well-formed document ended earlier.
	if _, err := Decode(strings.NewReader(body(100) + strings.Repeat(" ", MaxBodySize))); err != ErrTooLarge {
		t.Errorf("padded: err = %v, want ErrTooLarge", err)
	}
}

func TestDecodeReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	if _, err := Decode(iotest.ErrReader(boom)); err != boom {
		t.Errorf("err = %v, want the reader's error", err)
	}
	// Short reads must not matter.
	if _, err := Decode(iotest.OneByteReader(strings.NewReader(`<xml><a>1</a></xml>`))); err != nil {
		t.Errorf("one-byte reader: %v", err)
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    *Message
		want string
	}{
		{"empty", msg(), "<xml></xml>"},
		{"fields in order", msg("b", "2", "a", ""), "<xml><b><![CDATA[2]]></b><a><![CDATA[]]></a></xml>"},
		{"markup kept raw", msg("a", "<x>&amp;"), "<xml><a><![CDATA[<x>&amp;]]></a></xml>"},
		{"cdata end split", msg("a", "x]]>y"), "<xml><a><![CDATA[x]]]]><![CDATA[>y]]></a></xml>"},
		{"carriage return", msg("a", "1\r\n"), "<xml><a><![CDATA[1]]>&#xD;<![CDATA[\n]]></a></xml>"},
		{"unencodable replaced", msg("a", "\x00\xff"), "<xml><a><![CDATA[\uFFFD\uFFFD]]></a></xml>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := tt.m.Encode(&buf); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want || string(tt.m.Bytes()) != tt.want {
				t.Errorf("Encode = %s, want %s", buf.String(), tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string
	}{
		{"plain", "hello"},
		{"empty", ""},
		{"cdata end", "a]]>b"},
		{"cdata ends", "]]>]]]>]]]]>>"},
		{"brackets at end", "x]]"},
		{"chinese", "挂号费 张三 （普通门诊）"},
		{"markup", `<xml><a>1</a></xml> & &amp; "'`},
		{"whitespace", " \t\n x \n\t "},
		{"carriage returns", "\r\r\n]]\r>"},
		{"astral", "😀𠀀"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := msg("appid", "wx1", "v", tt.value, "z", "0")
			got, err := Decode(bytes.NewReader(m.Bytes()))
			if err != nil {
				t.Fatalf("Decode(%s): %v", m.Bytes(), err)
			}
			if !slices.Equal(fields(got), fields(m)) {
				t.Errorf("round trip: got %q, want %q", fields(got), fields(m))
			}
		})
	}
}

// TestGolden pins the exact bytes of signed responses, as a hospital receives them.
// Run `go test ./wire -run TestGolden -update` to rewrite the files after a deliberate change.
func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file     string
		signType string
	}{
		{"response_md5.golden", ""},
		{"response_hmac.golden", SignTypeHMACSHA256},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			m := msg("return_code", "SUCCESS", "return_msg", "OK", "appid", "wx0000000000000001",
				"mch_id", "1900000001", "nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
				"result_code", "SUCCESS", "med_trans_id", "MT2024010112000000000001",
				"pay_type", "3", "cash_fee", "50", "insurance_fee", "0", "body", "门诊缴费 ]]> <测试>",
				"pay_url", "https://pay.example.com/p?id=1&t=2")
			if tt.signType != "" {
				m.Set("sign_type", tt.signType)
			}
			if err := SignInPlace(m, key2); err != nil {
				t.Fatal(err)
			}
			got := append(m.Bytes(), '\n')
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encoded response differs from %s:\ngot  %s\nwant %s", path, got, want)
			}
			back, err := Decode(bytes.NewReader(want))
			if err != nil || !Verify(back, key2) || Diff(back, m) != nil {
				t.Errorf("golden file does not decode and verify: %v %q", err, Diff(back, m))
			}
		})
	}
}
