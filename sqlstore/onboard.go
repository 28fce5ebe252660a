package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
)

// Onboarding: credentials, applications and their approval, suspension, key rotation.

// NewCredentials fills m's appid, mch_id, secret hash and API key with fresh values and returns
// them in clear, to be shown once.
func NewCredentials(m *medpay.Merchant) medpay.Credentials {
	appSecret := secret.AppSecret()
	m.SecretHash = secret.Hash(appSecret)
	m.APIKey = secret.APIKey()
	m.AppID = "wx" + secret.RandomString(16, "0123456789abcdef")
	m.MchID = "19" + secret.RandomString(8, "0123456789")
	return medpay.Credentials{AppID: m.AppID, Secret: appSecret, MchID: m.MchID, APIKey: m.APIKey, Name: m.Name, Cities: m.Cities}
}

// Onboard creates merchant m with fresh credentials (new identifiers on the rare collision) and
// returns them in clear. `medpay merchant create` and the approval of an application share it.
func (s *Store) Onboard(ctx context.Context, m *medpay.Merchant) (medpay.Credentials, error) {
	var creds medpay.Credentials
	err := s.onboard(ctx, m, func(tx *sql.Tx, c medpay.Credentials) error { creds = c; return nil })
	return creds, err
}

// onboard runs the merchant's insert and then more in one transaction, retrying identifiers that
// happen to be taken.
func (s *Store) onboard(ctx context.Context, m *medpay.Merchant, more func(tx *sql.Tx, c medpay.Credentials) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		creds := NewCredentials(m)
		err = s.db.WriteTx(ctx, func(tx *sql.Tx) error {
			if err := s.insertMerchant(ctx, tx, m); err != nil {
				return err
			}
			return more(tx, creds)
		})
		if !errors.Is(err, medpay.ErrConflict) {
			return err
		}
	}
	return err
}

// CreateApplication stores an application, its evidence (may be nil on the simplified path) and
// its first staff account (role owner, password already hashed) in one transaction.
func (s *Store) CreateApplication(ctx context.Context, a *medpay.Application, ev *medpay.Evidence, owner *medpay.Account, ip string) error {
	a.State = medpay.AppSubmitted
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO applications (kind, name, org_codg, register_name, public, level,
			cities, cash_mchid, mp_appid, contact_name, contact_phone, contact_email, state, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
			a.Kind, a.Name, a.OrgCodg, a.RegisterName, boolInt(a.Public), a.Level, strings.Join(a.Cities, ","),
			a.CashMchID, a.MPAppID, a.ContactName, a.ContactPhone, a.ContactEmail, a.State, ms(a.CreatedAt)).Scan(&a.ID)
		if err != nil {
			return err
		}
		if ev != nil {
			sum := sha256.Sum256(ev.Data)
			ev.SHA256 = hex.EncodeToString(sum[:])
			if _, err := tx.ExecContext(ctx, `INSERT INTO application_files (application_id, content_type, filename, data, sha256)
				VALUES ($1, $2, $3, $4, $5)`, a.ID, ev.ContentType, ev.Filename, ev.Data, ev.SHA256); err != nil {
				return err
			}
		}
		owner.Kind, owner.Role, owner.ApplicationID, owner.CreatedAt = medpay.AccountStaff, medpay.RoleOwner, a.ID, a.CreatedAt
		if err := insertAccount(ctx, tx, owner, "", "", time.Time{}); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &medpay.AuditEntry{At: a.CreatedAt, ActorID: owner.ID, Actor: "applicant:" + owner.Email,
			Action: "application.submit", Target: fmt.Sprintf("application:%d", a.ID), Detail: a.Name + " " + a.OrgCodg, IP: ip})
	})
}

const applicationColumns = `id, kind, name, org_codg, register_name, public, level, cities, cash_mchid, mp_appid,
	contact_name, contact_phone, contact_email, state, reason, approved_cities, merchant_id, reviewed_by, reviewed_at, created_at`

