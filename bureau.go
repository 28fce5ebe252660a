package medpay

import (
	"context"
	"errors"
	"time"
)

// Bureau is the social-insurance bureau (人社局/医保局), the "bank" of the product's analogy
// (docs/api/bureau.md). Its operations are those of the national mobile-payment protocol
// (national.md), one method each; the project ships a simulator (in process, or served over the
// network) and a client that speaks the protocol to any bureau. Operations that move money are
// idempotent on a key of the caller's (the upload's MedOrgOrd, the settlement's OrgBizSer, the
// refund's AppRefdSn), so they can be retried after a timeout.
type Bureau interface {
	// Identify (1101) checks name, ID number, card number and city, for card binding.
	Identify(ctx context.Context, id Identity) (*InsuredPerson, error)
	// Upload (6201) uploads a bill and pre-settles it without moving money: the answer carries
	// PayOrdID, PayToken and the split. The same MedOrgOrd with the same bill answers the same
	// PayOrdID; with another bill it is refused.
	Upload(ctx context.Context, req UploadRequest) (*Settlement, error)
	// Settle (6202) settles an uploaded order exactly once; a repeat with the same OrgBizSer
	// answers the first outcome.
	Settle(ctx context.Context, req SettleRequest) (*Settlement, error)
	// Query (6301) returns the order's state at the bureau (OrdStas) and, once settled, its split.
	Query(ctx context.Context, ref OrderRef) (*Settlement, error)
	// Revoke (6401) cancels an upload that was not settled, so that a late settle is refused.
	// Revoking a settled order is refused (*Error): refund it instead.
	Revoke(ctx context.Context, ref OrderRef) error
	// Refund (6203) gives back parts of a settlement, once per AppRefdSn.
	Refund(ctx context.Context, req RefundRequest) (*BureauRefund, error)
	// Statement (3201) lists the day's settlements, refunds and revocations (China time).
	Statement(ctx context.Context, day time.Time) ([]StatementEntry, error)
	// Authorize (auth_info) exchanges a payer's authCode for a payAuthNo.
	Authorize(ctx context.Context, authCode string) (*PayAuth, error)
	// AuthURL is the bureau's authorisation page, which sends the payer back to
	// redirectURI?authCode=…&state=…; scope "bind" asks for a long-lived authorisation.
	AuthURL(redirectURI, state, scope string) string
}

// BureauSandbox is what the platform's sandbox helpers need of a simulated bureau.
type BureauSandbox interface {
	// SandboxPersons lists the test persons (docs/api/sandbox.md (沙箱辅助接口)).
	SandboxPersons(ctx context.Context) ([]SandboxPerson, error)
	// SandboxPayAuth authorises a test person without the page (national.md §5); scope as in
	// Bureau.AuthURL.
	SandboxPayAuth(ctx context.Context, idNo, scope string) (*PayAuth, error)
}

// SandboxPerson is a test person of a simulated bureau.
type SandboxPerson struct {
	PsnNo    string
	Name     string
	IDNo     string
	CardNo   string
	CityID   string
	Scenario string
	PIN      string
	PsnType  string
}

// Authorisation scopes.
const (
	ScopePay  = "pay"  // one payment session: 24 hours
	ScopeBind = "bind" // a bound card: until it is unbound
)

// PayAuth is a payer's authorisation at the bureau.
type PayAuth struct {
	PayAuthNo  string
	PsnNo      string
	Name       string // masked when it comes from the bureau over the network
	IDNo       string // masked likewise
	CityID     string // insuplcAdmdvs
	ValidUntil time.Time
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

// UploadRequest is a bill to upload (6201).
type UploadRequest struct {
	MedOrgOrd      string // the platform's order number: unique at the bureau per institution
	PayAuthNo      string // the payer's authorisation
	PsnNo          string // the insured person (checked against PayAuthNo)
	CityID         string
	OrgCodg        string // the hospital's code at the bureau
	HospLevel      int
	OrderType      string // RegPay, DiagPay
	RequestContent string // the itemised bill, docs/api/bureau.md (request_content)
	DefaultFee     int64  // insurance_fee + cash_fee: the single class-A item when there is no bill
}

// SettleRequest settles an uploaded order (6202).
type SettleRequest struct {
	PayOrdID  string
	PayToken  string
	PayAuthNo string
	OrgBizSer string // idempotency key
}

// OrderRef names an uploaded order (6301, 6401).
type OrderRef struct {
	PayOrdID string
	PayToken string
}

// Order states at the bureau (ordStas, national.md §3): 0–2 processing, 3–6 settled, 7–13
// cancelled, 14–16 failed.
const (
	OrdUploaded     = 1
	OrdRefundedPart = 6
	OrdSettled      = 4
	OrdRevoked      = 7
	OrdRefunded     = 9
	OrdFailed       = 14
)

// OrdSettledState reports whether ordStas means settled (3–6).
func OrdSettledState(s int) bool { return s >= 3 && s <= 6 }

// Settlement is the bureau's split of a bill (docs/api/bureau.md), all fen: the pre-settlement of an
// upload, or the settlement itself.
type Settlement struct {
	PayOrdID        string
	PayToken        string
	OrdStas         int
	SetlID          string // empty until settled
	SetlTime        time.Time
	MedfeeSumamt    int64
	HifpPay         int64 // 统筹基金
	AcctPay         int64 // 个人账户
	PsnCashPay      int64 // the payer's cash part
	ResponseContent string
}

// Insurance is the part the bureau pays.
func (s *Settlement) Insurance() int64 { return s.HifpPay + s.AcctPay }

// Refund types (refdType of 6203).
const (
	RefundAll  = "ALL"
	RefundCash = "CASH"
	RefundHI   = "HI"
)

// RefundRequest gives back parts of a settlement (6203).
type RefundRequest struct {
	PayOrdID  string
	AppRefdSn string // idempotency key
	PayAuthNo string
	RefdType  string // RefundAll, RefundCash, RefundHI
	HifpPay   int64  // fundRefdAmt
	AcctPay   int64  // psnAcctRefdAmt
	CashPay   int64  // cashRefdAmt
	Reason    string
}

// BureauRefund is a completed bureau refund.
type BureauRefund struct {
	RefundID  string
	AppRefdSn string
	HifpPay   int64
	AcctPay   int64
	CashPay   int64
}

// Statement entry kinds.
const (
	StmtSettle = "settle"
	StmtRefund = "refund"
	StmtRevoke = "revoke"
)

// StatementEntry is one line of the bureau's daily statement. Amounts are positive; Kind tells
// the direction (a settle takes them, a refund gives them back, a revocation moves nothing).
type StatementEntry struct {
	Time      time.Time
	Kind      string
	PayOrdID  string
	MedOrgOrd string
	SetlID    string
	AppRefdSn string // refunds
	RefundID  string // refunds
	PsnNo     string
	HifpPay   int64
	AcctPay   int64
	CashPay   int64
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

// Binding is a social-security card bound to a payer (an openid under an appid). PayAuthNo is
// the payer's long-lived authorisation at the bureau (scope bind), used to upload bills.
type Binding struct {
	AppID     string
	OpenID    string
	PsnNo     string
	Name      string
	IDNo      string
	CardNo    string
	CityID    string
	Insutype  string
	PayAuthNo string
}

// City is a coverage city of the bureau (6-digit code).
type City struct {
	Code string
	Name string
}
