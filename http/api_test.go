package http_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/wire"
)

// setup starts a platform with one 深圳 hospital and a token for it.
func setup(t *testing.T) (*testenv.Env, *testenv.Merchant, string) {
	t.Helper()
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	return env, h, env.Token(t, h)
}

// protocolFail asserts a return_code FAIL whose return_msg is reason + " rid: " + X-Request-Id,
// unsigned.
func protocolFail(t *testing.T, resp *http.Response, body []byte, reason string) {
	t.Helper()
	m, err := wire.Decode(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("answer not XML: %v: %s", err, body)
	}
	rid := resp.Header.Get("X-Request-Id")
	if rid == "" {
		t.Fatal("no X-Request-Id header")
	}
	if got, want := m.Get("return_code"), "FAIL"; got != want {
		t.Fatalf("return_code = %q, want FAIL; body %s", got, body)
	}
	if got, want := m.Get("return_msg"), reason+" rid: "+rid; got != want {
		t.Fatalf("return_msg = %q, want %q", got, want)
	}
	if m.Has("sign") {
		t.Fatal("a protocol FAIL must not be signed")
	}
}

func signed(t *testing.T, m *wire.Message, key string) []byte {
	t.Helper()
	if !m.Has("nonce_str") {
		m.Set("nonce_str", wire.Nonce())
	}
	if err := wire.SignInPlace(m, key); err != nil {
		t.Fatal(err)
	}
	return m.Bytes()
}

func TestProtocolErrors(t *testing.T) {
	env, h, token := setup(t)
	other := env.Hospital(t)
	otherToken := env.Token(t, other)
	valid := func(kv ...string) []byte { return signed(t, testenv.OrderRequest(h, "o1", kv...), h.APIKey) }

	tests := []struct {
		name   string
		token  string
		body   []byte
		reason string
	}{
		{"not XML", token, []byte("appid=wx1&mch_id=2"), "XML格式错误"},
		{"root not xml", token, []byte("<request><appid>wx</appid></request>"), "XML格式错误"},
		{"truncated", token, []byte("<xml><appid>wx"), "XML格式错误"},
		{"required field missing", token, valid("hosp_out_trade_no", ""), "参数格式校验错误 hosp_out_trade_no is needed"},
		{"required field empty", token, signed(t, func() *wire.Message { m := testenv.OrderRequest(h, "o1"); m.Set("body", ""); return m }(), h.APIKey), "参数格式校验错误 body is needed"},
		{"not a number", token, valid("total_fee", "12.50"), "参数格式校验错误 total_fee is invalid"},
		{"negative", token, valid("cash_fee", "-1"), "参数格式校验错误 cash_fee is invalid"},
		{"too long", token, valid("hosp_out_trade_no", strings.Repeat("9", 65)), "参数格式校验错误 hosp_out_trade_no is invalid"},
		{"bad enum", token, valid("order_type", "Other"), "参数格式校验错误 order_type is invalid"},
		{"uint8 out of range", token, valid("pay_type", "256"), "参数格式校验错误 pay_type is invalid"},
		{"bad time", token, valid("gmt_out_create", "20261301000000"), "参数格式校验错误 gmt_out_create is invalid"},
		{"bad notify_url", token, valid("notify_url", "ftp://x/y"), "参数格式校验错误 notify_url is invalid"},
		{"appid missing", token, valid("appid", ""), "参数格式校验错误 appid is needed"},
		{"unknown mch_id", token, valid("mch_id", "1999999999"), "参数格式校验错误 mch_id is invalid"},
		{"token missing", "", valid(), "access_token无效或已过期"},
		{"token unknown", "not-a-token", valid(), "access_token无效或已过期"},
		{"token of another appid", otherToken, valid(), "access_token与appid不匹配"},
		{"body too large", token, []byte("<xml><body>" + strings.Repeat("x", wire.MaxBodySize) + "</body></xml>"), "请求体过大"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := env.Post(t, "/payinsurance/unifiedorder", tt.token, tt.body)
			protocolFail(t, resp, body, tt.reason)
		})
	}

	t.Run("signature wrong", func(t *testing.T) {
		req := testenv.OrderRequest(h, "o1")
		body := signed(t, req, h.APIKey)
		tampered := strings.Replace(string(body), "<![CDATA[10000]]></total_fee>", "<![CDATA[10001]]></total_fee>", 1)
		if tampered == string(body) {
			t.Fatal("tampering failed")
		}
		resp, out := env.Post(t, "/payinsurance/unifiedorder", token, []byte(tampered))
		protocolFail(t, resp, out, "签名失败")
		// A signature with another merchant's key is wrong too.
		resp, out = env.Post(t, "/payinsurance/unifiedorder", token, signed(t, testenv.OrderRequest(h, "o1"), other.APIKey))
		protocolFail(t, resp, out, "签名失败")
	})

	t.Run("nonce replay", func(t *testing.T) {
		req := testenv.OrderRequest(h, "o1", "nonce_str", "replay-"+secret.RandomString(8, "abc"))
		body := signed(t, req, h.APIKey)
		env.Post(t, "/payinsurance/unifiedorder", token, body)
		resp, out := env.Post(t, "/payinsurance/unifiedorder", token, body)
		protocolFail(t, resp, out, "nonce_str重复")
	})

	t.Run("token expired", func(t *testing.T) {
		env2 := testenv.New(t, testenv.Options{})
		h2 := env2.Hospital(t)
		tok := env2.Token(t, h2)
		env2.Clock.Advance(medpay.TokenTTL + time.Second)
		resp, out := env2.Post(t, "/payinsurance/queryorder", tok, signed(t, testenv.Msg("appid", h2.AppID, "mch_id", h2.MchID, "med_trans_id", "M1"), h2.APIKey))
		protocolFail(t, resp, out, "access_token无效或已过期")
	})
}

