package http_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/wire"
)

// portalSession signs the owner of a freshly approved merchant in to the portal and returns the
// merchant with its clear credentials (revealed once on the way).
func portalSession(t *testing.T, env *testenv.Env) (*web, *testenv.Merchant) {
	t.Helper()
	m, email, password := approvedMerchant(t, env)
	w := newWeb(t, env)
	if status, body := w.post("/portal/login", url.Values{"email": {email}, "password": {password}}); status != http.StatusOK || !strings.Contains(body, `id="reveal"`) {
		t.Fatalf("portal login: %d\n%s", status, body)
	}
	_, body := w.post("/portal/credentials", nil)
	secretText := between(body, `id="cred-secret">`, "<")
	stored, err := env.Store.MerchantByID(context.Background(), m.ID)
	if err != nil || secretText == "" {
		t.Fatalf("credentials: %v\n%s", err, body)
	}
	return w, &testenv.Merchant{Merchant: stored, Secret: secretText}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return ""
}

func TestPortalNotifyURLTest(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	w, h := portalSession(t, env)
	var mu sync.Mutex
	var got *wire.Message
	receiver := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m, err := wire.Decode(strings.NewReader(string(body)))
		if err == nil {
			mu.Lock()
			got = m
			mu.Unlock()
		}
		rw.Write([]byte(`<xml><return_code>SUCCESS</return_code></xml>`))
	}))
	t.Cleanup(receiver.Close)
	status, body := w.post("/portal/settings/notify-test", url.Values{"notify_url": {receiver.URL + "/notify"}})
	if status != http.StatusOK || !strings.Contains(body, "应答成功") || !strings.Contains(body, "HTTP 200") {
		t.Fatalf("notify test: %d\n%s", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if got == nil || got.Get("notify_type") != "TEST" || got.Get("mch_id") != h.MchID || !wire.Verify(got, h.APIKey) {
		t.Fatalf("the hospital received %v (signature checked with its key)", got)
	}
	// A URL that is not http(s) is refused before anything is sent.
	if status, body := w.post("/portal/settings/notify-test", url.Values{"notify_url": {"ftp://x/y"}}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "通知地址不可用") {
		t.Fatalf("ftp URL: %d", status)
	}
}

func TestPortalRefundIPsBillsAndProviders(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	w, h := portalSession(t, env)

	if status, body := w.post("/portal/settings/refund-ips", url.Values{"refund_ips": {"not-an-ip"}}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "not-an-ip") {
		t.Fatalf("bad IP: %d", status)
	}
	if status, _ := w.post("/portal/settings/refund-ips", url.Values{"refund_ips": {"127.0.0.1\n10.0.0.0/8"}}); status != http.StatusOK {
		t.Fatalf("save IPs: %d", status)
	}
	if m, _ := env.Store.MerchantByID(ctx, h.ID); len(m.RefundIPs) != 2 || m.RefundIPs[1] != "10.0.0.0/8" {
		t.Fatalf("refund IPs %v", m.RefundIPs)
	}

	// The day's bill of a paid order downloads as the API serves it.
	token := env.Token(t, h)
	medTransID, _ := paidOrder(t, env, h, token, "bill-payer", "employee")
	day := env.Clock.Now().In(medpay.CST).Format("2006-01-02")
	resp, err := w.c.Get(env.URL + "/portal/bills?day=" + day + "&type=ALL")
	if err != nil {
		t.Fatal(err)
	}
	status, body := read(t, resp)
	if status != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.Contains(body, medTransID) {
		t.Fatalf("bill: %d %s\n%s", status, resp.Header.Get("Content-Type"), body)
	}
	if _, body := w.get("/portal/reconcile?day=" + day); !strings.Contains(body, "平账") {
		t.Fatalf("reconciliation of a clean day:\n%s", body)
	}
	// Search and filters.
	if _, body := w.get("/portal/orders?q=" + medTransID); !strings.Contains(body, medTransID) {
		t.Fatal("search by med_trans_id finds nothing")
	}
	if _, body := w.get("/portal/orders?state=CLOSED"); strings.Contains(body, medTransID) {
		t.Fatal("state filter lets a paid order through")
	}
	// Another merchant's order is not shown.
	other := env.Hospital(t)
	otherID, _ := paidOrder(t, env, other, env.Token(t, other), "other-payer", "employee")
	if status, _ := w.get("/portal/orders/" + otherID); status != http.StatusNotFound {
		t.Fatalf("another merchant's order: %d", status)
	}

	// The hospital authorises a service provider, and withdraws the authorisation.
	prov := env.NewMerchant(t, medpay.KindProvider, 0)
	if status, body := w.post("/portal/providers", url.Values{"provider": {prov.MchID}, "action": {"authorize"}}); status != http.StatusOK || !strings.Contains(body, "已授权") {
		t.Fatalf("authorise: %d", status)
	}
	if ok, _ := env.Store.IsAuthorized(ctx, prov.ID, h.ID); !ok {
		t.Fatal("not authorised")
	}
	w.post("/portal/providers", url.Values{"provider": {prov.MchID}, "action": {"revoke"}})
	if ok, _ := env.Store.IsAuthorized(ctx, prov.ID, h.ID); ok {
		t.Fatal("still authorised after revocation")
	}
	if status, _ := w.post("/portal/providers", url.Values{"provider": {h.MchID}}); status != http.StatusUnprocessableEntity {
		t.Fatalf("a hospital as provider: %d", status)
	}
}

func TestProviderApplies(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	a := &medpay.Application{Kind: medpay.KindProvider, Name: "某服务商", CashMchID: "1900000109", MPAppID: "wx0123456789abcdef",
		ContactName: "乙", ContactPhone: "13800000000", ContactEmail: "p@sp.example", CreatedAt: env.Clock.Now()}
	if err := env.Store.CreateApplication(ctx, a, nil, &medpay.Account{Email: a.ContactEmail, PasswordHash: "x"}, ""); err != nil {
		t.Fatal(err)
	}
	email, password := operator(t, env, medpay.RoleReviewer)
	w := newWeb(t, env)
	w.signInOperator(email, password, "")
	if status, body := w.post("/console/applications/"+itoa(a.ID)+"/approve", url.Values{"city": {"-"}}); status != http.StatusOK || !strings.Contains(body, "已批准") {
		t.Fatalf("approve provider: %d\n%s", status, body)
	}
	got, _ := env.Store.Application(ctx, a.ID)
	m, err := env.Store.MerchantByID(ctx, got.MerchantID)
	if err != nil || m.Kind != medpay.KindProvider || len(m.Cities) != 0 {
		t.Fatalf("provider merchant %+v %v", m, err)
	}
	// A support operator reads the application with the contacts masked and cannot decide.
	se, sp := operator(t, env, medpay.RoleSupport)
	ws := newWeb(t, env)
	ws.signInOperator(se, sp, "")
	_, body := ws.get("/console/applications/" + itoa(a.ID))
	if strings.Contains(body, "p@sp.example") || strings.Contains(body, "13800000000") {
		t.Fatal("support sees the applicant's contacts")
	}
	if status, _ := ws.post("/console/applications/"+itoa(a.ID)+"/reject", url.Values{"reason": {"x"}}); status != http.StatusForbidden {
		t.Fatalf("support rejects: %d", status)
	}
}

func TestStaffMayEnableTOTP(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, email, password := approvedMerchant(t, env)
	w := newWeb(t, env)
	if _, body := w.post("/portal/login", url.Values{"email": {email}, "password": {password}}); !strings.Contains(body, `id="enable-totp"`) {
		t.Fatalf("no offer to enable TOTP:\n%s", body)
	}
	_, body := w.get("/portal/totp")
	sec := between(body, `id="totp-secret">`, "<")
	if sec == "" {
		t.Fatalf("no enrolment:\n%s", body)
	}
	code, _ := totp.GenerateCode(sec, env.Clock.Now())
	if status, body := w.post("/portal/totp", url.Values{"code": {code}}); status != http.StatusOK || !strings.Contains(body, `id="totp-on"`) {
		t.Fatalf("enable: %d\n%s", status, body)
	}
	// The next sign-in asks for a code before the portal opens.
	env.Clock.Advance(time.Minute)
	w2 := newWeb(t, env)
	if _, body := w2.post("/portal/login", url.Values{"email": {email}, "password": {password}}); !strings.Contains(body, `action="/portal/totp"`) || strings.Contains(body, sec) {
		t.Fatalf("second sign-in:\n%s", body)
	}
	if _, body := w2.get("/portal/orders"); strings.Contains(body, `id="orders"`) {
		t.Fatal("portal open before the code")
	}
	code, _ = totp.GenerateCode(sec, env.Clock.Now())
	if status, body := w2.post("/portal/totp", url.Values{"code": {code}}); status != http.StatusOK || !strings.Contains(body, `id="totp-on"`) {
		t.Fatalf("code: %d\n%s", status, body)
	}
}

// TestSuspendedHospitalRefusedInProviderMode: a provider acting for a suspended hospital gets 510,
// and so does a suspended provider acting for a hospital in good standing.
func TestSuspendedHospitalRefusedInProviderMode(t *testing.T) {
	env, prov, h := providerSetup(t)
	ctx := context.Background()
	token := providerToken(t, env, prov, h)
	query := func() *wire.Message {
		return env.Call(t, "/payinsurance/queryorder", token, prov.APIKey, testenv.Msg("appid", prov.AppID, "mch_id", prov.MchID,
			"sub_appid", h.AppID, "sub_mch_id", h.MchID, "hosp_out_trade_no", "none"))
	}
	if r := query(); r.Get("err_code") != medpay.ErrOrderNotFound {
		t.Fatalf("before suspension: %v", r)
	}
	for _, m := range []*testenv.Merchant{h, prov} {
		env.Store.SetSuspended(ctx, m.ID, true, "", &medpay.AuditEntry{At: env.Clock.Now(), Action: "merchant.suspend"})
		if r := query(); r.Get("err_code") != medpay.ErrNoPermission || !strings.Contains(r.Get("err_code_des"), m.MchID) {
			t.Fatalf("%s suspended: %v", m.Kind, r)
		}
		env.Store.SetSuspended(ctx, m.ID, false, "", &medpay.AuditEntry{At: env.Clock.Now(), Action: "merchant.resume"})
	}
	if r := query(); r.Get("err_code") != medpay.ErrOrderNotFound {
		t.Fatalf("after resumption: %v", r)
	}
}

// TestEvidenceServedAsUploaded: the reviewer reads the consent document as it was uploaded, with
// its sniffed type; support may not open it.
func TestEvidenceServedAsUploaded(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	submitApplication(t, env, "证据医院", "ev@h.example", false, samplePDF)
	apps, err := env.Store.Applications(context.Background(), "", 10)
	if err != nil || len(apps) != 1 {
		t.Fatalf("applications %d %v", len(apps), err)
	}
	path := "/console/applications/" + itoa(apps[0].ID) + "/evidence"
	email, password := operator(t, env, medpay.RoleReviewer)
	w := newWeb(t, env)
	w.signInOperator(email, password, "")
	resp, err := w.c.Get(env.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	status, body := read(t, resp)
	if status != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" || resp.Header.Get("X-Content-Type-Options") != "nosniff" || body != string(samplePDF) {
		t.Fatalf("evidence: %d %q %q", status, resp.Header.Get("Content-Type"), body)
	}
	se, sp := operator(t, env, medpay.RoleSupport)
	ws := newWeb(t, env)
	ws.signInOperator(se, sp, "")
	if status, _ := ws.get(path); status != http.StatusForbidden {
		t.Fatalf("support opens the evidence: %d", status)
	}
}
