package payment_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/payment"
)

// crash is the panic value a fault point throws to simulate the process dying there: the
// services keep no state in memory, so unwinding is as good as a kill for the database.
type crash struct{ point string }

// TestSagaStateMachine drives random sequences of place / confirm / duplicate confirm / close /
// crash mid-saga / recover over payers of every scenario, and checks after every step that the
// ledger balances, agrees with the bureau's and the cash channel's books, and that no order is
// paid twice or left half-paid after recovery.
func TestSagaStateMachine(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	ctx := context.Background()
	scenarios := []string{bureau.ScenarioEmployee, bureau.ScenarioAcctEmpty, bureau.ScenarioResident, bureau.ScenarioBureauTimeout,
		bureau.ScenarioSettleLost, bureau.ScenarioCashDeclined, bureau.ScenarioRetiree}
	persons := map[string]bureau.Person{}
	for _, sc := range scenarios {
		persons[sc] = env.Bind(t, h, "rapid-"+sc, "440300", sc)
	}
	run := 0

	rapid.Check(t, func(rt *rapid.T) {
		run++
		var orders []string // med_trans_ids
		faultAt := ""
		env.Pay.Fault = func(p string) {
			if p == faultAt {
				faultAt = ""
				panic(crash{p})
			}
		}
		defer func() { env.Pay.Fault = nil }()

		confirm := func(id string) {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(crash); !ok {
						panic(r)
					}
				}
			}()
			_, err := env.Pay.Confirm(ctx, id, "123456")
			var e *medpay.Error
			// A declined wallet leaves the order unpaid, as after a decline in the cashier.
			if err != nil && !errors.As(err, &e) && !errors.Is(err, medpay.ErrDeclined) {
				rt.Fatalf("confirm %s: %v", id, err)
			}
		}

		rt.Repeat(map[string]func(*rapid.T){
			"place": func(rt *rapid.T) {
				sc := rapid.SampledFrom(scenarios).Draw(rt, "scenario")
				price := rapid.Int64Range(100, 500_000).Draw(rt, "price")
				cashOnly := rapid.Bool().Draw(rt, "cashOnly")
				fields := map[string]string{"appid": h.AppID, "mch_id": h.MchID, "openid": "rapid-" + sc,
					"order_type": "DiagPay", "hosp_out_trade_no": fmt.Sprintf("R%d-%d", run, len(orders)),
					"hospital_name": h.Name, "body": "门诊", "notify_url": "http://127.0.0.1:1/n", "allow_fee_change": "1"}
				req := &payment.PlaceRequest{Merchant: h.Merchant, Fields: fields, OrderType: "DiagPay",
					HospOutTradeNo: fields["hosp_out_trade_no"], TotalFee: price, AllowFeeChange: 1, CityID: "440300"}
				if cashOnly {
					req.PayType, req.CashFee = medpay.PayCash, price
				} else {
					req.PayType, req.InsuranceFee = medpay.PayInsurance, price
				}
				fields["total_fee"], fields["cash_fee"], fields["insurance_fee"] = strconv.FormatInt(price, 10), strconv.FormatInt(req.CashFee, 10), strconv.FormatInt(req.InsuranceFee, 10)
				o, err := env.Pay.Place(ctx, req)
				if err != nil {
					if medpay.ErrorCode(err) == medpay.ErrSystem {
						rt.Fatalf("place %s: %v", sc, err)
					}
					return // the bureau may refuse, e.g. once the annual pool limit is used up
				}
				orders = append(orders, o.MedTransID)
			},
			"confirm": func(rt *rapid.T) {
				if len(orders) == 0 {
					rt.Skip("no order")
				}
				confirm(rapid.SampledFrom(orders).Draw(rt, "order"))
			},
			"confirm twice at once": func(rt *rapid.T) {
				if len(orders) == 0 {
					rt.Skip("no order")
				}
				id := rapid.SampledFrom(orders).Draw(rt, "order")
				done := make(chan struct{})
				go func() { confirm(id); close(done) }()
				confirm(id)
				<-done
			},
			"crash mid-confirm": func(rt *rapid.T) {
				if len(orders) == 0 {
					rt.Skip("no order")
				}
				faultAt = rapid.SampledFrom([]string{"settled", "reversed", "cash refunded", "finished"}).Draw(rt, "point")
				confirm(rapid.SampledFrom(orders).Draw(rt, "order"))
				faultAt = ""
			},
			"close": func(rt *rapid.T) {
				if len(orders) == 0 {
					rt.Skip("no order")
				}
				o, err := env.Store.OrderByID(ctx, rapid.SampledFrom(orders).Draw(rt, "order"))
				if err != nil {
					rt.Fatal(err)
				}
				if _, err := env.Pay.Close(ctx, o); err != nil && medpay.ErrorCode(err) == medpay.ErrSystem {
					rt.Fatal(err)
				}
			},
			"recover": func(rt *rapid.T) {
				if _, err := env.Pay.RecoverOnce(ctx, env.Clock.Now().Add(1e12), 1000); err != nil {
					rt.Fatal(err)
				}
				for _, id := range orders {
					o, _ := env.Store.OrderByID(ctx, id)
					// An unpaid order may wait for its payer (authorised, or at the cashier).
					waiting := o.State == medpay.StateNotPay && (o.Step == medpay.StepAuthorized || o.Step == medpay.StepCashPay)
					if o.State == medpay.StateUserPaying || o.State == medpay.StateSysRefunding || (o.Step != medpay.StepDone && o.Step != medpay.StepNone && !waiting) {
						rt.Fatalf("order %s still %s at step %q after recovery", id, o.State, o.Step)
					}
				}
			},
			"": func(rt *rapid.T) { checkInvariants(rt, env, h, orders, persons) },
		})
	})
}

