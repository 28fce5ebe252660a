package sqlstore

import (
	"context"

	"github.com/medpay/medpay"
)

// MerchantSummary is a merchant as the operator's listings show it: no credentials, so the
// server key is not needed to read it.
type MerchantSummary struct {
	medpay.Merchant
	Orders      int64    // orders placed
	Authorized  []string // providers: the mch_ids of the hospitals that authorised it; hospitals: the providers they authorised
	LastOrderAt int64    // Unix ms of the newest order, 0 for none
}

// ListMerchants returns the merchants of the given kinds (all when none), oldest first, with
// their order counts. SecretHash and APIKey are left empty.
func (db *DB) ListMerchants(ctx context.Context, kinds ...string) ([]MerchantSummary, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT m.id, m.kind, m.name, m.appid, m.mch_id, m.cities, m.level, m.refund_ips, m.created_at,
			(SELECT COUNT(*) FROM orders o WHERE o.merchant_id = m.id),
			(SELECT COALESCE(MAX(o.created_at), 0) FROM orders o WHERE o.merchant_id = m.id)
		FROM merchants m ORDER BY m.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	var out []MerchantSummary
	for rows.Next() {
		var s MerchantSummary
		var cities, ips string
		var created int64
		if err := rows.Scan(&s.ID, &s.Kind, &s.Name, &s.AppID, &s.MchID, &cities, &s.Level, &ips, &created, &s.Orders, &s.LastOrderAt); err != nil {
			return nil, err
		}
		if len(want) > 0 && !want[s.Kind] {
			continue
		}
		s.Cities, s.RefundIPs, s.CreatedAt = splitList(cities), splitList(ips), fromMS(created)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		q := `SELECT h.mch_id FROM provider_authorizations a JOIN merchants h ON h.id = a.provider_id WHERE a.merchant_id = $1 ORDER BY h.mch_id`
		if out[i].Kind == medpay.KindProvider {
			q = `SELECT h.mch_id FROM provider_authorizations a JOIN merchants h ON h.id = a.merchant_id WHERE a.provider_id = $1 ORDER BY h.mch_id`
		}
		if out[i].Authorized, err = db.strings(ctx, q, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (db *DB) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
