package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium. The test runs when MEDPAY_TEST_BROWSER names the executable
// (e.g. MEDPAY_TEST_BROWSER=chromium); without it, it is reported as skipped.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := os.Getenv("MEDPAY_TEST_BROWSER")
	if exe == "" {
		t.Skip("MEDPAY_TEST_BROWSER not set (e.g. MEDPAY_TEST_BROWSER=chromium)")
	}
	if _, err := exec.LookPath(exe); err != nil {
		t.Fatalf("MEDPAY_TEST_BROWSER=%s: %v", exe, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(390, 844), // a phone
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// TestBrowserBothFlows: in Chromium, the patient pays a registration and then a clinic bill at
// the example hospital, confirming each on the platform's payment page, and lands back on the
// hospital's page showing 已支付. The platform's notification worker runs meanwhile, as in
// production, so the hospital learns the result by notification or by query, whichever comes
// first.
func TestBrowserBothFlows(t *testing.T) {
	ctx := browser(t)
	b := setup(t)
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.env.Worker.Run(wctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	for _, flow := range []struct {
		button, title, total string
	}{
		{"#register", "普通门诊挂号", "¥25.00"},
		{"#clinic", "门诊缴费 · 内科", "¥65.00"},
	} {
		do(chromedp.Navigate(b.hosp.URL+"/"), chromedp.WaitVisible(flow.button), chromedp.Click(flow.button))
		// The platform's payment page.
		do(chromedp.WaitVisible("#pin"))
		if hosp := text("#hospital"); hosp != b.h.Name {
			t.Fatalf("%s: payment page shows hospital %q", flow.button, hosp)
		}
		do(chromedp.SendKeys("#pin", "123456"), chromedp.Click("#confirm"), chromedp.WaitVisible("#state"))
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(loc, b.hosp.URL+"/orders/") {
			t.Fatalf("%s: landed on %s", flow.button, loc)
		}
		if state, title, total := text("#state"), text("#title"), text("#total"); state != "已支付" || title != flow.title || total != flow.total {
			t.Fatalf("%s: hospital page shows %q %q %q", flow.button, state, title, total)
		}
		t.Logf("%s: paid, the hospital learnt it by %s", flow.button, text("#source"))
	}
	// Both orders are listed as paid on the home page.
	do(chromedp.Navigate(b.hosp.URL+"/"), chromedp.WaitVisible("#orders"))
	if list := text("#orders"); strings.Count(list, "已支付") != 2 {
		t.Fatalf("home page orders: %q", list)
	}
}
