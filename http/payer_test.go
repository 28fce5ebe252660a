package http_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/internal/testenv"
)

// payerClient is a payer's browser without redirects followed, so that each hop is seen.
func payerClient(env *testenv.Env) *http.Client {
	c := *env.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// hop does one request and returns where it redirects to.
func hop(t *testing.T, c *http.Client, method, u string, form url.Values) *url.URL {
	t.Helper()
	var resp *http.Response
	var err error
	if method == "POST" {
		resp, err = c.PostForm(u, form)
	} else {
		resp, err = c.Get(u)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("%s %s: %d, want a redirect", method, u, resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// authorizeAtBureau goes from the order's pay page to the bureau's authorisation page and
// authorises as person p with the bureau's PIN; it returns where the bureau sends the payer back.
func authorizeAtBureau(t *testing.T, env *testenv.Env, c *http.Client, id string, p bureau.Person) *url.URL {
	t.Helper()
	auth := hop(t, c, "GET", env.URL+"/pay/"+id+"/authorize", nil)
	if !strings.HasSuffix(auth.Path, "/auth") || auth.Query().Get("scope") != medpay.ScopePay || auth.Query().Get("state") != id {
		t.Fatalf("authorisation page %s", auth)
	}
	form := auth.Query()
	form.Set("id_no", p.IDNo)
	form.Set("pin", bureau.SandboxPIN)
	post := *auth
	post.RawQuery = ""
	back := hop(t, c, "POST", post.String(), form)
	if back.Path != "/pay/"+id+"/authorized" || back.Query().Get("authCode") == "" {
		t.Fatalf("the bureau sent the payer to %s", back)
	}
	return back
}

// payAtCashier pays at the channel's cashier page with the wallet PIN and returns where the
// cashier sends the payer back.
func payAtCashier(t *testing.T, c *http.Client, cashier *url.URL) *url.URL {
	t.Helper()
	if !strings.HasSuffix(cashier.Path, "/cashier") {
		t.Fatalf("cashier %s", cashier)
	}
	form := cashier.Query()
	form.Set("pin", cash.DefaultPIN)
	post := *cashier
	post.RawQuery = ""
	return hop(t, c, "POST", post.String(), form)
}

// TestPayerDrivenMixed pays a mixed order the way a payer does: the bureau's authorisation page,
// the channel's cashier, back to the platform, which settles.
func TestPayerDrivenMixed(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)
	p := env.Bind(t, h, "payer-mixed", "440300", "acct_empty")
	bill := []string{"pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500", "allow_fee_change", "1",
		"request_content", workedBill, "return_url", ""}
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "payer-mixed", bill...))
	ok(t, r)
	id := r.Get("med_trans_id")
	c := payerClient(env)
	back := authorizeAtBureau(t, env, c, id, p)
	cashier := hop(t, c, "GET", back.String(), nil)
	o, _ := env.Store.OrderByID(context.Background(), id)
	if o.State != medpay.StateNotPay || o.Step != medpay.StepCashPay {
		t.Fatalf("before the cashier: %s at %q", o.State, o.Step)
	}
	ret := payAtCashier(t, c, cashier)
	if ret.Path != "/pay/"+id+"/paid" {
		t.Fatalf("the cashier sent the payer to %s", ret)
	}
	resp, err := c.Get(ret.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	o = checkBooks(t, env, id, &p, h.AppID+"/payer-mixed")
	if o.State != medpay.StateSuccess || o.CashFee != 3293 || o.HifpPay != 3207 || o.CashOrderID == "" {
		t.Fatalf("order %s cash %d hifp %d cash order %q", o.State, o.CashFee, o.HifpPay, o.CashOrderID)
	}
	q, err := env.Gateway.QueryPayment(context.Background(), o.CashTradeNo())
	if err != nil || q.State != medpay.CashPaid || q.Amount != o.CashFee {
		t.Fatalf("the channel's trade: %+v, %v", q, err)
	}
	// The channel's callback arrives after the payer's return: acknowledged, nothing changes.
	if _, err := env.CashChannel.DeliverOnce(context.Background(), env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	checkBooks(t, env, id, &p, h.AppID+"/payer-mixed")
}

// TestPayerDrivenCallback: a payer who never comes back from the cashier is paid all the same: by
// the channel's TRANSACTION.SUCCESS callback, verified by the platform, when the channel is across
// the network; by the in-process channel's report (cash.Local.OnPaid) as it commits, with no
// callback to deliver, when the platform serves the channel itself.
func TestPayerDrivenCallback(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)
	p := env.Bind(t, h, "payer-cb", "440300", "acct_empty")
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "payer-cb",
		"pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500", "allow_fee_change", "1", "request_content", workedBill))
	ok(t, r)
	id := r.Get("med_trans_id")
	c := payerClient(env)
	cashier := hop(t, c, "GET", authorizeAtBureau(t, env, c, id, p).String(), nil)
	payAtCashier(t, c, cashier) // the payer closes the page here
	if testenv.RemoteCash() {
		if o, _ := env.Store.OrderByID(context.Background(), id); o.State != medpay.StateNotPay {
			t.Fatalf("before the callback: %s", o.State)
		}
		if n, err := env.CashChannel.DeliverOnce(context.Background(), env.Clock.Now()); err != nil || n != 1 {
			t.Fatalf("callbacks delivered %d, %v", n, err)
		}
	} else if n, err := env.CashChannel.DeliverOnce(context.Background(), env.Clock.Now()); err != nil || n != 0 {
		t.Fatalf("the in-process channel delivered %d callbacks (%v), want none", n, err)
	}
	if o := checkBooks(t, env, id, &p, h.AppID+"/payer-cb"); o.State != medpay.StateSuccess {
		t.Fatalf("after the callback: %s", o.State)
	}
	// A forged callback is refused.
	resp, err := env.Client.Post(env.URL+"/notify/cash", "application/json", strings.NewReader(`{"id":"x","event_type":"TRANSACTION.SUCCESS"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		t.Errorf("an unsigned callback was acknowledged: %d", resp.StatusCode)
	}
}

// TestPayerDrivenInsuranceOnly: an order without cash part is settled when the payer comes back
// from the bureau's page.
func TestPayerDrivenInsuranceOnly(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)
	p := env.Bind(t, h, "payer-ins", "440300", "employee")
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "payer-ins",
		"pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500", "allow_fee_change", "1",
		"request_content", workedBill, "return_url", ""))
	ok(t, r)
	id := r.Get("med_trans_id")
	c := payerClient(env)
	back := authorizeAtBureau(t, env, c, id, p)
	resp, err := c.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if o := checkBooks(t, env, id, &p, h.AppID+"/payer-ins"); o.State != medpay.StateSuccess || o.CashFee != 0 || o.AcctPay != 3293 {
		t.Fatalf("order %s cash %d acct %d", o.State, o.CashFee, o.AcctPay)
	}
}

// TestPayerDrivenSettleFailsRefundsCash: the payer paid the cash, the settlement's outcome stays
// unknown: the upload is revoked, the cash refunded, and the order ends PAYERROR with nothing
// kept by anyone.
func TestPayerDrivenSettleFailsRefundsCash(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)
	p := env.Bind(t, h, "payer-to", "440300", "bureau_timeout")
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "payer-to",
		"pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500", "allow_fee_change", "1", "return_url", "",
		"request_content", `{"acct_used":false,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`))
	ok(t, r)
	id := r.Get("med_trans_id")
	c := payerClient(env)
	cashier := hop(t, c, "GET", authorizeAtBureau(t, env, c, id, p).String(), nil)
	ret := payAtCashier(t, c, cashier)
	resp, err := c.Get(ret.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	o := checkBooks(t, env, id, &p, h.AppID+"/payer-to")
	if o.State != medpay.StatePayError || o.CashStatus != medpay.LegRefund {
		t.Fatalf("order %s cash leg %s (%s)", o.State, o.CashStatus, o.StatusDesc)
	}
	q, err := env.Gateway.QueryPayment(context.Background(), o.CashTradeNo())
	if err != nil || q.State != medpay.CashRefunded {
		t.Fatalf("the channel's trade: %+v, %v", q, err)
	}
	if st, err := env.BureauAPI.Query(context.Background(), medpay.OrderRef{PayOrdID: o.PayOrdID, PayToken: o.PayToken}); err == nil && medpay.OrdSettledState(st.OrdStas) {
		t.Errorf("the bureau kept the settlement: %d", st.OrdStas)
	}
}
