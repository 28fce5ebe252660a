package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

func TestConformanceOrderRoundTrip(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		o := b.newOrder(m, "T-0001")
		o.ProviderID = b.merchant(t).ID
		o.TimeEnd = t0.Add(time.Minute) // normally set later; a create keeps what it is given
		o.InsuranceOrderID, o.CashOrderID = "SETL-1", "CASH-1"
		o.Step, o.Attempt = medpay.StepSettle, 2
		if err := b.store.CreateOrder(b.ctx, o); err != nil {
			t.Fatal(err)
		}
		if o.ID == 0 || o.Version != 1 {
			t.Fatalf("after create: id %d version %d, want an id and version 1", o.ID, o.Version)
		}
		if !o.UpdatedAt.Equal(o.CreatedAt) {
			t.Errorf("UpdatedAt %v, want CreatedAt %v", o.UpdatedAt, o.CreatedAt)
		}
		want := *o

		lookups := map[string]func() (*medpay.Order, error){
			"OrderByMedTransID": func() (*medpay.Order, error) { return b.store.OrderByMedTransID(b.ctx, m.ID, o.MedTransID) },
			"OrderByTradeNo":    func() (*medpay.Order, error) { return b.store.OrderByTradeNo(b.ctx, m.ID, o.HospOutTradeNo) },
			"OrderByID":         func() (*medpay.Order, error) { return b.store.OrderByID(b.ctx, o.MedTransID) },
		}
		for name, get := range lookups {
			got, err := get()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			mustDiff(t, name, &want, got)
		}

		// Lookups are scoped to the merchant where they say so.
		other := b.merchant(t)
		notFound := map[string]func() (*medpay.Order, error){
			"OrderByMedTransID other merchant": func() (*medpay.Order, error) { return b.store.OrderByMedTransID(b.ctx, other.ID, o.MedTransID) },
			"OrderByTradeNo other merchant":    func() (*medpay.Order, error) { return b.store.OrderByTradeNo(b.ctx, other.ID, o.HospOutTradeNo) },
			"OrderByMedTransID unknown":        func() (*medpay.Order, error) { return b.store.OrderByMedTransID(b.ctx, m.ID, "nope") },
			"OrderByTradeNo unknown":           func() (*medpay.Order, error) { return b.store.OrderByTradeNo(b.ctx, m.ID, "nope") },
			"OrderByID unknown":                func() (*medpay.Order, error) { return b.store.OrderByID(b.ctx, "nope") },
		}
		for name, get := range notFound {
			if got, err := get(); !errors.Is(err, medpay.ErrNotFound) {
				t.Errorf("%s: %v, %v; want ErrNotFound", name, got, err)
			}
		}
	})
}

func TestConformanceOrderTradeNoUniquePerMerchant(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m1, m2 := b.merchant(t), b.merchant(t)
		first := b.createOrder(t, m1, "SAME-NO")
		dup := b.newOrder(m1, "SAME-NO")
		if err := b.store.CreateOrder(b.ctx, dup); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("duplicate (merchant, hosp_out_trade_no): err = %v, want ErrConflict", err)
		}
		// Same number under another merchant is allowed.
		second := b.createOrder(t, m2, "SAME-NO")
		if first.ID == second.ID {
			t.Error("two orders share an id")
		}
		for _, o := range []*medpay.Order{first, second} {
			got, err := b.store.OrderByTradeNo(b.ctx, o.MerchantID, "SAME-NO")
			if err != nil {
				t.Fatal(err)
			}
			if got.MedTransID != o.MedTransID {
				t.Errorf("merchant %d: got order %s, want %s", o.MerchantID, got.MedTransID, o.MedTransID)
			}
		}
		if n := b.count(t, `SELECT COUNT(*) FROM orders`); n != 2 {
			t.Errorf("orders = %d, want 2", n)
		}
	})
}

