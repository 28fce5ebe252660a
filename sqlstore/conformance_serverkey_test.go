package sqlstore_test

import (
	"errors"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// TestConformanceServerKey: the key check refuses another key; rotation re-seals every sealed
// value (API keys, bindings, orders' card numbers and personal fields, lookup hashes) so that the
// new key reads everything as before and the old one no longer opens the database.
func TestConformanceServerKey(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		oldBox, _ := secret.NewBox(serverKey) // the key of b.store
		if err := sqlstore.CheckServerKey(b.ctx, db, oldBox, t0); err != nil {
			t.Fatal(err)
		}
		other, _ := secret.NewBox([]byte("ffffffffffffffffffffffffffffffff"))
		if err := sqlstore.CheckServerKey(b.ctx, db, other, t0); !errors.Is(err, sqlstore.ErrServerKey) {
			t.Fatalf("another key: %v", err)
		}

		m := b.merchant(t)
		const idNo = "44030019900101123X"
		bnd := &medpay.Binding{AppID: m.AppID, OpenID: "o1", PsnNo: "P1", Name: "张三丰", IDNo: idNo, CardNo: "C44030101", CityID: "440300", PayAuthNo: "AUTH1"}
		if err := b.store.Bind(b.ctx, bnd, t0); err != nil {
			t.Fatal(err)
		}
		o := b.newOrder(m, "T-KEY")
		o.CardNo = "C44030101"
		o.Fields["user_name"], o.Fields["user_card_no"] = "张三丰", idNo
		if err := b.store.CreateOrder(b.ctx, o); err != nil {
			t.Fatal(err)
		}

		newBox, _ := secret.NewBox([]byte("k123456789abcdef0123456789abcdef"))
		report, err := sqlstore.RotateServerKey(b.ctx, db, oldBox, newBox, t0)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, r := range report {
			counts[r.Column] = r.Count
		}
		for col, want := range map[string]int{"merchants.api_key_enc": 1, "bindings.name": 1, "bindings.id_no": 1, "bindings.card_no": 1,
			"bindings.id_hash": 1, "bindings.pay_auth_no": 1, "orders.card_no": 1, "orders.fields": 1} {
			if counts[col] != want {
				t.Errorf("%s: %d re-sealed, want %d (report %v)", col, counts[col], want, report)
			}
		}

		if err := sqlstore.CheckServerKey(b.ctx, db, oldBox, t0); !errors.Is(err, sqlstore.ErrServerKey) {
			t.Errorf("the old key after rotation: %v", err)
		}
		if err := sqlstore.CheckServerKey(b.ctx, db, newBox, t0); err != nil {
			t.Fatal(err)
		}
		after := sqlstore.NewStore(db, newBox)
		got, err := after.MerchantByMchID(b.ctx, m.MchID)
		if err != nil || got.APIKey != m.APIKey {
			t.Errorf("merchant after rotation: %v", err)
		}
		gb, err := after.BindingFor(b.ctx, m.AppID, "o1")
		if err != nil || gb.Name != bnd.Name || gb.IDNo != idNo || gb.CardNo != bnd.CardNo || gb.PayAuthNo != "AUTH1" {
			t.Errorf("binding after rotation: %+v %v", gb, err)
		}
		if found, err := after.BindingsOfIDNo(b.ctx, idNo); err != nil || len(found) != 1 {
			t.Errorf("lookup by ID number after rotation: %d %v", len(found), err)
		}
		go2, err := after.OrderByID(b.ctx, o.MedTransID)
		if err != nil || go2.CardNo != o.CardNo || go2.Fields["user_name"] != "张三丰" || go2.Fields["user_card_no"] != idNo {
			t.Errorf("order after rotation: %v", err)
		}
		if _, err := b.store.MerchantByMchID(b.ctx, m.MchID); err == nil {
			t.Error("the old key still opens an API key")
		}
	})
}
