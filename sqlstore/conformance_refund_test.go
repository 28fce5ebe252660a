package sqlstore_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// newRefund builds a refund of o for CreateRefund.
func newRefund(o *medpay.Order, no string, cash, insurance int64) *medpay.Refund {
	r := &medpay.Refund{MedRefundID: "R" + no + o.MedTransID, MerchantID: o.MerchantID, HospOutRefund: no,
		Fingerprint: "fp-" + no, Fields: map[string]string{"hosp_out_refund_no": no},
		CashRefundFee: cash, InsuranceRefundFee: insurance, State: medpay.RefundProcessing,
		CashStatus: medpay.RefundLegNone, InsuranceStatus: medpay.RefundLegNone}
	if cash > 0 {
		r.CashStatus, r.Step = medpay.RefundLegProcessing, medpay.RefundStepCash
	}
	if insurance > 0 {
		r.InsuranceStatus, r.Step = medpay.RefundLegProcessing, medpay.RefundStepBureau
	}
	return r
}

// TestRefundsRaiseOrderLegs: two refunds of one order — one of the cash, one of the insured part —
// finishing at the same moment both leave their leg REFUND; neither writes back a status it read
// before the other finished.
func TestRefundsRaiseOrderLegs(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		o := b.createOrder(t, b.merchant(t), "T-legs")
		o.State, o.CashStatus, o.InsuranceStatus = medpay.StateSuccess, medpay.LegSuccess, medpay.LegPayed
		if err := b.store.UpdateOrder(b.ctx, o, sqlstore.OrderChange{}); err != nil {
			t.Fatal(err)
		}
		var refunds []*medpay.Refund
		for _, r := range []*medpay.Refund{newRefund(o, "C", 300, 0), newRefund(o, "I", 0, 700)} {
			got, err := b.store.CreateRefund(b.ctx, o.ID, func(*medpay.Order, []*medpay.Refund) (*medpay.Refund, error) { return r, nil })
			if err != nil {
				t.Fatal(err)
			}
			refunds = append(refunds, got)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(refunds))
		for i, r := range refunds {
			wg.Go(func() {
				r.State, r.Step = medpay.RefundSuccess, ""
				move := &sqlstore.OrderMove{State: medpay.StateRefund, StatusDesc: "转入退款"}
				if r.CashRefundFee > 0 {
					r.CashStatus, move.CashStatus = medpay.RefundLegSuccess, medpay.LegRefund
				} else {
					r.InsuranceStatus, r.HifpRefund, r.AcctRefund = medpay.RefundLegSuccess, 500, 200
					move.InsuranceStatus = medpay.LegRefund
				}
				errs[i] = b.store.UpdateRefund(b.ctx, r, sqlstore.RefundChange{Order: move})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := b.store.OrderByRowID(b.ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != medpay.StateRefund || got.CashStatus != medpay.LegRefund || got.InsuranceStatus != medpay.LegRefund {
			t.Fatalf("order after both refunds: %s %s %s", got.State, got.CashStatus, got.InsuranceStatus)
		}
		if n := b.count(t, fmt.Sprintf(`SELECT COUNT(*) FROM refunds WHERE order_id = %d AND state = 'SUCCESS'`, o.ID)); n != 2 {
			t.Fatalf("%d successful refunds", n)
		}
	})
}
