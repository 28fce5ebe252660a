package sqlstore_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// TestConformancePersonalDataSealed: names, ID and card numbers are sealed at rest like API
// keys, with a keyed hash for lookups, and rows written before sealing began are sealed by
// SealPersonalData.
func TestConformancePersonalDataSealed(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		const name, idNo, cardNo = "张三丰", "44030019900101123X", "C44030101"
		clear := []string{name, idNo, cardNo, "44030019900101123"}
		raw := func(q string, args ...any) string {
			t.Helper()
			rows, err := b.db.SQL().Query(q, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			cols, _ := rows.Columns()
			var all []string
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for _, v := range vals {
					switch v := v.(type) {
					case string:
						all = append(all, v)
					case []byte:
						all = append(all, string(v))
					}
				}
			}
			return strings.Join(all, "|")
		}
		noClear := func(what, stored string) {
			t.Helper()
			for _, c := range clear {
				if strings.Contains(stored, c) {
					t.Errorf("%s stores %q in clear: %s", what, c, stored)
				}
			}
		}

		bnd := &medpay.Binding{AppID: "wxA", OpenID: "o1", PsnNo: "P1", Name: name, IDNo: idNo, CardNo: cardNo, CityID: "440300"}
		if err := b.store.Bind(b.ctx, bnd, t0); err != nil {
			t.Fatal(err)
		}
		stored := raw(`SELECT * FROM bindings`)
		noClear("bindings", stored)
		plain := sha256.Sum256([]byte(idNo))
		if strings.Contains(stored, hex.EncodeToString(plain[:])) {
			t.Error("the ID number's lookup hash is an unkeyed SHA-256")
		}
		got, err := b.store.BindingFor(b.ctx, "wxA", "o1")
		if err != nil || got.Name != name || got.IDNo != idNo || got.CardNo != cardNo {
			t.Fatalf("BindingFor = %+v, %v", got, err)
		}
		// Lookups by the keyed hash, whatever the case of the check character.
		if err := b.store.Bind(b.ctx, &medpay.Binding{AppID: "wxB", OpenID: "o2", PsnNo: "P1", Name: name, IDNo: idNo, CardNo: cardNo, CityID: "440300"}, t0); err != nil {
			t.Fatal(err)
		}
		list, err := b.store.BindingsOfIDNo(b.ctx, " "+strings.ToLower(idNo))
		if err != nil || len(list) != 2 || list[0].AppID != "wxA" || list[1].AppID != "wxB" || list[1].CardNo != cardNo {
			t.Fatalf("BindingsOfIDNo = %v, %v", list, err)
		}
		if list, _ := b.store.BindingsOfIDNo(b.ctx, "110101199001011237"); len(list) != 0 {
			t.Fatalf("another person's ID found %v", list)
		}
		// Another server key opens nothing.
		otherBox, _ := secret.NewBox([]byte("fedcba9876543210fedcba9876543210"))
		if _, err := sqlstore.NewStore(b.db, otherBox).BindingFor(b.ctx, "wxA", "o1"); err == nil {
			t.Error("a binding opened with another server key")
		}

		// Orders: the card number and the payer's ID number and name of the request.
		m := b.merchant(t)
		o := b.newOrder(m, "T-seal")
		o.CardNo = cardNo
		o.Fields["user_card_no"], o.Fields["user_name"] = idNo, name
		o.LoadFields()
		if err := b.store.CreateOrder(b.ctx, o); err != nil {
			t.Fatal(err)
		}
		noClear("orders", raw(`SELECT * FROM orders WHERE id = $1`, o.ID))
		back, err := b.store.OrderByID(b.ctx, o.MedTransID)
		if err != nil || back.CardNo != cardNo || back.Fields["user_card_no"] != idNo || back.Fields["user_name"] != name {
			t.Fatalf("order read back: %v %+v", err, back)
		}
		back.Step = "settle"
		if err := b.store.UpdateOrder(b.ctx, back, sqlstore.OrderChange{}); err != nil {
			t.Fatal(err)
		}
		noClear("orders after an update", raw(`SELECT * FROM orders WHERE id = $1`, o.ID))

		// Rows written in clear before sealing began are read, then sealed.
		if _, err := b.db.SQL().Exec(`INSERT INTO bindings (appid, openid, psn_no, name, id_no, card_no, city_id, insutype, created_at)
			VALUES ('wxOld', 'o3', 'P1', $1, $2, $3, '440300', '', 0)`, name, idNo, cardNo); err != nil {
			t.Fatal(err)
		}
		old := b.newOrder(m, "T-old")
		if err := b.store.CreateOrder(b.ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.SQL().Exec(`UPDATE orders SET card_no = $1, fields = $2 WHERE id = $3`, cardNo,
			`{"appid":"`+m.AppID+`","user_card_no":"`+idNo+`","user_name":"`+name+`"}`, old.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := b.store.BindingFor(b.ctx, "wxOld", "o3"); err != nil || got.IDNo != idNo {
			t.Fatalf("clear binding: %+v %v", got, err)
		}
		n, err := b.store.SealPersonalData(b.ctx)
		if err != nil || n != 2 {
			t.Fatalf("SealPersonalData = %d, %v; want 2 rows", n, err)
		}
		if n, err := b.store.SealPersonalData(b.ctx); err != nil || n != 0 {
			t.Fatalf("SealPersonalData again = %d, %v", n, err)
		}
		noClear("bindings after sealing", raw(`SELECT * FROM bindings`))
		noClear("orders after sealing", raw(`SELECT * FROM orders`))
		if list, _ := b.store.BindingsOfIDNo(b.ctx, idNo); len(list) != 3 {
			t.Fatalf("after sealing, %d bindings found by ID", len(list))
		}
		back, err = b.store.OrderByID(b.ctx, old.MedTransID)
		if err != nil || back.CardNo != cardNo || back.Fields["user_card_no"] != idNo || back.Fields["user_name"] != name {
			t.Fatalf("sealed old order: %v %+v", err, back)
		}
	})
}
