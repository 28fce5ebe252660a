package http_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/medpay/medpay"
	medpayhttp "github.com/medpay/medpay/http"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/wire"
)

// ScreenshotsEnv names a directory: when set, the browser tests save each page they visit there,
// at phone and desktop width (docs/screenshots/ is made this way, see docs/console.md).
const ScreenshotsEnv = "MEDPAY_SCREENSHOTS"

// shoot saves the current page as <name>-phone.png and <name>-desktop.png when ScreenshotsEnv is
// set; otherwise it does nothing.
func shoot(t *testing.T, br *testenv.Browser, name string) {
	t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		return
	}
	for _, size := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{}
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		br.Do(chromedp.EmulateViewport(size.w, size.h, opts...))
		img, err := chromedp.Run(br.Ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+size.suffix+".png"), img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// consentFile writes a small PDF for the upload field.
func consentFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "同意函.pdf")
	if err := os.WriteFile(p, samplePDF, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// applyInBrowser fills /apply as an applicant does and returns the application's number.
func applyInBrowser(t *testing.T, br *testenv.Browser, env *testenv.Env, name, email, password string, screenshot bool) string {
	t.Helper()
	br.Do(chromedp.Navigate(env.URL + "/apply"))
	if screenshot {
		shoot(t, br, "apply")
	}
	br.Do(
		chromedp.SendKeys("#name", name),
		chromedp.SendKeys("#org_codg", "H44030300009"),
		chromedp.Click(`input[name=city][value="440300"]`),
		chromedp.Click(`input[name=city][value="440100"]`),
		chromedp.SetUploadFiles("#consent", []string{consentFile(t)}),
		chromedp.SendKeys("#cash_mchid", "1900000109"),
		chromedp.SendKeys("#mp_appid", "wx0123456789abcdef"),
		chromedp.SendKeys("#contact_name", "王五"),
		chromedp.SendKeys("#contact_phone", "0755-12345678"),
		chromedp.SendKeys("#contact_email", email),
		chromedp.SendKeys("#password", password),
		chromedp.Click("#submit"),
		chromedp.WaitVisible("#applied"),
	)
	if screenshot {
		shoot(t, br, "apply-done")
	}
	return br.Text("#application-id")
}

// consoleSignIn signs an operator in, enrolling TOTP from the page at the first sign-in.
func consoleSignIn(t *testing.T, br *testenv.Browser, env *testenv.Env, email, password string, screenshot bool) {
	t.Helper()
	br.Do(chromedp.Navigate(env.URL+"/console/login"), chromedp.WaitVisible("#email"))
	if screenshot {
		shoot(t, br, "console-login")
	}
	br.Do(chromedp.SendKeys("#email", email), chromedp.SendKeys("#password", password), chromedp.Click("#login"),
		chromedp.WaitVisible("#code"))
	if screenshot {
		shoot(t, br, "console-totp")
	}
	sec := br.Text("#totp-secret")
	code, err := totp.GenerateCode(sec, env.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	br.Do(chromedp.SendKeys("#code", code), chromedp.Click("#verify"), chromedp.WaitVisible("#charts"))
}

func portalSignIn(t *testing.T, br *testenv.Browser, env *testenv.Env, email, password string, screenshot bool) {
	t.Helper()
	br.Do(chromedp.Navigate(env.URL+"/portal/login"), chromedp.WaitVisible("#email"))
	if screenshot {
		shoot(t, br, "portal-login")
	}
	br.Do(chromedp.SendKeys("#email", email), chromedp.SendKeys("#password", password), chromedp.Click("#login"),
		chromedp.WaitVisible("#logout"))
}

// TestBrowserOnboarding walks an application from the form to the reviewer's approval, the
// credentials shown once in the portal, and the merchant's first paid order.
func TestBrowserOnboarding(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowserFor(t, 4*time.Minute)
	env := testenv.New(t, testenv.Options{})
	busyDay(t, env)
	reviewer, reviewerPW := operator(t, env, medpay.RoleReviewer)
	email, password := "finance@h9.example", "h9-portal-password"

	id := applyInBrowser(t, br, env, "深圳市第九人民医院", email, password, true)

	// Before the review the applicant sees the application waiting.
	portalSignIn(t, br, env, email, password, true)
	if st := br.Text("#application-state"); st != "待审核" {
		t.Fatalf("application state %q", st)
	}
	shoot(t, br, "portal-waiting")

	consoleSignIn(t, br, env, reviewer, reviewerPW, true)
	br.Do(chromedp.Navigate(env.URL + "/console/applications"))
	if list := br.Text("#applications"); !strings.Contains(list, "深圳市第九人民医院") {
		t.Fatalf("applications list %q", list)
	}
	shoot(t, br, "console-applications")
	br.Do(chromedp.Navigate(env.URL+"/console/applications/"+id), chromedp.WaitVisible("#evidence-link"))
	shoot(t, br, "console-application")
	// The evidence is served as the PDF that was uploaded.
	if got := br.Text("#contact"); !strings.Contains(got, email) {
		t.Fatalf("reviewer does not see the contact: %q", got)
	}
	// Approve 深圳 only (uncheck 广州).
	br.Do(chromedp.Click(`form[action$="/approve"] input[value="440100"]`), chromedp.Click("#approve"), chromedp.WaitVisible("#notice"))
	if st := br.Text("#app-state"); st != "已批准" {
		t.Fatalf("after approval: %q", st)
	}

	// The applicant sees the credentials once.
	br.Do(chromedp.Navigate(env.URL+"/portal/"), chromedp.WaitVisible("#reveal"), chromedp.Click("#reveal"), chromedp.WaitVisible("#credentials"))
	creds := medpay.Credentials{AppID: br.Text("#cred-appid"), Secret: br.Text("#cred-secret"), MchID: br.Text("#cred-mchid"), APIKey: br.Text("#cred-key")}
	br.Do(chromedp.Navigate(env.URL + "/portal/"))
	if html, err := chromedp.Run(br.Ctx, chromedp.OuterHTML("main")); err != nil || strings.Contains(html, creds.APIKey) || strings.Contains(html, creds.Secret) {
		t.Fatalf("credentials shown twice (%v)", err)
	}
	shoot(t, br, "portal-home")

	// The first paid order, through the sandbox API with the credentials from the page.
	m, err := env.Store.MerchantByMchID(context.Background(), creds.MchID)
	if err != nil || m.APIKey != creds.APIKey || m.Cities[0] != "440300" || len(m.Cities) != 1 {
		t.Fatalf("merchant %+v %v", m, err)
	}
	h := &testenv.Merchant{Merchant: m, Secret: creds.Secret}
	token := env.Token(t, h)
	medTransID, _ := paidOrder(t, env, h, token, "first-payer", "employee")
	// 广州 was not approved: an order there is refused.
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "first-payer", "city_id", "440100"))
	if r.Get("result_code") == "SUCCESS" {
		t.Fatal("order in a city not approved was accepted")
	}

	br.Do(chromedp.Navigate(env.URL+"/portal/orders"), chromedp.WaitVisible("#orders"))
	if list := br.Text("#orders"); !strings.Contains(list, medTransID) || !strings.Contains(list, "支付成功") {
		t.Fatalf("portal orders %q", list)
	}
	shoot(t, br, "portal-orders")
	br.Do(chromedp.Navigate(env.URL+"/portal/orders/"+medTransID), chromedp.WaitVisible("#timeline"))
	if st := br.Text("#order-state"); st != "支付成功" {
		t.Fatalf("order page state %q", st)
	}
	shoot(t, br, "portal-order")
	for _, p := range []string{"refunds", "bills", "reconcile", "settings", "staff"} {
		br.Do(chromedp.Navigate(env.URL+"/portal/"+p), chromedp.WaitVisible("#logout"))
		shoot(t, br, "portal-"+p)
	}
	// The notify URL test shows the hospital's answer.
	hospital := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<xml><return_code>SUCCESS</return_code></xml>`))
	}))
	t.Cleanup(hospital.Close)
	br.Do(chromedp.Navigate(env.URL+"/portal/settings"), chromedp.SendKeys("#notify_url", hospital.URL+"/medpay/notify"),
		chromedp.Click("#notify-test"), chromedp.WaitVisible("#test-result"))
	if res := br.Text("#test-result"); !strings.Contains(res, "应答成功") {
		t.Fatalf("notify test %q", res)
	}
	shoot(t, br, "portal-notify-test")
	br.Do(chromedp.Navigate(env.URL+"/portal/totp"), chromedp.WaitVisible("#totp-secret"))
	shoot(t, br, "portal-totp")
	// The owner invites a colleague, who sets a password from the link.
	br.Do(chromedp.Navigate(env.URL+"/portal/staff"), chromedp.SendKeys("#invite-email", "clerk@h9.example"),
		chromedp.Click("#invite"), chromedp.WaitVisible("#invite-link"))
	link := br.Text("#invite-link")
	br.Do(chromedp.Click("#logout"), chromedp.WaitVisible("#email"))
	br.Do(chromedp.Navigate(link), chromedp.WaitVisible("#accept"))
	shoot(t, br, "portal-invite")
	br.Do(chromedp.SendKeys("#password", "clerk-password-1"), chromedp.Click("#accept"), chromedp.WaitVisible("#email"))
	portalSignIn(t, br, env, "clerk@h9.example", "clerk-password-1", false)
	if who := br.Text("#who"); !strings.Contains(who, "机构员工") {
		t.Fatalf("invited staff signed in as %q", who)
	}

	// The console shows the order to the reviewer, personal data masked.
	br.Do(chromedp.Navigate(env.URL+"/console/orders/"+medTransID), chromedp.WaitVisible("#timeline"))
	o, _ := env.Store.OrderByID(context.Background(), medTransID)
	if psn := br.Text("#psn-no"); psn == o.PsnNo || psn == "" {
		t.Fatalf("reviewer sees psn_no %q", psn)
	}
	shoot(t, br, "console-order")
	// A charge the platform never recorded shows as a discrepancy of the day.
	if _, err := env.Cash.Charge(context.Background(), "STRAY-C1", "wx1/o1", 1234); err != nil {
		t.Fatal(err)
	}
	br.Do(chromedp.Navigate(env.URL+"/console/reconcile"), chromedp.WaitVisible("#discrepancies"))
	// Reconciliation keys a charge by its order: the serial less its -C<attempt> suffix.
	if d := br.Text("#discrepancies"); !strings.Contains(d, "STRAY") || !strings.Contains(d, "12.34") {
		t.Fatalf("discrepancies %q", d)
	}
	for _, p := range []string{"", "merchants", "orders", "notifications", "reconcile", "policies", "audit"} {
		br.Do(chromedp.Navigate(env.URL+"/console/"+p), chromedp.WaitVisible("#logout"))
		name := p
		if name == "" {
			name = "dashboard"
		}
		shoot(t, br, "console-"+name)
	}
	if audit := br.Text("#audit"); !strings.Contains(audit, "application.approve") || !strings.Contains(audit, "credentials.reveal") {
		t.Fatalf("audit log misses the approval or the reveal:\n%s", audit)
	}
}

// TestBrowserRejectedApplication: the reviewer rejects with a reason the applicant then reads.
func TestBrowserRejectedApplication(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowser(t)
	env := testenv.New(t, testenv.Options{})
	reviewer, reviewerPW := operator(t, env, medpay.RoleReviewer)
	id := applyInBrowser(t, br, env, "某民营诊所", "boss@clinic.example", "clinic-password", false)
	consoleSignIn(t, br, env, reviewer, reviewerPW, false)
	br.Do(chromedp.Navigate(env.URL+"/console/applications/"+id), chromedp.WaitVisible("#reason"),
		chromedp.SendKeys("#reason", "同意文件未加盖医保局公章"), chromedp.Click("#reject"), chromedp.WaitVisible("#notice"))
	if st := br.Text("#app-state"); st != "已驳回" {
		t.Fatalf("state %q", st)
	}
	portalSignIn(t, br, env, "boss@clinic.example", "clinic-password", false)
	if reason := br.Text("#reject-reason"); reason != "同意文件未加盖医保局公章" {
		t.Fatalf("applicant reads %q", reason)
	}
	shoot(t, br, "portal-rejected")
	if n, _ := env.Store.Merchants(context.Background(), 10); len(n) != 0 {
		t.Fatal("a rejected application created a merchant")
	}
}

// approvedMerchant creates an application and approves it through the store, returning the
// merchant with the owner's email and password.
func approvedMerchant(t *testing.T, env *testenv.Env) (*medpay.Merchant, string, string) {
	t.Helper()
	ctx := context.Background()
	email, password := "owner"+secret.RandomString(6, "abcdef")+"@h.example", "owner-password-1"
	a := &medpay.Application{Kind: medpay.KindHospital, Name: "测试医院", OrgCodg: "H44030300001", Level: 3, Cities: []string{"440300"},
		CashMchID: "1900000109", MPAppID: "wx0123456789abcdef", ContactName: "甲", ContactPhone: "13800000000", ContactEmail: email,
		Public: true, CreatedAt: env.Clock.Now()}
	if err := env.Store.CreateApplication(ctx, a, nil, &medpay.Account{Email: email, PasswordHash: secret.HashPassword(password)}, ""); err != nil {
		t.Fatal(err)
	}
	rev := &medpay.Account{ID: 0}
	m, err := env.Store.ApproveApplication(ctx, a.ID, a.Cities, rev, &medpay.AuditEntry{At: env.Clock.Now(), Action: "application.approve"})
	if err != nil {
		t.Fatal(err)
	}
	m.RefundIPs = []string{"127.0.0.1"}
	return m, email, password
}

// TestBrowserKeyRotation: a staff member rotates the key; the old key and secret keep working
// for the overlap, then stop.
func TestBrowserKeyRotation(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowser(t)
	env := testenv.New(t, testenv.Options{})
	m, email, password := approvedMerchant(t, env)
	portalSignIn(t, br, env, email, password, false)
	br.Do(chromedp.Click("#reveal"), chromedp.WaitVisible("#credentials"))
	old := &testenv.Merchant{Merchant: &medpay.Merchant{AppID: br.Text("#cred-appid"), MchID: br.Text("#cred-mchid"),
		APIKey: br.Text("#cred-key"), Name: m.Name}, Secret: br.Text("#cred-secret")}
	br.Do(chromedp.Click("#rotate"), chromedp.WaitVisible("#notice"))
	shoot(t, br, "portal-rotated")
	fresh := &testenv.Merchant{Merchant: &medpay.Merchant{AppID: br.Text("#cred-appid"), MchID: br.Text("#cred-mchid"),
		APIKey: br.Text("#cred-key"), Name: m.Name}, Secret: br.Text("#cred-secret")}
	if fresh.APIKey == old.APIKey || fresh.Secret == old.Secret || fresh.MchID != old.MchID {
		t.Fatal("rotation did not give a new key and secret")
	}
	query := func(h *testenv.Merchant, token string) *wire.Message {
		return env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "hosp_out_trade_no", "none"))
	}
	// Within the overlap both work: the old secret gets a token, the old key signs.
	env.Clock.Advance(medpayhttp.KeyOverlap - time.Minute)
	for _, h := range []*testenv.Merchant{old, fresh} {
		r := query(h, env.Token(t, h))
		if r.Get("return_code") != "SUCCESS" || r.Get("err_code") != medpay.ErrOrderNotFound {
			t.Fatalf("within the overlap: %v", r)
		}
	}
	// After it, the old key's signature and the old secret are refused; the new ones work.
	env.Clock.Advance(2 * time.Minute)
	freshToken := env.Token(t, fresh)
	oldSigned := query(old, freshToken)
	if oldSigned.Get("return_code") != "FAIL" || !strings.Contains(oldSigned.Get("return_msg"), "签名") {
		t.Fatalf("old key after the overlap: %v", oldSigned)
	}
	resp, err := env.Client.Get(env.URL + "/cgi-bin/token?grant_type=client_credential&appid=" + old.AppID + "&secret=" + old.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, body := read(t, resp); !strings.Contains(body, "40125") {
		t.Fatalf("old secret after the overlap: %s", body)
	}
	if r := query(fresh, freshToken); r.Get("err_code") != medpay.ErrOrderNotFound {
		t.Fatalf("new key: %v", r)
	}
}

// TestBrowserResendDeadNotification: an operator resends a dead notification and sees it
// delivered.
func TestBrowserResendDeadNotification(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowser(t)
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	var up atomic.Bool
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(`<xml><return_code>SUCCESS</return_code></xml>`))
	}))
	t.Cleanup(receiver.Close)

	h := env.Hospital(t)
	token := env.Token(t, h)
	env.Bind(t, h, "dead-payer", "440300", "employee")
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "dead-payer", "notify_url", receiver.URL+"/notify"))
	ok(t, r)
	medTransID := r.Get("med_trans_id")
	if code, _ := env.Confirm(t, medTransID, "123456"); code != 200 {
		t.Fatalf("confirm %d", code)
	}
	// The hospital is down through every attempt: the notification dies.
	for i := 0; i < notify.MaxAttempts; i++ {
		if _, err := env.Worker.RunOnce(ctx, env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		env.Clock.Advance(7 * time.Hour)
	}
	rows, err := notify.List(ctx, env.DB, notify.Filter{State: notify.StateDead})
	if err != nil || len(rows) != 1 {
		t.Fatalf("dead rows %d %v", len(rows), err)
	}
	up.Store(true)

	admin, adminPW := operator(t, env, medpay.RoleAdmin)
	consoleSignIn(t, br, env, admin, adminPW, false)
	if dead := br.Text("#dead-count"); dead != "1" {
		t.Fatalf("dashboard dead count %q", dead)
	}
	br.Do(chromedp.Navigate(env.URL+"/console/notifications"), chromedp.WaitVisible("#dead"))
	if list := br.Text("#dead"); !strings.Contains(list, rows[0].NotifyID) {
		t.Fatalf("dead list %q", list)
	}
	shoot(t, br, "console-notifications-dead")
	br.Do(chromedp.Click(`input[name=notify_id][value="`+rows[0].NotifyID+`"]`), chromedp.Click("#resend-selected"), chromedp.WaitVisible("#notice"))
	if n := br.Text("#notice"); !strings.Contains(n, "1 条") {
		t.Fatalf("notice %q", n)
	}
	if _, err := env.Worker.RunOnce(ctx, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	br.Do(chromedp.Navigate(env.URL+"/console/orders/"+medTransID), chromedp.WaitVisible("#timeline"))
	if st := br.Text(".nstate"); st != "已送达" {
		t.Fatalf("notification state after resend %q", st)
	}
	br.Do(chromedp.Navigate(env.URL+"/console/audit"), chromedp.WaitVisible("#audit"))
	if a := br.Text("#audit"); !strings.Contains(a, "notify.resend") {
		t.Fatalf("resend not audited: %q", a)
	}
}

// TestBrowserRoles: support cannot see personal data unmasked, a reviewer cannot suspend a
// merchant, an admin can (and the merchant's API calls then answer 510).
func TestBrowserRoles(t *testing.T) {
	t.Parallel()
	br := testenv.NewBrowserFor(t, 2*time.Minute)
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	token := env.Token(t, h)
	medTransID, _ := paidOrder(t, env, h, token, "role-payer", "employee")
	o, _ := env.Store.OrderByID(context.Background(), medTransID)

	support, supportPW := operator(t, env, medpay.RoleSupport)
	consoleSignIn(t, br, env, support, supportPW, false)
	br.Do(chromedp.Navigate(env.URL+"/console/orders/"+medTransID+"?unmask=1"), chromedp.WaitVisible("#timeline"))
	if psn, card, e := br.Text("#psn-no"), br.Text("#card-no"), br.Text("#error"); psn == o.PsnNo || card == o.CardNo || !strings.Contains(e, "不能查看") {
		t.Fatalf("support sees psn %q card %q (error %q)", psn, card, e)
	}
	br.Do(chromedp.Click("#logout"), chromedp.WaitVisible("#email"))

	reviewer, reviewerPW := operator(t, env, medpay.RoleReviewer)
	consoleSignIn(t, br, env, reviewer, reviewerPW, false)
	br.Do(chromedp.Navigate(env.URL+"/console/merchants"), chromedp.WaitVisible("#merchants"))
	if n, err := chromedp.Run(br.Ctx, chromedp.Evaluate[int](`document.querySelectorAll("button.suspend").length`)); err != nil || n != 0 {
		t.Fatalf("reviewer sees %d suspend buttons (%v)", n, err)
	}
	// Posting the form anyway (same origin) is refused.
	br.Do(chromedp.Evaluate[chromedp.Void](`(() => { const f = document.createElement("form"); f.method = "post";
		f.action = "/console/merchants/`+itoa(h.ID)+`/suspend"; document.body.appendChild(f); f.submit(); })()`),
		chromedp.WaitVisible("#error"))
	if e := br.Text("#error"); !strings.Contains(e, "无权") {
		t.Fatalf("reviewer's suspend: %q", e)
	}
	if s, _ := env.Store.Suspended(context.Background(), h.ID); s {
		t.Fatal("reviewer suspended the merchant")
	}
	br.Do(chromedp.Click("#logout"), chromedp.WaitVisible("#email"))

	admin, adminPW := operator(t, env, medpay.RoleAdmin)
	consoleSignIn(t, br, env, admin, adminPW, false)
	br.Do(chromedp.Navigate(env.URL+"/console/orders/"+medTransID), chromedp.WaitVisible("#unmask"), chromedp.Click("#unmask"), chromedp.WaitNotPresent("#unmask"))
	if psn := br.Text("#psn-no"); psn != o.PsnNo {
		t.Fatalf("admin unmasked psn %q, want %q", psn, o.PsnNo)
	}
	br.Do(chromedp.Navigate(env.URL+"/console/merchants"), chromedp.WaitVisible("#merchants"),
		chromedp.Click("#m-"+h.MchID+" button.suspend"), chromedp.WaitVisible("#m-"+h.MchID+" button.resume"))
	if st := br.Text("#m-" + h.MchID + " .mstate"); st != "已暂停" {
		t.Fatalf("merchant state %q", st)
	}
	shoot(t, br, "console-merchants-suspended")
	r := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", medTransID))
	if r.Get("err_code") != medpay.ErrNoPermission {
		t.Fatalf("suspended merchant's call: %v", r)
	}
	br.Do(chromedp.Click("#m-"+h.MchID+" button.resume"), chromedp.WaitVisible("#m-"+h.MchID+" button.suspend"))
	r = env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", medTransID))
	if r.Get("result_code") != "SUCCESS" {
		t.Fatalf("resumed merchant's call: %v", r)
	}
	br.Do(chromedp.Navigate(env.URL+"/console/audit"), chromedp.WaitVisible("#audit"))
	a := br.Text("#audit")
	for _, want := range []string{"pii.view", "merchant.suspend", "merchant.resume"} {
		if !strings.Contains(a, want) {
			t.Errorf("audit log has no %s", want)
		}
	}
}

// busyDay gives the dashboard something to draw: another hospital's orders through half a day,
// most paid, with their notifications delivered.
func busyDay(t *testing.T, env *testenv.Env) {
	t.Helper()
	ctx := context.Background()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<xml><return_code>SUCCESS</return_code></xml>`))
	}))
	t.Cleanup(receiver.Close)
	h := env.Hospital(t)
	env.Bind(t, h, "busy-payer", "440300", "employee")
	for i := 0; i < 14; i++ {
		token := env.Token(t, h)
		fee := itoa(int64(2000 + 1500*(i%5)))
		kv := []string{"total_fee", fee, "cash_fee", fee, "notify_url", receiver.URL + "/notify"}
		if i%2 == 0 { // with insurance: the bureau settles its part, the figures follow its split
			kv = append(kv, "pay_type", "3", "total_fee", "6500", "cash_fee", "2925", "insurance_fee", "3575",
				"request_content", `{"acct_used":false,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`)
		}
		r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "busy-payer", kv...))
		ok(t, r)
		if i%4 != 3 {
			if code, _ := env.Confirm(t, r.Get("med_trans_id"), "123456"); code != http.StatusOK {
				t.Fatalf("confirm %d", code)
			}
			env.Clock.Advance(time.Duration(1+i%3) * time.Second)
			if _, err := env.Worker.RunOnce(ctx, env.Clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		env.Clock.Advance(47 * time.Minute)
	}
}
