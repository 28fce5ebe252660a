package cash

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"time"

	"github.com/medpay/medpay/sqlstore"
)

// sqlNonces is the channel's apiv3.NonceStore: request nonces in cash_nonces, so a request
// replayed after a restart, or to another process on the same database, is still refused.
type sqlNonces struct{ db *sqlstore.DB }

// Claim implements apiv3.NonceStore. Keys are hashed: they may hold bytes PostgreSQL's text
// does not accept.
func (n sqlNonces) Claim(ctx context.Context, key string, now, expires time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(key))
	var fresh bool
	err := n.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO cash_nonces (nonce_key, expires_at) VALUES ($1, $2)
			ON CONFLICT (nonce_key) DO UPDATE SET expires_at = excluded.expires_at WHERE cash_nonces.expires_at <= $3`,
			hex.EncodeToString(sum[:]), sqlstore.MS(expires), sqlstore.MS(now))
		if err != nil {
			return err
		}
		rows, err := res.RowsAffected()
		fresh = rows == 1
		return err
	})
	return fresh, err
}

// purgeNonces deletes the nonces expired at now.
func (c *Channel) purgeNonces(ctx context.Context, now time.Time) error {
	return c.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM cash_nonces WHERE expires_at <= $1`, sqlstore.MS(now))
		return err
	})
}