// TestSignatureVectors sends the signing test vectors (docs/api/README.md (signing)) over HTTP: a merchant
// holding the vector's key gets past the signature check with the vector's signature, and is
// refused when the zero-valued field is dropped.
func TestSignatureVectors(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	vectors := []struct {
		appid, mchID, key string
		fields            []string
		sign              string
	}{
		{"wxd930ea5d5a258f4f", "10000100", "192006250b4c09247ec02edce69f6a2d",
			[]string{"appid", "wxd930ea5d5a258f4f", "body", "test", "device_info", "1000", "mch_id", "10000100", "nonce_str", "ibuaiVcKdpRxkhJA"},
			"9A0A8659F005D6984697E2CA0A9CF3B7"},
		{"wx0000000000000001", "1900000001", "0123456789abcdef0123456789abcdef",
			[]string{"appid", "wx0000000000000001", "cash_fee", "0", "insurance_fee", "100", "mch_id", "1900000001",
				"nonce_str", "abc123", "order_type", "RegPay", "pay_type", "2", "total_fee", "100"},
			"7D35A2C671B93218EE0F2D78EA572909"},
	}
	for _, v := range vectors {
		s := secret.AppSecret()
		m := &medpay.Merchant{Kind: medpay.KindHospital, Name: "vector", AppID: v.appid, MchID: v.mchID,
			SecretHash: secret.Hash(s), APIKey: v.key, Cities: []string{"440300"}, Level: 3}
		if err := env.Store.CreateMerchant(ctx, m); err != nil {
			t.Fatal(err)
		}
		tok := env.Token(t, &testenv.Merchant{Merchant: m, Secret: s})
		req := testenv.Msg(v.fields...)
		req.Set("sign", v.sign)
		resp, body := env.Post(t, "/payinsurance/unifiedorder", tok, req.Bytes())
		// The signature is accepted: the answer is about the missing business fields (openid is
		// optional: without it the order is paid by 扫码付).
		want := "参数格式校验错误 order_type is needed"
		if req.Has("order_type") {
			want = "参数格式校验错误 hosp_out_trade_no is needed"
		}
		protocolFail(t, resp, body, want)

		if req.Get("cash_fee") == "0" {
			req.Del("cash_fee")
			req.Set("nonce_str", "abc124")
			resp, body = env.Post(t, "/payinsurance/unifiedorder", tok, req.Bytes())
			protocolFail(t, resp, body, "签名失败")
		}
	}
}

func TestHMACSignedRequestGetsHMACSignedAnswer(t *testing.T) {
	env, h, token := setup(t)
	req := testenv.OrderRequest(h, "o-hmac", "sign_type", wire.SignTypeHMACSHA256)
	resp := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, req)
	if resp.Get("result_code") != "SUCCESS" || resp.Get("sign_type") != wire.SignTypeHMACSHA256 {
		t.Fatalf("answer: %v", resp)
	}
	sum, _ := wire.Sign(resp, h.APIKey)
	if sum != resp.Get("sign") || len(sum) != 64 {
		t.Fatalf("answer not HMAC-SHA256 signed: %s", resp.Get("sign"))
	}
}

