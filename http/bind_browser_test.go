package http_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/internal/testenv"
)

// TestBrowserBindCard opens bind_url in Chromium, is told about a mistyped ID number, binds a
// 成都 card chosen in the city select, proves to be its holder on the bureau's authorisation page
// (the person and the PIN), and lands on the hospital's url.
func TestBrowserBindCard(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowser(t)
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)

	hospital := newHospitalPage(t, "/bound")

	link := bindURL(t, env, h, token, "browser-binder", hospital.URL+"/bound?from=medpay")
	p, _ := bureau.FindPerson("510100", bureau.ScenarioEmployee)

	br.Do(chromedp.Navigate(link))
	if hosp, banner := br.Text("#hospital"), br.Text("#sandbox-banner"); !strings.Contains(hosp, h.Name) || !strings.Contains(banner, "沙箱") {
		t.Fatalf("bind page shows %q, banner %q", hosp, banner)
	}

	// A mistyped check digit: the page says so before the bureau is asked, and keeps the input.
	bad := p.IDNo[:17] + map[bool]string{true: "1", false: "0"}[p.IDNo[17] == '0']
	br.Do(chromedp.SendKeys("#name", p.Name), chromedp.SendKeys("#id_no", bad), chromedp.SendKeys("#card_no", p.CardNo),
		chromedp.SetValue("#city_id", p.CityID), chromedp.Click("#bind"), chromedp.WaitVisible("#error"))
	if msg := br.Text("#error"); !strings.Contains(msg, "身份证号不正确") {
		t.Fatalf("error for a bad check digit: %q", msg)
	}
	name, err := chromedp.Run(br.Ctx, chromedp.Value("#name"))
	if err != nil || name != p.Name {
		t.Fatalf("the form lost the name: %q %v", name, err)
	}

	br.Do(chromedp.SetValue("#id_no", p.IDNo), chromedp.SetValue("#city_id", p.CityID), chromedp.Click("#bind"), chromedp.WaitVisible("#confirm"))
	// The bureau's page: a wrong PIN is refused, then the right one authorises.
	br.Do(chromedp.SetValue("select#id_no", p.IDNo), chromedp.SendKeys("#pin", "000000"), chromedp.Click("#confirm"), chromedp.WaitVisible("#error"))
	if msg := br.Text("#error"); !strings.Contains(msg, "支付密码不正确") {
		t.Fatalf("bureau page error: %q", msg)
	}
	// The page keeps the person chosen, not the PIN.
	br.Do(chromedp.SendKeys("#pin", "123456"), chromedp.Click("#confirm"), chromedp.WaitVisible("#back"))
	got := hospital.Returned()
	if got.Get("from") != "medpay" {
		t.Fatalf("did not land on the hospital's url: %v", got)
	}
	info := env.Call(t, "/payinsurance/getmedinfo", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", "browser-binder"))
	ok(t, info)
	if info.Get("city_id") != "510100" || info.Get("medical_card_no") != p.CardNo {
		t.Fatalf("bound card: %s %s", info.Get("city_id"), info.Get("medical_card_no"))
	}
	// Back in the browser, the link is spent.
	br.Do(chromedp.Navigate(link), chromedp.WaitVisible("#result"))
	if title := br.Text("#result"); title != "链接已使用" {
		t.Fatalf("reused link page: %q", title)
	}
}
