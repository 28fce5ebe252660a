package medins_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/medins"
)

// TestSignatureProbes: in the sandbox every callback is followed by a WECHATPAY/SIGNTEST/ probe;
// the outbox records a hospital that refused it (delivered) and one that accepted it (dead).
func TestSignatureProbes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hosp := e.merchant(t, medpay.KindHospital)
	naive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer naive.Close()
	for _, c := range []struct {
		name, url, want string
	}{{"verifying", e.hookURL, "delivered"}, {"naive", naive.URL, "dead"}} {
		up := e.upload(t, bureau.ScenarioEmployee, "PROBE-"+c.name, true)
		req := e.orderFor(t, hosp, medins.InsuranceOnly, "PROBE-"+c.name, "o-probe", &up, 0)
		req.CallbackURL = c.url
		o := e.createOrder(t, hosp, req)
		if status, _ := e.confirm(t, o.MixTradeNo, cash.DefaultPIN); status != http.StatusOK {
			t.Fatalf("%s: confirm %d", c.name, status)
		}
		e.deliver(t)
		e.deliver(t)
		var real, probe string
		db := e.store.DB().SQL()
		if err := db.QueryRowContext(ctx, `SELECT state FROM outbox WHERE notify_id = $1`, o.MixTradeNo+"-SUCCESS").Scan(&real); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT state FROM outbox WHERE notify_id = $1`, o.MixTradeNo+"-SUCCESS-PROBE").Scan(&probe); err != nil {
			t.Fatal(err)
		}
		if real != "delivered" || probe != c.want {
			t.Fatalf("%s hospital: callback %s, probe %s (want %s)", c.name, real, probe, c.want)
		}
	}
}
