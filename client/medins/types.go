package medins

import "github.com/medpay/medpay/apiv3"

// The JSON bodies of 医保 2.0 (v3.md §2), shared with the platform's server. Amounts are integer fen.

// Paths served to hospitals.
const (
	PathOrders        = "/v3/med-ins/orders"
	PathByMixTradeNo  = "/v3/med-ins/orders/mix-trade-no/"
	PathByOutTradeNo  = "/v3/med-ins/orders/out-trade-no/"
	PathRefundsNotify = "/v3/med-ins/refunds/notify"
	PathJSAPI         = "/v3/pay/transactions/jsapi"
	PathJSAPIByOutNo  = "/v3/pay/transactions/out-trade-no/"
	PathRefunds       = "/v3/refund/domestic/refunds"
)

// EventSuccess is the event of a paid order's callback (v3.md §4).
const EventSuccess = "MEDICAL_INSURANCE.SUCCESS"

// Mixed pay types.
const (
	CashOnly         = "CASH_ONLY"
	InsuranceOnly    = "INSURANCE_ONLY"
	CashAndInsurance = "CASH_AND_INSURANCE"
)

// Order states (mix_pay_status, self_pay_status, med_ins_pay_status).
const (
	MixCreated = "MIX_PAY_CREATED"
	MixSuccess = "MIX_PAY_SUCCESS"
	MixRefund  = "MIX_PAY_REFUND"
	MixFail    = "MIX_PAY_FAIL"

	SelfCreated = "SELF_PAY_CREATED"
	SelfSuccess = "SELF_PAY_SUCCESS"
	SelfRefund  = "SELF_PAY_REFUND"
	SelfFail    = "SELF_PAY_FAIL"
	NoSelfPay   = "NO_SELF_PAY"

	MedCreated = "MED_INS_PAY_CREATED"
	MedSuccess = "MED_INS_PAY_SUCCESS"
	MedRefund  = "MED_INS_PAY_REFUND"
	MedFail    = "MED_INS_PAY_FAIL"
	NoMedPay   = "NO_MED_INS_PAY"
)

// OrderTypes are the order_type values of v3.md §2.
var OrderTypes = []string{"REG_PAY", "DIAG_PAY", "COVID_EXAM_PAY", "IN_HOSP_PAY", "PHARMACY_PAY", "INSURANCE_PAY",
	"INT_REG_PAY", "INT_RE_DIAG_PAY", "INT_RX_PAY", "COVID_ANTIGEN_PAY", "MED_PAY"}

// Payer is the insured payer; Name and IDDigest are RSA-OAEP encrypted for the platform key.
type Payer struct {
	Name     string `json:"name,omitempty"`
	IDDigest string `json:"id_digest,omitempty"`
	CardType string `json:"card_type,omitempty"`
}

// CashAdd is an addition to the cash part (e.g. a fee the insurance does not cover).
type CashAdd struct {
	Fee  int64  `json:"cash_add_fee"`
	Type string `json:"cash_add_type"`
}

// CashReduce is a reduction of the cash part (e.g. a hospital discount).
type CashReduce struct {
	Fee  int64  `json:"cash_reduce_fee"`
	Type string `json:"cash_reduce_type"`
}

// OrderRequest is the body of POST /v3/med-ins/orders.
type OrderRequest struct {
	MixPayType                string       `json:"mix_pay_type"`
	OrderType                 string       `json:"order_type"`
	AppID                     string       `json:"appid"`
	SubAppID                  string       `json:"sub_appid,omitempty"`
	SubMchID                  string       `json:"sub_mchid,omitempty"`
	OpenID                    string       `json:"openid,omitempty"`
	SubOpenID                 string       `json:"sub_openid,omitempty"`
	Payer                     *Payer       `json:"payer,omitempty"`
	PayForRelatives           bool         `json:"pay_for_relatives,omitempty"`
	Relative                  *Payer       `json:"relative,omitempty"`
	OutTradeNo                string       `json:"out_trade_no"`
	SerialNo                  string       `json:"serial_no"`
	PayOrderID                string       `json:"pay_order_id,omitempty"`
	PayAuthNo                 string       `json:"pay_auth_no,omitempty"`
	GeoLocation               string       `json:"geo_location,omitempty"`
	CityID                    string       `json:"city_id"`
	MedInstName               string       `json:"med_inst_name"`
	MedInstNo                 string       `json:"med_inst_no"`
	MedInsOrderCreateTime     string       `json:"med_ins_order_create_time"`
	TotalFee                  int64        `json:"total_fee"`
	MedInsGovFee              int64        `json:"med_ins_gov_fee"`
	MedInsSelfFee             int64        `json:"med_ins_self_fee"`
	MedInsOtherFee            int64        `json:"med_ins_other_fee"`
	MedInsCashFee             int64        `json:"med_ins_cash_fee"`
	WechatPayCashFee          int64        `json:"wechat_pay_cash_fee"`
	CashAddDetail             []CashAdd    `json:"cash_add_detail,omitempty"`
	CashReduceDetail          []CashReduce `json:"cash_reduce_detail,omitempty"`
	CallbackURL               string       `json:"callback_url"`
	PrepayID                  string       `json:"prepay_id,omitempty"`
	PassthroughRequestContent string       `json:"passthrough_request_content,omitempty"`
	Extends                   string       `json:"extends,omitempty"`
	Attach                    string       `json:"attach,omitempty"`
	ChannelNo                 string       `json:"channel_no,omitempty"`
	MedInsTestEnv             bool         `json:"med_ins_test_env,omitempty"`
}

