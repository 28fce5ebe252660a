package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

func TestConformanceBindings(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		get := func(appid, openid string) (*medpay.Binding, error) {
			t.Helper()
			return b.store.BindingFor(b.ctx, appid, openid)
		}
		first := &medpay.Binding{AppID: "wxA", OpenID: "o1", PsnNo: "P1", Name: "张三", IDNo: "440301199001011234",
			CardNo: "C1", CityID: "440300", Insutype: "310"}
		if _, err := get("wxA", "o1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("before binding: %v, want ErrNotFound", err)
		}
		if err := b.store.Bind(b.ctx, first, t0); err != nil {
			t.Fatal(err)
		}
		got, err := get("wxA", "o1")
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "binding", first, got)

		// The same openid under another appid is another payer.
		other := *first
		other.AppID, other.PsnNo, other.CardNo = "wxB", "P2", "C2"
		if err := b.store.Bind(b.ctx, &other, t0); err != nil {
			t.Fatal(err)
		}

		// Rebinding replaces every column of the earlier card.
		second := &medpay.Binding{AppID: "wxA", OpenID: "o1", PsnNo: "P3", Name: "李四", IDNo: "110101198001011234",
			CardNo: "C3", CityID: "110000", Insutype: ""}
		if err := b.store.Bind(b.ctx, second, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err = get("wxA", "o1"); err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "rebound", second, got)
		if n := b.count(t, `SELECT COUNT(*) FROM bindings WHERE appid = 'wxA' AND openid = 'o1'`); n != 1 {
			t.Errorf("rows for (wxA, o1) = %d, want 1", n)
		}
		if got, err = get("wxB", "o1"); err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "other appid", &other, got)
		if _, err := get("wxA", "o2"); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("unbound openid: %v, want ErrNotFound", err)
		}

		if err := b.store.Unbind(b.ctx, "wxA", "o1"); err != nil {
			t.Fatal(err)
		}
		if _, err := get("wxA", "o1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("after unbind: %v, want ErrNotFound", err)
		}
		if err := b.store.Unbind(b.ctx, "wxA", "o1"); err != nil {
			t.Errorf("unbinding nothing: %v", err)
		}
		if _, err := get("wxB", "o1"); err != nil {
			t.Errorf("unbinding (wxA, o1) touched (wxB, o1): %v", err)
		}
	})
}

