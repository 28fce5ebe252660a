package national_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/bureau/bureautest"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// BenchmarkSettleRoundTrip is one 6202 over loopback: seal, HTTP, open, the settlement
// transaction on SQLite, seal the answer, open it. Each iteration settles a fresh upload.
func BenchmarkSettleRoundTrip(b *testing.B) {
	ctx := context.Background()
	s := bureautest.Serve(b, sqlstoretest.Open(b, sqlstoretest.Engines()[0]), nil, 0)
	c := s.Client(b, 30*time.Second)
	p, _ := bureau.FindPerson("440300", bureau.ScenarioRetiree)
	auth, err := c.SandboxPayAuth(ctx, p.IDNo, medpay.ScopePay)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		up, err := c.Upload(ctx, medpay.UploadRequest{MedOrgOrd: fmt.Sprintf("B%d", i), PayAuthNo: auth.PayAuthNo, HospLevel: 3,
			OrderType: "DiagPay", DefaultFee: 100})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := c.Settle(ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: up.PayOrdID + "-S"}); err != nil {
			b.Fatal(err)
		}
	}
}