func scanApplication(row scanner) (*medpay.Application, error) {
	var a medpay.Application
	var public int
	var cities, approved string
	var reviewed, created int64
	err := row.Scan(&a.ID, &a.Kind, &a.Name, &a.OrgCodg, &a.RegisterName, &public, &a.Level, &cities, &a.CashMchID,
		&a.MPAppID, &a.ContactName, &a.ContactPhone, &a.ContactEmail, &a.State, &a.Reason, &approved, &a.MerchantID,
		&a.ReviewedBy, &reviewed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	a.Public = public == 1
	a.Cities, a.ApprovedCities = splitList(cities), splitList(approved)
	a.ReviewedAt, a.CreatedAt = fromMS(reviewed), fromMS(created)
	return &a, nil
}

// Application returns application id, or medpay.ErrNotFound.
func (s *Store) Application(ctx context.Context, id int64) (*medpay.Application, error) {
	return scanApplication(s.db.sql.QueryRowContext(ctx, `SELECT `+applicationColumns+` FROM applications WHERE id = $1`, id))
}

// Applications lists applications in state (all when empty), newest first, at most limit.
func (s *Store) Applications(ctx context.Context, state string, limit int) ([]*medpay.Application, error) {
	limit = max(1, min(limit, 1000))
	if state == "" {
		return queryAll(ctx, s.db.sql, scanApplication, `SELECT `+applicationColumns+` FROM applications ORDER BY id DESC LIMIT $1`, limit)
	}
	return queryAll(ctx, s.db.sql, scanApplication, `SELECT `+applicationColumns+` FROM applications
		WHERE state = $2 ORDER BY id DESC LIMIT $1`, limit, state)
}

// ApplicationEvidence returns the consent document of application id, or medpay.ErrNotFound.
func (s *Store) ApplicationEvidence(ctx context.Context, id int64) (*medpay.Evidence, error) {
	var ev medpay.Evidence
	err := s.db.sql.QueryRowContext(ctx, `SELECT content_type, filename, data, sha256 FROM application_files WHERE application_id = $1`, id).
		Scan(&ev.ContentType, &ev.Filename, &ev.Data, &ev.SHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	return &ev, err
}

// ErrNotSubmitted is returned when an application was already decided.
var ErrNotSubmitted = errors.New("the application was already decided")

// RejectApplication records the decision and its reason (the applicant sees it).
func (s *Store) RejectApplication(ctx context.Context, id int64, reason string, reviewer *medpay.Account, audit *medpay.AuditEntry) error {
	now := audit.At
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE applications SET state = 'rejected', reason = $2, reviewed_by = $3, reviewed_at = $4
			WHERE id = $1 AND state = 'submitted'`, id, reason, reviewer.ID, ms(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotSubmitted
		}
		return appendAudit(ctx, tx, audit)
	})
}

// ApproveApplication creates the merchant for application id in cities (a subset of those asked
// for), links the application's staff to it and keeps the credentials, sealed, until the portal
// shows them once, all in one transaction.
func (s *Store) ApproveApplication(ctx context.Context, id int64, cities []string, reviewer *medpay.Account, audit *medpay.AuditEntry) (*medpay.Merchant, error) {
	a, err := s.Application(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.State != medpay.AppSubmitted {
		return nil, ErrNotSubmitted
	}
	if a.Kind == medpay.KindProvider {
		cities = nil // providers act for hospitals, which have the cities
	}
	for _, c := range cities {
		if !contains(a.Cities, c) {
			return nil, fmt.Errorf("city %s was not asked for", c)
		}
	}
	if len(cities) == 0 && a.Kind != medpay.KindProvider {
		return nil, errors.New("approve at least one city")
	}
	now := audit.At
	m := &medpay.Merchant{Kind: a.Kind, Name: a.Name, Cities: cities, Level: a.Level, CreatedAt: now}
	err = s.onboard(ctx, m, func(tx *sql.Tx, creds medpay.Credentials) error {
		res, err := tx.ExecContext(ctx, `UPDATE applications SET state = 'approved', approved_cities = $2, merchant_id = $3,
			reviewed_by = $4, reviewed_at = $5 WHERE id = $1 AND state = 'submitted'`,
			id, strings.Join(cities, ","), m.ID, reviewer.ID, ms(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotSubmitted
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET merchant_id = $1 WHERE kind = 'staff' AND application_id = $2`, m.ID, id); err != nil {
			return err
		}
		data, err := json.Marshal(creds)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pending_credentials (merchant_id, sealed, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (merchant_id) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at`,
			m.ID, s.box.Seal(string(data)), ms(now)); err != nil {
			return err
		}
		audit.MerchantID = m.ID
		return appendAudit(ctx, tx, audit)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// TakeCredentials returns the merchant's credentials waiting to be shown and forgets them: they
// are shown once. medpay.ErrNotFound when there are none.
func (s *Store) TakeCredentials(ctx context.Context, merchantID int64, audit *medpay.AuditEntry) (*medpay.Credentials, error) {
	var sealed string
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `DELETE FROM pending_credentials WHERE merchant_id = $1 RETURNING sealed`, merchantID).Scan(&sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return medpay.ErrNotFound
		}
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
	if err != nil {
		return nil, err
	}
	plain, err := s.box.Open(sealed)
	if err != nil {
		return nil, err
	}
	var c medpay.Credentials
	if err := json.Unmarshal([]byte(plain), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// HasPendingCredentials reports whether credentials wait to be shown.
func (s *Store) HasPendingCredentials(ctx context.Context, merchantID int64) (bool, error) {
	var n int
	err := s.db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending_credentials WHERE merchant_id = $1`, merchantID).Scan(&n)
	return n > 0, err
}

// RotateKeys gives the merchant a new API key and app secret; the old ones keep working until
// now+overlap. The new ones are returned in clear, to be shown once.
func (s *Store) RotateKeys(ctx context.Context, merchantID int64, overlap time.Duration, audit *medpay.AuditEntry) (*medpay.Credentials, error) {
	defer s.ForgetMerchant(merchantID) // this process uses the new key at once, others within CacheTTL
	now := audit.At
	m, err := s.MerchantByID(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	appSecret, key := secret.AppSecret(), secret.APIKey()
	err = s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var oldKey, oldHash string
		if err := tx.QueryRowContext(ctx, `SELECT api_key_enc, secret_hash FROM merchants WHERE id = $1`, merchantID).Scan(&oldKey, &oldHash); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO retired_keys (merchant_id, api_key_enc, secret_hash, valid_until)
			VALUES ($1, $2, $3, $4)`, merchantID, oldKey, oldHash, ms(now.Add(overlap))); err != nil {
			return err
		}
		// Older retirements end no later than this one.
		if _, err := tx.ExecContext(ctx, `UPDATE retired_keys SET valid_until = $2 WHERE merchant_id = $1 AND valid_until > $2`,
			merchantID, ms(now.Add(overlap))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM retired_keys WHERE merchant_id = $1 AND valid_until < $2`,
			merchantID, ms(now.Add(-24*time.Hour))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE merchants SET api_key_enc = $2, secret_hash = $3 WHERE id = $1`,
			merchantID, s.box.Seal(key), secret.Hash(appSecret)); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
	if err != nil {
		return nil, err
	}
	return &medpay.Credentials{AppID: m.AppID, Secret: appSecret, MchID: m.MchID, APIKey: key, Name: m.Name, Cities: m.Cities}, nil
}

// RetiredKey is an API key and app secret hash still accepted during a rotation's overlap.
type RetiredKey struct {
	APIKey     string
	SecretHash string
	ValidUntil time.Time
}

// RetiredKeys returns the merchant's retired keys still valid at now.
func (s *Store) RetiredKeys(ctx context.Context, merchantID int64, now time.Time) ([]RetiredKey, error) {
	return queryAll(ctx, s.db.sql, func(row scanner) (RetiredKey, error) {
		var k RetiredKey
		var sealed string
		var until int64
		if err := row.Scan(&sealed, &k.SecretHash, &until); err != nil {
			return k, err
		}
		k.ValidUntil = fromMS(until)
		var err error
		k.APIKey, err = s.box.Open(sealed)
		return k, err
	}, `SELECT api_key_enc, secret_hash, valid_until FROM retired_keys WHERE merchant_id = $1 AND valid_until > $2 ORDER BY id DESC`,
		merchantID, ms(now))
}

// SetSuspended suspends (with a reason) or resumes a merchant: a suspended merchant's API calls
// are refused, by this process at once and by others within CacheTTL (SuspendedOf).
func (s *Store) SetSuspended(ctx context.Context, merchantID int64, suspended bool, reason string, audit *medpay.AuditEntry) error {
	defer s.ForgetMerchant(merchantID) // this process sees the change at once, others within CacheTTL
	at := int64(0)
	if suspended {
		at = ms(audit.At)
	}
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO merchant_controls (merchant_id, suspended_at, reason) VALUES ($1, $2, $3)
			ON CONFLICT (merchant_id) DO UPDATE SET suspended_at = excluded.suspended_at, reason = excluded.reason`,
			merchantID, at, reason); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
}

// Suspended reports whether the merchant is suspended.
func (s *Store) Suspended(ctx context.Context, merchantID int64) (bool, error) {
	var at int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT suspended_at FROM merchant_controls WHERE merchant_id = $1`, merchantID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return at != 0, err
}

// suspension is a merchant's standing as SuspendedOf keeps it.
type suspension struct {
	id        int64
	suspended bool
}

// SuspendedOf returns which of the merchants a and b is suspended (a first), or 0. The open API
// asks it on every call, for the signer and the hospital acted for, so the answer for each is
// kept for CacheTTL, "not suspended" included: a suspension or resumption made through this Store
// is seen at once (SetSuspended forgets the copy after its commit), one made by another process
// at most CacheTTL later.
func (s *Store) SuspendedOf(ctx context.Context, a, b int64) (int64, error) {
	first := func(sa, sb bool) int64 {
		switch {
		case sa:
			return a
		case sb:
			return b
		}
		return 0
	}
	ka, kb := strconv.FormatInt(a, 10), strconv.FormatInt(b, 10)
	ca, okA := s.suspensions.get(ka)
	cb, okB := s.suspensions.get(kb)
	if okA && okB {
		return first(ca.suspended, cb.suspended), nil
	}
	start := s.suspensions.begin()
	rows, err := s.db.sql.QueryContext(ctx, `SELECT merchant_id FROM merchant_controls
		WHERE merchant_id IN ($1, $2) AND suspended_at <> 0`, a, b)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	sa, sb := false, false
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return 0, err
		}
		sa, sb = sa || id == a, sb || id == b
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	s.suspensions.put(ka, suspension{a, sa}, start)
	s.suspensions.put(kb, suspension{b, sb}, start)
	return first(sa, sb), nil
}

// SetMerchantCities replaces the merchant's enabled cities.
func (s *Store) SetMerchantCities(ctx context.Context, merchantID int64, cities []string, audit *medpay.AuditEntry) error {
	defer s.ForgetMerchant(merchantID) // this process sees the change at once, others within CacheTTL
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE merchants SET cities = $2 WHERE id = $1`, merchantID, strings.Join(cities, ",")); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
}

