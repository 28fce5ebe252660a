package medins

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// Reasons an order fails (med_ins_fail_reason).
const (
	reasonCashDeclined = "现金部分支付失败"
	reasonUnknown      = "医保结算结果未知,已退还现金部分"
	reasonExpired      = "订单已过期"
)

// errPayer is a refusal the payer can act on (wrong PIN, an order no longer payable).
type errPayer struct{ msg string }

func (e *errPayer) Error() string { return e.msg }

// pay runs an order's payment after the payer confirmed with pin: the cash part first, from the
// payer's wallet; then the insurance part, settled with the bureau (6202) as the hospital's
// channel; and when the bureau refuses or cannot tell even after a query (6301), the cash is
// refunded and the order ends MIX_PAY_FAIL with the bureau's reason. Each step is written
// before the next outside call; outside calls are idempotent on serials derived from the order.
func (h *Handler) pay(ctx context.Context, o *medpay.Order, pin string) error {
	if o.Generation != medpay.GenerationV3 {
		return medpay.ErrNotFound
	}
	if o.State != medpay.StateNotPay {
		return &errPayer{fmt.Sprintf("订单已%s", stateText(o))}
	}
	if !h.cfg.Now().Before(o.TimeExpire) {
		return &errPayer{"订单已过期"}
	}
	appid, openid := o.Payer()
	payer := medpay.PayerID(appid, openid)
	if err := h.cfg.Cash.VerifyPIN(ctx, payer, pin); err != nil {
		if errors.Is(err, medpay.ErrWrongPIN) {
			return &errPayer{"支付密码错误"}
		}
		return err
	}
	next := *o
	next.State, next.Step, next.Attempt = medpay.StateUserPaying, medpay.StepCharge, o.Attempt+1
	if err := h.save(ctx, o, &next, nil); errors.Is(err, medpay.ErrConflict) {
		return &errPayer{"订单正在支付"} // another confirmation won the race
	} else if err != nil {
		return err
	}
	return h.resume(ctx, o)
}

// resume carries an order on from the step it records: the cash charge, the settlement, or the
// reversal. Every outside call is idempotent on a serial of the attempt, so a step interrupted
// by a crash is simply run again (Recover).
func (h *Handler) resume(ctx context.Context, o *medpay.Order) error {
	hospital := medpay.HospitalAccount(hospitalMchID(o))
	appid, openid := o.Payer()
	payer := medpay.PayerID(appid, openid)
	if o.Step == medpay.StepCharge && o.CashFee > 0 {
		rc, err := h.cfg.Cash.Charge(ctx, o.ChargeSerial(), payer, o.CashFee)
		if errors.Is(err, medpay.ErrOutcomeUnknown) {
			rc, err = h.cfg.Cash.QueryCharge(ctx, o.ChargeSerial())
		}
		if errors.Is(err, medpay.ErrOutcomeUnknown) {
			return err // still unknown: left at the charge step for recovery
		}
		if err != nil {
			next := *o
			next.State, next.Step, next.CashStatus, next.StatusDesc = medpay.StatePayError, medpay.StepDone, medpay.LegPayError, reasonCashDeclined
			if o.InsuranceFee > 0 {
				next.InsuranceStatus = medpay.LegClosed
			}
			if serr := h.save(ctx, o, &next, nil); serr != nil {
				return serr
			}
			h.cfg.Logger.Info("v3: cash declined", "mix_trade_no", o.MedTransID, "err", err)
			return nil
		}
		next := *o
		next.CashStatus, next.CashOrderID, next.Step = medpay.LegSuccess, rc.ID, medpay.StepSettle
		if err := h.save(ctx, o, &next, []medpay.Transfer{{From: medpay.PayerWalletAccount(payer), To: hospital, Amount: o.CashFee}}); err != nil {
			return err
		}
	}
	if o.Step == medpay.StepReverse {
		return h.reverse(ctx, o, o.StatusDesc)
	}
	if o.InsuranceFee == 0 {
		return h.succeed(ctx, o, nil)
	}
	bu, err := h.cfg.Bureau(ctx, o.OrgNo)
	if err != nil {
		return err
	}
	st, err := bu.Settle(ctx, medpay.SettleRequest{PayOrdID: o.PayOrdID, PayAuthNo: o.PayAuthNo, OrgBizSer: o.SettleSerial()})
	var refused *medpay.Error
	switch {
	case errors.As(err, &refused):
		return h.reverse(ctx, o, refused.Message)
	case err != nil:
		// The bureau did not say: ask it (6301) before deciding.
		q, qerr := bu.Query(ctx, medpay.OrderRef{PayOrdID: o.PayOrdID})
		if qerr != nil || !medpay.OrdSettledState(q.OrdStas) {
			h.cfg.Logger.Warn("v3: settlement unknown, reversing", "mix_trade_no", o.MedTransID, "err", err, "query_err", qerr)
			return h.reverse(ctx, o, reasonUnknown)
		}
		st = q
	}
	next := *o
	next.InsuranceStatus, next.InsuranceOrderID = medpay.LegPayed, st.SetlID
	ts := []medpay.Transfer{}
	if o.HifpPay > 0 {
		ts = append(ts, medpay.Transfer{From: medpay.BureauFundAccount(o.CityID), To: hospital, Amount: o.HifpPay})
	}
	if o.AcctPay > 0 {
		ts = append(ts, medpay.Transfer{From: medpay.PersonalAccount(o.PayOrdID), To: hospital, Amount: o.AcctPay})
	}
	*o = next
	return h.succeed(ctx, o, ts)
}

