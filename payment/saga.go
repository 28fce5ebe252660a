package payment

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// PINError tells the payer how a PIN attempt failed.
type PINError struct {
	Remaining    int       // attempts left before the block
	BlockedUntil time.Time // set when the payer is blocked
}

func (e *PINError) Error() string {
	if !e.BlockedUntil.IsZero() {
		return "PIN blocked until " + e.BlockedUntil.Format(time.RFC3339)
	}
	return fmt.Sprintf("wrong PIN, %d attempts left", e.Remaining)
}

// SagaTimeout bounds a saga run detached from the request that started it.
const SagaTimeout = 2 * time.Minute

// MaxConflicts caps how often a saga reloads a row another process changed before it gives up
// and leaves the work to recovery.
const MaxConflicts = 20

// detached keeps ctx's values but not its cancellation, under a deadline of its own: a payer
// closing the page, or a hospital's client timing out, must not abandon a saga between two
// outside calls, leaving the order to the recovery loop.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), SagaTimeout)
}

// errTooManyConflicts ends a saga run that kept losing its row to other processes.
var errTooManyConflicts = errors.New("saga: the row kept changing under this process; left to recovery")

// PayerKey names the payer for the cash channel and the PIN lockout.
func PayerKey(o *medpay.Order) string { return medpay.PayerID(o.Payer()) }

// Confirm pays an order in one call for tests and the sandbox (POST /sandbox/orders/{id}/confirm
// {"pin"}), by driving the payer-driven saga's steps (payer.go): the PIN is checked the way the
// bureau's authorisation page checks it (the sandbox person's PIN) and the insurance part
// authorised through the sandbox (a); the cash part is prepaid and paid from the payer's wallet
// through the channel's sandbox, which checks the wallet PIN the way its cashier does (b); the
// platform then records the payment (answered by the channel in process, else learnt by query)
// and settles (c). Attempts are counted per payer and order before the PIN is checked. An order
// whose outcome is still unknown stays USERPAYING and Recover finishes it.
func (s *Service) Confirm(ctx context.Context, medTransID, pin string) (*medpay.Order, error) {
	// The steps outlive the request: a closed page must not leave them half done.
	ctx, cancel := detached(ctx)
	defer cancel()
	o, err := s.payable(ctx, medTransID)
	if err != nil || o.State != medpay.StateNotPay {
		return o, err // already paid: the payer sees the result again
	}
	if !HasPayer(o) {
		return o, ErrNoPayer // 扫码付: Identify first
	}
	if s.Gateway == nil || s.SandboxPay == nil || (o.InsuranceFee > 0 && s.Sandbox == nil) {
		return nil, errors.New("payment: the sandbox confirmation needs the sandbox bureau and cash channel")
	}
	payer := PayerKey(o)
	a := &pinAttempt{s: s, payer: payer, medTransID: o.MedTransID, end: o.TimeExpire}
	wrongPIN := func() (*medpay.Order, error) {
		if !a.BlockedUntil.IsZero() {
			return o, &PINError{BlockedUntil: a.BlockedUntil}
		}
		return o, &PINError{Remaining: a.Remaining}
	}
	if o.InsuranceFee > 0 && !authorised(o) {
		if err := a.count(ctx); err != nil {
			return o, err
		}
		person, err := s.sandboxPerson(ctx, o.PsnNo)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare([]byte(pin), []byte(person.PIN)) != 1 {
			return wrongPIN()
		}
		auth, err := s.Sandbox.SandboxPayAuth(ctx, person.IDNo, medpay.ScopePay)
		if err != nil {
			return nil, err
		}
		if o, err = s.authorizedAs(ctx, o, auth); err != nil || o.State != medpay.StateNotPay {
			if err == nil {
				err = s.Store.PINSucceeded(ctx, payer, o.MedTransID)
			}
			return o, err
		}
	}
	if o.CashFee == 0 {
		if err := a.count(ctx); err != nil {
			return o, err
		}
		if err := s.Store.PINSucceeded(ctx, payer, o.MedTransID); err != nil {
			return nil, err
		}
		return o, nil
	}
	// The attempt is counted in the transaction that records the cash step, when this call
	// records it; otherwise alone, before the channel checks the PIN.
	var count func(*sql.Tx) error
	if !a.counted && o.Step != medpay.StepCashPay {
		count = a.inTx(ctx)
	} else if err := a.count(ctx); err != nil {
		return o, err
	}
	cur, p, counted, err := s.prepayCash(ctx, o, count)
	if errors.Is(err, errPINRefused) {
		return o, &PINError{BlockedUntil: a.BlockedUntil}
	}
	if err != nil || cur.State != medpay.StateNotPay {
		return cur, err
	}
	a.counted = a.counted || counted
	if err := a.count(ctx); err != nil { // when the step was recorded elsewhere meanwhile
		return cur, err
	}
	paid, err := s.SandboxPay(ctx, p.PrepayID, pin)
	if err == nil {
		s.fault("cash paid")
	}
	if errors.Is(err, medpay.ErrWrongPIN) {
		return wrongPIN()
	}
	// The channel took the PIN (a decline comes after it): the attempt was the payer's, and its
	// success clears the counts.
	answered, cleared := err == nil && paid != nil, false
	if answered {
		// The channel in process answered the committed payment: it is recorded with the
		// PIN's success in one transaction, without a query.
		o, cleared, err = s.recordCash(ctx, cur, paid, func(tx *sql.Tx) error {
			return s.Store.PINSucceededTx(ctx, tx, payer, cur.MedTransID)
		})
	}
	if !cleared {
		if serr := s.Store.PINSucceeded(ctx, payer, cur.MedTransID); serr != nil {
			return nil, serr
		}
	}
	if !answered {
		switch {
		case errors.Is(err, medpay.ErrDeclined):
			return cur, fmt.Errorf("现金支付失败: %w", err)
		case err != nil && !errors.Is(err, medpay.ErrOutcomeUnknown):
			return cur, err
		}
		// Paid, or unknown: the channel's query tells.
		o, err = s.SyncCash(ctx, cur.MedTransID)
	}
	if err != nil {
		return o, err
	}
	if o.State == medpay.StateUserPaying || o.State == medpay.StateSysRefunding {
		// The channel's callback carried the saga on in another request meanwhile: drive it to
		// the end here too (every step is idempotent, each change compare-and-swap), so that the
		// one-call confirmation answers the outcome.
		return s.advance(ctx, o)
	}
	return o, nil
}

