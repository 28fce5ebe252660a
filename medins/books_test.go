package medins_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bill"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/medins"
	"github.com/medpay/medpay/reconcile"
)

// TestBillAndReconcile: a paid 2.0 order is in the hospital's bill, and the day reconciles
// three ways once the journal of the hospital's institution is read (and not without it).
func TestBillAndReconcile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hosp := e.merchant(t, medpay.KindHospital)
	up := e.upload(t, bureau.ScenarioEmployee, "BOOKS-1", false)
	req := e.orderFor(t, hosp, medins.CashAndInsurance, "BOOKS-1", "o-books", &up, 0)
	req.PrepayID = e.prepay(t, hosp, "", "JS-BOOKS-1", "o-books", up.own)
	o := e.createOrder(t, hosp, req)
	if status, paid := e.confirm(t, o.MixTradeNo, cash.DefaultPIN); status != http.StatusOK || paid.MixPayStatus != medins.MixSuccess {
		t.Fatalf("confirm %d %+v", status, paid)
	}

	start, _, err := bill.Day(time.Now().In(medpay.CST).Format("20060102"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bill.Generate(ctx, e.store, hosp.ID, start, bill.TypeAll)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(o.MixTradeNo)) || !bytes.Contains(b, []byte("BOOKS-1")) {
		t.Fatalf("the bill lacks the 2.0 order:\n%s", b)
	}

	forOrg := func(ctx context.Context, org string) (medpay.Bureau, error) { return e.bureau.Sim.ForOrg(ctx, org) }
	r, err := reconcile.Day(ctx, e.store, e.bureau.Sim, e.cash, start, forOrg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Totals[reconcile.BureauFund].Platform != up.fund || r.Totals[reconcile.Cash].Books != up.own {
		t.Fatalf("reconciliation %+v", r)
	}
	blind, err := reconcile.Day(ctx, e.store, e.bureau.Sim, e.cash, start)
	if err != nil {
		t.Fatal(err)
	}
	if blind.OK() {
		t.Fatal("without the hospital's journal the 2.0 settlement should stand alone")
	}
}
