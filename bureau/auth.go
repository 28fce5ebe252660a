package bureau

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// Payers' authorisations (national.md §5): the authorisation page (or the sandbox API) issues a
// single-use authCode; auth_info exchanges it for a payAuthNo, valid for the institution and the
// person, 24 hours or (scope bind) until the card is unbound. Only hashes of codes and
// payAuthNos are stored.

// Validities of authorisations.
const (
	AuthCodeTTL = 5 * time.Minute
	PayAuthTTL  = 24 * time.Hour
)

type authRow struct {
	PsnNo     string
	Scope     string
	ExpiresAt int64
}

// payAuth resolves a payAuthNo of the institution, refusing an unknown or expired one.
func (s *Simulator) payAuth(ctx context.Context, payAuthNo string, now time.Time) (*authRow, error) {
	var a authRow
	err := s.db.SQL().QueryRowContext(ctx, `SELECT psn_no, scope, expires_at FROM bureau_auths WHERE auth_hash = $1 AND app_id = $2`,
		hashToken(payAuthNo), s.appID).Scan(&a.PsnNo, &a.Scope, &a.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, rejected("payAuthNo 无效")
	}
	if err != nil {
		return nil, err
	}
	if a.ExpiresAt != 0 && sqlstore.MS(now) >= a.ExpiresAt {
		return nil, rejected("payAuthNo 已过期，请重新授权")
	}
	return &a, nil
}

func normScope(scope string) string {
	if scope == medpay.ScopeBind {
		return medpay.ScopeBind
	}
	return medpay.ScopePay
}

// IssueAuthCode issues a single-use authCode for person psnNo (the payer confirmed on the
// authorisation page).
func (s *Simulator) IssueAuthCode(ctx context.Context, psnNo, scope string) (string, error) {
	code := randomToken("AC")
	now := s.now()
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bureau_auth_codes (code_hash, app_id, psn_no, scope, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			hashToken(code), s.appID, psnNo, normScope(scope), sqlstore.MS(now.Add(AuthCodeTTL)))
		return err
	})
	return code, err
}

// grant records a new payAuthNo for psnNo in tx.
func (s *Simulator) grant(ctx context.Context, tx *sql.Tx, psnNo, scope string, now time.Time) (string, time.Time, error) {
	no := randomToken("PA")
	var until time.Time
	var expires int64
	if scope != medpay.ScopeBind {
		until = now.Add(PayAuthTTL)
		expires = sqlstore.MS(until)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO bureau_auths (auth_hash, app_id, psn_no, scope, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		hashToken(no), s.appID, psnNo, scope, expires, sqlstore.MS(now))
	return no, until, err
}

func (s *Simulator) payAuthAnswer(ctx context.Context, no, psnNo string, until time.Time) (*medpay.PayAuth, error) {
	p, err := s.PersonByPsnNo(ctx, psnNo)
	if err != nil {
		return nil, err
	}
	return &medpay.PayAuth{PayAuthNo: no, PsnNo: p.PsnNo, Name: medpay.MaskName(p.Name), IDNo: medpay.MaskIDNo(p.IDNo),
		CityID: p.CityID, ValidUntil: until}, nil
}

// Authorize (auth_info) exchanges an authCode of the institution (single use, 5 minutes) for a
// payAuthNo.
func (s *Simulator) Authorize(ctx context.Context, authCode string) (*medpay.PayAuth, error) {
	if authCode == "" {
		return nil, rejected("缺少 authCode")
	}
	now := s.now()
	var (
		no, psnNo string
		until     time.Time
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var scope string
		var expires, used int64
		err := tx.QueryRowContext(ctx, `SELECT psn_no, scope, expires_at, used_at FROM bureau_auth_codes WHERE code_hash = $1 AND app_id = $2`,
			hashToken(authCode), s.appID).Scan(&psnNo, &scope, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return rejected("authCode 无效")
		}
		if err != nil {
			return err
		}
		if used != 0 || sqlstore.MS(now) >= expires {
			return rejected("authCode 已使用或已过期")
		}
		res, err := tx.ExecContext(ctx, `UPDATE bureau_auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at = 0`, sqlstore.MS(now), hashToken(authCode))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return rejected("authCode 已使用或已过期")
		}
		no, until, err = s.grant(ctx, tx, psnNo, scope, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.payAuthAnswer(ctx, no, psnNo, until)
}

// AuthURL is the simulator's authorisation page for the institution.
func (s *Simulator) AuthURL(redirectURI, state, scope string) string {
	q := url.Values{"appId": {s.appID}, "redirect_uri": {redirectURI}, "state": {state}}
	if scope != "" {
		q.Set("scope", scope)
	}
	return s.BaseURL + "/auth?" + q.Encode()
}

// SandboxPayAuth authorises the test person idNo for the institution without the page.
func (s *Simulator) SandboxPayAuth(ctx context.Context, idNo, scope string) (*medpay.PayAuth, error) {
	p, err := s.PersonByIDNo(ctx, idNo)
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, rejected("未查询到身份证号 %s 的参保人", medpay.MaskIDNo(idNo))
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	var (
		no    string
		until time.Time
	)
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		no, until, err = s.grant(ctx, tx, p.PsnNo, normScope(scope), now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.payAuthAnswer(ctx, no, p.PsnNo, until)
}

// SandboxPersons lists the test persons of the sandbox (docs/api/sandbox.md (沙箱辅助接口)).
func (s *Simulator) SandboxPersons(ctx context.Context) ([]medpay.SandboxPerson, error) {
	var out []medpay.SandboxPerson
	for _, p := range SandboxPersons() {
		out = append(out, p.Sandbox())
	}
	return out, nil
}

// Sandbox is the person as the platform's sandbox helpers see it.
func (p Person) Sandbox() medpay.SandboxPerson {
	return medpay.SandboxPerson{PsnNo: p.PsnNo, Name: p.Name, IDNo: p.IDNo, CardNo: p.CardNo, CityID: p.CityID,
		Scenario: p.Scenario, PIN: p.PIN, PsnType: p.PsnType}
}
