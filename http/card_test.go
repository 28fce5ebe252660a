package http_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/wire"
)

// page is a payer page's answer.
type page struct {
	status   int
	body     string
	location string
}

// browse requests a payer page without following redirects; a non-nil form is POSTed.
func browse(t *testing.T, env *testenv.Env, target string, form url.Values, header ...string) page {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = env.URL + target
	}
	method, body := http.MethodGet, io.Reader(nil)
	if form != nil {
		method, body = http.MethodPost, strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := *env.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, body: string(data), location: resp.Header.Get("Location")}
}

// wantPage asserts a page's status and that its body holds every text.
func wantPage(t *testing.T, p page, status int, texts ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d; body:\n%s", p.status, status, p.body)
	}
	for _, s := range texts {
		if !strings.Contains(p.body, s) {
			t.Fatalf("page lacks %q:\n%s", s, p.body)
		}
	}
}

// bindThrough binds on the bind page as a payer does: the form, then the bureau's authorisation
// page (as the person idNo, with the PIN), then back to the platform; it returns the platform's
// last answer (a 303 to the hospital's url when bound).
func bindThrough(t *testing.T, env *testenv.Env, link string, form url.Values, idNo string) page {
	t.Helper()
	res := browse(t, env, link, form)
	u, err := url.Parse(res.location)
	if res.status != http.StatusSeeOther || err != nil || !strings.HasSuffix(u.Path, "/auth") {
		return res // refused before the bureau's page
	}
	q := u.Query()
	if q.Get("scope") != medpay.ScopeBind || !strings.HasPrefix(q.Get("redirect_uri"), link+"/authorized") {
		t.Fatalf("authorisation asked with %v", q)
	}
	wantPage(t, browse(t, env, res.location, nil), http.StatusOK, "医保电子凭证授权", `name="pin"`)
	q.Set("id_no", idNo)
	q.Set("pin", bureau.SandboxPIN)
	u.RawQuery = ""
	back := browse(t, env, u.String(), q)
	if back.status != http.StatusSeeOther || !strings.HasPrefix(back.location, link+"/authorized?") {
		t.Fatalf("bureau's authorisation: %d to %q\n%s", back.status, back.location, back.body)
	}
	return browse(t, env, back.location, nil)
}

// identity is the bind form of a sandbox person.
func identity(p bureau.Person) url.Values {
	return url.Values{"name": {p.Name}, "id_no": {p.IDNo}, "card_no": {p.CardNo}, "city_id": {p.CityID}}
}

func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// bindURL asks getbindurl (full form) for a link for openid returning to ret.
func bindURL(t *testing.T, env *testenv.Env, h *testenv.Merchant, token, openid, ret string) string {
	t.Helper()
	r := env.Call(t, "/payinsurance/getbindurl", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", openid, "url", ret))
	ok(t, r)
	u := r.Get("bind_url")
	if !strings.HasPrefix(u, env.URL+"/bind/") || len(u) < len(env.URL+"/bind/")+40 {
		t.Fatalf("bind_url %q is not an absolute URL under %s with a long token", u, env.URL)
	}
	return u
}

// minimalCall posts the 选用接口 form real integrations send: only the payer field, nonce_str and
// sign, indented, without CDATA, with no appid or mch_id. It verifies a SUCCESS answer's signature.
func minimalCall(t *testing.T, env *testenv.Env, path, token, key string, kv ...string) *wire.Message {
	t.Helper()
	m := testenv.Msg(append(kv, "nonce_str", wire.Nonce())...)
	sign, err := wire.Sign(m, key)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("<xml>\n")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "    <%s>%s</%s>\n", kv[i], kv[i+1], kv[i])
	}
	fmt.Fprintf(&b, "    <nonce_str>%s</nonce_str>\n    <sign>%s</sign>\n</xml>\n", m.Get("nonce_str"), sign)
	if strings.Contains(b.String(), "CDATA") || strings.Contains(b.String(), "appid") {
		t.Fatal("the minimal form has neither CDATA nor appid")
	}
	_, data := env.Post(t, path, token, []byte(b.String()))
	resp, err := wire.Decode(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("answer is not XML: %v\n%s", err, data)
	}
	if resp.Get("return_code") == "SUCCESS" && !wire.Verify(resp, key) {
		t.Fatalf("answer signature does not verify:\n%s", data)
	}
	return resp
}

