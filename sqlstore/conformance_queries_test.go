package sqlstore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// TestConformanceRefundQueries covers the refund look-ups and lists, the bill's queries and the
// ledger's movements on every engine.
func TestConformanceRefundQueries(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m1, m2 := b.merchant(t), b.merchant(t)
		paid := func(m *medpay.Merchant, no string, at time.Time) *medpay.Order {
			t.Helper()
			o := b.createOrder(t, m, no)
			b.clock.Set(at)
			o.State, o.CashStatus, o.InsuranceStatus, o.TimeEnd, o.Step = medpay.StateSuccess, medpay.LegSuccess, medpay.LegPayed, at, medpay.StepDone
			ts := []medpay.Transfer{{From: medpay.PayerWalletAccount("p"), To: medpay.HospitalAccount(m.MchID), Amount: o.CashFee}}
			if err := b.store.UpdateOrder(b.ctx, o, sqlstore.OrderChange{Transfers: ts}); err != nil {
				t.Fatal(err)
			}
			return o
		}
		day := t0.Truncate(24 * time.Hour)
		o1 := paid(m1, "T1", day.Add(time.Hour))
		o2 := paid(m1, "T2", day.Add(2*time.Hour))
		o3 := paid(m1, "T3", day.Add(25*time.Hour)) // the next day
		o4 := paid(m2, "T4", day.Add(time.Hour))    // another merchant
		b.createOrder(t, m1, "T5")                  // never paid

		ids := func(os []*medpay.Order) string {
			var s []string
			for _, o := range os {
				s = append(s, o.HospOutTradeNo)
			}
			return strings.Join(s, " ")
		}
		got, err := b.store.OrdersPaidBetween(b.ctx, m1.ID, day, day.Add(24*time.Hour))
		if err != nil || ids(got) != "T1 T2" {
			t.Fatalf("OrdersPaidBetween = %s, %v; want T1 T2", ids(got), err)
		}
		if got, _ := b.store.OrdersPaidBetween(b.ctx, m1.ID, day.Add(2*time.Hour), day.Add(48*time.Hour)); ids(got) != "T2 T3" {
			t.Fatalf("OrdersPaidBetween from T2's time = %s, want T2 T3 (from inclusive)", ids(got))
		}
		if got, _ := b.store.OrdersPaidBetween(b.ctx, m2.ID, day, day.Add(24*time.Hour)); ids(got) != "T4" {
			t.Fatalf("OrdersPaidBetween of m2 = %s", ids(got))
		}

		// Refunds: created at t1, one finished at t2, one left mid-saga.
		t1 := day.Add(3 * time.Hour)
		b.clock.Set(t1)
		create := func(o *medpay.Order, no string, cash int64) *medpay.Refund {
			t.Helper()
			r, err := b.store.CreateRefund(b.ctx, o.ID, func(*medpay.Order, []*medpay.Refund) (*medpay.Refund, error) {
				return newRefund(o, no, cash, 0), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		ra := create(o1, "RA", 100)
		create(o1, "RB", 50)
		create(o4, "RC", 100)
		t2 := day.Add(4 * time.Hour)
		b.clock.Set(t2)
		ra.State, ra.Step, ra.CashStatus, ra.SuccessTime = medpay.RefundSuccess, "", medpay.RefundLegSuccess, t2
		back := []medpay.Transfer{{From: medpay.HospitalAccount(m1.MchID), To: medpay.PayerWalletAccount("p"), Amount: 100}}
		if err := b.store.UpdateRefund(b.ctx, ra, sqlstore.RefundChange{Transfers: back,
			Order: &sqlstore.OrderMove{State: medpay.StateRefund, StatusDesc: "转入退款", CashStatus: medpay.LegRefund}}); err != nil {
			t.Fatal(err)
		}

		for name, lookup := range map[string]func() (*medpay.Refund, error){
			"RefundByNo":          func() (*medpay.Refund, error) { return b.store.RefundByNo(b.ctx, m1.ID, "RA") },
			"RefundByMedRefundID": func() (*medpay.Refund, error) { return b.store.RefundByMedRefundID(b.ctx, m1.ID, ra.MedRefundID) },
			"RefundByID":          func() (*medpay.Refund, error) { return b.store.RefundByID(b.ctx, ra.MedRefundID) },
		} {
			r, err := lookup()
			if err != nil || r.ID != ra.ID || r.State != medpay.RefundSuccess || r.OrderID != o1.ID || r.CashRefundFee != 100 ||
				r.Version != ra.Version || !r.SuccessTime.Equal(t2) {
				t.Errorf("%s = %+v, %v", name, r, err)
			}
		}
		// Scoped to the merchant.
		if _, err := b.store.RefundByNo(b.ctx, m2.ID, "RA"); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("RefundByNo of another merchant: %v", err)
		}
		if _, err := b.store.RefundByMedRefundID(b.ctx, m2.ID, ra.MedRefundID); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("RefundByMedRefundID of another merchant: %v", err)
		}
		if _, err := b.store.RefundByID(b.ctx, "nope"); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("RefundByID of nothing: %v", err)
		}

		list, err := b.store.RefundsOfOrder(b.ctx, o1.ID)
		if err != nil || len(list) != 2 || list[0].HospOutRefund != "RA" || list[1].HospOutRefund != "RB" {
			t.Fatalf("RefundsOfOrder = %v, %v", list, err)
		}
		if list, _ := b.store.RefundsOfOrder(b.ctx, o2.ID); len(list) != 0 {
			t.Fatalf("RefundsOfOrder of an order without refunds = %v", list)
		}

		// Mid-saga refunds untouched since before the cut-off, oldest first, up to the limit.
		recover := func(before time.Time, limit int) string {
			t.Helper()
			rs, err := b.store.RefundsToRecover(b.ctx, before, limit)
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, r := range rs {
				s = append(s, r.HospOutRefund)
			}
			return strings.Join(s, " ")
		}
		if got := recover(t1, 10); got != "" {
			t.Errorf("RefundsToRecover(t1) = %q, want none (cut-off exclusive)", got)
		}
		if got := recover(t1.Add(time.Millisecond), 10); got != "RB RC" && got != "RC RB" {
			t.Errorf("RefundsToRecover = %q, want RB and RC (RA is done)", got)
		}
		if got := recover(t2.Add(time.Hour), 1); len(strings.Fields(got)) != 1 {
			t.Errorf("RefundsToRecover limit 1 = %q", got)
		}

		ors, err := b.store.RefundsSucceededBetween(b.ctx, m1.ID, day, day.Add(24*time.Hour))
		if err != nil || len(ors) != 1 || ors[0].Refund.ID != ra.ID || ors[0].Order.ID != o1.ID || ors[0].Order.State != medpay.StateRefund {
			t.Fatalf("RefundsSucceededBetween = %+v, %v", ors, err)
		}
		if ors, _ := b.store.RefundsSucceededBetween(b.ctx, m1.ID, t2.Add(time.Millisecond), day.Add(24*time.Hour)); len(ors) != 0 {
			t.Fatalf("RefundsSucceededBetween after the refund = %+v", ors)
		}
		if ors, _ := b.store.RefundsSucceededBetween(b.ctx, m2.ID, day, day.Add(24*time.Hour)); len(ors) != 0 {
			t.Fatalf("RefundsSucceededBetween of m2 = %+v (RC did not succeed)", ors)
		}

		// Movements: per order and account, netted over the period.
		moves, err := b.store.Movements(b.ctx, day, day.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		net := map[string]int64{}
		for _, mv := range moves {
			net[fmt.Sprintf("%d/%s", mv.OrderID, mv.Account)] = mv.Amount
		}
		want := map[string]int64{
			fmt.Sprintf("%d/%s", o1.ID, medpay.HospitalAccount(m1.MchID)): o1.CashFee - 100,
			fmt.Sprintf("%d/%s", o1.ID, medpay.PayerWalletAccount("p")):   -o1.CashFee + 100,
			fmt.Sprintf("%d/%s", o2.ID, medpay.HospitalAccount(m1.MchID)): o2.CashFee,
			fmt.Sprintf("%d/%s", o2.ID, medpay.PayerWalletAccount("p")):   -o2.CashFee,
			fmt.Sprintf("%d/%s", o4.ID, medpay.HospitalAccount(m2.MchID)): o4.CashFee,
			fmt.Sprintf("%d/%s", o4.ID, medpay.PayerWalletAccount("p")):   -o4.CashFee,
		}
		if len(net) != len(want) {
			t.Errorf("Movements = %v, want %v", net, want)
		}
		for k, v := range want {
			if net[k] != v {
				t.Errorf("Movements %s = %d, want %d", k, net[k], v)
			}
		}
		if moves, _ := b.store.Movements(b.ctx, day.Add(24*time.Hour), day.Add(48*time.Hour)); len(moves) != 2 {
			t.Errorf("Movements of the next day = %v, want o3's two", moves)
		}
		_ = o3
	})
}

