package http_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/internal/testenv"
)

// TestBrowserPayerDrivenMixed pays a mixed order in Chromium through the three pages a payer
// meets: the bureau's authorisation page, the cash channel's cashier, and the platform's result.
func TestBrowserPayerDrivenMixed(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowser(t)
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)
	p := env.Bind(t, h, "browser-mixed", "440300", bureau.ScenarioAcctEmpty)
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "browser-mixed",
		"pay_type", "3", "total_fee", "6500", "cash_fee", "3293", "insurance_fee", "3207", "allow_fee_change", "0",
		"request_content", workedBill, "return_url", ""))
	ok(t, r)
	id := r.Get("med_trans_id")

	br.Do(chromedp.Navigate(r.Get("pay_url")), chromedp.WaitVisible("#pay"))
	if cash := br.Text("#cash"); cash != "¥32.93" {
		t.Fatalf("pay page shows cash %q", cash)
	}
	// 1. The bureau's authorisation page: the insured person and the PIN.
	br.Do(chromedp.Click("#pay"), chromedp.WaitVisible("select#id_no"),
		chromedp.SetValue("select#id_no", p.IDNo), chromedp.SendKeys("#pin", bureau.SandboxPIN), chromedp.Click("#confirm"))
	// 2. The channel's cashier: the cash part and the wallet PIN.
	br.Do(chromedp.WaitVisible("#amount"))
	if amount := br.Text("#amount"); amount != "¥32.93" {
		t.Fatalf("cashier shows %q", amount)
	}
	br.Do(chromedp.SendKeys("#pin", cash.DefaultPIN), chromedp.Click("#pay"))
	// 3. Back on the platform: the result.
	br.Do(chromedp.WaitVisible("#result"))
	if title := br.Text("#result"); !strings.Contains(title, "支付成功") {
		t.Fatalf("result page %q", title)
	}
	o := checkBooks(t, env, id, &p, h.AppID+"/browser-mixed")
	if o.State != medpay.StateSuccess || o.CashFee != 3293 || o.HifpPay != 3207 {
		t.Fatalf("order %s cash %d hifp %d", o.State, o.CashFee, o.HifpPay)
	}
	if q, err := env.Gateway.QueryPayment(context.Background(), o.CashTradeNo()); err != nil || q.State != medpay.CashPaid {
		t.Fatalf("the channel's trade: %+v, %v", q, err)
	}
}

// TestBrowserPayerDrivenInsuranceOnly: an order the bureau pays whole needs only the bureau's
// authorisation page, then the result.
func TestBrowserPayerDrivenInsuranceOnly(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowser(t)
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)
	p := env.Bind(t, h, "browser-ins", "440300", bureau.ScenarioEmployee)
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "browser-ins",
		"pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500", "allow_fee_change", "1",
		"request_content", workedBill, "return_url", ""))
	ok(t, r)
	id := r.Get("med_trans_id")

	br.Do(chromedp.Navigate(r.Get("pay_url")), chromedp.WaitVisible("#pay"))
	br.Do(chromedp.Click("#pay"), chromedp.WaitVisible("select#id_no"),
		chromedp.SetValue("select#id_no", p.IDNo), chromedp.SendKeys("#pin", bureau.SandboxPIN), chromedp.Click("#confirm"),
		chromedp.WaitVisible("#result"))
	if title := br.Text("#result"); !strings.Contains(title, "支付成功") {
		t.Fatalf("result page %q", title)
	}
	o := checkBooks(t, env, id, &p, h.AppID+"/browser-ins")
	if o.State != medpay.StateSuccess || o.CashFee != 0 || o.AcctPay != 3293 {
		t.Fatalf("order %s cash %d acct %d", o.State, o.CashFee, o.AcctPay)
	}
}
