package http_test

import (
	"context"
	"io"
	"net/url"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/wire"
)

// providerSetup starts a platform with a service provider and a 深圳 hospital that authorised it.
func providerSetup(t *testing.T) (*testenv.Env, *testenv.Merchant, *testenv.Merchant) {
	t.Helper()
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	prov := env.NewMerchant(t, medpay.KindProvider, 0)
	h := env.Hospital(t)
	if err := env.Store.Authorize(context.Background(), prov.ID, h.ID); err != nil {
		t.Fatal(err)
	}
	return env, prov, h
}

// getToken calls /payinsurance/gettoken and returns the decoded (unsigned) answer.
func getToken(t *testing.T, env *testenv.Env, appid, subAppID, secretText string) *wire.Message {
	t.Helper()
	q := url.Values{}
	for k, v := range map[string]string{"appid": appid, "sub_appid": subAppID, "secret": secretText} {
		if v != "" {
			q.Set(k, v)
		}
	}
	resp, err := env.Client.Get(env.URL + "/payinsurance/gettoken?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Decode(stringsReader(string(data)))
	if err != nil {
		t.Fatalf("gettoken answer not XML: %v: %s", err, data)
	}
	if m.Has("sign") {
		t.Fatalf("gettoken answer must not be signed: %s", data)
	}
	return m
}

// providerToken gets a service-provider token for (prov, h) or fails the test.
func providerToken(t *testing.T, env *testenv.Env, prov, h *testenv.Merchant) string {
	t.Helper()
	m := getToken(t, env, prov.AppID, h.AppID, prov.Secret)
	ok(t, m)
	if m.Get("access_token") == "" || m.Get("expires_in") != "7200" {
		t.Fatalf("gettoken: token %q expires_in %q", m.Get("access_token"), m.Get("expires_in"))
	}
	return m.Get("access_token")
}

// providerMsg is a request in service-provider mode: the provider's identifiers, the hospital's
// as sub_*.
func providerMsg(prov, h *testenv.Merchant, kv ...string) *wire.Message {
	return testenv.Msg(append([]string{"appid", prov.AppID, "mch_id", prov.MchID, "sub_appid", h.AppID, "sub_mch_id", h.MchID}, kv...)...)
}

// providerOrder is a unifiedorder body in service-provider mode for payer subOpenID.
func providerOrder(prov, h *testenv.Merchant, subOpenID string, kv ...string) *wire.Message {
	return testenv.OrderRequest(h, "", append([]string{"appid", prov.AppID, "mch_id", prov.MchID,
		"sub_appid", h.AppID, "sub_mch_id", h.MchID, "openid", "", "sub_openid", subOpenID}, kv...)...)
}

func TestProviderTokenErrors(t *testing.T) {
	env, prov, h := providerSetup(t)
	stranger := env.Hospital(t) // has not authorised the provider
	other := env.NewMerchant(t, medpay.KindProvider, 0)

	tests := []struct {
		name                     string
		appid, subAppID, secretT string
		code                     string
	}{
		{"bad secret", prov.AppID, h.AppID, "wrong-secret", medpay.ErrBadSecret},
		{"another provider's secret", prov.AppID, h.AppID, other.Secret, medpay.ErrBadSecret},
		{"hospital appid with its own secret", h.AppID, h.AppID, h.Secret, medpay.ErrBadSecret},
		{"unknown appid", "wx0000000000000000", h.AppID, prov.Secret, medpay.ErrBadSecret},
		{"not authorised", prov.AppID, stranger.AppID, prov.Secret, medpay.ErrNotAuthorised},
		{"authorised another provider only", other.AppID, h.AppID, other.Secret, medpay.ErrNotAuthorised},
		{"unknown hospital", prov.AppID, "wx0000000000000000", prov.Secret, medpay.ErrNotAuthorised},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := getToken(t, env, tt.appid, tt.subAppID, tt.secretT)
			bizFail(t, m, tt.code)
			if m.Has("access_token") {
				t.Fatal("a failed gettoken carries a token")
			}
		})
	}

	t.Run("missing parameter", func(t *testing.T) {
		for _, missing := range []string{"appid", "sub_appid", "secret"} {
			args := map[string]string{"appid": prov.AppID, "sub_appid": h.AppID, "secret": prov.Secret}
			args[missing] = ""
			m := getToken(t, env, args["appid"], args["sub_appid"], args["secret"])
			if m.Get("return_code") != "FAIL" || !hasPrefix(m.Get("return_msg"), "参数格式校验错误 "+missing+" is needed rid: ") {
				t.Errorf("without %s: %s %s", missing, m.Get("return_code"), m.Get("return_msg"))
			}
		}
	})

	t.Run("after revoke", func(t *testing.T) {
		providerToken(t, env, prov, h)
		if err := env.Store.Revoke(context.Background(), prov.ID, h.ID); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { env.Store.Authorize(context.Background(), prov.ID, h.ID) })
		bizFail(t, getToken(t, env, prov.AppID, h.AppID, prov.Secret), medpay.ErrNotAuthorised)
	})
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func TestProviderCallErrors(t *testing.T) {
	env, prov, h := providerSetup(t)
	token := providerToken(t, env, prov, h)
	query := func(kv ...string) *wire.Message {
		return providerMsg(prov, h, append([]string{"hosp_out_trade_no", "H-none"}, kv...)...)
	}

	t.Run("works while authorised", func(t *testing.T) {
		bizFail(t, env.Call(t, "/payinsurance/queryorder", token, prov.APIKey, query()), medpay.ErrOrderNotFound)
	})

	t.Run("signed with the hospital's key", func(t *testing.T) {
		resp, body := env.Post(t, "/payinsurance/queryorder", token, signed(t, query(), h.APIKey))
		protocolFail(t, resp, body, "签名失败")
	})

	t.Run("token used for another hospital", func(t *testing.T) {
		h2 := env.Hospital(t)
		if err := env.Store.Authorize(context.Background(), prov.ID, h2.ID); err != nil {
			t.Fatal(err)
		}
		resp, body := env.Post(t, "/payinsurance/queryorder", token, signed(t, providerMsg(prov, h2, "hosp_out_trade_no", "H-none"), prov.APIKey))
		protocolFail(t, resp, body, "access_token与appid不匹配")
		// With its own token the same call passes the protocol checks.
		tok2 := providerToken(t, env, prov, h2)
		bizFail(t, env.Call(t, "/payinsurance/queryorder", tok2, prov.APIKey, providerMsg(prov, h2, "hosp_out_trade_no", "H-none")), medpay.ErrOrderNotFound)
	})

	t.Run("provider token without sub fields", func(t *testing.T) {
		m := testenv.Msg("appid", prov.AppID, "mch_id", prov.MchID, "hosp_out_trade_no", "H-none")
		resp, body := env.Post(t, "/payinsurance/queryorder", token, signed(t, m, prov.APIKey))
		protocolFail(t, resp, body, "access_token与appid不匹配")
	})

	t.Run("hospital token used by the provider", func(t *testing.T) {
		resp, body := env.Post(t, "/payinsurance/queryorder", env.Token(t, h), signed(t, query(), prov.APIKey))
		protocolFail(t, resp, body, "access_token与appid不匹配")
	})

	t.Run("sub_mch_id of another hospital", func(t *testing.T) {
		h3 := env.Hospital(t)
		resp, body := env.Post(t, "/payinsurance/queryorder", token, signed(t, query("sub_mch_id", h3.MchID), prov.APIKey))
		protocolFail(t, resp, body, "参数格式校验错误 sub_mch_id is invalid")
	})

	t.Run("sub_mch_id missing", func(t *testing.T) {
		m := query()
		m.Del("sub_mch_id")
		resp, body := env.Post(t, "/payinsurance/queryorder", token, signed(t, m, prov.APIKey))
		protocolFail(t, resp, body, "参数格式校验错误 sub_mch_id is needed")
	})

	t.Run("provider without sub fields", func(t *testing.T) {
		// A provider holding an independent-mode token for its own appid must still name the
		// hospital: 510, signed with its key.
		own := env.Token(t, prov)
		m := env.Call(t, "/payinsurance/queryorder", own, prov.APIKey, testenv.Msg("appid", prov.AppID, "mch_id", prov.MchID, "hosp_out_trade_no", "H-none"))
		bizFail(t, m, medpay.ErrNoPermission)
		m = env.Call(t, "/payinsurance/unifiedorder", own, prov.APIKey, testenv.OrderRequest(h, "p1", "appid", prov.AppID, "mch_id", prov.MchID))
		bizFail(t, m, medpay.ErrNoPermission)
	})

	t.Run("hospital that did not authorise", func(t *testing.T) {
		// The token was issued while the hospital authorised the provider; the authorisation is
		// checked again on every call.
		h4 := env.Hospital(t)
		ctx := context.Background()
		if err := env.Store.Authorize(ctx, prov.ID, h4.ID); err != nil {
			t.Fatal(err)
		}
		tok4 := providerToken(t, env, prov, h4)
		if err := env.Store.Revoke(ctx, prov.ID, h4.ID); err != nil {
			t.Fatal(err)
		}
		m := env.Call(t, "/payinsurance/queryorder", tok4, prov.APIKey, providerMsg(prov, h4, "hosp_out_trade_no", "H-none"))
		bizFail(t, m, medpay.ErrNoPermission)
		if m.Get("sub_appid") != h4.AppID || m.Get("sub_mch_id") != h4.MchID {
			t.Errorf("510 answer does not echo sub_*: %q %q", m.Get("sub_appid"), m.Get("sub_mch_id"))
		}
		m = env.Call(t, "/payinsurance/unifiedorder", tok4, prov.APIKey, providerOrder(prov, h4, "p1"))
		bizFail(t, m, medpay.ErrNoPermission)
	})

	t.Run("hospital naming itself as sub", func(t *testing.T) {
		// Only a service provider may use sub_*: a hospital's independent token does not cover
		// them.
		m := testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "sub_appid", h.AppID, "sub_mch_id", h.MchID, "hosp_out_trade_no", "H-none")
		resp, body := env.Post(t, "/payinsurance/queryorder", env.Token(t, h), signed(t, m, h.APIKey))
		protocolFail(t, resp, body, "access_token与appid不匹配")
	})
}

