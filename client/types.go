package client

import (
	"time"

	"github.com/medpay/medpay/wire"
)

// Order types (order_type).
const (
	RegPay  = "RegPay"  // 挂号支付
	DiagPay = "DiagPay" // 诊间支付
)

// Pay types (pay_type).
const (
	PayCash          = 1 // cash only
	PayInsurance     = 2 // insurance only
	PayCashInsurance = 3 // cash + insurance
)

// Trade states (med_trade_state), docs/api/orders.md (queryorder).
const (
	StateNotPay       = "NOTPAY"
	StateUserPaying   = "USERPAYING"
	StateSuccess      = "SUCCESS"
	StatePayError     = "PAYERROR"
	StateClosed       = "CLOSED"
	StateRefund       = "REFUND"
	StateSysRefunding = "SYS_REFUNDING"
	StateSysRefunded  = "SYS_REFUNDED"
)

// Refund states (med_refund_state), docs/api/refunds.md (queryrefund).
const (
	RefundProcessing = "PROCESSING"
	RefundSuccess    = "SUCCESS"
	RefundFail       = "FAIL"
	RefundChange     = "CHANGE"
)

// Partial refund types (part_refund_type).
const (
	RefundCashOnly      = "CASH_ONLY"
	RefundInsuranceOnly = "INSURANCE_ONLY"
)

// Every request struct has an Extra map: fields sent as they are, beside the typed ones (for a
// field this version of the SDK does not know yet). They are signed like the others.

// OrderFields are the fields of an order that unifiedorder and micropay share (docs/api/orders.md (unifiedorder)).
// Amounts are fen. In service-provider mode set SubOpenID instead of OpenID.
type OrderFields struct {
	OpenID             string    `wire:"openid"`
	SubOpenID          string    `wire:"sub_openid"`
	OrderType          string    `wire:"order_type"` // RegPay or DiagPay
	HospOutTradeNo     string    `wire:"hosp_out_trade_no"`
	HospitalName       string    `wire:"hospital_name"`
	Body               string    `wire:"body"`
	TotalFee           int64     `wire:"total_fee"`
	CashFee            int64     `wire:"cash_fee"`
	InsuranceFee       int64     `wire:"insurance_fee"`
	CashAddFee         int64     `wire:"cash_add_fee,omitempty"`
	CashAddWording     string    `wire:"cash_add_wording"`
	CashReducedFee     int64     `wire:"cash_reduced_fee,omitempty"`
	CashReducedWording string    `wire:"cash_reduced_wording"`
	AllowFeeChange     int       `wire:"allow_fee_change"` // 0 or 1
	PayType            int       `wire:"pay_type"`         // PayCash, PayInsurance, PayCashInsurance
	SpbillCreateIP     string    `wire:"spbill_create_ip"`
	CityID             string    `wire:"city_id"`
	UserCardType       int       `wire:"user_card_type,omitempty"`
	UserCardNo         string    `wire:"user_card_no"`
	UserName           string    `wire:"user_name"`
	SerialNo           string    `wire:"serial_no"`
	OrgNo              string    `wire:"org_no"`
	GmtOutCreate       time.Time `wire:"gmt_out_create"` // required: the HIS order time
	RequestContent     string    `wire:"request_content"`
	BillNo             string    `wire:"bill_no"`
	ChannelNo          string    `wire:"channel_no"`
	IsDept             string    `wire:"is_dept"`
	Attach             string    `wire:"attach"`
	TimeExpire         time.Time `wire:"time_expire"`
}

// UnifiedOrderRequest places a registration (RegPay) or clinic (DiagPay) payment order
// (docs/api/orders.md (unifiedorder)). Amounts are fen. In service-provider mode set SubOpenID instead of OpenID.
//
// To retry after a timeout, send the same request again: the platform recognises the
// HospOutTradeNo and, with the same fields, answers with the same order. Keep GmtOutCreate (and
// every other field) unchanged between attempts.
type UnifiedOrderRequest struct {
	OrderFields
	NotifyURL string            `wire:"notify_url"`
	ReturnURL string            `wire:"return_url"`
	Extra     map[string]string // more fields, signed and sent as given ("" removes one)
}