func TestConformanceOrderRejectsBadSplit(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		bad := map[string]func(o *medpay.Order){
			"legs exceed total":  func(o *medpay.Order) { o.CashFee = 400 },
			"funds != insurance": func(o *medpay.Order) { o.HifpPay = 600 },
			"negative leg":       func(o *medpay.Order) { o.CashFee, o.InsuranceFee, o.HifpPay = -1, 1001, 801 },
			"zero total":         func(o *medpay.Order) { o.TotalFee = 0 },
		}
		for name, mutate := range bad {
			o := b.newOrder(m, "BAD-"+name)
			mutate(o)
			if err := b.store.CreateOrder(b.ctx, o); err == nil {
				t.Errorf("CreateOrder accepted %s", name)
			}
		}
		if n := b.count(t, `SELECT COUNT(*) FROM orders`); n != 0 {
			t.Errorf("orders = %d after rejected creates, want 0", n)
		}

		o := b.createOrder(t, m, "GOOD")
		for name, mutate := range bad {
			upd := *o
			mutate(&upd)
			if err := b.store.UpdateOrder(b.ctx, &upd, sqlstore.OrderChange{}); err == nil {
				t.Errorf("UpdateOrder accepted %s", name)
			}
		}
		badTransfers := map[string]medpay.Transfer{
			"zero":      {From: "a", To: "b", Amount: 0},
			"negative":  {From: "a", To: "b", Amount: -5},
			"no source": {To: "b", Amount: 5},
			"no target": {From: "a", Amount: 5},
			"to itself": {From: "a", To: "a", Amount: 5},
		}
		for name, tr := range badTransfers {
			upd := *o
			upd.State = medpay.StateSuccess
			ch := sqlstore.OrderChange{Transfers: []medpay.Transfer{{From: "x", To: "y", Amount: 1}, tr}}
			if err := b.store.UpdateOrder(b.ctx, &upd, ch); err == nil {
				t.Errorf("UpdateOrder accepted a %s transfer", name)
			}
			if upd.Version != o.Version {
				t.Errorf("%s: version bumped to %d on a rejected update", name, upd.Version)
			}
		}
		got, err := b.store.OrderByID(b.ctx, o.MedTransID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "order after rejected updates", o, got)
		if n := b.count(t, `SELECT COUNT(*) FROM ledger_entries`); n != 0 {
			t.Errorf("ledger entries = %d after rejected updates, want 0", n)
		}
	})
}

// settled returns o moved to SUCCESS with every mutable column changed.
func settled(o *medpay.Order) *medpay.Order {
	u := *o
	u.PayType = medpay.PayCashInsurance
	u.CashFee, u.InsuranceFee, u.HifpPay, u.AcctPay = 250, 750, 600, 150
	u.State = medpay.StateSuccess
	u.CashStatus, u.InsuranceStatus = medpay.LegSuccess, medpay.LegPayed
	u.StatusDesc = "支付成功"
	u.PsnNo, u.CardNo = "P0002", "C0002"
	u.InsuranceOrderID, u.CashOrderID = "SETL-9", "CASH-9"
	u.ResponseContent = `{"setl_id":"SETL-9"}`
	u.Step, u.Attempt = medpay.StepDone, 1
	u.TimeEnd = t0.Add(3 * time.Minute)
	return &u
}

func TestConformanceUpdateOrder(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		o := b.createOrder(t, m, "U-1")
		stale := *o

		b.clock.Set(t0.Add(3 * time.Minute))
		u := settled(o)
		if err := b.store.UpdateOrder(b.ctx, u, sqlstore.OrderChange{}); err != nil {
			t.Fatal(err)
		}
		if u.Version != 2 {
			t.Errorf("version after update = %d, want 2", u.Version)
		}
		if !u.UpdatedAt.Equal(b.clock.Now()) {
			t.Errorf("UpdatedAt = %v, want the store clock %v", u.UpdatedAt, b.clock.Now())
		}
		got, err := b.store.OrderByID(b.ctx, o.MedTransID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "after update", u, got)

		// A stale version is refused and writes nothing.
		stale.State, stale.StatusDesc = medpay.StateClosed, "已关闭"
		err = b.store.UpdateOrder(b.ctx, &stale, sqlstore.OrderChange{
			Transfers: []medpay.Transfer{{From: "a", To: "b", Amount: 1}},
		})
		if !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("stale update: err = %v, want ErrConflict", err)
		}
		if stale.Version != 1 {
			t.Errorf("stale order's version changed to %d", stale.Version)
		}
		got, err = b.store.OrderByID(b.ctx, o.MedTransID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "after stale update", u, got)
		if n := b.count(t, `SELECT COUNT(*) FROM ledger_entries`); n != 0 {
			t.Errorf("ledger entries after a refused update = %d, want 0", n)
		}

		// Unknown order: conflict too (the row with that version does not exist).
		ghost := *u
		ghost.ID = 1 << 40
		if err := b.store.UpdateOrder(b.ctx, &ghost, sqlstore.OrderChange{}); !errors.Is(err, medpay.ErrConflict) {
			t.Errorf("update of a missing row: %v, want ErrConflict", err)
		}
	})
}

