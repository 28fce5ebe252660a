package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// TestConformancePlaceOrder: PlaceOrder inserts a new number, and for a taken one answers the
// order holding it, as stored, and inserts nothing.
func TestConformancePlaceOrder(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m, other := b.merchant(t), b.merchant(t)
		first := b.newOrder(m, "P-1")
		if prev, err := b.store.PlaceOrder(b.ctx, first); err != nil || prev != nil {
			t.Fatalf("new number: prev %v, err %v", prev, err)
		}
		if first.ID == 0 || first.Version != 1 || !first.UpdatedAt.Equal(first.CreatedAt) {
			t.Fatalf("after place: id %d version %d", first.ID, first.Version)
		}
		stored, err := b.store.OrderByTradeNo(b.ctx, m.ID, "P-1")
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "placed", first, stored)

		again := b.newOrder(m, "P-1")
		prev, err := b.store.PlaceOrder(b.ctx, again)
		if err != nil || prev == nil {
			t.Fatalf("taken number: prev %v, err %v", prev, err)
		}
		mustDiff(t, "the order holding the number", stored, prev)
		if again.ID != 0 {
			t.Errorf("a refused order got id %d", again.ID)
		}
		if n := b.count(t, `SELECT COUNT(*) FROM orders`); n != 1 {
			t.Errorf("orders = %d, want 1", n)
		}
		// Another merchant's number space.
		if prev, err := b.store.PlaceOrder(b.ctx, b.newOrder(other, "P-1")); err != nil || prev != nil {
			t.Fatalf("same number, other merchant: prev %v, err %v", prev, err)
		}
		// A bad split is refused before anything is written.
		bad := b.newOrder(m, "P-bad")
		bad.CashFee = 400
		if _, err := b.store.PlaceOrder(b.ctx, bad); err == nil {
			t.Error("PlaceOrder accepted legs exceeding the total")
		}
		// A taken med_trans_id is still a conflict, not an answer.
		dupID := b.newOrder(m, "P-2")
		dupID.MedTransID = first.MedTransID
		if _, err := b.store.PlaceOrder(b.ctx, dupID); !errors.Is(err, medpay.ErrConflict) {
			t.Errorf("taken med_trans_id: %v, want ErrConflict", err)
		}
		if n := b.count(t, `SELECT COUNT(*) FROM orders`); n != 2 {
			t.Errorf("orders = %d, want 2", n)
		}
	})
}

