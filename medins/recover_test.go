package medins_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/medins"
	"github.com/medpay/medpay/sqlstore"
)

// TestRecoverAndExpire: an order the process left at the charge step (the payer had confirmed)
// is carried on by Recover — charged once, settled, called back; an unpaid order past its expiry
// ends MIX_PAY_FAIL and can no longer be paid.
func TestRecoverAndExpire(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hosp := e.merchant(t, medpay.KindHospital)

	up := e.upload(t, bureau.ScenarioEmployee, "REC-1", false)
	req := e.orderFor(t, hosp, medins.CashAndInsurance, "REC-1", "o-rec", &up, 0)
	req.PrepayID = e.prepay(t, hosp, "", "JS-REC-1", "o-rec", up.own)
	o := e.createOrder(t, hosp, req)
	// What pay leaves when the process dies right after recording the confirmation.
	row, err := e.store.OrderByID(ctx, o.MixTradeNo)
	if err != nil {
		t.Fatal(err)
	}
	row.State, row.Step, row.Attempt = medpay.StateUserPaying, medpay.StepCharge, 1
	if err := e.store.UpdateOrder(ctx, row, sqlstore.OrderChange{}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.h.Recover(ctx, time.Now().Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("recover: %d %v", n, err)
	}
	got, err := e.query(t, hosp, medins.PathByMixTradeNo+o.MixTradeNo)
	if err != nil || got.MixPayStatus != medins.MixSuccess {
		t.Fatalf("after recovery %+v %v", got, err)
	}
	if bal, _ := e.cash.Balance(ctx, hosp.AppID+"/o-rec"); bal != cash.DefaultBalance-up.own {
		t.Fatalf("wallet %d, want one charge of %d", bal, up.own)
	}
	if cb := e.deliver(t); cb == nil || cb.order.MixTradeNo != o.MixTradeNo {
		t.Fatalf("callback %+v", cb)
	}
	if n, _ := e.h.Recover(ctx, time.Now().Add(time.Hour), 10); n != 0 {
		t.Fatalf("a finished order was recovered again (%d)", n)
	}

	up2 := e.upload(t, bureau.ScenarioEmployee, "EXP-1", true)
	o2 := e.createOrder(t, hosp, e.orderFor(t, hosp, medins.InsuranceOnly, "EXP-1", "o-exp", &up2, 0))
	e.skew.Store(int64(medpay.DefaultExpiry + time.Minute))
	if n, err := e.h.Recover(ctx, time.Now().Add(-time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	got, err = e.query(t, hosp, medins.PathByMixTradeNo+o2.MixTradeNo)
	if err != nil || got.MixPayStatus != medins.MixFail || got.MedInsFailReason == "" {
		t.Fatalf("after expiry %+v %v", got, err)
	}
	if status, _ := e.confirm(t, o2.MixTradeNo, cash.DefaultPIN); status != http.StatusForbidden {
		t.Fatalf("an expired order answered %d to confirm", status)
	}
}
