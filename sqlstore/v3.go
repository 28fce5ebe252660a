package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/secret"
)

// CreateMerchantV3 registers m's APIv3 credentials; a merchant registers once (medpay.ErrConflict).
func (s *Store) CreateMerchantV3(ctx context.Context, m *medpay.MerchantV3) error {
	if len(m.APIv3Key) != apiv3.KeySize {
		return fmt.Errorf("apiv3 key must be %d characters", apiv3.KeySize)
	}
	window := m.RetryWindow
	if window <= 0 {
		window = medpay.DefaultV3RetryWindow
	}
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO merchant_v3 (merchant_id, serial_no, public_key, apiv3_key_enc, retry_window_s, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, m.MerchantID, m.SerialNo, m.PublicKey, s.box.Seal(m.APIv3Key),
			int64(window/time.Second), ms(m.CreatedAt))
		if isUniqueViolation(err) {
			return medpay.ErrConflict
		}
		return err
	})
}

// MerchantV3 returns the APIv3 registration of a merchant, or medpay.ErrNotFound.
func (s *Store) MerchantV3(ctx context.Context, merchantID int64) (*medpay.MerchantV3, error) {
	var m medpay.MerchantV3
	var sealed string
	var window, created int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT merchant_id, serial_no, public_key, apiv3_key_enc, retry_window_s, created_at
		FROM merchant_v3 WHERE merchant_id = $1`, merchantID).Scan(&m.MerchantID, &m.SerialNo, &m.PublicKey, &sealed, &window, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if m.APIv3Key, err = s.box.Open(sealed); err != nil {
		return nil, fmt.Errorf("merchant %d apiv3 key: %w", merchantID, err)
	}
	m.RetryWindow, m.CreatedAt = time.Duration(window)*time.Second, fromMS(created)
	return &m, nil
}

// PlatformKey returns the platform's APIv3 key pair, generating and sealing it the first time;
// processes racing to create it agree on the first one stored.
func (s *Store) PlatformKey(ctx context.Context) (*medpay.PlatformKey, error) {
	if k, err := s.platformKey(ctx); !errors.Is(err, medpay.ErrNotFound) {
		return k, err
	}
	key, err := apiv3.GenerateKey()
	if err != nil {
		return nil, err
	}
	k := &medpay.PlatformKey{KeyID: "PUB_KEY_ID_" + secret.RandomString(32, "0123456789"), PrivateKey: apiv3.EncodePrivateKey(key)}
	err = s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM platform_keys`).Scan(&n); err != nil || n > 0 {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO platform_keys (key_id, private_key_enc, created_at) VALUES ($1, $2, $3)`,
			k.KeyID, s.box.Seal(k.PrivateKey), ms(s.Now()))
		return err
	})
	if err != nil && !isUniqueViolation(err) {
		return nil, err
	}
	return s.platformKey(ctx)
}

func (s *Store) platformKey(ctx context.Context) (*medpay.PlatformKey, error) {
	var k medpay.PlatformKey
	var sealed string
	err := s.db.sql.QueryRowContext(ctx, `SELECT key_id, private_key_enc FROM platform_keys ORDER BY created_at, key_id LIMIT 1`).Scan(&k.KeyID, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if k.PrivateKey, err = s.box.Open(sealed); err != nil {
		return nil, fmt.Errorf("platform key: %w", err)
	}
	return &k, nil
}

// CreatePrepay stores p; the merchant's out_trade_no taken gives medpay.ErrConflict.
func (s *Store) CreatePrepay(ctx context.Context, p *medpay.Prepay) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO v3_prepays (merchant_id, out_trade_no, prepay_id, body, amount, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, p.MerchantID, p.OutTradeNo, p.PrepayID, p.Body, p.Amount, ms(p.CreatedAt)).Scan(&p.ID)
		if isUniqueViolation(err) {
			return medpay.ErrConflict
		}
		return err
	})
}

// PrepayByOutTradeNo returns a merchant's prepay, or medpay.ErrNotFound.
func (s *Store) PrepayByOutTradeNo(ctx context.Context, merchantID int64, outTradeNo string) (*medpay.Prepay, error) {
	return s.prepayWhere(ctx, `merchant_id = $1 AND out_trade_no = $2`, merchantID, outTradeNo)
}

// PrepayByID returns a merchant's prepay by prepay_id, or medpay.ErrNotFound.
func (s *Store) PrepayByID(ctx context.Context, merchantID int64, prepayID string) (*medpay.Prepay, error) {
	return s.prepayWhere(ctx, `merchant_id = $1 AND prepay_id = $2`, merchantID, prepayID)
}

// ClaimPrepay ties a prepay to the 医保 order mixTradeNo; a prepay already tied to another order
// gives medpay.ErrConflict.
func (s *Store) ClaimPrepay(ctx context.Context, id int64, mixTradeNo string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		return swapped(tx.ExecContext(ctx, `UPDATE v3_prepays SET mix_trade_no = $1 WHERE id = $2 AND (mix_trade_no = '' OR mix_trade_no = $1)`, mixTradeNo, id))
	})
}

func (s *Store) prepayWhere(ctx context.Context, where string, args ...any) (*medpay.Prepay, error) {
	var p medpay.Prepay
	var created int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT id, merchant_id, out_trade_no, prepay_id, body, amount, mix_trade_no, created_at
		FROM v3_prepays WHERE `+where, args...).Scan(&p.ID, &p.MerchantID, &p.OutTradeNo, &p.PrepayID, &p.Body, &p.Amount, &p.MixTradeNo, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	p.CreatedAt = fromMS(created)
	return &p, nil
}

// V3OrdersToRecover lists 医保 2.0 orders to carry on: those left mid-payment whose last change
// is older than before, and unpaid ones whose time_expire has passed at now; oldest first.
func (s *Store) V3OrdersToRecover(ctx context.Context, before, now time.Time, limit int) ([]*medpay.Order, error) {
	steps := medpay.RecoverySteps
	return s.orderList(ctx, `generation = 2 AND ((step IN ($1, $2, $3) AND updated_at < $4) OR (state = 'NOTPAY' AND time_expire <= $5))
		ORDER BY updated_at LIMIT $6`, steps[0], steps[1], steps[2], ms(before), ms(now), limit)
}
