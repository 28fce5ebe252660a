package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/medpay/medpay"
)

// Bind stores b as the card bound to (b.AppID, b.OpenID), replacing an earlier one.
func (s *Store) Bind(ctx context.Context, b *medpay.Binding, now time.Time) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bindings (appid, openid, psn_no, name, id_no, card_no, city_id, insutype, created_at, pay_auth_no)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (appid, openid) DO UPDATE SET psn_no = excluded.psn_no, name = excluded.name,
			id_no = excluded.id_no, card_no = excluded.card_no, city_id = excluded.city_id,
			insutype = excluded.insutype, created_at = excluded.created_at, pay_auth_no = excluded.pay_auth_no`,
			b.AppID, b.OpenID, b.PsnNo, b.Name, b.IDNo, b.CardNo, b.CityID, b.Insutype, ms(now), s.sealOptional(b.PayAuthNo))
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
	var b medpay.Binding
	var payAuth string
	err := s.db.sql.QueryRowContext(ctx, `SELECT appid, openid, psn_no, name, id_no, card_no, city_id, insutype, pay_auth_no
		FROM bindings WHERE appid = $1 AND openid = $2`, appid, openid).Scan(
		&b.AppID, &b.OpenID, &b.PsnNo, &b.Name, &b.IDNo, &b.CardNo, &b.CityID, &b.Insutype, &payAuth)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if b.PayAuthNo, err = s.openOptional(payAuth); err != nil {
		return nil, err
	}
	return &b, nil
}

// PIN lockout policy.
const (
	MaxPINFailures = 5
	PINBlock       = 15 * time.Minute
)

// PINBlockedUntil returns when payer's confirmations unblock (zero when not blocked at now).
func (s *Store) PINBlockedUntil(ctx context.Context, payer string, now time.Time) (time.Time, error) {
	var until int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT blocked_until FROM pin_failures WHERE payer = $1`, payer).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	if until <= ms(now) {
		return time.Time{}, nil
	}
	return fromMS(until), nil
}

// RecordPIN records a PIN attempt: a success clears the count; the MaxPINFailures-th failure in a
// row blocks the payer for PINBlock. It returns the failures so far and the block's end.
func (s *Store) RecordPIN(ctx context.Context, payer string, ok bool, now time.Time) (failures int, blockedUntil time.Time, err error) {
	err = s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if ok {
			_, err := tx.ExecContext(ctx, `DELETE FROM pin_failures WHERE payer = $1`, payer)
			failures, blockedUntil = 0, time.Time{}
			return err
		}
		var until int64
		err := tx.QueryRowContext(ctx, `INSERT INTO pin_failures (payer, failures, blocked_until, updated_at) VALUES ($1, 1, 0, $2)
			ON CONFLICT (payer) DO UPDATE SET failures = pin_failures.failures + 1, updated_at = excluded.updated_at
			RETURNING failures, blocked_until`, payer, ms(now)).Scan(&failures, &until)
		if err != nil {
			return err
		}
		if until <= ms(now) {
			until = 0 // a block already served is not reported
		}
		if failures >= MaxPINFailures {
			until = ms(now.Add(PINBlock))
			// The count starts again once the block is served.
			_, err = tx.ExecContext(ctx, `UPDATE pin_failures SET failures = 0, blocked_until = $1 WHERE payer = $2`, until, payer)
		}
		blockedUntil = fromMS(until)
		return err
	})
	return failures, blockedUntil, err
}