func TestConformanceUpdateOrderLedgerAndAlso(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		o := b.createOrder(t, m, "L-1")
		fund, wallet, hosp := medpay.BureauFundAccount("440300"), medpay.PayerWalletAccount("o-payer"), medpay.HospitalAccount(m.MchID)
		pay := []medpay.Transfer{{From: fund, To: hosp, Amount: 700}, {From: wallet, To: hosp, Amount: 300}}
		outbox := func(notifyID string) func(tx *sql.Tx) error {
			return func(tx *sql.Tx) error {
				_, err := tx.ExecContext(b.ctx, `INSERT INTO outbox (notify_id, merchant_id, kind, order_id, url, body, state, next_at, created_at)
					VALUES ($1, $2, 'pay', $3, 'https://h/n', '<xml/>', 'pending', 0, 0)`, notifyID, m.ID, o.ID)
				return err
			}
		}

		// An error from Also rolls back the order, the ledger and whatever Also wrote.
		boom := errors.New("boom")
		u := settled(o)
		var sawVersion int64
		err := b.store.UpdateOrder(b.ctx, u, sqlstore.OrderChange{Transfers: pay, Also: func(tx *sql.Tx) error {
			if err := outbox("N-0")(tx); err != nil {
				return err
			}
			// Also sees the update and the ledger rows: it runs in the same transaction.
			if err := tx.QueryRowContext(b.ctx, `SELECT version FROM orders WHERE id = $1`, o.ID).Scan(&sawVersion); err != nil {
				return err
			}
			var entries int
			if err := tx.QueryRowContext(b.ctx, `SELECT COUNT(*) FROM ledger_entries WHERE order_id = $1`, o.ID).Scan(&entries); err != nil {
				return err
			}
			if entries != 4 {
				return fmt.Errorf("Also saw %d ledger entries, want 4", entries)
			}
			return boom
		}})
		if !errors.Is(err, boom) {
			t.Fatalf("UpdateOrder with failing Also: %v, want boom", err)
		}
		if sawVersion != 2 {
			t.Errorf("Also saw version %d, want 2", sawVersion)
		}
		if u.Version != 1 {
			t.Errorf("version bumped to %d by a rolled-back update", u.Version)
		}
		got, err := b.store.OrderByID(b.ctx, o.MedTransID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "after rolled-back update", o, got)
		for table, q := range map[string]string{"ledger_entries": `SELECT COUNT(*) FROM ledger_entries`, "outbox": `SELECT COUNT(*) FROM outbox`} {
			if n := b.count(t, q); n != 0 {
				t.Errorf("%s rows after rollback = %d, want 0", table, n)
			}
		}

		// The same change, with Also succeeding, commits everything.
		u = settled(o)
		if err := b.store.UpdateOrder(b.ctx, u, sqlstore.OrderChange{Transfers: pay, Also: outbox("N-1")}); err != nil {
			t.Fatal(err)
		}
		if n := b.count(t, `SELECT COUNT(*) FROM outbox WHERE notify_id = 'N-1'`); n != 1 {
			t.Errorf("outbox rows = %d, want 1", n)
		}
		// Each transfer is two entries summing to zero.
		rows, err := db.SQL().QueryContext(b.ctx, `SELECT transfer, COUNT(*), SUM(amount), MIN(order_id), MAX(refund_id)
			FROM ledger_entries GROUP BY transfer`)
		if err != nil {
			t.Fatal(err)
		}
		transfers := 0
		for rows.Next() {
			var name string
			var n int
			var sum, orderID, refundID int64
			if err := rows.Scan(&name, &n, &sum, &orderID, &refundID); err != nil {
				t.Fatal(err)
			}
			transfers++
			if n != 2 || sum != 0 || orderID != o.ID || refundID != 0 {
				t.Errorf("transfer %s: %d entries summing to %d (order %d, refund %d); want 2 summing to 0 for order %d",
					name, n, sum, orderID, refundID, o.ID)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if transfers != 2 {
			t.Errorf("transfers = %d, want 2", transfers)
		}

		balances := map[string]int64{fund: -700, wallet: -300, hosp: 1000, "nobody": 0}
		for acct, want := range balances {
			got, err := b.store.Balance(b.ctx, acct)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("Balance(%s) = %d, want %d", acct, got, want)
			}
		}
		ledger, err := b.store.OrderLedger(b.ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "order ledger", map[string]int64{fund: -700, wallet: -300, hosp: 1000}, ledger)

		// A second order's movements are its own; a reversal nets an account to zero, which
		// OrderLedger leaves out.
		o2 := b.createOrder(t, m, "L-2")
		u2 := settled(o2)
		if err := b.store.UpdateOrder(b.ctx, u2, sqlstore.OrderChange{Transfers: []medpay.Transfer{{From: wallet, To: hosp, Amount: 50}}}); err != nil {
			t.Fatal(err)
		}
		u2.State = medpay.StateRefund
		if err := b.store.UpdateOrder(b.ctx, u2, sqlstore.OrderChange{Transfers: []medpay.Transfer{(medpay.Transfer{From: wallet, To: hosp, Amount: 50}).Reverse()}}); err != nil {
			t.Fatal(err)
		}
		ledger2, err := b.store.OrderLedger(b.ctx, o2.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "reversed order ledger", map[string]int64{}, ledger2)
		ledger, err = b.store.OrderLedger(b.ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "first order ledger", map[string]int64{fund: -700, wallet: -300, hosp: 1000}, ledger)
		if n := b.count(t, `SELECT COUNT(*) FROM ledger_entries WHERE order_id = $1`, o2.ID); n != 4 {
			t.Errorf("second order's entries = %d, want 4", n)
		}
		total, err := b.store.LedgerTotal(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if total != 0 {
			t.Errorf("LedgerTotal = %d, want 0", total)
		}
		if got, _ := b.store.Balance(b.ctx, hosp); got != 1000 {
			t.Errorf("hospital balance = %d, want 1000", got)
		}
	})
}

