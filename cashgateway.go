package medpay

import (
	"context"
	"time"
)

// CashGateway is the cash channel as a party on the network that the payer pays at, the way
// WeChat Pay's JSAPI and native payments work (v3.md §1–2): the platform places a prepay order,
// the payer pays it in the channel's own cashier, and the channel reports the outcome by callback
// and query; refunds are asked for and reported the same way. Every call is idempotent on the
// platform's numbers (out_trade_no, out_refund_no). Calls whose outcome is unknown (no answer,
// an answer that fails verification, a 5XX) return an error wrapping ErrOutcomeUnknown: find out
// by query before deciding. The payer-driven saga is written against this port.
type CashGateway interface {
	// Prepay places the order for the cash part: JSAPI when req.OpenID is set (a PrepayID), native
	// otherwise (a CodeURL). The same OutTradeNo with the same content answers the same prepay;
	// other content wraps ErrConflict.
	Prepay(ctx context.Context, req CashPrepayRequest) (*CashPrepay, error)
	// PayParams are the signed parameters the payer's page hands to the channel's cashier.
	PayParams(appID, prepayID string) (*CashPayParams, error)
	// CashierURL is the address of a cashier page for p that returns to returnURL, when the
	// channel has one (the sandbox channel); ok is false for a channel whose cashier is opened by
	// its app from PayParams (WeChat Pay).
	CashierURL(p *CashPayParams, returnURL string) (u string, ok bool)
	// QueryPayment returns the order's state; an unknown order wraps ErrNotFound.
	QueryPayment(ctx context.Context, outTradeNo string) (*CashPayment, error)
	// Close closes an unpaid order so it can no longer be paid; closing a closed order succeeds,
	// a paid one is refused with an error wrapping ErrConflict. Query afterwards for the final
	// state: WeChat Pay also answers 204 for a number it does not know.
	Close(ctx context.Context, outTradeNo string) error
	// Refund refunds part or all of a paid order once per OutRefundNo.
	Refund(ctx context.Context, req CashRefundRequest) (*CashRefund, error)
	// QueryRefund returns a refund; an unknown one wraps ErrNotFound.
	QueryRefund(ctx context.Context, outRefundNo string) (*CashRefund, error)
	// ParseCallback verifies and opens a callback the channel POSTed to the notify URL; the
	// receiver answers 2XX when it returns nil error, 4XX otherwise (probes included).
	ParseCallback(ctx context.Context, header map[string][]string, body []byte) (*CashEvent, error)
}

// CashPrepayRequest places the cash part of an order at the channel.
type CashPrepayRequest struct {
	OutTradeNo  string
	AppID       string
	OpenID      string // the payer (JSAPI); empty for a native (QR) order
	Description string
	Attach      string
	NotifyURL   string // where the channel POSTs TRANSACTION.SUCCESS
	Amount      int64  // fen
	Expire      time.Time
}

// CashPrepay is the channel's answer to a prepay.
type CashPrepay struct {
	OutTradeNo string
	PrepayID   string // JSAPI
	CodeURL    string // native
}

// CashPayParams are the JSAPI cashier's parameters: Package is "prepay_id=…", SignType "RSA",
// PaySign the merchant's signature over appId\ntimeStamp\nnonceStr\npackage\n.
type CashPayParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// States of a cash payment at the channel (trade_state).
const (
	CashNotPaid    = "NOTPAY"
	CashPaid       = "SUCCESS"
	CashRefunded   = "REFUND" // paid, then partly or fully refunded
	CashClosed     = "CLOSED"
	CashRevoked    = "REVOKED"
	CashUserPaying = "USERPAYING"
	CashPayError   = "PAYERROR"
)

// CashPayment is an order as the channel sees it.
type CashPayment struct {
	OutTradeNo    string
	TransactionID string // the channel's number, once paid
	State         string // one of the Cash* states
	StateDesc     string
	Amount        int64 // fen ordered
	PayerAmount   int64 // fen the payer paid
	OpenID        string
	PaidAt        time.Time
}

// Paid reports whether the payer paid (refunds since included).
func (p *CashPayment) Paid() bool { return p.State == CashPaid || p.State == CashRefunded }

// CashRefundRequest refunds a paid order.
type CashRefundRequest struct {
	OutTradeNo  string
	OutRefundNo string
	Reason      string
	NotifyURL   string // where the channel POSTs REFUND.SUCCESS; empty: the order's
	Amount      int64  // fen to refund
	Total       int64  // fen of the order
}

// Refund statuses.
const (
	CashRefundSuccess    = "SUCCESS"
	CashRefundClosed     = "CLOSED"
	CashRefundProcessing = "PROCESSING"
	CashRefundAbnormal   = "ABNORMAL"
)

// CashRefund is a refund as the channel sees it.
type CashRefund struct {
	OutRefundNo   string
	RefundID      string
	OutTradeNo    string
	TransactionID string
	Status        string // one of the CashRefund* statuses
	Amount        int64
	Total         int64
	SucceededAt   time.Time
}

// Callback event types.
const (
	CashEventPaid     = "TRANSACTION.SUCCESS"
	CashEventRefunded = "REFUND.SUCCESS"
)

// CashEvent is a verified, opened callback: Payment for TRANSACTION.*, Refund for REFUND.*.
type CashEvent struct {
	ID      string
	Type    string
	Payment *CashPayment
	Refund  *CashRefund
}
