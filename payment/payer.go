package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// The payer-driven saga (issue 10), the way 医保 2.0 runs a mixed payment: on the pay page the
// payer (a) authorises the insurance part at the bureau, whose page also proves the payer is the
// card holder (AuthorizePay); (b) pays the cash part in the cash channel's own cashier, the
// platform placing the prepay (PrepayCash) and learning the outcome by the channel's callback
// (CashCallback) or by query (SyncCash); then (c) the platform settles the insurance part. When
// (c) fails or stays unknown after query, the cash is refunded (CashGateway.Refund) and the order
// ends PAYERROR with nothing kept. No cash part: (b) is skipped; no insurance part: (a) and (c).

// ErrNoGateway is returned by the payer-driven steps of a Service without a cash gateway.
var ErrNoGateway = errors.New("payment: no cash gateway")

// AuthorizePay records the payer's authorisation of the insurance part (a): authCode is what the
// bureau's authorisation page (scope pay) sent the payer back with. The authorised person must be
// the order's insured person. An order without a cash part is settled at once.
func (s *Service) AuthorizePay(ctx context.Context, medTransID, authCode string) (*medpay.Order, error) {
	o, err := s.payable(ctx, medTransID)
	if err != nil || o.State != medpay.StateNotPay {
		return o, err
	}
	if o.InsuranceFee == 0 || o.PsnNo == "" {
		return o, medpay.Errorf(medpay.ErrAmountInconsistent, "the order has no insurance part to authorise")
	}
	if o.Step == medpay.StepCashPay {
		return o, nil // authorised already, the cash prepay is placed
	}
	auth, err := s.Bureau.Authorize(ctx, authCode)
	if err != nil {
		return nil, err
	}
	return s.authorizedAs(ctx, o, auth)
}

// authorizedAs records auth as the payer's authorisation of o's insurance part.
func (s *Service) authorizedAs(ctx context.Context, o *medpay.Order, auth *medpay.PayAuth) (*medpay.Order, error) {
	medTransID := o.MedTransID
	if auth.PsnNo != o.PsnNo {
		return o, medpay.Errorf(medpay.ErrIdentityMismatch, "the authorisation is not the insured person's")
	}
	next := *o
	next.PayAuthNo, next.Step = auth.PayAuthNo, medpay.StepAuthorized
	if err := s.Store.UpdateOrder(ctx, &next, sqlstore.OrderChange{}); errors.Is(err, medpay.ErrConflict) {
		cur, err := s.Store.OrderByID(ctx, medTransID)
		if err != nil {
			return nil, err
		}
		return cur, confirmable(cur)
	} else if err != nil {
		return nil, err
	}
	if next.CashFee == 0 {
		return s.claim(ctx, &next)
	}
	return &next, nil
}

// authorised reports whether the order's insurance part, if any, has been authorised by the payer.
func authorised(o *medpay.Order) bool {
	return o.InsuranceFee == 0 || o.Step == medpay.StepAuthorized || o.Step == medpay.StepCashPay
}

// PrepayCash places the order's cash part at the channel (b) and returns the prepay the payer's
// page hands to the cashier. The recovery point (StepCashPay) is recorded before the call: from
// then on expiry closes the prepay at the channel before it closes the order. The prepay is
// idempotent on the order's CashTradeNo, so the page can ask again.
func (s *Service) PrepayCash(ctx context.Context, medTransID string) (*medpay.Order, *medpay.CashPrepay, error) {
	if s.Gateway == nil {
		return nil, nil, ErrNoGateway
	}
	o, err := s.payable(ctx, medTransID)
	if err != nil || o.State != medpay.StateNotPay {
		return o, nil, err
	}
	o, p, _, err := s.prepayCash(ctx, o, nil)
	return o, p, err
}

