package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medpay/medpay"
)

// Accounts, sessions, login throttling and the audit log of the console and the portal.

const accountColumns = `id, kind, email, name, role, application_id, merchant_id, password_hash, totp_enc, totp_on, created_at`

func (s *Store) scanAccount(row scanner) (*medpay.Account, error) {
	var a medpay.Account
	var sealed string
	var on int
	var created int64
	if err := row.Scan(&a.ID, &a.Kind, &a.Email, &a.Name, &a.Role, &a.ApplicationID, &a.MerchantID,
		&a.PasswordHash, &sealed, &on, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, medpay.ErrNotFound
		}
		return nil, err
	}
	if sealed != "" {
		secretText, err := s.box.Open(sealed)
		if err != nil {
			return nil, fmt.Errorf("account %d: %w", a.ID, err)
		}
		a.TOTPSecret = secretText
	}
	a.TOTPOn = on == 1
	a.CreatedAt = fromMS(created)
	return &a, nil
}

// NormalizeEmail is the form in which emails are stored and looked up.
func NormalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func insertAccount(ctx context.Context, tx *sql.Tx, a *medpay.Account, sealedTOTP, inviteHash string, inviteUntil time.Time) error {
	a.Email = NormalizeEmail(a.Email)
	err := tx.QueryRowContext(ctx, `INSERT INTO accounts (kind, email, name, role, application_id, merchant_id,
		password_hash, totp_enc, totp_on, invite_hash, invite_until, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
		a.Kind, a.Email, a.Name, a.Role, a.ApplicationID, a.MerchantID, a.PasswordHash, sealedTOTP,
		boolInt(a.TOTPOn), inviteHash, ms(inviteUntil), ms(a.CreatedAt)).Scan(&a.ID)
	if isUniqueViolation(err) {
		return medpay.ErrConflict
	}
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sealTOTP seals a TOTP secret; an empty one stays empty.
func (s *Store) sealTOTP(v string) string {
	if v == "" {
		return ""
	}
	return s.box.Seal(v)
}

// CreateAccount inserts a and sets a.ID; a taken (kind, email) gives medpay.ErrConflict.
func (s *Store) CreateAccount(ctx context.Context, a *medpay.Account, audit *medpay.AuditEntry) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if err := insertAccount(ctx, tx, a, s.sealTOTP(a.TOTPSecret), "", time.Time{}); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
}

// AccountByEmail returns the account of kind with email, or medpay.ErrNotFound.
func (s *Store) AccountByEmail(ctx context.Context, kind, email string) (*medpay.Account, error) {
	return s.scanAccount(s.db.sql.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE kind = $1 AND email = $2`,
		kind, NormalizeEmail(email)))
}

// AccountByID returns the account id, or medpay.ErrNotFound.
func (s *Store) AccountByID(ctx context.Context, id int64) (*medpay.Account, error) {
	return s.scanAccount(s.db.sql.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
}

// StaffOf lists the staff accounts of a merchant, oldest first.
func (s *Store) StaffOf(ctx context.Context, merchantID int64) ([]*medpay.Account, error) {
	return queryAll(ctx, s.db.sql, s.scanAccount, `SELECT `+accountColumns+` FROM accounts
		WHERE kind = 'staff' AND merchant_id = $1 ORDER BY id`, merchantID)
}

// SetTOTP stores the account's TOTP secret and whether enrolment is finished.
func (s *Store) SetTOTP(ctx context.Context, id int64, secretText string, on bool, audit *medpay.AuditEntry) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET totp_enc = $1, totp_on = $2 WHERE id = $3`,
			s.sealTOTP(secretText), boolInt(on), id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
}

// Invite creates a staff account without a password that is finished by AcceptInvite with the
// token whose hash is given, before until.
func (s *Store) Invite(ctx context.Context, a *medpay.Account, tokenHash string, until time.Time, audit *medpay.AuditEntry) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if err := insertAccount(ctx, tx, a, "", tokenHash, until); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
}

// AcceptInvite sets the password of the invited account and burns the invitation; an unknown,
// used or expired invitation gives medpay.ErrNotFound.
func (s *Store) AcceptInvite(ctx context.Context, tokenHash, passwordHash string, now time.Time) (*medpay.Account, error) {
	var id int64
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE accounts SET password_hash = $1, invite_hash = ''
			WHERE invite_hash = $2 AND invite_hash <> '' AND invite_until > $3 RETURNING id`,
			passwordHash, tokenHash, ms(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return medpay.ErrNotFound
		}
		if err != nil {
			return err
		}
		a, err := s.scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &medpay.AuditEntry{At: now, ActorID: a.ID, Actor: "staff:" + a.Email,
			MerchantID: a.MerchantID, Action: "invite.accept"})
	})
	if err != nil {
		return nil, err
	}
	return s.AccountByID(ctx, id)
}

