package medpay

import (
	"fmt"
	"time"
)

// Refund states (med_refund_state, docs/api/refunds.md (queryrefund)).
const (
	RefundProcessing = "PROCESSING"
	RefundSuccess    = "SUCCESS"
	RefundFail       = "FAIL"   // nothing moved; may be retried
	RefundChange     = "CHANGE" // needs operator action; never silently dropped
)

// Refund leg statuses (cash_refund_status, insurance_refund_status).
const (
	RefundLegNone       = "NOREFUND" // this refund has no such part
	RefundLegProcessing = "PROCESSING"
	RefundLegSuccess    = "SUCCESS"
	RefundLegFail       = "FAIL"
)

// Part refund types.
const (
	PartAll           = ""
	PartCashOnly      = "CASH_ONLY"
	PartInsuranceOnly = "INSURANCE_ONLY"
)

// Refund limits (docs/api/refunds.md (refund)).
const (
	MaxRefundsPerOrder = 50
	RefundWindow       = 365 * 24 * time.Hour
)

// Refund saga steps.
const (
	RefundStepBureau = "bureau" // the bureau may have refunded (serial BureauSerial)
	RefundStepCash   = "cash"   // the cash channel may have refunded (serial CashSerial)
)

// Refund is a refund of a paid order: the insured part whole and once, cash in parts.
type Refund struct {
	ID             int64
	MedRefundID    string
	OrderID        int64
	MerchantID     int64
	HospOutRefund  string
	Fingerprint    string
	Fields         map[string]string
	PartRefundType string

	CashRefundFee      int64
	InsuranceRefundFee int64
	HifpRefund         int64 // 统筹基金 part of InsuranceRefundFee
	AcctRefund         int64 // 个人账户 part

	State           string
	CashStatus      string
	InsuranceStatus string
	StatusDesc      string
	Step            string
	BureauRefundID  string
	CashRefundID    string
	SuccessTime     time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Version         int64
}

// NotifyURL is where the refund's REFUND notification goes: the notify_url of the refund
// request, never the payment's (docs/api/notifications.md). Empty: no notification.
func (r *Refund) NotifyURL() string { return r.Fields["notify_url"] }

// BureauSerial is the idempotency serial of the bureau refund.
func (r *Refund) BureauSerial() string { return r.MedRefundID + "-B" }

// CashSerial is the idempotency serial of the cash refund.
func (r *Refund) CashSerial() string { return r.MedRefundID + "-C" }

// Check asserts the refund's money invariants.
func (r *Refund) Check() error {
	if !FeeInRange(r.CashRefundFee, r.InsuranceRefundFee, r.HifpRefund, r.AcctRefund) || r.CashRefundFee+r.InsuranceRefundFee == 0 {
		return fmt.Errorf("refund %s: amounts %d + %d", r.MedRefundID, r.CashRefundFee, r.InsuranceRefundFee)
	}
	if r.InsuranceStatus == RefundLegSuccess && r.HifpRefund+r.AcctRefund != r.InsuranceRefundFee {
		return fmt.Errorf("refund %s: hifp %d + acct %d != insurance %d", r.MedRefundID, r.HifpRefund, r.AcctRefund, r.InsuranceRefundFee)
	}
	return nil
}
