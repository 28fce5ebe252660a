package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/medpay/medpay/client"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/notify"
)

type bundle struct {
	env  *testenv.Env
	h    *testenv.Merchant
	app  *App
	hosp *httptest.Server
	web  *http.Client // the patient's browser, without following redirects
}

// setup starts the platform and the example hospital against it, with patient-1 bound to a
// sandbox employee's card.
func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	c, err := client.New(client.Config{BaseURL: env.URL, AppID: h.AppID, MchID: h.MchID, APIKey: h.APIKey, Secret: h.Secret, HTTPClient: env.Client})
	if err != nil {
		t.Fatal(err)
	}
	hosp := httptest.NewUnstartedServer(nil)
	app := NewApp(Config{Client: c, APIKey: h.APIKey, PublicURL: "http://" + hosp.Listener.Addr().String(), HospitalName: h.Name,
		CityID: "440300", MedpayURL: env.URL, AppID: h.AppID, Now: env.Clock.Now})
	hosp.Config.Handler = app
	hosp.Start()
	t.Cleanup(hosp.Close)
	if err := SandboxBind(context.Background(), env.Client, env.URL, h.AppID, "patient-1", "440300", "employee"); err != nil {
		t.Fatal(err)
	}
	web := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &bundle{env: env, h: h, app: app, hosp: hosp, web: web}
}

// place posts the patient's choice and returns the hospital's trade number and pay_url.
func (b *bundle) place(t *testing.T, path string) (string, string) {
	t.Helper()
	resp, err := b.web.PostForm(b.hosp.URL+path, url.Values{"openid": {"patient-1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, b.env.URL+"/pay/") {
		t.Fatalf("POST %s: %d, Location %q", path, resp.StatusCode, loc)
	}
	medTransID := strings.TrimPrefix(loc, b.env.URL+"/pay/")
	b.app.mu.Lock()
	defer b.app.mu.Unlock()
	for no, rec := range b.app.orders {
		if rec.MedTransID == medTransID {
			return no, loc
		}
	}
	t.Fatal("no record of the order")
	return "", ""
}

// back is the patient returning as the payment page sends them, then following to the order page.
func (b *bundle) back(t *testing.T, no, claimedState string) string {
	t.Helper()
	resp, err := b.web.Get(b.hosp.URL + "/return?order=" + url.QueryEscape(no) + "&hosp_out_trade_no=" + url.QueryEscape(no) + "&med_trade_state=" + claimedState)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("return: %d", resp.StatusCode)
	}
	resp, err = b.web.Get(b.hosp.URL + resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return string(page)
}

func (b *bundle) confirm(t *testing.T, payURL string) {
	t.Helper()
	id := payURL[strings.LastIndex(payURL, "/")+1:]
	if code, out := b.env.Confirm(t, id, "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
}

func (b *bundle) counters() (queries, notifications, repeats int) {
	b.app.mu.Lock()
	defer b.app.mu.Unlock()
	return b.app.Queries, b.app.Notifications, b.app.Repeats
}

// TestNotificationFirst: the notification arrives before the patient returns; the return page
// needs no query, and a repeated notification changes nothing.
func TestNotificationFirst(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	no, payURL := b.place(t, "/clinic")
	b.confirm(t, payURL)
	if _, err := b.env.Worker.RunOnce(ctx, b.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	rec := b.app.Record(no)
	if rec.State != client.StateSuccess || rec.Source != "notification" || rec.InsuranceFee != 6500 || rec.PaidAt.IsZero() {
		t.Fatalf("record after the notification %+v", rec)
	}
	page := b.back(t, no, "SUCCESS")
	if !strings.Contains(page, `id="state" class="ok">已支付<`) || !strings.Contains(page, "支付通知") {
		t.Fatalf("order page:\n%s", page)
	}
	if q, n, _ := b.counters(); q != 0 || n != 1 {
		t.Fatalf("queries %d notifications %d, want 0 and 1", q, n)
	}

	// The platform sends it again (at least once delivery): acknowledged, no effect.
	rows, err := notify.List(ctx, b.env.DB, notify.Filter{})
	if err != nil || len(rows) != 1 {
		t.Fatalf("outbox: %v %d", err, len(rows))
	}
	if err := notify.Resend(ctx, b.env.DB, rows[0].NotifyID, b.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.env.Worker.RunOnce(ctx, b.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, n, r := b.counters(); n != 1 || r != 1 {
		t.Fatalf("after a repeat: notifications %d repeats %d", n, r)
	}
}

// TestReturnFirst: the patient is back before any notification; the app asks the platform.
func TestReturnFirst(t *testing.T) {
	b := setup(t)
	no, payURL := b.place(t, "/register")

	// Back before paying (the patient closed the page): still unpaid, whatever the URL claims.
	page := b.back(t, no, "SUCCESS")
	if !strings.Contains(page, ">待支付<") {
		t.Fatalf("unpaid order page:\n%s", page)
	}
	b.confirm(t, payURL)
	page = b.back(t, no, "SUCCESS")
	if !strings.Contains(page, ">已支付<") || !strings.Contains(page, "订单查询") {
		t.Fatalf("order page:\n%s", page)
	}
	if q, n, _ := b.counters(); q != 2 || n != 0 {
		t.Fatalf("queries %d notifications %d, want 2 and 0", q, n)
	}
	// The notification arrives later and agrees; the next return needs no query.
	if _, err := b.env.Worker.RunOnce(context.Background(), b.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	b.back(t, no, "SUCCESS")
	if q, n, _ := b.counters(); q != 2 || n != 1 {
		t.Fatalf("queries %d notifications %d, want 2 and 1", q, n)
	}
	if rec := b.app.Record(no); rec.State != client.StateSuccess || rec.Kind != client.RegPay {
		t.Fatalf("record %+v", rec)
	}
}

func TestPages(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/", 200, `id="register"`},
		{"GET", "/orders/none", 404, "找不到这笔订单"},
		{"GET", "/return?order=none", 404, "找不到这笔订单"},
		{"GET", "/notify", 405, "FAIL"},
		{"POST", "/notify", 400, "FAIL"},
	} {
		req, _ := http.NewRequest(tc.method, b.hosp.URL+tc.path, strings.NewReader("<xml></xml>"))
		resp, err := b.web.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	// An unbound patient is told to bind a card.
	resp, err := b.web.PostForm(b.hosp.URL+"/register", url.Values{"openid": {"nobody"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "还没有绑定医保卡") {
		t.Fatalf("unbound patient: %d %s", resp.StatusCode, body)
	}
}
