// Package cash is the simulator of the cash channel (medpay.CashChannel): the payer's wallet that
// pays the cash part of an order. Every payer has a wallet, created on first use with 10 000 元
// and the PIN 123456 (docs/api/sandbox.md (沙箱辅助接口)). Charges and refunds are idempotent on their serial and kept
// in the tables cash_wallets, cash_charges and cash_refunds, so the simulator survives restarts
// and several processes can share it through one database.
package cash

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// Defaults of a new wallet (docs/api/sandbox.md (沙箱辅助接口)).
const (
	DefaultBalance int64 = 1_000_000 // fen: 10 000 元
	DefaultPIN           = "123456"
)

// Simulator is the cash channel simulator. It is safe for concurrent use.
type Simulator struct {
	db  *sqlstore.DB
	now func() time.Time
}

var _ medpay.CashChannel = (*Simulator)(nil)

// New returns a simulator keeping its wallets in db. now is the clock (time.Now when nil).
func New(db *sqlstore.DB, now func() time.Time) *Simulator {
	if now == nil {
		now = time.Now
	}
	return &Simulator{db: db, now: now}
}

func pinHash(payer, pin string) string {
	sum := sha256.Sum256([]byte("medpay-cash-pin\x00" + payer + "\x00" + pin))
	return hex.EncodeToString(sum[:])
}

