package medpay

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// TradeState is med_trade_state (docs/api/orders.md (queryorder)).
type TradeState string

const (
	StateNotPay       TradeState = "NOTPAY"
	StateUserPaying   TradeState = "USERPAYING"
	StateSuccess      TradeState = "SUCCESS"
	StatePayError     TradeState = "PAYERROR"
	StateClosed       TradeState = "CLOSED"
	StateRefund       TradeState = "REFUND"
	StateSysRefunding TradeState = "SYS_REFUNDING"
	StateSysRefunded  TradeState = "SYS_REFUNDED"
)

// Final reports whether no further payment step can change the state (a refund still can).
func (s TradeState) Final() bool {
	switch s {
	case StateSuccess, StatePayError, StateClosed, StateRefund, StateSysRefunded:
		return true
	}
	return false
}

// Leg statuses (cash_trade_status, insurance_trade_status).
const (
	LegNoPay     = "NOPAY" // the order has no such part
	LegNotPay    = "NOTPAY"
	LegPaying    = "USERPAYING"
	LegSuccess   = "SUCCESS"
	LegPayed     = "PAYED" // insurance leg settled
	LegPayError  = "PAYERROR"
	LegClosed    = "CLOSED"
	LegRefund    = "REFUND"
	OrderRegPay  = "RegPay"
	OrderDiagPay = "DiagPay"
)

// Pay types.
const (
	PayCash          = 1
	PayInsurance     = 2
	PayCashInsurance = 3
)

// Step is a saga step: the recovery point recorded before each outside call, so that a
// restarted process knows what may have happened and resumes or undoes it. Code and queries use
// these values alone.
type Step string

// Saga steps.
const (
	StepNone    Step = ""        // nothing outside has been asked
	StepScanned Step = "scanned" // a micropay order no step has started: waiting for the payer
	// The payer-driven saga (issue 10): the payer authorised the insurance part at the bureau
	// (StepAuthorized), then the cash prepay may exist at the channel and the payer may pay it in
	// the channel's cashier (StepCashPay). Both keep the order NOTPAY: nothing was paid, and
	// expiry closes the prepay and revokes the upload.
	StepAuthorized Step = "authorized"
	StepCashPay    Step = "cashpay"
	StepSettle     Step = "settle"  // the bureau may have settled (6202 under SettleSerial)
	StepCharge     Step = "charge"  // insurance settled (or none); the cash channel may have charged
	StepReverse    Step = "reverse" // the upload must be revoked (6401) or the settlement refunded (6203 HI)
	StepDone       Step = "done"    // final
)

// RecoverySteps are the steps an interrupted saga is resumed from.
var RecoverySteps = []Step{StepSettle, StepCharge, StepReverse}

// DefaultExpiry is how long an unpaid order can be paid.
const DefaultExpiry = 2 * time.Hour

// Order is a registration (RegPay) or clinic (DiagPay) payment order.
type Order struct {
	ID         int64
	MedTransID string
	MerchantID int64 // the hospital or pharmacy
	ProviderID int64 // the service provider that placed it, 0 when independent
	AppID      string
	MchID      string
	SubAppID   string
	SubMchID   string
	OpenID     string
	SubOpenID  string

	OrderType      string
	HospOutTradeNo string
	HospitalName   string
	Body           string
	TotalFee       int64
	CashFee        int64 // current figures: after pre-settlement, final once paid
	InsuranceFee   int64
	CashAddFee     int64
	CashReducedFee int64
	HifpPay        int64 // 统筹基金 part of InsuranceFee
	AcctPay        int64 // 个人账户 part of InsuranceFee
	AllowFeeChange int
	PayType        int
	SpbillCreateIP string
	NotifyURL      string
	ReturnURL      string
	CityID         string
	SerialNo       string
	OrgNo          string
	BillNo         string
	Attach         string
	RequestContent string
	// Fields is every business field of the request as received, kept for the payer page and for
	// idempotency (Fingerprint is a hash of them).
	Fields      map[string]string
	Fingerprint string
	TimeExpire  time.Time

	State            TradeState
	CashStatus       string
	InsuranceStatus  string
	StatusDesc       string
	PsnNo            string // the insured person at pre-settlement
	CardNo           string
	InsuranceOrderID string // bureau settlement id
	CashOrderID      string // cash channel payment id
	ResponseContent  string
	// The order at the bureau (national.md 6201): PayOrdID and PayToken name the upload, PayAuthNo
	// is the payer's authorisation it was made under.
	PayOrdID  string
	PayToken  string
	PayAuthNo string
	Step      Step
	Attempt   int // confirmation attempt; serials of outside calls include it
	TimeEnd   time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64 // optimistic concurrency: bumped on every update
	// Generation is the API the order came through: GenerationXML (0 is taken as it) or
	// GenerationV3, whose orders the XML saga's recovery and expiry leave alone.
	Generation int
}

