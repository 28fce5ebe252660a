package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medpay/medpay/secret"
)

// sealedColumns lists every column holding values sealed with the server key: the key check
// samples them and rotation re-seals them. A new sealed column must be added here, or rotation
// would leave it sealed under a key that no longer exists.
var sealedColumns = []sealedColumn{
	{table: "merchants", keys: []string{"id"}, column: "api_key_enc", kind: sealedWhole},
	{table: "orders", keys: []string{"id"}, column: "pay_auth_no", kind: sealedWhole},
	{table: "orders", keys: []string{"id"}, column: "card_no", kind: sealedPrefixed},
	{table: "orders", keys: []string{"id"}, column: "fields", kind: sealedFields},
	{table: "bindings", keys: []string{"appid", "openid"}, column: "id_hash", kind: lookupOfIDNo},
	{table: "bindings", keys: []string{"appid", "openid"}, column: "name", kind: sealedPrefixed},
	{table: "bindings", keys: []string{"appid", "openid"}, column: "id_no", kind: sealedPrefixed},
	{table: "bindings", keys: []string{"appid", "openid"}, column: "card_no", kind: sealedPrefixed},
	{table: "bindings", keys: []string{"appid", "openid"}, column: "pay_auth_no", kind: sealedWhole},
	{table: "bind_links", keys: []string{"id"}, column: "pending", kind: sealedWhole},
	// The simulated cash channel's tables, when it keeps them in the platform's database.
	{table: "cash_keys", keys: []string{"id"}, column: "private_key", kind: sealedWhole, optional: true},
	{table: "cash_merchants", keys: []string{"mchid"}, column: "apiv3_key", kind: sealedWhole, optional: true},
}

type sealedColumn struct {
	table    string
	keys     []string // the row's key columns
	column   string
	kind     int
	optional bool // the table exists only in some databases
}

// Kinds of sealed column.
const (
	sealedWhole    = iota // the value is Box.Seal's output
	sealedPrefixed        // sealedPrefix + Box.Seal's output, or a clear value written before sealing
	sealedFields          // an order's fields as JSON, whose personal fields are sealedPrefixed
	lookupOfIDNo          // Box.Lookup of the row's ID number (bindings.id_hash): recomputed
)

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
		if c.optional || (c.kind != sealedWhole && c.kind != sealedPrefixed) {
			continue
		}
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
		if c.optional || c.kind != sealedWhole {
			continue
		}
		rows, err := db.sql.QueryContext(ctx, `SELECT `+c.column+` FROM `+c.table+` WHERE `+c.column+` <> '' ORDER BY `+strings.Join(c.keys, ", ")+` LIMIT 20`)
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
			if c.optional {
				if ok, err := db.tableExists(ctx, tx, c.table); err != nil {
					return err
				} else if !ok {
					continue
				}
			}
			n, err := resealColumn(ctx, db, tx, c, oldBox, newBox)
			if err != nil {
				return err
			}
			report = append(report, Resealed{Column: c.table + "." + c.column, Count: n})
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO server_key_check (id, check_value, created_at) VALUES (1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET check_value = excluded.check_value, created_at = excluded.created_at`,
			newBox.Seal(keyCheckPlain), ms(now))
		return err
	})
	return report, err
}

// resealColumn re-seals (or for a lookup hash, recomputes) one column of every row, in tx.
func resealColumn(ctx context.Context, db *DB, tx *sql.Tx, c sealedColumn, oldBox, newBox *secret.Box) (int, error) {
	source := c.column
	if c.kind == lookupOfIDNo {
		source = "id_no" // the hash is of the ID number, which is read (and opened) from the row
	}
	cols := strings.Join(c.keys, ", ")
	rs, err := tx.QueryContext(ctx, `SELECT `+cols+`, `+source+` FROM `+c.table+` WHERE `+c.column+` <> ''`+db.LockRow())
	if err != nil {
		return 0, err
	}
	type row struct {
		keys  []any
		value string
	}
	var rows []row
	for rs.Next() {
		r := row{keys: make([]any, len(c.keys))}
		dest := make([]any, 0, len(c.keys)+1)
		for i := range r.keys {
			dest = append(dest, &r.keys[i])
		}
		if err := rs.Scan(append(dest, &r.value)...); err != nil {
			rs.Close()
			return 0, err
		}
		rows = append(rows, r)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return 0, err
	}
	openPrefixed := func(v string) (string, error) {
		if !strings.HasPrefix(v, sealedPrefix) {
			return v, nil // clear, written before sealing began
		}
		return oldBox.Open(v[len(sealedPrefix):])
	}
	var where []string
	for i, k := range c.keys {
		where = append(where, fmt.Sprintf("%s = $%d", k, i+2))
	}
	n := 0
	for _, r := range rows {
		var next string
		var err error
		switch c.kind {
		case sealedWhole:
			var plain string
			if plain, err = oldBox.Open(r.value); err == nil {
				next = newBox.Seal(plain)
			}
		case sealedPrefixed:
			if !strings.HasPrefix(r.value, sealedPrefix) {
				continue
			}
			var plain string
			if plain, err = openPrefixed(r.value); err == nil {
				next = sealedPrefix + newBox.Seal(plain)
			}
		case sealedFields:
			var f map[string]string
			if err = json.Unmarshal([]byte(r.value), &f); err != nil {
				break
			}
			changed := false
			for _, k := range piiFields {
				v, ok := f[k]
				if !ok || !strings.HasPrefix(v, sealedPrefix) {
					continue
				}
				var plain string
				if plain, err = openPrefixed(v); err != nil {
					break
				}
				f[k], changed = sealedPrefix+newBox.Seal(plain), true
			}
			if err != nil || !changed {
				break
			}
			var data []byte
			data, err = json.Marshal(f)
			next = string(data)
		case lookupOfIDNo:
			var idNo string
			if idNo, err = openPrefixed(r.value); err == nil {
				next = newBox.Lookup(strings.ToUpper(strings.TrimSpace(idNo)))
			}
		}
		if err != nil {
			return 0, fmt.Errorf("%s.%s of row %v: %w", c.table, c.column, r.keys, ErrServerKey)
		}
		if next == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+c.table+` SET `+c.column+` = $1 WHERE `+strings.Join(where, " AND "),
			append([]any{next}, r.keys...)...); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// tableExists reports whether the database has table (in the search path, on PostgreSQL).
func (db *DB) tableExists(ctx context.Context, q querier, table string) (bool, error) {
	var ok bool
	var err error
	if db.dialect == Postgres {
		err = q.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok)
	} else {
		var n int
		err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`, table).Scan(&n)
		ok = n > 0
	}
	return ok, err
}
