// Package payment places orders and runs the payment saga: pre-settlement with the bureau when an
// order is placed, then on the payer's confirmation the bureau settlement and the cash charge,
// undoing the settled leg when the other fails. Every step records a recovery point before the
// outside call, and every transition is one transaction with its ledger transfers and its
// notification, so a crash at any line leaves an order that Recover finishes or undoes.
package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// Service is the order and payment service.
type Service struct {
	Store  *sqlstore.Store
	Bureau medpay.Bureau
	Cash   medpay.CashChannel
	// Gateway is the cash channel of the payer-driven saga (payer.go), and CashNotifyURL the
	// platform's address for its callbacks.
	Gateway       medpay.CashGateway
	CashNotifyURL string
	// Sandbox and SandboxPay let the sandbox confirmation (Confirm) act for the payer at the
	// simulated bureau's page and the simulated channel's cashier; nil outside the sandbox.
	// SandboxPay answers the payment when the channel is in process (its answer is the committed
	// payment, so no query follows), nil when it is across the network (the platform queries it
	// through the Gateway, whose answers are verified).
	Sandbox    medpay.BureauSandbox
	SandboxPay func(ctx context.Context, prepayID, pin string) (*medpay.CashPayment, error)
	Now        func() time.Time
	Logger     *slog.Logger
	// Notify is called after a transition that queued a notification (wakes the worker).
	Notify func()
	// Fault, when set, is called at named points of the saga: after each outside call returns and
	// before its outcome is recorded ("cash paid" at the channel's sandbox, "settled", "reversed",
	// "cash refunded", and the old synchronous channel's "charged"), and after a final state is
	// committed ("finished"). The crash tests kill the process there.
	Fault func(point string)
}

