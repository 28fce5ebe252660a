package medins_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/medins"
)

// TestMixedOrderPaidCalledBackRefunded runs a CASH_AND_INSURANCE order in both modes: the HIS
// uploads at the bureau, places the JSAPI cash order and the 医保 order, the payer confirms, the
// hospital receives MEDICAL_INSURANCE.SUCCESS, queries by both numbers, then refunds both parts
// under one out_refund_no.
func TestMixedOrderPaidCalledBackRefunded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, mode := range []string{"independent", "provider"} {
		t.Run(mode, func(t *testing.T) {
			hosp := e.merchant(t, medpay.KindHospital)
			caller, sub, q := hosp, "", ""
			if mode == "provider" {
				caller = e.merchant(t, medpay.KindProvider)
				if err := e.store.Authorize(ctx, caller.ID, hosp.ID); err != nil {
					t.Fatal(err)
				}
				sub, q = hosp.MchID, "?sub_mchid="+hosp.MchID
			}
			openid := "o-mixed-" + mode
			up := e.upload(t, bureau.ScenarioEmployee, "MIX-"+mode, false)
			if up.own == 0 || up.fund == 0 {
				t.Fatalf("the bill has no cash or fund part: %+v", up)
			}
			req := e.orderFor(t, caller, medins.CashAndInsurance, "OUT-"+mode, openid, &up, 0)
			req.SubMchID = sub
			req.PrepayID = e.prepay(t, caller, sub, "JS-"+mode, openid, up.own)
			o := e.createOrder(t, caller, req)
			if o.MixPayStatus != medins.MixCreated || o.SelfPayStatus != medins.SelfCreated || o.MedInsPayStatus != medins.MedCreated || o.MixTradeNo == "" {
				t.Fatalf("created %+v", o)
			}
			if o.Payer != nil {
				t.Fatal("the answer returns the payer's sensitive fields")
			}
			// The same order again is the same order.
			if again := e.createOrder(t, caller, req); again.MixTradeNo != o.MixTradeNo {
				t.Fatalf("repeat gave %s, first %s", again.MixTradeNo, o.MixTradeNo)
			}
			payer := caller.AppID + "/" + openid
			before, _ := e.cash.Balance(ctx, payer)

			if status, paid := e.confirm(t, o.MixTradeNo, "000000"); status != http.StatusForbidden || paid.MixTradeNo != "" {
				t.Fatalf("wrong PIN answered %d", status)
			}
			status, paid := e.confirm(t, o.MixTradeNo, cash.DefaultPIN)
			if status != http.StatusOK || paid.MixPayStatus != medins.MixSuccess || paid.SelfPayStatus != medins.SelfSuccess ||
				paid.MedInsPayStatus != medins.MedSuccess || paid.PaidTime == "" {
				t.Fatalf("confirm %d %+v", status, paid)
			}
			after, _ := e.cash.Balance(ctx, payer)
			if before-after != up.own && !(before == 0 && after == cash.DefaultBalance-up.own) {
				t.Fatalf("wallet %d → %d, want %d charged", before, after, up.own)
			}
			cb := e.deliver(t)
			if cb == nil || cb.n.EventType != medins.EventSuccess || cb.order.MixTradeNo != o.MixTradeNo || cb.order.MixPayStatus != medins.MixSuccess {
				t.Fatalf("callback %+v", cb)
			}
			if e.deliver(t) != nil {
				t.Fatal("the callback was delivered twice")
			}
			select {
			case tx := <-e.transactions:
				if tx.OutTradeNo != "JS-"+mode || tx.TradeState != apiv3.StateSuccess || tx.Amount.Total != up.own {
					t.Fatalf("JSAPI callback %+v", tx)
				}
			default:
				t.Fatal("the JSAPI order sent no TRANSACTION.SUCCESS")
			}

			for _, path := range []string{medins.PathByMixTradeNo + o.MixTradeNo + q, medins.PathByOutTradeNo + req.OutTradeNo + q} {
				got, err := e.query(t, caller, path)
				if err != nil || got.MixTradeNo != o.MixTradeNo || got.MixPayStatus != medins.MixSuccess || got.TotalFee != req.TotalFee {
					t.Fatalf("query %s: %+v %v", path, got, err)
				}
			}
			var js medins.PrepayState
			if err := caller.client.Do(ctx, http.MethodGet, medins.PathJSAPIByOutNo+"JS-"+mode+"?mchid="+caller.MchID+map[bool]string{true: "&sub_mchid=" + sub}[sub != ""], nil, &js); err != nil ||
				js.TradeState != apiv3.StateSuccess || js.MixTradeNo != o.MixTradeNo {
				t.Fatalf("jsapi query %+v %v", js, err)
			}

			// Refund both parts: the hospital's report of the bureau refund, then the cash.
			notice := medins.RefundNotify{SubMchID: sub, MedRefundTotalFee: up.fund + up.acct, MedRefundGovFee: up.fund, MedRefundSelfFee: up.acct,
				RefundTime: "2026-03-02T10:00:00+08:00", OutRefundNo: "RF-" + mode}
			if err := caller.client.Do(ctx, http.MethodPost, medins.PathRefundsNotify+"?mix_trade_no="+url.QueryEscape(o.MixTradeNo), notice, nil); err != nil {
				t.Fatalf("refunds/notify: %v", err)
			}
			var cr medins.CashRefund
			creq := medins.CashRefundRequest{SubMchID: sub, OutTradeNo: "JS-" + mode, OutRefundNo: "RF-" + mode}
			creq.Amount.Refund, creq.Amount.Total, creq.Amount.Currency = up.own, up.own, "CNY"
			if err := caller.client.Do(ctx, http.MethodPost, medins.PathRefunds, creq, &cr); err != nil || cr.Status != apiv3.RefundSuccess || cr.Refund != up.own {
				t.Fatalf("cash refund %+v %v", cr, err)
			}
			var again medins.CashRefund
			if err := caller.client.Do(ctx, http.MethodPost, medins.PathRefunds, creq, &again); err != nil || again.RefundID != cr.RefundID {
				t.Fatalf("repeated cash refund %+v %v", again, err)
			}
			var cq medins.CashRefund
			if err := caller.client.Do(ctx, http.MethodGet, medins.PathRefunds+"/RF-"+mode+q, nil, &cq); err != nil || cq.Status != apiv3.RefundSuccess || cq.RefundID != cr.RefundID {
				t.Fatalf("refund query %+v %v", cq, err)
			}
			if final, _ := e.cash.Balance(ctx, payer); final != cash.DefaultBalance {
				t.Fatalf("wallet after refund %d, want %d", final, cash.DefaultBalance)
			}
			got, err := e.query(t, caller, medins.PathByMixTradeNo+o.MixTradeNo+q)
			if err != nil || got.MixPayStatus != medins.MixRefund || got.SelfPayStatus != medins.SelfRefund || got.MedInsPayStatus != medins.MedRefund {
				t.Fatalf("after refunds %+v %v", got, err)
			}
			// The hospital's ledger account is back to zero: paid in, refunded out.
			if bal, err := e.store.Balance(ctx, medpay.HospitalAccount(hosp.MchID)); err != nil || bal != 0 {
				t.Fatalf("hospital balance %d %v", bal, err)
			}
			// Another merchant cannot see the order.
			other := e.merchant(t, medpay.KindHospital)
			_, err = e.query(t, other, medins.PathByMixTradeNo+o.MixTradeNo)
			wantAPIError(t, err, http.StatusNotFound, apiv3.CodeOrderNotExist, "")
		})
	}
}

