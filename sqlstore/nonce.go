package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/medpay/medpay"
)

// The replay check: every signed open API call claims its (mch_id, nonce_str), and a pair seen
// within NonceWindow is refused. The nonces table's primary key is the arbiter, so the check holds
// across processes sharing the database. A call that writes anyway claims its pair inside its own
// write transaction (NonceClaim), so that it commits once, and a replay rolls back all of it.

// NonceWindow is how long a (mch_id, nonce_str) pair is remembered against replays: as long as
// an access token lives, so a captured request cannot be replayed while its token still works.
const NonceWindow = medpay.TokenTTL

// ErrReplay is returned by the writes that make a call's NonceClaim when its pair was already
// seen within NonceWindow: the transaction was rolled back, nothing of the call was written.
var ErrReplay = errors.New("sqlstore: nonce_str already used")

// NonceClaim is a call's (mch_id, nonce_str) carried in its context (WithNonceClaim) until it is
// made: by the first write of the call that makes it in its own transaction (PlaceOrder,
// CreateRefund), or on its own by ClaimPending, which the call must reach before anything it does
// outside the database and before it answers.
type NonceClaim struct {
	MchID, Nonce string
	At           time.Time
	made         atomic.Bool
}

// Made reports whether the claim has been committed.
func (c *NonceClaim) Made() bool { return c.made.Load() }

type nonceClaimKey struct{}

// WithNonceClaim returns ctx carrying c.
func WithNonceClaim(ctx context.Context, c *NonceClaim) context.Context {
	return context.WithValue(ctx, nonceClaimKey{}, c)
}

// pendingClaim returns ctx's claim if it has not been made yet.
func pendingClaim(ctx context.Context) *NonceClaim {
	c, _ := ctx.Value(nonceClaimKey{}).(*NonceClaim)
	if c == nil || c.Made() {
		return nil
	}
	return c
}

// ClaimPending makes ctx's claim now, in a transaction of its own, unless there is none or it
// was made already. It returns ErrReplay when the pair was seen within NonceWindow.
func (s *Store) ClaimPending(ctx context.Context) error {
	c := pendingClaim(ctx)
	if c == nil {
		return nil
	}
	fresh, err := s.ClaimNonce(ctx, c.MchID, c.Nonce, c.At)
	if err != nil {
		return err
	}
	if !fresh {
		return ErrReplay
	}
	c.made.Store(true)
	return nil
}

// writeTxClaiming is WriteTx for the writes that make the call's pending claim: the claim comes
// first in the same transaction, and a replay rolls fn's work back with ErrReplay.
func (s *Store) writeTxClaiming(ctx context.Context, fn func(tx *sql.Tx) error) error {
	c := pendingClaim(ctx)
	if c == nil {
		return s.db.WriteTx(ctx, fn)
	}
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		fresh, err := claimNonceIn(ctx, tx, c.MchID, c.Nonce, c.At)
		if err != nil {
			return err
		}
		if !fresh {
			return ErrReplay
		}
		return fn(tx)
	})
	if err == nil {
		c.made.Store(true)
	}
	return err
}

// claimNonceStmt records a pair, or refreshes in place one older than the window; it affects no
// row when the pair was seen within the window.
const claimNonceStmt = `INSERT INTO nonces (mch_id, nonce, seen_at) VALUES ($1, $2, $3)
	ON CONFLICT (mch_id, nonce) DO UPDATE SET seen_at = excluded.seen_at WHERE nonces.seen_at < $4`

// claimNonceIn runs claimNonceStmt on e and reports whether the pair was fresh.
func claimNonceIn(ctx context.Context, e execer, mchID, nonce string, now time.Time) (bool, error) {
	res, err := e.ExecContext(ctx, claimNonceStmt, mchID, nonce, ms(now), ms(now.Add(-NonceWindow)))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ClaimNonce records (mchID, nonce) and reports false when the pair was already seen within
// NonceWindow. It is one statement: on SQLite it joins the group commit, on PostgreSQL it runs as
// a transaction of its own (one round trip, no BEGIN and COMMIT).
func (s *Store) ClaimNonce(ctx context.Context, mchID, nonce string, now time.Time) (bool, error) {
	var fresh bool
	err := s.db.writeStmt(ctx, func(e execer) (err error) {
		fresh, err = claimNonceIn(ctx, e, mchID, nonce, now)
		return err
	})
	return fresh, err
}

// PurgeNonces drops pairs older than the window.
func (s *Store) PurgeNonces(ctx context.Context, now time.Time) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM nonces WHERE seen_at < $1`, ms(now.Add(-NonceWindow)))
		return err
	})
}
