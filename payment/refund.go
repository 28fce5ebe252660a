package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// RefundRequest is a validated refund request.
type RefundRequest struct {
	Order          *medpay.Order
	HospOutRefund  string
	PartRefundType string
	CashRefundFee  int64 // with CASH_ONLY; 0 means all remaining cash
	Fields         map[string]string
}

// Refund claims a refund of a paid order and runs it as far as it can go now. A repeated
// hosp_out_refund_no with the same fields resumes and answers the same refund; with other fields
// it is refused (516). A refund that cannot finish now answers 553 or 556 and stays PROCESSING,
// to be resumed by a retry with the same number or by RecoverRefunds.
func (s *Service) Refund(ctx context.Context, req *RefundRequest) (*medpay.Refund, error) {
	fp := Fingerprint(req.Fields)
	o := req.Order
	r, err := s.Store.RefundByNo(ctx, o.MerchantID, req.HospOutRefund)
	if errors.Is(err, medpay.ErrNotFound) {
		r, err = s.Store.CreateRefund(ctx, o.ID, func(o *medpay.Order, prior []*medpay.Refund) (*medpay.Refund, error) {
			return s.newRefund(o, prior, req, fp)
		})
		if errors.Is(err, medpay.ErrConflict) { // a racing request with the same number won
			r, err = s.Store.RefundByNo(ctx, o.MerchantID, req.HospOutRefund)
		}
	}
	if err != nil {
		return nil, err
	}
	if r.Fingerprint != fp {
		return nil, medpay.Errorf(medpay.ErrDuplicateRefundNo, "")
	}
	// A refund created here made the call's replay check in its transaction; one resumed makes it
	// now, before the saga calls anyone.
	if err := s.Store.ClaimPending(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	return s.advanceRefund(ctx, r)
}

// newRefund decides a refund's amounts from the order and its earlier refunds (docs/api/refunds.md (refund)).
func (s *Service) newRefund(o *medpay.Order, prior []*medpay.Refund, req *RefundRequest, fp string) (*medpay.Refund, error) {
	if o.State != medpay.StateSuccess && o.State != medpay.StateRefund {
		return nil, medpay.Errorf(medpay.ErrRefundExceeds, "order is %s: only a paid order can be refunded", o.State)
	}
	now := s.now()
	if now.Sub(o.TimeEnd) > medpay.RefundWindow {
		return nil, medpay.Errorf(medpay.ErrRefundExceeds, "refunds are accepted up to 365 days after payment")
	}
	var cashTaken int64
	insuranceTaken := false
	live := 0
	for _, p := range prior {
		if p.State == medpay.RefundFail {
			continue // nothing moved
		}
		live++
		cashTaken += p.CashRefundFee
		insuranceTaken = insuranceTaken || p.InsuranceRefundFee > 0
	}
	if live >= medpay.MaxRefundsPerOrder {
		return nil, medpay.Errorf(medpay.ErrRefundExceeds, "at most %d refunds per order", medpay.MaxRefundsPerOrder)
	}
	cashLeft := o.CashFee - cashTaken
	insuranceLeft := o.InsuranceFee
	if insuranceTaken {
		insuranceLeft = 0
	}
	r := &medpay.Refund{
		MedRefundID: NewRefundID(now), MerchantID: o.MerchantID, HospOutRefund: req.HospOutRefund,
		Fingerprint: fp, Fields: req.Fields, PartRefundType: req.PartRefundType,
		State: medpay.RefundProcessing, StatusDesc: "退款处理中",
	}
	switch req.PartRefundType {
	case medpay.PartAll:
		r.CashRefundFee, r.InsuranceRefundFee = cashLeft, insuranceLeft
	case medpay.PartCashOnly:
		r.CashRefundFee = cashLeft
		if req.CashRefundFee > 0 {
			if req.CashRefundFee > cashLeft {
				return nil, medpay.Errorf(medpay.ErrRefundExceeds, "cash_refund_fee %d exceeds the refundable cash %d", req.CashRefundFee, cashLeft)
			}
			r.CashRefundFee = req.CashRefundFee
		}
	case medpay.PartInsuranceOnly:
		if insuranceTaken {
			return nil, medpay.Errorf(medpay.ErrRefundExceeds, "the insurance part was already refunded")
		}
		r.InsuranceRefundFee = insuranceLeft
	}
	if r.CashRefundFee+r.InsuranceRefundFee == 0 {
		return nil, medpay.Errorf(medpay.ErrRefundExceeds, "nothing left to refund")
	}
	r.CashStatus, r.InsuranceStatus = medpay.RefundLegNone, medpay.RefundLegNone
	if r.CashRefundFee > 0 {
		r.CashStatus, r.Step = medpay.RefundLegProcessing, medpay.RefundStepCash
	}
	if r.InsuranceRefundFee > 0 {
		// The bureau leg first: it is the one that can be refused (whole and once).
		r.InsuranceStatus, r.Step = medpay.RefundLegProcessing, medpay.RefundStepBureau
	}
	return r, nil
}

// advanceRefund runs a refund's saga from its recovery point.
func (s *Service) advanceRefund(ctx context.Context, r *medpay.Refund) (*medpay.Refund, error) {
	for conflicts := 0; r.State == medpay.RefundProcessing; {
		order, err := s.Store.OrderByRowID(ctx, r.OrderID)
		if err != nil {
			return r, err
		}
		switch r.Step {
		case medpay.RefundStepBureau:
			err = s.refundBureau(ctx, order, r)
		case medpay.RefundStepCash:
			err = s.refundCash(ctx, order, r)
		default:
			return r, fmt.Errorf("refund %s: unknown step %q", r.MedRefundID, r.Step)
		}
		if errors.Is(err, medpay.ErrConflict) {
			if conflicts++; conflicts > MaxConflicts {
				return r, errTooManyConflicts
			}
			cur, rerr := s.Store.RefundByID(ctx, r.MedRefundID)
			if rerr != nil {
				return r, rerr
			}
			r = cur
			continue
		}
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// refundBureau gives the insured part back.
func (s *Service) refundBureau(ctx context.Context, o *medpay.Order, r *medpay.Refund) error {
	req := medpay.RefundRequest{PayOrdID: o.PayOrdID, AppRefdSn: r.BureauSerial(), PayAuthNo: o.PayAuthNo,
		RefdType: medpay.RefundHI, HifpPay: o.HifpPay, AcctPay: o.AcctPay}
	br, err := s.Bureau.Refund(ctx, req)
	s.fault("bureau_refunded")
	var rejected *medpay.Error
	switch {
	case errors.As(err, &rejected):
		next := *r
		next.InsuranceStatus = medpay.RefundLegFail
		next.State, next.Step, next.StatusDesc = medpay.RefundFail, "", "医保退款失败: "+rejected.Message
		if r.CashRefundFee > 0 {
			next.CashStatus = medpay.RefundLegFail
		}
		if err := s.saveRefund(ctx, r, &next, sqlstore.RefundChange{}); err != nil {
			return err
		}
		return medpay.Errorf(medpay.ErrBureauRefund, "bureau refused the refund: %s", rejected.Message)
	case err != nil:
		// 6203 is idempotent on appRefdSn: asking again is how its outcome is found.
		if br, err = s.Bureau.Refund(ctx, req); err != nil {
			// Unknown: the refund is idempotent on its serial, so a retry (or recovery) asks again.
			s.log().Warn("bureau refund outcome unknown", "med_refund_id", r.MedRefundID, "err", err)
			return medpay.Errorf(medpay.ErrBureauRefund, "bureau refund outcome unknown; retry with the same hosp_out_refund_no")
		}
	}
	next := *r
	next.InsuranceStatus, next.BureauRefundID = medpay.RefundLegSuccess, br.RefundID
	next.HifpRefund, next.AcctRefund = br.HifpPay, br.AcctPay
	if br.HifpPay+br.AcctPay != r.InsuranceRefundFee {
		return fmt.Errorf("refund %s: bureau refunded %d+%d, expected %d", r.MedRefundID, br.HifpPay, br.AcctPay, r.InsuranceRefundFee)
	}
	var ts []medpay.Transfer
	hosp := medpay.HospitalAccount(hospitalMchID(o))
	if br.HifpPay > 0 {
		ts = append(ts, medpay.Transfer{From: hosp, To: medpay.BureauFundAccount(o.CityID), Amount: br.HifpPay})
	}
	if br.AcctPay > 0 {
		ts = append(ts, medpay.Transfer{From: hosp, To: medpay.PersonalAccount(o.PsnNo), Amount: br.AcctPay})
	}
	if r.CashRefundFee > 0 {
		next.Step = medpay.RefundStepCash
		return s.saveRefund(ctx, r, &next, sqlstore.RefundChange{Transfers: ts})
	}
	return s.finishRefund(ctx, o, r, &next, ts)
}

// refundCash gives the cash part back.
func (s *Service) refundCash(ctx context.Context, o *medpay.Order, r *medpay.Refund) error {
	if s.Gateway != nil {
		return s.refundCashAtChannel(ctx, o, r)
	}
	rc, err := s.Cash.Refund(ctx, r.CashSerial(), o.ChargeSerial(), r.CashRefundFee)
	s.fault("cash_refunded")
	var rejected *medpay.Error
	if errors.As(err, &rejected) || errors.Is(err, medpay.ErrDeclined) {
		next := *r
		next.CashStatus = medpay.RefundLegFail
		if r.InsuranceStatus == medpay.RefundLegSuccess {
			// The insured part is back but the cash is not: an operator must look.
			next.State, next.Step, next.StatusDesc = medpay.RefundChange, "", "现金退款失败,需人工处理"
		} else {
			next.State, next.Step, next.StatusDesc = medpay.RefundFail, "", "现金退款失败"
		}
		if err := s.saveRefund(ctx, r, &next, sqlstore.RefundChange{}); err != nil {
			return err
		}
		return medpay.Errorf(medpay.ErrCashRefund, "cash channel refused the refund")
	}
	if err != nil {
		if rc, err = s.Cash.QueryRefund(ctx, r.CashSerial()); err != nil {
			s.log().Warn("cash refund outcome unknown", "med_refund_id", r.MedRefundID, "err", err)
			return medpay.Errorf(medpay.ErrCashRefund, "cash refund outcome unknown; retry with the same hosp_out_refund_no")
		}
	}
	next := *r
	next.CashStatus, next.CashRefundID = medpay.RefundLegSuccess, rc.ID
	t := medpay.Transfer{From: medpay.HospitalAccount(hospitalMchID(o)), To: medpay.PayerWalletAccount(PayerKey(o)), Amount: r.CashRefundFee}
	return s.finishRefund(ctx, o, r, &next, []medpay.Transfer{t})
}

// refundCashAtChannel gives the cash part back through the cash gateway, once per refund
// (out_refund_no is the refund's CashSerial): a refusal fails the leg, an unknown outcome is
// asked for by query and otherwise left to recovery.
func (s *Service) refundCashAtChannel(ctx context.Context, o *medpay.Order, r *medpay.Refund) error {
	req := medpay.CashRefundRequest{OutTradeNo: o.CashTradeNo(), OutRefundNo: r.CashSerial(), Reason: "退款",
		Amount: r.CashRefundFee, Total: o.CashFee}
	rc, err := s.Gateway.Refund(ctx, req)
	s.fault("cash_refunded")
	if err != nil && !errors.Is(err, medpay.ErrOutcomeUnknown) {
		next := *r
		next.CashStatus = medpay.RefundLegFail
		if r.InsuranceStatus == medpay.RefundLegSuccess {
			next.State, next.Step, next.StatusDesc = medpay.RefundChange, "", "现金退款失败,需人工处理"
		} else {
			next.State, next.Step, next.StatusDesc = medpay.RefundFail, "", "现金退款失败"
		}
		if serr := s.saveRefund(ctx, r, &next, sqlstore.RefundChange{}); serr != nil {
			return serr
		}
		s.log().Warn("cash refund refused", "med_refund_id", r.MedRefundID, "err", err)
		return medpay.Errorf(medpay.ErrCashRefund, "cash channel refused the refund")
	}
	if err != nil || rc.Status != medpay.CashRefundSuccess {
		if rc, err = s.Gateway.QueryRefund(ctx, req.OutRefundNo); err != nil || rc.Status != medpay.CashRefundSuccess {
			s.log().Warn("cash refund outcome unknown", "med_refund_id", r.MedRefundID, "err", err)
			return medpay.Errorf(medpay.ErrCashRefund, "cash refund outcome unknown; retry with the same hosp_out_refund_no")
		}
	}
	next := *r
	next.CashStatus, next.CashRefundID = medpay.RefundLegSuccess, rc.RefundID
	t := medpay.Transfer{From: medpay.HospitalAccount(hospitalMchID(o)), To: medpay.PayerWalletAccount(PayerKey(o)), Amount: r.CashRefundFee}
	return s.finishRefund(ctx, o, r, &next, []medpay.Transfer{t})
}

func (s *Service) saveRefund(ctx context.Context, r, next *medpay.Refund, ch sqlstore.RefundChange) error {
	if err := s.Store.UpdateRefund(ctx, next, ch); err != nil {
		return err
	}
	*r = *next
	return nil
}

// finishRefund marks the refund SUCCESS, moves the order to REFUND and queues the REFUND
// notification, in one transaction with the last leg's transfers.
func (s *Service) finishRefund(ctx context.Context, o *medpay.Order, r, next *medpay.Refund, ts []medpay.Transfer) error {
	now := s.now()
	next.State, next.Step, next.StatusDesc, next.SuccessTime = medpay.RefundSuccess, "", "退款成功", now
	ch := sqlstore.RefundChange{Transfers: ts, Order: orderRefunded(r)}
	if next.NotifyURL() != "" {
		n, err := s.refundNotification(ctx, o, next)
		if err != nil {
			return err
		}
		ch.Also = func(tx *sql.Tx) error { return notify.Enqueue(ctx, tx, n, now) }
	}
	if err := s.saveRefund(ctx, r, next, ch); err != nil {
		return err
	}
	s.fault("refund_finished")
	if ch.Also != nil && s.Notify != nil {
		s.Notify()
	}
	return nil
}

// orderRefunded is what a successful refund does to its order: the order moves to REFUND, and
// each leg the refund gives something back of moves to REFUND too.
func orderRefunded(r *medpay.Refund) *sqlstore.OrderMove {
	m := &sqlstore.OrderMove{State: medpay.StateRefund, StatusDesc: "转入退款"}
	if r.CashRefundFee > 0 {
		m.CashStatus = medpay.LegRefund
	}
	if r.InsuranceRefundFee > 0 {
		m.InsuranceStatus = medpay.LegRefund
	}
	return m
}

// SetRefundFields writes a refund's fields (docs/api/refunds.md).
func SetRefundFields(m *wire.Message, o *medpay.Order, r *medpay.Refund) {
	m.Set("med_refund_id", r.MedRefundID)
	m.Set("hosp_out_refund_no", r.HospOutRefund)
	m.Set("med_trans_id", o.MedTransID)
	m.Set("hosp_out_trade_no", o.HospOutTradeNo)
	m.Set("total_fee", strconv.FormatInt(o.TotalFee, 10))
	m.Set("cash_refund_fee", strconv.FormatInt(r.CashRefundFee, 10))
	m.Set("insurance_refund_fee", strconv.FormatInt(r.InsuranceRefundFee, 10))
	if r.PartRefundType != "" {
		m.Set("part_refund_type", r.PartRefundType)
	}
	m.Set("med_refund_state", r.State)
	// A leg the refund does not have is left out; cash_refund_stauts repeats the cash status
	// under the misspelt name real clients read (docs/api/refunds.md (queryrefund)).
	if r.CashStatus != medpay.RefundLegNone {
		m.Set("cash_refund_status", r.CashStatus)
		m.Set("cash_refund_stauts", r.CashStatus)
	}
	if r.InsuranceStatus != medpay.RefundLegNone {
		m.Set("insurance_refund_status", r.InsuranceStatus)
	}
	if r.StatusDesc != "" {
		m.Set("refund_status_desc", r.StatusDesc)
	}
	if !r.SuccessTime.IsZero() {
		m.Set("refund_success_time", wire.FormatTime(r.SuccessTime))
	}
}

func (s *Service) refundNotification(ctx context.Context, o *medpay.Order, r *medpay.Refund) (*notify.Notification, error) {
	n, err := s.notification(ctx, o, "REFUND", r.MedRefundID+"-REFUND", r.ID, func(m *wire.Message) { SetRefundFields(m, o, r) })
	if n != nil {
		n.URL = r.NotifyURL()
	}
	return n, err
}

// RecoverRefunds resumes up to limit refunds left mid-saga whose last change is older than before.
func (s *Service) RecoverRefunds(ctx context.Context, before time.Time, limit int) (int, error) {
	refunds, err := s.Store.RefundsToRecover(ctx, before, limit)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, r := range refunds {
		if r, err := s.advanceRefund(ctx, r); err == nil && r.State != medpay.RefundProcessing {
			done++
		}
	}
	return done, nil
}
