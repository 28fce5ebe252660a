package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/medpay/medpay"
)

var _ medpay.OrderStore = (*Store)(nil)

const orderColumns = `id, med_trans_id, merchant_id, provider_id, hosp_out_trade_no, fingerprint, fields,
	order_type, pay_type, total_fee, cash_fee, insurance_fee, hifp_pay, acct_pay, city_id, state,
	cash_status, insurance_status, status_desc, psn_no, card_no, insurance_order_id, cash_order_id,
	response_content, step, attempt, time_expire, time_end, created_at, updated_at, version,
	pay_ord_id, pay_token, pay_auth_no, generation`

// CreateOrder inserts o; a taken (merchant, hosp_out_trade_no) gives medpay.ErrConflict.
func (s *Store) CreateOrder(ctx context.Context, o *medpay.Order) error {
	args, err := s.orderInsertArgs(o)
	if err != nil {
		return err
	}
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, insertOrderStmt+` RETURNING id`, args...).Scan(&o.ID)
		if isUniqueViolation(err) {
			return medpay.ErrConflict
		}
		o.Version = 1
		o.UpdatedAt = o.CreatedAt
		return err
	})
}

// PlaceOrder inserts o, or returns the order that already holds its (merchant, hosp_out_trade_no)
// and inserts nothing, without a read before the insert. It makes the call's pending NonceClaim
// with the insert, atomically (ErrReplay: nothing was inserted). When the number is taken the
// claim is made all the same, and the holder is returned.
//
// On SQLite this is one write transaction (joining the group commit). On PostgreSQL it is one
// statement in autocommit, one round trip instead of four (BEGIN, claim, insert, COMMIT): the
// claim and a conditional insert in one data-modifying WITH.
func (s *Store) PlaceOrder(ctx context.Context, o *medpay.Order) (prev *medpay.Order, err error) {
	args, err := s.orderInsertArgs(o)
	if err != nil {
		return nil, err
	}
	if s.db.dialect == Postgres {
		return s.placeOrderStatement(ctx, o, args)
	}
	err = s.writeTxClaiming(ctx, func(tx *sql.Tx) error {
		prev = nil
		err := tx.QueryRowContext(ctx, insertOrderStmt+placeOnConflict, args...).Scan(&o.ID)
		if errors.Is(err, sql.ErrNoRows) {
			// Taken: read the holder in the same transaction.
			prev, err = s.orderWhere(ctx, tx, `merchant_id = $1 AND hosp_out_trade_no = $2`, o.MerchantID, o.HospOutTradeNo)
			return err
		}
		if isUniqueViolation(err) { // another unique key (med_trans_id)
			return medpay.ErrConflict
		}
		o.Version = 1
		o.UpdatedAt = o.CreatedAt
		return err
	})
	if err != nil {
		return nil, err
	}
	return prev, nil
}

// placeOrderStatement is PlaceOrder in one autocommit statement (PostgreSQL). A taken number is
// read afterwards: the statement waited for the transaction that took it to commit.
func (s *Store) placeOrderStatement(ctx context.Context, o *medpay.Order, args []any) (*medpay.Order, error) {
	c := pendingClaim(ctx)
	var id sql.NullInt64
	claimed := int64(1)
	err := s.db.retry(ctx, func() error {
		if c == nil {
			err := s.db.sql.QueryRowContext(ctx, insertOrderStmt+placeOnConflict, args...).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				id = sql.NullInt64{}
				return nil
			}
			return err
		}
		return s.db.sql.QueryRowContext(ctx, placeClaimingStmt,
			append(args, c.MchID, c.Nonce, ms(c.At), ms(c.At.Add(-NonceWindow)))...).Scan(&claimed, &id)
	})
	if isUniqueViolation(err) { // another unique key (med_trans_id)
		return nil, medpay.ErrConflict
	}
	if err != nil {
		return nil, err
	}
	if claimed == 0 {
		return nil, ErrReplay
	}
	if c != nil {
		c.made.Store(true)
	}
	if !id.Valid {
		return s.orderWhere(ctx, s.db.sql, `merchant_id = $1 AND hosp_out_trade_no = $2`, o.MerchantID, o.HospOutTradeNo)
	}
	o.ID, o.Version, o.UpdatedAt = id.Int64, 1, o.CreatedAt
	return nil, nil
}

