package bureau

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// Settlement states in the simulator's books.
const (
	StateSettled  = "settled"
	StateReversed = "reversed"
	StateRefunded = "refunded"
	// StateTombstone marks a serial that was reversed before anything was settled under it (冲正
	// of an unknown serial). It claims the serial, so that a settle arriving late — a request
	// that was still in flight when the platform gave up and reversed — is refused instead of
	// taking money for an order the platform already closed. This is how a real bureau's 冲正
	// works: the reversal is recorded against the serial whether or not the original arrived.
	StateTombstone = "tombstone"
)

// Simulator is the simulated social-insurance bureau (docs/api/bureau.md). It keeps its own books in the
// bureau_* tables (persons, accounts, annual accumulators, settlements, refunds), so that it can
// be reconciled against the platform like a real bureau. Every money movement is one
// transaction with the settlement or refund row that causes it; the person's account row is
// the lock that orders them.
type Simulator struct {
	db       *sqlstore.DB
	now      func() time.Time
	policies *PolicySet
	appID    string // the institution the medpay.Bureau methods act for
	// BaseURL is where the simulator is served (AuthURL's page), without a trailing slash.
	BaseURL string
}

var (
	_ medpay.Bureau        = (*Simulator)(nil)
	_ medpay.BureauSandbox = (*Simulator)(nil)
)

// PlatformAppID is the institution the in-process simulator's medpay.Bureau methods act for
// when the platform uses it directly (sandbox mode without --bureau-url).
const PlatformAppID = "medpay0platform0sandbox"

// New returns a simulator keeping its books in db (migrated by Migrate or Open), reading the
// time from now (time.Now when nil) and applying the embedded city presets. Its medpay.Bureau
// methods act for PlatformAppID; As gives another institution's view.
func New(db *sqlstore.DB, now func() time.Time) *Simulator {
	if now == nil {
		now = time.Now
	}
	return &Simulator{db: db, now: now, policies: defaultPolicies, appID: PlatformAppID}
}

// Open migrates db's bureau tables and returns a simulator on it.
func Open(ctx context.Context, db *sqlstore.DB, now func() time.Time) (*Simulator, error) {
	if err := Migrate(ctx, db); err != nil {
		return nil, err
	}
	return New(db, now), nil
}

//go:embed migrations
var migrations embed.FS

// Migrate applies the bureau's own migrations to db (version table bureau_goose_db_version).
func Migrate(ctx context.Context, db *sqlstore.DB) error {
	if err := db.MigrateTrack(ctx, migrations, "migrations", "bureau_goose_db_version"); err != nil {
		return fmt.Errorf("bureau: %w", err)
	}
	return nil
}

// As returns the simulator acting for institution appID.
func (s *Simulator) As(appID string) *Simulator {
	c := *s
	c.appID = appID
	return &c
}

// AppID is the institution the simulator acts for.
func (s *Simulator) AppID() string { return s.appID }

// UsePolicies replaces the city presets (for instance a file edited by an operator, parsed with
// LoadPolicies). Call it before the simulator is used.
func (s *Simulator) UsePolicies(ps *PolicySet) { s.policies = ps }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// forUpdate locks the rows a SELECT reads until the transaction ends, on PostgreSQL. SQLite has a
// single writer (BEGIN IMMEDIATE), which already excludes others.
func (s *Simulator) forUpdate() string {
	if s.db.Dialect() == sqlstore.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// writeTx runs fn in a write transaction and runs it again when it lost a race for a unique key
// (two first-time calls with one serial): the second run sees the winner's row.
func (s *Simulator) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for range 5 {
		err = s.db.WriteTx(ctx, fn)
		if err == nil || !sqlstore.IsUniqueViolation(err) {
			return err
		}
	}
	return err
}

// ---- persons ----

// Seed inserts the sandbox persons (SandboxPersons) that are not there yet, with their initial
// account balances. Safe to call at every start, and from several processes at once: existing
// persons and their balances are left alone.
func (s *Simulator) Seed(ctx context.Context) error { return s.AddPersons(ctx, SandboxPersons()...) }

