package bureau

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// The simulator's books on the national model (national.md §3–4): an upload (6201) makes an
// order with a payOrdId; a settle (6202) settles it once; a revoke (6401) cancels it while it is
// not settled; refunds (6203) give parts of a settlement back. Every money movement is one
// transaction with the row that causes it; the person's account row is the lock that orders
// them.

// idFor derives a bureau id from a key: prefix, CST date, 16 hex digits of SHA-256.
func idFor(prefix, key string, at time.Time) string {
	h := sha256.Sum256([]byte(prefix + "\x00" + key))
	return prefix + at.In(CST).Format("20060102") + strings.ToUpper(hex.EncodeToString(h[:8]))
}

func randomToken(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

func fingerprint(req billRequest, orgCodg string) string {
	h := sha256.New()
	for _, f := range []string{req.PsnNo, req.CityID, strconv.Itoa(req.HospLevel), req.OrderType, orgCodg,
		req.RequestContent, strconv.FormatInt(req.DefaultFee, 10)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// LostAnswer is a scenario's answer that does not reach the caller (medpay.ErrOutcomeUnknown):
// in process it is this error; served over the network, the answer is held past the caller's
// deadline (Hold: bureau_timeout) or dropped.
type LostAnswer struct {
	Op, Key string
	Hold    bool
}

func (e *LostAnswer) Error() string {
	return fmt.Sprintf("bureau: %s %s: 医保中心响应超时: %v", e.Op, e.Key, medpay.ErrOutcomeUnknown)
}

func (e *LostAnswer) Unwrap() error { return medpay.ErrOutcomeUnknown }

func outcomeUnknown(op, key string, hold bool) error {
	return &LostAnswer{Op: op, Key: key, Hold: hold}
}

// orderRow is a row of bureau_orders.
type orderRow struct {
	PayOrdID, PayToken, AppID, MedOrgOrd, Fingerprint, PsnNo, CityID, OrgCodg, OrderType string
	RequestContent, SetlID, OrgBizSer, MedGroup, ResponseContent, Scenario               string
	HospLv, OrdStas, Year                                                                int
	DefaultFee, Medfee, Dedc, Hifp, Acct, Cash, RefdHifp, RefdAcct, RefdCash             int64
	SettledAt                                                                            int64
}

const orderSelect = `SELECT o.pay_ord_id, o.pay_token, o.app_id, o.med_org_ord, o.fingerprint, o.psn_no, o.city_id, o.org_codg,
	o.order_type, o.request_content, COALESCE(o.setl_id, ''), o.org_biz_ser, o.med_group, o.response_content,
	COALESCE(p.scenario, ''), o.hosp_lv, o.ord_stas, o.year, o.default_fee, o.medfee_sumamt, o.act_pay_dedc, o.hifp_pay,
	o.acct_pay, o.psn_cash_pay, o.refd_hifp, o.refd_acct, o.refd_cash, o.settled_at
	FROM bureau_orders o LEFT JOIN bureau_persons p ON p.psn_no = o.psn_no`

func scanOrder(row interface{ Scan(...any) error }) (*orderRow, error) {
	var r orderRow
	err := row.Scan(&r.PayOrdID, &r.PayToken, &r.AppID, &r.MedOrgOrd, &r.Fingerprint, &r.PsnNo, &r.CityID, &r.OrgCodg,
		&r.OrderType, &r.RequestContent, &r.SetlID, &r.OrgBizSer, &r.MedGroup, &r.ResponseContent,
		&r.Scenario, &r.HospLv, &r.OrdStas, &r.Year, &r.DefaultFee, &r.Medfee, &r.Dedc, &r.Hifp,
		&r.Acct, &r.Cash, &r.RefdHifp, &r.RefdAcct, &r.RefdCash, &r.SettledAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *orderRow) settlement() *medpay.Settlement {
	st := &medpay.Settlement{PayOrdID: r.PayOrdID, PayToken: r.PayToken, OrdStas: r.OrdStas, SetlID: r.SetlID,
		MedfeeSumamt: r.Medfee, HifpPay: r.Hifp, AcctPay: r.Acct, PsnCashPay: r.Cash, ResponseContent: r.ResponseContent}
	if r.SettledAt != 0 {
		st.SetlTime = sqlstore.FromMS(r.SettledAt)
	}
	return st
}

// order reads the institution's order payOrdID; another institution's is not found.
func (s *Simulator) order(ctx context.Context, q querier, payOrdID string) (*orderRow, error) {
	r, err := scanOrder(q.QueryRowContext(ctx, orderSelect+` WHERE o.pay_ord_id = $1 AND o.app_id = $2`, payOrdID, s.appID))
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, rejected("支付订单号 %s 不存在", payOrdID)
	}
	return r, err
}

// checkToken compares the order's payToken when the caller gave one.
func checkToken(r *orderRow, token string) error {
	if token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(r.PayToken)) != 1 {
		return rejected("payToken 与支付订单号 %s 不符", r.PayOrdID)
	}
	return nil
}

// Upload (6201) pre-settles a bill for the person of req.PayAuthNo and records it as an order
// (ordStas 1). The same MedOrgOrd with the same content answers the same order; with another
// content it is refused. A suspended person, a malformed bill, a city other than the person's
// or without policy is refused (medpay.ErrBureauRejected, 506).
func (s *Simulator) Upload(ctx context.Context, req medpay.UploadRequest) (*medpay.Settlement, error) {
	switch {
	case req.MedOrgOrd == "":
		return nil, rejected("缺少 medOrgOrd")
	case req.PayAuthNo == "":
		return nil, rejected("缺少 payAuthNo")
	}
	now := s.now()
	auth, err := s.payAuth(ctx, req.PayAuthNo, now)
	if err != nil {
		return nil, err
	}
	if req.PsnNo != "" && req.PsnNo != auth.PsnNo {
		return nil, rejected("payAuthNo 不属于参保人 %s", req.PsnNo)
	}
	p, err := s.PersonByPsnNo(ctx, auth.PsnNo)
	if err != nil {
		return nil, err
	}
	br := billRequest{PsnNo: p.PsnNo, CityID: req.CityID, HospLevel: req.HospLevel, OrderType: req.OrderType,
		RequestContent: req.RequestContent, DefaultFee: req.DefaultFee}
	if br.CityID == "" {
		br.CityID = p.CityID
	}
	c, err := s.compute(ctx, s.db.SQL(), p, br, now)
	if err != nil {
		return nil, err
	}
	content, err := c.content("")
	if err != nil {
		return nil, err
	}
	fp := fingerprint(br, req.OrgCodg)
	var res *medpay.Settlement
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		old, err := scanOrder(tx.QueryRowContext(ctx, orderSelect+` WHERE o.app_id = $1 AND o.med_org_ord = $2`, s.appID, req.MedOrgOrd))
		switch {
		case err == nil && old.Fingerprint != fp:
			return rejected("medOrgOrd %s 已上传，内容不同", req.MedOrgOrd)
		case err == nil:
			res = old.settlement()
			return nil
		case !errors.Is(err, medpay.ErrNotFound):
			return err
		}
		r := orderRow{PayOrdID: idFor("P", s.appID+"\x00"+req.MedOrgOrd, now), PayToken: randomToken("T")}
		_, err = tx.ExecContext(ctx, `INSERT INTO bureau_orders (pay_ord_id, pay_token, app_id, med_org_ord, fingerprint, psn_no,
				city_id, org_codg, hosp_lv, order_type, request_content, default_fee, ord_stas, med_group, year, medfee_sumamt,
				act_pay_dedc, hifp_pay, acct_pay, psn_cash_pay, response_content, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
			r.PayOrdID, r.PayToken, s.appID, req.MedOrgOrd, fp, p.PsnNo, c.cityID, req.OrgCodg, req.HospLevel, req.OrderType,
			req.RequestContent, req.DefaultFee, medpay.OrdUploaded, c.group, c.year, c.split.MedfeeSumamt, c.split.ActPayDedc,
			c.split.HifpPay, c.split.AcctPay, c.split.PsnCashPay, content, sqlstore.MS(now))
		if err != nil {
			return err
		}
		res = &medpay.Settlement{PayOrdID: r.PayOrdID, PayToken: r.PayToken, OrdStas: medpay.OrdUploaded,
			MedfeeSumamt: c.split.MedfeeSumamt, HifpPay: c.split.HifpPay, AcctPay: c.split.AcctPay,
			PsnCashPay: c.split.PsnCashPay, ResponseContent: content}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Settle (6202) settles an uploaded order exactly once, against the person's entitlements at
// the time of the settle: the order row, the account debit and the accumulators in one
// transaction. A repeat with the same OrgBizSer answers the settlement; a settle of a settled
// order under another OrgBizSer, or of a revoked one, is refused.
//
// Scenarios: for a bureau_timeout person the bureau times out before it settles
// (medpay.ErrOutcomeUnknown, nothing settled); for a settle_lost person the call that makes the
// settlement loses its answer (medpay.ErrOutcomeUnknown), later calls get the settlement.
func (s *Simulator) Settle(ctx context.Context, req medpay.SettleRequest) (*medpay.Settlement, error) {
	switch {
	case req.PayOrdID == "":
		return nil, rejected("缺少 payOrdId")
	case req.OrgBizSer == "":
		return nil, rejected("缺少 orgBizSer")
	}
	now := s.now()
	if req.PayAuthNo != "" {
		if _, err := s.payAuth(ctx, req.PayAuthNo, now); err != nil {
			return nil, err
		}
	}
	var (
		res      *medpay.Settlement
		created  bool
		scenario string
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, created, scenario = nil, false, ""
		r, err := s.order(ctx, tx, req.PayOrdID)
		if err != nil {
			return err
		}
		if err := checkToken(r, req.PayToken); err != nil {
			return err
		}
		p, err := s.lockPerson(ctx, tx, r.PsnNo)
		if err != nil {
			return err
		}
		scenario = p.Scenario
		if r, err = s.order(ctx, tx, req.PayOrdID); err != nil { // fresh, under the lock
			return err
		}
		switch {
		case r.OrdStas == medpay.OrdRevoked:
			return rejected("支付订单 %s 已撤销，不能结算", r.PayOrdID)
		case r.OrdStas != medpay.OrdUploaded && r.OrgBizSer == req.OrgBizSer:
			res = r.settlement()
			return nil
		case r.OrdStas != medpay.OrdUploaded:
			return rejected("支付订单 %s 已结算", r.PayOrdID)
		case scenario == ScenarioBureauTimeout:
			return nil
		}
		c, err := s.compute(ctx, tx, p, billRequest{PsnNo: r.PsnNo, CityID: r.CityID, HospLevel: r.HospLv,
			OrderType: r.OrderType, RequestContent: r.RequestContent, DefaultFee: r.DefaultFee}, now)
		if err != nil {
			return err
		}
		if err := c.split.Check(); err != nil {
			return err
		}
		setlID := idFor("S", r.PayOrdID, now)
		content, err := c.content(setlID)
		if err != nil {
			return err
		}
		res2, err := tx.ExecContext(ctx, `UPDATE bureau_orders SET ord_stas = $1, setl_id = $2, org_biz_ser = $3, med_group = $4,
				year = $5, medfee_sumamt = $6, act_pay_dedc = $7, hifp_pay = $8, acct_pay = $9, psn_cash_pay = $10,
				response_content = $11, settled_at = $12
			WHERE pay_ord_id = $13 AND ord_stas = $14`,
			medpay.OrdSettled, setlID, req.OrgBizSer, c.group, c.year, c.split.MedfeeSumamt, c.split.ActPayDedc,
			c.split.HifpPay, c.split.AcctPay, c.split.PsnCashPay, content, sqlstore.MS(now), r.PayOrdID, medpay.OrdUploaded)
		if err != nil {
			return err
		}
		if n, err := res2.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("bureau: settle %s: %d rows updated (%v)", r.PayOrdID, n, err)
		}
		if err := moveMoney(ctx, tx, p.PsnNo, c.year, c.group, -c.split.AcctPay, c.split.ActPayDedc, c.split.HifpPay, now); err != nil {
			return err
		}
		res = &medpay.Settlement{PayOrdID: r.PayOrdID, PayToken: r.PayToken, OrdStas: medpay.OrdSettled, SetlID: setlID,
			SetlTime: sqlstore.FromMS(sqlstore.MS(now)), MedfeeSumamt: c.split.MedfeeSumamt, HifpPay: c.split.HifpPay,
			AcctPay: c.split.AcctPay, PsnCashPay: c.split.PsnCashPay, ResponseContent: content}
		created = true
		return nil
	})
	// A bureau_timeout person never gets an answer, whether the bureau refused or not; only our
	// own system errors come through.
	if scenario == ScenarioBureauTimeout && (err == nil || medpay.ErrorCode(err) != medpay.ErrSystem) {
		return nil, outcomeUnknown("settle", req.PayOrdID, true)
	}
	if err != nil {
		return nil, err
	}
	if scenario == ScenarioSettleLost && created {
		return nil, outcomeUnknown("settle", req.PayOrdID, false)
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
	// A refund: the settle made the row (SQLite checks the inserted values of an upsert before
	// it sees the conflict, so negative deltas go through UPDATE).
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

// Query (6301) returns the order's state and figures (the settlement's once settled). For a
// bureau_timeout person the bureau cannot be reached: medpay.ErrOutcomeUnknown.
func (s *Simulator) Query(ctx context.Context, ref medpay.OrderRef) (*medpay.Settlement, error) {
	r, err := s.order(ctx, s.db.SQL(), ref.PayOrdID)
	if err != nil {
		return nil, err
	}
	if err := checkToken(r, ref.PayToken); err != nil {
		return nil, err
	}
	if r.Scenario == ScenarioBureauTimeout {
		return nil, outcomeUnknown("query", ref.PayOrdID, true)
	}
	return r.settlement(), nil
}

// OrderState returns the ordStas of payOrdID whoever uploaded it, ignoring scenarios (tests,
// reconciliation), or medpay.ErrNotFound.
func (s *Simulator) OrderState(ctx context.Context, payOrdID string) (int, error) {
	r, err := scanOrder(s.db.SQL().QueryRowContext(ctx, orderSelect+` WHERE o.pay_ord_id = $1`, payOrdID))
	if err != nil {
		return 0, err
	}
	return r.OrdStas, nil
}

// Revoke (6401) cancels an order that was not settled (ordStas 7), so that a late settle is
// refused. Idempotent. A settled order is refused: refund it instead.
func (s *Simulator) Revoke(ctx context.Context, ref medpay.OrderRef) error {
	if ref.PayOrdID == "" {
		return rejected("缺少 payOrdId")
	}
	now := s.now()
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		r, err := s.order(ctx, tx, ref.PayOrdID)
		if err != nil {
			return err
		}
		if err := checkToken(r, ref.PayToken); err != nil {
			return err
		}
		if _, err := s.lockPerson(ctx, tx, r.PsnNo); err != nil {
			return err
		}
		if r, err = s.order(ctx, tx, ref.PayOrdID); err != nil {
			return err
		}
		switch r.OrdStas {
		case medpay.OrdRevoked:
			return nil
		case medpay.OrdUploaded:
		default:
			return rejected("支付订单 %s 已结算，不能撤销，请退款", r.PayOrdID)
		}
		_, err = tx.ExecContext(ctx, `UPDATE bureau_orders SET ord_stas = $1, revoked_at = $2 WHERE pay_ord_id = $3 AND ord_stas = $4`,
			medpay.OrdRevoked, sqlstore.MS(now), r.PayOrdID, medpay.OrdUploaded)
		return err
	})
}

// ---- refunds ----

type refundRow struct {
	RefundID, AppRefdSn, PayOrdID, RefdType string
	Hifp, Acct, Cash                        int64
}

func (r *refundRow) refund() *medpay.BureauRefund {
	return &medpay.BureauRefund{RefundID: r.RefundID, AppRefdSn: r.AppRefdSn, HifpPay: r.Hifp, AcctPay: r.Acct, CashPay: r.Cash}
}

func (s *Simulator) getRefund(ctx context.Context, q querier, appRefdSn string) (*refundRow, error) {
	var r refundRow
	err := q.QueryRowContext(ctx, `SELECT refund_id, app_refd_sn, pay_ord_id, refd_type, hifp_pay, acct_pay, cash_pay
		FROM bureau_order_refunds WHERE app_id = $1 AND app_refd_sn = $2`, s.appID, appRefdSn).
		Scan(&r.RefundID, &r.AppRefdSn, &r.PayOrdID, &r.RefdType, &r.Hifp, &r.Acct, &r.Cash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// checkRefund applies the component rules of 6203 to a request against order r.
func checkRefund(req medpay.RefundRequest, r *orderRow) error {
	leftHifp, leftAcct, leftCash := r.Hifp-r.RefdHifp, r.Acct-r.RefdAcct, r.Cash-r.RefdCash
	if req.HifpPay < 0 || req.AcctPay < 0 || req.CashPay < 0 {
		return rejected("退款金额不能为负")
	}
	switch req.RefdType {
	case medpay.RefundAll:
		if r.RefdHifp+r.RefdAcct+r.RefdCash != 0 || req.HifpPay != r.Hifp || req.AcctPay != r.Acct || req.CashPay != r.Cash {
			return rejected("ALL 退款须等于原结算的每一项金额")
		}
	case medpay.RefundCash:
		if req.HifpPay != 0 || req.AcctPay != 0 || req.CashPay == 0 {
			return rejected("CASH 退款只能退现金部分")
		}
	case medpay.RefundHI:
		if req.CashPay != 0 || req.HifpPay+req.AcctPay == 0 {
			return rejected("HI 退款只能退医保部分（统筹基金、个人账户）")
		}
	default:
		return rejected("refdType %q 无效（ALL、CASH、HI）", req.RefdType)
	}
	if req.HifpPay > leftHifp || req.AcctPay > leftAcct || req.CashPay > leftCash {
		return medpay.Errorf(medpay.ErrRefundExceeds, "退款金额超过原结算剩余可退金额（统筹 %d、个人账户 %d、现金 %d 分）",
			leftHifp, leftAcct, leftCash)
	}
	return nil
}

// Refund (6203) gives back parts of a settlement under req.AppRefdSn, once: the account and
// the accumulators are restored in the same transaction (the deductible when the insured part
// is back in full). A repeat of AppRefdSn answers the first refund; the same AppRefdSn for
// another order or other amounts is medpay.ErrConflict. An order that is not settled is
// refused; amounts above what is left are medpay.ErrRefundExceeds (515).
//
// Scenario refund_unknown: the call that makes the refund loses its answer
// (medpay.ErrOutcomeUnknown); a repeat answers the refund.
func (s *Simulator) Refund(ctx context.Context, req medpay.RefundRequest) (*medpay.BureauRefund, error) {
	if req.AppRefdSn == "" || req.PayOrdID == "" {
		return nil, medpay.Errorf(medpay.ErrBureauRefund, "缺少 appRefdSn 或 payOrdId")
	}
	now := s.now()
	var (
		res      *medpay.BureauRefund
		created  bool
		scenario string
	)
	replay := func(r *refundRow) error {
		if r.PayOrdID != req.PayOrdID || r.RefdType != req.RefdType || r.Hifp != req.HifpPay || r.Acct != req.AcctPay || r.Cash != req.CashPay {
			return fmt.Errorf("bureau: appRefdSn %s already used for another refund: %w", req.AppRefdSn, medpay.ErrConflict)
		}
		res = r.refund()
		return nil
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, created, scenario = nil, false, ""
		if r, err := s.getRefund(ctx, tx, req.AppRefdSn); err == nil {
			return replay(r)
		} else if !errors.Is(err, medpay.ErrNotFound) {
			return err
		}
		o, err := s.order(ctx, tx, req.PayOrdID)
		if err != nil {
			return err
		}
		p, err := s.lockPerson(ctx, tx, o.PsnNo)
		if err != nil {
			return err
		}
		scenario = p.Scenario
		// Fresh reads under the person's lock.
		if r, err := s.getRefund(ctx, tx, req.AppRefdSn); err == nil {
			return replay(r)
		} else if !errors.Is(err, medpay.ErrNotFound) {
			return err
		}
		if o, err = s.order(ctx, tx, req.PayOrdID); err != nil {
			return err
		}
		switch o.OrdStas {
		case medpay.OrdSettled, medpay.OrdRefundedPart:
		case medpay.OrdRefunded:
			return medpay.Errorf(medpay.ErrRefundExceeds, "支付订单 %s 已全额退款", o.PayOrdID)
		default:
			return rejected("支付订单 %s 未结算，不能退款", o.PayOrdID)
		}
		if err := checkRefund(req, o); err != nil {
			return err
		}
		r := refundRow{RefundID: idFor("R", s.appID+"\x00"+req.AppRefdSn, now), AppRefdSn: req.AppRefdSn, PayOrdID: o.PayOrdID,
			RefdType: req.RefdType, Hifp: req.HifpPay, Acct: req.AcctPay, Cash: req.CashPay}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bureau_order_refunds (refund_id, app_id, app_refd_sn, pay_ord_id, refd_type,
				hifp_pay, acct_pay, cash_pay, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			r.RefundID, s.appID, r.AppRefdSn, r.PayOrdID, r.RefdType, r.Hifp, r.Acct, r.Cash, sqlstore.MS(now)); err != nil {
			return err
		}
		hifp, acct, cash := o.RefdHifp+r.Hifp, o.RefdAcct+r.Acct, o.RefdCash+r.Cash
		stas := medpay.OrdRefundedPart
		if hifp == o.Hifp && acct == o.Acct && cash == o.Cash {
			stas = medpay.OrdRefunded
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bureau_orders SET refd_hifp = $1, refd_acct = $2, refd_cash = $3, ord_stas = $4
			WHERE pay_ord_id = $5`, hifp, acct, cash, stas, o.PayOrdID); err != nil {
			return err
		}
		var dedc int64
		if hifp == o.Hifp && acct == o.Acct && (r.Hifp > 0 || r.Acct > 0) {
			dedc = o.Dedc // the insured part is back in full: so is the deductible it used
		}
		if r.Hifp > 0 || r.Acct > 0 || dedc > 0 {
			if err := moveMoney(ctx, tx, o.PsnNo, o.Year, o.MedGroup, r.Acct, -dedc, -r.Hifp, now); err != nil {
				return err
			}
		}
		res, created = r.refund(), true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if scenario == ScenarioRefundUnknown && created {
		return nil, outcomeUnknown("refund", req.AppRefdSn, false)
	}
	return res, nil
}

// ---- statement ----

// Statement (3201) lists the institution's movements of the CST calendar day containing day,
// as a journal by time: every settlement made that day (whatever became of it later), every
// refund and every revocation.
func (s *Simulator) Statement(ctx context.Context, day time.Time) ([]medpay.StatementEntry, error) {
	d := day.In(CST)
	start := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, CST)
	from, to := sqlstore.MS(start), sqlstore.MS(start.AddDate(0, 0, 1))
	var out []medpay.StatementEntry
	q := func(kind, query string) error {
		rows, err := s.db.SQL().QueryContext(ctx, query, s.appID, from, to)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e := medpay.StatementEntry{Kind: kind}
			var at int64
			if err := rows.Scan(&at, &e.PayOrdID, &e.MedOrgOrd, &e.SetlID, &e.PsnNo, &e.HifpPay, &e.AcctPay, &e.CashPay,
				&e.RefundID, &e.AppRefdSn); err != nil {
				return err
			}
			e.Time = sqlstore.FromMS(at)
			out = append(out, e)
		}
		return rows.Err()
	}
	// A refunded settlement's row holds the settled amounts; refd_* are the refunds' sums.
	if err := q(medpay.StmtSettle, `SELECT settled_at, pay_ord_id, med_org_ord, setl_id, psn_no, hifp_pay, acct_pay, psn_cash_pay, '', ''
		FROM bureau_orders WHERE app_id = $1 AND settled_at >= $2 AND settled_at < $3`); err != nil {
		return nil, err
	}
	if err := q(medpay.StmtRevoke, `SELECT revoked_at, pay_ord_id, med_org_ord, '', psn_no, 0, 0, 0, '', ''
		FROM bureau_orders WHERE app_id = $1 AND revoked_at >= $2 AND revoked_at < $3`); err != nil {
		return nil, err
	}
	if err := q(medpay.StmtRefund, `SELECT r.created_at, r.pay_ord_id, o.med_org_ord, COALESCE(o.setl_id, ''), o.psn_no, r.hifp_pay,
			r.acct_pay, r.cash_pay, r.refund_id, r.app_refd_sn
		FROM bureau_order_refunds r JOIN bureau_orders o ON o.pay_ord_id = r.pay_ord_id
		WHERE r.app_id = $1 AND r.created_at >= $2 AND r.created_at < $3`); err != nil {
		return nil, err
	}
	order := map[string]int{medpay.StmtSettle: 0, medpay.StmtRevoke: 1, medpay.StmtRefund: 2}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.Kind != b.Kind {
			return order[a.Kind] < order[b.Kind]
		}
		return a.PayOrdID+a.AppRefdSn < b.PayOrdID+b.AppRefdSn
	})
	return out, nil
}