func checkInvariants(rt *rapid.T, env *testenv.Env, h *testenv.Merchant, orders []string, persons map[string]bureau.Person) {
	ctx := context.Background()
	if total, err := env.Store.LedgerTotal(ctx); err != nil || total != 0 {
		rt.Fatalf("ledger total %d %v", total, err)
	}
	for _, id := range orders {
		o, err := env.Store.OrderByID(ctx, id)
		if err != nil {
			rt.Fatal(err)
		}
		if err := o.CheckSplit(); err != nil {
			rt.Fatal(err)
		}
		moves, _ := env.Store.OrderLedger(ctx, o.ID)
		hosp := moves[medpay.HospitalAccount(h.MchID)]
		switch o.State {
		case medpay.StateSuccess:
			if hosp != o.CashFee+o.InsuranceFee || o.Step != medpay.StepDone {
				rt.Fatalf("order %s SUCCESS but the hospital holds %d of %d (step %q)", id, hosp, o.CashFee+o.InsuranceFee, o.Step)
			}
		case medpay.StateNotPay, medpay.StateClosed, medpay.StatePayError, medpay.StateSysRefunded:
			if len(moves) != 0 {
				rt.Fatalf("order %s %s but money moved: %v", id, o.State, moves)
			}
		}
		if hosp < 0 || hosp > o.CashFee+o.InsuranceFee {
			rt.Fatalf("order %s: hospital holds %d", id, hosp)
		}
	}
	// The parties' own books agree with the ledger exactly whenever no order is mid-saga (between
	// an outside call and its record they may differ by that call).
	// (Orders of earlier runs share the database: count them all.)
	var midSaga int
	if err := env.DB.SQL().QueryRow(`SELECT COUNT(*) FROM orders WHERE step IN ('settle', 'charge', 'reverse')`).Scan(&midSaga); err != nil {
		rt.Fatal(err)
	}
	if midSaga > 0 {
		return
	}
	for sc, p := range persons {
		payer := h.AppID + "/rapid-" + sc
		moved, _ := env.Store.Balance(ctx, medpay.PayerWalletAccount(payer))
		if wallet, _ := env.Cash.Balance(ctx, payer); wallet != 1_000_000+moved {
			rt.Fatalf("%s: wallet %d, the ledger says %d", sc, wallet, 1_000_000+moved)
		}
		acct, _ := env.Store.Balance(ctx, medpay.PersonalAccount(p.PsnNo))
		if bal, _ := env.Bureau.Balance(ctx, p.PsnNo); bal != p.AcctBalance+acct {
			rt.Fatalf("%s: bureau account %d, the ledger says %d", sc, bal, p.AcctBalance+acct)
		}
	}
}