// CreateSession stores a session for account under the hash of its cookie value.
func (s *Store) CreateSession(ctx context.Context, tokenHash string, accountID int64, mfa bool, now time.Time) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		// Sessions past their absolute end are dropped here, in passing.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1`, ms(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, account_id, mfa, created_at, seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $4, $5)`, tokenHash, accountID, boolInt(mfa), ms(now), ms(now.Add(medpay.SessionAbsolute)))
		return err
	})
}

// Session returns the live session with tokenHash and records its use at now; a session idle for
// medpay.SessionIdle or past its absolute end gives medpay.ErrNotFound.
func (s *Store) Session(ctx context.Context, tokenHash string, now time.Time) (*medpay.Session, error) {
	var accountID, created, seen, expires int64
	var mfa int
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE sessions SET seen_at = $2
			WHERE token_hash = $1 AND seen_at > $3 AND expires_at > $2
			RETURNING account_id, mfa, created_at, seen_at, expires_at`,
			tokenHash, ms(now), ms(now.Add(-medpay.SessionIdle))).Scan(&accountID, &mfa, &created, &seen, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return medpay.ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	a, err := s.AccountByID(ctx, accountID)
	if err != nil {
		return nil, err
	}
	return &medpay.Session{Account: a, MFA: mfa == 1, CreatedAt: fromMS(created), SeenAt: fromMS(seen), ExpiresAt: fromMS(expires)}, nil
}

// SetSessionMFA records that the session's second factor was given.
func (s *Store) SetSessionMFA(ctx context.Context, tokenHash string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET mfa = 1 WHERE token_hash = $1`, tokenHash)
		return err
	})
}

// DeleteSession ends a session (logout).
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
		return err
	})
}

// LoginFailures returns the failures recorded for key within the window ending at now.
func (s *Store) LoginFailures(ctx context.Context, key string, now time.Time) (int, error) {
	var n int
	err := s.db.sql.QueryRowContext(ctx, `SELECT failures FROM login_failures WHERE key = $1 AND window_start > $2`,
		key, ms(now.Add(-medpay.LoginWindow))).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// RecordLoginFailure counts a failure for key in one statement (a window older than
// medpay.LoginWindow starts again) and returns the count.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, now time.Time) (int, error) {
	var n int
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO login_failures (key, failures, window_start) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN login_failures.window_start > $3 THEN login_failures.failures + 1 ELSE 1 END,
				window_start = CASE WHEN login_failures.window_start > $3 THEN login_failures.window_start ELSE $2 END
			RETURNING failures`, key, ms(now), ms(now.Add(-medpay.LoginWindow))).Scan(&n)
	})
	return n, err
}

// ClearLoginFailures forgets the failures of key (after a successful login).
func (s *Store) ClearLoginFailures(ctx context.Context, key string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE key = $1`, key)
		return err
	})
}

// appendAudit writes e in tx; a nil e writes nothing.
func appendAudit(ctx context.Context, tx *sql.Tx, e *medpay.AuditEntry) error {
	if e == nil {
		return nil
	}
	return tx.QueryRowContext(ctx, `INSERT INTO audit_log (at, actor_id, actor, merchant_id, action, target, detail, ip)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		ms(e.At), e.ActorID, e.Actor, e.MerchantID, e.Action, e.Target, e.Detail, e.IP).Scan(&e.ID)
}

// Audit appends e to the audit log. The log has no update or delete path: the schema refuses both.
func (s *Store) Audit(ctx context.Context, e *medpay.AuditEntry) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error { return appendAudit(ctx, tx, e) })
}

// AuditLog returns the newest entries first, of one merchant when merchantID is not 0, at most
// limit (1000 at most).
func (s *Store) AuditLog(ctx context.Context, merchantID int64, limit int) ([]medpay.AuditEntry, error) {
	limit = max(1, min(limit, 1000))
	q := `SELECT id, at, actor_id, actor, merchant_id, action, target, detail, ip FROM audit_log`
	args := []any{limit}
	if merchantID != 0 {
		q += ` WHERE merchant_id = $2`
		args = append(args, merchantID)
	}
	q += ` ORDER BY id DESC LIMIT $1`
	return queryAll(ctx, s.db.sql, func(row scanner) (medpay.AuditEntry, error) {
		var e medpay.AuditEntry
		var at int64
		err := row.Scan(&e.ID, &at, &e.ActorID, &e.Actor, &e.MerchantID, &e.Action, &e.Target, &e.Detail, &e.IP)
		e.At = fromMS(at)
		return e, err
	}, q, args...)
}

// ClaimTOTPStep records that the account used the TOTP code of time step; it reports false when
// that step or a later one was already used, so that a code works once.
func (s *Store) ClaimTOTPStep(ctx context.Context, id, step int64) (bool, error) {
	var n int64
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET totp_step = $2 WHERE id = $1 AND totp_step < $2`, id, step)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}