// bizFail asserts a signed result_code FAIL with err_code.
func bizFail(t *testing.T, m *wire.Message, code string) {
	t.Helper()
	if m.Get("return_code") != "SUCCESS" || m.Get("result_code") != "FAIL" || m.Get("err_code") != code {
		t.Fatalf("want result FAIL err_code %s, got return_code=%s return_msg=%s result_code=%s err_code=%s err_code_des=%s",
			code, m.Get("return_code"), m.Get("return_msg"), m.Get("result_code"), m.Get("err_code"), m.Get("err_code_des"))
	}
	if m.Get("err_code_des") == "" {
		t.Fatal("err_code_des empty")
	}
}

func ok(t *testing.T, m *wire.Message) {
	t.Helper()
	if m.Get("return_code") != "SUCCESS" || m.Get("result_code") != "SUCCESS" {
		t.Fatalf("want SUCCESS, got %s %s %s %s", m.Get("return_msg"), m.Get("result_code"), m.Get("err_code"), m.Get("err_code_des"))
	}
}

func TestUnifiedOrderCashOnly(t *testing.T) {
	env, h, token := setup(t)
	req := testenv.OrderRequest(h, "o-cash", "attach", "床位 12")
	resp := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, req)
	ok(t, resp)
	id := resp.Get("med_trans_id")
	if len(id) < 20 || resp.Get("pay_type") != "1" || resp.Get("cash_fee") != "10000" || resp.Get("insurance_fee") != "0" {
		t.Fatalf("answer %v", resp.Keys())
	}
	if want := env.URL + "/pay/" + id; resp.Get("pay_url") != want {
		t.Fatalf("pay_url = %q, want %q", resp.Get("pay_url"), want)
	}
	if resp.Get("pay_appid") != "wxpaytest" || resp.Get("code_url") != env.URL+"/pay/"+id+"/qr.png" {
		t.Fatalf("pay_appid/code_url: %q %q", resp.Get("pay_appid"), resp.Get("code_url"))
	}
	if resp.Get("appid") != h.AppID || resp.Get("mch_id") != h.MchID || resp.Get("nonce_str") == "" {
		t.Fatal("envelope does not echo identifiers")
	}

	// The retry with the same fields and a fresh nonce returns the same order.
	retry := req.Clone()
	retry.Del("sign")
	retry.Set("nonce_str", wire.Nonce())
	again := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, retry)
	ok(t, again)
	if again.Get("med_trans_id") != id || again.Get("pay_url") != resp.Get("pay_url") {
		t.Fatal("idempotent retry gave another order")
	}

	for _, path := range []string{"/payinsurance/queryorder", "/payinsurance/orderquery"} {
		q := env.Call(t, path, token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "hosp_out_trade_no", req.Get("hosp_out_trade_no")))
		ok(t, q)
		want := map[string]string{"med_trans_id": id, "med_trade_state": "NOTPAY", "cash_trade_status": "NOTPAY",
			"total_fee": "10000", "cash_fee": "10000", "insurance_fee": "0",
			"attach": "床位 12", "order_type": "DiagPay", "openid": "o-cash", "pay_type": "1", "serial_no": "S1"}
		for k, v := range want {
			if q.Get(k) != v {
				t.Errorf("%s %s = %q, want %q", path, k, q.Get(k), v)
			}
		}
		// No insurance part: the leg is left out, not reported with a value clients do not know.
		if q.Has("insurance_trade_status") {
			t.Errorf("%s insurance_trade_status = %q on a cash-only order", path, q.Get("insurance_trade_status"))
		}
	}
}