// SetRefundIPs replaces the merchant's refund allow-list.
func (s *Store) SetRefundIPs(ctx context.Context, merchantID int64, ips []string, audit *medpay.AuditEntry) error {
	defer s.ForgetMerchant(merchantID) // this process sees the change at once, others within CacheTTL
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE merchants SET refund_ips = $2 WHERE id = $1`, merchantID, strings.Join(ips, ",")); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
}

// MerchantRow is a merchant as the console lists it.
type MerchantRow struct {
	*medpay.Merchant
	Suspended bool
	Reason    string
}

// Merchants lists every merchant, newest first, at most limit.
func (s *Store) Merchants(ctx context.Context, limit int) ([]MerchantRow, error) {
	limit = max(1, min(limit, 1000))
	ids, err := queryAll(ctx, s.db.sql, func(row scanner) (MerchantRow, error) {
		var r MerchantRow
		var id, at int64
		r.Merchant = &medpay.Merchant{}
		err := row.Scan(&id, &at, &r.Reason)
		r.ID, r.Suspended = id, at != 0
		return r, err
	}, `SELECT m.id, COALESCE(c.suspended_at, 0), COALESCE(c.reason, '') FROM merchants m
		LEFT JOIN merchant_controls c ON c.merchant_id = m.id ORDER BY m.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	for i := range ids {
		m, err := s.MerchantByID(ctx, ids[i].ID)
		if err != nil {
			return nil, err
		}
		ids[i].Merchant = m
	}
	return ids, nil
}