// TestConformancePlaceOrderRace: callers racing to place one number, on two Stores as two
// processes have, end with one order; each loser is answered that order.
func TestConformancePlaceOrderRace(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		a := setup(t, db)
		stores := []*sqlstore.Store{a.store, setup(t, db).store}
		m := a.merchant(t)
		const n = 12
		orders := make([]*medpay.Order, n)
		prevs := make([]*medpay.Order, n)
		var wg sync.WaitGroup
		for i := range n {
			orders[i] = a.newOrder(m, "RACED")
			wg.Go(func() {
				var err error
				if prevs[i], err = stores[i%2].PlaceOrder(a.ctx, orders[i]); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		var winner *medpay.Order
		for i := range n {
			if prevs[i] == nil {
				if winner != nil {
					t.Fatalf("two callers placed the number: %s and %s", winner.MedTransID, orders[i].MedTransID)
				}
				winner = orders[i]
			}
		}
		if winner == nil {
			t.Fatal("nobody placed the number")
		}
		for i := range n {
			if prevs[i] != nil && prevs[i].MedTransID != winner.MedTransID {
				t.Errorf("caller %d was answered %s, the winner is %s", i, prevs[i].MedTransID, winner.MedTransID)
			}
		}
		if c := a.count(t, `SELECT COUNT(*) FROM orders`); c != 1 {
			t.Errorf("orders = %d, want 1", c)
		}
	})
}

// TestConformanceNonceClaimInWrite: a call's NonceClaim is made inside PlaceOrder's and
// CreateRefund's transaction, or on its own by ClaimPending; a replayed pair rolls the write back
// with ErrReplay.
func TestConformanceNonceClaimInWrite(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		call := func(nonce string) (context.Context, *sqlstore.NonceClaim) {
			c := &sqlstore.NonceClaim{MchID: m.MchID, Nonce: nonce, At: t0}
			return sqlstore.WithNonceClaim(b.ctx, c), c
		}
		orders := func() int { return b.count(t, `SELECT COUNT(*) FROM orders`) }

		ctx, c := call("n1")
		if _, err := b.store.PlaceOrder(ctx, b.newOrder(m, "N-1")); err != nil {
			t.Fatal(err)
		}
		if !c.Made() {
			t.Error("the claim was not made by PlaceOrder")
		}
		if fresh, _ := b.store.ClaimNonce(b.ctx, m.MchID, "n1", t0); fresh {
			t.Error("the pair was not recorded")
		}
		// The replay: nothing of its order is written.
		ctx, c = call("n1")
		if _, err := b.store.PlaceOrder(ctx, b.newOrder(m, "N-2")); !errors.Is(err, sqlstore.ErrReplay) {
			t.Fatalf("replayed: %v, want ErrReplay", err)
		}
		if c.Made() || orders() != 1 {
			t.Errorf("replayed: made %v, %d orders, want 1", c.Made(), orders())
		}
		// A repeated number with a fresh nonce: the earlier order, and the claim made with it.
		ctx, c = call("n2")
		if prev, err := b.store.PlaceOrder(ctx, b.newOrder(m, "N-1")); err != nil || prev == nil || !c.Made() {
			t.Fatalf("repeated number: prev %v, err %v, made %v", prev, err, c.Made())
		}
		// A write that fails leaves the claim to be made.
		ctx, c = call("n3")
		bad := b.newOrder(m, "N-3")
		bad.MedTransID = "MT-taken"
		taken := b.newOrder(m, "N-4")
		taken.MedTransID = "MT-taken"
		if _, err := b.store.PlaceOrder(b.ctx, taken); err != nil { // no claim in this context
			t.Fatal(err)
		}
		if _, err := b.store.PlaceOrder(ctx, bad); !errors.Is(err, medpay.ErrConflict) || c.Made() {
			t.Fatalf("failed write: %v, made %v", err, c.Made())
		}

		// ClaimPending: none, fresh, made already, replayed.
		if err := b.store.ClaimPending(b.ctx); err != nil {
			t.Errorf("without a claim: %v", err)
		}
		if err := b.store.ClaimPending(ctx); err != nil || !c.Made() {
			t.Errorf("fresh: %v, made %v", err, c.Made())
		}
		if err := b.store.ClaimPending(ctx); err != nil {
			t.Errorf("made already: %v", err)
		}
		ctx, c = call("n3")
		if err := b.store.ClaimPending(ctx); !errors.Is(err, sqlstore.ErrReplay) || c.Made() {
			t.Errorf("replayed: %v, made %v", err, c.Made())
		}
		// Made already: later writes do not claim again.
		ctx, c = call("n4")
		if err := b.store.ClaimPending(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.PlaceOrder(ctx, b.newOrder(m, "N-5")); err != nil {
			t.Fatalf("after ClaimPending: %v", err)
		}

		// CreateRefund makes it too.
		o, _ := b.store.OrderByTradeNo(b.ctx, m.ID, "N-1")
		build := func(no string) func(*medpay.Order, []*medpay.Refund) (*medpay.Refund, error) {
			return func(o *medpay.Order, _ []*medpay.Refund) (*medpay.Refund, error) {
				return newRefund(o, no, 300, 0), nil
			}
		}
		ctx, c = call("r1")
		if _, err := b.store.CreateRefund(ctx, o.ID, build("R1")); err != nil || !c.Made() {
			t.Fatalf("refund: %v, made %v", err, c.Made())
		}
		ctx, c = call("r1")
		if _, err := b.store.CreateRefund(ctx, o.ID, build("R2")); !errors.Is(err, sqlstore.ErrReplay) || c.Made() {
			t.Fatalf("replayed refund: %v, made %v", err, c.Made())
		}
		if n := b.count(t, `SELECT COUNT(*) FROM refunds`); n != 1 {
			t.Errorf("refunds = %d, want 1", n)
		}
	})
}

// TestConformanceNonceClaimRace: one pair claimed by racing orders of two Stores: the primary
// key decides, one order is placed, the others are refused as replays with nothing written.
func TestConformanceNonceClaimRace(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		a := setup(t, db)
		stores := []*sqlstore.Store{a.store, setup(t, db).store}
		m := a.merchant(t)
		const n = 12
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			o := a.newOrder(m, fmt.Sprintf("NR-%d", i))
			ctx := sqlstore.WithNonceClaim(a.ctx, &sqlstore.NonceClaim{MchID: m.MchID, Nonce: "raced", At: t0.Add(time.Duration(i))})
			wg.Go(func() { _, errs[i] = stores[i%2].PlaceOrder(ctx, o) })
		}
		wg.Wait()
		placed := 0
		for _, err := range errs {
			switch {
			case err == nil:
				placed++
			case !errors.Is(err, sqlstore.ErrReplay):
				t.Error(err)
			}
		}
		if placed != 1 {
			t.Errorf("%d of %d racing orders with one nonce were placed, want 1", placed, n)
		}
		if c := a.count(t, `SELECT COUNT(*) FROM orders`); c != 1 {
			t.Errorf("orders = %d, want 1", c)
		}
	})
}
