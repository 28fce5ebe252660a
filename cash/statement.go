package cash

import (
	"context"
	"time"

	"github.com/medpay/medpay/sqlstore"
)

// Statement kinds.
const (
	KindCharge = "charge"
	KindRefund = "refund"
)

// StatementEntry is one movement of the channel's day.
type StatementEntry struct {
	Time   time.Time
	Kind   string
	Serial string // the charge's or the refund's serial
	Charge string // refunds: the refunded charge's serial
	Payer  string
	Amount int64
}

// Statement lists the charges and refunds made in [from, to), the channel's own journal for
// reconciliation.
func (s *Simulator) Statement(ctx context.Context, from, to time.Time) ([]StatementEntry, error) {
	rows, err := s.db.SQL().QueryContext(ctx, `
		SELECT created_at, 'charge', serial, '', payer, amount FROM cash_charges WHERE created_at >= $1 AND created_at < $2
		UNION ALL
		SELECT r.created_at, 'refund', r.serial, r.charge_serial, c.payer, r.amount
		FROM cash_refunds r JOIN cash_charges c ON c.serial = r.charge_serial
		WHERE r.created_at >= $1 AND r.created_at < $2
		ORDER BY 1, 3`, sqlstore.MS(from), sqlstore.MS(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StatementEntry
	for rows.Next() {
		var e StatementEntry
		var at int64
		if err := rows.Scan(&at, &e.Kind, &e.Serial, &e.Charge, &e.Payer, &e.Amount); err != nil {
			return nil, err
		}
		e.Time = sqlstore.FromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Books is the channel's journal on its database for reconciliation: the payments and refunds
// of the merchant MchID (all merchants when empty) made over APIv3, and the wallet's charges and
// refunds of the in-process simulator, keyed the same way (Serial: out_trade_no or the charge
// serial; refunds name the paid order in Charge).
type Books struct {
	DB    *sqlstore.DB
	MchID string
}

// Statement lists the movements made in [from, to).
func (b Books) Statement(ctx context.Context, from, to time.Time) ([]StatementEntry, error) {
	out, err := (&Simulator{db: b.DB}).Statement(ctx, from, to)
	if err != nil {
		return nil, err
	}
	rows, err := b.DB.SQL().QueryContext(ctx, `
		SELECT paid_at, 'charge', out_trade_no, '', payer, total FROM cash_trades
		WHERE paid_at >= $1 AND paid_at < $2 AND paid_at > 0 AND (CAST($3 AS TEXT) = '' OR mchid = $3)
		UNION ALL
		SELECT r.created_at, 'refund', r.out_refund_no, t.out_trade_no, t.payer, r.amount
		FROM cash_trade_refunds r JOIN cash_trades t ON t.id = r.trade_id
		WHERE r.created_at >= $1 AND r.created_at < $2 AND r.status = 'SUCCESS' AND (CAST($3 AS TEXT) = '' OR r.mchid = $3)
		ORDER BY 1, 3`, sqlstore.MS(from), sqlstore.MS(to), b.MchID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e StatementEntry
		var at int64
		if err := rows.Scan(&at, &e.Kind, &e.Serial, &e.Charge, &e.Payer, &e.Amount); err != nil {
			return nil, err
		}
		e.Time = sqlstore.FromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
