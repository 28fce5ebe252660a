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

const refundColumns = `id, med_refund_id, order_id, merchant_id, hosp_out_refund_no, fingerprint, fields, part_refund_type,
	cash_refund_fee, insurance_refund_fee, hifp_refund, acct_refund, state, cash_status, insurance_status, status_desc,
	step, bureau_refund_id, cash_refund_id, success_time, created_at, updated_at, version`

func scanRefund(row scanner) (*medpay.Refund, error) {
	var r medpay.Refund
	var fields string
	var success, created, updated int64
	err := row.Scan(&r.ID, &r.MedRefundID, &r.OrderID, &r.MerchantID, &r.HospOutRefund, &r.Fingerprint, &fields,
		&r.PartRefundType, &r.CashRefundFee, &r.InsuranceRefundFee, &r.HifpRefund, &r.AcctRefund, &r.State,
		&r.CashStatus, &r.InsuranceStatus, &r.StatusDesc, &r.Step, &r.BureauRefundID, &r.CashRefundID,
		&success, &created, &updated, &r.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if r.Fields, err = decodeFields([]byte(fields)); err != nil {
		return nil, fmt.Errorf("refund %s fields: %w", r.MedRefundID, err)
	}
	r.SuccessTime, r.CreatedAt, r.UpdatedAt = fromMS(success), fromMS(created), fromMS(updated)
	return &r, nil
}

func (s *Store) refundList(ctx context.Context, q rowsQuerier, where string, args ...any) ([]*medpay.Refund, error) {
	return queryAll(ctx, q, scanRefund, `SELECT `+refundColumns+` FROM refunds WHERE `+where, args...)
}

// CreateRefund claims a refund of order orderID: inside one transaction that holds the order's row
// it reads the order and its earlier refunds, lets build decide the new refund's amounts (build
// must not have other effects: the transaction may be retried), and inserts it. Two racing
// refunds of one order are therefore decided one after the other and never exceed what was paid.
// A taken (merchant, hosp_out_refund_no) gives medpay.ErrConflict. It makes the call's pending
// NonceClaim in the same transaction (ErrReplay: nothing was inserted).
func (s *Store) CreateRefund(ctx context.Context, orderID int64, build func(o *medpay.Order, prior []*medpay.Refund) (*medpay.Refund, error)) (*medpay.Refund, error) {
	var out *medpay.Refund
	err := s.writeTxClaiming(ctx, func(tx *sql.Tx) error {
		o, err := s.scanOrder(tx.QueryRowContext(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1`+s.db.LockRow(), orderID))
		if err != nil {
			return err
		}
		prior, err := s.refundList(ctx, tx, `order_id = $1 ORDER BY id`, orderID)
		if err != nil {
			return err
		}
		r, err := build(o, prior)
		if err != nil {
			return err
		}
		if err := r.Check(); err != nil {
			return err
		}
		fields, err := json.Marshal(r.Fields)
		if err != nil {
			return err
		}
		now := s.Now()
		err = tx.QueryRowContext(ctx, `INSERT INTO refunds (med_refund_id, order_id, merchant_id, hosp_out_refund_no,
			fingerprint, fields, part_refund_type, cash_refund_fee, insurance_refund_fee, state, cash_status,
			insurance_status, status_desc, step, created_at, updated_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, 1) RETURNING id`,
			r.MedRefundID, orderID, r.MerchantID, r.HospOutRefund, r.Fingerprint, string(fields), r.PartRefundType,
			r.CashRefundFee, r.InsuranceRefundFee, r.State, r.CashStatus, r.InsuranceStatus, r.StatusDesc, r.Step, ms(now),
		).Scan(&r.ID)
		if isUniqueViolation(err) {
			return medpay.ErrConflict
		}
		if err != nil {
			return err
		}
		r.OrderID, r.Version, r.CreatedAt, r.UpdatedAt = orderID, 1, now, now
		out = r
		return nil
	})
	return out, err
}

// RefundByNo returns merchant's refund by hosp_out_refund_no.
func (s *Store) RefundByNo(ctx context.Context, merchantID int64, no string) (*medpay.Refund, error) {
	return scanRefund(s.db.sql.QueryRowContext(ctx, `SELECT `+refundColumns+` FROM refunds WHERE merchant_id = $1 AND hosp_out_refund_no = $2`, merchantID, no))
}

// RefundByMedRefundID returns merchant's refund by med_refund_id.
func (s *Store) RefundByMedRefundID(ctx context.Context, merchantID int64, id string) (*medpay.Refund, error) {
	return scanRefund(s.db.sql.QueryRowContext(ctx, `SELECT `+refundColumns+` FROM refunds WHERE merchant_id = $1 AND med_refund_id = $2`, merchantID, id))
}

// RefundByID returns the refund with med_refund_id whatever its merchant.
func (s *Store) RefundByID(ctx context.Context, id string) (*medpay.Refund, error) {
	return scanRefund(s.db.sql.QueryRowContext(ctx, `SELECT `+refundColumns+` FROM refunds WHERE med_refund_id = $1`, id))
}

// RefundsOfOrder lists an order's refunds, oldest first.
func (s *Store) RefundsOfOrder(ctx context.Context, orderID int64) ([]*medpay.Refund, error) {
	return s.refundList(ctx, s.db.sql, `order_id = $1 ORDER BY id`, orderID)
}

// RefundsToRecover lists refunds left mid-saga whose last change is older than before.
func (s *Store) RefundsToRecover(ctx context.Context, before time.Time, limit int) ([]*medpay.Refund, error) {
	return s.refundList(ctx, s.db.sql, `state = 'PROCESSING' AND step IN ('bureau', 'cash') AND updated_at < $1 ORDER BY updated_at LIMIT $2`, ms(before), limit)
}

// RefundChange is one transition of a refund and what it causes, committed together.
type RefundChange struct {
	Transfers []medpay.Transfer
	// Order, when set, moves the refund's order in the same transaction. Refunds of one order may
	// finish in any order and concurrently, so the statement sets only what it names and never
	// writes a copy of the order read earlier.
	Order *OrderMove
	Also  func(tx *sql.Tx) error
}

// OrderMove is what a refund changes of its order: its state and description, and the status of
// each leg that is not empty.
type OrderMove struct {
	State           medpay.TradeState
	StatusDesc      string
	CashStatus      string
	InsuranceStatus string
}

// UpdateRefund writes r if the row still has r.Version, with ch's effects, in one transaction.
func (s *Store) UpdateRefund(ctx context.Context, r *medpay.Refund, ch RefundChange) error {
	if err := r.Check(); err != nil {
		return err
	}
	if err := checkTransfers(ch.Transfers); err != nil {
		return err
	}
	now := s.Now()
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE refunds SET hifp_refund = $1, acct_refund = $2, state = $3, cash_status = $4,
			insurance_status = $5, status_desc = $6, step = $7, bureau_refund_id = $8, cash_refund_id = $9,
			success_time = $10, updated_at = $11, version = version + 1 WHERE id = $12 AND version = $13`,
			r.HifpRefund, r.AcctRefund, r.State, r.CashStatus, r.InsuranceStatus, r.StatusDesc, r.Step, r.BureauRefundID,
			r.CashRefundID, ms(r.SuccessTime), ms(now), r.ID, r.Version)
		if err := swapped(res, err); err != nil {
			return err
		}
		if err := insertTransfers(ctx, tx, fmt.Sprintf("%s-%d", r.MedRefundID, r.Version), r.OrderID, r.ID, ch.Transfers, now); err != nil {
			return err
		}
		if m := ch.Order; m != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = $1, status_desc = $2,
				cash_status = CASE WHEN $3 <> '' THEN $3 ELSE cash_status END,
				insurance_status = CASE WHEN $4 <> '' THEN $4 ELSE insurance_status END,
				updated_at = $5, version = version + 1 WHERE id = $6`,
				string(m.State), m.StatusDesc, m.CashStatus, m.InsuranceStatus, ms(now), r.OrderID); err != nil {
				return err
			}
		}
		if ch.Also != nil {
			return ch.Also(tx)
		}
		return nil
	})
	if err == nil {
		r.Version++
		r.UpdatedAt = now
	}
	return err
}

// OrdersPaidBetween lists merchant's orders paid in [from, to), by payment time: those now
// SUCCESS or REFUND (a refunded order was paid).
func (s *Store) OrdersPaidBetween(ctx context.Context, merchantID int64, from, to time.Time) ([]*medpay.Order, error) {
	return s.orderList(ctx, `merchant_id = $1 AND state IN ('SUCCESS', 'REFUND') AND time_end >= $2 AND time_end < $3
		ORDER BY time_end, id`, merchantID, ms(from), ms(to))
}

// OrderRefund is a refund with its order.
type OrderRefund struct {
	Order  *medpay.Order
	Refund *medpay.Refund
}

// RefundsSucceededBetween lists merchant's refunds that succeeded in [from, to).
func (s *Store) RefundsSucceededBetween(ctx context.Context, merchantID int64, from, to time.Time) ([]OrderRefund, error) {
	refunds, err := s.refundList(ctx, s.db.sql, `merchant_id = $1 AND state = 'SUCCESS' AND success_time >= $2 AND success_time < $3
		ORDER BY success_time, id`, merchantID, ms(from), ms(to))
	if err != nil {
		return nil, err
	}
	out := make([]OrderRefund, 0, len(refunds))
	orders := map[int64]*medpay.Order{} // an order with several refunds is read once
	for _, r := range refunds {
		o := orders[r.OrderID]
		if o == nil {
			if o, err = s.OrderByRowID(ctx, r.OrderID); err != nil {
				return nil, err
			}
			orders[r.OrderID] = o
		}
		out = append(out, OrderRefund{Order: o, Refund: r})
	}
	return out, nil
}

// Movement is the net of one order's ledger entries on one account over a period.
type Movement struct {
	OrderID int64
	Account string
	Amount  int64
}

// Movements returns, per order and account, the net of the ledger entries made in [from, to).
func (s *Store) Movements(ctx context.Context, from, to time.Time) ([]Movement, error) {
	rows, err := s.db.sql.QueryContext(ctx, `SELECT order_id, account, SUM(amount) FROM ledger_entries
		WHERE created_at >= $1 AND created_at < $2 GROUP BY order_id, account ORDER BY order_id, account`, ms(from), ms(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Movement
	for rows.Next() {
		var m Movement
		if err := rows.Scan(&m.OrderID, &m.Account, &m.Amount); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
