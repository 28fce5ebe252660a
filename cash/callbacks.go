package cash

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore"
)

// Callback delivery: at least once, retried on WeChat Pay's published schedule (the same gaps as
// the platform's notifications, notify.Schedule) until a 2XX answer; a row is leased while one
// worker delivers it so that several processes on one database do not double up.
const (
	callbackBatch = 20
	callbackTick  = time.Second
)

type dueCallback struct {
	id                                                int64
	eventID, mchid, url, eventType, summary, origType string
	resource                                          string
	attempts                                          int
	createdAt                                         int64
}

// DeliverOnce delivers the callbacks due at now and returns how many were delivered.
func (c *Channel) DeliverOnce(ctx context.Context, now time.Time) (int, error) {
	var due []dueCallback
	err := c.db.WriteTx(ctx, func(tx *sql.Tx) error {
		due = due[:0]
		rows, err := tx.QueryContext(ctx, `SELECT id, event_id, mchid, url, event_type, summary, original_type, resource, attempts, created_at
			FROM cash_callbacks WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at, id LIMIT $2`+c.db.ForUpdate(),
			sqlstore.MS(now), callbackBatch)
		if err != nil {
			return err
		}
		for rows.Next() {
			var d dueCallback
			if err := rows.Scan(&d.id, &d.eventID, &d.mchid, &d.url, &d.eventType, &d.summary, &d.origType, &d.resource, &d.attempts, &d.createdAt); err != nil {
				rows.Close()
				return err
			}
			due = append(due, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range due { // the lease: others skip the row until it ends
			if _, err := tx.ExecContext(ctx, `UPDATE cash_callbacks SET next_at = $2 WHERE id = $1`, d.id, sqlstore.MS(now.Add(3*c.callbackTimeout))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// The batch is delivered in parallel, so that one slow notify URL neither holds the others up
	// nor outlasts the lease (a delivery times out well within it).
	errs := make([]error, len(due))
	var wg sync.WaitGroup
	for i, d := range due {
		wg.Go(func() { errs[i] = c.deliver(ctx, d) })
	}
	wg.Wait()
	delivered := 0
	for i, d := range due {
		derr := errs[i]
		ms := sqlstore.MS(c.now())
		err := c.db.WriteTx(ctx, func(tx *sql.Tx) error {
			if derr == nil {
				_, err := tx.ExecContext(ctx, `UPDATE cash_callbacks SET state = 'delivered', attempts = attempts + 1, delivered_at = $2, last_error = ''
					WHERE id = $1`, d.id, ms)
				return err
			}
			msg := derr.Error()
			if len(msg) > 500 {
				msg = msg[:500]
			}
			if d.attempts+1 >= len(notify.Schedule)+1 { // WeChat Pay stops after its schedule; the merchant queries
				_, err := tx.ExecContext(ctx, `UPDATE cash_callbacks SET state = 'dead', attempts = attempts + 1, last_error = $2 WHERE id = $1`, d.id, msg)
				return err
			}
			gap := notify.Schedule[d.attempts]
			_, err := tx.ExecContext(ctx, `UPDATE cash_callbacks SET attempts = attempts + 1, next_at = $2, last_error = $3 WHERE id = $1`,
				d.id, ms+gap.Milliseconds(), msg)
			return err
		})
		if err != nil {
			return delivered, err
		}
		if derr == nil {
			delivered++
		} else {
			c.logger.Warn("cash callback not delivered", "event_id", d.eventID, "attempt", d.attempts+1, "err", derr)
		}
	}
	return delivered, nil
}

// deliver seals, signs and POSTs one callback; a 2XX answer is success.
func (c *Channel) deliver(ctx context.Context, d dueCallback) error {
	key, err := c.apiv3Key(ctx, d.mchid)
	if err != nil {
		return fmt.Errorf("merchant %s: %w", d.mchid, err)
	}
	n, err := apiv3.NewNotification(key, d.eventID, d.eventType, d.summary, d.origType, sqlstore.FromMS(d.createdAt).In(medpay.CST), []byte(d.resource))
	if err != nil {
		return err
	}
	body, h, err := c.signer.BuildCallback(n)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, c.callbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = h
	req.Header.Set(apiv3.HeaderRequestID, d.eventID)
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %d: %s", resp.StatusCode, answer)
	}
	return nil
}

// RunCallbacks delivers callbacks until ctx ends: every second, and at once when kicked. It also
// forgets expired request nonces, once a minute.
func (c *Channel) RunCallbacks(ctx context.Context) {
	t := time.NewTicker(callbackTick)
	defer t.Stop()
	var nextPurge time.Time
	for {
		if now := c.now(); now.After(nextPurge) {
			if err := c.purgeNonces(ctx, now); err != nil && ctx.Err() == nil {
				c.logger.Error("cash nonces", "err", err)
			}
			nextPurge = now.Add(time.Minute)
		}
		for {
			n, err := c.DeliverOnce(ctx, c.now())
			if err != nil && ctx.Err() == nil {
				c.logger.Error("cash callbacks", "err", err)
			}
			if n < callbackBatch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
	}
}