// OrderFilter selects orders for the portal and the console; zero fields select all.
type OrderFilter struct {
	MerchantID int64 // the hospital's orders, or those a service provider placed
	State      string
	Query      string // med_trans_id or hosp_out_trade_no
	From, To   time.Time
	Limit      int // 50 by default, at most 500
}

// Orders lists the orders matching f, newest first.
func (s *Store) Orders(ctx context.Context, f OrderFilter) ([]*medpay.Order, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	if f.MerchantID != 0 {
		// A service provider sees the orders it placed for hospitals.
		add("(merchant_id = $? OR provider_id = $?)", f.MerchantID)
	}
	if f.State != "" {
		add("state = $?", f.State)
	}
	if f.Query != "" {
		add("(med_trans_id = $? OR hosp_out_trade_no = $?)", f.Query)
	}
	if !f.From.IsZero() {
		add("created_at >= $?", ms(f.From))
	}
	if !f.To.IsZero() {
		add("created_at < $?", ms(f.To))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	where = append(where, "1 = 1")
	args = append(args, min(limit, 500))
	return s.orderList(ctx, strings.Join(where, " AND ")+fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args)), args...)
}

// RefundsOfMerchant lists the merchant's refunds, newest first, at most limit.
func (s *Store) RefundsOfMerchant(ctx context.Context, merchantID int64, state string, limit int) ([]*medpay.Refund, error) {
	limit = max(1, min(limit, 500))
	if state == "" {
		return s.refundList(ctx, s.db.sql, `merchant_id = $1 ORDER BY id DESC LIMIT $2`, merchantID, limit)
	}
	return s.refundList(ctx, s.db.sql, `merchant_id = $1 AND state = $3 ORDER BY id DESC LIMIT $2`, merchantID, limit, state)
}

