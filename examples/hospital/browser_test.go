package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/medpay/medpay/internal/testenv"
)

// TestBrowserBothFlows: in Chromium, the patient pays a registration and then a clinic bill at
// the example hospital, confirming each on the platform's payment page, and lands back on the
// hospital's page showing 已支付. The platform's notification worker runs meanwhile, as in
// production, so the hospital learns the result by notification or by query, whichever comes
// first.
func TestBrowserBothFlows(t *testing.T) {
	br := testenv.NewBrowser(t)
	b := setup(t)
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.env.Worker.Run(wctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	for _, flow := range []struct {
		button, title, total string
	}{
		{"#register", "普通门诊挂号", "¥25.00"},
		{"#clinic", "门诊缴费 · 内科", "¥65.00"},
	} {
		br.Do(chromedp.Navigate(b.hosp.URL+"/"), chromedp.WaitVisible(flow.button), chromedp.Click(flow.button))
		// The platform's payment page.
		br.Do(chromedp.WaitVisible("#pin"))
		if hosp := br.Text("#hospital"); hosp != b.h.Name {
			t.Fatalf("%s: payment page shows hospital %q", flow.button, hosp)
		}
		br.Do(chromedp.SendKeys("#pin", "123456"), chromedp.Click("#confirm"), chromedp.WaitVisible("#state"))
		loc, err := chromedp.Run(br.Ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(loc, b.hosp.URL+"/orders/") {
			t.Fatalf("%s: landed on %s", flow.button, loc)
		}
		if state, title, total := br.Text("#state"), br.Text("#title"), br.Text("#total"); state != "已支付" || title != flow.title || total != flow.total {
			t.Fatalf("%s: hospital page shows %q %q %q", flow.button, state, title, total)
		}
		t.Logf("%s: paid, the hospital learnt it by %s", flow.button, br.Text("#source"))
	}
	// Both orders are listed as paid on the home page.
	br.Do(chromedp.Navigate(b.hosp.URL+"/"), chromedp.WaitVisible("#orders"))
	if list := br.Text("#orders"); strings.Count(list, "已支付") != 2 {
		t.Fatalf("home page orders: %q", list)
	}
}
