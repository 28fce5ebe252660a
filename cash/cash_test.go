package cash_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// forEachEngine opens a fresh database of every engine and runs fn with a simulator on it.
func forEachEngine(t *testing.T, fn func(t *testing.T, s *cash.Simulator, db *sqlstore.DB)) {
	t.Helper()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db := sqlstoretest.Open(t, engine)
			now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
			fn(t, cash.New(db, func() time.Time { return now }), db)
		})
	}
}

func balance(t *testing.T, s *cash.Simulator, payer string) int64 {
	t.Helper()
	b, err := s.Balance(context.Background(), payer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, s *cash.Simulator, db *sqlstore.DB) {
		ctx := context.Background()
		if b := balance(t, s, "p1"); b != 1_000_000 {
			t.Fatalf("default balance = %d, want 1000000", b)
		}
		if err := s.VerifyPIN(ctx, "p1", "123456"); err != nil {
			t.Fatalf("default PIN: %v", err)
		}
		if err := s.VerifyPIN(ctx, "p1", "654321"); !errors.Is(err, medpay.ErrWrongPIN) {
			t.Fatalf("wrong PIN: %v", err)
		}
		// After the wallet exists (a charge creates it) the PIN is unchanged.
		if _, err := s.Charge(ctx, "c1", "p1", 100); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyPIN(ctx, "p1", "123456"); err != nil {
			t.Fatalf("PIN after charge: %v", err)
		}
		if err := s.VerifyPIN(ctx, "p1", ""); !errors.Is(err, medpay.ErrWrongPIN) {
			t.Fatalf("empty PIN: %v", err)
		}
		if err := s.SetPIN(ctx, "p1", "000000"); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyPIN(ctx, "p1", "123456"); !errors.Is(err, medpay.ErrWrongPIN) {
			t.Fatalf("old PIN after SetPIN: %v", err)
		}
		if err := s.VerifyPIN(ctx, "p1", "000000"); err != nil {
			t.Fatalf("new PIN: %v", err)
		}
		// PINs are per payer.
		if err := s.VerifyPIN(ctx, "p2", "123456"); err != nil {
			t.Fatalf("other payer: %v", err)
		}
	})
}

func TestChargeIdempotent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, s *cash.Simulator, db *sqlstore.DB) {
		ctx := context.Background()
		if _, err := s.QueryCharge(ctx, "c1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("query before charge: %v", err)
		}
		r1, err := s.Charge(ctx, "c1", "p1", 1234)
		if err != nil {
			t.Fatal(err)
		}
		if r1.Serial != "c1" || r1.Amount != 1234 || r1.ID == "" {
			t.Fatalf("receipt = %+v", r1)
		}
		r2, err := s.Charge(ctx, "c1", "p1", 1234)
		if err != nil {
			t.Fatal(err)
		}
		if *r2 != *r1 {
			t.Fatalf("second receipt %+v, first %+v", r2, r1)
		}
		if b := balance(t, s, "p1"); b != 1_000_000-1234 {
			t.Fatalf("balance = %d after one charge of 1234", b)
		}
		q, err := s.QueryCharge(ctx, "c1")
		if err != nil || *q != *r1 {
			t.Fatalf("query = %+v, %v", q, err)
		}
		// The same serial with other content is a conflict, not a charge.
		if _, err := s.Charge(ctx, "c1", "p1", 999); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("other amount: %v", err)
		}
		if _, err := s.Charge(ctx, "c1", "p2", 1234); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("other payer: %v", err)
		}
		if b := balance(t, s, "p2"); b != 1_000_000 {
			t.Fatalf("p2 balance = %d", b)
		}
		for _, amount := range []int64{0, -1} {
			if _, err := s.Charge(ctx, "c9", "p1", amount); err == nil {
				t.Fatalf("charge of %d accepted", amount)
			}
		}
		r3, err := s.Charge(ctx, "c2", "p1", 1)
		if err != nil {
			t.Fatal(err)
		}
		if r3.ID == r1.ID {
			t.Fatalf("two charges share the ID %s", r1.ID)
		}
	})
}

func TestConcurrentChargesOfOneSerial(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, s *cash.Simulator, db *sqlstore.DB) {
		ctx := context.Background()
		const n = 16
		for round := 0; round < 5; round++ {
			serial := fmt.Sprintf("race-%d", round)
			var wg sync.WaitGroup
			ids := make([]string, n)
			errs := make([]error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := s.Charge(ctx, serial, "p1", 500)
					errs[i] = err
					if err == nil {
						ids[i] = r.ID
					}
				}()
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("charge %d: %v", i, errs[i])
				}
				if ids[i] != ids[0] {
					t.Fatalf("receipt IDs differ: %s and %s", ids[i], ids[0])
				}
			}
		}
		if b := balance(t, s, "p1"); b != 1_000_000-5*500 {
			t.Fatalf("balance = %d after 5 distinct serials of 500", b)
		}
	})
}

func TestConcurrentChargesNeverOverdraw(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, s *cash.Simulator, db *sqlstore.DB) {
		ctx := context.Background()
		if err := s.SetBalance(ctx, "p1", 1000); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, declined := 0, 0
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Charge(ctx, fmt.Sprintf("c%d", i), "p1", 100)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, medpay.ErrDeclined):
					declined++
				default:
					t.Errorf("charge: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 10 || declined != 10 {
			t.Fatalf("ok %d declined %d, want 10 and 10", ok, declined)
		}
		if b := balance(t, s, "p1"); b != 0 {
			t.Fatalf("balance = %d", b)
		}
	})
}

