package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// Row is an outbox row, for operators.
type Row struct {
	ID         int64
	NotifyID   string
	Kind       string
	MerchantID int64
	OrderID    int64
	RefundID   int64
	URL        string
	Body       []byte
	State      string
	Attempts   int
	NextAt     time.Time // the next attempt (pending), or the last one
	LeaseUntil time.Time // zero unless a worker holds it
	CreatedAt  time.Time
	DoneAt     time.Time // delivered or dead
}

// Attempt is one recorded delivery attempt.
type Attempt struct {
	At         time.Time
	HTTPStatus int // 0 when no answer came
	Latency    time.Duration
	Answer     string // the first AnswerLimit bytes of the answer
	Error      string // empty when delivered
}

// Filter selects outbox rows; zero fields select all.
type Filter struct {
	MerchantID int64
	OrderID    int64
	State      string // StatePending, StateDelivered or StateDead
	Limit      int    // 50 by default, at most 1000
}

// ErrInFlight is returned by Resend while a worker is attempting the notification.
var ErrInFlight = errors.New("notification is being attempted, try again in a moment")

const rowColumns = `id, notify_id, kind, merchant_id, order_id, refund_id, url, body, state, attempts,
	next_at, lease_until, created_at, done_at`

func scanRow(sc interface{ Scan(...any) error }) (*Row, error) {
	var r Row
	var body string
	var next, lease, created, done int64
	if err := sc.Scan(&r.ID, &r.NotifyID, &r.Kind, &r.MerchantID, &r.OrderID, &r.RefundID, &r.URL, &body,
		&r.State, &r.Attempts, &next, &lease, &created, &done); err != nil {
		return nil, err
	}
	r.Body = []byte(body)
	r.NextAt, r.LeaseUntil = sqlstore.FromMS(next), sqlstore.FromMS(lease)
	r.CreatedAt, r.DoneAt = sqlstore.FromMS(created), sqlstore.FromMS(done)
	return &r, nil
}

// List returns the rows matching f, newest first.
func List(ctx context.Context, db *sqlstore.DB, f Filter) ([]Row, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.MerchantID != 0 {
		add("merchant_id = $%d", f.MerchantID)
	}
	if f.OrderID != 0 {
		add("order_id = $%d", f.OrderID)
	}
	switch f.State {
	case "":
	case StatePending, StateDelivered, StateDead:
		add("state = $%d", f.State)
	default:
		return nil, fmt.Errorf("notify: unknown state %q (pending, delivered or dead)", f.State)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	q := `SELECT ` + rowColumns + ` FROM outbox`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	rows, err := db.SQL().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("notify: list: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("notify: list: %w", err)
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: list: %w", err)
	}
	return out, nil
}

// Show returns the row of notifyID and its attempts, oldest first, or medpay.ErrNotFound.
func Show(ctx context.Context, db *sqlstore.DB, notifyID string) (*Row, []Attempt, error) {
	r, err := scanRow(db.SQL().QueryRowContext(ctx, `SELECT `+rowColumns+` FROM outbox WHERE notify_id = $1`, notifyID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, medpay.ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("notify: show: %w", err)
	}
	rows, err := db.SQL().QueryContext(ctx, `SELECT at, http_status, latency_ms, answer, error
		FROM notify_attempts WHERE outbox_id = $1 ORDER BY id`, r.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: show: %w", err)
	}
	defer rows.Close()
	var atts []Attempt
	for rows.Next() {
		var a Attempt
		var at, latency int64
		if err := rows.Scan(&at, &a.HTTPStatus, &latency, &a.Answer, &a.Error); err != nil {
			return nil, nil, fmt.Errorf("notify: show: %w", err)
		}
		a.At, a.Latency = sqlstore.FromMS(at), time.Duration(latency)*time.Millisecond
		atts = append(atts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("notify: show: %w", err)
	}
	return r, atts, nil
}

// Resend makes notifyID due at now with a fresh schedule (MaxAttempts more attempts), whatever
// its state, keeping its notify_id and body. It answers medpay.ErrNotFound for an unknown
// notify_id and ErrInFlight while a worker holds it.
func Resend(ctx context.Context, db *sqlstore.DB, notifyID string, now time.Time) error {
	at := sqlstore.MS(now)
	return db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = 'pending', attempts = 0, next_at = $2, lease_until = 0, done_at = 0
			WHERE notify_id = $1 AND (state <> 'pending' OR lease_until <= $2)`, notifyID, at)
		if err != nil {
			return fmt.Errorf("notify: resend: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM outbox WHERE notify_id = $1`, notifyID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return medpay.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("notify: resend: %w", err)
		}
		return ErrInFlight
	})
}

// ResendDead makes every dead notification of merchantID (of every merchant when 0) due at now
// with a fresh schedule, and returns how many.
func ResendDead(ctx context.Context, db *sqlstore.DB, merchantID int64, now time.Time) (int, error) {
	var n int64
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		q := `UPDATE outbox SET state = 'pending', attempts = 0, next_at = $1, lease_until = 0, done_at = 0 WHERE state = 'dead'`
		args := []any{sqlstore.MS(now)}
		if merchantID != 0 {
			q += ` AND merchant_id = $2`
			args = append(args, merchantID)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("notify: resend dead: %w", err)
	}
	return int(n), nil
}
