package http_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/medpay/medpay/internal/testenv"
)

// hospitalPage is the hospital's own page the payer is sent back to: it shows a heading #back and
// remembers the query of the last visit to path.
type hospitalPage struct {
	URL  string
	mu   sync.Mutex
	last url.Values
}

func newHospitalPage(t *testing.T, path string) *hospitalPage {
	h := &hospitalPage{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			h.mu.Lock()
			h.last = r.URL.Query()
			h.mu.Unlock()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<html><body><h1 id="back">回到医院</h1></body></html>`))
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// Returned is the query of the last visit to the page's path.
func (h *hospitalPage) Returned() url.Values {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// TestBrowserPayment opens pay_url in Chromium, reads the split, enters the PIN and lands on the
// hospital's return_url with the order's identifiers.
func TestBrowserPayment(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowser(t)
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)

	hospital := newHospitalPage(t, "/return")

	env.Bind(t, h, "browser-payer", "440300", "acct_empty")
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "browser-payer",
		"pay_type", "3", "total_fee", "6500", "cash_fee", "3293", "insurance_fee", "3207", "allow_fee_change", "0",
		"request_content", workedBill, "return_url", hospital.URL+"/return?from=medpay"))
	ok(t, r)

	br.Do(chromedp.Navigate(r.Get("pay_url")))
	if hosp, hifp, acct, cash := br.Text("#hospital"), br.Text("#hifp"), br.Text("#acct"), br.Text("#cash"); hosp != h.Name || hifp != "¥32.07" || acct != "¥0.00" || cash != "¥32.93" {
		t.Fatalf("page shows hospital %q hifp %q acct %q cash %q", hosp, hifp, acct, cash)
	}
	if items, banner := br.Text("#items"), br.Text("#sandbox-banner"); !strings.Contains(items, "阿莫西林胶囊") || !strings.Contains(banner, "沙箱") {
		t.Fatalf("items %q banner %q", items, banner)
	}

	// A wrong PIN first: the page says so and stays.
	br.Do(chromedp.SendKeys("#pin", "111111"), chromedp.Click("#confirm"), chromedp.WaitVisible("#error"))
	// Two attempts are left: the order allows three wrong PINs (the payer five).
	if msg := br.Text("#error"); !strings.Contains(msg, "支付密码错误") || !strings.Contains(msg, "2") {
		t.Fatalf("wrong-PIN message %q", msg)
	}
	br.Do(chromedp.SendKeys("#pin", "123456"), chromedp.Click("#confirm"), chromedp.WaitVisible("#back"))
	returned := hospital.Returned()
	if returned.Get("from") != "medpay" || returned.Get("med_trans_id") != r.Get("med_trans_id") ||
		returned.Get("med_trade_state") != "SUCCESS" || returned.Get("hosp_out_trade_no") == "" {
		t.Fatalf("return_url query %v", returned)
	}
}
