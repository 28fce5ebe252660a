package payment

import (
	"strconv"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/wire"
)

// SetOrderFields writes an order's query fields (docs/api/orders.md (queryorder)) into m: the body of
// queryorder, micropay and PAY notifications.
func SetOrderFields(m *wire.Message, o *medpay.Order) {
	set := func(k, v string) {
		if v != "" {
			m.Set(k, v)
		}
	}
	num := func(k string, v int64) { m.Set(k, strconv.FormatInt(v, 10)) }
	set("med_trans_id", o.MedTransID)
	set("hosp_out_trade_no", o.HospOutTradeNo)
	set("order_type", o.OrderType)
	num("pay_type", int64(o.PayType))
	set("openid", o.OpenID)
	set("sub_openid", o.SubOpenID)
	num("total_fee", o.TotalFee)
	num("cash_fee", o.CashFee)
	num("insurance_fee", o.InsuranceFee)
	num("allow_fee_change", int64(o.AllowFeeChange))
	set("spbill_create_ip", o.SpbillCreateIP)
	set("serial_no", o.SerialNo)
	set("org_no", o.OrgNo)
	set("bill_no", o.BillNo)
	set("attach", o.Attach)
	if !o.TimeEnd.IsZero() {
		m.Set("time_end", wire.FormatTime(o.TimeEnd))
	}
	m.Set("med_trade_state", string(ReportedState(o)))
	// A leg the order does not have is left out: real clients know only the documented states.
	if o.CashStatus != medpay.LegNoPay {
		set("cash_trade_status", o.CashStatus)
	}
	if o.InsuranceStatus != medpay.LegNoPay {
		set("insurance_trade_status", o.InsuranceStatus)
	}
	set("trade_status_desc", o.StatusDesc)
	set("insurance_order_id", o.InsuranceOrderID)
	set("cash_order_id", o.CashOrderID)
	set("response_content", o.ResponseContent)
	// In full: the hospital is an authorised party and passes it on (docs/api/orders.md (queryorder)).
	set("medical_card_id", o.CardNo)
}

// SetEnvelope writes the identifiers and result of a successful response or notification.
func SetEnvelope(m *wire.Message, appid, mchID, subAppID, subMchID string) {
	m.Set("return_code", "SUCCESS")
	m.Set("return_msg", "OK")
	m.Set("appid", appid)
	m.Set("mch_id", mchID)
	if subAppID != "" {
		m.Set("sub_appid", subAppID)
	}
	if subMchID != "" {
		m.Set("sub_mch_id", subMchID)
	}
	m.Set("nonce_str", wire.Nonce())
	m.Set("result_code", "SUCCESS")
}
