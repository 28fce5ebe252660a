package medpay

import (
	"context"
	"errors"
)

// Bureau is the social-insurance bureau (人社局/医保局), the "bank" of the product's analogy
// (docs/api/bureau.md). Every money-moving operation is idempotent on the platform's serial, so it can
// be retried after a timeout. The project ships a simulator; a real bureau implements the same
// interface over the national protocol.
type Bureau interface {
	// VerifyIdentity checks name, ID number, card number and city, for card binding.
	VerifyIdentity(ctx context.Context, id Identity) (*InsuredPerson, error)
	// PreSettle computes the split of a bill without moving money.
	PreSettle(ctx context.Context, req SettleRequest) (*Settlement, error)
	// Settle commits the split of a bill exactly once per req.Serial.
	Settle(ctx context.Context, req SettleRequest) (*Settlement, error)
	// QuerySettlement returns the settlement made under serial, or ErrNotFound when there is none
	// (never settled, or reversed).
	QuerySettlement(ctx context.Context, serial string) (*Settlement, error)
	// Reverse (冲正) undoes the settlement made under serial; reversing nothing succeeds.
	Reverse(ctx context.Context, serial string) error
	// Refund gives back the insured part of the settlement settleSerial, once, under serial.
	Refund(ctx context.Context, serial, settleSerial string) (*BureauRefund, error)
	// QueryRefund returns the refund made under serial, or ErrNotFound.
	QueryRefund(ctx context.Context, serial string) (*BureauRefund, error)
}

// ErrOutcomeUnknown means an outside party did not answer in time: the operation may or may not
// have happened, and the caller must find out by query before deciding.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// Identity is what a payer enters to bind a card.
type Identity struct {
	Name   string
	IDNo   string
	CardNo string
	CityID string
}

// InsuredPerson is the bureau's answer to an identity check.
type InsuredPerson struct {
	PsnNo    string
	Name     string
	IDNo     string
	CardNo   string
	CityID   string
	Insutype string // 310 employee, 390 resident
	PsnType  string // employee, retiree, resident
	Status   string // active, suspended
}

// SettleRequest asks for the split of one bill.
type SettleRequest struct {
	Serial         string // idempotency serial (Settle only)
	PsnNo          string
	CityID         string
	HospLevel      int
	OrderType      string // RegPay, DiagPay
	OrgNo          string
	RequestContent string // the itemised bill, docs/api/bureau.md (request_content)
	DefaultFee     int64  // insurance_fee + cash_fee: the single class-A item when there is no bill
}

// Settlement is the bureau's split of a bill (docs/api/bureau.md), all fen.
type Settlement struct {
	SetlID          string
	Serial          string
	MedfeeSumamt    int64
	HifpPay         int64 // 统筹基金
	AcctPay         int64 // 个人账户
	PsnCashPay      int64 // the payer's cash part
	ResponseContent string
}

// Insurance is the part the bureau pays.
func (s *Settlement) Insurance() int64 { return s.HifpPay + s.AcctPay }

// BureauRefund is a completed bureau refund.
type BureauRefund struct {
	RefundID string
	Serial   string
	HifpPay  int64
	AcctPay  int64
}

// CashChannel is the channel that moves the cash part (the payer's wallet). Charges and refunds
// are idempotent on the serial.
type CashChannel interface {
	// VerifyPIN checks the payer's payment PIN.
	VerifyPIN(ctx context.Context, payer, pin string) error
	Charge(ctx context.Context, serial, payer string, amount int64) (*CashReceipt, error)
	// QueryCharge returns the charge made under serial, or ErrNotFound.
	QueryCharge(ctx context.Context, serial string) (*CashReceipt, error)
	Refund(ctx context.Context, serial, chargeSerial string, amount int64) (*CashReceipt, error)
	QueryRefund(ctx context.Context, serial string) (*CashReceipt, error)
}

// CashReceipt is a completed cash movement.
type CashReceipt struct {
	ID     string
	Serial string
	Amount int64
}

// ErrWrongPIN is returned by VerifyPIN.
var ErrWrongPIN = errors.New("wrong PIN")

// ErrDeclined is returned when the cash channel refuses a charge (balance, risk).
var ErrDeclined = errors.New("declined")

// Binding is a social-security card bound to a payer (an openid under an appid).
type Binding struct {
	AppID    string
	OpenID   string
	PsnNo    string
	Name     string
	IDNo     string
	CardNo   string
	CityID   string
	Insutype string
}