// prepayCash is PrepayCash of o, just read by payable. also, when set, runs in the transaction
// that records the cash step; stepped reports whether this call recorded it (the order was not at
// the step yet), so that also committed.
func (s *Service) prepayCash(ctx context.Context, o *medpay.Order, also func(*sql.Tx) error) (_ *medpay.Order, _ *medpay.CashPrepay, stepped bool, _ error) {
	medTransID := o.MedTransID
	if o.CashFee == 0 {
		return o, nil, false, medpay.Errorf(medpay.ErrAmountInconsistent, "the order has no cash part")
	}
	if !authorised(o) {
		return o, nil, false, medpay.Errorf(medpay.ErrNoPermission, "the insurance part must be authorised first")
	}
	for conflicts := 0; o.Step != medpay.StepCashPay; conflicts++ {
		next := *o
		next.Step = medpay.StepCashPay
		err := s.save(ctx, o, &next, sqlstore.OrderChange{Also: also})
		if err == nil {
			stepped = true
			break
		}
		if !errors.Is(err, medpay.ErrConflict) {
			return nil, nil, false, err
		}
		if conflicts >= MaxConflicts {
			return nil, nil, false, errTooManyConflicts
		}
		// Another request moved the order meanwhile (the payer's other tab, the expiry).
		if o, err = s.Store.OrderByID(ctx, medTransID); err != nil {
			return nil, nil, false, err
		}
		if o.State != medpay.StateNotPay {
			return o, nil, false, confirmable(o)
		}
	}
	appid, openid := o.Payer()
	p, err := s.Gateway.Prepay(ctx, medpay.CashPrepayRequest{OutTradeNo: o.CashTradeNo(), AppID: appid, OpenID: openid,
		Description: cashDescription(o), NotifyURL: s.CashNotifyURL, Amount: o.CashFee, Expire: o.TimeExpire})
	if err != nil {
		return o, nil, stepped, fmt.Errorf("cash prepay %s: %w", o.CashTradeNo(), err)
	}
	return o, p, stepped, nil
}

func cashDescription(o *medpay.Order) string {
	if o.Body != "" {
		return o.Body
	}
	if o.OrderType == medpay.OrderRegPay {
		return "挂号费"
	}
	return "门诊缴费"
}

// CashCallback verifies and handles a callback of the cash channel (its TRANSACTION.SUCCESS): the
// receiver answers 2XX when it returns nil. Events about other orders or types are acknowledged.
func (s *Service) CashCallback(ctx context.Context, header map[string][]string, body []byte) error {
	if s.Gateway == nil {
		return ErrNoGateway
	}
	ev, err := s.Gateway.ParseCallback(ctx, header, body)
	if err != nil {
		return err
	}
	if ev.Type != medpay.CashEventPaid || ev.Payment == nil {
		return nil // refunds are learnt by the refund's own answer and query
	}
	return s.CashPaid(ctx, ev.Payment)
}

// CashPaid carries the saga on for a payment the channel reports: a verified callback, or the
// in-process channel's report (cash.Local.OnPaid). It is idempotent; payments of orders this
// platform does not know are acknowledged.
func (s *Service) CashPaid(ctx context.Context, p *medpay.CashPayment) error {
	o, err := s.Store.OrderByID(ctx, p.OutTradeNo)
	if errors.Is(err, medpay.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	_, err = s.cashOutcome(ctx, o, p)
	return err
}

// SyncCash asks the channel about the order's cash part (the payer came back from the cashier, or
// recovery) and carries the saga on when it was paid.
func (s *Service) SyncCash(ctx context.Context, medTransID string) (*medpay.Order, error) {
	o, err := s.Store.OrderByID(ctx, medTransID)
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, medpay.Errorf(medpay.ErrOrderNotFound, "")
	} else if err != nil {
		return nil, err
	}
	if o.State != medpay.StateNotPay || o.Step != medpay.StepCashPay || s.Gateway == nil {
		return o, nil
	}
	p, err := s.Gateway.QueryPayment(ctx, o.CashTradeNo())
	if errors.Is(err, medpay.ErrNotFound) {
		return o, nil
	} else if err != nil {
		return o, fmt.Errorf("cash query %s: %w", o.CashTradeNo(), err)
	}
	return s.cashOutcome(ctx, o, p)
}

// cashOutcome moves an order whose cash the payer paid on to the settlement (c), or finishes an
// order without insurance part: one transaction with the cash leg's ledger transfer.
func (s *Service) cashOutcome(ctx context.Context, o *medpay.Order, p *medpay.CashPayment) (*medpay.Order, error) {
	o, _, err := s.recordCash(ctx, o, p, nil)
	return o, err
}