// AddPersons inserts persons that do not exist yet (by psn_no, ID number or card number), each
// with an account holding p.AcctBalance; existing ones are left unchanged.
func (s *Simulator) AddPersons(ctx context.Context, persons ...Person) error {
	for _, p := range persons {
		if err := checkPerson(p); err != nil {
			return err
		}
	}
	now := sqlstore.MS(s.now())
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		const batch = 50
		for start := 0; start < len(persons); start += batch {
			part := persons[start:min(start+batch, len(persons))]
			var q strings.Builder
			q.WriteString(`INSERT INTO bureau_persons (psn_no, name, id_no, card_no, city_id, scenario, psn_type, insutype, status, created_at) VALUES `)
			args := make([]any, 0, len(part)*10)
			for i, p := range part {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(")
				for j := range 10 {
					if j > 0 {
						q.WriteString(", ")
					}
					fmt.Fprintf(&q, "$%d", len(args)+j+1)
				}
				q.WriteString(")")
				args = append(args, p.PsnNo, p.Name, p.IDNo, p.CardNo, p.CityID, p.Scenario, p.PsnType, p.Insutype, p.Status, now)
			}
			q.WriteString(` ON CONFLICT DO NOTHING RETURNING psn_no`)
			rows, err := tx.QueryContext(ctx, q.String(), args...)
			if err != nil {
				return fmt.Errorf("bureau: insert persons: %w", err)
			}
			inserted := map[string]bool{}
			for rows.Next() {
				var psnNo string
				if err := rows.Scan(&psnNo); err != nil {
					rows.Close()
					return err
				}
				inserted[psnNo] = true
			}
			if err := rows.Close(); err != nil {
				return err
			}
			for _, p := range part {
				if !inserted[p.PsnNo] {
					continue
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO bureau_accounts (psn_no, balance, updated_at) VALUES ($1, $2, $3)`,
					p.PsnNo, p.AcctBalance, now); err != nil {
					return fmt.Errorf("bureau: insert account: %w", err)
				}
			}
		}
		return nil
	})
}

func checkPerson(p Person) error {
	switch {
	case p.PsnNo == "" || p.Name == "" || p.CardNo == "" || p.CityID == "":
		return fmt.Errorf("bureau: person %q: psn_no, name, card_no and city_id are required", p.PsnNo)
	case !ValidIDNumber(p.IDNo):
		return fmt.Errorf("bureau: person %s: invalid ID number %s", p.PsnNo, medpay.MaskIDNo(p.IDNo))
	case p.PsnType != PsnEmployee && p.PsnType != PsnRetiree && p.PsnType != PsnResident:
		return fmt.Errorf("bureau: person %s: unknown psn_type %q", p.PsnNo, p.PsnType)
	case p.Status != StatusActive && p.Status != StatusSuspended:
		return fmt.Errorf("bureau: person %s: unknown status %q", p.PsnNo, p.Status)
	case p.AcctBalance < 0:
		return fmt.Errorf("bureau: person %s: negative balance", p.PsnNo)
	}
	return nil
}

const personSelect = `SELECT p.psn_no, p.name, p.id_no, p.card_no, p.city_id, p.scenario, p.psn_type, p.insutype, p.status, a.balance
	FROM bureau_persons p JOIN bureau_accounts a ON a.psn_no = p.psn_no`

func scanPerson(row interface{ Scan(...any) error }) (*Person, error) {
	var p Person
	err := row.Scan(&p.PsnNo, &p.Name, &p.IDNo, &p.CardNo, &p.CityID, &p.Scenario, &p.PsnType, &p.Insutype, &p.Status, &p.AcctBalance)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	p.PIN = SandboxPIN
	return &p, nil
}

// Persons lists every person with the current account balance, by psn_no.
func (s *Simulator) Persons(ctx context.Context) ([]Person, error) {
	rows, err := s.db.SQL().QueryContext(ctx, personSelect+` ORDER BY p.psn_no`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Person
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// PersonByIDNo returns the person with ID number idNo (a lower-case x is accepted), or
// medpay.ErrNotFound.
func (s *Simulator) PersonByIDNo(ctx context.Context, idNo string) (*Person, error) {
	idNo = strings.ToUpper(strings.TrimSpace(idNo))
	return scanPerson(s.db.SQL().QueryRowContext(ctx, personSelect+` WHERE p.id_no = $1`, idNo))
}

// PersonByPsnNo returns the person psnNo, or medpay.ErrNotFound.
func (s *Simulator) PersonByPsnNo(ctx context.Context, psnNo string) (*Person, error) {
	return scanPerson(s.db.SQL().QueryRowContext(ctx, personSelect+` WHERE p.psn_no = $1`, psnNo))
}

// lockPerson reads person psnNo in tx and locks the account row, the lock that orders every
// money movement of that person.
func (s *Simulator) lockPerson(ctx context.Context, tx *sql.Tx, psnNo string) (*Person, error) {
	p, err := scanPerson(tx.QueryRowContext(ctx, personSelect+` WHERE p.psn_no = $1`, psnNo))
	if err != nil {
		return nil, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT balance FROM bureau_accounts WHERE psn_no = $1`+s.forUpdate(), psnNo).Scan(&p.AcctBalance); err != nil {
		return nil, err
	}
	return p, nil
}

// Balance returns the personal account balance of psnNo, or medpay.ErrNotFound.
func (s *Simulator) Balance(ctx context.Context, psnNo string) (int64, error) {
	var b int64
	err := s.db.SQL().QueryRowContext(ctx, `SELECT balance FROM bureau_accounts WHERE psn_no = $1`, psnNo).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, medpay.ErrNotFound
	}
	return b, err
}

// Accumulator is a person's annual use of the pool in one med_type group (MedGroup).
type Accumulator struct {
	MedGroup       string
	DeductibleUsed int64
	PoolPaid       int64
}

// Accumulators returns psnNo's accumulators of year (CST), by group; none when nothing was settled.
func (s *Simulator) Accumulators(ctx context.Context, psnNo string, year int) ([]Accumulator, error) {
	rows, err := s.db.SQL().QueryContext(ctx, `SELECT med_group, dedc_used, pool_paid FROM bureau_accumulators
		WHERE psn_no = $1 AND year = $2 ORDER BY med_group`, psnNo, year)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Accumulator
	for rows.Next() {
		var a Accumulator
		if err := rows.Scan(&a.MedGroup, &a.DeductibleUsed, &a.PoolPaid); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func accumulator(ctx context.Context, q querier, psnNo string, year int, group string) (dedc, pool int64, err error) {
	err = q.QueryRowContext(ctx, `SELECT dedc_used, pool_paid FROM bureau_accumulators WHERE psn_no = $1 AND year = $2 AND med_group = $3`,
		psnNo, year, group).Scan(&dedc, &pool)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return dedc, pool, err
}

// ---- identity ----

// Identify (1101) checks name, ID number, card number and city against the bureau's records
// (card binding); an empty card number or city is not checked (they are optional in 1101). A mismatch is medpay.ErrIdentityMismatch (512) with a Chinese message naming
// the field; the ID number is never echoed in full. A suspended person verifies (binding
// succeeds) with Status "suspended".
func (s *Simulator) Identify(ctx context.Context, id medpay.Identity) (*medpay.InsuredPerson, error) {
	idNo := strings.ToUpper(strings.TrimSpace(id.IDNo))
	if !ValidIDNumber(idNo) {
		return nil, medpay.Errorf(medpay.ErrIdentityMismatch, "身份证号格式不正确（应为 18 位，末位校验码须正确）")
	}
	p, err := s.PersonByIDNo(ctx, idNo)
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, medpay.Errorf(medpay.ErrIdentityMismatch, "未查询到身份证号 %s 的参保登记信息", medpay.MaskIDNo(idNo))
	}
	if err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(id.Name) != p.Name:
		return nil, medpay.Errorf(medpay.ErrIdentityMismatch, "姓名与身份证号 %s 的参保登记信息不一致", medpay.MaskIDNo(idNo))
	case id.CardNo != "" && strings.TrimSpace(id.CardNo) != p.CardNo:
		return nil, medpay.Errorf(medpay.ErrIdentityMismatch, "社保卡号与参保登记信息不一致")
	case id.CityID != "" && strings.TrimSpace(id.CityID) != p.CityID:
		return nil, medpay.Errorf(medpay.ErrIdentityMismatch, "该人员未在所选城市（%s）参保", s.cityName(id.CityID))
	}
	return &medpay.InsuredPerson{PsnNo: p.PsnNo, Name: p.Name, IDNo: p.IDNo, CardNo: p.CardNo, CityID: p.CityID,
		Insutype: p.Insutype, PsnType: p.PsnType, Status: p.Status}, nil
}

func (s *Simulator) cityName(code string) string {
	if c, ok := s.policies.City(code); ok {
		return c.Name + " " + code
	}
	return code
}

// ---- settlement ----

// ResponseContent is the settlement detail passed back to the hospital (docs/api/bureau.md (response_content)), all fen.
type ResponseContent struct {
	SetlID          string      `json:"setl_id"` // empty in a pre-settlement
	PsnNo           string      `json:"psn_no"`
	Insutype        string      `json:"insutype"`
	PsnType         string      `json:"psn_type"`
	MedType         string      `json:"med_type"`
	HospLv          int         `json:"hosp_lv"`
	RatioPct        int         `json:"ratio_pct"`
	MedfeeSumamt    int64       `json:"medfee_sumamt"`
	FulamtOwnpayAmt int64       `json:"fulamt_ownpay_amt"`
	PreselfpayAmt   int64       `json:"preselfpay_amt"`
	InscpScpAmt     int64       `json:"inscp_scp_amt"`
	ActPayDedc      int64       `json:"act_pay_dedc"`
	HifpPay         int64       `json:"hifp_pay"`
	AcctPay         int64       `json:"acct_pay"`
	PsnCashPay      int64       `json:"psn_cash_pay"`
	Balc            int64       `json:"balc"`      // account balance after this settlement
	SetlTime        string      `json:"setl_time"` // yyyy-MM-dd HH:mm:ss, CST
	Items           []ItemSplit `json:"items"`
}

// computed is a split with everything needed to store it.
type computed struct {
	split   *Split
	medType string
	group   string
	year    int
	cityID  string
	resp    ResponseContent
}

func rejected(format string, args ...any) error {
	return medpay.Errorf(medpay.ErrBureauRejected, format, args...)
}

// compute applies the policy in force at now to req for person p (whose AcctBalance is current).
func (s *Simulator) compute(ctx context.Context, q querier, p *Person, req billRequest, now time.Time) (*computed, error) {
	if p.Status == StatusSuspended {
		return nil, rejected("参保状态暂停，暂不能享受医保待遇（参保人 %s）", medpay.MaskName(p.Name))
	}
	cityID := req.CityID
	if cityID == "" {
		cityID = p.CityID
	}
	if cityID != p.CityID {
		return nil, rejected("就医地 %s 与参保地 %s 不一致，模拟器不支持异地结算", s.cityName(cityID), s.cityName(p.CityID))
	}
	pol, ok := s.policies.PolicyFor(cityID, now)
	if !ok {
		return nil, rejected("统筹区 %s 没有生效的医保政策", cityID)
	}
	if req.HospLevel < HospCommunity || req.HospLevel > MaxHospLevel {
		return nil, rejected("医院等级 %d 无效（应为 0 社区、1、2、3）", req.HospLevel)
	}
	bill, err := ParseBill(req.RequestContent, req.OrderType, req.DefaultFee)
	if err != nil {
		return nil, rejected("费用明细有误：%v", err)
	}
	rule := pol.Rule(p.PsnType, req.HospLevel)
	year := now.In(CST).Year()
	group := MedGroup(bill.MedType)
	dedc, pool, err := accumulator(ctx, q, p.PsnNo, year, group)
	if err != nil {
		return nil, err
	}
	split, err := Calculate(bill, rule, EntitlementFor(rule, dedc, pool, p.AcctBalance))
	if err != nil {
		var be *BillError
		if errors.As(err, &be) {
			return nil, rejected("费用明细有误：%v", err)
		}
		return nil, err
	}
	return &computed{split: split, medType: bill.MedType, group: group, year: year, cityID: cityID,
		resp: ResponseContent{
			PsnNo: p.PsnNo, Insutype: p.Insutype, PsnType: p.PsnType, MedType: bill.MedType, HospLv: req.HospLevel,
			RatioPct: split.RatioPct, MedfeeSumamt: split.MedfeeSumamt, FulamtOwnpayAmt: split.FulamtOwnpayAmt,
			PreselfpayAmt: split.PreselfpayAmt, InscpScpAmt: split.InscpScpAmt, ActPayDedc: split.ActPayDedc,
			HifpPay: split.HifpPay, AcctPay: split.AcctPay, PsnCashPay: split.PsnCashPay,
			Balc: p.AcctBalance - split.AcctPay, SetlTime: now.In(CST).Format(time.DateTime), Items: split.Items,
		}}, nil
}

func (c *computed) content(setlID string) (string, error) {
	c.resp.SetlID = setlID
	b, err := json.Marshal(c.resp)
	return string(b), err
}

// billRequest is what the calculation needs of an upload.
type billRequest struct {
	PsnNo          string
	CityID         string
	HospLevel      int
	OrderType      string
	RequestContent string
	DefaultFee     int64
}
