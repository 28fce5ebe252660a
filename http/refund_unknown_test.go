package http_test

import (
	"context"
	"testing"

	"github.com/medpay/medpay"
)

// silentBureau is the bureau with its refunds unreachable: every refund call (6203, also the
// repeat that finds an outcome) times out.
type silentBureau struct{ medpay.Bureau }

func (silentBureau) Refund(ctx context.Context, req medpay.RefundRequest) (*medpay.BureauRefund, error) {
	return nil, medpay.ErrOutcomeUnknown
}

// silentCash is the cash channel with its refunds unreachable.
type silentCash struct{ medpay.CashGateway }

func (silentCash) Refund(ctx context.Context, req medpay.CashRefundRequest) (*medpay.CashRefund, error) {
	return nil, medpay.ErrOutcomeUnknown
}

func (silentCash) QueryRefund(ctx context.Context, outRefundNo string) (*medpay.CashRefund, error) {
	return nil, medpay.ErrOutcomeUnknown
}

// TestRefundOutcomeUnknown: while the bureau (553) or the cash channel (556) cannot be reached the
// refund answers the code and stays PROCESSING; the retry with the same hosp_out_refund_no once
// they answer finishes it, paying out once.
func TestRefundOutcomeUnknown(t *testing.T) {
	env, h, token := setup(t)
	id, p := paidOrder(t, env, h, token, "rf-silent", "employee")
	realBureau, realCash := env.Pay.Bureau, env.Pay.Gateway

	env.Pay.Bureau = silentBureau{realBureau}
	bizFail(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "S1")), medpay.ErrBureauRefund)
	q := env.Call(t, "/payinsurance/queryrefund", token, h.APIKey, refundReq(h, id, "S1"))
	if q.Get("med_refund_state") != "PROCESSING" || q.Get("insurance_refund_status") != "PROCESSING" {
		t.Fatalf("after 553: %s / %s", q.Get("med_refund_state"), q.Get("insurance_refund_status"))
	}
	env.Pay.Bureau = realBureau

	// The bureau leg now goes through; the cash channel is the one that cannot be reached.
	env.Pay.Gateway = silentCash{realCash}
	bizFail(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "S1")), medpay.ErrCashRefund)
	q = env.Call(t, "/payinsurance/queryrefund", token, h.APIKey, refundReq(h, id, "S1"))
	if q.Get("med_refund_state") != "PROCESSING" || q.Get("insurance_refund_status") != "SUCCESS" || q.Get("cash_refund_status") != "PROCESSING" {
		t.Fatalf("after 556: %s / %s / %s", q.Get("med_refund_state"), q.Get("insurance_refund_status"), q.Get("cash_refund_status"))
	}
	env.Pay.Gateway = realCash

	r := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "S1"))
	ok(t, r)
	if r.Get("med_refund_state") != "SUCCESS" {
		t.Fatalf("retry: %s", r.Get("med_refund_state"))
	}
	checkRefundBooks(t, env, id, p, h.AppID+"/rf-silent", 2925, 3575)
}