func TestConformanceUpdateOrderRace(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		o := b.createOrder(t, m, "R-1")
		const racers = 16
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := settled(o)
				u.StatusDesc = fmt.Sprintf("winner %d", i)
				<-start
				errs[i] = b.store.UpdateOrder(context.Background(), u, sqlstore.OrderChange{
					Transfers: []medpay.Transfer{{From: "payer", To: "hospital", Amount: 1000}},
					Also: func(tx *sql.Tx) error {
						_, err := tx.ExecContext(context.Background(), `INSERT INTO outbox (notify_id, merchant_id, kind, url, body, state, next_at, created_at)
							VALUES ($1, $2, 'pay', 'u', 'b', 'pending', 0, 0)`, fmt.Sprintf("N-%d", i), m.ID)
						return err
					},
				})
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Errorf("racers %d and %d both won", winner, i)
				}
				winner = i
			case !errors.Is(err, medpay.ErrConflict):
				t.Errorf("racer %d: %v, want nil or ErrConflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no racer won")
		}
		got, err := b.store.OrderByID(b.ctx, o.MedTransID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 || got.StatusDesc != fmt.Sprintf("winner %d", winner) {
			t.Errorf("stored version %d desc %q; want 2 and the winner's %d", got.Version, got.StatusDesc, winner)
		}
		if n := b.count(t, `SELECT COUNT(*) FROM ledger_entries`); n != 2 {
			t.Errorf("ledger entries = %d, want the winner's 2", n)
		}
		if n := b.count(t, `SELECT COUNT(*) FROM outbox`); n != 1 {
			t.Errorf("outbox rows = %d, want the winner's 1", n)
		}
	})
}

func medTransIDs(orders []*medpay.Order) []string {
	var ids []string
	for _, o := range orders {
		ids = append(ids, o.MedTransID)
	}
	return ids
}