func TestBindPage(t *testing.T) {
	env, h, token := setup(t)
	p, _ := bureau.FindPerson("440300", bureau.ScenarioEmployee)
	ret := "https://hospital.example/bound?visit=7"
	link := bindURL(t, env, h, token, "bind-1", ret)

	// GET shows the form, phone first, with every covered city and the hospital's preselected.
	wantPage(t, browse(t, env, link, nil), http.StatusOK, h.Name, `name="name"`, `name="id_no"`, `name="card_no"`,
		`<option value="440300" selected>深圳</option>`, "成都", `name="viewport"`)
	if p := browse(t, env, link, nil); strings.Count(p.body, "<option ") != len(bureau.Cities()) {
		t.Fatalf("city select has %d options, want %d", strings.Count(p.body, "<option "), len(bureau.Cities()))
	}

	// The ID number's check digit is checked before the bureau is asked; the form keeps the input.
	badID := p.IDNo[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", p.IDNo[17])+1)%11])
	wantPage(t, browse(t, env, link, with(identity(p), "id_no", badID)), http.StatusUnprocessableEntity, "身份证号不正确", badID)
	wantPage(t, browse(t, env, link, with(identity(p), "name", " ")), http.StatusUnprocessableEntity, "请输入姓名")
	wantPage(t, browse(t, env, link, with(identity(p), "card_no", "")), http.StatusUnprocessableEntity, "请输入社会保障卡卡号")
	wantPage(t, browse(t, env, link, with(identity(p), "city_id", "999999")), http.StatusUnprocessableEntity, "请从列表中选择参保城市")
	// The bureau's refusals, in Chinese, with the attempts left.
	wantPage(t, browse(t, env, link, with(identity(p), "name", "某某某")), http.StatusUnprocessableEntity, "姓名与身份证号", "还可尝试 4 次")
	wantPage(t, browse(t, env, link, with(identity(p), "card_no", "X0000000")), http.StatusUnprocessableEntity, "社保卡号与参保登记信息不一致", "还可尝试 3 次")
	wantPage(t, browse(t, env, link, with(identity(p), "city_id", "510100")), http.StatusUnprocessableEntity, "未在所选城市", "成都")
	// A lower-case x and spaces are forgiven.
	good := with(identity(p), "id_no", " "+strings.ToLower(p.IDNo)+" ")
	// The bureau's authorisation must be the verified person's: another's binds nothing.
	other, _ := bureau.FindPerson("440300", bureau.ScenarioRetiree)
	wantPage(t, bindThrough(t, env, link, good, other.IDNo), http.StatusUnprocessableEntity, "授权的参保人与填写的身份信息不一致")
	if _, err := env.Store.BindingFor(context.Background(), h.AppID, "bind-1"); err != medpay.ErrNotFound {
		t.Fatalf("another person's authorisation bound a card: %v", err)
	}
	res := bindThrough(t, env, link, good, p.IDNo)
	if res.status != http.StatusSeeOther || res.location != ret {
		t.Fatalf("bind: %d to %q, want 303 to %q\n%s", res.status, res.location, ret, res.body)
	}
	info := env.Call(t, "/payinsurance/getmedinfo", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", "bind-1"))
	ok(t, info)
	if info.Get("medical_card_no") != p.CardNo || info.Get("card_status") != "BOUND" {
		t.Fatalf("getmedinfo after binding: %v %v", info.Get("medical_card_no"), info.Get("card_status"))
	}

	// Single use: the link is spent, for GET and POST alike, and says where to go.
	wantPage(t, browse(t, env, link, nil), http.StatusGone, "链接已使用", ret)
	wantPage(t, browse(t, env, link, identity(p)), http.StatusGone, "链接已使用")

	// A new link shows the card bound now, masked, and binding again replaces it.
	link2 := bindURL(t, env, h, token, "bind-1", ret)
	wantPage(t, browse(t, env, link2, nil), http.StatusOK, "当前已绑定", medpay.MaskCardNo(p.CardNo), medpay.MaskName(p.Name))
	if strings.Contains(browse(t, env, link2, nil).body, p.IDNo) {
		t.Fatal("the bind page shows a full ID number")
	}
	r2, _ := bureau.FindPerson("440300", bureau.ScenarioRetiree)
	if res := bindThrough(t, env, link2, identity(r2), r2.IDNo); res.status != http.StatusSeeOther {
		t.Fatalf("rebind: %d %s", res.status, res.body)
	}
	b, err := env.Store.BindingFor(context.Background(), h.AppID, "bind-1")
	if err != nil || b.PsnNo != r2.PsnNo {
		t.Fatalf("binding after rebind: %+v %v", b, err)
	}

	// Expiry: valid 10 minutes.
	link3 := bindURL(t, env, h, token, "bind-3", ret)
	env.Clock.Advance(payment.BindLinkTTL - time.Second)
	wantPage(t, browse(t, env, link3, nil), http.StatusOK, `name="id_no"`)
	env.Clock.Advance(time.Second)
	wantPage(t, browse(t, env, link3, nil), http.StatusGone, "链接已过期", "10 分钟")
	wantPage(t, browse(t, env, link3, identity(p)), http.StatusGone, "链接已过期")
	if _, err := env.Store.BindingFor(context.Background(), h.AppID, "bind-3"); err != medpay.ErrNotFound {
		t.Fatalf("an expired link bound a card: %v", err)
	}

	// A link is burnt after MaxBindFailures refusals by the bureau.
	link4 := bindURL(t, env, h, token, "bind-4", ret)
	for i := 1; i < payment.MaxBindFailures; i++ {
		wantPage(t, browse(t, env, link4, with(identity(p), "name", "某某某")), http.StatusUnprocessableEntity, "还可尝试")
	}
	wantPage(t, browse(t, env, link4, with(identity(p), "name", "某某某")), http.StatusGone, "验证失败次数过多")
	wantPage(t, browse(t, env, link4, identity(p)), http.StatusGone, "验证失败次数过多")

	wantPage(t, browse(t, env, "/bind/not-a-token", nil), http.StatusNotFound, "链接无效")
}

func TestGetBindURLFields(t *testing.T) {
	env, h, token := setup(t)
	post := func(kv ...string) (*http.Response, []byte) {
		return env.Post(t, "/payinsurance/getbindurl", token, signed(t, testenv.Msg(append([]string{"appid", h.AppID, "mch_id", h.MchID}, kv...)...), h.APIKey))
	}
	resp, body := post("url", "https://h.example/")
	protocolFail(t, resp, body, "参数格式校验错误 openid is needed")
	resp, body = post("openid", "o")
	protocolFail(t, resp, body, "参数格式校验错误 url is needed")
	resp, body = post("openid", "o", "url", "javascript:alert(1)")
	protocolFail(t, resp, body, "参数格式校验错误 url is invalid")
	resp, body = post("openid", strings.Repeat("o", 129), "url", "https://h.example/")
	protocolFail(t, resp, body, "参数格式校验错误 openid is invalid")

	// The minimal form: only openid, url, nonce_str and sign.
	r := minimalCall(t, env, "/payinsurance/getbindurl", token, h.APIKey, "openid", "mini", "url", "https://h.example/back")
	ok(t, r)
	if !strings.HasPrefix(r.Get("bind_url"), env.URL+"/bind/") || r.Has("appid") {
		t.Fatalf("minimal getbindurl answer: bind_url %q appid %q", r.Get("bind_url"), r.Get("appid"))
	}
	p, _ := bureau.FindPerson("440300", bureau.ScenarioResident)
	if res := bindThrough(t, env, r.Get("bind_url"), identity(p), p.IDNo); res.status != http.StatusSeeOther || res.location != "https://h.example/back" {
		t.Fatalf("bind through the minimal form's link: %d %q", res.status, res.location)
	}
	if _, err := env.Store.BindingFor(context.Background(), h.AppID, "mini"); err != nil {
		t.Fatalf("the minimal form's link bound nothing under the token's appid: %v", err)
	}
	// A signature with another key fails in the minimal form too.
	other := env.Hospital(t)
	resp2 := minimalCall(t, env, "/payinsurance/getbindurl", token, other.APIKey, "openid", "mini", "url", "https://h.example/back")
	if resp2.Get("return_code") != "FAIL" || !strings.HasPrefix(resp2.Get("return_msg"), "签名失败") {
		t.Fatalf("minimal form with a wrong key: %s %s", resp2.Get("return_code"), resp2.Get("return_msg"))
	}
}

func TestGetMedInfo(t *testing.T) {
	env, h, token := setup(t)
	full := func(openid string) *wire.Message {
		return env.Call(t, "/payinsurance/getmedinfo", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", openid))
	}
	minimal := func(openid string) *wire.Message {
		return minimalCall(t, env, "/payinsurance/getmedinfo", token, h.APIKey, "openid", openid)
	}
	bizFail(t, full("nobody"), medpay.ErrNoCard)
	bizFail(t, minimal("nobody"), medpay.ErrNoCard)

	p := env.Bind(t, h, "info-1", "440300", bureau.ScenarioEmployee)
	for name, r := range map[string]*wire.Message{"full": full("info-1"), "minimal": minimal("info-1")} {
		ok(t, r)
		// The card number in full: the hospital passes it on (docs/api/cards.md (getmedinfo)); the name masked.
		want := map[string]string{"medical_card_no": p.CardNo, "user_name": medpay.MaskName(p.Name),
			"city_id": "440300", "card_status": "BOUND"}
		for k, v := range want {
			if r.Get(k) != v {
				t.Errorf("%s form: %s = %q, want %q", name, k, r.Get(k), v)
			}
		}
	}
	if r := full("info-1"); r.Get("appid") != h.AppID || r.Get("mch_id") != h.MchID {
		t.Error("the full form's answer does not echo appid and mch_id")
	}
	resp, body := env.Post(t, "/payinsurance/getmedinfo", token, signed(t, testenv.Msg("appid", h.AppID, "mch_id", h.MchID), h.APIKey))
	protocolFail(t, resp, body, "参数格式校验错误 openid is needed")
	// The minimal form is for the 选用接口 only: unifiedorder still needs appid.
	r := minimalCall(t, env, "/payinsurance/queryorder", token, h.APIKey, "med_trans_id", "M1")
	if r.Get("return_code") != "FAIL" || !strings.HasPrefix(r.Get("return_msg"), "参数格式校验错误 appid is needed") {
		t.Fatalf("minimal queryorder: %s %s", r.Get("return_code"), r.Get("return_msg"))
	}
}

// actingProvider starts a platform with a service provider acting for a 深圳 hospital, and the
// provider's token for it.
func actingProvider(t *testing.T) (env *testenv.Env, prov, h *testenv.Merchant, token string) {
	t.Helper()
	t.Parallel()
	env = testenv.New(t, testenv.Options{})
	prov = env.NewMerchant(t, medpay.KindProvider, 0)
	h = env.Hospital(t)
	if err := env.Store.Authorize(context.Background(), prov.ID, h.ID); err != nil {
		t.Fatal(err)
	}
	resp, err := env.Client.Get(env.URL + "/payinsurance/gettoken?" + url.Values{"appid": {prov.AppID}, "sub_appid": {h.AppID}, "secret": {prov.Secret}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	tm, err := wire.Decode(resp.Body)
	resp.Body.Close()
	if err != nil || tm.Get("access_token") == "" {
		t.Fatalf("provider token: %v %v", err, tm)
	}
	return env, prov, h, tm.Get("access_token")
}

// TestCardCallsProviderMode: a service provider names the payer by sub_openid, in both forms.
func TestCardCallsProviderMode(t *testing.T) {
	env, prov, h, token := actingProvider(t)
	p := env.Bind(t, h, "sub-1", "440300", bureau.ScenarioRetiree) // the payer lives under the hospital's appid

	r := env.Call(t, "/payinsurance/getmedinfo", token, prov.APIKey, testenv.Msg("appid", prov.AppID, "mch_id", prov.MchID,
		"sub_appid", h.AppID, "sub_mch_id", h.MchID, "sub_openid", "sub-1"))
	ok(t, r)
	if r.Get("medical_card_no") != p.CardNo {
		t.Fatalf("provider getmedinfo: %q", r.Get("medical_card_no"))
	}
	m := minimalCall(t, env, "/payinsurance/getmedinfo", token, prov.APIKey, "sub_openid", "sub-1")
	ok(t, m)
	if m.Get("user_name") != medpay.MaskName(p.Name) {
		t.Fatalf("provider minimal getmedinfo: %q", m.Get("user_name"))
	}
	link := minimalCall(t, env, "/payinsurance/getbindurl", token, prov.APIKey, "sub_openid", "sub-2", "url", "https://h.example/")
	ok(t, link)
	e, _ := bureau.FindPerson("440300", bureau.ScenarioEmployee)
	if res := bindThrough(t, env, link.Get("bind_url"), identity(e), e.IDNo); res.status != http.StatusSeeOther {
		t.Fatalf("bind through a provider's link: %d %s", res.status, res.body)
	}
	if _, err := env.Store.BindingFor(context.Background(), h.AppID, "sub-2"); err != nil {
		t.Fatalf("a provider's link must bind under the hospital's appid: %v", err)
	}
}

func TestUnbindPageSandbox(t *testing.T) {
	env, h, token := setup(t)
	p := env.Bind(t, h, "me-1", "440300", bureau.ScenarioCashDeclined)
	cards := "/me/cards?" + url.Values{"appid": {h.AppID}, "openid": {"me-1"}}.Encode()
	pg := browse(t, env, cards, nil)
	wantPage(t, pg, http.StatusOK, medpay.MaskCardNo(p.CardNo), medpay.MaskName(p.Name), medpay.MaskIDNo(p.IDNo), "深圳", `id="unbind"`)
	if strings.Contains(pg.body, p.CardNo) || strings.Contains(pg.body, p.IDNo) {
		t.Fatal("the cards page shows an unmasked number")
	}
	form := url.Values{"appid": {h.AppID}, "openid": {"me-1"}}

	// The unbind form is protected against cross-origin posts, like the payment page.
	wantPage(t, browse(t, env, "/me/cards", form, "Sec-Fetch-Site", "cross-site"), http.StatusForbidden)
	wantPage(t, browse(t, env, "/me/cards", form, "Origin", "https://evil.example"), http.StatusForbidden)
	ok(t, env.Call(t, "/payinsurance/getmedinfo", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", "me-1")))

	res := browse(t, env, "/me/cards", form, "Sec-Fetch-Site", "same-origin")
	if res.status != http.StatusSeeOther {
		t.Fatalf("unbind: %d %s", res.status, res.body)
	}
	wantPage(t, browse(t, env, res.location, nil), http.StatusOK, "已解除绑定", "当前未绑定医保卡")
	bizFail(t, env.Call(t, "/payinsurance/getmedinfo", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", "me-1")), medpay.ErrNoCard)
	// Unbinding nothing is harmless; the wallet no longer follows the cash_declined person.
	if res := browse(t, env, "/me/cards", form); res.status != http.StatusSeeOther {
		t.Fatalf("second unbind: %d", res.status)
	}
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "me-1"))
	ok(t, r)
	if code, out := env.Confirm(t, r.Get("med_trans_id"), "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("cash order after unbinding a cash_declined person: %d %v", code, out)
	}

	wantPage(t, browse(t, env, "/me/cards?appid="+h.AppID, nil), http.StatusBadRequest, "缺少参数")
	wantPage(t, browse(t, env, "/me/cards?appid=wxnone&openid=x", nil), http.StatusNotFound)
}

// TestBindPageSetsWalletScenario: binding a cash_declined person on the page sets the payer's
// wallet declining, as the sandbox API does.
func TestBindPageSetsWalletScenario(t *testing.T) {
	env, h, token := setup(t)
	p, _ := bureau.FindPerson("440300", bureau.ScenarioCashDeclined)
	link := bindURL(t, env, h, token, "declined-1", "https://h.example/")
	if res := bindThrough(t, env, link, identity(p), p.IDNo); res.status != http.StatusSeeOther {
		t.Fatalf("bind: %d %s", res.status, res.body)
	}
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "declined-1"))
	ok(t, r)
	// The wallet declines at the channel: nothing is paid, the order stays payable.
	if code, out := env.Confirm(t, r.Get("med_trans_id"), "123456"); code != http.StatusPaymentRequired || out["med_trade_state"] != "NOTPAY" {
		t.Fatalf("cash order of a cash_declined payer bound on the page: %d %v", code, out)
	}
}

// TestCardPagesProduction: outside the sandbox the payer pages act only through a link the
// hospital obtained with getbindurl.
func TestCardPagesProduction(t *testing.T) {
	t.Parallel()
	off := false
	env := testenv.New(t, testenv.Options{Sandbox: &off})
	h := env.Hospital(t)
	token := env.Token(t, h)
	p, _ := bureau.FindPerson("440300", bureau.ScenarioEmployee)
	ret := "https://h.example/cards-done"
	if res := bindThrough(t, env, bindURL(t, env, h, token, "prod-1", ret), identity(p), p.IDNo); res.status != http.StatusSeeOther {
		t.Fatalf("bind: %d %s", res.status, res.body)
	}

	wantPage(t, browse(t, env, "/me/cards?"+url.Values{"appid": {h.AppID}, "openid": {"prod-1"}}.Encode(), nil), http.StatusForbidden, "请从医院页面进入")
	wantPage(t, browse(t, env, "/me/cards", url.Values{"appid": {h.AppID}, "openid": {"prod-1"}}), http.StatusForbidden)
	wantPage(t, browse(t, env, "/me/code?appid="+h.AppID+"&openid=prod-1", nil), http.StatusNotFound)
	if resp, _ := env.Post(t, "/sandbox/paycode", "", []byte(`{}`)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/sandbox/paycode outside the sandbox: %d", resp.StatusCode)
	}

	link := bindURL(t, env, h, token, "prod-1", ret)
	tok := link[strings.LastIndexByte(link, '/')+1:]
	// The bind page links to the cards page with its token.
	wantPage(t, browse(t, env, link, nil), http.StatusOK, "/me/cards?t="+tok)
	wantPage(t, browse(t, env, "/me/cards?t="+tok, nil), http.StatusOK, medpay.MaskCardNo(p.CardNo), `name="t"`)
	res := browse(t, env, "/me/cards", url.Values{"t": {tok}})
	if res.status != http.StatusSeeOther || res.location != ret {
		t.Fatalf("unbind with the link: %d %q", res.status, res.location)
	}
	bizFail(t, env.Call(t, "/payinsurance/getmedinfo", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", "prod-1")), medpay.ErrNoCard)
	// The link was used up by the unbinding.
	wantPage(t, browse(t, env, "/me/cards?t="+tok, nil), http.StatusGone, "链接已使用")
	wantPage(t, browse(t, env, "/me/cards", url.Values{"t": {tok}}), http.StatusGone)
	wantPage(t, browse(t, env, link, identity(p)), http.StatusGone)
}