// TestInsuranceOnlyAndCashOnly pays an INSURANCE_ONLY order (no wallet movement) and a
// CASH_ONLY order (no bureau), each called back.
func TestInsuranceOnlyAndCashOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hosp := e.merchant(t, medpay.KindHospital)

	up := e.upload(t, bureau.ScenarioEmployee, "INS-1", true)
	if up.own != 0 {
		t.Fatalf("the account should cover the bill: %+v", up)
	}
	req := e.orderFor(t, hosp, medins.InsuranceOnly, "INS-1", "o-ins", &up, 0)
	o := e.createOrder(t, hosp, req)
	if o.SelfPayStatus != medins.NoSelfPay {
		t.Fatalf("insurance only: %+v", o)
	}
	if status, paid := e.confirm(t, o.MixTradeNo, cash.DefaultPIN); status != http.StatusOK || paid.MixPayStatus != medins.MixSuccess || paid.SelfPayStatus != medins.NoSelfPay {
		t.Fatalf("confirm %d %+v", status, paid)
	}
	if cb := e.deliver(t); cb == nil || cb.order.MixTradeNo != o.MixTradeNo {
		t.Fatalf("callback %+v", cb)
	}
	if bal, _ := e.cash.Balance(ctx, hosp.AppID+"/o-ins"); bal != 0 && bal != cash.DefaultBalance {
		t.Fatalf("wallet moved: %d", bal)
	}

	req = e.orderFor(t, hosp, medins.CashOnly, "CASH-1", "o-cash", nil, 1500)
	req.PrepayID = e.prepay(t, hosp, "", "JS-CASH-1", "o-cash", 1500)
	o = e.createOrder(t, hosp, req)
	if o.MedInsPayStatus != medins.NoMedPay {
		t.Fatalf("cash only: %+v", o)
	}
	if status, paid := e.confirm(t, o.MixTradeNo, cash.DefaultPIN); status != http.StatusOK || paid.MixPayStatus != medins.MixSuccess {
		t.Fatalf("confirm %d %+v", status, paid)
	}
	if bal, _ := e.cash.Balance(ctx, hosp.AppID+"/o-cash"); bal != cash.DefaultBalance-1500 {
		t.Fatalf("wallet %d", bal)
	}
	if cb := e.deliver(t); cb == nil || cb.order.MixTradeNo != o.MixTradeNo {
		t.Fatalf("callback %+v", cb)
	}
}

