package http_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/internal/testenv"
)

// TestResultPagePaid: a paid order's page shows the split, the time, both order numbers and a
// way back.
func TestResultPagePaid(t *testing.T) {
	env, h, token := setup(t)
	med, _ := paidOrder(t, env, h, token, "result-paid", "employee")
	o, err := env.Store.OrderByID(t.Context(), med)
	if err != nil {
		t.Fatal(err)
	}
	pg := browse(t, env, "/pay/"+med, nil)
	wantPage(t, pg, http.StatusOK, `id="result" class="ok">支付成功`, "¥65.00",
		`id="hifp">¥35.75`, `id="acct">¥0.00`, `id="cash">¥29.25`,
		`id="time-end">`+o.TimeEnd.In(medpay.CST).Format("2006-01-02 15:04:05"),
		`id="med-trans-id">`+med, `id="trade-no">`+o.HospOutTradeNo, `id="close-hint"`, `href="/pay/`+med+`"`)
}

// TestResultPageRefunded: a refunded order says 已退款 (or 已部分退款) with the amounts, not 支付成功.
func TestResultPageRefunded(t *testing.T) {
	env, h, token := setup(t)
	med, _ := paidOrder(t, env, h, token, "result-refund", "employee")
	ok(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, med, "RF-P", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "125")))
	pg := browse(t, env, "/pay/"+med, nil)
	wantPage(t, pg, http.StatusOK, `id="result" class="refund">已部分退款`, `id="refund-cash">¥1.25`, "其余款项未退")
	if strings.Contains(pg.body, "支付成功") {
		t.Errorf("a refunded order still says 支付成功")
	}
	ok(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, med, "RF-W")))
	pg = browse(t, env, "/pay/"+med, nil)
	wantPage(t, pg, http.StatusOK, `id="result" class="refund">已退款`, `id="refund-insurance">¥35.75`,
		`id="refund-cash">¥29.25`, `id="refund-time">`, "已全部退回")
	if strings.Contains(pg.body, "支付成功") || strings.Contains(pg.body, "其余款项未退") {
		t.Errorf("a wholly refunded order's page:\n%s", pg.body)
	}
}

// TestPagesGroupThousands: amounts of 1 000 元 and more are written with separators.
func TestPagesGroupThousands(t *testing.T) {
	env, h, token := setup(t)
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "big",
		"total_fee", "1234567", "cash_fee", "1234567", "insurance_fee", "0", "pay_type", "1"))
	ok(t, r)
	wantPage(t, browse(t, env, r.Get("pay_url"), nil), http.StatusOK, `id="cash-due">¥12,345.67`)
}

// TestPayCodePageRenews: the code page reloads itself when the code expires, without script,
// and counts down with it.
func TestPayCodePageRenews(t *testing.T) {
	env, h, _ := setup(t)
	env.Bind(t, h, "code-payer", "440300", "employee")
	pg := browse(t, env, "/me/code?appid="+h.AppID+"&openid=code-payer", nil)
	wantPage(t, pg, http.StatusOK, `<meta http-equiv="refresh" content="60">`, `<script src="/assets/paycode.js" defer>`,
		`id="countdown" data-seconds="60"`)
	js := browse(t, env, "/assets/paycode.js", nil)
	wantPage(t, js, http.StatusOK, "countdown", "location.reload")
	if browse(t, env, "/assets/nothing.js", nil).status != http.StatusNotFound {
		t.Error("an unknown asset is served")
	}
}

