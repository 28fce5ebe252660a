package medins_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/medins"
)

// TestOrderRules refuses each broken rule of v3.md §2 with its own message, over HTTP.
func TestOrderRules(t *testing.T) {
	e := newEnv(t)
	hosp := e.merchant(t, medpay.KindHospital)
	up := e.upload(t, bureau.ScenarioEmployee, "RULES-1", false)
	prepay := e.prepay(t, hosp, "", "JS-RULES", "o-rules", up.own)
	other := e.prepay(t, hosp, "", "JS-RULES-2", "o-rules", up.own+1)
	cashPrepay := e.prepay(t, hosp, "", "JS-RULES-3", "o-rules", 500)
	valid := func() medins.OrderRequest {
		r := e.orderFor(t, hosp, medins.CashAndInsurance, "RULES-1", "o-rules", &up, 0)
		r.PrepayID = prepay
		return r
	}
	for _, c := range []struct {
		name   string
		change func(r *medins.OrderRequest)
		status int
		code   string
		part   string
	}{
		{"wechat_pay_cash_fee", func(r *medins.OrderRequest) { r.WechatPayCashFee++ }, 403, apiv3.CodeRuleLimit, "wechat_pay_cash_fee ("},
		{"total with reductions", func(r *medins.OrderRequest) { r.TotalFee++ }, 403, apiv3.CodeRuleLimit, "wechat_pay_cash_fee + Σcash_reduce_fee"},
		{"additions counted", func(r *medins.OrderRequest) {
			r.CashAddDetail = []medins.CashAdd{{Fee: 100, Type: "DEFAULT_ADD_TYPE"}}
			r.WechatPayCashFee += 100
		}, 403, apiv3.CodeRuleLimit, "wechat_pay_cash_fee + Σcash_reduce_fee"},
		{"negative", func(r *medins.OrderRequest) { r.MedInsOtherFee = -1 }, 403, apiv3.CodeRuleLimit, "med_ins_other_fee must be 0 to"},
		{"zero total", func(r *medins.OrderRequest) {
			*r = medins.OrderRequest{MixPayType: r.MixPayType, OrderType: r.OrderType, AppID: r.AppID, OpenID: r.OpenID, OutTradeNo: r.OutTradeNo,
				SerialNo: r.SerialNo, CityID: r.CityID, MedInstName: r.MedInstName, MedInstNo: r.MedInstNo, MedInsOrderCreateTime: r.MedInsOrderCreateTime,
				CallbackURL: r.CallbackURL, PayOrderID: r.PayOrderID, PayAuthNo: r.PayAuthNo}
		}, 403, apiv3.CodeRuleLimit, "total_fee must be more than 0"},
		{"cash only with insurance", func(r *medins.OrderRequest) { r.MixPayType = medins.CashOnly }, 403, apiv3.CodeRuleLimit, "CASH_ONLY: med_ins_gov_fee"},
		{"cash only without prepay", func(r *medins.OrderRequest) {
			*r = e.orderFor(t, hosp, medins.CashOnly, "RULES-1", "o-rules", nil, 500)
		}, 403, apiv3.CodeRuleLimit, "CASH_ONLY: prepay_id is required"},
		{"insurance only with cash", func(r *medins.OrderRequest) { r.MixPayType = medins.InsuranceOnly }, 403, apiv3.CodeRuleLimit, "INSURANCE_ONLY: wechat_pay_cash_fee must be 0"},
		{"insurance only with prepay", func(r *medins.OrderRequest) {
			r.MixPayType, r.MedInsGovFee, r.MedInsCashFee, r.WechatPayCashFee = medins.InsuranceOnly, r.MedInsGovFee+r.MedInsCashFee, 0, 0
		}, 403, apiv3.CodeRuleLimit, "INSURANCE_ONLY: prepay_id must be empty"},
		{"mixed without prepay", func(r *medins.OrderRequest) { r.PrepayID = "" }, 403, apiv3.CodeRuleLimit, "CASH_AND_INSURANCE: prepay_id is required"},
		{"mixed without cash", func(r *medins.OrderRequest) {
			r.MedInsGovFee, r.MedInsCashFee, r.WechatPayCashFee = r.MedInsGovFee+r.MedInsCashFee, 0, 0
		}, 403, apiv3.CodeRuleLimit, "CASH_AND_INSURANCE: both"},
		{"gov against 6201", func(r *medins.OrderRequest) { r.MedInsGovFee--; r.MedInsOtherFee++ }, 403, apiv3.CodeRuleLimit, "the bureau's fundPay"},
		{"self against 6201", func(r *medins.OrderRequest) { r.MedInsSelfFee++; r.MedInsCashFee--; r.WechatPayCashFee-- }, 403, apiv3.CodeRuleLimit, "the bureau's psnAcctPay"},
		{"cash against 6201", func(r *medins.OrderRequest) {
			r.TotalFee++
			r.MedInsCashFee++
			r.WechatPayCashFee++
		}, 403, apiv3.CodeRuleLimit, "the bureau's ownPayAmt"},
		{"unknown pay_order_id", func(r *medins.OrderRequest) { r.PayOrderID = "P-NOT-THERE" }, 403, apiv3.CodeRuleLimit, "pay_order_id P-NOT-THERE"},
		{"unknown institution", func(r *medins.OrderRequest) { r.MedInstNo = "H99999999999" }, 403, apiv3.CodeRuleLimit, "med_inst_no H99999999999"},
		{"prepay amount", func(r *medins.OrderRequest) { r.PrepayID = other }, 403, apiv3.CodeRuleLimit, "must equal wechat_pay_cash_fee"},
		{"unknown prepay", func(r *medins.OrderRequest) { r.PrepayID = "wx-nope" }, 403, apiv3.CodeRuleLimit, "prepay_id wx-nope"},
		{"cash only prepay amount", func(r *medins.OrderRequest) {
			*r = e.orderFor(t, hosp, medins.CashOnly, "RULES-1", "o-rules", nil, 600)
			r.PrepayID = cashPrepay
		}, 403, apiv3.CodeRuleLimit, "must equal wechat_pay_cash_fee"},
		{"mix_pay_type", func(r *medins.OrderRequest) { r.MixPayType = "BOTH" }, 400, apiv3.CodeParamError, "mix_pay_type"},
		{"order_type", func(r *medins.OrderRequest) { r.OrderType = "RegPay" }, 400, apiv3.CodeParamError, "order_type"},
		{"missing callback_url", func(r *medins.OrderRequest) { r.CallbackURL = "" }, 400, apiv3.CodeParamError, "callback_url"},
		{"payer not encrypted", func(r *medins.OrderRequest) { r.Payer.Name = "张三" }, 400, apiv3.CodeParamError, "payer.name"},
		{"sub_mchid when independent", func(r *medins.OrderRequest) { r.SubMchID = "1900000001" }, 400, apiv3.CodeParamError, "sub_mchid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := valid()
			c.change(&r)
			var o medins.Order
			err := hosp.client.Do(context.Background(), http.MethodPost, medins.PathOrders, r, &o)
			wantAPIError(t, err, c.status, c.code, c.part)
		})
	}
	// The valid order itself is accepted, so every refusal above is the change's doing.
	e.createOrder(t, hosp, valid())
}