// TestBureauRefusesSettlement: the HIS revokes its upload after ordering, so 6202 is refused:
// the order ends MIX_PAY_FAIL with the bureau's reason, the cash refunded and no callback.
func TestBureauRefusesSettlement(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hosp := e.merchant(t, medpay.KindHospital)
	for _, c := range []struct {
		name, scenario string
		revoke         bool
	}{{"refused", bureau.ScenarioEmployee, true}} {
		t.Run(c.name, func(t *testing.T) {
			openid := "o-fail-" + c.name
			up := e.upload(t, c.scenario, "FAIL-"+c.name, false)
			req := e.orderFor(t, hosp, medins.CashAndInsurance, "FAIL-"+c.name, openid, &up, 0)
			req.PrepayID = e.prepay(t, hosp, "", "JS-FAIL-"+c.name, openid, up.own)
			o := e.createOrder(t, hosp, req)
			if c.revoke {
				e.revoke(t, up)
			}
			status, paid := e.confirm(t, o.MixTradeNo, cash.DefaultPIN)
			if status != http.StatusOK || paid.MixPayStatus != medins.MixFail || paid.SelfPayStatus != medins.SelfRefund ||
				paid.MedInsPayStatus != medins.MedFail || paid.MedInsFailReason == "" {
				t.Fatalf("confirm %d %+v", status, paid)
			}
			if bal, _ := e.cash.Balance(ctx, hosp.AppID+"/"+openid); bal != cash.DefaultBalance {
				t.Fatalf("wallet %d: the cash was not refunded", bal)
			}
			if cb := e.deliver(t); cb != nil {
				t.Fatalf("a failed order was called back: %+v", cb)
			}
			got, err := e.query(t, hosp, medins.PathByOutTradeNo+req.OutTradeNo)
			if err != nil || got.MixPayStatus != medins.MixFail || got.MedInsFailReason != paid.MedInsFailReason {
				t.Fatalf("query %+v %v", got, err)
			}
		})
	}
}