func TestOrderErrorCodes(t *testing.T) {
	env, h, token := setup(t)
	place := func(kv ...string) *wire.Message {
		return env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "o-err", kv...))
	}
	query := func(kv ...string) *wire.Message {
		return env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg(append([]string{"appid", h.AppID, "mch_id", h.MchID}, kv...)...))
	}
	closeOrder := func(kv ...string) *wire.Message {
		return env.Call(t, "/payinsurance/closeorder", token, h.APIKey, testenv.Msg(append([]string{"appid", h.AppID, "mch_id", h.MchID}, kv...)...))
	}

	t.Run("501 same number, other content", func(t *testing.T) {
		ok(t, place("hosp_out_trade_no", "T501"))
		bizFail(t, place("hosp_out_trade_no", "T501", "total_fee", "10001"), medpay.ErrDuplicateTradeNo)
	})
	t.Run("502 unknown order", func(t *testing.T) {
		bizFail(t, query("med_trans_id", "M2026000000000"), medpay.ErrOrderNotFound)
		bizFail(t, query("hosp_out_trade_no", "nope"), medpay.ErrOrderNotFound)
		bizFail(t, closeOrder("hosp_out_trade_no", "nope"), medpay.ErrOrderNotFound)
	})
	t.Run("503 already paid", func(t *testing.T) {
		r := place("hosp_out_trade_no", "T503")
		ok(t, r)
		if code, out := env.Confirm(t, r.Get("med_trans_id"), "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
			t.Fatalf("confirm: %d %v", code, out)
		}
		bizFail(t, place("hosp_out_trade_no", "T503"), medpay.ErrOrderPaid)
		bizFail(t, closeOrder("hosp_out_trade_no", "T503"), medpay.ErrOrderPaid)
	})
	t.Run("504 closed", func(t *testing.T) {
		ok(t, place("hosp_out_trade_no", "T504"))
		c := closeOrder("hosp_out_trade_no", "T504")
		ok(t, c)
		if c.Get("med_trade_state") != "CLOSED" {
			t.Fatalf("state %s", c.Get("med_trade_state"))
		}
		ok(t, closeOrder("hosp_out_trade_no", "T504")) // closing a closed order succeeds
		bizFail(t, place("hosp_out_trade_no", "T504"), medpay.ErrOrderClosed)
	})
	t.Run("510 city not enabled", func(t *testing.T) {
		bizFail(t, place("city_id", "510100"), medpay.ErrNoPermission)
	})
	t.Run("513 pay_type 3 without cash", func(t *testing.T) {
		bizFail(t, place("pay_type", "3", "cash_fee", "0", "insurance_fee", "10000"), medpay.ErrCashFeeZero)
	})
	t.Run("514 inconsistent amounts", func(t *testing.T) {
		bizFail(t, place("pay_type", "1", "insurance_fee", "100", "cash_fee", "9900"), medpay.ErrAmountInconsistent)
		bizFail(t, place("pay_type", "2", "insurance_fee", "9000", "cash_fee", "1000"), medpay.ErrAmountInconsistent)
		bizFail(t, place("pay_type", "1", "cash_fee", "10001"), medpay.ErrAmountInconsistent)
		bizFail(t, place("pay_type", "3", "cash_fee", "6000", "insurance_fee", "6000"), medpay.ErrAmountInconsistent)
	})
	t.Run("city_id required with several cities", func(t *testing.T) {
		h2 := env.Hospital(t, "440100")
		tok2 := env.Token(t, h2)
		resp, body := env.Post(t, "/payinsurance/unifiedorder", tok2, signed(t, testenv.OrderRequest(h2, "o", "city_id", ""), h2.APIKey))
		protocolFail(t, resp, body, "参数格式校验错误 city_id is needed")
	})
}

func TestOrderExpiry(t *testing.T) {
	env, h, token := setup(t)
	req := testenv.OrderRequest(h, "o-exp")
	ok(t, env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, req))
	env.Clock.Advance(medpay.DefaultExpiry + time.Second)
	token = env.Token(t, h) // the first one expired with the order
	q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "hosp_out_trade_no", req.Get("hosp_out_trade_no")))
	ok(t, q)
	if q.Get("med_trade_state") != "CLOSED" {
		t.Fatalf("expired order state %s", q.Get("med_trade_state"))
	}
	retry := req.Clone()
	retry.Del("sign")
	retry.Set("nonce_str", wire.Nonce())
	bizFail(t, env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, retry), medpay.ErrOrderClosed)

	// time_expire beyond two hours is refused.
	later := wire.FormatTime(env.Clock.Now().Add(3 * time.Hour))
	resp, body := env.Post(t, "/payinsurance/unifiedorder", token, signed(t, testenv.OrderRequest(h, "o", "time_expire", later), h.APIKey))
	protocolFail(t, resp, body, "参数格式校验错误 time_expire is invalid")
}

func TestCloseWhilePaying(t *testing.T) {
	env, h, token := setup(t)
	req := testenv.OrderRequest(h, "o-505")
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, req)
	ok(t, r)
	o, err := env.Store.OrderByID(context.Background(), r.Get("med_trans_id"))
	if err != nil {
		t.Fatal(err)
	}
	o.State = medpay.StateUserPaying // as while the payer is confirming
	if err := env.Store.UpdateOrder(context.Background(), o, sqlstoreChange()); err != nil {
		t.Fatal(err)
	}
	bizFail(t, env.Call(t, "/payinsurance/closeorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", o.MedTransID)), medpay.ErrOrderPaying)
}
