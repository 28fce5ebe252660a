package http_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/wire"
)

// paidOrder binds a person of scenario and pays a mixed order: hifp 3575 + cash 2925 of 6500
// (深圳, level 3, one class-A item, account not used).
func paidOrder(t *testing.T, env *testenv.Env, h *testenv.Merchant, token, openid, scenario string) (string, bureau.Person) {
	t.Helper()
	p := env.Bind(t, h, openid, "440300", scenario)
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, openid,
		"pay_type", "3", "total_fee", "6500", "cash_fee", "2925", "insurance_fee", "3575", "allow_fee_change", "0",
		"request_content", `{"acct_used":false,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`))
	ok(t, r)
	if code, out := env.Confirm(t, r.Get("med_trans_id"), "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	return r.Get("med_trans_id"), p
}

func refundReq(h *testenv.Merchant, medTransID, no string, kv ...string) *wire.Message {
	return testenv.Msg(append([]string{"appid", h.AppID, "mch_id", h.MchID, "med_trans_id", medTransID, "hosp_out_refund_no", no}, kv...)...)
}

// checkRefundBooks asserts the ledger balances, that the hospital holds what was paid less what
// was refunded, and that the bureau's account and the wallet agree with the ledger.
func checkRefundBooks(t *testing.T, env *testenv.Env, medTransID string, p bureau.Person, payer string, wantCashBack, wantInsBack int64) {
	t.Helper()
	ctx := context.Background()
	if total, _ := env.Store.LedgerTotal(ctx); total != 0 {
		t.Fatalf("ledger total %d", total)
	}
	o, _ := env.Store.OrderByID(ctx, medTransID)
	moves, _ := env.Store.OrderLedger(ctx, o.ID)
	if got, want := moves[medpay.HospitalAccount(o.MchID)], o.CashFee+o.InsuranceFee-wantCashBack-wantInsBack; got != want {
		t.Errorf("hospital holds %d, want %d", got, want)
	}
	if got := moves[medpay.PayerWalletAccount(payer)]; got != -(o.CashFee - wantCashBack) {
		t.Errorf("wallet moved %d, want %d", got, -(o.CashFee - wantCashBack))
	}
	moved, _ := env.Store.Balance(ctx, medpay.PayerWalletAccount(payer))
	if w, _ := env.Cash.Balance(ctx, payer); w != 1_000_000+moved {
		t.Errorf("wallet %d, ledger says %d", w, 1_000_000+moved)
	}
	acct, _ := env.Store.Balance(ctx, medpay.PersonalAccount(p.PsnNo))
	if b, _ := env.Bureau.Balance(ctx, p.PsnNo); b != p.AcctBalance+acct {
		t.Errorf("bureau account %d, ledger says %d", b, p.AcctBalance+acct)
	}
	if wantInsBack > 0 {
		accs, err := env.Bureau.Accumulators(ctx, p.PsnNo, env.Clock.Now().In(wire.CST).Year())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range accs {
			if a.PoolPaid != 0 || a.DeductibleUsed != 0 {
				t.Errorf("accumulators not given back: %+v", a)
			}
		}
	}
}

func TestRefundWhole(t *testing.T) {
	env, h, token := setup(t)
	id, p := paidOrder(t, env, h, token, "rf-whole", "employee")
	r := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "RF1", "refund_reason", "患者取消",
		"notify_url", "http://127.0.0.1:1/refunds"))
	ok(t, r)
	want := map[string]string{"med_refund_state": "SUCCESS", "cash_refund_fee": "2925", "insurance_refund_fee": "3575",
		"total_fee": "6500", "med_trans_id": id, "hosp_out_refund_no": "RF1", "cash_refund_status": "SUCCESS", "insurance_refund_status": "SUCCESS"}
	for k, v := range want {
		if r.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, r.Get(k), v)
		}
	}
	checkRefundBooks(t, env, id, p, h.AppID+"/rf-whole", 2925, 3575)

	for _, path := range []string{"/payinsurance/queryrefund", "/payinsurance/refundquery"} {
		q := env.Call(t, path, token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_refund_id", r.Get("med_refund_id")))
		ok(t, q)
		if q.Get("med_refund_state") != "SUCCESS" || q.Get("refund_success_time") == "" {
			t.Errorf("%s: %s %s", path, q.Get("med_refund_state"), q.Get("refund_success_time"))
		}
	}
	q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id))
	if q.Get("med_trade_state") != "REFUND" || q.Get("cash_trade_status") != "REFUND" || q.Get("insurance_trade_status") != "REFUND" {
		t.Errorf("order after refund: %s %s %s", q.Get("med_trade_state"), q.Get("cash_trade_status"), q.Get("insurance_trade_status"))
	}
	o, _ := env.Store.OrderByID(context.Background(), id)
	if got := outboxStates(t, env, o.ID); len(got) != 2 || got[1] != "REFUND/" {
		t.Errorf("notifications %v, want PAY then REFUND", got)
	}
	// Nothing is left: a second refund is refused.
	bizFail(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "RF2")), medpay.ErrRefundExceeds)
}

