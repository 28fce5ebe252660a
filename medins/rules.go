package medins

import (
	"net/http"
	"slices"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
)

// ruleLimit is a 403 RULE_LIMIT naming the rule broken.
func ruleLimit(format string, args ...any) *apiv3.Error {
	return apiv3.Errorf(http.StatusForbidden, apiv3.CodeRuleLimit, format, args...)
}

// sums returns Σcash_add_fee and Σcash_reduce_fee, refusing negative or overflowing figures.
func sums(r *OrderRequest) (add, reduce int64, err *apiv3.Error) {
	for _, a := range r.CashAddDetail {
		if a.Fee < 0 {
			return 0, 0, ruleLimit("cash_add_fee must not be negative")
		}
		add += a.Fee
	}
	for _, c := range r.CashReduceDetail {
		if c.Fee < 0 {
			return 0, 0, ruleLimit("cash_reduce_fee must not be negative")
		}
		reduce += c.Fee
	}
	if add > medpay.MaxFee || reduce > medpay.MaxFee {
		return 0, 0, ruleLimit("cash_add_detail and cash_reduce_detail must each sum to at most %d fen", medpay.MaxFee)
	}
	return add, reduce, nil
}

// insurance is what the bureau pays: gov + self + other.
func insurance(r *OrderRequest) int64 { return r.MedInsGovFee + r.MedInsSelfFee + r.MedInsOtherFee }

// checkFields refuses a body missing what every order needs (400 PARAM_ERROR naming the field).
func checkFields(r *OrderRequest, provider bool) *apiv3.Error {
	req := []struct{ name, val string }{
		{"mix_pay_type", r.MixPayType}, {"order_type", r.OrderType}, {"appid", r.AppID},
		{"out_trade_no", r.OutTradeNo}, {"serial_no", r.SerialNo}, {"city_id", r.CityID},
		{"med_inst_name", r.MedInstName}, {"med_inst_no", r.MedInstNo},
		{"med_ins_order_create_time", r.MedInsOrderCreateTime}, {"callback_url", r.CallbackURL},
	}
	if provider {
		req = append(req, struct{ name, val string }{"sub_mchid", r.SubMchID})
	}
	for _, f := range req {
		if f.val == "" {
			return apiv3.ParamError("body", f.name, "is required")
		}
	}
	if r.OpenID == "" && r.SubOpenID == "" {
		return apiv3.ParamError("body", "openid", "openid (or sub_openid) is required")
	}
	if !provider && (r.SubMchID != "" || r.SubAppID != "" || r.SubOpenID != "") {
		return apiv3.ParamError("body", "sub_mchid", "sub_mchid, sub_appid and sub_openid are for service providers")
	}
	switch r.MixPayType {
	case CashOnly, InsuranceOnly, CashAndInsurance:
	default:
		return apiv3.ParamError("body", "mix_pay_type", "must be CASH_ONLY, INSURANCE_ONLY or CASH_AND_INSURANCE")
	}
	if !slices.Contains(OrderTypes, r.OrderType) {
		return apiv3.ParamError("body", "order_type", "unknown order_type "+r.OrderType)
	}
	if len(r.OutTradeNo) > 64 {
		return apiv3.ParamError("body", "out_trade_no", "at most 64 characters")
	}
	if r.MixPayType != CashOnly && (r.PayOrderID == "" || r.PayAuthNo == "") {
		return apiv3.ParamError("body", "pay_order_id", "pay_order_id and pay_auth_no are required when the insurance pays")
	}
	return nil
}

