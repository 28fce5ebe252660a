package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medpay/medpay"
	medpayhttp "github.com/medpay/medpay/http"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// TestAmountsCannotOverflow: cash_fee = insurance_fee = 2^62 wrapped around int64 and passed the
// "legs exceed the total" check; amounts above medpay.MaxFee are now invalid at the edge.
func TestAmountsCannotOverflow(t *testing.T) {
	env, h, token := setup(t)
	big := strconv.FormatInt(1<<62, 10)
	for _, c := range []struct {
		kv    []string
		field string
	}{
		{[]string{"pay_type", "3", "total_fee", "10000", "cash_fee", big, "insurance_fee", big}, "cash_fee"},
		{[]string{"pay_type", "3", "total_fee", big, "cash_fee", big, "insurance_fee", big}, "total_fee"},
		{[]string{"pay_type", "1", "total_fee", itoa(medpay.MaxFee + 1), "cash_fee", itoa(medpay.MaxFee + 1), "insurance_fee", "0"}, "total_fee"},
		{[]string{"cash_add_fee", big}, "cash_add_fee"},
	} {
		req := testenv.OrderRequest(h, "o-big", c.kv...)
		resp, body := env.Post(t, "/payinsurance/unifiedorder", token, signed(t, req, h.APIKey))
		protocolFail(t, resp, body, "参数格式校验错误 "+c.field+" is invalid")
	}
	// MaxFee itself is accepted.
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "o-max",
		"total_fee", itoa(medpay.MaxFee), "cash_fee", itoa(medpay.MaxFee)))
	ok(t, r)
	if r.Get("cash_fee") != itoa(medpay.MaxFee) {
		t.Fatalf("cash_fee %s", r.Get("cash_fee"))
	}
	// A refund amount is bounded the same way.
	req := testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", r.Get("med_trans_id"),
		"hosp_out_refund_no", "R-big", "part_refund_type", "CASH_ONLY", "cash_refund_fee", big)
	resp, body := env.Post(t, "/payinsurance/refund", token, signed(t, req, h.APIKey))
	protocolFail(t, resp, body, "参数格式校验错误 cash_refund_fee is invalid")
}