// UnifiedOrderResponse is the answer to UnifiedOrder: the figures the payer will be asked for
// (after the bureau's pre-settlement) and where the payer pays.
type UnifiedOrderResponse struct {
	MedTransID   string        `wire:"med_trans_id"`
	PayType      int           `wire:"pay_type"`
	CashFee      int64         `wire:"cash_fee"`
	InsuranceFee int64         `wire:"insurance_fee"`
	PayURL       string        `wire:"pay_url"`   // the payer opens this page
	PayAppID     string        `wire:"pay_appid"` // the payment mini-program, for navigateToMiniProgram
	CodeURL      string        `wire:"code_url"`  // a PNG QR code of PayURL
	Raw          *wire.Message // the whole verified answer
}

// OrderRef names an order by MedTransID or by HospOutTradeNo (one of them).
type OrderRef struct {
	MedTransID     string            `wire:"med_trans_id"`
	HospOutTradeNo string            `wire:"hosp_out_trade_no"`
	Extra          map[string]string // more fields, signed and sent as given ("" removes one)
}

// QueryOrderRequest names the order to query.
type QueryOrderRequest = OrderRef

// CloseOrderRequest names the order to close.
type CloseOrderRequest = OrderRef

// Order is an order's query fields (docs/api/orders.md (queryorder)): the answer to QueryOrder and MicroPay, and
// the content of a PAY notification.
type Order struct {
	MedTransID           string        `wire:"med_trans_id"`
	HospOutTradeNo       string        `wire:"hosp_out_trade_no"`
	OrderType            string        `wire:"order_type"`
	PayType              int           `wire:"pay_type"`
	OpenID               string        `wire:"openid"`
	SubOpenID            string        `wire:"sub_openid"`
	TotalFee             int64         `wire:"total_fee"`
	CashFee              int64         `wire:"cash_fee"`
	InsuranceFee         int64         `wire:"insurance_fee"`
	AllowFeeChange       int           `wire:"allow_fee_change"`
	SpbillCreateIP       string        `wire:"spbill_create_ip"`
	SerialNo             string        `wire:"serial_no"`
	OrgNo                string        `wire:"org_no"`
	BillNo               string        `wire:"bill_no"`
	Attach               string        `wire:"attach"`
	TimeEnd              time.Time     `wire:"time_end"`
	MedTradeState        string        `wire:"med_trade_state"`
	CashTradeStatus      string        `wire:"cash_trade_status"`
	InsuranceTradeStatus string        `wire:"insurance_trade_status"`
	TradeStatusDesc      string        `wire:"trade_status_desc"`
	InsuranceOrderID     string        `wire:"insurance_order_id"`
	CashOrderID          string        `wire:"cash_order_id"`
	ResponseContent      string        `wire:"response_content"`
	MedicalCardID        string        `wire:"medical_card_id"`
	Raw                  *wire.Message // the whole verified answer
}

// Paid reports whether the order was paid (SUCCESS, or REFUND after a refund).
func (o *Order) Paid() bool { return o.MedTradeState == StateSuccess || o.MedTradeState == StateRefund }

// CloseOrderResponse is the answer to CloseOrder.
type CloseOrderResponse struct {
	MedTransID     string        `wire:"med_trans_id"`
	HospOutTradeNo string        `wire:"hosp_out_trade_no"`
	MedTradeState  string        `wire:"med_trade_state"`
	Raw            *wire.Message // the whole verified answer
}

// RefundRequest refunds a paid order (docs/api/refunds.md (refund)). A retry with the same HospOutRefundNo
// and the same fields returns the same refund, so after err_code 553/556 or a timeout, send the
// same request again and confirm with QueryRefund.
type RefundRequest struct {
	MedTransID      string            `wire:"med_trans_id"`
	HospOutTradeNo  string            `wire:"hosp_out_trade_no"`
	HospOutRefundNo string            `wire:"hosp_out_refund_no"`
	PartRefundType  string            `wire:"part_refund_type"`          // "", RefundCashOnly or RefundInsuranceOnly
	CashRefundFee   int64             `wire:"cash_refund_fee,omitempty"` // with RefundCashOnly; 0: all remaining cash
	RefundReason    string            `wire:"refund_reason"`
	CancelSerialNo  string            `wire:"cancel_serial_no"`
	CancelBillNo    string            `wire:"cancel_bill_no"`
	RequestContent  string            `wire:"request_content"`
	NotifyURL       string            `wire:"notify_url"` // where the REFUND notification goes; none without it
	Extra           map[string]string // more fields, signed and sent as given ("" removes one)
}