func (s *Service) fault(point string) {
	if s.Fault != nil {
		s.Fault(point)
	}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// PlaceRequest is a validated unifiedorder request.
type PlaceRequest struct {
	Merchant   *medpay.Merchant // the hospital or pharmacy
	ProviderID int64            // the service provider placing it, or 0
	// Fields holds every business field as received (all but nonce_str, sign, sign_type).
	Fields map[string]string

	OrderType      string
	HospOutTradeNo string
	TotalFee       int64
	CashFee        int64
	InsuranceFee   int64
	CashAddFee     int64
	CashReducedFee int64
	AllowFeeChange int
	PayType        int
	CityID         string
	UserCardNo     string
	UserName       string
	TimeExpire     time.Time // zero: the default
	// Micropay places the order of a scanned payment code (no notify_url): it starts at
	// StepScanned, reported USERPAYING until it is paid or closed.
	Micropay bool
}

// Fingerprint hashes the business fields: a repeated hosp_out_trade_no with the same fingerprint
// is a retry, with another one a mistake (err 501).
func Fingerprint(fields map[string]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, strings.ReplaceAll(fields[k], "\n", "\\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkAmounts applies the pay_type rules of docs/api/orders.md (unifiedorder).
func checkAmounts(r *PlaceRequest) error {
	switch r.PayType {
	case medpay.PayCash:
		if r.InsuranceFee != 0 || r.CashFee <= 0 {
			return medpay.Errorf(medpay.ErrAmountInconsistent, "pay_type 1 requires insurance_fee 0 and cash_fee > 0")
		}
	case medpay.PayInsurance:
		if r.CashFee != 0 || r.InsuranceFee <= 0 {
			return medpay.Errorf(medpay.ErrAmountInconsistent, "pay_type 2 requires cash_fee 0 and insurance_fee > 0")
		}
	case medpay.PayCashInsurance:
		if r.CashFee <= 0 {
			return medpay.Errorf(medpay.ErrCashFeeZero, "")
		}
		if r.InsuranceFee <= 0 {
			return medpay.Errorf(medpay.ErrAmountInconsistent, "pay_type 3 requires insurance_fee > 0")
		}
	}
	if !medpay.FeeInRange(r.TotalFee, r.CashFee, r.InsuranceFee, r.CashAddFee, r.CashReducedFee) {
		return medpay.Errorf(medpay.ErrAmountInconsistent, "an amount exceeds %d", medpay.MaxFee)
	}
	if legs, ok := medpay.AddFen(r.CashFee, r.InsuranceFee); !ok || legs > r.TotalFee {
		return medpay.Errorf(medpay.ErrAmountInconsistent, "cash_fee + insurance_fee exceeds total_fee")
	}
	if r.CashAddFee > r.CashFee {
		return medpay.Errorf(medpay.ErrAmountInconsistent, "cash_add_fee exceeds cash_fee")
	}
	return nil
}

// existing answers a repeated hosp_out_trade_no.
func existing(o *medpay.Order, fingerprint string, now time.Time) (*medpay.Order, error) {
	if o.Fingerprint != fingerprint {
		return nil, medpay.Errorf(medpay.ErrDuplicateTradeNo, "")
	}
	switch {
	case o.State == medpay.StateSuccess || o.State == medpay.StateRefund:
		return nil, medpay.Errorf(medpay.ErrOrderPaid, "")
	case o.State == medpay.StateClosed || o.State == medpay.StatePayError || o.State == medpay.StateSysRefunded ||
		o.State == medpay.StateSysRefunding || (o.State == medpay.StateNotPay && !now.Before(o.TimeExpire)):
		return nil, medpay.Errorf(medpay.ErrOrderClosed, "")
	}
	return o, nil
}

// Place creates an order, or returns the one placed earlier with the same business fields.
//
// A repeated hosp_out_trade_no is answered from the order holding it before any check of the new
// request. Placing an order that needs no pre-settlement is one write transaction (PlaceOrder),
// which also makes the call's replay-check claim; one that asks the bureau first reads for the
// earlier order and makes the claim before the outside call.
func (s *Service) Place(ctx context.Context, r *PlaceRequest) (*medpay.Order, error) {
	now := s.now()
	fp := Fingerprint(r.Fields)
	// earlier answers the request from the order already holding its number, if there is one.
	earlier := func(cause error) (*medpay.Order, error) {
		if o, err := s.Store.OrderByTradeNo(ctx, r.Merchant.ID, r.HospOutTradeNo); err == nil {
			return existing(o, fp, now)
		} else if !errors.Is(err, medpay.ErrNotFound) {
			return nil, err
		}
		return nil, cause
	}
	if err := checkAmounts(r); err != nil {
		return earlier(err)
	}
	if !r.Merchant.HasCity(r.CityID) {
		return earlier(medpay.Errorf(medpay.ErrNoPermission, "hospital is not enabled in city %s", r.CityID))
	}
	expire := now.Add(medpay.DefaultExpiry)
	if !r.TimeExpire.IsZero() {
		expire = r.TimeExpire
	}
	o := &medpay.Order{
		MedTransID:      NewMedTransID(now),
		MerchantID:      r.Merchant.ID,
		ProviderID:      r.ProviderID,
		OrderType:       r.OrderType,
		HospOutTradeNo:  r.HospOutTradeNo,
		TotalFee:        r.TotalFee,
		CashFee:         r.CashFee,
		InsuranceFee:    r.InsuranceFee,
		PayType:         r.PayType,
		CityID:          r.CityID,
		Fields:          r.Fields,
		Fingerprint:     fp,
		TimeExpire:      expire,
		State:           medpay.StateNotPay,
		CashStatus:      medpay.LegNotPay,
		InsuranceStatus: medpay.LegNotPay,
		StatusDesc:      "未支付",
		CreatedAt:       now,
	}
	if r.Micropay {
		o.Step, o.StatusDesc = StepScanned, "等待用户确认支付"
	}
	o.LoadFields()
	if r.PayType != medpay.PayCash && HasPayer(o) { // 扫码付: at the scan (Identify)
		// A retry must not ask the bureau again, nor may a replay ask it at all.
		if o, err := earlier(nil); o != nil || err != nil {
			return o, err
		}
		if err := s.Store.ClaimPending(ctx); err != nil {
			return nil, err
		}
		if err := s.preSettle(ctx, r, o); err != nil {
			return nil, err
		}
	}
	setLegs(o)
	prev, err := s.Store.PlaceOrder(ctx, o)
	if err != nil {
		return nil, err
	}
	if prev != nil { // placed earlier, or by a racing request with the same number
		return existing(prev, fp, now)
	}
	return o, nil
}

// setLegs sets the leg statuses of an unpaid order from its split.
func setLegs(o *medpay.Order) {
	o.CashStatus, o.InsuranceStatus = medpay.LegNotPay, medpay.LegNotPay
	if o.CashFee == 0 {
		o.CashStatus = medpay.LegNoPay
	}
	if o.InsuranceFee == 0 {
		o.InsuranceStatus = medpay.LegNoPay
	}
}

// preSettle asks the bureau for the split and applies the allow_fee_change rule (docs/api/orders.md (unifiedorder)).
func (s *Service) preSettle(ctx context.Context, r *PlaceRequest, o *medpay.Order) error {
	appid, openid := o.Payer()
	b, err := s.Store.BindingFor(ctx, appid, openid)
	if errors.Is(err, medpay.ErrNotFound) {
		return medpay.Errorf(medpay.ErrNoCard, "")
	} else if err != nil {
		return err
	}
	if (r.UserCardNo != "" && !strings.EqualFold(r.UserCardNo, b.IDNo)) || (r.UserName != "" && r.UserName != b.Name) {
		return medpay.Errorf(medpay.ErrIdentityMismatch, "")
	}
	if b.CityID != r.CityID {
		return medpay.Errorf(medpay.ErrIdentityMismatch, "the bound card belongs to city %s, not %s", b.CityID, r.CityID)
	}
	if b.PayAuthNo == "" {
		// A card bound before the bureau's authorisation was required: the payer binds again.
		return medpay.Errorf(medpay.ErrNoCard, "the card must be bound again to authorise payments")
	}
	o.PsnNo, o.CardNo, o.PayAuthNo = b.PsnNo, b.CardNo, b.PayAuthNo
	st, err := s.Bureau.Upload(ctx, medpay.UploadRequest{
		MedOrgOrd:      o.MedTransID,
		PayAuthNo:      o.PayAuthNo,
		PsnNo:          o.PsnNo,
		CityID:         o.CityID,
		OrgCodg:        o.OrgNo,
		HospLevel:      r.Merchant.Level,
		OrderType:      o.OrderType,
		RequestContent: o.RequestContent,
		DefaultFee:     o.RequestedInsurance() + o.RequestedCash(),
	})
	if err != nil {
		return bureauError(err)
	}
	o.PayOrdID, o.PayToken = st.PayOrdID, st.PayToken
	return applySplit(o, st)
}

// applySplit sets the order's figures from a bureau split, or fails with 507 when they differ
// from the hospital's expectation and allow_fee_change is 0.
func applySplit(o *medpay.Order, st *medpay.Settlement) error {
	if !medpay.FeeInRange(st.HifpPay, st.AcctPay, st.PsnCashPay, st.MedfeeSumamt) ||
		st.HifpPay+st.AcctPay+st.PsnCashPay != st.MedfeeSumamt {
		return fmt.Errorf("bureau split does not add up: %+v", st)
	}
	insurance := st.Insurance()
	cash := st.PsnCashPay + o.CashAddFee - o.CashReducedFee
	if cash < 0 {
		cash = 0
	}
	if insurance != o.RequestedInsurance() || cash != o.RequestedCash() {
		if o.AllowFeeChange == 0 {
			return medpay.Errorf(medpay.ErrFeeChanged, "bureau split: insurance_fee %d, cash_fee %d; expected %d, %d",
				insurance, cash, o.RequestedInsurance(), o.RequestedCash())
		}
	}
	if cash+insurance > o.TotalFee+o.CashAddFee {
		return medpay.Errorf(medpay.ErrAmountInconsistent, "bureau split %d exceeds total_fee %d", cash+insurance, o.TotalFee)
	}
	if insurance == 0 {
		return medpay.Errorf(medpay.ErrBureauRejected, "the bureau pays nothing of this bill")
	}
	o.InsuranceFee, o.CashFee, o.HifpPay, o.AcctPay = insurance, cash, st.HifpPay, st.AcctPay
	o.ResponseContent = st.ResponseContent
	if cash > 0 {
		o.PayType = medpay.PayCashInsurance
	} else {
		o.PayType = medpay.PayInsurance
	}
	return nil
}

// bureauError turns a bureau failure at pre-settlement into the API's answer.
func bureauError(err error) error {
	var e *medpay.Error
	if errors.As(err, &e) {
		return e
	}
	return fmt.Errorf("bureau pre-settlement: %w", err) // 599: the hospital retries
}

// Close closes a NOTPAY order (docs/api/orders.md (closeorder)).
func (s *Service) Close(ctx context.Context, o *medpay.Order) (*medpay.Order, error) {
	for conflicts := 0; ; conflicts++ {
		if conflicts > MaxConflicts {
			return nil, errTooManyConflicts
		}
		switch o.State {
		case medpay.StateClosed:
			return o, nil
		case medpay.StateNotPay:
		case medpay.StateUserPaying:
			return nil, medpay.Errorf(medpay.ErrOrderPaying, "")
		case medpay.StateSuccess, medpay.StateRefund:
			return nil, medpay.Errorf(medpay.ErrOrderPaid, "")
		default:
			return nil, medpay.Errorf(medpay.ErrOrderClosed, "order is %s", o.State)
		}
		closed := *o
		closeOrder(&closed, "已关闭")
		err := s.Store.UpdateOrder(ctx, &closed, sqlstore.OrderChange{})
		if err == nil {
			s.revokeUpload(ctx, &closed)
			return &closed, nil
		}
		if !errors.Is(err, medpay.ErrConflict) {
			return nil, err
		}
		if o, err = s.Store.OrderByID(ctx, o.MedTransID); err != nil {
			return nil, err
		}
	}
}

func closeOrder(o *medpay.Order, desc string) {
	o.State, o.StatusDesc, o.Step = medpay.StateClosed, desc, medpay.StepDone
	if o.CashStatus != medpay.LegNoPay {
		o.CashStatus = medpay.LegClosed
	}
	if o.InsuranceStatus != medpay.LegNoPay {
		o.InsuranceStatus = medpay.LegClosed
	}
}

// Refresh returns o with an expired NOTPAY order closed (orders expire lazily on read and in
// the periodic sweep).
func (s *Service) Refresh(ctx context.Context, o *medpay.Order) (*medpay.Order, error) {
	if o.State != medpay.StateNotPay || s.now().Before(o.TimeExpire) {
		return o, nil
	}
	// An open API call acts outside the database only once its replay check is made.
	if err := s.Store.ClaimPending(ctx); err != nil {
		return nil, err
	}
	// A cash prepay is closed at the channel first; a payer who paid in time is not turned away.
	if p, err := s.closeCash(ctx, o); err != nil {
		return nil, err
	} else if p != nil {
		return s.cashOutcome(ctx, o, p)
	}
	closed := *o
	closeOrder(&closed, "订单已过期")
	err := s.Store.UpdateOrder(ctx, &closed, sqlstore.OrderChange{})
	if errors.Is(err, medpay.ErrConflict) {
		return s.Store.OrderByID(ctx, o.MedTransID)
	}
	if err != nil {
		return nil, err
	}
	s.revokeUpload(ctx, &closed)
	return &closed, nil
}

// revokeUpload tells the bureau that a closed order's upload will not be settled (6401). Only
// good manners: nothing was settled, and a failure is logged, not retried.
func (s *Service) revokeUpload(ctx context.Context, o *medpay.Order) {
	if o.PayOrdID == "" {
		return
	}
	if err := s.Bureau.Revoke(ctx, medpay.OrderRef{PayOrdID: o.PayOrdID, PayToken: o.PayToken}); err != nil {
		s.log().Warn("bureau revoke of a closed order", "med_trans_id", o.MedTransID, "err", err)
	}
}

// ExpireOnce closes up to limit expired NOTPAY orders.
func (s *Service) ExpireOnce(ctx context.Context, limit int) (int, error) {
	orders, err := s.Store.OrdersExpired(ctx, s.now(), limit)
	if err != nil {
		return 0, err
	}
	for _, o := range orders {
		if _, err := s.Refresh(ctx, o); err != nil {
			return 0, err
		}
	}
	return len(orders), nil
}
