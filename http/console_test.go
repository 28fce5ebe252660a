package http_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medpay/medpay"
	medpayhttp "github.com/medpay/medpay/http"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/secret"
)

// web is a browser-like HTTP client with its own cookies, for the console and the portal.
type web struct {
	t   *testing.T
	env *testenv.Env
	c   *http.Client
}

func newWeb(t *testing.T, env *testenv.Env) *web {
	jar, _ := cookiejar.New(nil)
	c := *env.Client
	c.Jar = jar
	return &web{t: t, env: env, c: &c}
}

// get returns the status and body of GET path (redirects followed).
func (w *web) get(path string) (int, string) {
	w.t.Helper()
	resp, err := w.c.Get(w.env.URL + path)
	if err != nil {
		w.t.Fatal(err)
	}
	return read(w.t, resp)
}

// post submits a form to path (redirects followed) and returns the final status and body.
func (w *web) post(path string, form url.Values) (int, string) {
	w.t.Helper()
	resp, err := w.c.PostForm(w.env.URL+path, form)
	if err != nil {
		w.t.Fatal(err)
	}
	return read(w.t, resp)
}

func read(t *testing.T, resp *http.Response) (int, string) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

var totpSecretRE = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)

// operator creates an operator account of role and returns its email and password.
func operator(t *testing.T, env *testenv.Env, role string) (string, string) {
	t.Helper()
	email := role + secret.RandomString(6, "abcdefghij") + "@ops.example"
	password := "pw-" + secret.RandomString(12, "abcdefghij0123456789")
	err := env.Store.CreateAccount(context.Background(), &medpay.Account{Kind: medpay.AccountOperator, Email: email, Role: role,
		PasswordHash: secret.HashPassword(password), CreatedAt: env.Clock.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return email, password
}

// signInOperator logs in, enrols TOTP from the page if asked, gives the code and returns the
// TOTP secret.
func (w *web) signInOperator(email, password, totpSecret string) string {
	w.t.Helper()
	status, body := w.post("/console/login", url.Values{"email": {email}, "password": {password}})
	if status != http.StatusOK || !strings.Contains(body, `action="/console/totp"`) {
		w.t.Fatalf("login: %d, no TOTP step:\n%s", status, body)
	}
	if m := totpSecretRE.FindStringSubmatch(body); m != nil {
		totpSecret = m[1]
	}
	if totpSecret == "" {
		w.t.Fatalf("no TOTP secret shown at enrolment:\n%s", body)
	}
	code, err := totp.GenerateCode(totpSecret, w.env.Clock.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	status, body = w.post("/console/totp", url.Values{"code": {code}})
	if status != http.StatusOK || !strings.Contains(body, `id="charts"`) {
		w.t.Fatalf("TOTP: %d\n%s", status, body)
	}
	return totpSecret
}

func TestLoginPagesAnswerSignedOutBrowsers(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	w := newWeb(t, env)
	for _, p := range []string{"/apply", "/portal/login", "/console/login", "/console/console.css"} {
		if status, _ := w.get(p); status != http.StatusOK {
			t.Errorf("GET %s: %d", p, status)
		}
	}
	// Pages behind a login send a signed-out browser to the login page.
	for p, want := range map[string]string{"/console/": "/console/login", "/console/orders": "/console/login", "/portal/": "/portal/login"} {
		c := *w.c
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Get(env.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("GET %s signed out: %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestOperatorNeedsTOTP(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	email, password := operator(t, env, medpay.RoleAdmin)
	w := newWeb(t, env)
	status, body := w.post("/console/login", url.Values{"email": {email}, "password": {password}})
	if status != http.StatusOK || !strings.Contains(body, "totp-secret") {
		t.Fatalf("first login: %d, no enrolment\n%s", status, body)
	}
	// Signed in with the password only, the console is still closed.
	if _, body := w.get("/console/orders"); !strings.Contains(body, `action="/console/totp"`) {
		t.Fatalf("console open before the second factor:\n%s", body)
	}
	if status, body := w.post("/console/totp", url.Values{"code": {"000000"}}); status != http.StatusUnauthorized || !strings.Contains(body, "验证码不正确") {
		t.Fatalf("wrong code: %d", status)
	}
	sec := totpSecretRE.FindStringSubmatch(body)[1]
	code, _ := totp.GenerateCode(sec, env.Clock.Now())
	if status, body := w.post("/console/totp", url.Values{"code": {code}}); status != http.StatusOK || !strings.Contains(body, `id="charts"`) {
		t.Fatalf("right code: %d\n%s", status, body)
	}
	// A code works once: signing in again within the same 30 seconds with it is refused.
	w3 := newWeb(t, env)
	w3.post("/console/login", url.Values{"email": {email}, "password": {password}})
	if status, _ := w3.post("/console/totp", url.Values{"code": {code}}); status != http.StatusUnauthorized {
		t.Fatalf("replayed code: %d", status)
	}
	// The next login asks for a code without showing the secret again.
	w2 := newWeb(t, env)
	_, body = w2.post("/console/login", url.Values{"email": {email}, "password": {password}})
	if strings.Contains(body, sec) || !strings.Contains(body, `name="code"`) {
		t.Fatalf("second login shows the secret or no code field:\n%s", body)
	}
	env.Clock.Advance(time.Minute)
	code, _ = totp.GenerateCode(sec, env.Clock.Now())
	if status, _ := w2.post("/console/totp", url.Values{"code": {code}}); status != http.StatusOK {
		t.Fatalf("second login's code: %d", status)
	}
}

func TestWrongPasswordsAreThrottled(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	email, password := operator(t, env, medpay.RoleSupport)
	w := newWeb(t, env)
	for i := 0; i < medpay.LoginFailuresAccount; i++ {
		if status, _ := w.post("/console/login", url.Values{"email": {email}, "password": {"wrong-password"}}); status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, status)
		}
	}
	// Now even the right password is refused until the window passes.
	if status, body := w.post("/console/login", url.Values{"email": {email}, "password": {password}}); status != http.StatusTooManyRequests || !strings.Contains(body, "次数过多") {
		t.Fatalf("after %d failures: %d", medpay.LoginFailuresAccount, status)
	}
	env.Clock.Advance(medpay.LoginWindow + time.Second)
	if status, body := w.post("/console/login", url.Values{"email": {email}, "password": {password}}); status != http.StatusOK || !strings.Contains(body, "totp") {
		t.Fatalf("after the window: %d", status)
	}
	// Per address: many accounts from one address are stopped too.
	for i := 0; i < medpay.LoginFailuresAddress; i++ {
		w.post("/console/login", url.Values{"email": {"nobody" + itoa(int64(i)) + "@x.example"}, "password": {"x"}})
	}
	if status, _ := w.post("/console/login", url.Values{"email": {"another@x.example"}, "password": {"x"}}); status != http.StatusTooManyRequests {
		t.Fatalf("address not throttled: %d", status)
	}
}

func TestSessionsExpireAndEndAtLogout(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	email, password := operator(t, env, medpay.RoleAdmin)
	w := newWeb(t, env)
	sec := w.signInOperator(email, password, "")
	signedIn := func() bool {
		_, body := w.get("/console/orders")
		return strings.Contains(body, `id="orders"`)
	}
	if !signedIn() {
		t.Fatal("not signed in")
	}
	// Idle: a session unused for longer than the idle limit ends.
	env.Clock.Advance(medpay.SessionIdle + time.Second)
	if signedIn() {
		t.Fatal("session survived the idle limit")
	}
	// Absolute: used every 20 minutes, it still ends after the absolute limit.
	env.Clock.Advance(time.Minute)
	w.signInOperator(email, password, sec)
	for elapsed := time.Duration(0); elapsed < medpay.SessionAbsolute-20*time.Minute; elapsed += 20 * time.Minute {
		env.Clock.Advance(20 * time.Minute)
		if !signedIn() {
			t.Fatalf("session ended after %v of use", elapsed)
		}
	}
	env.Clock.Advance(21 * time.Minute)
	if signedIn() {
		t.Fatal("session survived the absolute limit")
	}
	// Logout ends the session on the server: the old cookie no longer works.
	env.Clock.Advance(time.Minute)
	w.signInOperator(email, password, sec)
	u, _ := url.Parse(env.URL + "/console/")
	old := w.c.Jar.Cookies(u)
	if status, body := w.post("/console/logout", nil); status != http.StatusOK || !strings.Contains(body, `action="/console/login"`) {
		t.Fatalf("logout: %d", status)
	}
	w.c.Jar.SetCookies(u, old)
	if signedIn() {
		t.Fatal("the session's cookie works after logout")
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	email, password := operator(t, env, medpay.RoleAdmin)
	c := *env.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(env.URL+"/console/login", url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found bool
	for _, c := range resp.Cookies() {
		if c.Name == "medpay_console" {
			found = true
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" {
				t.Fatalf("cookie %+v", c)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
}

func TestFormsRefuseCrossOriginPosts(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	email, password := operator(t, env, medpay.RoleAdmin)
	w := newWeb(t, env)
	w.signInOperator(email, password, "")
	for _, p := range []string{"/console/login", "/console/notifications/resend", "/portal/login", "/portal/keys/rotate", "/apply"} {
		req, _ := http.NewRequest(http.MethodPost, env.URL+p, strings.NewReader("all=1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := w.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST %s: %d, want 403", p, resp.StatusCode)
		}
	}
	entries, err := env.Store.AuditLog(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Action == "notify.resend_dead" {
			t.Fatal("a cross-origin post acted")
		}
	}
}

// application submits an application through /apply and returns the owner's password.
func submitApplication(t *testing.T, env *testenv.Env, name, email string, public bool, consent []byte) string {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	password := "owner-" + secret.RandomString(10, "abcdefghij")
	fields := map[string]string{"kind": "hospital", "name": name, "org_codg": "H44030300001", "level": "3",
		"cash_mchid": "1900000109", "mp_appid": "wx0123456789abcdef", "contact_name": "张三", "contact_phone": "0755-88886666",
		"contact_email": email, "password": password}
	if public {
		fields["public"] = "1"
	}
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.WriteField("city", "440300")
	mw.WriteField("city", "440100")
	if consent != nil {
		fw, _ := mw.CreateFormFile("consent", "同意函.pdf")
		fw.Write(consent)
	}
	mw.Close()
	resp, err := env.Client.Post(env.URL+"/apply", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	status, body := read(t, resp)
	if status != http.StatusOK || !strings.Contains(body, `id="applied"`) {
		t.Fatalf("apply: %d\n%s", status, body)
	}
	return password
}

var samplePDF = []byte("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")

func TestApplicationChecksEvidenceAndFields(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	post := func(fields map[string]string, file []byte) (int, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, v := range fields {
			mw.WriteField(k, v)
		}
		if file != nil {
			fw, _ := mw.CreateFormFile("consent", "consent.pdf")
			fw.Write(file)
		}
		mw.Close()
		resp, err := env.Client.Post(env.URL+"/apply", mw.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		return read(t, resp)
	}
	good := map[string]string{"kind": "hospital", "name": "某医院", "org_codg": "H44030300001", "level": "3", "city": "440300",
		"cash_mchid": "1900000109", "mp_appid": "wx0123456789abcdef", "contact_name": "李四", "contact_phone": "13800000000",
		"contact_email": "li@h.example", "password": "long-enough-password"}
	// An HTML file named .pdf is refused by its content.
	status, body := post(good, []byte("<html><script>alert(1)</script></html>"))
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "PDF、PNG 或 JPEG") {
		t.Fatalf("HTML as consent: %d", status)
	}
	// A private hospital without the consent document is refused; a city outside coverage too.
	bad := map[string]string{}
	for k, v := range good {
		bad[k] = v
	}
	bad["city"], bad["org_codg"], bad["cash_mchid"] = "999999", "X1", "12"
	status, body = post(bad, nil)
	for _, want := range []string{"主管部门的同意文件", "不在覆盖范围内", "定点机构编码", "商户号"} {
		if !strings.Contains(body, want) {
			t.Errorf("status %d: no %q in the answer", status, want)
		}
	}
	// A file over 5 MB is refused.
	big := append(append([]byte{}, samplePDF...), bytes.Repeat([]byte{' '}, 5<<20)...)
	if status, _ := post(good, big); status == http.StatusOK {
		t.Fatal("oversized consent accepted")
	}
	if status, body := post(good, samplePDF); status != http.StatusOK {
		t.Fatalf("good application: %d\n%s", status, body)
	}
	// Public hospitals may leave the document out (simplified path).
	good["public"], good["contact_email"] = "1", "pub@h.example"
	if status, body := post(good, nil); status != http.StatusOK {
		t.Fatalf("public hospital without document: %d\n%s", status, body)
	}
}

func TestApplicationsThrottledPerAddress(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	for i := 0; i < medpayhttp.MaxApplicationsPerAddress; i++ {
		submitApplication(t, env, "医院"+itoa(int64(i)), "a"+itoa(int64(i))+"@h.example", true, nil)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("name", "one more")
	mw.Close()
	resp, err := env.Client.Post(env.URL+"/apply", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := read(t, resp); status != http.StatusTooManyRequests {
		t.Fatalf("application %d from one address: %d", medpayhttp.MaxApplicationsPerAddress+1, status)
	}
	env.Clock.Advance(medpay.LoginWindow + time.Second)
	submitApplication(t, env, "医院 later", "later@h.example", true, nil)
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	e := &medpay.AuditEntry{At: env.Clock.Now(), Actor: "operator:a@x", Action: "test"}
	if err := env.Store.Audit(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := env.DB.SQL().ExecContext(ctx, `UPDATE audit_log SET action = 'changed'`); err == nil {
		t.Fatal("UPDATE of the audit log succeeded")
	}
	if _, err := env.DB.SQL().ExecContext(ctx, `DELETE FROM audit_log`); err == nil {
		t.Fatal("DELETE from the audit log succeeded")
	}
	entries, err := env.Store.AuditLog(ctx, 0, 10)
	if err != nil || len(entries) != 1 || entries[0].Action != "test" {
		t.Fatalf("entries %+v, %v", entries, err)
	}
}

// unescape reads HTML text.
func unescape(s string) string { return html.UnescapeString(s) }