// Refund is a refund's fields: the answer to Refund and QueryRefund, and the content of a REFUND
// notification.
type Refund struct {
	MedRefundID           string        `wire:"med_refund_id"`
	HospOutRefundNo       string        `wire:"hosp_out_refund_no"`
	MedTransID            string        `wire:"med_trans_id"`
	HospOutTradeNo        string        `wire:"hosp_out_trade_no"`
	TotalFee              int64         `wire:"total_fee"`
	CashRefundFee         int64         `wire:"cash_refund_fee"`
	InsuranceRefundFee    int64         `wire:"insurance_refund_fee"`
	MedRefundState        string        `wire:"med_refund_state"`
	CashRefundStatus      string        `wire:"cash_refund_status"`
	InsuranceRefundStatus string        `wire:"insurance_refund_status"`
	RefundSuccessTime     time.Time     `wire:"refund_success_time"`
	RefundReason          string        `wire:"refund_reason"`
	Raw                   *wire.Message // the whole verified answer
}

// QueryRefundRequest names a refund by MedRefundID or HospOutRefundNo (one of them).
type QueryRefundRequest struct {
	MedRefundID     string            `wire:"med_refund_id"`
	HospOutRefundNo string            `wire:"hosp_out_refund_no"`
	Extra           map[string]string // more fields, signed and sent as given ("" removes one)
}

// MicroPayRequest is 刷码付 (docs/api/orders.md (micropay)): unifiedorder's fields without the URLs, plus the
// payer's scanned AuthCode. The answer is the order; when its MedTradeState is USERPAYING the
// payer must still confirm and the caller polls QueryOrder.
type MicroPayRequest struct {
	AuthCode string `wire:"auth_code"`
	OrderFields
	Extra map[string]string // more fields, signed and sent as given ("" removes one)
}

// GetMedInfoRequest asks for the payer's bound card (docs/api/cards.md (getmedinfo)).
type GetMedInfoRequest struct {
	OpenID    string            `wire:"openid"`
	SubOpenID string            `wire:"sub_openid"`
	Extra     map[string]string // more fields, signed and sent as given ("" removes one)
}

// MedInfo is the payer's bound card, masked.
type MedInfo struct {
	MedicalCardNo string        `wire:"medical_card_no"` // in full: mask it before logging or showing it
	UserName      string        `wire:"user_name"`       // masked: first character then *
	CityID        string        `wire:"city_id"`
	CardStatus    string        `wire:"card_status"` // BOUND or UNBOUND
	Raw           *wire.Message // the whole verified answer
}

// GetBindURLRequest asks for a card-binding link (docs/api/cards.md (getbindurl)).
type GetBindURLRequest struct {
	OpenID    string            `wire:"openid"`
	SubOpenID string            `wire:"sub_openid"`
	URL       string            `wire:"url"` // where the payer returns after binding
	Extra     map[string]string // more fields, signed and sent as given ("" removes one)
}

// BindURL is a single-use card-binding link, valid 10 minutes.
type BindURL struct {
	BindURL string        `wire:"bind_url"`
	Raw     *wire.Message // the whole verified answer
}

// BillDownloadRequest asks for the bill of a past day (docs/api/bills.md).
type BillDownloadRequest struct {
	BillDate string            `wire:"bill_date"` // yyyyMMdd
	BillType string            `wire:"bill_type"` // ALL, SUCCESS or REFUND
	TarType  string            `wire:"tar_type"`  // "" or GZIP
	Extra    map[string]string // more fields, signed and sent as given ("" removes one)
}