// TestCardsPageOffersBinding: without a card the page links to a binding page that returns here;
// with one, unbinding takes a second, explicit step.
func TestCardsPageOffersBinding(t *testing.T) {
	env, h, _ := setup(t)
	cards := "/me/cards?appid=" + h.AppID + "&openid=new-payer"
	pg := browse(t, env, cards, nil)
	wantPage(t, pg, http.StatusOK, `id="none"`, `id="bind" href="`+env.URL+`/bind/`)
	link := regexp.MustCompile(`id="bind" href="([^"]+)"`).FindStringSubmatch(pg.body)[1]
	bind := browse(t, env, link, nil)
	wantPage(t, bind, http.StatusOK, `name="id_no"`)

	env.Bind(t, h, "new-payer", "440300", "employee")
	pg = browse(t, env, cards, nil)
	wantPage(t, pg, http.StatusOK, `<details id="unbind-step">`, `id="unbind-ask"`, "确定解除绑定吗", `id="unbind"`)
	if strings.Contains(pg.body, `id="bind"`) {
		t.Error("a payer with a card is offered to bind one")
	}
}

// TestLandingPage: GET / links the API reference (served from the binary) and, in the sandbox,
// the test persons; production shows no sandbox.
func TestLandingPage(t *testing.T) {
	env, _, _ := setup(t)
	pg := browse(t, env, "/", nil)
	wantPage(t, pg, http.StatusOK, `href="/docs/api/README.md"`, `href="/docs/api/orders.md"`, `id="persons"`, `href="/healthz"`)
	doc := browse(t, env, "/docs/api/orders.md", nil)
	wantPage(t, doc, http.StatusOK, "unifiedorder", "<!-- gen:req:unifiedorder -->")
	if browse(t, env, "/docs/api/go.mod", nil).status != http.StatusNotFound || browse(t, env, "/nothing", nil).status != http.StatusNotFound {
		t.Error("the landing page answers more than /")
	}
	off := false
	prod := testenv.New(t, testenv.Options{Sandbox: &off})
	pg = browse(t, prod, "/", nil)
	wantPage(t, pg, http.StatusOK, `href="/docs/api/README.md"`)
	if strings.Contains(pg.body, `id="sandbox"`) {
		t.Error("production's landing page shows the sandbox")
	}
}

// TestBrowserResultPages renders the result pages of a paid and a refunded order in Chromium at a
// phone's and a desktop's width, checks what a payer reads there, and with -update saves the
// screenshots linked from the README (docs/screenshots).
func TestBrowserResultPages(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowser(t)
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)
	paid, _ := paidOrder(t, env, h, token, "shot-paid", "employee")
	refunded, _ := paidOrder(t, env, h, token, "shot-refund", "employee")
	ok(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, refunded, "RF-SHOT")))

	for _, tc := range []struct {
		name, med, title string
	}{{"result-paid", paid, "支付成功"}, {"result-refunded", refunded, "已退款"}} {
		for _, size := range []struct {
			name string
			w, h int64
		}{{"phone", 390, 844}, {"desktop", 1280, 800}} {
			br.Do(
				chromedp.EmulateViewport(size.w, size.h),
				chromedp.Navigate(env.URL+"/pay/"+tc.med),
				chromedp.WaitVisible("#med-trans-id"),
			)
			if got := br.Text("#result"); got != tc.title {
				t.Errorf("%s at %s width: title %q, want %q", tc.name, size.name, got, tc.title)
			}
			if got := br.Text("#med-trans-id"); got != tc.med {
				t.Errorf("%s: order number %q", tc.name, got)
			}
			png, err := chromedp.Run(br.Ctx, chromedp.FullScreenshot(100)) // 100: PNG
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				path := filepath.Join("..", "docs", "screenshots", tc.name+"-"+size.name+".png")
				if err := os.WriteFile(path, png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	// The payment code page counts down in the browser.
	env.Bind(t, h, "shot-code", "440300", "employee")
	br.Do(chromedp.Navigate(env.URL+"/me/code?appid="+url.QueryEscape(h.AppID)+"&openid=shot-code"),
		chromedp.WaitVisible("#countdown"))
	// The script writes the countdown: wait until it has.
	text, err := chromedp.Run(br.Ctx, chromedp.Poll[string](`(t => t.includes("秒") ? t : null)(document.getElementById("countdown").textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "秒后自动刷新") {
		t.Errorf("countdown shows %q", text)
	}
}