// TestGetCallbackIP: real clients call /cgi-bin/getcallbackip to check a cached token.
func TestGetCallbackIP(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Config: medpayhttp.Config{CallbackIPs: []string{"203.0.113.7", "2001:db8::7"}}})
	h := env.Hospital(t)
	token := env.Token(t, h)
	get := func(q string) map[string]any {
		t.Helper()
		resp, err := env.Client.Get(env.URL + "/cgi-bin/getcallbackip" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s", q, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := get("?access_token=" + url.QueryEscape(token))
	if fmt.Sprint(out["ip_list"]) != "[203.0.113.7 2001:db8::7]" || out["errcode"] != nil {
		t.Fatalf("valid token: %v", out)
	}
	if out := get(""); out["errcode"] != float64(41001) {
		t.Fatalf("no token: %v", out)
	}
	if out := get("?access_token=nope"); out["errcode"] != float64(40001) || out["ip_list"] != nil {
		t.Fatalf("unknown token: %v", out)
	}
	env.Clock.Advance(medpay.TokenTTL + time.Second)
	if out := get("?access_token=" + url.QueryEscape(token)); out["errcode"] != float64(40001) {
		t.Fatalf("expired token: %v", out)
	}
}

// TestRealClientFields: the fields real hospital clients read (docs/api/orders.md, refunds.md, cards.md):
// the card number in full, cash_refund_stauts beside cash_refund_status, and no leg status for a
// leg the order or refund does not have.
func TestRealClientFields(t *testing.T) {
	env, h, token := setup(t)
	id, p := paidOrder(t, env, h, token, "rc-1", "employee")
	q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id))
	ok(t, q)
	if q.Get("medical_card_id") != p.CardNo || q.Get("cash_trade_status") != "SUCCESS" || q.Get("insurance_trade_status") != "PAYED" {
		t.Fatalf("query: card %q cash %q insurance %q", q.Get("medical_card_id"), q.Get("cash_trade_status"), q.Get("insurance_trade_status"))
	}
	info := env.Call(t, "/payinsurance/getmedinfo", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", "rc-1"))
	ok(t, info)
	if info.Get("medical_card_no") != p.CardNo {
		t.Fatalf("getmedinfo medical_card_no %q, want the card number in full", info.Get("medical_card_no"))
	}

	// A cash-only refund: both spellings of the cash status, no insurance status.
	r := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "RC1", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "100"))
	ok(t, r)
	for _, m := range []*wire.Message{r, env.Call(t, "/payinsurance/queryrefund", token, h.APIKey,
		testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "hosp_out_refund_no", "RC1"))} {
		ok(t, m)
		if m.Get("cash_refund_status") != "SUCCESS" || m.Get("cash_refund_stauts") != "SUCCESS" || m.Has("insurance_refund_status") {
			t.Errorf("cash-only refund: cash_refund_status %q cash_refund_stauts %q insurance_refund_status %q",
				m.Get("cash_refund_status"), m.Get("cash_refund_stauts"), m.Get("insurance_refund_status"))
		}
	}
	// An insurance-only refund: no cash status under either name.
	r = env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "RC2", "part_refund_type", "INSURANCE_ONLY"))
	ok(t, r)
	if r.Get("insurance_refund_status") != "SUCCESS" || r.Has("cash_refund_status") || r.Has("cash_refund_stauts") {
		t.Errorf("insurance-only refund: %q %q %q", r.Get("insurance_refund_status"), r.Get("cash_refund_status"), r.Get("cash_refund_stauts"))
	}
	// No NOPAY or NOREFUND anywhere on the wire, notifications included.
	for _, m := range []*wire.Message{q, r} {
		for _, k := range m.Keys() {
			if v := m.Get(k); v == "NOPAY" || v == "NOREFUND" {
				t.Errorf("%s = %s", k, v)
			}
		}
	}
	rows, err := env.DB.SQL().Query(`SELECT body FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		rows.Scan(&body)
		if strings.Contains(body, "NOPAY") || strings.Contains(body, "NOREFUND") {
			t.Errorf("notification carries an undocumented state: %s", body)
		}
	}
}

// TestRefundNotifiesItsOwnURL: a REFUND notification goes only to the refund request's
// notify_url; real handlers take whatever arrives at the payment's URL for a payment.
func TestRefundNotifiesItsOwnURL(t *testing.T) {
	env, h, token := setup(t)
	id, _ := paidOrder(t, env, h, token, "rn-1", "employee")
	urls := func(kind string) []string {
		t.Helper()
		rows, err := env.DB.SQL().Query(`SELECT url FROM outbox WHERE kind = $1 ORDER BY id`, kind)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var u string
			rows.Scan(&u)
			out = append(out, u)
		}
		return out
	}
	payURL := testenv.OrderRequest(h, "x").Get("notify_url")
	if got := urls("PAY"); len(got) != 1 || got[0] != payURL {
		t.Fatalf("PAY notifications to %v", got)
	}
	// Without notify_url no REFUND notification is sent at all.
	ok(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "RN1", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "100")))
	if got := urls("REFUND"); len(got) != 0 {
		t.Fatalf("a refund without notify_url notified %v", got)
	}
	// With one, only there.
	ok(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "RN2", "part_refund_type", "CASH_ONLY",
		"cash_refund_fee", "100", "notify_url", "http://127.0.0.1:1/refund-notify")))
	if got := urls("REFUND"); len(got) != 1 || got[0] != "http://127.0.0.1:1/refund-notify" {
		t.Fatalf("REFUND notifications to %v", got)
	}
	resp, body := env.Post(t, "/payinsurance/refund", token, signed(t, refundReq(h, id, "RN3", "notify_url", "ftp://127.0.0.1/x"), h.APIKey))
	protocolFail(t, resp, body, "参数格式校验错误 notify_url is invalid")
}

// TestIndependentHospitalCannotNameAnother: sub_mch_id and sub_openid are for a service provider
// acting for a hospital that authorised it. From an independent hospital they booked its
// receipts to the hospital named.
func TestIndependentHospitalCannotNameAnother(t *testing.T) {
	env, a, token := setup(t)
	b := env.Hospital(t)
	env.Bind(t, a, "ind-1", "440300", "employee")
	for _, kv := range [][]string{{"sub_mch_id", b.MchID}, {"sub_openid", "ind-1"}, {"sub_mch_id", b.MchID, "sub_openid", "ind-1"}} {
		r := env.Call(t, "/payinsurance/unifiedorder", token, a.APIKey, testenv.OrderRequest(a, "ind-1", kv...))
		bizFail(t, r, medpay.ErrNoPermission)
	}
	// The same order without them is booked to the hospital itself.
	r := env.Call(t, "/payinsurance/unifiedorder", token, a.APIKey, testenv.OrderRequest(a, "ind-1"))
	ok(t, r)
	if code, out := env.Confirm(t, r.Get("med_trans_id"), "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	ctx := context.Background()
	if got, _ := env.Store.Balance(ctx, medpay.HospitalAccount(b.MchID)); got != 0 {
		t.Fatalf("the other hospital received %d", got)
	}
	if got, _ := env.Store.Balance(ctx, medpay.HospitalAccount(a.MchID)); got != 10000 {
		t.Fatalf("the hospital received %d, want 10000", got)
	}
}

// TestRefundIPBehindProxy: behind a trusted proxy, the refund allow-list judges the first
// untrusted hop from the right of every X-Forwarded-For line. Reading only the first line let a
// caller put an allowed address there itself.
func TestRefundIPBehindProxy(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Config: medpayhttp.Config{TrustedProxies: []string{"127.0.0.1", "::1"}}})
	h := env.Hospital(t)
	token := env.Token(t, h)
	id, _ := paidOrder(t, env, h, token, "xff-1", "employee")
	// The hospital's refund desk sits behind the proxy at 198.51.100.20.
	if _, err := env.DB.SQL().Exec(`UPDATE merchants SET refund_ips = '198.51.100.20' WHERE id = $1`, h.ID); err != nil {
		t.Fatal(err)
	}
	env.Store.ForgetMerchant(h.ID) // changed behind the Store's back
	refund := func(no string, xff ...string) *wire.Message {
		t.Helper()
		req := refundReq(h, id, no, "part_refund_type", "CASH_ONLY", "cash_refund_fee", "100")
		hreq, err := http.NewRequest("POST", env.URL+"/payinsurance/refund?access_token="+url.QueryEscape(token), bytes.NewReader(signed(t, req, h.APIKey)))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range xff {
			hreq.Header.Add("X-Forwarded-For", line)
		}
		resp, err := env.Client.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		m, err := wire.Decode(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// The caller wrote the desk's address itself; the proxy added the real one on its own line.
	bizFail(t, refund("X1", "198.51.100.20", "203.0.113.9"), medpay.ErrRefundIP)
	bizFail(t, refund("X2", "198.51.100.20, 203.0.113.9"), medpay.ErrRefundIP)
	bizFail(t, refund("X3", "198.51.100.20", "203.0.113.9, 127.0.0.1"), medpay.ErrRefundIP)
	bizFail(t, refund("X4"), medpay.ErrRefundIP) // the proxy itself is not the desk
	// The desk behind one or two trusted hops, with whatever it wrote itself further left.
	ok(t, refund("X5", "198.51.100.20"))
	ok(t, refund("X6", "203.0.113.9, 198.51.100.20", "127.0.0.1"))
}

// TestReplayRefusedWhileTokenLives: a captured request replayed later with its own token, still
// valid, is refused; the nonce was remembered for only 10 minutes of the token's 2 hours.
func TestReplayRefusedWhileTokenLives(t *testing.T) {
	env, h, token := setup(t)
	body := signed(t, testenv.OrderRequest(h, "replay-1"), h.APIKey)
	_, data := env.Post(t, "/payinsurance/unifiedorder", token, body)
	if m, err := wire.Decode(bytes.NewReader(data)); err != nil || m.Get("return_code") != "SUCCESS" {
		t.Fatalf("first call: %v %s", err, data)
	}
	start := env.Clock.Now()
	for _, later := range []time.Duration{time.Minute, 11 * time.Minute, time.Hour, medpay.TokenTTL - 2*time.Minute} {
		env.Clock.Advance(start.Add(later).Sub(env.Clock.Now()))
		resp2, data := env.Post(t, "/payinsurance/unifiedorder", token, body)
		protocolFail(t, resp2, data, "nonce_str重复")
	}
	// Once the token has expired the replay fails on the token.
	env.Clock.Advance(3 * time.Minute)
	resp2, data := env.Post(t, "/payinsurance/unifiedorder", token, body)
	protocolFail(t, resp2, data, "access_token无效或已过期")
}

// countingCash counts the PINs the cash channel's sandbox is asked to check.
type countingCash struct {
	pay     func(ctx context.Context, prepayID, pin string) (*medpay.CashPayment, error)
	checked atomic.Int32
}

func (c *countingCash) SandboxPay(ctx context.Context, prepayID, pin string) (*medpay.CashPayment, error) {
	c.checked.Add(1)
	return c.pay(ctx, prepayID, pin)
}

// TestPINLockoutConcurrent: wrong PINs sent at once cannot have more PINs checked than the limits
// allow, and a stranger holding one pay_url cannot lock the payer out of the other orders.
func TestPINLockoutConcurrent(t *testing.T) {
	env, h, token := setup(t)
	cash := &countingCash{pay: env.Pay.SandboxPay}
	env.Pay.SandboxPay = cash.SandboxPay
	place := func(openid string) string {
		r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, openid))
		ok(t, r)
		return r.Get("med_trans_id")
	}
	storm := func(ids []string, each int) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, id := range ids {
			for i := 0; i < each; i++ {
				wg.Go(func() {
					<-start
					if code, out := env.Confirm(t, id, "000000"); code != 403 {
						t.Errorf("wrong PIN: %d %v", code, out)
					}
				})
			}
		}
		close(start)
		wg.Wait()
	}

	// One order, many wrong PINs at once: the order's limit holds.
	a := place("pin-a")
	storm([]string{a}, 24)
	if n := cash.checked.Load(); n != sqlstore.MaxOrderPINFailures {
		t.Fatalf("%d PINs checked for one order, want %d", n, sqlstore.MaxOrderPINFailures)
	}
	// The order is locked, even for the right PIN, but the payer's next order is not.
	if code, out := env.Confirm(t, a, "123456"); code != 403 || out["blocked_until"] == nil {
		t.Fatalf("right PIN on the locked order: %d %v", code, out)
	}
	if code, out := env.Confirm(t, place("pin-a"), "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("the payer's other order: %d %v", code, out)
	}

	// Many orders of one payer at once: the payer's limit holds.
	cash.checked.Store(0)
	var ids []string
	for i := 0; i < 6; i++ {
		ids = append(ids, place("pin-b"))
	}
	storm(ids, 4)
	if n := cash.checked.Load(); n != sqlstore.MaxPINFailures {
		t.Fatalf("%d PINs checked across the payer's orders, want %d", n, sqlstore.MaxPINFailures)
	}
}

// TestPageSecurityHeaders: every payer page, and its QR image, carries a CSP without scripts (the
// payment code page allows the platform's own script file, for its countdown),
// nosniff and no-referrer; every answer carries nosniff.
func TestPageSecurityHeaders(t *testing.T) {
	env, h, token := setup(t)
	env.Bind(t, h, "hdr-1", "440300", "employee")
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "hdr-1"))
	ok(t, r)
	link := env.Call(t, "/payinsurance/getbindurl", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", "hdr-1", "url", "https://h.example/back"))
	ok(t, link)
	for _, u := range []string{r.Get("pay_url"), r.Get("code_url"), env.URL + "/pay/nope", link.Get("bind_url"),
		env.URL + "/me/cards?appid=" + h.AppID + "&openid=hdr-1", env.URL + "/me/code?appid=" + h.AppID + "&openid=hdr-1"} {
		resp, err := env.Client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if strings.Contains(u, "/me/code") { // its countdown: a script of the platform's own, none inline
			csp = strings.Replace(csp, "; script-src 'self'", "", 1)
		}
		if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", u, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: nosniff %q referrer %q", u, resp.Header.Get("X-Content-Type-Options"), resp.Header.Get("Referrer-Policy"))
		}
	}
	resp, _ := env.Post(t, "/payinsurance/queryorder", token, []byte("<xml/>"))
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("API answer without nosniff")
	}
}

// TestRealTrafficLengths: serial_no, bill_no and the cancel numbers of real traffic reach 32
// characters, and user_card_type takes the national certificate types, not only 1.
func TestRealTrafficLengths(t *testing.T) {
	env, h, token := setup(t)
	n32, n33 := strings.Repeat("7", 32), strings.Repeat("7", 33)
	for _, kv := range [][]string{{"serial_no", n32}, {"bill_no", n32}, {"user_card_type", "8"}, {"user_card_type", "01"},
		{"user_card_type", "90"}, {"user_card_type", "1"}} {
		r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "len-1", kv...))
		ok(t, r)
	}
	for _, kv := range [][]string{{"serial_no", n33}, {"bill_no", n33}, {"user_card_type", "16"}, {"user_card_type", "001"}} {
		resp, body := env.Post(t, "/payinsurance/unifiedorder", token, signed(t, testenv.OrderRequest(h, "len-1", kv...), h.APIKey))
		protocolFail(t, resp, body, "参数格式校验错误 "+kv[0]+" is invalid")
	}
	id, _ := paidOrder(t, env, h, token, "len-2", "employee")
	ok(t, env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, id, "L1", "cancel_serial_no", n32, "cancel_bill_no", n32)))
	for _, k := range []string{"cancel_serial_no", "cancel_bill_no"} {
		resp, body := env.Post(t, "/payinsurance/refund", token, signed(t, refundReq(h, id, "L2", k, n33), h.APIKey))
		protocolFail(t, resp, body, "参数格式校验错误 "+k+" is invalid")
	}
}

// TestUnknownRequestContentPassesThrough: a city bureau's own message (XML here) in
// request_content is passed to the bureau and priced by the simulator as one class-A item, not
// refused; JSON in the simulator's format that is malformed is still refused.
func TestUnknownRequestContentPassesThrough(t *testing.T) {
	env, h, token := setup(t)
	env.Bind(t, h, "rc-xml", "440300", "employee")
	xml := `<?xml version="1.0" encoding="GBK"?><input><mdtrt_id>MD001</mdtrt_id><fee><item code="250101001">25.00</item></fee></input>`
	kv := []string{"pay_type", "3", "total_fee", "6500", "cash_fee", "2925", "insurance_fee", "3575", "allow_fee_change", "1"}
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "rc-xml", append(kv, "request_content", xml)...))
	ok(t, r)
	if code, out := env.Confirm(t, r.Get("med_trans_id"), "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	o, _ := env.Store.OrderByID(context.Background(), r.Get("med_trans_id"))
	if o.RequestContent != xml || o.CashFee+o.InsuranceFee != 6500 || o.HifpPay == 0 ||
		!strings.Contains(o.ResponseContent, `"code":"DEFAULT"`) || !strings.Contains(o.ResponseContent, `"class":"A"`) {
		t.Fatalf("order content %q split %d+%d detail %s; want the XML kept and one class-A item of 6500",
			o.RequestContent, o.CashFee, o.InsuranceFee, o.ResponseContent)
	}
	for _, content := range []string{"REG|MD001|25.00", "  " + xml} {
		ok(t, env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "rc-xml", append(kv, "request_content", content)...)))
	}
	bizFail(t, env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "rc-xml",
		append(kv, "request_content", `{"items":[`)...)), medpay.ErrBureauRejected)
}

// TestScanToPay: 扫码付. An order placed without openid is paid by whoever scans its code_url:
// the page asks who they are, pre-settles with their bound card at that moment, and only then
// takes their PIN. Orders with openid are unchanged (the other tests).
func TestScanToPay(t *testing.T) {
	env, h, token := setup(t)
	p := env.Bind(t, h, "scan-1", "440300", "employee")
	env.Bind(t, h, "scan-2", "440300", "employee")
	place := func() *wire.Message {
		r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "scan-1", "openid", "",
			"pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500", "allow_fee_change", "1",
			"request_content", workedBill))
		ok(t, r)
		return r
	}
	query := func(id string) *wire.Message {
		q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id))
		ok(t, q)
		return q
	}
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := env.Client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	r := place()
	id, payURL := r.Get("med_trans_id"), r.Get("pay_url")
	if r.Get("code_url") == "" || r.Get("insurance_fee") != "5500" || r.Get("cash_fee") != "1000" {
		t.Fatalf("answer: code_url %q figures %s/%s (not pre-settled yet)", r.Get("code_url"), r.Get("insurance_fee"), r.Get("cash_fee"))
	}
	if q := query(id); q.Has("openid") || q.Get("med_trade_state") != "NOTPAY" {
		t.Fatalf("before the scan: openid %q state %s", q.Get("openid"), q.Get("med_trade_state"))
	}
	// Nobody can confirm before the payer is known.
	if code, out := env.Confirm(t, id, "123456"); code != 409 {
		t.Fatalf("confirm without a payer: %d %v", code, out)
	}
	resp, err := env.Client.PostForm(payURL, url.Values{"pin": {"123456"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 409 {
		t.Fatalf("PIN on the page without a payer: %d", resp.StatusCode)
	}
	// The page asks who pays.
	if code, body := get(payURL); code != 200 || !strings.Contains(body, `id="identify"`) || strings.Contains(body, `id="pin"`) {
		t.Fatalf("scan page: %d\n%s", code, body)
	}
	// A payer without a card is told to bind one; the order stays free for another.
	if code, body := get(payURL + "?openid=nobody"); code != 409 || !strings.Contains(body, "绑定医保卡") {
		t.Fatalf("unbound payer: %d\n%s", code, body)
	}
	// The payer who scans is pre-settled at that moment.
	code, body := get(payURL + "?openid=scan-1")
	if code != 200 || !strings.Contains(body, `id="pin"`) || !strings.Contains(body, "32.07") {
		t.Fatalf("identified payer's page: %d\n%s", code, body)
	}
	q := query(id)
	if q.Get("openid") != "scan-1" || q.Get("insurance_fee") != "6500" || q.Get("cash_fee") != "0" || q.Get("pay_type") != "2" {
		t.Fatalf("after the scan: openid %q insurance %s cash %s pay_type %s", q.Get("openid"), q.Get("insurance_fee"), q.Get("cash_fee"), q.Get("pay_type"))
	}
	// Someone else scanning the same code later is refused.
	if code, body := get(payURL + "?openid=scan-2"); code != 409 {
		t.Fatalf("second payer: %d\n%s", code, body)
	}
	if code, out := env.Confirm(t, id, "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	o := checkBooks(t, env, id, &p, h.AppID+"/scan-1")
	if o.OpenID != "scan-1" || o.HifpPay != 3207 || o.AcctPay != 3293 {
		t.Fatalf("paid order: openid %q hifp %d acct %d", o.OpenID, o.HifpPay, o.AcctPay)
	}

	// Through a bind link (outside the sandbox the only way), and the sandbox API's openid.
	r = place()
	link := env.Call(t, "/payinsurance/getbindurl", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", "scan-2", "url", "https://h.example/back"))
	ok(t, link)
	tok := link.Get("bind_url")[strings.LastIndex(link.Get("bind_url"), "/")+1:]
	if code, body := get(r.Get("pay_url") + "?t=" + url.QueryEscape(tok)); code != 200 || !strings.Contains(body, `id="pin"`) {
		t.Fatalf("identified by bind link: %d\n%s", code, body)
	}
	if q := query(r.Get("med_trans_id")); q.Get("openid") != "scan-2" {
		t.Fatalf("payer by bind link: %q", q.Get("openid"))
	}
	r = place()
	resp, err = env.Client.Post(env.URL+"/sandbox/orders/"+r.Get("med_trans_id")+"/confirm", "application/json",
		strings.NewReader(`{"pin":"123456","openid":"scan-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("sandbox confirm with openid: %d %v", resp.StatusCode, out)
	}
}

// TestReplayedUnifiedOrderCreatesNoOrder: unifiedorder makes its replay check inside the
// transaction that inserts the order, so a nonce seen before refuses the call with nothing
// written, and answers as the check made up front did: the protocol failure, before any business
// answer.
func TestReplayedUnifiedOrderCreatesNoOrder(t *testing.T) {
	env, h, token := setup(t)
	ctx := context.Background()
	noOrder := func(what, tradeNo string) {
		t.Helper()
		if o, err := env.Store.OrderByTradeNo(ctx, h.ID, tradeNo); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("%s: an order was written (%v, %v)", what, o, err)
		}
	}
	post := func(path string, req *wire.Message) (*http.Response, []byte) {
		return env.Post(t, path, token, signed(t, req, h.APIKey))
	}

	// The nonce of a query, then of an order: the order is refused and not placed.
	post("/payinsurance/queryorder", testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "hosp_out_trade_no", "none", "nonce_str", "used-by-query"))
	req := testenv.OrderRequest(h, "rp-1", "nonce_str", "used-by-query")
	resp, out := post("/payinsurance/unifiedorder", req)
	protocolFail(t, resp, out, "nonce_str重复")
	noOrder("nonce of a query", req.Get("hosp_out_trade_no"))

	// Refused for a business reason: the nonce is spent all the same, and its replay answers as a
	// replay, not with the business error again.
	bad := testenv.OrderRequest(h, "rp-2", "nonce_str", "used-by-refused", "city_id", "110000")
	_, out = post("/payinsurance/unifiedorder", bad)
	bizFail(t, decoded(t, out), medpay.ErrNoPermission)
	resp, out = post("/payinsurance/unifiedorder", bad)
	protocolFail(t, resp, out, "nonce_str重复")
	good := testenv.OrderRequest(h, "rp-2", "nonce_str", "used-by-refused")
	resp, out = post("/payinsurance/unifiedorder", good)
	protocolFail(t, resp, out, "nonce_str重复")
	noOrder("nonce of a refused order", good.Get("hosp_out_trade_no"))

	// An order asking the bureau for its split (a bound payer): refused before the bureau is asked.
	env.Bind(t, h, "rp-3", "440300", "employee")
	ins := testenv.OrderRequest(h, "rp-3", "nonce_str", "used-by-query", "pay_type", "3", "total_fee", "6500",
		"cash_fee", "2925", "insurance_fee", "3575", "allow_fee_change", "0",
		"request_content", `{"acct_used":false,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`)
	resp, out = post("/payinsurance/unifiedorder", ins)
	protocolFail(t, resp, out, "nonce_str重复")
	noOrder("insurance order", ins.Get("hosp_out_trade_no"))

	// One request sent many times at once: one order, one success, the rest replays.
	body := signed(t, testenv.OrderRequest(h, "rp-4"), h.APIKey)
	const n = 8
	answers := make([]*wire.Message, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, data := env.Post(t, "/payinsurance/unifiedorder", token, body)
			answers[i], _ = wire.Decode(bytes.NewReader(data))
		})
	}
	wg.Wait()
	succeeded := 0
	for _, m := range answers {
		switch {
		case m == nil:
			t.Fatal("an answer was not XML")
		case m.Get("result_code") == "SUCCESS":
			succeeded++
		case !strings.HasPrefix(m.Get("return_msg"), "nonce_str重复"):
			t.Errorf("neither placed nor refused as a replay: %v", m)
		}
	}
	if succeeded != 1 {
		t.Errorf("%d of %d copies of one request succeeded, want 1", succeeded, n)
	}
}

