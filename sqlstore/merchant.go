package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
)

// Store implements the platform's domain stores on a DB. API keys are sealed with box.
type Store struct {
	db  *DB
	box *secret.Box
	// Now is the clock that stamps rows (updated_at, authorisations); time.Now by default.
	Now func() time.Time

	// Every authenticated call reads its token and merchant; see CacheTTL for the bound.
	tokens    *ttlCache[cachedToken]
	merchants *ttlCache[*medpay.Merchant] // by "appid:" and "mch_id:" keys; never handed out
	// Whether a merchant is suspended, by its id: unlike the others this cache keeps "not
	// suspended", the answer to almost every call (see SuspendedOf).
	suspensions *ttlCache[suspension]
}

// NewStore returns a Store over db sealing API keys with box.
func NewStore(db *DB, box *secret.Box) *Store {
	return &Store{db: db, box: box, Now: time.Now,
		tokens: newTTLCache[cachedToken](CacheTTL), merchants: newTTLCache[*medpay.Merchant](CacheTTL),
		suspensions: newTTLCache[suspension](CacheTTL)}
}

// ForgetMerchant drops this Store's cached copies of merchant id, so that its next lookups read
// the row. Code that changes a merchants row calls it after the commit; so does anything that
// changes the row behind the Store's back (SQL run by hand, tests), otherwise this process sees the
// change up to CacheTTL later, as other processes do.
func (s *Store) ForgetMerchant(id int64) {
	s.merchants.forget(func(m *medpay.Merchant) bool { return m.ID == id })
	s.suspensions.forget(func(c suspension) bool { return c.id == id })
}

// Box is the box sealing the store's secrets, for components that keep sealed values of their own
// in the same database (the sandbox's cash channel) under the same server key.
func (s *Store) Box() *secret.Box { return s.box }

// DB returns the underlying database.
func (s *Store) DB() *DB { return s.db }

var _ medpay.MerchantStore = (*Store)(nil)

// CreateMerchant inserts m and sets m.ID. A taken appid or mch_id gives medpay.ErrConflict.
func (s *Store) CreateMerchant(ctx context.Context, m *medpay.Merchant) error {
	if len(m.APIKey) != 32 {
		return fmt.Errorf("api key must be 32 characters")
	}
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error { return s.insertMerchant(ctx, tx, m) })
}

func (s *Store) insertMerchant(ctx context.Context, tx *sql.Tx, m *medpay.Merchant) error {
	err := tx.QueryRowContext(ctx, `INSERT INTO merchants
		(kind, name, appid, mch_id, secret_hash, api_key_enc, cities, level, refund_ips, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		m.Kind, m.Name, m.AppID, m.MchID, m.SecretHash, s.box.Seal(m.APIKey),
		strings.Join(m.Cities, ","), m.Level, strings.Join(m.RefundIPs, ","), ms(m.CreatedAt),
	).Scan(&m.ID)
	if isUniqueViolation(err) {
		return medpay.ErrConflict
	}
	return err
}

const merchantColumns = `id, kind, name, appid, mch_id, secret_hash, api_key_enc, cities, level, refund_ips, created_at`

func (s *Store) merchantWhere(ctx context.Context, where string, arg any) (*medpay.Merchant, error) {
	var m medpay.Merchant
	var sealed, cities, ips string
	var created int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT `+merchantColumns+` FROM merchants WHERE `+where, arg).Scan(
		&m.ID, &m.Kind, &m.Name, &m.AppID, &m.MchID, &m.SecretHash, &sealed, &cities, &m.Level, &ips, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if m.APIKey, err = s.box.Open(sealed); err != nil {
		return nil, fmt.Errorf("merchant %s: %w", m.MchID, err)
	}
	m.Cities = splitList(cities)
	m.RefundIPs = splitList(ips)
	m.CreatedAt = fromMS(created)
	return &m, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// MerchantByAppID returns the merchant with appid, or medpay.ErrNotFound. It may be up to
// CacheTTL old.
func (s *Store) MerchantByAppID(ctx context.Context, appid string) (*medpay.Merchant, error) {
	return s.cachedMerchant(ctx, "appid:"+appid, `appid = $1`, appid)
}

// MerchantByMchID returns the merchant with mch_id, or medpay.ErrNotFound. It may be up to
// CacheTTL old.
func (s *Store) MerchantByMchID(ctx context.Context, mchID string) (*medpay.Merchant, error) {
	return s.cachedMerchant(ctx, "mch_id:"+mchID, `mch_id = $1`, mchID)
}

func (s *Store) cachedMerchant(ctx context.Context, key, where, arg string) (*medpay.Merchant, error) {
	if m, ok := s.merchants.get(key); ok {
		c := *m // the caller may change its copy (not the shared Cities and RefundIPs)
		return &c, nil
	}
	start := s.merchants.begin()
	m, err := s.merchantWhere(ctx, where, arg)
	if err != nil {
		return nil, err
	}
	c := *m
	s.merchants.put(key, &c, start)
	return m, nil
}

// MerchantByID returns the merchant with id, or medpay.ErrNotFound.
func (s *Store) MerchantByID(ctx context.Context, id int64) (*medpay.Merchant, error) {
	return s.merchantWhere(ctx, `id = $1`, id)
}

// Authorize records that merchant authorised provider; repeating it is harmless.
func (s *Store) Authorize(ctx context.Context, providerID, merchantID int64) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO provider_authorizations (provider_id, merchant_id, created_at)
			VALUES ($1, $2, $3) ON CONFLICT (provider_id, merchant_id) DO NOTHING`, providerID, merchantID, ms(s.Now()))
		return err
	})
}

// Revoke removes an authorisation.
func (s *Store) Revoke(ctx context.Context, providerID, merchantID int64) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM provider_authorizations WHERE provider_id = $1 AND merchant_id = $2`, providerID, merchantID)
		return err
	})
}