func TestRefundParts(t *testing.T) {
	env, h, token := setup(t)
	id, p := paidOrder(t, env, h, token, "rf-parts", "employee")
	call := func(no string, kv ...string) *wire.Message {
		return env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, no, kv...))
	}
	ok(t, call("C1", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "1000"))
	ok(t, call("C2", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "1000"))
	bizFail(t, call("C3", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "926"), medpay.ErrRefundExceeds)
	checkRefundBooks(t, env, id, p, h.AppID+"/rf-parts", 2000, 0)
	r := call("I1", "part_refund_type", "INSURANCE_ONLY")
	ok(t, r)
	if r.Get("insurance_refund_fee") != "3575" || r.Get("cash_refund_fee") != "0" || r.Has("cash_refund_status") || r.Has("cash_refund_stauts") {
		t.Errorf("insurance-only refund: %s %s cash status %q/%q", r.Get("insurance_refund_fee"), r.Get("cash_refund_fee"), r.Get("cash_refund_status"), r.Get("cash_refund_stauts"))
	}
	bizFail(t, call("I2", "part_refund_type", "INSURANCE_ONLY"), medpay.ErrRefundExceeds)
	r = call("REST") // all that remains: the last 925 of cash
	ok(t, r)
	if r.Get("cash_refund_fee") != "925" || r.Get("insurance_refund_fee") != "0" {
		t.Errorf("rest: %s %s", r.Get("cash_refund_fee"), r.Get("insurance_refund_fee"))
	}
	checkRefundBooks(t, env, id, p, h.AppID+"/rf-parts", 2925, 3575)

	// Field rules.
	resp, body := env.Post(t, "/payinsurance/refund", token, signed(t, refundReq(h, id, "X", "cash_refund_fee", "100"), h.APIKey))
	protocolFail(t, resp, body, "参数格式校验错误 cash_refund_fee is invalid")
	resp, body = env.Post(t, "/payinsurance/refund", token, signed(t, refundReq(h, id, "X", "part_refund_type", "HALF"), h.APIKey))
	protocolFail(t, resp, body, "参数格式校验错误 part_refund_type is invalid")
	resp, body = env.Post(t, "/payinsurance/refund", token, signed(t, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id), h.APIKey))
	protocolFail(t, resp, body, "参数格式校验错误 hosp_out_refund_no is needed")
}

func TestRefundIdempotencyAndErrors(t *testing.T) {
	env, h, token := setup(t)
	id, _ := paidOrder(t, env, h, token, "rf-idem", "employee")
	first := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "R1", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "500"))
	ok(t, first)
	again := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "R1", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "500"))
	ok(t, again)
	if again.Get("med_refund_id") != first.Get("med_refund_id") {
		t.Fatal("retry created another refund")
	}
	bizFail(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "R1", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "501")), medpay.ErrDuplicateRefundNo)
	bizFail(t, env.Call(t, "/payinsurance/queryrefund", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "hosp_out_refund_no", "none")), medpay.ErrRefundNotFound)
	bizFail(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, "M0", "R9")), medpay.ErrOrderNotFound)

	// An unpaid order cannot be refunded.
	un := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "rf-idem"))
	ok(t, un)
	bizFail(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, un.Get("med_trans_id"), "R10")), medpay.ErrRefundExceeds)

	// After 365 days refunds are refused.
	env.Clock.Advance(medpay.RefundWindow + time.Hour)
	token = env.Token(t, h)
	bizFail(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "R11")), medpay.ErrRefundExceeds)
}

