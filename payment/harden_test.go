package payment_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/payment"
)

// gatedBureau lets a test act while the saga is inside the bureau's settlement.
type gatedBureau struct {
	medpay.Bureau
	entered chan struct{}
	proceed chan struct{}
	during  func(ctx context.Context) // runs inside every Settle, before the real one
}

func (g *gatedBureau) Settle(ctx context.Context, req medpay.SettleRequest) (*medpay.Settlement, error) {
	if g.entered != nil {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.proceed
	}
	if g.during != nil {
		g.during(ctx)
	}
	return g.Bureau.Settle(ctx, req)
}

func placeForPayer(t *testing.T, env *testenv.Env, openid string) string {
	t.Helper()
	h := env.Hospital(t)
	env.Bind(t, h, openid, "440300", "employee")
	token := env.Token(t, h)
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, openid,
		"pay_type", "3", "total_fee", "6500", "cash_fee", "2925", "insurance_fee", "3575", "allow_fee_change", "1",
		"request_content", `{"acct_used":false,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`))
	if r.Get("result_code") != "SUCCESS" {
		t.Fatalf("unifiedorder: %s %s", r.Get("return_msg"), r.Get("err_code_des"))
	}
	return r.Get("med_trans_id")
}

// TestSagaOutlivesTheRequest: the payer closes the page (the request's context ends) while the
// bureau settles; the saga still finishes the payment instead of leaving it to recovery.
func TestSagaOutlivesTheRequest(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	id := placeForPayer(t, env, "detach-1")
	gate := &gatedBureau{Bureau: env.Pay.Bureau, entered: make(chan struct{}, 1), proceed: make(chan struct{})}
	env.Pay.Bureau = gate

	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		o   *medpay.Order
		err error
	}
	done := make(chan result, 1)
	go func() {
		o, err := env.Pay.Confirm(ctx, id, "123456")
		done <- result{o, err}
	}()
	<-gate.entered
	cancel() // the page is closed mid-saga
	close(gate.proceed)
	res := <-done
	if res.err != nil || res.o.State != medpay.StateSuccess {
		t.Fatalf("Confirm after the request ended: %v, %+v", res.err, res.o)
	}
	if o, _ := env.Store.OrderByID(context.Background(), id); o.State != medpay.StateSuccess || o.Step != medpay.StepDone {
		t.Fatalf("order %s step %q, want SUCCESS done", o.State, o.Step)
	}
}

// TestSagaConflictsAreCapped: a row that keeps changing under the saga (another process moving
// it each time) ends the run with an error after a bounded number of reloads, instead of
// spinning for ever.
func TestSagaConflictsAreCapped(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	id := placeForPayer(t, env, "conflict-1")
	settles := 0
	env.Pay.Bureau = &gatedBureau{Bureau: env.Pay.Bureau, during: func(ctx context.Context) {
		settles++
		if _, err := env.DB.SQL().ExecContext(ctx, `UPDATE orders SET version = version + 1 WHERE med_trans_id = $1`, id); err != nil {
			t.Error(err)
		}
	}}
	done := make(chan error, 1)
	go func() {
		_, err := env.Pay.Confirm(context.Background(), id, "123456")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Confirm = %v, want the conflict cap's error", err)
		}
	case <-time.After(time.Minute): // a hang, not a measure of speed
		t.Fatal("the saga kept reloading its order")
	}
	if settles != payment.MaxConflicts+1 {
		t.Errorf("%d settlements tried, want %d", settles, payment.MaxConflicts+1)
	}
	if o, _ := env.Store.OrderByID(context.Background(), id); o.State != medpay.StateUserPaying {
		t.Errorf("order %s, want USERPAYING left to recovery", o.State)
	}
}
