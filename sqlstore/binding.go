package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/medpay/medpay"
)

// Bind stores b as the card bound to (b.AppID, b.OpenID), replacing an earlier one.
func (s *Store) Bind(ctx context.Context, b *medpay.Binding, now time.Time) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bindings (appid, openid, psn_no, name, id_no, card_no, city_id, insutype, created_at, id_hash, pay_auth_no)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (appid, openid) DO UPDATE SET psn_no = excluded.psn_no, name = excluded.name,
			id_no = excluded.id_no, card_no = excluded.card_no, city_id = excluded.city_id,
			insutype = excluded.insutype, created_at = excluded.created_at, id_hash = excluded.id_hash,
			pay_auth_no = excluded.pay_auth_no`,
			b.AppID, b.OpenID, b.PsnNo, s.seal(b.Name), s.seal(b.IDNo), s.seal(b.CardNo), b.CityID, b.Insutype, ms(now),
			s.idHash(b.IDNo), s.sealOptional(b.PayAuthNo))
		return err
	})
}

// Unbind removes the card bound to (appid, openid); unbinding nothing succeeds.
func (s *Store) Unbind(ctx context.Context, appid, openid string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM bindings WHERE appid = $1 AND openid = $2`, appid, openid)
		return err
	})
}

// BindingFor returns the card bound to (appid, openid), or medpay.ErrNotFound.
func (s *Store) BindingFor(ctx context.Context, appid, openid string) (*medpay.Binding, error) {
	return s.scanBinding(s.db.sql.QueryRowContext(ctx, `SELECT `+bindingColumns+`
		FROM bindings WHERE appid = $1 AND openid = $2`, appid, openid))
}

const bindingColumns = `appid, openid, psn_no, name, id_no, card_no, city_id, insutype, pay_auth_no`

// scanBinding reads a binding row, opening its sealed name, ID and card numbers.
func (s *Store) scanBinding(row scanner) (*medpay.Binding, error) {
	var b medpay.Binding
	var payAuth string
	err := row.Scan(&b.AppID, &b.OpenID, &b.PsnNo, &b.Name, &b.IDNo, &b.CardNo, &b.CityID, &b.Insutype, &payAuth)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	for _, v := range []*string{&b.Name, &b.IDNo, &b.CardNo} {
		if *v, err = s.open(*v); err != nil {
			return nil, fmt.Errorf("binding of %s/%s: %w", b.AppID, b.OpenID, err)
		}
	}
	if b.PayAuthNo, err = s.openOptional(payAuth); err != nil {
		return nil, fmt.Errorf("binding of %s/%s: %w", b.AppID, b.OpenID, err)
	}
	return &b, nil
}

// PIN lockout policy.
const (
	MaxPINFailures = 5 // wrong PINs in a row that block a payer for PINBlock
	PINBlock       = 15 * time.Minute
	// MaxOrderPINFailures wrong PINs on one order lock that order's PIN confirmation until it
	// expires. It is below MaxPINFailures, so a stranger holding one pay_url cannot block the
	// payer's other orders.
	MaxOrderPINFailures = 3
)

// PINAttempt is the outcome of BeginPIN.
type PINAttempt struct {
	// Refused: a block is in force; the PIN must not be checked.
	Refused bool
	// BlockedUntil is, when Refused, the end of the block in force; otherwise the end of the
	// block this attempt starts should the PIN be wrong (zero when it starts none).
	BlockedUntil time.Time
	// Remaining is the attempts left should this one be wrong.
	Remaining int
}

// pinKey is the row of an order's own count in pin_failures, beside the payers' rows.
func pinKey(medTransID string) string { return "order:" + medTransID }

// BeginPIN counts a PIN attempt of payer on order medTransID before the PIN is checked, in one
// transaction with the check of both blocks: concurrent wrong PINs cannot together exceed the
// limits, because each attempt is counted as a failure before it may be checked. A right PIN
// then clears the counts (PINSucceeded). orderEnd is when the order expires: the end of its own
// block.
func (s *Store) BeginPIN(ctx context.Context, payer, medTransID string, orderEnd, now time.Time) (PINAttempt, error) {
	var a PINAttempt
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = s.BeginPINTx(ctx, tx, payer, medTransID, orderEnd, now)
		return err
	})
	return a, err
}

// BeginPINTx is BeginPIN inside tx, for a caller that counts the attempt in the transaction of
// another change (the order's step before the PIN is checked): the count holds only if tx
// commits.
func (s *Store) BeginPINTx(ctx context.Context, tx *sql.Tx, payer, medTransID string, orderEnd, now time.Time) (PINAttempt, error) {
	if orderEnd.IsZero() {
		orderEnd = now.Add(PINBlock)
	}
	var a PINAttempt
	keys := []struct {
		key   string
		limit int
		end   time.Time
	}{
		{payer, MaxPINFailures, now.Add(PINBlock)},
		{pinKey(medTransID), MaxOrderPINFailures, orderEnd},
	}
	failures := make([]int, len(keys))
	for i, k := range keys {
		// One statement creates or locks the row and reads it: a separate insert and select
		// would let a concurrent right PIN delete the row in between.
		var until int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO pin_failures (payer, failures, blocked_until, updated_at)
			VALUES ($1, 0, 0, $2) ON CONFLICT (payer) DO UPDATE SET updated_at = pin_failures.updated_at
			RETURNING failures, blocked_until`, k.key, ms(now)).Scan(&failures[i], &until); err != nil {
			return PINAttempt{}, err
		}
		if until > ms(now) {
			return PINAttempt{Refused: true, BlockedUntil: fromMS(until)}, nil
		}
	}
	a.Remaining = MaxPINFailures
	for i, k := range keys {
		n, until := failures[i]+1, int64(0)
		if n >= k.limit {
			// The block starts now, should this attempt be wrong; the count starts again
			// once it is served.
			n, until = 0, ms(k.end)
			if a.BlockedUntil.IsZero() || fromMS(until).After(a.BlockedUntil) {
				a.BlockedUntil = fromMS(until)
			}
		}
		a.Remaining = min(a.Remaining, k.limit-failures[i]-1)
		if _, err := tx.ExecContext(ctx, `UPDATE pin_failures SET failures = $1, blocked_until = $2, updated_at = $3
			WHERE payer = $4`, n, until, ms(now), k.key); err != nil {
			return PINAttempt{}, err
		}
	}
	return a, nil
}

// PINSucceeded clears the counts and blocks of payer and of order medTransID after a right PIN.
func (s *Store) PINSucceeded(ctx context.Context, payer, medTransID string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error { return s.PINSucceededTx(ctx, tx, payer, medTransID) })
}

// PINSucceededTx is PINSucceeded inside tx (the transaction that records what the right PIN
// paid).
func (s *Store) PINSucceededTx(ctx context.Context, tx *sql.Tx, payer, medTransID string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM pin_failures WHERE payer IN ($1, $2)`, payer, pinKey(medTransID))
	return err
}