func TestDecline(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, s *cash.Simulator, db *sqlstore.DB) {
		ctx := context.Background()
		// Short balance.
		if err := s.SetBalance(ctx, "p1", 99); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Charge(ctx, "c1", "p1", 100); !errors.Is(err, medpay.ErrDeclined) {
			t.Fatalf("short balance: %v", err)
		}
		if _, err := s.QueryCharge(ctx, "c1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("declined charge recorded: %v", err)
		}
		if b := balance(t, s, "p1"); b != 99 {
			t.Fatalf("balance = %d", b)
		}
		// The exact balance is enough; a declined serial can be tried again.
		if err := s.SetBalance(ctx, "p1", 100); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Charge(ctx, "c1", "p1", 100); err != nil {
			t.Fatalf("exact balance: %v", err)
		}
		if b := balance(t, s, "p1"); b != 0 {
			t.Fatalf("balance = %d", b)
		}

		// A declining wallet (cash_declined scenario), even with money.
		if err := s.SetDeclining(ctx, "p2", true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Charge(ctx, "c2", "p2", 1); !errors.Is(err, medpay.ErrDeclined) {
			t.Fatalf("declining wallet: %v", err)
		}
		if b := balance(t, s, "p2"); b != 1_000_000 {
			t.Fatalf("declining wallet balance = %d", b)
		}
		if err := s.SetDeclining(ctx, "p2", false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Charge(ctx, "c2", "p2", 1); err != nil {
			t.Fatalf("after declining off: %v", err)
		}
		// A charge made before declining still answers its retry.
		if err := s.SetDeclining(ctx, "p2", true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Charge(ctx, "c2", "p2", 1); err != nil {
			t.Fatalf("retry of an earlier charge: %v", err)
		}
	})
}

func TestRefund(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, s *cash.Simulator, db *sqlstore.DB) {
		ctx := context.Background()
		if _, err := s.Refund(ctx, "r0", "nope", 1); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("refund of unknown charge: %v", err)
		}
		if _, err := s.Charge(ctx, "c1", "p1", 1000); err != nil {
			t.Fatal(err)
		}
		if _, err := s.QueryRefund(ctx, "r1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("query before refund: %v", err)
		}
		r1, err := s.Refund(ctx, "r1", "c1", 600)
		if err != nil {
			t.Fatal(err)
		}
		if r1.Serial != "r1" || r1.Amount != 600 || r1.ID == "" {
			t.Fatalf("receipt = %+v", r1)
		}
		again, err := s.Refund(ctx, "r1", "c1", 600)
		if err != nil || *again != *r1 {
			t.Fatalf("repeat = %+v, %v", again, err)
		}
		if q, err := s.QueryRefund(ctx, "r1"); err != nil || *q != *r1 {
			t.Fatalf("query = %+v, %v", q, err)
		}
		if b := balance(t, s, "p1"); b != 1_000_000-1000+600 {
			t.Fatalf("balance = %d", b)
		}
		// 400 left: 401 exceeds.
		_, err = s.Refund(ctx, "r2", "c1", 401)
		if medpay.ErrorCode(err) != medpay.ErrRefundExceeds {
			t.Fatalf("over-refund: %v (code %s)", err, medpay.ErrorCode(err))
		}
		if _, err := s.QueryRefund(ctx, "r2"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("refused refund recorded: %v", err)
		}
		if _, err := s.Refund(ctx, "r2", "c1", 400); err != nil {
			t.Fatalf("refund of the rest: %v", err)
		}
		if _, err := s.Refund(ctx, "r3", "c1", 1); medpay.ErrorCode(err) != medpay.ErrRefundExceeds {
			t.Fatalf("refund of a fully refunded charge: %v", err)
		}
		if _, err := s.Refund(ctx, "r1", "c1", 5); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("serial reused with another amount: %v", err)
		}
		if b := balance(t, s, "p1"); b != 1_000_000 {
			t.Fatalf("balance after full refund = %d", b)
		}
		if _, err := s.Refund(ctx, "r9", "c1", 0); err == nil {
			t.Fatal("refund of 0 accepted")
		}
	})
}

func TestConcurrentRefundsNeverExceed(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, s *cash.Simulator, db *sqlstore.DB) {
		ctx := context.Background()
		if _, err := s.Charge(ctx, "c1", "p1", 1000); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Every serial twice: duplicates must not count again.
				_, err := s.Refund(ctx, fmt.Sprintf("r%d", i/2), "c1", 150)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
				case medpay.ErrorCode(err) == medpay.ErrRefundExceeds:
				default:
					t.Errorf("refund: %v", err)
				}
			}()
		}
		wg.Wait()
		var refunded int64
		for i := 0; i < 8; i++ {
			if r, err := s.QueryRefund(ctx, fmt.Sprintf("r%d", i)); err == nil {
				refunded += r.Amount
			}
		}
		if refunded > 1000 || refunded != 6*150 {
			t.Fatalf("refunded %d of a 1000 charge with 8 refunds of 150 (6 fit)", refunded)
		}
		if b := balance(t, s, "p1"); b != 1_000_000-1000+refunded {
			t.Fatalf("balance = %d, refunded %d", b, refunded)
		}
	})
}

func TestCancelledContextIsOutcomeUnknown(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, s *cash.Simulator, db *sqlstore.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Charge(ctx, "c1", "p1", 1)
		if !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("charge with a cancelled context: %v", err)
		}
	})
}
