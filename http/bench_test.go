package http_test

import (
	"fmt"
	"sync/atomic"
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
	defer cpuPerOp(b)()
	for i := 0; b.Loop(); i++ {
		req := testenv.OrderRequest(h, "bench", "hosp_out_trade_no", fmt.Sprintf("B%d", i))
		if r := env.Call(b, "/payinsurance/unifiedorder", token, h.APIKey, req); r.Get("result_code") != "SUCCESS" {
			b.Fatal(r.Get("err_code_des") + r.Get("return_msg"))
		}
	}
}

// BenchmarkUnifiedOrderParallel is the same with 32 callers at once (loadtest's default -c), where
// SQLite's writes queue and group commit can share transactions.
func BenchmarkUnifiedOrderParallel(b *testing.B) {
	env := testenv.New(b, testenv.Options{})
	h := env.Hospital(b)
	token := env.Token(b, h)
	var seq atomic.Int64
	b.SetParallelism(16) // × GOMAXPROCS 2
	b.ResetTimer()
	defer cpuPerOp(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := testenv.OrderRequest(h, "bench", "hosp_out_trade_no", fmt.Sprintf("P%d", seq.Add(1)))
			if r := env.Call(b, "/payinsurance/unifiedorder", token, h.APIKey, req); r.Get("result_code") != "SUCCESS" {
				b.Error(r.Get("err_code_des") + r.Get("return_msg"))
				return
			}
		}
	})
}

// cpuPerOp reports the CPU time of the process (client and server both) per operation when the
// returned function runs: on a shared machine it is steadier than ns/op.
func cpuPerOp(b *testing.B) func() {
	start := testenv.CPUTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((testenv.CPUTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
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
	defer cpuPerOp(b)()
	for b.Loop() {
		q := env.Call(b, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id, "nonce_str", wire.Nonce()))
		if q.Get("result_code") != "SUCCESS" {
			b.Fatal(q.Get("return_msg"))
		}
	}
}