func TestConformancePINFailures(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		orderEnd := t0.Add(2 * time.Hour)
		begin := func(payer, order string, at time.Time, want sqlstore.PINAttempt) {
			t.Helper()
			got, err := b.store.BeginPIN(b.ctx, payer, order, orderEnd, at)
			if err != nil {
				t.Fatal(err)
			}
			if got.Refused != want.Refused || got.Remaining != want.Remaining || got.BlockedUntil.UnixMilli() != want.BlockedUntil.UnixMilli() {
				t.Errorf("BeginPIN(%s, %s, t0+%v) = %+v, want %+v", payer, order, at.Sub(t0), got, want)
			}
		}
		ok := func(payer, order string) {
			t.Helper()
			if err := b.store.PINSucceeded(b.ctx, payer, order); err != nil {
				t.Fatal(err)
			}
		}
		left := func(n int) sqlstore.PINAttempt { return sqlstore.PINAttempt{Remaining: n} }
		refused := func(until time.Time) sqlstore.PINAttempt {
			return sqlstore.PINAttempt{Refused: true, BlockedUntil: until}
		}

		// Each attempt counts before the PIN is checked; a right PIN clears the counts.
		begin("p", "M1", t0, left(2)) // the order allows 3
		begin("p", "M1", t0, left(1))
		ok("p", "M1")
		begin("p", "M1", t0, left(2))
		ok("p", "M1")
		ok("p", "M1") // nothing to clear
		begin("other", "M9", t0, left(2))

		// The third attempt on one order starts the order's block, until the order expires; the
		// payer's other orders are unaffected.
		begin("p", "M2", t0, left(2))
		begin("p", "M2", t0, left(1))
		begin("p", "M2", t0, sqlstore.PINAttempt{Remaining: 0, BlockedUntil: orderEnd})
		begin("p", "M2", t0.Add(time.Minute), refused(orderEnd))
		begin("p", "M3", t0, left(1)) // the payer: 4 of 5 counted

		// The fifth attempt of the payer starts the payer's block, for PINBlock, on every order.
		at := t0.Add(time.Minute)
		end := at.Add(sqlstore.PINBlock)
		begin("p", "M4", at, sqlstore.PINAttempt{Remaining: 0, BlockedUntil: end})
		begin("p", "M5", at, refused(end))
		begin("p", "M5", end.Add(-time.Millisecond), refused(end))
		begin("other", "M9", at, left(1))

		// Once served, the payer's count starts again (the order's block still holds).
		begin("p", "M5", end, left(2))
		begin("p", "M2", end, refused(orderEnd))
		// A right PIN lifts a block.
		ok("p", "M2")
		begin("p", "M2", end, left(2))

		// Inside the transaction of another change: the attempt counts, and a right PIN clears,
		// only when that transaction commits.
		rolledBack := errors.New("rolled back")
		inTx := func(commit bool, fn func(tx *sql.Tx) error) {
			t.Helper()
			err := db.WriteTx(b.ctx, func(tx *sql.Tx) error {
				if err := fn(tx); err != nil || !commit {
					return errors.Join(err, rolledBack)
				}
				return nil
			})
			if commit && err != nil || !commit && !errors.Is(err, rolledBack) {
				t.Fatalf("transaction (commit %v): %v", commit, err)
			}
		}
		beginTx := func(commit bool, want sqlstore.PINAttempt) {
			t.Helper()
			inTx(commit, func(tx *sql.Tx) error {
				got, err := b.store.BeginPINTx(b.ctx, tx, "q", "N1", orderEnd, t0)
				if err == nil && (got.Refused != want.Refused || got.Remaining != want.Remaining || got.BlockedUntil.UnixMilli() != want.BlockedUntil.UnixMilli()) {
					t.Errorf("BeginPINTx = %+v, want %+v", got, want)
				}
				return err
			})
		}
		okTx := func(commit bool) {
			t.Helper()
			inTx(commit, func(tx *sql.Tx) error { return b.store.PINSucceededTx(b.ctx, tx, "q", "N1") })
		}
		beginTx(false, left(2))
		begin("q", "N1", t0, left(2)) // the rolled-back attempt did not count
		beginTx(true, left(1))
		okTx(false)
		begin("q", "N1", t0, sqlstore.PINAttempt{Remaining: 0, BlockedUntil: orderEnd}) // nor did the rolled-back clear
		beginTx(true, refused(orderEnd))
		okTx(true)
		begin("q", "N1", t0, left(2))
	})
}

// TestConformancePINConcurrent: many wrong PINs at once, from two handles on one database,
// cannot check more PINs than the limits allow.
func TestConformancePINConcurrent(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dsn := sqlstoretest.DSN(t, engine)
			var stores []*sqlstore.Store
			for i := 0; i < 2; i++ { // two processes
				db, err := sqlstore.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				box, _ := secret.NewBox(make([]byte, 32))
				stores = append(stores, sqlstore.NewStore(db, box))
			}
			allowed := func(payer string, order func(i int) string) int {
				const n = 24
				var wg sync.WaitGroup
				var checked atomic.Int32
				start := make(chan struct{})
				for i := 0; i < n; i++ {
					wg.Go(func() {
						<-start
						a, err := stores[i%2].BeginPIN(context.Background(), payer, order(i), t0.Add(time.Hour), t0)
						if err != nil {
							t.Error(err)
							return
						}
						if !a.Refused {
							checked.Add(1)
						}
					})
				}
				close(start)
				wg.Wait()
				return int(checked.Load())
			}
			if got := allowed("p1", func(int) string { return "M1" }); got != sqlstore.MaxOrderPINFailures {
				t.Errorf("one order: %d PINs checked, want %d", got, sqlstore.MaxOrderPINFailures)
			}
			if got := allowed("p2", func(i int) string { return fmt.Sprint("M", i) }); got != sqlstore.MaxPINFailures {
				t.Errorf("many orders: %d PINs checked, want %d", got, sqlstore.MaxPINFailures)
			}
			// Attempts racing right PINs that clear the counts: every attempt is answered.
			var wg sync.WaitGroup
			for i := 0; i < 40; i++ {
				wg.Go(func() {
					var err error
					if i%2 == 0 {
						_, err = stores[i%4/2].BeginPIN(context.Background(), "p3", "M3", t0.Add(time.Hour), t0)
					} else {
						err = stores[i%4/2].PINSucceeded(context.Background(), "p3", "M3")
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		})
	}
}
