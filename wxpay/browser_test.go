package wxpay_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/sqlstore"
)

// TestBrowserCashier pays a JSAPI order in the channel's cashier page in Chromium: the page
// checks paySign, shows the amount, refuses a wrong PIN, takes the right one and returns to the
// platform's page; the callback follows.
func TestBrowserCashier(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowser(t)
	b := setup(t, sqlstore.SQLite, options{})
	var mu sync.Mutex
	var back url.Values
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/result" { // not the favicon
			mu.Lock()
			back = r.URL.Query()
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<html><body><h1 id="back">回到医院</h1></body></html>`)
	}))
	t.Cleanup(page.Close)

	p := b.prepay(t, "ORDER-BROWSER", "browser-payer", 1234)
	params, err := b.client.PayParams(appID, p.PrepayID)
	if err != nil {
		t.Fatal(err)
	}
	cashier, ok := b.client.CashierURL(params, page.URL+"/result?order=ORDER-BROWSER")
	if !ok {
		t.Fatal("no cashier URL")
	}
	br.Do(chromedp.Navigate(cashier))
	if amount := br.Text("#amount"); amount != "¥12.34" {
		t.Fatalf("amount %q", amount)
	}
	br.Do(chromedp.SendKeys("#pin", "111111"), chromedp.Click("#pay"), chromedp.WaitVisible("#message"))
	if msg := br.Text("#message"); !strings.Contains(msg, "支付密码错误") {
		t.Fatalf("wrong-PIN message %q", msg)
	}
	br.Do(chromedp.SendKeys("#pin", "123456"), chromedp.Click("#pay"), chromedp.WaitVisible("#back"))
	mu.Lock()
	got := back.Get("order")
	mu.Unlock()
	if got != "ORDER-BROWSER" {
		t.Fatalf("returned with %v", back)
	}
	ev := b.recv.event(t)
	if ev.Payment == nil || ev.Payment.OutTradeNo != "ORDER-BROWSER" || ev.Payment.Amount != 1234 {
		t.Fatalf("callback %+v", ev)
	}
	if q, err := b.client.QueryPayment(context.Background(), "ORDER-BROWSER"); err != nil || q.State != medpay.CashPaid {
		t.Fatalf("query %+v, %v", q, err)
	}
}

// TestCashierChecksPaySign: a cashier link whose paySign does not verify shows nothing to pay.
func TestCashierChecksPaySign(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.SQLite, options{})
	p := b.prepay(t, "ORDER-PAYSIGN", "payer-6", 100)
	params, err := b.client.PayParams(appID, p.PrepayID)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := b.client.CashierURL(params, "")
	params.TimeStamp += "1"
	bad, _ := b.client.CashierURL(params, "")
	for _, c := range []struct {
		url    string
		status int
		has    string
	}{{good, 200, `name="pin"`}, {bad, 404, "支付签名验证失败"}} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.has) {
			t.Errorf("%s: %d, want %d with %q", c.url, resp.StatusCode, c.status, c.has)
		}
		if c.status != 200 && strings.Contains(string(body), `name="pin"`) {
			t.Errorf("a bad paySign still asks for the PIN")
		}
	}
	// A cross-origin form post is refused (CSRF).
	form := url.Values{"package": {params.Package}, "pin": {"123456"}}
	req, _ := http.NewRequest("POST", b.base+"/cashier", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site post answered %d", resp.StatusCode)
	}
}
