package sqlstore

import (
	"encoding/json"
	"maps"
	"testing"
)

var fieldsSeeds = []string{
	`{}`, `{"a":"b"}`, `{"appid":"wx1","body":"门诊缴费","total_fee":"100"}`, `{"a":""}`, `{"":"x"}`,
	`{"a":"b","a":"c"}`, `{"a":"b",}`, `{"a":"b"`, `{"a":1}`, `{"a":"b" }`, `{ "a":"b"}`, `null`, `{"a":null}`,
	`{"a":"\u003cx\u003e"}`, `{"a":"\"q\""}`, "{\"a\":\"\xff\"}", "{\"a\":\"\u2028\"}", `{"a":"b","c"}`,
	`{"a""b"}`, `{"a":"b"}}`, `{"a":"b"},`, `{"a":"b","c":"d"}`, `{"a":["b"]}`, `{"a":"b","":""}`, `{,}`, `{"}`,
}

// TestDecodeFields: the maps json.Marshal writes come back as they were, by the plain path when
// there is nothing to unescape.
func TestDecodeFields(t *testing.T) {
	for _, m := range []map[string]string{
		{}, {"appid": "wx1", "hospital_name": "压测医院", "total_fee": "100"},
		{"attach": "附加 & <xml>", "q": `"quoted" \ back`, "nl": "a\nb", "u": "\u2028", "bad": "\xff"},
	} {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]string
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeFields(data)
		if err != nil || !maps.Equal(got, want) || got == nil {
			t.Errorf("%s: %v %v, want %v", data, got, err, want)
		}
	}
	if _, ok := decodeFieldsPlain([]byte(`{"appid":"wx1","hospital_name":"压测医院"}`)); !ok {
		t.Error("the common case did not take the plain path")
	}
}

// FuzzDecodeFields: whatever the plain path decides, encoding/json decides the same.
func FuzzDecodeFields(f *testing.F) {
	for _, s := range fieldsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := decodeFieldsPlain(data)
		if !ok {
			return
		}
		var want map[string]string
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("%q: plain path accepted %v, encoding/json refused: %v", data, got, err)
		}
		if want == nil || !maps.Equal(got, want) {
			t.Fatalf("%q: plain path %v, encoding/json %v", data, got, want)
		}
	})
}

// BenchmarkDecodeFields decodes the stored fields of a typical unifiedorder; ...Std is
// encoding/json alone.
func BenchmarkDecodeFields(b *testing.B) {
	data := benchFields(b)
	for b.Loop() {
		if _, err := decodeFields(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFieldsStd(b *testing.B) {
	data := benchFields(b)
	for b.Loop() {
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func benchFields(b *testing.B) []byte {
	data, err := json.Marshal(map[string]string{"appid": "wxc392aa6ff52e1057", "mch_id": "1991186536", "openid": "lt-payer-LT1",
		"order_type": "DiagPay", "hosp_out_trade_no": "LTmx3gwfvo123456", "hospital_name": "压测医院", "body": "门诊缴费",
		"total_fee": "100", "cash_fee": "100", "insurance_fee": "0", "allow_fee_change": "1", "pay_type": "1",
		"spbill_create_ip": "127.0.0.1", "notify_url": "http://127.0.0.1:9/notify", "city_id": "440300",
		"serial_no": "LT1", "org_no": "H44030000001", "gmt_out_create": "20260302090000"})
	if err != nil {
		b.Fatal(err)
	}
	return data
}
