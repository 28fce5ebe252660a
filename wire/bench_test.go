package wire

import (
	"bytes"
	"testing"
)

// unifiedOrder is a typical unifiedorder request: about 30 fields, signed.
func unifiedOrder(signType string) *Message {
	m := msg(
		"appid", "wx0000000000000001", "mch_id", "1900000001",
		"sub_appid", "wx0000000000000002", "sub_mch_id", "1900000002",
		"nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
		"sub_openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "order_type", "DiagPay",
		"hosp_out_trade_no", "HOSP20240101120000000001", "hospital_name", "测试市第一人民医院",
		"body", "诊间缴费-内科门诊", "total_fee", "12345", "cash_fee", "2345", "insurance_fee", "10000",
		"cash_add_fee", "0", "cash_add_wording", "", "cash_reduced_fee", "0", "cash_reduced_wording", "",
		"allow_fee_change", "1", "pay_type", "3", "spbill_create_ip", "203.0.113.7",
		"notify_url", "https://his.example-hospital.cn/pay/notify", "return_url", "https://his.example-hospital.cn/pay/done?o=1",
		"city_id", "440300", "user_card_type", "1", "user_card_no", "440301199001011234", "user_name", "张三",
		"serial_no", "SN20240101000001", "org_no", "H44030100001", "gmt_out_create", "20240101120000",
		"bill_no", "B20240101001", "attach", "dept=内科&doctor=李四",
	)
	if signType != "" {
		m.Set("sign_type", signType)
	}
	if err := SignInPlace(m, key2); err != nil {
		panic(err)
	}
	return m
}

func benchSignVerify(b *testing.B, signType string) {
	m := unifiedOrder(signType)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(m, key2); err != nil || !Verify(m, key2) {
			b.Fatal("sign/verify failed")
		}
	}
}

func BenchmarkSignVerifyMD5(b *testing.B)  { benchSignVerify(b, "") }
func BenchmarkSignVerifyHMAC(b *testing.B) { benchSignVerify(b, SignTypeHMACSHA256) }

func BenchmarkDecode(b *testing.B) {
	body := unifiedOrder("").Bytes()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	m := unifiedOrder("")
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Bytes()
	}
}