const (
	insertOrderInto = `INSERT INTO orders (med_trans_id, merchant_id, provider_id, hosp_out_trade_no,
	fingerprint, fields, order_type, pay_type, total_fee, cash_fee, insurance_fee, hifp_pay, acct_pay, city_id,
	state, cash_status, insurance_status, status_desc, psn_no, card_no, response_content, step, attempt,
	time_expire, created_at, updated_at, version, insurance_order_id, cash_order_id, time_end,
	pay_ord_id, pay_token, pay_auth_no, generation)`
	insertOrderValues = `$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
	$24, $25, $25, 1, $26, $27, $28, $29, $30, $31, $32`
	insertOrderStmt = insertOrderInto + ` VALUES (` + insertOrderValues + `)`
	placeOnConflict = ` ON CONFLICT (merchant_id, hosp_out_trade_no) DO NOTHING RETURNING id`
	// placeClaimingStmt claims ($33, $34) at $35 as claimNonceStmt does ($36: the window's start)
	// and inserts the order only if the claim held; it returns how many claims were made (0: a
	// replay, nothing written) and the new order's id (NULL: nothing inserted).
	placeClaimingStmt = `WITH claim AS (
		INSERT INTO nonces (mch_id, nonce, seen_at) VALUES ($33, $34, $35)
		ON CONFLICT (mch_id, nonce) DO UPDATE SET seen_at = excluded.seen_at WHERE nonces.seen_at < $36
		RETURNING 1
	), placed AS (
		` + insertOrderInto + ` SELECT ` + insertOrderValues + ` WHERE EXISTS (SELECT 1 FROM claim)` + placeOnConflict + `
	)
	SELECT (SELECT COUNT(*) FROM claim), (SELECT id FROM placed)`
)

// orderInsertArgs checks o's split and returns the arguments of insertOrderStmt, sealing what is
// sealed at rest.
func (s *Store) orderInsertArgs(o *medpay.Order) ([]any, error) {
	if err := o.CheckSplit(); err != nil {
		return nil, err
	}
	fields, err := json.Marshal(s.sealFields(o.Fields))
	if err != nil {
		return nil, err
	}
	o.Generation = max(o.Generation, medpay.GenerationXML)
	return []any{o.MedTransID, o.MerchantID, o.ProviderID, o.HospOutTradeNo, o.Fingerprint, string(fields), o.OrderType,
		o.PayType, o.TotalFee, o.CashFee, o.InsuranceFee, o.HifpPay, o.AcctPay, o.CityID, string(o.State),
		o.CashStatus, o.InsuranceStatus, o.StatusDesc, o.PsnNo, s.seal(o.CardNo), o.ResponseContent, o.Step, o.Attempt,
		ms(o.TimeExpire), ms(o.CreatedAt), o.InsuranceOrderID, o.CashOrderID, ms(o.TimeEnd),
		o.PayOrdID, o.PayToken, s.sealOptional(o.PayAuthNo), o.Generation}, nil
}

type scanner interface{ Scan(dest ...any) error }

// sealOptional seals a secret, leaving an empty one empty.
func (s *Store) sealOptional(v string) string {
	if v == "" {
		return ""
	}
	return s.box.Seal(v)
}

func (s *Store) openOptional(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	return s.box.Open(sealed)
}

// scanOrder reads an order row, opening its sealed card number and personal fields.
func (s *Store) scanOrder(row scanner) (*medpay.Order, error) {
	var o medpay.Order
	var fields, state, payAuth string
	var expire, end, created, updated int64
	err := row.Scan(&o.ID, &o.MedTransID, &o.MerchantID, &o.ProviderID, &o.HospOutTradeNo, &o.Fingerprint, &fields,
		&o.OrderType, &o.PayType, &o.TotalFee, &o.CashFee, &o.InsuranceFee, &o.HifpPay, &o.AcctPay, &o.CityID, &state,
		&o.CashStatus, &o.InsuranceStatus, &o.StatusDesc, &o.PsnNo, &o.CardNo, &o.InsuranceOrderID, &o.CashOrderID,
		&o.ResponseContent, &o.Step, &o.Attempt, &expire, &end, &created, &updated, &o.Version,
		&o.PayOrdID, &o.PayToken, &payAuth, &o.Generation)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if o.Fields, err = decodeFields([]byte(fields)); err != nil {
		return nil, fmt.Errorf("order %s fields: %w", o.MedTransID, err)
	}
	if err := s.openFields(o.Fields); err != nil {
		return nil, fmt.Errorf("order %s: %w", o.MedTransID, err)
	}
	if o.CardNo, err = s.open(o.CardNo); err != nil {
		return nil, fmt.Errorf("order %s card: %w", o.MedTransID, err)
	}
	o.State = medpay.TradeState(state)
	o.TimeExpire, o.TimeEnd, o.CreatedAt, o.UpdatedAt = fromMS(expire), fromMS(end), fromMS(created), fromMS(updated)
	if o.PayAuthNo, err = s.openOptional(payAuth); err != nil {
		return nil, fmt.Errorf("order %s pay_auth_no: %w", o.MedTransID, err)
	}
	o.LoadFields()
	return &o, nil
}

