package hsa

import (
	"encoding/json"
	"math"
	"testing"
)

func TestCleanCompact(t *testing.T) {
	type line struct {
		Sn    string  `json:"feedetlSn"`
		Amt   string  `json:"detItemFeeSumamt"`
		Cnt   int     `json:"cnt"`
		Note  *string `json:"note"`
		Flags []int   `json:"flags"`
	}
	for _, c := range []struct {
		name string
		in   any
		want string // compact JSON of Clean(in); "" when it cleans away
	}{
		{"empty string", "", ""},
		{"null", nil, ""},
		{"empty object", map[string]any{}, ""},
		{"empty array", []any{}, ""},
		{"only empties", map[string]any{"a": "", "b": nil, "c": map[string]any{}, "d": []any{}}, ""},
		{"nested empties vanish", map[string]any{"a": map[string]any{"b": map[string]any{"c": ""}}, "k": "v"}, `{"k":"v"}`},
		{"booleans and zeros stay", map[string]any{"f": false, "t": true, "z": 0, "zf": 0.0, "s": "0"}, `{"f":false,"s":"0","t":true,"z":0,"zf":0}`},
		{"keys in byte order", map[string]any{"b": "1", "B": "2", "a": "3", "_": "4", "aa": "5", "张": "6"}, `{"B":"2","_":"4","a":"3","aa":"5","b":"1","张":"6"}`},
		{"sorted at every level", map[string]any{"z": []any{map[string]any{"y": "1", "x": "2"}}, "a": map[string]any{"d": "1", "c": "2"}}, `{"a":{"c":"2","d":"1"},"z":[{"x":"2","y":"1"}]}`},
		{"arrays drop empty elements", []any{"", nil, "a", map[string]any{}, []any{}, []any{""}, 0}, `["a",0]`},
		{"unicode as itself", map[string]any{"userName": "张三", "emoji": "😀", "sep": "\u2028", "html": "<a&b>"}, `{"emoji":"😀","html":"<a&b>","sep":"` + "\u2028" + `","userName":"张三"}`},
		{"escapes", map[string]any{"s": "q\"b\\n\nt\tc\x01d\x7f/"}, `{"s":"q\"b\\n\nt\tc\u0001d` + "\x7f" + `/"}`},
		{"numbers keep their text", json.RawMessage(`{"a":1.50,"b":-0,"c":1e3,"d":12345678901234567890}`), `{"a":1.50,"b":-0,"c":1e3,"d":12345678901234567890}`},
		{"Go numbers", map[string]any{"i": int64(math.MaxInt64), "f": 12.3, "u": uint8(7)}, `{"f":12.3,"i":9223372036854775807,"u":7}`},
		{"structs through encoding/json", []line{{Sn: "1", Amt: "12.30", Cnt: 0}, {}}, `[{"cnt":0,"detItemFeeSumamt":"12.30","feedetlSn":"1"},{"cnt":0}]`},
		{"typed map", map[string]string{"b": "", "a": "x"}, `{"a":"x"}`},
		{"json.Number", map[string]any{"n": json.Number("0.10")}, `{"n":0.10}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cleaned := Clean(c.in)
			if c.want == "" {
				if cleaned != nil {
					t.Fatalf("Clean = %#v, want nil", cleaned)
				}
				return
			}
			got, err := CompactJSON(cleaned)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
			// Clean is idempotent and compact JSON is stable through a decode.
			again, _ := CompactJSON(Clean(json.RawMessage(got)))
			if string(again) != c.want {
				t.Fatalf("not stable: %s", again)
			}
		})
	}
}

func TestCompactJSONDoesNotClean(t *testing.T) {
	got, err := CompactJSON(map[string]any{"b": "", "a": nil, "c": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"a":null,"b":"","c":[]}` {
		t.Fatalf("got %s", got)
	}
	for _, bad := range []any{json.Number("1 "), json.Number("0x10"), json.Number(""), make(chan int), json.RawMessage(`{"a":1}x`)} {
		if b, err := CompactJSON(bad); err == nil {
			t.Errorf("CompactJSON(%#v) = %s, want an error", bad, b)
		}
	}
}

func TestSignString(t *testing.T) {
	env := map[string]any{
		"appId": testAppID, "encType": "SM4", "signType": "SM2", "version": "2.0.1",
		"timestamp": "20261130120000", "encData": "ABCDEF", "signData": "xyz", "extra": map[string]any{"x": "1"},
	}
	data := map[string]any{"payOrdId": "ORD0001", "userName": "张三", "empty": "", "list": []any{}}
	for _, c := range []struct {
		name   string
		env    map[string]any
		data   any
		secret string
		want   string
	}{
		{"request", env, data, testAppSecret,
			`appId=3F2C9A1B7D6E4F8091A2B3C4D5E6F708&data={"payOrdId":"ORD0001","userName":"张三"}&encType=SM4&signType=SM2&timestamp=20261130120000&version=2.0.1&key=` + testAppSecret},
		{"answer: code, message, success", with(env, map[string]any{"code": 0, "message": "成功", "success": true}), map[string]any{"ordStas": "4", "fundPay": "8.00"}, testAppSecret,
			`appId=3F2C9A1B7D6E4F8091A2B3C4D5E6F708&code=0&data={"fundPay":"8.00","ordStas":"4"}&encType=SM4&message=成功&signType=SM2&success=true&timestamp=20261130120000&version=2.0.1&key=` + testAppSecret},
		{"refusal: no data, success false", with(env, map[string]any{"code": json.Number("1004"), "message": "bad", "success": false}), nil, testAppSecret,
			`appId=3F2C9A1B7D6E4F8091A2B3C4D5E6F708&code=1004&encType=SM4&message=bad&signType=SM2&success=false&timestamp=20261130120000&version=2.0.1&key=` + testAppSecret},
		{"empty values skipped, data in place of a data key", map[string]any{"appId": "A", "version": "", "x": nil, "data": "ignored", "arr": []any{"", "b"}}, map[string]any{}, "k",
			`appId=A&arr=["b"]&key=k`},
		{"values with & and = are written as they are", map[string]any{"message": "a=b&c"}, []any{"1", "2"}, "k",
			`data=["1","2"]&message=a=b&c&key=k`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := SignString(c.env, c.data, c.secret); got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func with(m map[string]any, add map[string]any) map[string]any {
	out := make(map[string]any, len(m)+len(add))
	for k, v := range m {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}
