package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/medpay/medpay"
)

// Single-use credentials of the payer pages: card-binding links (getbindurl) and payment codes
// (刷码付). Only their hashes (secret.Hash) are stored. A credential is claimed with one UPDATE
// that sets used_at where it is still 0 and the credential has not expired, so of two racing
// uses exactly one wins on every engine. A use that fails for a reason that is not the
// credential's fault (the bureau refused the identity, the order could not be placed) releases
// the claim again, so a credential is spent only by a successful use.

// codeRetention is how long expired credentials are kept (so that a late use is told "used" or
// "expired" rather than "unknown") before the issuing path purges them.
const codeRetention = 24 * time.Hour

// purgeBatch bounds the rows one issue purges.
const purgeBatch = 100

// BindLink is a stored card-binding link. The payer is (AppID, OpenID): the hospital's appid
// (sub_appid in service-provider mode) and the payer's openid under it.
type BindLink struct {
	ID         int64
	MerchantID int64 // the hospital that asked for it
	AppID      string
	OpenID     string
	ReturnURL  string
	Failures   int
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time
	// Pending is what the payer's use of the link has proved so far, waiting for the bureau's
	// authorisation (opaque here; sealed at rest).
	Pending string
}

// Usable reports whether the link can still be used at now, given the failures that burn it.
func (l *BindLink) Usable(now time.Time, maxFailures int) bool {
	return l.UsedAt.IsZero() && now.Before(l.ExpiresAt) && l.Failures < maxFailures
}

const bindLinkColumns = `id, merchant_id, appid, openid, return_url, failures, created_at, expires_at, used_at, pending`

func (s *Store) scanBindLink(row scanner) (*BindLink, error) {
	var l BindLink
	var created, expires, used int64
	var pending string
	err := row.Scan(&l.ID, &l.MerchantID, &l.AppID, &l.OpenID, &l.ReturnURL, &l.Failures, &created, &expires, &used, &pending)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	l.CreatedAt, l.ExpiresAt, l.UsedAt = fromMS(created), fromMS(expires), fromMS(used)
	if l.Pending, err = s.openOptional(pending); err != nil {
		return nil, err
	}
	return &l, nil
}

// SetBindLinkPending records (sealed) what the use of the claimed link l has proved so far.
func (s *Store) SetBindLinkPending(ctx context.Context, l *BindLink, pending string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE bind_links SET pending = $1 WHERE id = $2`, s.sealOptional(pending), l.ID)
		return err
	})
}

// CreateBindLink stores l under hash and sets l.ID; a taken hash gives medpay.ErrConflict. Links
// expired for longer than the retention are purged in the same transaction.
func (s *Store) CreateBindLink(ctx context.Context, hash string, l *BindLink) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM bind_links WHERE id IN
			(SELECT id FROM bind_links WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)`,
			ms(l.CreatedAt.Add(-codeRetention)), purgeBatch); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO bind_links (token_hash, merchant_id, appid, openid, return_url,
			failures, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, 0) RETURNING id`,
			hash, l.MerchantID, l.AppID, l.OpenID, l.ReturnURL, ms(l.CreatedAt), ms(l.ExpiresAt)).Scan(&l.ID)
		if isUniqueViolation(err) {
			return medpay.ErrConflict
		}
		return err
	})
}

// BindLinkByHash returns the link stored under hash, used or not, or medpay.ErrNotFound.
func (s *Store) BindLinkByHash(ctx context.Context, hash string) (*BindLink, error) {
	return s.scanBindLink(s.db.sql.QueryRowContext(ctx, `SELECT `+bindLinkColumns+` FROM bind_links WHERE token_hash = $1`, hash))
}

// ClaimBindLink marks the link under hash used at now if it is unused, unexpired and has fewer
// than maxFailures failures, and returns it; otherwise medpay.ErrNotFound (read it with
// BindLinkByHash to tell why).
func (s *Store) ClaimBindLink(ctx context.Context, hash string, now time.Time, maxFailures int) (*BindLink, error) {
	var l *BindLink
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		l, err = s.scanBindLink(tx.QueryRowContext(ctx, `UPDATE bind_links SET used_at = $1
			WHERE token_hash = $2 AND used_at = 0 AND expires_at > $1 AND failures < $3
			RETURNING `+bindLinkColumns, ms(now), hash, maxFailures))
		return err
	})
	return l, err
}

// ReleaseBindLink undoes the claim of l (made at l.UsedAt) after a use that did not happen;
// failed counts it as a failure.
func (s *Store) ReleaseBindLink(ctx context.Context, l *BindLink, failed bool) error {
	inc := 0
	if failed {
		inc = 1
	}
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE bind_links SET used_at = 0, failures = failures + $1
			WHERE id = $2 AND used_at = $3`, inc, l.ID, ms(l.UsedAt))
		return err
	})
}

// PayCode is a stored payment code (auth_code) issued to the payer (AppID, OpenID).
type PayCode struct {
	ID        int64
	AppID     string
	OpenID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

const payCodeColumns = `id, appid, openid, created_at, expires_at, used_at`

func scanPayCode(row scanner) (*PayCode, error) {
	var c PayCode
	var created, expires, used int64
	err := row.Scan(&c.ID, &c.AppID, &c.OpenID, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromMS(created), fromMS(expires), fromMS(used)
	return &c, nil
}

// CreatePayCode stores c under hash and sets c.ID; a taken hash gives medpay.ErrConflict (draw
// another code). Codes expired for longer than the retention are purged in the same transaction.
func (s *Store) CreatePayCode(ctx context.Context, hash string, c *PayCode) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pay_codes WHERE id IN
			(SELECT id FROM pay_codes WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)`,
			ms(c.CreatedAt.Add(-codeRetention)), purgeBatch); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO pay_codes (code_hash, appid, openid, created_at, expires_at, used_at)
			VALUES ($1, $2, $3, $4, $5, 0) RETURNING id`,
			hash, c.AppID, c.OpenID, ms(c.CreatedAt), ms(c.ExpiresAt)).Scan(&c.ID)
		if isUniqueViolation(err) {
			return medpay.ErrConflict
		}
		return err
	})
}

// PayCodeByHash returns the code stored under hash, used or not, or medpay.ErrNotFound.
func (s *Store) PayCodeByHash(ctx context.Context, hash string) (*PayCode, error) {
	return scanPayCode(s.db.sql.QueryRowContext(ctx, `SELECT `+payCodeColumns+` FROM pay_codes WHERE code_hash = $1`, hash))
}

// ClaimPayCode marks the code under hash used at now if it was issued to a payer under appid
// (and to openid, unless openid is empty), is unused and has not expired, and returns it;
// otherwise medpay.ErrNotFound (read it with PayCodeByHash to tell why). A call for another
// payer does not spend the code.
func (s *Store) ClaimPayCode(ctx context.Context, hash, appid, openid string, now time.Time) (*PayCode, error) {
	var c *PayCode
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanPayCode(tx.QueryRowContext(ctx, `UPDATE pay_codes SET used_at = $1
			WHERE code_hash = $2 AND appid = $3 AND (openid = $4 OR $4 = '') AND used_at = 0 AND expires_at > $1
			RETURNING `+payCodeColumns, ms(now), hash, appid, openid))
		return err
	})
	return c, err
}

// ReleasePayCode undoes the claim of c (made at c.UsedAt) when no order came of it.
func (s *Store) ReleasePayCode(ctx context.Context, c *PayCode) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE pay_codes SET used_at = 0 WHERE id = $1 AND used_at = $2`, c.ID, ms(c.UsedAt))
		return err
	})
}