// TestConformanceSetPayer: the payer of a 扫码付 order is set once, compare-and-swap, with the
// split of the pre-settlement, and only while the order is unpaid.
func TestConformanceSetPayer(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		o := b.newOrder(m, "T-scan")
		delete(o.Fields, "openid")
		o.HifpPay, o.AcctPay, o.PsnNo, o.CardNo = 0, 0, "", ""
		o.LoadFields()
		if err := b.store.CreateOrder(b.ctx, o); err != nil {
			t.Fatal(err)
		}
		stale := *o
		claimed := *o
		claimed.Fields = map[string]string{"openid": "scanner"}
		for k, v := range o.Fields {
			claimed.Fields[k] = v
		}
		claimed.LoadFields()
		claimed.PsnNo, claimed.CardNo, claimed.HifpPay, claimed.AcctPay = "P9", "C9", 500, 200
		if err := b.store.SetPayer(b.ctx, &claimed); err != nil {
			t.Fatal(err)
		}
		got, err := b.store.OrderByID(b.ctx, o.MedTransID)
		if err != nil || got.OpenID != "scanner" || got.PsnNo != "P9" || got.CardNo != "C9" || got.HifpPay != 500 || got.Version != claimed.Version {
			t.Fatalf("after SetPayer: %v %+v", err, got)
		}
		// A second payer with the version read before loses.
		stale.Fields = map[string]string{"openid": "late"}
		stale.LoadFields()
		if err := b.store.SetPayer(b.ctx, &stale); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("stale SetPayer: %v", err)
		}
		// Not once the order is no longer unpaid.
		got.State = medpay.StateClosed
		if err := b.store.UpdateOrder(b.ctx, got, sqlstore.OrderChange{}); err != nil {
			t.Fatal(err)
		}
		if err := b.store.SetPayer(b.ctx, got); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("SetPayer on a closed order: %v", err)
		}
	})
}
