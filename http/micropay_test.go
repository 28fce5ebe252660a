package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	medpayhttp "github.com/medpay/medpay/http"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/wire"
)

// payCode issues a payment code through the sandbox API.
func payCode(t *testing.T, env *testenv.Env, appid, openid string) string {
	t.Helper()
	resp, err := env.Client.Post(env.URL+"/sandbox/paycode", "application/json",
		strings.NewReader(`{"appid":"`+appid+`","openid":"`+openid+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AuthCode  string `json:"auth_code"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("paycode: %d %v", resp.StatusCode, err)
	}
	if !regexp.MustCompile(`^[0-9]{18}$`).MatchString(out.AuthCode) || out.ExpiresIn != 60 {
		t.Fatalf("paycode answer %+v: want 18 digits valid 60 s", out)
	}
	return out.AuthCode
}

// micropayRequest is a valid micropay body: unifiedorder's fields without notify_url (and,
// unless kv gives it, without openid: the code names the payer), plus auth_code.
func micropayRequest(h *testenv.Merchant, authCode string, kv ...string) *wire.Message {
	return testenv.OrderRequest(h, "", append([]string{"openid", "", "notify_url", "", "auth_code", authCode}, kv...)...)
}

func micropay(t *testing.T, env *testenv.Env, h *testenv.Merchant, token string, req *wire.Message) *wire.Message {
	t.Helper()
	return env.Call(t, "/payinsurance/micropay", token, h.APIKey, req)
}

// noNotifications asserts that nothing was queued for a micropay order (it has no notify_url).
func noNotifications(t *testing.T, env *testenv.Env, medTransID string) {
	t.Helper()
	o, err := env.Store.OrderByID(context.Background(), medTransID)
	if err != nil {
		t.Fatal(err)
	}
	if got := outboxStates(t, env, o.ID); len(got) != 0 {
		t.Fatalf("micropay order %s queued notifications %v", medTransID, got)
	}
}

func TestMicropayWithinLimit(t *testing.T) {
	env, h, token := setup(t)
	p := env.Bind(t, h, "mp-1", "440300", bureau.ScenarioEmployee)
	payer := h.AppID + "/mp-1"
	code := payCode(t, env, h.AppID, "mp-1")
	req := micropayRequest(h, code, "pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500",
		"request_content", workedBill, "attach", "窗口 3")
	r := micropay(t, env, h, token, req)
	ok(t, r)
	id := r.Get("med_trans_id")
	// Settled synchronously; the answer carries the query fields (docs/api/orders.md (queryorder)).
	want := map[string]string{"med_trade_state": "SUCCESS", "insurance_trade_status": "PAYED",
		"openid": "mp-1", "pay_type": "2", "insurance_fee": "6500", "cash_fee": "0", "total_fee": "6500",
		"attach": "窗口 3", "hosp_out_trade_no": req.Get("hosp_out_trade_no"), "medical_card_id": p.CardNo}
	for k, v := range want {
		if r.Get(k) != v {
			t.Errorf("micropay %s = %q, want %q", k, r.Get(k), v)
		}
	}
	for _, k := range []string{"time_end", "insurance_order_id", "response_content", "trade_status_desc"} {
		if r.Get(k) == "" {
			t.Errorf("micropay answer lacks %s", k)
		}
	}
	if r.Has("cash_trade_status") {
		t.Errorf("an order without a cash part reports cash_trade_status %q", r.Get("cash_trade_status"))
	}
	if r.Has("pay_url") || r.Has("auth_code") {
		t.Error("a paid micropay answer carries pay_url or auth_code")
	}
	o := checkBooks(t, env, id, &p, payer)
	if o.HifpPay != 3207 || o.AcctPay != 3293 || o.NotifyURL != "" || o.Fields["auth_code"] != "" {
		t.Fatalf("order hifp %d acct %d notify_url %q auth_code stored %q", o.HifpPay, o.AcctPay, o.NotifyURL, o.Fields["auth_code"])
	}
	noNotifications(t, env, id)
	q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id))
	ok(t, q)
	if q.Get("med_trade_state") != "SUCCESS" || q.Get("time_end") != r.Get("time_end") {
		t.Fatalf("queryorder after micropay: %s", q.Get("med_trade_state"))
	}

	// A retry (same number and fields, fresh nonce) answers the same order; nothing moves twice.
	retry := req.Clone()
	retry.Del("sign")
	retry.Del("nonce_str")
	again := micropay(t, env, h, token, retry)
	ok(t, again)
	if again.Get("med_trans_id") != id || again.Get("med_trade_state") != "SUCCESS" {
		t.Fatalf("retry: %s %s", again.Get("med_trans_id"), again.Get("med_trade_state"))
	}
	checkBooks(t, env, id, &p, payer)
	// The same number with other content is 501; the code itself is spent (517).
	bizFail(t, micropay(t, env, h, token, micropayRequest(h, code, "hosp_out_trade_no", req.Get("hosp_out_trade_no"), "total_fee", "10001")), medpay.ErrDuplicateTradeNo)
	bizFail(t, micropay(t, env, h, token, micropayRequest(h, code)), medpay.ErrAuthCode)
}

// TestMicropayCashOnly: a payer without a card scans for a cash order; no channel charges on the
// platform's word, so the order waits (USERPAYING) for the payer to pay in the channel's cashier
// from the pay page, then the hospital's query sees it paid.
func TestMicropayCashOnly(t *testing.T) {
	env, h, token := setup(t)
	r := micropay(t, env, h, token, micropayRequest(h, payCode(t, env, h.AppID, "cash-1"), "openid", "cash-1"))
	ok(t, r)
	id := r.Get("med_trans_id")
	if r.Get("med_trade_state") != "USERPAYING" || r.Get("cash_trade_status") != "NOTPAY" || r.Get("pay_url") != env.URL+"/pay/"+id {
		t.Fatalf("cash micropay: %s %s %q", r.Get("med_trade_state"), r.Get("cash_trade_status"), r.Get("pay_url"))
	}
	checkBooks(t, env, id, nil, h.AppID+"/cash-1") // nothing moved yet
	if code, out := env.Confirm(t, id, "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("the payer pays the cash: %d %v", code, out)
	}
	q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id))
	ok(t, q)
	if q.Get("med_trade_state") != "SUCCESS" || q.Get("cash_trade_status") != "SUCCESS" || q.Get("cash_order_id") == "" {
		t.Fatalf("cash micropay after paying: %s %s", q.Get("med_trade_state"), q.Get("cash_trade_status"))
	}
	checkBooks(t, env, id, nil, h.AppID+"/cash-1")
	noNotifications(t, env, id)
}

func TestMicropayAboveLimit(t *testing.T) {
	env, h, token := setup(t)
	p := env.Bind(t, h, "big-1", "440300", bureau.ScenarioAcctEmpty)
	payer := h.AppID + "/big-1"
	// 1 500 元, cash only: above the default limit of 1 000 元.
	place := func(kv ...string) *wire.Message {
		r := micropay(t, env, h, token, micropayRequest(h, payCode(t, env, h.AppID, "big-1"),
			append([]string{"total_fee", "150000", "cash_fee", "150000"}, kv...)...))
		ok(t, r)
		if r.Get("med_trade_state") != "USERPAYING" || r.Get("cash_trade_status") != "NOTPAY" {
			t.Fatalf("above the limit: %s %s, want USERPAYING waiting", r.Get("med_trade_state"), r.Get("cash_trade_status"))
		}
		if r.Get("pay_url") != env.URL+"/pay/"+r.Get("med_trans_id") {
			t.Fatalf("pay_url %q", r.Get("pay_url"))
		}
		return r
	}
	query := func(id string) *wire.Message {
		q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id))
		ok(t, q)
		return q
	}

	// Confirmed through the sandbox API (the payment page's code path).
	r := place()
	id := r.Get("med_trans_id")
	if q := query(id); q.Get("med_trade_state") != "USERPAYING" {
		t.Fatalf("queryorder while waiting: %s", q.Get("med_trade_state"))
	}
	checkBooks(t, env, id, &p, payer) // nothing moved yet
	if code, out := env.Confirm(t, id, "000000"); code != http.StatusForbidden {
		t.Fatalf("wrong PIN: %d %v", code, out)
	}
	if code, out := env.Confirm(t, id, "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	if q := query(id); q.Get("med_trade_state") != "SUCCESS" || q.Get("cash_fee") != "150000" {
		t.Fatalf("queryorder after confirming: %s", q.Get("med_trade_state"))
	}
	checkBooks(t, env, id, &p, payer)
	noNotifications(t, env, id)

	// Confirmed on the payment page.
	r = place("pay_type", "3", "total_fee", "200000", "cash_fee", "100000", "insurance_fee", "100000", "allow_fee_change", "1")
	id = r.Get("med_trans_id")
	if r.Get("insurance_trade_status") != "NOTPAY" {
		t.Fatalf("insurance leg while waiting: %s", r.Get("insurance_trade_status"))
	}
	wantPage(t, browse(t, env, r.Get("pay_url"), nil), http.StatusOK, `id="confirm"`)
	wantPage(t, browse(t, env, r.Get("pay_url"), url.Values{"pin": {"123456"}}), http.StatusOK, "支付成功")
	if q := query(id); q.Get("med_trade_state") != "SUCCESS" || q.Get("insurance_trade_status") != "PAYED" {
		t.Fatalf("after the page: %s %s", q.Get("med_trade_state"), q.Get("insurance_trade_status"))
	}
	checkBooks(t, env, id, &p, payer)
	noNotifications(t, env, id)

	// A waiting order can be closed by the hospital (nothing has moved) and expires like any.
	r = place()
	c := env.Call(t, "/payinsurance/closeorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", r.Get("med_trans_id")))
	ok(t, c)
	if c.Get("med_trade_state") != "CLOSED" {
		t.Fatalf("close a waiting micropay: %s", c.Get("med_trade_state"))
	}
	if code, out := env.Confirm(t, r.Get("med_trans_id"), "123456"); code == 200 && out["med_trade_state"] == "SUCCESS" {
		t.Fatal("a closed micropay was paid")
	}
	r = place("time_expire", wire.FormatTime(env.Clock.Now().Add(10*time.Minute)))
	env.Clock.Advance(10 * time.Minute)
	if q := query(r.Get("med_trans_id")); q.Get("med_trade_state") != "CLOSED" {
		t.Fatalf("an expired waiting micropay: %s", q.Get("med_trade_state"))
	}
	checkBooks(t, env, r.Get("med_trans_id"), &p, payer)
}

// TestMicropayLimitConfig: the no-PIN limit is the server's setting, inclusive.
func TestMicropayLimitConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		limit int64
		fee   string
		want  string
	}{
		{5000, "5000", "SUCCESS"}, {5000, "5001", "USERPAYING"}, {-1, "1", "USERPAYING"}, {0, "100000", "SUCCESS"}, {0, "100001", "USERPAYING"},
	} {
		env := testenv.New(t, testenv.Options{Config: testMicropayConfig(tc.limit)})
		h := env.Hospital(t)
		token := env.Token(t, h)
		// Insurance only: a cash part always waits for the payer's cashier.
		env.Bind(t, h, "lim", "440300", bureau.ScenarioRetiree)
		r := micropay(t, env, h, token, micropayRequest(h, payCode(t, env, h.AppID, "lim"), insuranceOnly(tc.fee)...))
		ok(t, r)
		if r.Get("med_trade_state") != tc.want {
			t.Errorf("limit %d, %s fen: %s, want %s", tc.limit, tc.fee, r.Get("med_trade_state"), tc.want)
		}
	}
}

func TestMicropayAuthCodeErrors(t *testing.T) {
	env, h, token := setup(t)
	env.Bind(t, h, "ac-1", "440300", bureau.ScenarioEmployee)
	try := func(code string, kv ...string) *wire.Message {
		return micropay(t, env, h, token, micropayRequest(h, code, kv...))
	}

	bizFail(t, try("280000000000000000"), medpay.ErrAuthCode) // never issued
	bizFail(t, try("not-a-code"), medpay.ErrAuthCode)         // malformed
	resp, body := env.Post(t, "/payinsurance/micropay", token, signed(t, micropayRequest(h, ""), h.APIKey))
	protocolFail(t, resp, body, "参数格式校验错误 auth_code is needed")

	// Expired: valid 60 seconds.
	code := payCode(t, env, h.AppID, "ac-1")
	env.Clock.Advance(payment.PayCodeTTL)
	r := try(code)
	bizFail(t, r, medpay.ErrAuthCode)
	if !strings.Contains(r.Get("err_code_des"), "expired") {
		t.Errorf("expired code: %q", r.Get("err_code_des"))
	}

	// The wrong payer, or another hospital's payer, is refused without spending the code.
	code = payCode(t, env, h.AppID, "ac-1")
	bizFail(t, try(code, "openid", "someone-else"), medpay.ErrAuthCode)
	other := env.Hospital(t)
	otherToken := env.Token(t, other)
	bizFail(t, micropay(t, env, other, otherToken, micropayRequest(other, code)), medpay.ErrAuthCode)
	first := try(code, append(insuranceOnly("10000"), "openid", "ac-1")...) // the payer's own openid is accepted
	ok(t, first)
	if first.Get("med_trade_state") != "SUCCESS" {
		t.Fatalf("first use: %s", first.Get("med_trade_state"))
	}
	// Reused.
	r = try(code)
	bizFail(t, r, medpay.ErrAuthCode)
	if !strings.Contains(r.Get("err_code_des"), "used") {
		t.Errorf("reused code: %q", r.Get("err_code_des"))
	}

	// A placement failure gives the code back: no order came of it.
	code = payCode(t, env, h.AppID, "ac-2")
	bizFail(t, try(code, "pay_type", "2", "cash_fee", "0", "insurance_fee", "10000"), medpay.ErrNoCard)
	env.Bind(t, h, "ac-2", "440300", bureau.ScenarioEmployee)
	ok(t, try(code, "pay_type", "2", "cash_fee", "0", "insurance_fee", "10000"))
}

// TestMicropayScenarios runs micropay over the bureau's and the cash channel's scenarios.
func TestMicropayScenarios(t *testing.T) {
	t.Parallel()
	mixed := []string{"pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500", "allow_fee_change", "1",
		"request_content", `{"acct_used":false,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`}
	for _, tc := range []struct {
		scenario  string
		kv        []string
		wantPlace string
		wantState medpay.TradeState
	}{
		// Each order has a cash part, so it waits for the payer, who pays it in the channel's
		// cashier (the sandbox confirmation); a declined wallet leaves it unpaid until it expires.
		{scenario: bureau.ScenarioEmployee, kv: mixed, wantState: medpay.StateSuccess},
		{scenario: bureau.ScenarioCashDeclined, kv: mixed, wantState: medpay.StateClosed},
		{scenario: bureau.ScenarioCashDeclined, kv: []string{"total_fee", "3000", "cash_fee", "3000"}, wantState: medpay.StateClosed},
		{scenario: bureau.ScenarioSettleLost, kv: mixed, wantState: medpay.StateSuccess},
		{scenario: bureau.ScenarioBureauTimeout, kv: mixed, wantState: medpay.StatePayError},
		{scenario: bureau.ScenarioSuspended, kv: mixed, wantPlace: medpay.ErrBureauRejected},
	} {
		name := tc.scenario + "/" + string(tc.wantState) + tc.wantPlace
		if len(tc.kv) == 4 {
			name += "/cash-only" // distinct test names: each gets a database of its own
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{})
			h := env.Hospital(t)
			token := env.Token(t, h)
			p := env.Bind(t, h, "sc", "440300", tc.scenario)
			r := micropay(t, env, h, token, micropayRequest(h, payCode(t, env, h.AppID, "sc"), tc.kv...))
			if tc.wantPlace != "" {
				bizFail(t, r, tc.wantPlace)
				return
			}
			ok(t, r)
			id := r.Get("med_trans_id")
			if r.Get("med_trade_state") != "USERPAYING" {
				t.Fatalf("state %s (%s), want USERPAYING: waiting for the payer", r.Get("med_trade_state"), r.Get("trade_status_desc"))
			}
			code, out := env.Confirm(t, id, "123456")
			if tc.wantState == medpay.StateClosed {
				if code != http.StatusPaymentRequired {
					t.Fatalf("a declined payer: %d %v", code, out)
				}
				env.Clock.Advance(medpay.DefaultExpiry + time.Minute)
				token = env.Token(t, h) // the old one expired meanwhile
			}
			q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id))
			ok(t, q)
			if q.Get("med_trade_state") != string(tc.wantState) {
				t.Fatalf("state %s (%s), want %s", q.Get("med_trade_state"), q.Get("trade_status_desc"), tc.wantState)
			}
			o := checkBooks(t, env, id, &p, h.AppID+"/sc")
			if o.Step != medpay.StepDone {
				t.Errorf("step %q, want done", o.Step)
			}
			noNotifications(t, env, o.MedTransID)
		})
	}
}

// TestPayCodePage: the payer's code page shows a PNG QR and the 18 digits of a fresh code.
func TestPayCodePage(t *testing.T) {
	env, h, token := setup(t)
	env.Bind(t, h, "page-1", "440300", bureau.ScenarioEmployee)
	pg := browse(t, env, "/me/code?"+url.Values{"appid": {h.AppID}, "openid": {"page-1"}}.Encode(), nil)
	wantPage(t, pg, http.StatusOK, `src="data:image/png;base64,`, "60 秒内有效", "医保付款码")
	m := regexp.MustCompile(`id="auth-code"[^>]*>([0-9 ]+)<`).FindStringSubmatch(pg.body)
	if m == nil {
		t.Fatalf("no code on the page:\n%s", pg.body)
	}
	code := strings.ReplaceAll(m[1], " ", "")
	if len(code) != 18 {
		t.Fatalf("code %q is not 18 digits", code)
	}
	r := micropay(t, env, h, token, micropayRequest(h, code, insuranceOnly("10000")...))
	ok(t, r)
	if r.Get("openid") != "page-1" || r.Get("med_trade_state") != "SUCCESS" {
		t.Fatalf("micropay with the page's code: %s %s", r.Get("openid"), r.Get("med_trade_state"))
	}
	wantPage(t, browse(t, env, "/me/code?appid="+h.AppID, nil), http.StatusBadRequest)
	wantPage(t, browse(t, env, "/me/code?appid=wxnone&openid=x", nil), http.StatusNotFound)
	if resp, _ := env.Post(t, "/sandbox/paycode", "", []byte(`{"appid":"wxnone","openid":"x"}`)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("paycode for an unknown appid: %d", resp.StatusCode)
	}
}

func testMicropayConfig(limit int64) medpayhttp.Config {
	return medpayhttp.Config{MicropayNoPINLimit: limit}
}

// TestMicropayProviderMode: the code is issued under the hospital's appid; a service provider's
// call names the payer by sub_openid, or not at all.
func TestMicropayProviderMode(t *testing.T) {
	env, prov, h, token := actingProvider(t)
	p := env.Bind(t, h, "sub-mp", "440300", bureau.ScenarioEmployee)
	req := func(code string, kv ...string) *wire.Message {
		r := micropayRequest(h, code, append([]string{"appid", prov.AppID, "mch_id", prov.MchID,
			"sub_appid", h.AppID, "sub_mch_id", h.MchID}, kv...)...)
		return env.Call(t, "/payinsurance/micropay", token, prov.APIKey, r)
	}
	bizFail(t, req(payCode(t, env, h.AppID, "sub-mp"), "sub_openid", "another"), medpay.ErrAuthCode)
	bizFail(t, req(payCode(t, env, prov.AppID, "sub-mp")), medpay.ErrAuthCode) // issued under the provider's appid
	r := req(payCode(t, env, h.AppID, "sub-mp"), "pay_type", "2", "cash_fee", "0", "insurance_fee", "10000")
	ok(t, r)
	if r.Get("sub_openid") != "sub-mp" || r.Get("openid") != "" || r.Get("med_trade_state") != "SUCCESS" || r.Get("sub_mch_id") != h.MchID {
		t.Fatalf("provider micropay: sub_openid %q openid %q state %s", r.Get("sub_openid"), r.Get("openid"), r.Get("med_trade_state"))
	}
	checkBooks(t, env, r.Get("med_trans_id"), &p, h.AppID+"/sub-mp")
	noNotifications(t, env, r.Get("med_trans_id"))
}

// insuranceOnly are the fields of an order of fee fen the bureau pays whole for an employee or a
// retiree (a micropay settled at once).
func insuranceOnly(fee string) []string {
	return []string{"pay_type", "2", "total_fee", fee, "cash_fee", "0", "insurance_fee", fee, "allow_fee_change", "1"}
}
