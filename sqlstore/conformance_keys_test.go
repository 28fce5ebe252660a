package sqlstore_test

import (
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// TestConformanceSealedAndListed: a new database holds nothing sealed; once a merchant exists it
// does, its key opens with the store's Box, and the operator's listing shows it without its
// credentials.
func TestConformanceSealedAndListed(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			b := setup(t, sqlstoretest.Open(t, engine))
			if holds, err := b.db.HoldsSealedValues(b.ctx); err != nil || holds {
				t.Fatalf("empty database: holds sealed values %v, %v", holds, err)
			}
			m := b.merchant(t)
			if holds, err := b.db.HoldsSealedValues(b.ctx); err != nil || !holds {
				t.Fatalf("with a merchant: holds sealed values %v, %v", holds, err)
			}
			want, err := secret.NewBox(serverKey)
			if err != nil {
				t.Fatal(err)
			}
			sealed := b.store.Box().Seal("x")
			if got, err := want.Open(sealed); err != nil || got != "x" {
				t.Fatalf("the store's Box is not the server key's: %q, %v", got, err)
			}
			provider := &medpay.Merchant{Kind: medpay.KindProvider, Name: "服务商", AppID: "wxprovider0000001", MchID: "1999999999",
				SecretHash: secret.Hash(secret.AppSecret()), APIKey: secret.APIKey(), CreatedAt: t0}
			if err := b.store.CreateMerchant(b.ctx, provider); err != nil {
				t.Fatal(err)
			}
			all, err := b.db.ListMerchants(b.ctx)
			if err != nil || len(all) != 2 {
				t.Fatalf("all merchants: %d, %v", len(all), err)
			}
			hospitals, err := b.db.ListMerchants(b.ctx, medpay.KindHospital)
			if err != nil || len(hospitals) != 1 || hospitals[0].MchID != m.MchID {
				t.Fatalf("hospitals: %+v, %v", hospitals, err)
			}
			if hospitals[0].APIKey != "" || hospitals[0].SecretHash != "" {
				t.Fatal("the listing carries credentials")
			}
			var _ []sqlstore.MerchantSummary = all
		})
	}
}
