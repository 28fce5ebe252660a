package bureau

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
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
}

var _ medpay.Bureau = (*Simulator)(nil)

// New returns a simulator keeping its books in db, reading the time from now (time.Now when
// nil) and applying the embedded city presets.
func New(db *sqlstore.DB, now func() time.Time) *Simulator {
	if now == nil {
		now = time.Now
	}
	return &Simulator{db: db, now: now, policies: defaultPolicies}
}

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

// VerifyIdentity checks name, ID number, card number and city against the bureau's records
// (card binding). A mismatch is medpay.ErrIdentityMismatch (512) with a Chinese message naming
// the field; the ID number is never echoed in full. A suspended person verifies (binding
// succeeds) with Status "suspended".
func (s *Simulator) VerifyIdentity(ctx context.Context, id medpay.Identity) (*medpay.InsuredPerson, error) {
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
	case strings.TrimSpace(id.CardNo) != p.CardNo:
		return nil, medpay.Errorf(medpay.ErrIdentityMismatch, "社保卡号与参保登记信息不一致")
	case strings.TrimSpace(id.CityID) != p.CityID:
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
func (s *Simulator) compute(ctx context.Context, q querier, p *Person, req medpay.SettleRequest, now time.Time) (*computed, error) {
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

func (c *computed) settlement(setlID, serial string) (*medpay.Settlement, error) {
	c.resp.SetlID = setlID
	b, err := json.Marshal(c.resp)
	if err != nil {
		return nil, err
	}
	return &medpay.Settlement{SetlID: setlID, Serial: serial, MedfeeSumamt: c.split.MedfeeSumamt,
		HifpPay: c.split.HifpPay, AcctPay: c.split.AcctPay, PsnCashPay: c.split.PsnCashPay, ResponseContent: string(b)}, nil
}

// PreSettle computes the split of a bill against the person's current entitlements without
// moving money. The settlement id is assigned by Settle, so the result's SetlID is empty.
// A suspended person, a malformed bill (with the item and field at fault), a city other than the
// person's or a city without policy is medpay.ErrBureauRejected (506).
func (s *Simulator) PreSettle(ctx context.Context, req medpay.SettleRequest) (*medpay.Settlement, error) {
	p, err := s.PersonByPsnNo(ctx, req.PsnNo)
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, rejected("参保人 %s 不存在", req.PsnNo)
	}
	if err != nil {
		return nil, err
	}
	c, err := s.compute(ctx, s.db.SQL(), p, req, s.now())
	if err != nil {
		return nil, err
	}
	return c.settlement("", req.Serial)
}

// idFor derives a bureau id from a serial: prefix, CST date, 16 hex digits of SHA-256.
func idFor(prefix, serial string, at time.Time) string {
	h := sha256.Sum256([]byte(prefix + "\x00" + serial))
	return prefix + at.In(CST).Format("20060102") + strings.ToUpper(hex.EncodeToString(h[:8]))
}

func fingerprint(req medpay.SettleRequest, cityID string) string {
	h := sha256.New()
	for _, f := range []string{req.PsnNo, cityID, strconv.Itoa(req.HospLevel), req.OrderType, req.OrgNo,
		req.RequestContent, strconv.FormatInt(req.DefaultFee, 10)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

type setlRow struct {
	SetlID, Serial, Fingerprint, PsnNo, MedGroup, State, ResponseContent, Scenario string
	Year                                                                           int
	Medfee, Dedc, Hifp, Acct, Cash                                                 int64
}

func (r *setlRow) settlement() *medpay.Settlement {
	return &medpay.Settlement{SetlID: r.SetlID, Serial: r.Serial, MedfeeSumamt: r.Medfee, HifpPay: r.Hifp,
		AcctPay: r.Acct, PsnCashPay: r.Cash, ResponseContent: r.ResponseContent}
}

func getSettlement(ctx context.Context, q querier, serial string) (*setlRow, error) {
	var r setlRow
	err := q.QueryRowContext(ctx, `SELECT s.setl_id, s.serial, s.fingerprint, s.psn_no, s.med_group, s.state, s.response_content,
			COALESCE(p.scenario, ''), s.year, s.medfee_sumamt, s.act_pay_dedc, s.hifp_pay, s.acct_pay, s.psn_cash_pay
		FROM bureau_settlements s LEFT JOIN bureau_persons p ON p.psn_no = s.psn_no WHERE s.serial = $1`, serial).
		Scan(&r.SetlID, &r.Serial, &r.Fingerprint, &r.PsnNo, &r.MedGroup, &r.State, &r.ResponseContent,
			&r.Scenario, &r.Year, &r.Medfee, &r.Dedc, &r.Hifp, &r.Acct, &r.Cash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func outcomeUnknown(op, serial string) error {
	return fmt.Errorf("bureau: %s %s: 医保中心响应超时: %w", op, serial, medpay.ErrOutcomeUnknown)
}

// Settle commits the split of a bill exactly once per req.Serial: a repeated call (even
// concurrent) returns the settlement made by the first. The split is computed against the
// person's entitlements at the time of the settle, and the settlement row, the account debit and
// the accumulators are written in one transaction. A serial already reversed (see
// StateTombstone) is refused; a serial reused for a different bill is medpay.ErrConflict.
//
// Scenarios: bureau_timeout persons always get medpay.ErrOutcomeUnknown (the settlement is made
// when valid); settle_lost persons get it from the call that made the settlement, and the
// settlement from later calls.
func (s *Simulator) Settle(ctx context.Context, req medpay.SettleRequest) (*medpay.Settlement, error) {
	if req.Serial == "" {
		return nil, rejected("缺少结算流水号")
	}
	now := s.now()
	var (
		res      *medpay.Settlement
		created  bool
		scenario string
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, created, scenario = nil, false, ""
		p, err := s.lockPerson(ctx, tx, req.PsnNo)
		if errors.Is(err, medpay.ErrNotFound) {
			return rejected("参保人 %s 不存在", req.PsnNo)
		}
		if err != nil {
			return err
		}
		scenario = p.Scenario
		cityID := req.CityID
		if cityID == "" {
			cityID = p.CityID
		}
		fp := fingerprint(req, cityID)
		old, err := getSettlement(ctx, tx, req.Serial)
		switch {
		case err == nil && (old.State == StateTombstone || old.State == StateReversed):
			return rejected("结算流水号 %s 已冲正，不能再结算", req.Serial)
		case err == nil && old.Fingerprint != fp:
			return fmt.Errorf("bureau: settle serial %s already used for another bill: %w", req.Serial, medpay.ErrConflict)
		case err == nil:
			res = old.settlement()
			return nil
		case !errors.Is(err, medpay.ErrNotFound):
			return err
		}
		c, err := s.compute(ctx, tx, p, req, now)
		if err != nil {
			return err
		}
		setlID := idFor("S", req.Serial, now)
		st, err := c.settlement(setlID, req.Serial)
		if err != nil {
			return err
		}
		if err := c.split.Check(); err != nil { // again, where it is stored
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bureau_settlements (setl_id, serial, fingerprint, psn_no, city_id, org_no,
				order_type, med_type, med_group, year, hosp_lv, medfee_sumamt, act_pay_dedc, hifp_pay, acct_pay, psn_cash_pay,
				response_content, state, settled_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			setlID, req.Serial, fp, p.PsnNo, c.cityID, req.OrgNo, req.OrderType, c.medType, c.group, c.year, req.HospLevel,
			c.split.MedfeeSumamt, c.split.ActPayDedc, c.split.HifpPay, c.split.AcctPay, c.split.PsnCashPay,
			st.ResponseContent, StateSettled, sqlstore.MS(now)); err != nil {
			return err
		}
		if err := moveMoney(ctx, tx, p.PsnNo, c.year, c.group, -c.split.AcctPay, c.split.ActPayDedc, c.split.HifpPay, now); err != nil {
			return err
		}
		res, created = st, true
		return nil
	})
	// A bureau_timeout person never gets an answer, whether the settle was made or refused by the
	// bureau; only our own system errors come through.
	if scenario == ScenarioBureauTimeout && (err == nil || medpay.ErrorCode(err) != medpay.ErrSystem) {
		return nil, outcomeUnknown("settle", req.Serial)
	}
	if err != nil {
		return nil, err
	}
	if scenario == ScenarioSettleLost && created {
		return nil, outcomeUnknown("settle", req.Serial)
	}
	return res, nil
}

// moveMoney changes psnNo's account by acctDelta and the accumulators of (year, group) by
// dedcDelta and poolDelta, in tx. The CHECK constraints keep all three from going negative.
func moveMoney(ctx context.Context, tx *sql.Tx, psnNo string, year int, group string, acctDelta, dedcDelta, poolDelta int64, now time.Time) error {
	at := sqlstore.MS(now)
	res, err := tx.ExecContext(ctx, `UPDATE bureau_accounts SET balance = balance + $1, updated_at = $2 WHERE psn_no = $3`, acctDelta, at, psnNo)
	if err != nil {
		return fmt.Errorf("bureau: account %s: %w", psnNo, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("bureau: account %s: %d rows updated (%v)", psnNo, n, err)
	}
	if dedcDelta >= 0 && poolDelta >= 0 {
		// A settle: the year's row may not exist yet.
		if _, err := tx.ExecContext(ctx, `INSERT INTO bureau_accumulators (psn_no, year, med_group, dedc_used, pool_paid, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (psn_no, year, med_group) DO UPDATE SET dedc_used = bureau_accumulators.dedc_used + excluded.dedc_used,
				pool_paid = bureau_accumulators.pool_paid + excluded.pool_paid, updated_at = excluded.updated_at`,
			psnNo, year, group, dedcDelta, poolDelta, at); err != nil {
			return fmt.Errorf("bureau: accumulators %s %d %s: %w", psnNo, year, group, err)
		}
		return nil
	}
	// A reverse or refund: the settle made the row (SQLite checks the inserted values of an upsert
	// before it sees the conflict, so negative deltas go through UPDATE).
	res, err = tx.ExecContext(ctx, `UPDATE bureau_accumulators SET dedc_used = dedc_used + $1, pool_paid = pool_paid + $2, updated_at = $3
		WHERE psn_no = $4 AND year = $5 AND med_group = $6`, dedcDelta, poolDelta, at, psnNo, year, group)
	if err != nil {
		return fmt.Errorf("bureau: accumulators %s %d %s: %w", psnNo, year, group, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("bureau: accumulators %s %d %s: %d rows updated (%v)", psnNo, year, group, n, err)
	}
	return nil
}

// QuerySettlement returns the settlement made under serial, also when it was refunded since
// (SettlementState tells), or medpay.ErrNotFound when there is none or it was reversed. For a
// bureau_timeout person the bureau cannot be reached: medpay.ErrOutcomeUnknown.
func (s *Simulator) QuerySettlement(ctx context.Context, serial string) (*medpay.Settlement, error) {
	r, err := getSettlement(ctx, s.db.SQL(), serial)
	if err != nil {
		return nil, err
	}
	if r.Scenario == ScenarioBureauTimeout {
		return nil, outcomeUnknown("query", serial)
	}
	if r.State != StateSettled && r.State != StateRefunded {
		return nil, medpay.ErrNotFound
	}
	return r.settlement(), nil
}

// SettlementState returns the state of the serial in the bureau's books (StateSettled,
// StateReversed, StateRefunded, StateTombstone), or medpay.ErrNotFound. For tests and
// reconciliation; it ignores scenarios.
func (s *Simulator) SettlementState(ctx context.Context, serial string) (string, error) {
	r, err := getSettlement(ctx, s.db.SQL(), serial)
	if err != nil {
		return "", err
	}
	return r.State, nil
}

// Reverse (冲正) undoes the settlement made under serial: the account and the accumulators get
// back exactly what it took. Idempotent. Reversing a serial under which nothing was settled
// succeeds and records a tombstone (StateTombstone), so that a late Settle with that serial is
// refused. A refunded settlement cannot be reversed (medpay.ErrBureauRejected).
func (s *Simulator) Reverse(ctx context.Context, serial string) error {
	if serial == "" {
		return rejected("缺少冲正流水号")
	}
	now := s.now()
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		r, err := getSettlement(ctx, tx, serial)
		if errors.Is(err, medpay.ErrNotFound) {
			_, err := tx.ExecContext(ctx, `INSERT INTO bureau_settlements (setl_id, serial, fingerprint, psn_no, city_id, state, reversed_at)
				VALUES ($1, $2, '', '', '', $3, $4)`, idFor("T", serial, now), serial, StateTombstone, sqlstore.MS(now))
			return err // a unique violation means a settle won the race: writeTx runs this again
		}
		if err != nil {
			return err
		}
		if r.State == StateTombstone {
			return nil
		}
		if _, err := s.lockPerson(ctx, tx, r.PsnNo); err != nil {
			return err
		}
		if r, err = getSettlement(ctx, tx, serial); err != nil { // fresh, under the lock
			return err
		}
		switch r.State {
		case StateReversed:
			return nil
		case StateRefunded:
			return rejected("结算 %s 已退款，不能冲正", r.SetlID)
		}
		res, err := tx.ExecContext(ctx, `UPDATE bureau_settlements SET state = $1, reversed_at = $2 WHERE serial = $3 AND state = $4`,
			StateReversed, sqlstore.MS(now), serial, StateSettled)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("bureau: reverse %s: %d rows updated (%v)", serial, n, err)
		}
		return moveMoney(ctx, tx, r.PsnNo, r.Year, r.MedGroup, r.Acct, -r.Dedc, -r.Hifp, now)
	})
}

// ---- refunds ----

type refundRow struct {
	RefundID, Serial, SettleSerial string
	Hifp, Acct                     int64
}

func (r *refundRow) refund() *medpay.BureauRefund {
	return &medpay.BureauRefund{RefundID: r.RefundID, Serial: r.Serial, HifpPay: r.Hifp, AcctPay: r.Acct}
}

func getRefund(ctx context.Context, q querier, serial string) (*refundRow, error) {
	var r refundRow
	err := q.QueryRowContext(ctx, `SELECT refund_id, serial, settle_serial, hifp_pay, acct_pay FROM bureau_refunds WHERE serial = $1`, serial).
		Scan(&r.RefundID, &r.Serial, &r.SettleSerial, &r.Hifp, &r.Acct)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Refund gives back the whole insured part (hifp_pay and acct_pay) of the settlement made under
// settleSerial, once: the account and the accumulators are restored in the same transaction.
// Idempotent on serial (the same serial for another settlement is medpay.ErrConflict). A second
// refund of the same settlement under another serial is medpay.ErrRefundExceeds (515); a
// settlement that does not exist or was reversed is medpay.ErrNotFound.
//
// Scenario refund_unknown: the call that makes the refund answers medpay.ErrOutcomeUnknown;
// retries and QueryRefund return the refund.
func (s *Simulator) Refund(ctx context.Context, serial, settleSerial string) (*medpay.BureauRefund, error) {
	if serial == "" || settleSerial == "" {
		return nil, medpay.Errorf(medpay.ErrBureauRefund, "缺少退款流水号或原结算流水号")
	}
	now := s.now()
	var (
		res      *medpay.BureauRefund
		created  bool
		scenario string
	)
	replay := func(r *refundRow) error {
		if r.SettleSerial != settleSerial {
			return fmt.Errorf("bureau: refund serial %s already used for settlement %s: %w", serial, r.SettleSerial, medpay.ErrConflict)
		}
		res = r.refund()
		return nil
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, created, scenario = nil, false, ""
		if r, err := getRefund(ctx, tx, serial); err == nil {
			return replay(r)
		} else if !errors.Is(err, medpay.ErrNotFound) {
			return err
		}
		st, err := getSettlement(ctx, tx, settleSerial)
		if err != nil && !errors.Is(err, medpay.ErrNotFound) {
			return err
		}
		if err != nil || st.State == StateTombstone || st.State == StateReversed {
			return fmt.Errorf("bureau: refund %s: settlement %s not found or reversed: %w", serial, settleSerial, medpay.ErrNotFound)
		}
		p, err := s.lockPerson(ctx, tx, st.PsnNo)
		if err != nil {
			return err
		}
		scenario = p.Scenario
		// Fresh reads under the person's lock.
		if r, err := getRefund(ctx, tx, serial); err == nil {
			return replay(r)
		} else if !errors.Is(err, medpay.ErrNotFound) {
			return err
		}
		if st, err = getSettlement(ctx, tx, settleSerial); err != nil {
			return err
		}
		switch st.State {
		case StateReversed:
			return fmt.Errorf("bureau: refund %s: settlement %s was reversed: %w", serial, settleSerial, medpay.ErrNotFound)
		case StateRefunded:
			return medpay.Errorf(medpay.ErrRefundExceeds, "结算 %s 已全额退款，不能再次退款", st.SetlID)
		}
		r := refundRow{RefundID: idFor("R", serial, now), Serial: serial, SettleSerial: settleSerial, Hifp: st.Hifp, Acct: st.Acct}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bureau_refunds (refund_id, serial, settle_serial, setl_id, psn_no, hifp_pay, acct_pay, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			r.RefundID, r.Serial, r.SettleSerial, st.SetlID, st.PsnNo, r.Hifp, r.Acct, sqlstore.MS(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bureau_settlements SET state = $1, refunded_at = $2 WHERE serial = $3`,
			StateRefunded, sqlstore.MS(now), settleSerial); err != nil {
			return err
		}
		if err := moveMoney(ctx, tx, st.PsnNo, st.Year, st.MedGroup, st.Acct, -st.Dedc, -st.Hifp, now); err != nil {
			return err
		}
		res, created = r.refund(), true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if scenario == ScenarioRefundUnknown && created {
		return nil, outcomeUnknown("refund", serial)
	}
	return res, nil
}

// QueryRefund returns the refund made under serial, or medpay.ErrNotFound.
func (s *Simulator) QueryRefund(ctx context.Context, serial string) (*medpay.BureauRefund, error) {
	r, err := getRefund(ctx, s.db.SQL(), serial)
	if err != nil {
		return nil, err
	}
	return r.refund(), nil
}

// ---- statement ----

// Statement entry kinds.
const (
	KindSettle  = "settle"
	KindReverse = "reverse"
	KindRefund  = "refund"
)

// StatementEntry is one line of the bureau's daily statement. Amounts are positive; Kind tells
// the direction (a settle takes hifp_pay and acct_pay, a reverse or refund gives them back).
type StatementEntry struct {
	Time         time.Time
	Kind         string // KindSettle, KindReverse, KindRefund
	Serial       string // the settle serial (settle, reverse) or the refund serial
	SetlID       string
	PsnNo        string
	HifpPay      int64
	AcctPay      int64
	RefundID     string // refunds only
	SettleSerial string // refunds only: the refunded settlement's serial
}

// Statement lists the day's movements (the CST calendar day containing day), as a journal:
// every settlement made that day (whatever became of it later), every reversal of a
// settlement made that day and every refund made that day, by time. Tombstones move no money
// and are not listed.
func (s *Simulator) Statement(ctx context.Context, day time.Time) ([]StatementEntry, error) {
	d := day.In(CST)
	start := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, CST)
	from, to := sqlstore.MS(start), sqlstore.MS(start.AddDate(0, 0, 1))
	var out []StatementEntry
	q := func(kind, query string) error {
		rows, err := s.db.SQL().QueryContext(ctx, query, from, to)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e := StatementEntry{Kind: kind}
			var at int64
			if err := rows.Scan(&at, &e.Serial, &e.SetlID, &e.PsnNo, &e.HifpPay, &e.AcctPay, &e.RefundID, &e.SettleSerial); err != nil {
				return err
			}
			e.Time = sqlstore.FromMS(at)
			out = append(out, e)
		}
		return rows.Err()
	}
	if err := q(KindSettle, `SELECT settled_at, serial, setl_id, psn_no, hifp_pay, acct_pay, '', '' FROM bureau_settlements
		WHERE settled_at >= $1 AND settled_at < $2 AND state <> 'tombstone'`); err != nil {
		return nil, err
	}
	if err := q(KindReverse, `SELECT reversed_at, serial, setl_id, psn_no, hifp_pay, acct_pay, '', '' FROM bureau_settlements
		WHERE reversed_at >= $1 AND reversed_at < $2 AND state = 'reversed'`); err != nil {
		return nil, err
	}
	if err := q(KindRefund, `SELECT created_at, serial, setl_id, psn_no, hifp_pay, acct_pay, refund_id, settle_serial FROM bureau_refunds
		WHERE created_at >= $1 AND created_at < $2`); err != nil {
		return nil, err
	}
	order := map[string]int{KindSettle: 0, KindReverse: 1, KindRefund: 2}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.Kind != b.Kind {
			return order[a.Kind] < order[b.Kind]
		}
		return a.Serial < b.Serial
	})
	return out, nil
}