// Payer returns the openid that names the payer (sub_openid in provider mode).
func (o *Order) Payer() (appid, openid string) {
	if o.SubOpenID != "" {
		return o.SubAppID, o.SubOpenID
	}
	return o.AppID, o.OpenID
}

// SettleSerial is the idempotency serial of the bureau settlement for the current attempt.
func (o *Order) SettleSerial() string { return fmt.Sprintf("%s-S%d", o.MedTransID, o.Attempt) }

// ReverseSerial is the idempotency key (appRefdSn) of the 6203 refund that undoes a settlement
// of the current attempt.
func (o *Order) ReverseSerial() string { return fmt.Sprintf("%s-V%d", o.MedTransID, o.Attempt) }

// CashTradeNo is the out_trade_no of the order's cash part at the cash channel: one per order,
// so that a payer can never pay one order's cash twice.
func (o *Order) CashTradeNo() string { return o.MedTransID }

// CashReverseNo is the out_refund_no of the automatic refund of the cash of an order whose
// insurance part could not be settled.
func (o *Order) CashReverseNo() string { return o.MedTransID + "-X" }

// ChargeSerial is the idempotency serial of the cash charge for the current attempt.
func (o *Order) ChargeSerial() string { return fmt.Sprintf("%s-C%d", o.MedTransID, o.Attempt) }

// CheckSplit asserts the money invariant of an order: the legs never exceed the total, the
// insurance part is its two funds once the insured person is known (a 扫码付 order is placed
// before its payer scans it), and the figures are not negative.
func (o *Order) CheckSplit() error {
	legs, _ := AddFen(o.CashFee, o.InsuranceFee)
	ceiling, _ := AddFen(o.TotalFee, o.CashAddFee)
	funds, _ := AddFen(o.HifpPay, o.AcctPay)
	switch {
	case o.TotalFee <= 0 || !FeeInRange(o.TotalFee, o.CashFee, o.InsuranceFee, o.HifpPay, o.AcctPay, o.CashAddFee):
		return fmt.Errorf("order %s: amount out of range", o.MedTransID)
	case legs > ceiling:
		return fmt.Errorf("order %s: cash %d + insurance %d exceeds total %d", o.MedTransID, o.CashFee, o.InsuranceFee, o.TotalFee)
	case o.PayType != PayCash && o.PsnNo != "" && funds != o.InsuranceFee:
		return fmt.Errorf("order %s: hifp %d + acct %d != insurance %d", o.MedTransID, o.HifpPay, o.AcctPay, o.InsuranceFee)
	}
	return nil
}

// OrderStore keeps orders. Updates are compare-and-swap on Version: a store returns ErrConflict
// when the row changed since it was read, so two racing confirmations cannot both win.
type OrderStore interface {
	// CreateOrder inserts o, or returns ErrConflict when (merchant, hosp_out_trade_no) exists.
	CreateOrder(ctx context.Context, o *Order) error
	OrderByMedTransID(ctx context.Context, merchantID int64, medTransID string) (*Order, error)
	OrderByTradeNo(ctx context.Context, merchantID int64, tradeNo string) (*Order, error)
	// OrderByID finds an order by med_trans_id across merchants (payer pages, sandbox).
	OrderByID(ctx context.Context, medTransID string) (*Order, error)
}

// LoadFields sets the order's request-derived fields from Fields (the request as received).
func (o *Order) LoadFields() {
	f := o.Fields
	o.AppID, o.MchID, o.SubAppID, o.SubMchID = f["appid"], f["mch_id"], f["sub_appid"], f["sub_mch_id"]
	o.OpenID, o.SubOpenID = f["openid"], f["sub_openid"]
	o.HospitalName, o.Body = f["hospital_name"], f["body"]
	o.CashAddFee, _ = strconv.ParseInt(f["cash_add_fee"], 10, 64)
	o.CashReducedFee, _ = strconv.ParseInt(f["cash_reduced_fee"], 10, 64)
	o.AllowFeeChange, _ = strconv.Atoi(f["allow_fee_change"])
	o.SpbillCreateIP, o.NotifyURL, o.ReturnURL = f["spbill_create_ip"], f["notify_url"], f["return_url"]
	o.SerialNo, o.OrgNo, o.BillNo, o.Attach = f["serial_no"], f["org_no"], f["bill_no"], f["attach"]
	o.RequestContent = f["request_content"]
}

// RequestedCash is the cash_fee the hospital asked for (before pre-settlement).
func (o *Order) RequestedCash() int64 {
	v, _ := strconv.ParseInt(o.Fields["cash_fee"], 10, 64)
	return v
}

// RequestedInsurance is the insurance_fee the hospital asked for.
func (o *Order) RequestedInsurance() int64 {
	v, _ := strconv.ParseInt(o.Fields["insurance_fee"], 10, 64)
	return v
}

// PayerID names a payer across the platform — the cash wallet, the PIN lockout, the ledger's
// payer_wallet account: the openid under its appid.
func PayerID(appid, openid string) string { return appid + "/" + openid }
