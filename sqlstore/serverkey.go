package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/medpay/medpay/secret"
)

// sealedColumns lists every column holding values sealed with the server key: the key check
// samples them and rotation re-seals them. A new sealed column must be added here, or rotation
// would leave it sealed under a key that no longer exists.
var sealedColumns = []struct{ table, id, column string }{
	{"merchants", "id", "api_key_enc"},
}

// keyCheckPlain is what the key check value seals; only opening it matters (GCM authenticates).
const keyCheckPlain = "medpay server key check"

// ErrServerKey is returned when the server key does not open what the database holds.
var ErrServerKey = errors.New("the server key does not open the values sealed in this database")

// HoldsSealedValues reports whether the database holds a key check value or any sealed value:
// then only the key that sealed them will do, and a missing key must not be replaced by a new one.
func (db *DB) HoldsSealedValues(ctx context.Context) (bool, error) {
	var n int
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM server_key_check`).Scan(&n); err != nil || n > 0 {
		return n > 0, err
	}
	for _, c := range sealedColumns {
		err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+c.table+` WHERE `+c.column+` <> ''`).Scan(&n)
		if err != nil || n > 0 {
			return n > 0, err
		}
	}
	return false, nil
}

// CheckServerKey makes sure box opens the values sealed in db, and stores a key check value the
// first time. A database that holds sealed values from before the check is accepted only when a
// sample of them opens. The answer is ErrServerKey when the key is not the one that sealed them.
func CheckServerKey(ctx context.Context, db *DB, box *secret.Box, now time.Time) error {
	check, err := keyCheck(ctx, db.sql)
	if err != nil {
		return err
	}
	if check != "" {
		if _, err := box.Open(check); err != nil {
			return ErrServerKey
		}
		return nil
	}
	for _, c := range sealedColumns {
		rows, err := db.sql.QueryContext(ctx, `SELECT `+c.column+` FROM `+c.table+` WHERE `+c.column+` <> '' ORDER BY `+c.id+` LIMIT 20`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			if _, err := box.Open(v); err != nil {
				rows.Close()
				return ErrServerKey
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	err = db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO server_key_check (id, check_value, created_at) VALUES (1, $1, $2)
			ON CONFLICT (id) DO NOTHING`, box.Seal(keyCheckPlain), ms(now))
		return err
	})
	if err != nil {
		return err
	}
	// Another process may have stored its own check first: ours must open it too.
	if check, err = keyCheck(ctx, db.sql); err != nil {
		return err
	}
	if _, err := box.Open(check); err != nil {
		return ErrServerKey
	}
	return nil
}

func keyCheck(ctx context.Context, q querier) (string, error) {
	var check string
	err := q.QueryRowContext(ctx, `SELECT check_value FROM server_key_check WHERE id = 1`).Scan(&check)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return check, err
}

// Resealed counts the values one column had re-sealed.
type Resealed struct {
	Column string // table.column
	Count  int
}

// RotateServerKey re-seals every sealed value and the key check from oldBox to newBox in one
// transaction: either all of them change or none does. A value oldBox does not open stops it.
func RotateServerKey(ctx context.Context, db *DB, oldBox, newBox *secret.Box, now time.Time) ([]Resealed, error) {
	var report []Resealed
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		report = report[:0]
		if check, err := keyCheck(ctx, tx); err != nil {
			return err
		} else if check != "" {
			if _, err := oldBox.Open(check); err != nil {
				return ErrServerKey
			}
		}
		for _, c := range sealedColumns {
			type row struct {
				id    int64
				value string
			}
			rs, err := tx.QueryContext(ctx, `SELECT `+c.id+`, `+c.column+` FROM `+c.table+` WHERE `+c.column+` <> ''`+db.LockRow())
			if err != nil {
				return err
			}
			var rows []row
			for rs.Next() {
				var r row
				if err := rs.Scan(&r.id, &r.value); err != nil {
					rs.Close()
					return err
				}
				rows = append(rows, r)
			}
			rs.Close()
			if err := rs.Err(); err != nil {
				return err
			}
			for _, r := range rows {
				plain, err := oldBox.Open(r.value)
				if err != nil {
					return fmt.Errorf("%s.%s of row %d: %w", c.table, c.column, r.id, ErrServerKey)
				}
				if _, err := tx.ExecContext(ctx, `UPDATE `+c.table+` SET `+c.column+` = $1 WHERE `+c.id+` = $2`, newBox.Seal(plain), r.id); err != nil {
					return err
				}
			}
			report = append(report, Resealed{Column: c.table + "." + c.column, Count: len(rows)})
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO server_key_check (id, check_value, created_at) VALUES (1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET check_value = excluded.check_value, created_at = excluded.created_at`,
			newBox.Seal(keyCheckPlain), ms(now))
		return err
	})
	return report, err
}