// Order is the answer of the order and its queries, and the plaintext of its callback: the
// request's fields (without the payer's sensitive ones) and the order's states.
type Order struct {
	OrderRequest
	MixTradeNo                 string `json:"mix_trade_no"`
	MixPayStatus               string `json:"mix_pay_status"`
	SelfPayStatus              string `json:"self_pay_status"`
	MedInsPayStatus            string `json:"med_ins_pay_status"`
	PaidTime                   string `json:"paid_time,omitempty"`
	PassthroughResponseContent string `json:"passthrough_response_content,omitempty"`
	MedInsFailReason           string `json:"med_ins_fail_reason,omitempty"`
}

// RefundNotify is the body of POST /v3/med-ins/refunds/notify.
type RefundNotify struct {
	SubMchID          string `json:"sub_mchid,omitempty"`
	MedRefundTotalFee int64  `json:"med_refund_total_fee"`
	MedRefundGovFee   int64  `json:"med_refund_gov_fee"`
	MedRefundSelfFee  int64  `json:"med_refund_self_fee"`
	MedRefundOtherFee int64  `json:"med_refund_other_fee"`
	RefundTime        string `json:"refund_time"`
	OutRefundNo       string `json:"out_refund_no"`
}

// PrepayRequest is the body of POST /v3/pay/transactions/jsapi: apiv3's, with the
// service-provider fields.
type PrepayRequest struct {
	apiv3.PrepayRequest
	SubMchID string `json:"sub_mchid,omitempty"`
}

// PrepayState is the answer of GET /v3/pay/transactions/out-trade-no/{out_trade_no}.
type PrepayState struct {
	AppID          string       `json:"appid"`
	MchID          string       `json:"mchid"`
	OutTradeNo     string       `json:"out_trade_no"`
	TransactionID  string       `json:"transaction_id,omitempty"`
	TradeType      string       `json:"trade_type"`
	TradeState     string       `json:"trade_state"`
	TradeStateDesc string       `json:"trade_state_desc"`
	SuccessTime    string       `json:"success_time,omitempty"`
	Amount         apiv3.Amount `json:"amount"`
	MixTradeNo     string       `json:"mix_trade_no,omitempty"`
}

// CashRefundRequest is the body of POST /v3/refund/domestic/refunds.
type CashRefundRequest struct {
	SubMchID    string `json:"sub_mchid,omitempty"`
	OutTradeNo  string `json:"out_trade_no"` // the JSAPI order's
	OutRefundNo string `json:"out_refund_no"`
	Reason      string `json:"reason,omitempty"`
	NotifyURL   string `json:"notify_url,omitempty"`
	Amount      struct {
		Refund   int64  `json:"refund"`
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

// CashRefund is a cash refund's answer and query.
type CashRefund struct {
	RefundID    string       `json:"refund_id"`
	OutRefundNo string       `json:"out_refund_no"`
	OutTradeNo  string       `json:"out_trade_no"`
	Channel     string       `json:"channel"`
	Status      string       `json:"status"`
	SuccessTime string       `json:"success_time,omitempty"`
	CreateTime  string       `json:"create_time"`
	Amount      apiv3.Amount `json:"amount"`
	Refund      int64        `json:"refund"`
}