func TestRefundIPAllowList(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	h.RefundIPs = []string{"10.0.0.0/8"}
	// Re-create the hospital with an allow-list that excludes the test's loopback address.
	h2 := env.NewMerchant(t, medpay.KindHospital, 3, "440300")
	if _, err := env.DB.SQL().Exec(`UPDATE merchants SET refund_ips = '10.0.0.0/8,192.0.2.7' WHERE id = $1`, h2.ID); err != nil {
		t.Fatal(err)
	}
	env.Store.ForgetMerchant(h2.ID) // changed behind the Store's back
	token := env.Token(t, h2)
	id, _ := paidOrder(t, env, h2, token, "rf-ip", "employee")
	bizFail(t, env.Call(t, "/payinsurance/refund", token, h2.APIKey, refundReq(h2, id, "IP1")), medpay.ErrRefundIP)
}

func TestRefundUnknownScenario(t *testing.T) {
	env, h, token := setup(t)
	id, p := paidOrder(t, env, h, token, "rf-unknown", "refund_unknown")
	r := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "U1"))
	ok(t, r)
	if r.Get("med_refund_state") != "SUCCESS" {
		t.Fatalf("state %s", r.Get("med_refund_state"))
	}
	checkRefundBooks(t, env, id, p, h.AppID+"/rf-unknown", 2925, 3575)
	// The bureau holds exactly one refund of the settlement.
	var n int
	env.BureauDB.SQL().QueryRow(`SELECT COUNT(*) FROM bureau_order_refunds`).Scan(&n)
	if n != 1 {
		t.Fatalf("bureau refunds: %d, want 1", n)
	}
}

func TestRefundFiftyLimit(t *testing.T) {
	env, h, token := setup(t)
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "rf-50", "total_fee", "100", "cash_fee", "100"))
	ok(t, r)
	id := r.Get("med_trans_id")
	env.Confirm(t, id, "123456")
	for i := 1; i <= medpay.MaxRefundsPerOrder; i++ {
		ok(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, fmt.Sprintf("F%d", i), "part_refund_type", "CASH_ONLY", "cash_refund_fee", "1")))
	}
	bizFail(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "F51", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "1")), medpay.ErrRefundExceeds)
}

// TestRefundRaces sends duplicate and competing refunds at once: the same number pays out once,
// and different numbers never pay out more than was paid.
func TestRefundRaces(t *testing.T) {
	env, h, token := setup(t)
	id, p := paidOrder(t, env, h, token, "rf-race", "employee")
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			m := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "SAME", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "1000"))
			ids[i] = m.Get("med_refund_id") + m.Get("err_code")
		})
	}
	wg.Wait()
	for _, got := range ids {
		if got != ids[0] || len(got) < 10 {
			t.Fatalf("racing duplicates answered %v", ids)
		}
	}
	codes := make([]string, 6)
	for i := range codes {
		wg.Go(func() {
			m := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, fmt.Sprintf("D%d", i), "part_refund_type", "CASH_ONLY", "cash_refund_fee", "1000"))
			codes[i] = m.Get("result_code") + m.Get("err_code")
		})
	}
	wg.Wait()
	succeeded := 0
	for _, c := range codes {
		if c == "SUCCESS" {
			succeeded++
		} else if c != "FAIL"+medpay.ErrRefundExceeds {
			t.Errorf("competing refund answered %s", c)
		}
	}
	if succeeded != 1 { // 2925 paid in cash: 1000 already refunded, room for one more 1000
		t.Fatalf("%d competing refunds of 1000 succeeded, want 1 (codes %v)", succeeded, codes)
	}
	checkRefundBooks(t, env, id, p, h.AppID+"/rf-race", 2000, 0)
}