// checkAmounts applies the amount rules of v3.md §2 that need nothing but the body.
func checkAmounts(r *OrderRequest) *apiv3.Error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"total_fee", r.TotalFee}, {"med_ins_gov_fee", r.MedInsGovFee}, {"med_ins_self_fee", r.MedInsSelfFee},
		{"med_ins_other_fee", r.MedInsOtherFee}, {"med_ins_cash_fee", r.MedInsCashFee}, {"wechat_pay_cash_fee", r.WechatPayCashFee}} {
		if f.v < 0 || f.v > medpay.MaxFee {
			return ruleLimit("%s must be 0 to %d fen", f.name, medpay.MaxFee)
		}
	}
	if r.TotalFee == 0 {
		return ruleLimit("total_fee must be more than 0")
	}
	add, reduce, e := sums(r)
	if e != nil {
		return e
	}
	if r.WechatPayCashFee != r.MedInsCashFee+add-reduce {
		return ruleLimit("wechat_pay_cash_fee (%d) must equal med_ins_cash_fee + Σcash_add_fee − Σcash_reduce_fee (%d)",
			r.WechatPayCashFee, r.MedInsCashFee+add-reduce)
	}
	if got := insurance(r) + r.WechatPayCashFee + reduce; r.TotalFee != got {
		return ruleLimit("total_fee (%d) must equal med_ins_gov_fee + med_ins_self_fee + med_ins_other_fee + wechat_pay_cash_fee + Σcash_reduce_fee (%d)",
			r.TotalFee, got)
	}
	if got := insurance(r) + r.MedInsCashFee + add; r.TotalFee != got { // follows from the two above; kept as the contract states it
		return ruleLimit("total_fee (%d) must equal med_ins_gov_fee + med_ins_self_fee + med_ins_other_fee + med_ins_cash_fee + Σcash_add_fee (%d)",
			r.TotalFee, got)
	}
	switch r.MixPayType {
	case CashOnly:
		if insurance(r) != 0 {
			return ruleLimit("CASH_ONLY: med_ins_gov_fee, med_ins_self_fee and med_ins_other_fee must be 0")
		}
		if r.PrepayID == "" {
			return ruleLimit("CASH_ONLY: prepay_id is required")
		}
	case InsuranceOnly:
		if r.WechatPayCashFee != 0 {
			return ruleLimit("INSURANCE_ONLY: wechat_pay_cash_fee must be 0")
		}
		if r.PrepayID != "" {
			return ruleLimit("INSURANCE_ONLY: prepay_id must be empty")
		}
	case CashAndInsurance:
		if r.WechatPayCashFee == 0 || insurance(r) == 0 {
			return ruleLimit("CASH_AND_INSURANCE: both wechat_pay_cash_fee and the insurance sums must be more than 0")
		}
		if r.PrepayID == "" {
			return ruleLimit("CASH_AND_INSURANCE: prepay_id is required")
		}
	}
	return nil
}

// checkSplit compares the insurance sums with the bureau's 6201 pre-settlement of pay_order_id.
func checkSplit(r *OrderRequest, st *medpay.Settlement) *apiv3.Error {
	switch {
	case r.MedInsGovFee != st.HifpPay:
		return ruleLimit("med_ins_gov_fee (%d) must equal the bureau's fundPay (%d) for pay_order_id %s", r.MedInsGovFee, st.HifpPay, r.PayOrderID)
	case r.MedInsSelfFee != st.AcctPay:
		return ruleLimit("med_ins_self_fee (%d) must equal the bureau's psnAcctPay (%d) for pay_order_id %s", r.MedInsSelfFee, st.AcctPay, r.PayOrderID)
	case r.MedInsCashFee != st.PsnCashPay:
		return ruleLimit("med_ins_cash_fee (%d) must equal the bureau's ownPayAmt (%d) for pay_order_id %s", r.MedInsCashFee, st.PsnCashPay, r.PayOrderID)
	}
	return nil
}

// checkPrepay compares the prepay's amount with wechat_pay_cash_fee.
func checkPrepay(r *OrderRequest, p *medpay.Prepay) *apiv3.Error {
	if p.Amount != r.WechatPayCashFee {
		return ruleLimit("the amount of prepay_id %s (%d) must equal wechat_pay_cash_fee (%d)", r.PrepayID, p.Amount, r.WechatPayCashFee)
	}
	return nil
}
