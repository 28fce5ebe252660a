package wxpay_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// BenchmarkPrepayRoundTrip is one signed JSAPI prepay over loopback: the client signs, the
// channel verifies, records the order and signs its answer, the client verifies it.
func BenchmarkPrepayRoundTrip(b *testing.B) {
	bb := setup(b, sqlstore.SQLite, options{noWorker: true})
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		_, err := bb.client.Prepay(ctx, medpay.CashPrepayRequest{OutTradeNo: fmt.Sprintf("BENCH-%08d", i), AppID: appID,
			OpenID: "bench", Description: "门诊缴费", NotifyURL: bb.recv.URL, Amount: 100})
		if err != nil {
			b.Fatal(err)
		}
	}
}