func (s *Store) orderWhere(ctx context.Context, q querier, where string, args ...any) (*medpay.Order, error) {
	return s.scanOrder(q.QueryRowContext(ctx, `SELECT `+orderColumns+` FROM orders WHERE `+where, args...))
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// OrderByMedTransID returns merchant's order by med_trans_id.
func (s *Store) OrderByMedTransID(ctx context.Context, merchantID int64, id string) (*medpay.Order, error) {
	return s.orderWhere(ctx, s.db.sql, `merchant_id = $1 AND med_trans_id = $2`, merchantID, id)
}

// OrderByTradeNo returns merchant's order by hosp_out_trade_no.
func (s *Store) OrderByTradeNo(ctx context.Context, merchantID int64, tradeNo string) (*medpay.Order, error) {
	return s.orderWhere(ctx, s.db.sql, `merchant_id = $1 AND hosp_out_trade_no = $2`, merchantID, tradeNo)
}

// OrderByID returns the order with med_trans_id whatever its merchant.
func (s *Store) OrderByID(ctx context.Context, id string) (*medpay.Order, error) {
	return s.orderWhere(ctx, s.db.sql, `med_trans_id = $1`, id)
}

// OrderByRowID returns the order with the internal id.
func (s *Store) OrderByRowID(ctx context.Context, id int64) (*medpay.Order, error) {
	return s.orderWhere(ctx, s.db.sql, `id = $1`, id)
}

// OrdersToRecover lists orders left in the middle of a saga whose last change is older than
// before (all of them when before is far in the future), oldest first, at most limit.
func (s *Store) OrdersToRecover(ctx context.Context, before time.Time, limit int) ([]*medpay.Order, error) {
	steps := medpay.RecoverySteps
	return s.orderList(ctx, `step IN ($1, $2, $3) AND generation = 1 AND updated_at < $4 ORDER BY updated_at LIMIT $5`,
		steps[0], steps[1], steps[2], ms(before), limit)
}

// OrdersAwaitingCash lists unpaid orders whose cash prepay is placed at the channel (the payer
// is at the cashier), last changed before before.
func (s *Store) OrdersAwaitingCash(ctx context.Context, before time.Time, limit int) ([]*medpay.Order, error) {
	return s.orderList(ctx, `state = 'NOTPAY' AND step = $1 AND updated_at < $2 ORDER BY updated_at LIMIT $3`,
		medpay.StepCashPay, ms(before), limit)
}

// OrdersExpired lists NOTPAY orders whose time_expire has passed.
func (s *Store) OrdersExpired(ctx context.Context, now time.Time, limit int) ([]*medpay.Order, error) {
	return s.orderList(ctx, `state = 'NOTPAY' AND generation = 1 AND time_expire <= $1 ORDER BY time_expire LIMIT $2`, ms(now), limit)
}

func (s *Store) orderList(ctx context.Context, where string, args ...any) ([]*medpay.Order, error) {
	return queryAll(ctx, s.db.sql, s.scanOrder, `SELECT `+orderColumns+` FROM orders WHERE `+where, args...)
}

// rowsQuerier is what *sql.DB and *sql.Tx have in common for queries returning rows.
type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryAll runs query and scans each row with scan.
func queryAll[T any](ctx context.Context, q rowsQuerier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// OrderChange is one state transition of an order and everything it causes, committed together.
type OrderChange struct {
	Transfers []medpay.Transfer
	// Also runs inside the same transaction (the outbox row of the notification).
	Also func(tx *sql.Tx) error
}

// UpdateOrder writes o's mutable columns if the row still has o.Version (compare-and-swap),
// together with ch's ledger transfers and side effects, in one transaction. On success o.Version
// is bumped; when the row changed meanwhile it returns medpay.ErrConflict and writes nothing.
func (s *Store) UpdateOrder(ctx context.Context, o *medpay.Order, ch OrderChange) error {
	if err := o.CheckSplit(); err != nil {
		return err
	}
	if err := checkTransfers(ch.Transfers); err != nil {
		return err
	}
	now := s.Now()
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE orders SET pay_type = $1, cash_fee = $2, insurance_fee = $3,
			hifp_pay = $4, acct_pay = $5, state = $6, cash_status = $7, insurance_status = $8, status_desc = $9,
			psn_no = $10, card_no = $11, insurance_order_id = $12, cash_order_id = $13, response_content = $14,
			step = $15, attempt = $16, time_end = $17, updated_at = $18, version = version + 1
			WHERE id = $19 AND version = $20`,
			o.PayType, o.CashFee, o.InsuranceFee, o.HifpPay, o.AcctPay, string(o.State), o.CashStatus,
			o.InsuranceStatus, o.StatusDesc, o.PsnNo, s.seal(o.CardNo), o.InsuranceOrderID, o.CashOrderID, o.ResponseContent,
			o.Step, o.Attempt, ms(o.TimeEnd), ms(now), o.ID, o.Version)
		if err := swapped(res, err); err != nil {
			return err
		}
		if err := insertTransfers(ctx, tx, fmt.Sprintf("%s-%d", o.MedTransID, o.Version), o.ID, 0, ch.Transfers, now); err != nil {
			return err
		}
		if ch.Also != nil {
			return ch.Also(tx)
		}
		return nil
	})
	if err == nil {
		o.Version++
		o.UpdatedAt = now
	}
	return err
}

// checkTransfers rejects a change with an invalid transfer before anything is written.
func checkTransfers(ts []medpay.Transfer) error {
	for _, t := range ts {
		if err := t.Check(); err != nil {
			return err
		}
	}
	return nil
}

// swapped turns a compare-and-swap UPDATE's result into medpay.ErrConflict when no row matched.
func swapped(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return medpay.ErrConflict
	}
	return nil
}

// insertTransfers writes each transfer as its two ledger entries, named prefix-i.
func insertTransfers(ctx context.Context, tx *sql.Tx, prefix string, orderID, refundID int64, ts []medpay.Transfer, now time.Time) error {
	for i, t := range ts {
		_, err := tx.ExecContext(ctx, `INSERT INTO ledger_entries (transfer, order_id, refund_id, account, amount, created_at)
			VALUES ($1, $2, $3, $4, $5, $6), ($1, $2, $3, $7, $8, $6)`,
			fmt.Sprintf("%s-%d", prefix, i), orderID, refundID, t.From, -t.Amount, ms(now), t.To, t.Amount)
		if err != nil {
			return err
		}
	}
	return nil
}

// Balance is the sum of an account's ledger entries.
func (s *Store) Balance(ctx context.Context, account string) (int64, error) {
	var sum int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account = $1`, account).Scan(&sum)
	return sum, err
}

// LedgerTotal is the sum of every entry; it is zero unless the ledger is broken.
func (s *Store) LedgerTotal(ctx context.Context) (int64, error) {
	var sum int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM ledger_entries`).Scan(&sum)
	return sum, err
}

// OrderLedger returns the net movement per account caused by one order.
func (s *Store) OrderLedger(ctx context.Context, orderID int64) (map[string]int64, error) {
	rows, err := s.db.sql.QueryContext(ctx, `SELECT account, SUM(amount) FROM ledger_entries WHERE order_id = $1 GROUP BY account`, orderID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var a string
		var v int64
		if err := rows.Scan(&a, &v); err != nil {
			return nil, err
		}
		if v != 0 {
			out[a] = v
		}
	}
	return out, rows.Err()
}

// SetPayer records the payer of an order placed without one (扫码付: whoever scans its code) and
// the figures (and the bureau's upload) of the pre-settlement made for them, if the row still has o.Version
// (compare-and-swap: of two payers scanning at once, one wins). It writes o's fields (where the
// payer's openid is) and its split.
func (s *Store) SetPayer(ctx context.Context, o *medpay.Order) error {
	if err := o.CheckSplit(); err != nil {
		return err
	}
	fields, err := json.Marshal(s.sealFields(o.Fields))
	if err != nil {
		return err
	}
	now := s.Now()
	err = s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE orders SET fields = $1, pay_type = $2, cash_fee = $3, insurance_fee = $4,
			hifp_pay = $5, acct_pay = $6, cash_status = $7, insurance_status = $8, psn_no = $9, card_no = $10,
			response_content = $11, updated_at = $12, pay_ord_id = $15, pay_token = $16, pay_auth_no = $17,
			version = version + 1
			WHERE id = $13 AND version = $14 AND state = 'NOTPAY'`,
			string(fields), o.PayType, o.CashFee, o.InsuranceFee, o.HifpPay, o.AcctPay, o.CashStatus, o.InsuranceStatus,
			o.PsnNo, s.seal(o.CardNo), o.ResponseContent, ms(now), o.ID, o.Version,
			o.PayOrdID, o.PayToken, s.sealOptional(o.PayAuthNo))
		return swapped(res, err)
	})
	if err == nil {
		o.Version++
		o.UpdatedAt = now
	}
	return err
}