// OrderPoint is what the dashboard needs of one order.
type OrderPoint struct {
	CreatedAt    time.Time
	State        medpay.TradeState
	CashFee      int64
	InsuranceFee int64
}

// OrderPoints returns the orders created in [from, to), at most 100 000 (the dashboard's bound).
func (s *Store) OrderPoints(ctx context.Context, from, to time.Time) ([]OrderPoint, error) {
	return queryAll(ctx, s.db.sql, func(row scanner) (OrderPoint, error) {
		var p OrderPoint
		var at int64
		var state string
		err := row.Scan(&at, &state, &p.CashFee, &p.InsuranceFee)
		p.CreatedAt, p.State = fromMS(at), medpay.TradeState(state)
		return p, err
	}, `SELECT created_at, state, cash_fee, insurance_fee FROM orders WHERE created_at >= $1 AND created_at < $2
		ORDER BY created_at LIMIT 100000`, ms(from), ms(to))
}

// NotifyLag returns, for notifications delivered in [from, to), when each was delivered and how
// long after it was written; and how many notifications are dead now.
func (s *Store) NotifyLag(ctx context.Context, from, to time.Time) (lags []time.Duration, at []time.Time, dead int, err error) {
	rows, err := s.db.sql.QueryContext(ctx, `SELECT created_at, done_at FROM outbox WHERE state = 'delivered'
		AND done_at >= $1 AND done_at < $2 ORDER BY done_at LIMIT 100000`, ms(from), ms(to))
	if err != nil {
		return nil, nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var c, d int64
		if err := rows.Scan(&c, &d); err != nil {
			return nil, nil, 0, err
		}
		lags = append(lags, time.Duration(d-c)*time.Millisecond)
		at = append(at, fromMS(d))
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, err
	}
	err = s.db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE state = 'dead'`).Scan(&dead)
	return lags, at, dead, err
}

// DeadSince returns when each notification now dead gave up, for those that did in [from, to).
func (s *Store) DeadSince(ctx context.Context, from, to time.Time) ([]time.Time, error) {
	return queryAll(ctx, s.db.sql, func(row scanner) (time.Time, error) {
		var at int64
		err := row.Scan(&at)
		return fromMS(at), err
	}, `SELECT done_at FROM outbox WHERE state = 'dead' AND done_at >= $1 AND done_at < $2 ORDER BY done_at LIMIT 100000`,
		ms(from), ms(to))
}
