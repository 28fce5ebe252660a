package apiv3

// The JSON bodies of the JSAPI, native and refund subset (v3.md §2). Amounts are integer fen.

// Paths of the subset.
const (
	PathJSAPI      = "/v3/pay/transactions/jsapi"
	PathNative     = "/v3/pay/transactions/native"
	PathByOutTrade = "/v3/pay/transactions/out-trade-no/" // + {out_trade_no}?mchid= ; + /close
	PathRefunds    = "/v3/refund/domestic/refunds"        // POST; GET + /{out_refund_no}
)

// Trade types and states (trade_type, trade_state).
const (
	TradeJSAPI  = "JSAPI"
	TradeNative = "NATIVE"

	StateSuccess    = "SUCCESS"    // paid
	StateRefund     = "REFUND"     // paid, then (partly) refunded
	StateNotPay     = "NOTPAY"     // waiting for the payer
	StateClosed     = "CLOSED"     // closed unpaid
	StateRevoked    = "REVOKED"    // (micropay) revoked
	StateUserPaying = "USERPAYING" // the payer is confirming
	StatePayError   = "PAYERROR"   // the payment failed
)

// Refund statuses.
const (
	RefundSuccess    = "SUCCESS"
	RefundClosed     = "CLOSED"
	RefundProcessing = "PROCESSING"
	RefundAbnormal   = "ABNORMAL"
)

// Payer is the payer under the merchant's appid.
type Payer struct {
	OpenID string `json:"openid"`
}

// Amount is an order's amount.
type Amount struct {
	Total    int64  `json:"total"`
	Currency string `json:"currency,omitempty"` // CNY
}

// PrepayRequest is the body of a JSAPI (with Payer) or native (without) order.
type PrepayRequest struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	TimeExpire  string `json:"time_expire,omitempty"` // RFC 3339
	Attach      string `json:"attach,omitempty"`
	NotifyURL   string `json:"notify_url"`
	Amount      Amount `json:"amount"`
	Payer       *Payer `json:"payer,omitempty"`
}

// PrepayAnswer answers a prepay: prepay_id (JSAPI) or code_url (native).
type PrepayAnswer struct {
	PrepayID string `json:"prepay_id,omitempty"`
	CodeURL  string `json:"code_url,omitempty"`
}

// TransactionAmount is a transaction's amounts.
type TransactionAmount struct {
	Total         int64  `json:"total"`
	PayerTotal    int64  `json:"payer_total"`
	Currency      string `json:"currency"`
	PayerCurrency string `json:"payer_currency"`
}

// Transaction answers a query and is the resource of TRANSACTION.SUCCESS.
type Transaction struct {
	AppID          string             `json:"appid"`
	MchID          string             `json:"mchid"`
	OutTradeNo     string             `json:"out_trade_no"`
	TransactionID  string             `json:"transaction_id,omitempty"`
	TradeType      string             `json:"trade_type,omitempty"`
	TradeState     string             `json:"trade_state"`
	TradeStateDesc string             `json:"trade_state_desc"`
	BankType       string             `json:"bank_type,omitempty"`
	Attach         string             `json:"attach,omitempty"`
	SuccessTime    string             `json:"success_time,omitempty"` // RFC 3339
	Payer          *Payer             `json:"payer,omitempty"`
	Amount         *TransactionAmount `json:"amount,omitempty"`
}

// CloseRequest is the body of a close.
type CloseRequest struct {
	MchID string `json:"mchid"`
}

// RefundRequestAmount is the amount of a refund request.
type RefundRequestAmount struct {
	Refund   int64  `json:"refund"`
	Total    int64  `json:"total"`
	Currency string `json:"currency"`
}

// RefundRequest is the body of a refund; transaction_id or out_trade_no names the order.
type RefundRequest struct {
	TransactionID string              `json:"transaction_id,omitempty"`
	OutTradeNo    string              `json:"out_trade_no,omitempty"`
	OutRefundNo   string              `json:"out_refund_no"`
	Reason        string              `json:"reason,omitempty"`
	NotifyURL     string              `json:"notify_url,omitempty"`
	FundsAccount  string              `json:"funds_account,omitempty"`
	Amount        RefundRequestAmount `json:"amount"`
}

// RefundAmount is a refund's amounts.
type RefundAmount struct {
	Total            int64  `json:"total"`
	Refund           int64  `json:"refund"`
	PayerTotal       int64  `json:"payer_total"`
	PayerRefund      int64  `json:"payer_refund"`
	SettlementRefund int64  `json:"settlement_refund"`
	SettlementTotal  int64  `json:"settlement_total"`
	DiscountRefund   int64  `json:"discount_refund"`
	Currency         string `json:"currency"`
}

// Refund answers a refund and its query.
type Refund struct {
	RefundID            string       `json:"refund_id"`
	OutRefundNo         string       `json:"out_refund_no"`
	TransactionID       string       `json:"transaction_id"`
	OutTradeNo          string       `json:"out_trade_no"`
	Channel             string       `json:"channel"`
	UserReceivedAccount string       `json:"user_received_account"`
	SuccessTime         string       `json:"success_time,omitempty"`
	CreateTime          string       `json:"create_time"`
	Status              string       `json:"status"`
	FundsAccount        string       `json:"funds_account,omitempty"`
	Amount              RefundAmount `json:"amount"`
}

// RefundNoticeAmount is the amount of a refund callback.
type RefundNoticeAmount struct {
	Total       int64 `json:"total"`
	Refund      int64 `json:"refund"`
	PayerTotal  int64 `json:"payer_total"`
	PayerRefund int64 `json:"payer_refund"`
}

// RefundNotice is the resource of REFUND.SUCCESS (and REFUND.ABNORMAL, REFUND.CLOSED).
type RefundNotice struct {
	MchID               string             `json:"mchid"`
	OutTradeNo          string             `json:"out_trade_no"`
	TransactionID       string             `json:"transaction_id"`
	OutRefundNo         string             `json:"out_refund_no"`
	RefundID            string             `json:"refund_id"`
	RefundStatus        string             `json:"refund_status"`
	SuccessTime         string             `json:"success_time,omitempty"`
	UserReceivedAccount string             `json:"user_received_account"`
	Amount              RefundNoticeAmount `json:"amount"`
}

// PayParams are what a payer's page passes to the JSAPI cashier (WeixinJSBridge
// getBrandWCPayRequest / wx.requestPayment): package is "prepay_id=…", signType RSA, paySign the
// merchant's signature over PayMessage.
type PayParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// PayMessage is the string paySign signs: appId\ntimeStamp\nnonceStr\npackage\n.
func PayMessage(appID, timeStamp, nonceStr, pkg string) []byte {
	return []byte(appID + "\n" + timeStamp + "\n" + nonceStr + "\n" + pkg + "\n")
}