// recordCash is cashOutcome with also, when set, run in the transaction that records the
// payment; recorded reports whether this call recorded it, so that also committed.
func (s *Service) recordCash(ctx context.Context, o *medpay.Order, p *medpay.CashPayment, also func(*sql.Tx) error) (_ *medpay.Order, recorded bool, _ error) {
	if !p.Paid() {
		return o, false, nil
	}
	for conflicts := 0; o.State == medpay.StateNotPay && o.Step == medpay.StepCashPay; conflicts++ {
		if p.PayerAmount != 0 && p.PayerAmount != o.CashFee || p.Amount != o.CashFee {
			return o, false, fmt.Errorf("cash payment %s: %d fen paid, the order's cash part is %d", p.OutTradeNo, p.Amount, o.CashFee)
		}
		next := *o
		next.State, next.StatusDesc = medpay.StateUserPaying, "支付中"
		next.Attempt++
		next.CashStatus, next.CashOrderID = medpay.LegSuccess, p.TransactionID
		t := medpay.Transfer{From: medpay.PayerWalletAccount(PayerKey(o)), To: medpay.HospitalAccount(hospitalMchID(o)), Amount: o.CashFee}
		var err error
		if o.InsuranceFee == 0 {
			err = s.finishWith(ctx, o, &next, medpay.StateSuccess, "支付成功", []medpay.Transfer{t}, also)
			if err == nil {
				return o, true, nil
			}
		} else {
			next.Step = medpay.StepSettle
			if err = s.save(ctx, o, &next, sqlstore.OrderChange{Transfers: []medpay.Transfer{t}, Also: also}); err == nil {
				ctx, cancel := detached(ctx)
				defer cancel()
				o, err := s.advance(ctx, o)
				return o, true, err
			}
		}
		if !errors.Is(err, medpay.ErrConflict) {
			return o, false, err
		}
		if conflicts >= MaxConflicts {
			return o, false, errTooManyConflicts
		}
		if o, err = s.Store.OrderByID(ctx, o.MedTransID); err != nil {
			return nil, false, err
		}
	}
	return o, false, nil
}

// claim moves an authorised order without cash part to the settlement (c) and runs it.
func (s *Service) claim(ctx context.Context, o *medpay.Order) (*medpay.Order, error) {
	next := *o
	next.State, next.StatusDesc = medpay.StateUserPaying, "支付中"
	next.Attempt++
	next.Step = medpay.StepSettle
	return s.claimAndRun(ctx, &next)
}

// giveCashBack gives back the cash of an order whose insurance part could not be settled, once
// (idempotent on CashReverseNo). It returns nil once the channel has made the refund.
func (s *Service) giveCashBack(ctx context.Context, o *medpay.Order) error {
	if s.Gateway == nil {
		return ErrNoGateway
	}
	no := o.CashReverseNo()
	r, err := s.Gateway.Refund(ctx, medpay.CashRefundRequest{OutTradeNo: o.CashTradeNo(), OutRefundNo: no,
		Reason: "医保结算失败,退回现金", Amount: o.CashFee, Total: o.CashFee})
	if err != nil {
		if r, err = s.Gateway.QueryRefund(ctx, no); err != nil {
			return fmt.Errorf("cash refund %s: %w", no, err)
		}
	}
	if r.Status != medpay.CashRefundSuccess {
		return fmt.Errorf("cash refund %s: %s", no, r.Status)
	}
	return nil
}

// closeCash makes sure an unpaid order's cash prepay can no longer be paid, before the order is
// closed. It returns the payment when the payer paid after all.
func (s *Service) closeCash(ctx context.Context, o *medpay.Order) (*medpay.CashPayment, error) {
	if o.Step != medpay.StepCashPay || s.Gateway == nil {
		return nil, nil
	}
	if err := s.Gateway.Close(ctx, o.CashTradeNo()); err != nil && !errors.Is(err, medpay.ErrConflict) && !errors.Is(err, medpay.ErrNotFound) {
		return nil, fmt.Errorf("cash close %s: %w", o.CashTradeNo(), err)
	}
	p, err := s.Gateway.QueryPayment(ctx, o.CashTradeNo())
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("cash query %s: %w", o.CashTradeNo(), err)
	}
	if p.Paid() {
		return p, nil
	}
	if p.State != medpay.CashClosed && p.State != medpay.CashRevoked && p.State != medpay.CashPayError {
		return nil, fmt.Errorf("cash order %s is %s after close", o.CashTradeNo(), p.State)
	}
	return nil, nil
}