// pinAttempt counts a PIN attempt before the PIN is checked (sqlstore.BeginPIN): alone (count), or
// in the transaction of the order's next step (inTx), which then rolls back when a block is in
// force (errPINRefused).
type pinAttempt struct {
	s                 *Service
	payer, medTransID string
	end               time.Time
	counted           bool
	sqlstore.PINAttempt
}

// errPINRefused rolls back a step whose transaction found a PIN block in force.
var errPINRefused = errors.New("payment: a PIN block is in force")

// count counts the attempt in a transaction of its own; a block in force is a *PINError.
func (a *pinAttempt) count(ctx context.Context) error {
	if a.counted {
		return nil
	}
	got, err := a.s.Store.BeginPIN(ctx, a.payer, a.medTransID, a.end, a.s.now())
	if err != nil {
		return err
	}
	a.PINAttempt = got
	if got.Refused {
		return &PINError{BlockedUntil: got.BlockedUntil}
	}
	a.counted = true
	return nil
}

// inTx counts the attempt inside the caller's transaction; the count holds if it commits.
func (a *pinAttempt) inTx(ctx context.Context) func(tx *sql.Tx) error {
	return func(tx *sql.Tx) error {
		got, err := a.s.Store.BeginPINTx(ctx, tx, a.payer, a.medTransID, a.end, a.s.now())
		if err != nil {
			return err
		}
		a.PINAttempt = got
		if got.Refused {
			return errPINRefused
		}
		return nil
	}
}

// sandboxPerson is the sandbox bureau's test person psnNo.
func (s *Service) sandboxPerson(ctx context.Context, psnNo string) (*medpay.SandboxPerson, error) {
	persons, err := s.Sandbox.SandboxPersons(ctx)
	if err != nil {
		return nil, err
	}
	for i := range persons {
		if persons[i].PsnNo == psnNo {
			return &persons[i], nil
		}
	}
	return nil, fmt.Errorf("payment: no sandbox person %s: %w", psnNo, medpay.ErrNotFound)
}

// payable reads an order for payment, expiring it if due. It returns the order with nil when it
// can be paid now (NOTPAY) or is paid already, and the reason otherwise.
func (s *Service) payable(ctx context.Context, medTransID string) (*medpay.Order, error) {
	o, err := s.Store.OrderByID(ctx, medTransID)
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, medpay.Errorf(medpay.ErrOrderNotFound, "")
	} else if err != nil {
		return nil, err
	}
	if o, err = s.Refresh(ctx, o); err != nil {
		return nil, err
	}
	return o, confirmable(o)
}