func TestProviderPayment(t *testing.T) {
	env, prov, h := providerSetup(t)
	token := providerToken(t, env, prov, h)
	ctx := context.Background()
	const payer = "sub-payer"
	p := env.Bind(t, h, payer, "440300", "employee") // the payer is known under the hospital's appid

	// Without sub_openid the order is paid by 扫码付: the payer is identified when they scan it.
	scan := env.Call(t, "/payinsurance/unifiedorder", token, prov.APIKey, providerOrder(prov, h, ""))
	ok(t, scan)
	if code, out := env.Confirm(t, scan.Get("med_trans_id"), "123456"); code != 409 {
		t.Fatalf("confirming a 扫码付 order before the scan: %d %v", code, out)
	}

	req := providerOrder(prov, h, payer, "pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500",
		"allow_fee_change", "1", "request_content", workedBill, "attach", "provider order")
	r := env.Call(t, "/payinsurance/unifiedorder", token, prov.APIKey, req) // verifies with the provider's key
	ok(t, r)
	if r.Get("appid") != prov.AppID || r.Get("mch_id") != prov.MchID || r.Get("sub_appid") != h.AppID || r.Get("sub_mch_id") != h.MchID {
		t.Fatalf("answer identifiers %q %q %q %q", r.Get("appid"), r.Get("mch_id"), r.Get("sub_appid"), r.Get("sub_mch_id"))
	}
	if wire.Verify(r, h.APIKey) {
		t.Fatal("answer verifies with the hospital's key; it must be signed with the provider's")
	}
	id := r.Get("med_trans_id")
	if r.Get("insurance_fee") != "6500" || r.Get("cash_fee") != "0" {
		t.Fatalf("pre-settlement: insurance %s cash %s", r.Get("insurance_fee"), r.Get("cash_fee"))
	}

	code, out := env.Confirm(t, id, "123456")
	if code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	o := checkBooks(t, env, id, &p, h.AppID+"/"+payer)
	if o.MerchantID != h.ID || o.ProviderID != prov.ID || o.SubOpenID != payer || o.OpenID != "" {
		t.Fatalf("order merchant %d provider %d sub_openid %q openid %q", o.MerchantID, o.ProviderID, o.SubOpenID, o.OpenID)
	}
	moves, err := env.Store.OrderLedger(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if moves[medpay.HospitalAccount(h.MchID)] != 6500 || moves[medpay.HospitalAccount(prov.MchID)] != 0 {
		t.Fatalf("the hospital, not the provider, is paid: %v", moves)
	}

	q := env.Call(t, "/payinsurance/queryorder", token, prov.APIKey, providerMsg(prov, h, "med_trans_id", id))
	ok(t, q)
	for k, v := range map[string]string{"med_trade_state": "SUCCESS", "sub_openid": payer, "hosp_out_trade_no": req.Get("hosp_out_trade_no"),
		"insurance_fee": "6500", "cash_fee": "0", "attach": "provider order", "sub_appid": h.AppID, "sub_mch_id": h.MchID} {
		if q.Get(k) != v {
			t.Errorf("queryorder %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("openid") {
		t.Errorf("queryorder carries openid %q in provider mode", q.Get("openid"))
	}

	// The hospital may also call independently and sees the same order.
	hq := env.Call(t, "/payinsurance/queryorder", env.Token(t, h), h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id))
	ok(t, hq)
	if hq.Get("med_trade_state") != "SUCCESS" || hq.Get("sub_openid") != payer {
		t.Errorf("hospital's own query: %s %s", hq.Get("med_trade_state"), hq.Get("sub_openid"))
	}

	// The PAY notification: provider identifiers, sub_*, signed with the provider's key.
	var nbody string
	if err := env.DB.SQL().QueryRow(`SELECT body FROM outbox WHERE order_id = $1`, o.ID).Scan(&nbody); err != nil {
		t.Fatal(err)
	}
	n, err := wire.Decode(stringsReader(nbody))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"return_code": "SUCCESS", "result_code": "SUCCESS", "notify_type": "PAY",
		"appid": prov.AppID, "mch_id": prov.MchID, "sub_appid": h.AppID, "sub_mch_id": h.MchID, "sub_openid": payer,
		"med_trans_id": id, "med_trade_state": "SUCCESS", "insurance_fee": "6500"} {
		if n.Get(k) != v {
			t.Errorf("notification %s = %q, want %q", k, n.Get(k), v)
		}
	}
	if n.Get("notify_id") == "" || !wire.Verify(n, prov.APIKey) || wire.Verify(n, h.APIKey) {
		t.Errorf("notification notify_id %q; verifies with provider key %v, with hospital key %v",
			n.Get("notify_id"), wire.Verify(n, prov.APIKey), wire.Verify(n, h.APIKey))
	}
}

// TestProviderMinimalForm sends getmedinfo the way real integrations do (only sub_openid,
// nonce_str and sign, indented XML without CDATA) with a service-provider token: the token names
// the provider and the hospital, the provider's key verifies.
func TestProviderMinimalForm(t *testing.T) {
	env, prov, h := providerSetup(t)
	token := providerToken(t, env, prov, h)
	p := env.Bind(t, h, "min-payer", "440300", "employee")
	m := testenv.Msg("sub_openid", "min-payer", "nonce_str", wire.Nonce())
	sig, err := wire.Sign(m, prov.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	body := "<xml>\n  <sub_openid>min-payer</sub_openid>\n  <nonce_str>" + m.Get("nonce_str") + "</nonce_str>\n  <sign>" + sig + "</sign>\n</xml>\n"
	_, out := env.Post(t, "/payinsurance/getmedinfo", token, []byte(body))
	r, err := wire.Decode(stringsReader(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	ok(t, r)
	if !wire.Verify(r, prov.APIKey) || r.Get("medical_card_no") != p.CardNo || r.Get("card_status") != "BOUND" {
		t.Fatalf("answer %s", out)
	}
	// Signed with the hospital's key it is refused.
	m.Set("nonce_str", wire.Nonce())
	sig, _ = wire.Sign(m, h.APIKey)
	body = "<xml><sub_openid>min-payer</sub_openid><nonce_str>" + m.Get("nonce_str") + "</nonce_str><sign>" + sig + "</sign></xml>"
	resp, out := env.Post(t, "/payinsurance/getmedinfo", token, []byte(body))
	protocolFail(t, resp, out, "签名失败")
	// After the hospital withdraws its authorisation: 510.
	if err := env.Store.Revoke(context.Background(), prov.ID, h.ID); err != nil {
		t.Fatal(err)
	}
	m.Set("nonce_str", wire.Nonce())
	sig, _ = wire.Sign(m, prov.APIKey)
	body = "<xml><sub_openid>min-payer</sub_openid><nonce_str>" + m.Get("nonce_str") + "</nonce_str><sign>" + sig + "</sign></xml>"
	_, out = env.Post(t, "/payinsurance/getmedinfo", token, []byte(body))
	r, _ = wire.Decode(stringsReader(string(out)))
	bizFail(t, r, medpay.ErrNoPermission)
}
