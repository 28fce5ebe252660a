package sqlstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// TestConformanceV3 covers 医保 2.0's storage: APIv3 registrations (one per merchant, the key
// sealed), the platform key made once, prepays claimed by one order, and the 2.0 orders that
// recovery carries on while the XML saga's lists leave them alone.
func TestConformanceV3(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		if _, err := b.store.MerchantV3(b.ctx, m.ID); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("unregistered merchant: %v", err)
		}
		reg := &medpay.MerchantV3{MerchantID: m.ID, SerialNo: "SERIAL-1", PublicKey: "PEM", APIv3Key: secret.APIKey(), CreatedAt: t0}
		if err := b.store.CreateMerchantV3(b.ctx, reg); err != nil {
			t.Fatal(err)
		}
		if err := b.store.CreateMerchantV3(b.ctx, reg); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("second registration: %v", err)
		}
		got, err := b.store.MerchantV3(b.ctx, m.ID)
		if err != nil || got.APIv3Key != reg.APIv3Key || got.SerialNo != "SERIAL-1" || got.RetryWindow != medpay.DefaultV3RetryWindow {
			t.Fatalf("registration %+v %v", got, err)
		}
		if n := b.count(t, `SELECT COUNT(*) FROM merchant_v3 WHERE apiv3_key_enc = $1`, reg.APIv3Key); n != 0 {
			t.Fatal("the APIv3 key is stored in clear")
		}

		k1, err := b.store.PlatformKey(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := b.store.PlatformKey(b.ctx)
		if err != nil || k2.KeyID != k1.KeyID || k2.PrivateKey != k1.PrivateKey {
			t.Fatalf("the platform key changed: %v", err)
		}
		if _, err := apiv3.ParsePrivateKey([]byte(k1.PrivateKey)); err != nil {
			t.Fatal(err)
		}

		p := &medpay.Prepay{MerchantID: m.ID, OutTradeNo: "JS-1", PrepayID: "wx1", Body: "{}", Amount: 500, CreatedAt: t0}
		if err := b.store.CreatePrepay(b.ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := b.store.CreatePrepay(b.ctx, &medpay.Prepay{MerchantID: m.ID, OutTradeNo: "JS-1", PrepayID: "wx2", Body: "{}", Amount: 1, CreatedAt: t0}); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("taken out_trade_no: %v", err)
		}
		if err := b.store.ClaimPrepay(b.ctx, p.ID, "MIX-1"); err != nil {
			t.Fatal(err)
		}
		if err := b.store.ClaimPrepay(b.ctx, p.ID, "MIX-1"); err != nil {
			t.Fatalf("claim repeated by the same order: %v", err)
		}
		if err := b.store.ClaimPrepay(b.ctx, p.ID, "MIX-2"); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("claim by another order: %v", err)
		}
		byID, err := b.store.PrepayByID(b.ctx, m.ID, "wx1")
		if err != nil || byID.MixTradeNo != "MIX-1" || byID.Amount != 500 {
			t.Fatalf("prepay %+v %v", byID, err)
		}
		if _, err := b.store.PrepayByOutTradeNo(b.ctx, m.ID+1, "JS-1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("another merchant's prepay: %v", err)
		}
		if got, err := b.store.PrepayByOutTradeNo(b.ctx, m.ID, "JS-1"); err != nil || got.PrepayID != "wx1" {
			t.Fatalf("by out_trade_no %+v %v", got, err)
		}

		// A 2.0 order mid-payment and an expired one are recovered; an XML one is not.
		mid := b.newOrder(m, "V3-MID")
		mid.Generation = medpay.GenerationV3
		if err := b.store.CreateOrder(b.ctx, mid); err != nil {
			t.Fatal(err)
		}
		mid.State, mid.Step = medpay.StateUserPaying, medpay.StepCharge
		if err := b.store.UpdateOrder(b.ctx, mid, sqlstore.OrderChange{}); err != nil {
			t.Fatal(err)
		}
		expired := b.newOrder(m, "V3-EXP")
		expired.Generation, expired.TimeExpire = medpay.GenerationV3, t0.Add(time.Minute)
		if err := b.store.CreateOrder(b.ctx, expired); err != nil {
			t.Fatal(err)
		}
		xml := b.createOrder(t, m, "XML-1")
		list, err := b.store.V3OrdersToRecover(b.ctx, t0.Add(time.Hour), t0.Add(time.Hour), 10)
		if err != nil || len(list) != 2 {
			t.Fatalf("to recover: %d %v", len(list), err)
		}
		for _, o := range list {
			if o.Generation != medpay.GenerationV3 || o.ID == xml.ID {
				t.Fatalf("listed %s of generation %d", o.MedTransID, o.Generation)
			}
		}
		if old, err := b.store.OrdersExpired(b.ctx, t0.Add(24*time.Hour), 10); err != nil || len(old) != 1 || old[0].ID != xml.ID {
			t.Fatalf("the XML expiry lists %d orders (%v), want only the XML one", len(old), err)
		}
	})
}