// start claims a NOTPAY order for payment and runs the saga: the one path of the payer's PIN
// confirmation (Confirm) and of a micropay within the no-PIN limit (PayNow).
func (s *Service) start(ctx context.Context, o *medpay.Order) (*medpay.Order, error) {
	// Claim the order: of two racing confirmations only one moves it to USERPAYING.
	paying := *o
	paying.State, paying.StatusDesc = medpay.StateUserPaying, "支付中"
	paying.Attempt++
	if paying.CashStatus != medpay.LegNoPay {
		paying.CashStatus = medpay.LegPaying
	}
	paying.Step = medpay.StepCharge
	if paying.InsuranceFee > 0 {
		paying.Step = medpay.StepSettle
	}
	return s.claimAndRun(ctx, &paying)
}

// claimAndRun records the order's move to paying (the claim: of two confirmations only one's update
// matches the stored version) and runs the saga from there, detached from the request. The
// loser gets the order as it stands and why it cannot be confirmed.
func (s *Service) claimAndRun(ctx context.Context, paying *medpay.Order) (*medpay.Order, error) {
	if err := s.Store.UpdateOrder(ctx, paying, sqlstore.OrderChange{}); errors.Is(err, medpay.ErrConflict) {
		cur, err := s.Store.OrderByID(ctx, paying.MedTransID)
		if err != nil {
			return nil, err
		}
		return cur, confirmable(cur)
	} else if err != nil {
		return nil, err
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	return s.advance(ctx, paying)
}

// confirmable says why an order cannot be confirmed now; a paid order is not an error.
func confirmable(o *medpay.Order) error {
	switch o.State {
	case medpay.StateNotPay, medpay.StateSuccess, medpay.StateRefund:
		return nil
	case medpay.StateUserPaying, medpay.StateSysRefunding:
		return medpay.Errorf(medpay.ErrOrderPaying, "")
	default:
		return medpay.Errorf(medpay.ErrOrderClosed, "order is %s", o.State)
	}
}

// advance runs the saga from the order's recovery point until it is done or an outside party's
// answer is needed later. A returned error leaves the order at a recovery point.
func (s *Service) advance(ctx context.Context, o *medpay.Order) (*medpay.Order, error) {
	for conflicts := 0; o.Step != medpay.StepDone && o.Step != medpay.StepNone; {
		var err error
		switch o.Step {
		case medpay.StepSettle:
			err = s.settle(ctx, o)
		case medpay.StepCharge:
			err = s.charge(ctx, o)
		case medpay.StepReverse:
			err = s.reverse(ctx, o)
		default:
			return o, fmt.Errorf("order %s: unknown step %q", o.MedTransID, o.Step)
		}
		if errors.Is(err, medpay.ErrConflict) {
			if conflicts++; conflicts > MaxConflicts {
				s.log().Warn("payment left to recovery", "med_trans_id", o.MedTransID, "step", o.Step, "err", errTooManyConflicts)
				return o, errTooManyConflicts
			}
			// Another process moved the order on; carry on from where it is now.
			cur, rerr := s.Store.OrderByID(ctx, o.MedTransID)
			if rerr != nil {
				return o, rerr
			}
			o = cur
			continue
		}
		if err != nil {
			s.log().Warn("payment step deferred to recovery", "med_trans_id", o.MedTransID, "step", o.Step, "err", err)
			return o, err
		}
	}
	return o, nil
}

func (s *Service) settle(ctx context.Context, o *medpay.Order) error {
	ref := medpay.OrderRef{PayOrdID: o.PayOrdID, PayToken: o.PayToken}
	st, err := s.Bureau.Settle(ctx, medpay.SettleRequest{PayOrdID: o.PayOrdID, PayToken: o.PayToken,
		PayAuthNo: o.PayAuthNo, OrgBizSer: o.SettleSerial()})
	s.fault("settled")
	var rejected *medpay.Error
	switch {
	case errors.As(err, &rejected) && o.CashStatus == medpay.LegSuccess:
		// The payer paid the cash already: revoke the upload and give the cash back.
		next := *o
		next.Step, next.StatusDesc = medpay.StepReverse, "医保结算失败: "+rejected.Message
		return s.save(ctx, o, &next, sqlstore.OrderChange{})
	case errors.As(err, &rejected):
		next := *o
		next.InsuranceStatus = medpay.LegClosed
		return s.finish(ctx, o, &next, medpay.StatePayError, "医保结算失败: "+rejected.Message, nil)
	case err != nil:
		// The answer was lost: ask what happened before deciding.
		st, err = s.Bureau.Query(ctx, ref)
		if err == nil && !medpay.OrdSettledState(st.OrdStas) {
			err = fmt.Errorf("bureau order %s in state %d", o.PayOrdID, st.OrdStas)
		}
		if err != nil {
			// Settled or not, nobody can tell (a settle may still be on its way): undo it, so that
			// nothing stays taken.
			s.log().Warn("settlement outcome unknown, reversing", "med_trans_id", o.MedTransID, "err", err)
			next := *o
			next.Step, next.StatusDesc = medpay.StepReverse, descReversingUnknown
			return s.save(ctx, o, &next, sqlstore.OrderChange{})
		}
	}
	next := *o
	if err := applySplit(&next, st); err != nil {
		// The entitlements changed since pre-settlement and the hospital did not accept that.
		next = *o
		next.Step, next.StatusDesc = medpay.StepReverse, "医保结算金额与下单时不符: "+medpay.ErrorMessage(err)
		return s.save(ctx, o, &next, sqlstore.OrderChange{})
	}
	if o.CashStatus == medpay.LegSuccess && next.CashFee != o.CashFee {
		// The payer paid another cash part than the settlement leaves: undo both.
		next = *o
		next.Step, next.StatusDesc = medpay.StepReverse, "医保结算金额与已付现金不符"
		return s.save(ctx, o, &next, sqlstore.OrderChange{})
	}
	next.InsuranceStatus = medpay.LegPayed
	next.InsuranceOrderID = st.SetlID
	if o.CashStatus == medpay.LegSuccess {
		// The payer-driven saga: the cash was paid before the settlement.
		return s.finish(ctx, o, &next, medpay.StateSuccess, "支付成功", settleTransfers(&next))
	}
	if next.CashFee == 0 {
		next.CashStatus = medpay.LegNoPay
	}
	transfers := settleTransfers(&next)
	if next.CashFee > 0 {
		next.Step = medpay.StepCharge
		return s.save(ctx, o, &next, sqlstore.OrderChange{Transfers: transfers})
	}
	return s.finish(ctx, o, &next, medpay.StateSuccess, "支付成功", transfers)
}

func settleTransfers(o *medpay.Order) []medpay.Transfer {
	var ts []medpay.Transfer
	if o.HifpPay > 0 {
		ts = append(ts, medpay.Transfer{From: medpay.BureauFundAccount(o.CityID), To: medpay.HospitalAccount(hospitalMchID(o)), Amount: o.HifpPay})
	}
	if o.AcctPay > 0 {
		ts = append(ts, medpay.Transfer{From: medpay.PersonalAccount(o.PsnNo), To: medpay.HospitalAccount(hospitalMchID(o)), Amount: o.AcctPay})
	}
	return ts
}

// hospitalMchID is the merchant id of the hospital (sub_mch_id in provider mode).
func hospitalMchID(o *medpay.Order) string {
	if o.SubMchID != "" {
		return o.SubMchID
	}
	return o.MchID
}

func reversed(ts []medpay.Transfer) []medpay.Transfer {
	out := make([]medpay.Transfer, len(ts))
	for i, t := range ts {
		out[i] = t.Reverse()
	}
	return out
}

func (s *Service) charge(ctx context.Context, o *medpay.Order) error {
	payer := PayerKey(o)
	serial := o.ChargeSerial()
	rc, err := s.Cash.Charge(ctx, serial, payer, o.CashFee)
	s.fault("charged")
	if errors.Is(err, medpay.ErrDeclined) {
		next := *o
		next.CashStatus = medpay.LegPayError
		if o.InsuranceStatus == medpay.LegPayed {
			// One leg succeeded and the other failed: undo the settled one.
			next.State, next.Step, next.StatusDesc = medpay.StateSysRefunding, medpay.StepReverse, "现金支付失败,医保部分退回中"
			return s.save(ctx, o, &next, sqlstore.OrderChange{})
		}
		return s.finish(ctx, o, &next, medpay.StatePayError, "现金支付失败", nil)
	}
	if err != nil {
		if rc, err = s.Cash.QueryCharge(ctx, serial); err != nil {
			// Not charged, or unknown: the charge is idempotent on its serial, so recovery retries it.
			return fmt.Errorf("cash charge %s: %w", serial, err)
		}
	}
	next := *o
	next.CashStatus, next.CashOrderID = medpay.LegSuccess, rc.ID
	t := medpay.Transfer{From: medpay.PayerWalletAccount(payer), To: medpay.HospitalAccount(hospitalMchID(o)), Amount: o.CashFee}
	return s.finish(ctx, o, &next, medpay.StateSuccess, "支付成功", []medpay.Transfer{t})
}

// descReversingUnknown is the status of an order whose settlement's outcome is unknown while it
// is being reversed.
const descReversingUnknown = "医保结算结果未知,正在冲正"

func (s *Service) reverse(ctx context.Context, o *medpay.Order) error {
	if err := s.undoSettlement(ctx, o); err != nil {
		return err
	}
	s.fault("reversed")
	next := *o
	if o.CashStatus == medpay.LegSuccess {
		// The payer-driven saga: the cash paid before the settlement goes back, then nothing is kept.
		if err := s.giveCashBack(ctx, o); err != nil {
			return err
		}
		s.fault("cash refunded")
		next.CashStatus, next.InsuranceStatus = medpay.LegRefund, medpay.LegClosed
		if o.InsuranceStatus == medpay.LegPayed {
			next.InsuranceStatus = medpay.LegRefund
		}
		cash := medpay.Transfer{From: medpay.PayerWalletAccount(PayerKey(o)), To: medpay.HospitalAccount(hospitalMchID(o)), Amount: o.CashFee}
		ts := []medpay.Transfer{cash.Reverse()}
		if o.InsuranceStatus == medpay.LegPayed {
			ts = append(ts, reversed(settleTransfers(o))...)
		}
		desc := o.StatusDesc
		if desc == descReversingUnknown {
			desc = "医保结算超时,已冲正"
		}
		return s.finish(ctx, o, &next, medpay.StatePayError, desc+",现金已退回", ts)
	}
	if o.InsuranceStatus == medpay.LegPayed {
		next.InsuranceStatus = medpay.LegRefund
		return s.finish(ctx, o, &next, medpay.StateSysRefunded, "现金支付失败,医保部分已退回", reversed(settleTransfers(o)))
	}
	next.InsuranceStatus = medpay.LegClosed
	if next.CashStatus != medpay.LegNoPay {
		next.CashStatus = medpay.LegClosed
	}
	// The reason for reversing was recorded when the order moved to the reverse step.
	desc := o.StatusDesc
	if desc == descReversingUnknown {
		desc = "医保结算超时,已冲正,未扣款"
	}
	return s.finish(ctx, o, &next, medpay.StatePayError, desc, nil)
}

// undoSettlement makes sure the bureau keeps nothing of the order's settlement (冲正): an upload
// that was not settled is revoked (6401), which also refuses a settle still on its way; a
// settlement is refunded (6203 HI, idempotent on ReverseSerial) of what the bureau settled.
func (s *Service) undoSettlement(ctx context.Context, o *medpay.Order) error {
	ref := medpay.OrderRef{PayOrdID: o.PayOrdID, PayToken: o.PayToken}
	hifp, acct := o.HifpPay, o.AcctPay
	if o.InsuranceStatus != medpay.LegPayed {
		err := s.Bureau.Revoke(ctx, ref)
		var refused *medpay.Error
		if !errors.As(err, &refused) {
			if err != nil {
				return fmt.Errorf("bureau revoke %s: %w", o.PayOrdID, err)
			}
			return nil
		}
		// Refused: settled after all (or gone); the bureau's figures decide.
		st, qerr := s.Bureau.Query(ctx, ref)
		if qerr != nil {
			return fmt.Errorf("bureau revoke %s refused (%v), query: %w", o.PayOrdID, err, qerr)
		}
		switch {
		case st.OrdStas == medpay.OrdRevoked:
			return nil
		case !medpay.OrdSettledState(st.OrdStas) && st.OrdStas != medpay.OrdRefunded:
			return fmt.Errorf("bureau revoke %s: %w", o.PayOrdID, err)
		}
		hifp, acct = st.HifpPay, st.AcctPay
	}
	if hifp+acct == 0 {
		return nil
	}
	req := medpay.RefundRequest{PayOrdID: o.PayOrdID, AppRefdSn: o.ReverseSerial(), PayAuthNo: o.PayAuthNo,
		RefdType: medpay.RefundHI, HifpPay: hifp, AcctPay: acct, Reason: "冲正"}
	if _, err := s.Bureau.Refund(ctx, req); err != nil {
		return fmt.Errorf("bureau refund %s to undo the settlement: %w", req.AppRefdSn, err)
	}
	return nil
}

// finish moves the order to a final state with its ledger transfers and its notification, in one
// transaction.
func (s *Service) finish(ctx context.Context, prev, next *medpay.Order, state medpay.TradeState, desc string, ts []medpay.Transfer) error {
	return s.finishWith(ctx, prev, next, state, desc, ts, nil)
}

// finishWith is finish with also, when set, run in the same transaction.
func (s *Service) finishWith(ctx context.Context, prev, next *medpay.Order, state medpay.TradeState, desc string, ts []medpay.Transfer,
	also func(*sql.Tx) error) error {
	now := s.now()
	next.State, next.StatusDesc, next.Step = state, desc, medpay.StepDone
	if state == medpay.StateSuccess {
		next.TimeEnd = now
	}
	ch := sqlstore.OrderChange{Transfers: ts, Also: also}
	// An order without notify_url (micropay: the hospital has the answer synchronously and polls
	// queryorder) queues no notification.
	queued := next.NotifyURL != ""
	if queued {
		n, err := s.payNotification(ctx, next)
		if err != nil {
			return err
		}
		ch.Also = func(tx *sql.Tx) error {
			if also != nil {
				if err := also(tx); err != nil {
					return err
				}
			}
			return notify.Enqueue(ctx, tx, n, now)
		}
	}
	if err := s.save(ctx, prev, next, ch); err != nil {
		return err
	}
	s.fault("finished")
	if queued && s.Notify != nil {
		s.Notify()
	}
	return nil
}

// save writes next (a changed copy of o) with what the change causes, then makes it o.
func (s *Service) save(ctx context.Context, o, next *medpay.Order, ch sqlstore.OrderChange) error {
	if err := s.Store.UpdateOrder(ctx, next, ch); err != nil {
		return err
	}
	*o = *next
	return nil
}

// payNotification builds the signed PAY notification of an order in its final state.
func (s *Service) payNotification(ctx context.Context, o *medpay.Order) (*notify.Notification, error) {
	return s.notification(ctx, o, "PAY", fmt.Sprintf("%s-%s", o.MedTransID, o.State), 0,
		func(m *wire.Message) { SetOrderFields(m, o) })
}

// notification builds a signed notification of kind (PAY, REFUND) about order o, its body the
// envelope, notify_type, notify_id and the fields fill writes. It is signed with the key of the
// merchant named by mch_id: the provider's in provider mode.
func (s *Service) notification(ctx context.Context, o *medpay.Order, kind, id string, refundID int64, fill func(m *wire.Message)) (*notify.Notification, error) {
	signer, err := s.Store.MerchantByMchID(ctx, o.MchID)
	if err != nil {
		return nil, fmt.Errorf("notification signer %s: %w", o.MchID, err)
	}
	m := wire.NewMessage()
	SetEnvelope(m, o.AppID, o.MchID, o.SubAppID, o.SubMchID)
	m.Set("notify_type", kind)
	m.Set("notify_id", id)
	fill(m)
	if err := wire.SignInPlace(m, signer.APIKey); err != nil {
		return nil, err
	}
	return &notify.Notification{NotifyID: id, Kind: kind, MerchantID: o.MerchantID, OrderID: o.ID, RefundID: refundID,
		URL: o.NotifyURL, Body: m.Bytes()}, nil
}

// RecoverOnce finishes or undoes up to limit orders left mid-saga whose last change is older
// than before (use a time in the future at start-up to take them all).
func (s *Service) RecoverOnce(ctx context.Context, before time.Time, limit int) (int, error) {
	orders, err := s.Store.OrdersToRecover(ctx, before, limit)
	if err != nil {
		return 0, err
	}
	// Orders at the cashier: the payer may have paid with the channel's callback lost.
	waiting, err := s.Store.OrdersAwaitingCash(ctx, before, limit)
	if err != nil {
		return 0, err
	}
	for _, o := range waiting {
		if _, err := s.SyncCash(ctx, o.MedTransID); err != nil {
			s.log().Warn("cash query in recovery", "med_trans_id", o.MedTransID, "err", err)
		}
	}
	done := 0
	for _, o := range orders {
		if _, err := s.advance(ctx, o); err == nil {
			done++
		}
	}
	return done, nil
}