// TestReplayedRefundCreatesNoRefund: refund, too, makes its replay check in its own transaction;
// a replay, whether of a new refund or of one already made, writes nothing and calls no one.
func TestReplayedRefundCreatesNoRefund(t *testing.T) {
	env, h, token := setup(t)
	ctx := context.Background()
	id, _ := paidOrder(t, env, h, token, "rp-refund", "employee")
	post := func(req *wire.Message) (*http.Response, []byte) {
		return env.Post(t, "/payinsurance/refund", token, signed(t, req, h.APIKey))
	}
	env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID,
		"med_trans_id", id, "nonce_str", "rf-used"))
	resp, out := post(refundReq(h, id, "RPR1", "nonce_str", "rf-used"))
	protocolFail(t, resp, out, "nonce_str重复")
	if r, err := env.Store.RefundByNo(ctx, h.ID, "RPR1"); !errors.Is(err, medpay.ErrNotFound) {
		t.Fatalf("a replayed refund was written: %v %v", r, err)
	}
	if o, _ := env.Store.OrderByID(ctx, id); o.State != medpay.StateSuccess {
		t.Fatalf("order %s after a replayed refund", o.State)
	}
	// A refund made, then its request replayed: refused, and the refund is not run again.
	body := signed(t, refundReq(h, id, "RPR2", "part_refund_type", medpay.PartCashOnly), h.APIKey)
	_, data := env.Post(t, "/payinsurance/refund", token, body)
	ok(t, decoded(t, data))
	resp, out = env.Post(t, "/payinsurance/refund", token, body)
	protocolFail(t, resp, out, "nonce_str重复")
}

// decoded decodes an answer's body.
func decoded(t *testing.T, body []byte) *wire.Message {
	t.Helper()
	m, err := wire.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("answer not XML: %v: %s", err, body)
	}
	return m
}
