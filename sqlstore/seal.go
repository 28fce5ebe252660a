package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/medpay/medpay"
)

// Payers' names, ID and card numbers are sealed at rest like API keys (secret.Box), marked by
// sealedPrefix; a value without it is a clear one written before sealing began (SealPersonalData
// seals those). Lookups go through the box's keyed hash (bindings.id_hash).
const sealedPrefix = "s1:"

// piiFields are the request fields of an order that carry a payer's personal data.
var piiFields = []string{"user_card_no", "user_name"}

func (s *Store) seal(v string) string {
	if v == "" || strings.HasPrefix(v, sealedPrefix) {
		return v
	}
	return sealedPrefix + s.box.Seal(v)
}

func (s *Store) open(v string) (string, error) {
	if !strings.HasPrefix(v, sealedPrefix) {
		return v, nil
	}
	return s.box.Open(v[len(sealedPrefix):])
}

// idHash is the lookup hash of an ID number (case and spaces do not matter).
func (s *Store) idHash(idNo string) string {
	return s.box.Lookup(strings.ToUpper(strings.TrimSpace(idNo)))
}

// sealFields returns a copy of an order's fields with the personal ones sealed.
func (s *Store) sealFields(f map[string]string) map[string]string {
	out := make(map[string]string, len(f))
	for k, v := range f {
		out[k] = v
	}
	for _, k := range piiFields {
		if v, ok := out[k]; ok {
			out[k] = s.seal(v)
		}
	}
	return out
}

// openFields opens the personal fields of an order in place.
func (s *Store) openFields(f map[string]string) error {
	for _, k := range piiFields {
		if v, ok := f[k]; ok {
			clear, err := s.open(v)
			if err != nil {
				return fmt.Errorf("field %s: %w", k, err)
			}
			f[k] = clear
		}
	}
	return nil
}

// BindingsOfIDNo returns the cards bound to the person with ID number idNo, under every app,
// found by the keyed hash.
func (s *Store) BindingsOfIDNo(ctx context.Context, idNo string) ([]*medpay.Binding, error) {
	return queryAll(ctx, s.db.sql, s.scanBinding, `SELECT `+bindingColumns+` FROM bindings WHERE id_hash = $1
		ORDER BY appid, openid`, s.idHash(idNo))
}

// SealPersonalData seals the clear names, ID and card numbers written before sealing began
// (bindings without id_hash, orders' card numbers and personal fields), and returns how many
// rows it sealed. It is idempotent and may run while serving.
func (s *Store) SealPersonalData(ctx context.Context) (int, error) {
	n := 0
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		n = 0
		bindings, err := queryAll(ctx, tx, s.scanBinding, `SELECT `+bindingColumns+` FROM bindings WHERE id_hash = ''`)
		if err != nil {
			return err
		}
		for _, b := range bindings {
			if _, err := tx.ExecContext(ctx, `UPDATE bindings SET name = $1, id_no = $2, card_no = $3, id_hash = $4
				WHERE appid = $5 AND openid = $6`, s.seal(b.Name), s.seal(b.IDNo), s.seal(b.CardNo), s.idHash(b.IDNo),
				b.AppID, b.OpenID); err != nil {
				return err
			}
			n++
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, card_no, fields FROM orders WHERE (card_no <> '' AND card_no NOT LIKE 's1:%')
			OR fields LIKE '%"user_card_no"%' OR fields LIKE '%"user_name"%'`)
		if err != nil {
			return err
		}
		type row struct {
			id           int64
			card, fields string
		}
		var todo []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.card, &r.fields); err != nil {
				rows.Close()
				return err
			}
			todo = append(todo, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range todo {
			var f map[string]string
			if err := json.Unmarshal([]byte(r.fields), &f); err != nil {
				return fmt.Errorf("order %d fields: %w", r.id, err)
			}
			sealed, err := json.Marshal(s.sealFields(f))
			if err != nil {
				return err
			}
			card := s.seal(r.card)
			if card == r.card && string(sealed) == r.fields {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE orders SET card_no = $1, fields = $2 WHERE id = $3`, card, string(sealed), r.id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