// TestAuthentication refuses a bad signature, an unknown serial, a stale timestamp and a
// replayed nonce with 401 SIGN_ERROR, each answer signed by the platform.
func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hosp := e.merchant(t, medpay.KindHospital)
	path := medins.PathByOutTradeNo + "NONE"
	if _, err := e.query(t, hosp, path); err == nil {
		t.Fatal("query of an unknown order succeeded")
	} else {
		wantAPIError(t, err, http.StatusNotFound, apiv3.CodeOrderNotExist, "")
	}

	// A signature by another key.
	stranger, _ := apiv3.GenerateKey()
	bad := *hosp.client
	bad.Key = stranger
	err := bad.Do(ctx, http.MethodGet, path, nil, nil)
	wantAPIError(t, err, http.StatusUnauthorized, apiv3.CodeSignError, "")

	// An unknown serial.
	bad = *hosp.client
	bad.SerialNo = "0000"
	wantAPIError(t, bad.Do(ctx, http.MethodGet, path, nil, nil), http.StatusUnauthorized, apiv3.CodeSignError, "serial_no")

	// A timestamp six minutes old.
	bad = *hosp.client
	bad.Now = func() time.Time { return time.Now().Add(-6 * time.Minute) }
	wantAPIError(t, bad.Do(ctx, http.MethodGet, path, nil, nil), http.StatusUnauthorized, apiv3.CodeSignError, "timestamp")

	// The same signed request twice: the second is a replay.
	req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err := hosp.client.Authorize(req, nil); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{http.StatusNotFound, http.StatusUnauthorized} {
		resp, err := http.DefaultClient.Do(req.Clone(ctx))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("attempt %d: %d %s, want %d", i+1, resp.StatusCode, body, want)
		}
		if err := (&apiv3.AnswerVerifier{Key: e.h.PlatformPublicKey(), KeyID: e.h.PlatformKeyID()}).Verify(ctx, resp.Header, body); err != nil {
			t.Fatalf("answer %d not signed by the platform: %v", i+1, err)
		}
		if i == 1 && !bytes.Contains(body, []byte("replayed")) {
			t.Fatalf("second answer %s does not name the replay", body)
		}
	}

	// A body changed after signing.
	req, _ = http.NewRequest(http.MethodPost, e.url+medins.PathOrders, bytes.NewReader([]byte(`{"a":2}`)))
	hosp.client.Authorize(req, []byte(`{"a":1}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered body answered %d", resp.StatusCode)
	}
}

// TestProviderAuthorisationAndRefundReport: a service provider acts only for hospitals that
// authorised it (403 NO_AUTH), and the refund report's sums are refused by rule.
func TestProviderAuthorisationAndRefundReport(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hosp := e.merchant(t, medpay.KindHospital)
	prov := e.merchant(t, medpay.KindProvider)
	_, err := e.query(t, prov, medins.PathByOutTradeNo+"X?sub_mchid="+hosp.MchID)
	wantAPIError(t, err, http.StatusForbidden, apiv3.CodeNoAuth, "has not authorised")
	_, err = e.query(t, prov, medins.PathByOutTradeNo+"X")
	wantAPIError(t, err, http.StatusBadRequest, apiv3.CodeParamError, "sub_mchid")

	up := e.upload(t, bureau.ScenarioEmployee, "RR-1", true)
	o := e.createOrder(t, hosp, e.orderFor(t, hosp, medins.InsuranceOnly, "RR-1", "o-rr", &up, 0))
	notify := func(n medins.RefundNotify) error {
		return hosp.client.Do(ctx, http.MethodPost, medins.PathRefundsNotify+"?mix_trade_no="+o.MixTradeNo, n, nil)
	}
	n := medins.RefundNotify{MedRefundTotalFee: up.fund + up.acct, MedRefundGovFee: up.fund, MedRefundSelfFee: up.acct,
		RefundTime: "2026-03-02T10:00:00+08:00", OutRefundNo: "RR-1"}
	wantAPIError(t, notify(n), http.StatusForbidden, apiv3.CodeRuleLimit, "is not paid")
	if status, _ := e.confirm(t, o.MixTradeNo, "123456"); status != http.StatusOK {
		t.Fatalf("confirm %d", status)
	}
	bad := n
	bad.MedRefundTotalFee++
	wantAPIError(t, notify(bad), http.StatusForbidden, apiv3.CodeRuleLimit, "med_refund_total_fee")
	bad = n
	bad.MedRefundGovFee, bad.MedRefundTotalFee = up.fund+1, n.MedRefundTotalFee+1
	wantAPIError(t, notify(bad), http.StatusForbidden, apiv3.CodeRuleLimit, "exceeds what the insurance paid")
	if err := notify(n); err != nil {
		t.Fatal(err)
	}
	if err := notify(n); err != nil {
		t.Fatalf("a repeated report: %v", err)
	}
	changed := n
	changed.RefundTime = "2026-03-02T11:00:00+08:00"
	wantAPIError(t, notify(changed), http.StatusBadRequest, apiv3.CodeInvalidRequest, "out_refund_no")
	got, err := e.query(t, hosp, medins.PathByMixTradeNo+o.MixTradeNo)
	if err != nil || got.MedInsPayStatus != medins.MedRefund || got.MixPayStatus != medins.MixRefund {
		t.Fatalf("after the report %+v %v", got, err)
	}
}
