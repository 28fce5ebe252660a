package reconcile_test

import (
	"context"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/reconcile"
	"github.com/medpay/medpay/wire"
)

// pay places an order for openid (bound to a person of scenario) and confirms it.
func pay(t *testing.T, env *testenv.Env, h *testenv.Merchant, token, openid, scenario string, kv ...string) string {
	t.Helper()
	if scenario != "" {
		env.Bind(t, h, openid, "440300", scenario)
	}
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, openid, kv...))
	if r.Get("result_code") != "SUCCESS" {
		t.Fatalf("unifiedorder: %s %s", r.Get("err_code"), r.Get("err_code_des")+r.Get("return_msg"))
	}
	env.Confirm(t, r.Get("med_trans_id"), "123456")
	return r.Get("med_trans_id")
}

func TestDayBalancesThenFindsDiscrepancies(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)
	mixed := []string{"pay_type", "3", "total_fee", "6500", "cash_fee", "2925", "insurance_fee", "3575", "allow_fee_change", "1",
		"request_content", `{"acct_used":false,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`}
	insured := []string{"pay_type", "2", "cash_fee", "0", "insurance_fee", "10000", "allow_fee_change", "1"}
	paid := pay(t, env, h, token, "r-employee", bureau.ScenarioEmployee, mixed...)
	pay(t, env, h, token, "r-cash", "")
	pay(t, env, h, token, "r-declined", bureau.ScenarioCashDeclined, mixed...)
	pay(t, env, h, token, "r-timeout", bureau.ScenarioBureauTimeout, insured...)
	pay(t, env, h, token, "r-lost", bureau.ScenarioSettleLost, insured...)
	ref := env.Call(t, "/payinsurance/refund", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID,
		"med_trans_id", paid, "hosp_out_refund_no", "RC1", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "925"))
	if ref.Get("med_refund_state") != "SUCCESS" {
		t.Fatalf("refund: %v", ref.Get("err_code_des"))
	}

	ctx := context.Background()
	now := env.Clock.Now().In(wire.CST)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, wire.CST)
	r, err := reconcile.Day(ctx, env.Store, env.Bureau, env.CashBooks, day)
	if err != nil {
		t.Fatal(err)
	}
	// Five serials: the declined payer's order moved nothing at any party (it waits unpaid).
	if !r.OK() || r.Serials < 5 {
		t.Fatalf("a clean day: %d serials, discrepancies %+v", r.Serials, r.Discrepancies)
	}
	// employee 3575 + settle_lost 10000·55 % from the fund; cash 2925 − 925 refunded + 10000.
	if got := r.Totals[reconcile.BureauFund]; got.Platform != 3575+5500 || got.Books != got.Platform {
		t.Errorf("fund totals %+v", got)
	}
	if got := r.Totals[reconcile.Cash]; got.Platform != 2000+10000 || got.Books != got.Platform {
		t.Errorf("cash totals %+v", got)
	}

	// Money the platform never recorded: a settlement made at the bureau behind its back, and a
	// cash payment at the channel under an out_trade_no it never used.
	p, _ := bureau.FindPerson("440300", bureau.ScenarioEmployee)
	auth, err := env.Bureau.SandboxPayAuth(ctx, p.IDNo, medpay.ScopePay)
	if err != nil {
		t.Fatal(err)
	}
	up, err := env.Bureau.Upload(ctx, medpay.UploadRequest{MedOrgOrd: "ORPHAN", PayAuthNo: auth.PayAuthNo, CityID: "440300",
		HospLevel: 3, OrderType: "DiagPay", DefaultFee: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Bureau.Settle(ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: "ORPHAN-S1"}); err != nil {
		t.Fatal(err)
	}
	orphan, err := env.Gateway.Prepay(ctx, medpay.CashPrepayRequest{OutTradeNo: "ORPHAN0001", AppID: h.AppID, OpenID: "r-cash",
		Description: "门诊", NotifyURL: env.URL + "/notify/cash", Amount: 300})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.CashChannel.SandboxPay(ctx, orphan.PrepayID, "123456"); err != nil {
		t.Fatal(err)
	}
	r, err = reconcile.Day(ctx, env.Store, env.Bureau, env.CashBooks, day)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]reconcile.Amounts{
		reconcile.BureauFund + "/" + up.PayOrdID:      {Platform: 0, Books: 550},
		reconcile.PersonalAccount + "/" + up.PayOrdID: {Platform: 0, Books: 450},
		reconcile.Cash + "/ORPHAN0001":                {Platform: 0, Books: 300},
	}
	if len(r.Discrepancies) != len(want) {
		t.Fatalf("discrepancies %+v", r.Discrepancies)
	}
	for _, d := range r.Discrepancies {
		if w, ok := want[d.Party+"/"+d.Serial]; !ok || w != d.Amounts {
			t.Errorf("unexpected discrepancy %+v", d)
		}
	}
}
