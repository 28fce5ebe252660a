package http_test

import (
	"fmt"
	"testing"

	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/wire"
)

// BenchmarkUnifiedOrder measures a full cash order placement through the HTTP stack on SQLite:
// signing, the request over loopback, token lookup, decoding, verification, the replay check,
// validation, the order's insert, and the signed answer.
func BenchmarkUnifiedOrder(b *testing.B) {
	env := testenv.New(b, testenv.Options{})
	h := env.Hospital(b)
	token := env.Token(b, h)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := testenv.OrderRequest(h, "bench", "hosp_out_trade_no", fmt.Sprintf("B%d", i))
		if r := env.Call(b, "/payinsurance/unifiedorder", token, h.APIKey, req); r.Get("result_code") != "SUCCESS" {
			b.Fatal(r.Get("err_code_des") + r.Get("return_msg"))
		}
	}
}

// BenchmarkUnifiedOrderInsurance is the same for an insurance order: one bureau pre-settlement
// per order on top.
func BenchmarkUnifiedOrderInsurance(b *testing.B) {
	env := testenv.New(b, testenv.Options{})
	h := env.Hospital(b)
	token := env.Token(b, h)
	env.Bind(b, h, "bench", "440300", "employee")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := testenv.OrderRequest(h, "bench", "hosp_out_trade_no", fmt.Sprintf("B%d", i),
			"pay_type", "2", "cash_fee", "0", "insurance_fee", "10000", "allow_fee_change", "1")
		if r := env.Call(b, "/payinsurance/unifiedorder", token, h.APIKey, req); r.Get("result_code") != "SUCCESS" {
			b.Fatal(r.Get("err_code_des") + r.Get("return_msg"))
		}
	}
}

// BenchmarkQueryOrder measures a signed read.
func BenchmarkQueryOrder(b *testing.B) {
	env := testenv.New(b, testenv.Options{})
	h := env.Hospital(b)
	token := env.Token(b, h)
	r := env.Call(b, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "bench"))
	id := r.Get("med_trans_id")
	b.ResetTimer()
	for b.Loop() {
		q := env.Call(b, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id, "nonce_str", wire.Nonce()))
		if q.Get("result_code") != "SUCCESS" {
			b.Fatal(q.Get("return_msg"))
		}
	}
}