// IsAuthorized reports whether merchant has authorised provider.
func (s *Store) IsAuthorized(ctx context.Context, providerID, merchantID int64) (bool, error) {
	var n int
	err := s.db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM provider_authorizations WHERE provider_id = $1 AND merchant_id = $2`,
		providerID, merchantID).Scan(&n)
	return n > 0, err
}

// CreateToken stores t. Older tokens of the same scope stay valid for the overlap window only.
func (s *Store) CreateToken(ctx context.Context, t *medpay.Token) error {
	overlapEnd := ms(t.IssuedAt.Add(medpay.TokenOverlap))
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE access_tokens SET expires_at = $1
			WHERE appid = $2 AND sub_appid = $3 AND expires_at > $1`, overlapEnd, t.AppID, t.SubAppID); err != nil {
			return err
		}
		// Expired tokens are kept one day for the logs' sake, then dropped.
		if _, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE expires_at < $1`, ms(t.IssuedAt.Add(-24*time.Hour))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO access_tokens (hash, appid, sub_appid, issued_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, t.Hash, t.AppID, t.SubAppID, ms(t.IssuedAt), ms(t.ExpiresAt))
		return err
	})
	if err == nil {
		s.tokens.forget(func(old cachedToken) bool { return old.AppID == t.AppID && old.SubAppID == t.SubAppID })
	}
	return err
}

// TokenByHash returns the token with hash if it is valid at now.
//
// A token row never changes except that issuing a newer one for its scope cuts its expiry to
// TokenOverlap after that issue. A copy cached for CacheTTL, far shorter than TokenOverlap,
// therefore never outlives the cut: this process forgets its copies when it issues, and a copy
// read before another process issued expires long before the cut expiry is reached. The age is
// also measured on the caller's clock, so that a clock moved forward (tests) is honoured too.
func (s *Store) TokenByHash(ctx context.Context, hash string, now time.Time) (*medpay.Token, error) {
	if c, ok := s.tokens.get(hash); ok && c.ExpiresAt.After(now) && !now.Before(c.readAt) && now.Sub(c.readAt) < CacheTTL {
		t := c.Token
		return &t, nil
	}
	start := s.tokens.begin()
	t, err := s.tokenByHash(ctx, hash, now)
	if err != nil {
		return nil, err
	}
	s.tokens.put(hash, cachedToken{*t, now}, start)
	return t, nil
}

type cachedToken struct {
	medpay.Token
	readAt time.Time // the caller's now when read
}

func (s *Store) tokenByHash(ctx context.Context, hash string, now time.Time) (*medpay.Token, error) {
	var t medpay.Token
	var issued, expires int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT hash, appid, sub_appid, issued_at, expires_at FROM access_tokens
		WHERE hash = $1 AND expires_at > $2`, hash, ms(now)).Scan(&t.Hash, &t.AppID, &t.SubAppID, &issued, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	t.IssuedAt, t.ExpiresAt = fromMS(issued), fromMS(expires)
	return &t, nil
}