// ensureWallet creates payer's wallet with the defaults if it does not exist.
func (s *Simulator) ensureWallet(ctx context.Context, tx *sql.Tx, payer string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO cash_wallets (payer, balance, pin_hash, declining, created_at, updated_at)
		VALUES ($1, $2, $3, 0, $4, $4) ON CONFLICT (payer) DO NOTHING`,
		payer, DefaultBalance, pinHash(payer, DefaultPIN), now)
	return err
}

func checkPayer(payer string) error {
	if payer == "" {
		return errors.New("cash: empty payer")
	}
	return nil
}

// VerifyPIN checks payer's payment PIN: medpay.ErrWrongPIN when it does not match. A payer
// without a wallet yet has the default PIN.
func (s *Simulator) VerifyPIN(ctx context.Context, payer, pin string) error {
	if err := checkPayer(payer); err != nil {
		return err
	}
	return checkPIN(ctx, s.db.SQL(), payer, pin)
}

// rowQuerier is a transaction or the pool.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkPIN compares pin with payer's wallet PIN read through q, the default PIN for a payer
// without a wallet yet: medpay.ErrWrongPIN when it does not match.
func checkPIN(ctx context.Context, q rowQuerier, payer, pin string) error {
	stored := pinHash(payer, DefaultPIN)
	err := q.QueryRowContext(ctx, `SELECT pin_hash FROM cash_wallets WHERE payer = $1`, payer).Scan(&stored)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("cash: verify PIN: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(pinHash(payer, pin))) != 1 {
		return medpay.ErrWrongPIN
	}
	return nil
}

// Charge takes amount fen from payer's wallet, once per serial: a repeated call with the same
// serial returns the first receipt without charging again, even when the calls race. It answers
// medpay.ErrDeclined when the balance is short or the wallet is set declining (nothing is
// recorded then, so the serial may be tried again), an error wrapping medpay.ErrConflict when
// the serial was used for another payer or amount, and an error wrapping medpay.ErrOutcomeUnknown
// when the database failed in a way that leaves the outcome open (find out with QueryCharge).
func (s *Simulator) Charge(ctx context.Context, serial, payer string, amount int64) (*medpay.CashReceipt, error) {
	if serial == "" {
		return nil, errors.New("cash: empty charge serial")
	}
	if err := checkPayer(payer); err != nil {
		return nil, err
	}
	if amount <= 0 {
		return nil, fmt.Errorf("cash: charge amount %d fen is not positive", amount)
	}
	var rc *medpay.CashReceipt
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		rc = nil
		now := sqlstore.MS(s.now())
		// Claim the serial first: a concurrent charge with the same serial waits here for the
		// first one's transaction and then finds its row.
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO cash_charges (serial, payer, amount, refunded, created_at)
			VALUES ($1, $2, $3, 0, $4) ON CONFLICT (serial) DO NOTHING RETURNING id`,
			serial, payer, amount, now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			var gotPayer string
			var gotAmount int64
			if err := tx.QueryRowContext(ctx, `SELECT id, payer, amount FROM cash_charges WHERE serial = $1`, serial).
				Scan(&id, &gotPayer, &gotAmount); err != nil {
				return err
			}
			if gotPayer != payer || gotAmount != amount {
				return fmt.Errorf("cash: charge serial %q already used for another payer or amount: %w", serial, medpay.ErrConflict)
			}
			rc = chargeReceipt(id, serial, amount)
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.ensureWallet(ctx, tx, payer, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE cash_wallets SET balance = balance - $2, updated_at = $3
			WHERE payer = $1 AND declining = 0 AND balance >= $2`, payer, amount, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return medpay.ErrDeclined // rolls the claim back
		}
		rc = chargeReceipt(id, serial, amount)
		return nil
	})
	if err != nil {
		return nil, outcome("charge", serial, err)
	}
	return rc, nil
}

// QueryCharge returns the charge made under serial, or medpay.ErrNotFound.
func (s *Simulator) QueryCharge(ctx context.Context, serial string) (*medpay.CashReceipt, error) {
	var id, amount int64
	err := s.db.SQL().QueryRowContext(ctx, `SELECT id, amount FROM cash_charges WHERE serial = $1`, serial).Scan(&id, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cash: query charge: %w", err)
	}
	return chargeReceipt(id, serial, amount), nil
}

// Refund gives amount fen of the charge chargeSerial back to its payer, once per serial. The
// refunds of one charge never exceed it in total: a refund that would is refused with a
// *medpay.Error of code medpay.ErrRefundExceeds. An unknown charge is an error wrapping
// medpay.ErrNotFound; a serial reused with other content wraps medpay.ErrConflict.
func (s *Simulator) Refund(ctx context.Context, serial, chargeSerial string, amount int64) (*medpay.CashReceipt, error) {
	if serial == "" || chargeSerial == "" {
		return nil, errors.New("cash: empty refund or charge serial")
	}
	if amount <= 0 {
		return nil, fmt.Errorf("cash: refund amount %d fen is not positive", amount)
	}
	var rc *medpay.CashReceipt
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		rc = nil
		now := sqlstore.MS(s.now())
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO cash_refunds (serial, charge_serial, amount, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (serial) DO NOTHING RETURNING id`,
			serial, chargeSerial, amount, now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			var gotCharge string
			var gotAmount int64
			if err := tx.QueryRowContext(ctx, `SELECT id, charge_serial, amount FROM cash_refunds WHERE serial = $1`, serial).
				Scan(&id, &gotCharge, &gotAmount); err != nil {
				return err
			}
			if gotCharge != chargeSerial || gotAmount != amount {
				return fmt.Errorf("cash: refund serial %q already used for another charge or amount: %w", serial, medpay.ErrConflict)
			}
			rc = refundReceipt(id, serial, amount)
			return nil
		}
		if err != nil {
			return err
		}
		// The conditional update locks the charge, so concurrent refunds of it add up in turn.
		var payer string
		var charged, refunded int64
		err = tx.QueryRowContext(ctx, `UPDATE cash_charges SET refunded = refunded + $2
			WHERE serial = $1 AND refunded + $2 <= amount RETURNING payer, amount, refunded`,
			chargeSerial, amount).Scan(&payer, &charged, &refunded)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, `SELECT amount, refunded FROM cash_charges WHERE serial = $1`, chargeSerial).
				Scan(&charged, &refunded)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("cash: refund of charge %q: %w", chargeSerial, medpay.ErrNotFound)
			}
			if err != nil {
				return err
			}
			return medpay.Errorf(medpay.ErrRefundExceeds, "refund of %d fen exceeds the %d fen left of cash charge %s",
				amount, charged-refunded, chargeSerial)
		}
		if err != nil {
			return err
		}
		if refunded > charged { // second check of the invariant the UPDATE and the CHECK enforce
			return fmt.Errorf("cash: charge %q refunded %d of %d fen", chargeSerial, refunded, charged)
		}
		if err := s.ensureWallet(ctx, tx, payer, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cash_wallets SET balance = balance + $2, updated_at = $3 WHERE payer = $1`,
			payer, amount, now); err != nil {
			return err
		}
		rc = refundReceipt(id, serial, amount)
		return nil
	})
	if err != nil {
		return nil, outcome("refund", serial, err)
	}
	return rc, nil
}

// QueryRefund returns the refund made under serial, or medpay.ErrNotFound.
func (s *Simulator) QueryRefund(ctx context.Context, serial string) (*medpay.CashReceipt, error) {
	var id, amount int64
	err := s.db.SQL().QueryRowContext(ctx, `SELECT id, amount FROM cash_refunds WHERE serial = $1`, serial).Scan(&id, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cash: query refund: %w", err)
	}
	return refundReceipt(id, serial, amount), nil
}

// SetDeclining makes payer's wallet decline every charge (the cash_declined sandbox scenario),
// or accept them again.
func (s *Simulator) SetDeclining(ctx context.Context, payer string, declining bool) error {
	v := 0
	if declining {
		v = 1
	}
	return s.update(ctx, payer, `UPDATE cash_wallets SET declining = $2, updated_at = $3 WHERE payer = $1`, v)
}

// SetBalance sets payer's balance in fen (tests and sandbox scenarios).
func (s *Simulator) SetBalance(ctx context.Context, payer string, fen int64) error {
	if fen < 0 {
		return fmt.Errorf("cash: negative balance %d", fen)
	}
	return s.update(ctx, payer, `UPDATE cash_wallets SET balance = $2, updated_at = $3 WHERE payer = $1`, fen)
}

// SetPIN changes payer's payment PIN (tests and sandbox scenarios).
func (s *Simulator) SetPIN(ctx context.Context, payer, pin string) error {
	return s.update(ctx, payer, `UPDATE cash_wallets SET pin_hash = $2, updated_at = $3 WHERE payer = $1`, pinHash(payer, pin))
}

func (s *Simulator) update(ctx context.Context, payer, query string, arg any) error {
	if err := checkPayer(payer); err != nil {
		return err
	}
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		now := sqlstore.MS(s.now())
		if err := s.ensureWallet(ctx, tx, payer, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, query, payer, arg, now)
		return err
	})
}

// Balance returns payer's balance in fen (the default for a payer without a wallet yet).
func (s *Simulator) Balance(ctx context.Context, payer string) (int64, error) {
	var fen int64
	err := s.db.SQL().QueryRowContext(ctx, `SELECT balance FROM cash_wallets WHERE payer = $1`, payer).Scan(&fen)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultBalance, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cash: balance: %w", err)
	}
	return fen, nil
}

func chargeReceipt(id int64, serial string, amount int64) *medpay.CashReceipt {
	return &medpay.CashReceipt{ID: fmt.Sprintf("CH%014d", id), Serial: serial, Amount: amount}
}

func refundReceipt(id int64, serial string, amount int64) *medpay.CashReceipt {
	return &medpay.CashReceipt{ID: fmt.Sprintf("RF%014d", id), Serial: serial, Amount: amount}
}

// outcome passes business answers through and marks anything else (a database failure, a
// cancelled context) as medpay.ErrOutcomeUnknown: the transaction may or may not have committed,
// so the caller must query before deciding.
func outcome(op, serial string, err error) error {
	var merr *medpay.Error
	switch {
	case errors.Is(err, medpay.ErrDeclined), errors.Is(err, medpay.ErrConflict),
		errors.Is(err, medpay.ErrNotFound), errors.As(err, &merr):
		return err
	}
	return fmt.Errorf("cash %s %q: %w: %v", op, serial, medpay.ErrOutcomeUnknown, err)
}