// Recover resumes the 2.0 payments left mid-way (a crash, an unknown cash outcome) whose last
// change is older than before, and ends the unpaid orders past their expiry MIX_PAY_FAIL (the
// upload is the hospital's: it revokes it, not the platform). It returns how many it handled.
func (h *Handler) Recover(ctx context.Context, before time.Time, limit int) (int, error) {
	orders, err := h.cfg.Store.V3OrdersToRecover(ctx, before, h.cfg.Now(), limit)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range orders {
		if o.State == medpay.StateNotPay {
			next := *o
			next.State, next.Step, next.StatusDesc = medpay.StateClosed, medpay.StepDone, reasonExpired
			if o.CashFee > 0 {
				next.CashStatus = medpay.LegClosed
			}
			if o.InsuranceFee > 0 {
				next.InsuranceStatus = medpay.LegClosed
			}
			err = h.save(ctx, o, &next, nil)
		} else {
			err = h.resume(ctx, o)
		}
		if err != nil && !errors.Is(err, medpay.ErrConflict) {
			h.cfg.Logger.Error("v3: recover", "mix_trade_no", o.MedTransID, "step", o.Step, "err", err)
			continue
		}
		n++
	}
	return n, nil
}

// succeed ends the order MIX_PAY_SUCCESS with its last transfers and its callback.
func (h *Handler) succeed(ctx context.Context, o *medpay.Order, ts []medpay.Transfer) error {
	next := *o
	next.State, next.Step, next.StatusDesc, next.TimeEnd = medpay.StateSuccess, medpay.StepDone, "支付成功", h.cfg.Now()
	also, err := h.callback(ctx, &next)
	if err != nil {
		return err
	}
	if err := h.saveWith(ctx, o, &next, sqlstore.OrderChange{Transfers: ts, Also: also}); err != nil {
		return err
	}
	if also != nil {
		h.cfg.Notify()
	}
	return nil
}

// reverse refunds the cash part of an order whose insurance part could not be settled, and ends
// it MIX_PAY_FAIL with reason.
func (h *Handler) reverse(ctx context.Context, o *medpay.Order, reason string) error {
	next := *o
	next.Step, next.StatusDesc = medpay.StepReverse, reason
	if err := h.save(ctx, o, &next, nil); err != nil {
		return err
	}
	var ts []medpay.Transfer
	if o.CashStatus == medpay.LegSuccess {
		appid, openid := o.Payer()
		serial := fmt.Sprintf("%s-V%d", o.MedTransID, o.Attempt)
		_, err := h.cfg.Cash.Refund(ctx, serial, o.ChargeSerial(), o.CashFee)
		if errors.Is(err, medpay.ErrOutcomeUnknown) {
			_, err = h.cfg.Cash.QueryRefund(ctx, serial)
		}
		if err != nil {
			return fmt.Errorf("order %s: cash reversal: %w", o.MedTransID, err)
		}
		ts = append(ts, medpay.Transfer{From: medpay.HospitalAccount(hospitalMchID(o)), To: medpay.PayerWalletAccount(medpay.PayerID(appid, openid)), Amount: o.CashFee})
	}
	next = *o
	next.State, next.Step, next.InsuranceStatus = medpay.StatePayError, medpay.StepDone, medpay.LegPayError
	if o.CashStatus == medpay.LegSuccess {
		next.CashStatus = medpay.LegRefund
	}
	return h.save(ctx, o, &next, ts)
}

func (h *Handler) save(ctx context.Context, o, next *medpay.Order, ts []medpay.Transfer) error {
	return h.saveWith(ctx, o, next, sqlstore.OrderChange{Transfers: ts})
}

func (h *Handler) saveWith(ctx context.Context, o, next *medpay.Order, ch sqlstore.OrderChange) error {
	if err := h.cfg.Store.UpdateOrder(ctx, next, ch); err != nil {
		return err
	}
	*o = *next
	return nil
}

// hospitalMchID is the hospital's merchant number (sub_mch_id in provider mode).
func hospitalMchID(o *medpay.Order) string {
	if o.SubMchID != "" {
		return o.SubMchID
	}
	return o.MchID
}

func stateText(o *medpay.Order) string {
	switch o.State {
	case medpay.StateSuccess:
		return "支付"
	case medpay.StateRefund:
		return "退款"
	case medpay.StateUserPaying:
		return "在支付中"
	}
	return "关闭"
}