func TestConformanceOrdersToRecover(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		// at moves an order to step with updated_at = t0+at.
		at := func(tradeNo string, step medpay.Step, d time.Duration) *medpay.Order {
			o := b.createOrder(t, m, tradeNo)
			b.clock.Set(t0.Add(d))
			o.Step = step
			if step != medpay.StepNone {
				o.State = medpay.StateUserPaying
			}
			if err := b.store.UpdateOrder(b.ctx, o, sqlstore.OrderChange{}); err != nil {
				t.Fatal(err)
			}
			return o
		}
		// Created in a shuffled order so that the result order comes from updated_at.
		charge := at("charge", medpay.StepCharge, 2*time.Minute)
		settle := at("settle", medpay.StepSettle, 1*time.Minute)
		reverse := at("reverse", medpay.StepReverse, 3*time.Minute)
		at("done", medpay.StepDone, 0)
		at("none", medpay.StepNone, 0)
		atBefore := at("at-before", medpay.StepSettle, 5*time.Minute) // not strictly before
		late := at("late", medpay.StepCharge, 10*time.Minute)

		list := func(before time.Time, limit int) []string {
			t.Helper()
			orders, err := b.store.OrdersToRecover(b.ctx, before, limit)
			if err != nil {
				t.Fatal(err)
			}
			return medTransIDs(orders)
		}
		before := t0.Add(5 * time.Minute)
		mustDiff(t, "recover before t0+5m", medTransIDs([]*medpay.Order{settle, charge, reverse}), list(before, 10))
		mustDiff(t, "recover limit 2", medTransIDs([]*medpay.Order{settle, charge}), list(before, 2))
		mustDiff(t, "recover everything", medTransIDs([]*medpay.Order{settle, charge, reverse, atBefore, late}),
			list(t0.Add(24*time.Hour), 100))
		mustDiff(t, "recover before t0", []string(nil), list(t0, 10))

		// The orders come back whole.
		orders, err := b.store.OrdersToRecover(b.ctx, before, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(orders) == 1 {
			mustDiff(t, "recovered order", settle, orders[0])
		}
	})
}

func TestConformanceOrdersExpired(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		mk := func(tradeNo string, state medpay.TradeState, expire time.Duration) *medpay.Order {
			o := b.newOrder(m, tradeNo)
			o.State, o.TimeExpire = state, t0.Add(expire)
			if err := b.store.CreateOrder(b.ctx, o); err != nil {
				t.Fatal(err)
			}
			return o
		}
		two := mk("two", medpay.StateNotPay, 2*time.Hour)
		one := mk("one", medpay.StateNotPay, 1*time.Hour)
		three := mk("three", medpay.StateNotPay, 3*time.Hour)
		mk("paying", medpay.StateUserPaying, 0)
		mk("paid", medpay.StateSuccess, 0)
		mk("closed", medpay.StateClosed, 0)

		list := func(now time.Time, limit int) []string {
			t.Helper()
			orders, err := b.store.OrdersExpired(b.ctx, now, limit)
			if err != nil {
				t.Fatal(err)
			}
			return medTransIDs(orders)
		}
		mustDiff(t, "expired at t0", []string(nil), list(t0, 10))
		mustDiff(t, "expired at t0+2h (inclusive)", medTransIDs([]*medpay.Order{one, two}), list(t0.Add(2*time.Hour), 10))
		mustDiff(t, "expired limit 1", medTransIDs([]*medpay.Order{one}), list(t0.Add(2*time.Hour), 1))
		mustDiff(t, "expired at t0+1d", medTransIDs([]*medpay.Order{one, two, three}), list(t0.Add(24*time.Hour), 10))

		// Closing one removes it from the list.
		one.State = medpay.StateClosed
		if err := b.store.UpdateOrder(b.ctx, one, sqlstore.OrderChange{}); err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "expired after close", medTransIDs([]*medpay.Order{two, three}), list(t0.Add(24*time.Hour), 10))
	})
}

func TestConformanceOrdersAwaitingCash(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		mk := func(tradeNo string, state medpay.TradeState, step medpay.Step) *medpay.Order {
			o := b.newOrder(m, tradeNo)
			o.State, o.Step = state, step
			if err := b.store.CreateOrder(b.ctx, o); err != nil {
				t.Fatal(err)
			}
			return o
		}
		waiting := mk("waiting", medpay.StateNotPay, medpay.StepCashPay)
		mk("authorised", medpay.StateNotPay, medpay.StepAuthorized)
		mk("settling", medpay.StateUserPaying, medpay.StepSettle)
		mk("closed", medpay.StateClosed, medpay.StepCashPay)
		list := func(before time.Time) []string {
			t.Helper()
			orders, err := b.store.OrdersAwaitingCash(b.ctx, before, 10)
			if err != nil {
				t.Fatal(err)
			}
			return medTransIDs(orders)
		}
		mustDiff(t, "awaiting cash", medTransIDs([]*medpay.Order{waiting}), list(t0.Add(time.Hour)))
		mustDiff(t, "awaiting cash, changed since", []string(nil), list(t0.Add(-time.Hour)))
	})
}
