// Package notify is the transactional outbox of the notifications sent to the hospitals'
// notify_url (docs/api/notifications.md) and the worker that delivers them.
//
// A notification is written by Enqueue inside the transaction of the state change that causes it,
// so both commit together. A Worker claims due rows in batches under a lease (FOR UPDATE SKIP
// LOCKED on PostgreSQL, the single writer on SQLite), POSTs the signed XML, and counts only a 2xx
// answer carrying return_code SUCCESS as delivered. Failures are retried on Schedule; after
// MaxAttempts the row is parked as dead until an operator resends it. Every attempt is recorded
// in notify_attempts.
package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/medpay/medpay/sqlstore"
)

// Kinds of notification (the notify_type field).
const (
	KindPay    = "PAY"
	KindRefund = "REFUND"
)

// States of an outbox row.
const (
	StatePending   = "pending"
	StateDelivered = "delivered"
	StateDead      = "dead"
)

// Schedule is the wait after each failed attempt (docs/api/notifications.md): the first attempt is made at
// once, the next ones after these gaps, so MaxAttempts in all.
var Schedule = [...]time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second,
	3 * time.Minute, 10 * time.Minute, 20 * time.Minute,
	30 * time.Minute, 30 * time.Minute, 30 * time.Minute,
	60 * time.Minute, 3 * time.Hour, 3 * time.Hour,
	3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}

// MaxAttempts is the number of attempts before a notification is dead.
const MaxAttempts = len(Schedule) + 1

// MaxBodySize bounds a notification body.
const MaxBodySize = 64 << 10

// Notification is one notification to a hospital. Body is the exact signed XML to POST; NotifyID
// is the notify_id field inside it, stable across retries.
type Notification struct {
	NotifyID   string
	Kind       string // KindPay or KindRefund
	MerchantID int64
	OrderID    int64
	RefundID   int64
	URL        string
	Body       []byte
	// Format is FormatXML (or empty) or FormatV3; a v3 row is retried until GiveUpAt.
	Format   string
	GiveUpAt time.Time
}

// ErrInvalid is wrapped by the errors of Enqueue for a malformed notification.
var ErrInvalid = errors.New("invalid notification")

// Enqueue inserts n into the outbox within the caller's transaction tx, due at once. It does not
// send anything: a Worker does, after the transaction commits (call Worker.Kick after the commit
// to have it sent without waiting for the next tick). A notify_id already in the outbox is an
// error that IsUniqueViolation recognises; n.URL should have passed CheckURL when it was accepted.
func Enqueue(ctx context.Context, tx *sql.Tx, n *Notification, now time.Time) error {
	switch {
	case n.NotifyID == "" || len(n.NotifyID) > 128:
		return fmt.Errorf("%w: notify_id %q", ErrInvalid, n.NotifyID)
	case n.Kind != KindPay && n.Kind != KindRefund:
		return fmt.Errorf("%w: kind %q", ErrInvalid, n.Kind)
	case n.URL == "":
		return fmt.Errorf("%w: empty url", ErrInvalid)
	case len(n.Body) == 0 || len(n.Body) > MaxBodySize || !utf8.Valid(n.Body):
		return fmt.Errorf("%w: body of %d bytes is empty, too large or not UTF-8", ErrInvalid, len(n.Body))
	}
	at := sqlstore.MS(now)
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox
		(notify_id, merchant_id, kind, order_id, refund_id, url, body, state, attempts, next_at, lease_until, created_at, done_at, format, give_up_at, dest)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, 0, $9, 0, $10, $11, $12)`,
		n.NotifyID, n.MerchantID, n.Kind, n.OrderID, n.RefundID, n.URL, string(n.Body), StatePending, at, n.format(), sqlstore.MS(n.GiveUpAt), hostOf(n.URL))
	if err != nil {
		return fmt.Errorf("enqueue notification %s: %w", n.NotifyID, err)
	}
	return nil
}

// nextAfter is when attempt number attempt (1-based, just failed at t) is to be followed, and
// whether the notification is dead instead.
func nextAfter(attempt int, t time.Time) (time.Time, bool) {
	if attempt >= MaxAttempts {
		return time.Time{}, true
	}
	return t.Add(Schedule[attempt-1]), false
}
