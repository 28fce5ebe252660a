package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/client"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/wire"
)

// These tests run the SDK against the real platform (internal/testenv): real handlers, real
// database, real signatures.

// workedBill is the worked example of docs/api/bureau.md: in 深圳 at a level-3 hospital an employee's split is
// hifp 3207 + acct 3293.
const workedBill = `{"med_type":"11","dept_name":"内科","acct_used":true,"items":[
{"code":"250101001","name":"血常规","class":"A","price":2500,"qty":1},
{"code":"86900011","name":"阿莫西林胶囊","class":"B","price":1850,"qty":2,"self_ratio_pct":10},
{"code":"X0001","name":"口罩","class":"C","price":300,"qty":1}]}`

// countingTransport counts the requests per path.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.URL.Path]++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func (c *countingTransport) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

type bundle struct {
	env *testenv.Env
	h   *testenv.Merchant
	c   *client.Client
	rt  *countingTransport
}

// setup starts a platform with a 深圳 hospital and an SDK client for it whose clock is the
// platform's.
func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	b := &bundle{env: env, h: h}
	b.c, b.rt = newClient(t, env, client.Config{AppID: h.AppID, MchID: h.MchID, APIKey: h.APIKey, Secret: h.Secret})
	return b
}

func newClient(t *testing.T, env *testenv.Env, cfg client.Config) (*client.Client, *countingTransport) {
	t.Helper()
	rt := &countingTransport{base: env.Client.Transport}
	cfg.BaseURL = env.URL
	cfg.HTTPClient = &http.Client{Transport: rt, Timeout: 10 * time.Second}
	if cfg.Now == nil {
		cfg.Now = env.Clock.Now
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, rt
}

// orderReq is a valid cash-only order for openid.
func orderReq(h *testenv.Merchant, openid string) *client.UnifiedOrderRequest {
	return &client.UnifiedOrderRequest{
		OrderFields: client.OrderFields{
			OpenID: openid, OrderType: client.DiagPay, HospOutTradeNo: "H" + secret.RandomString(12, "0123456789"),
			HospitalName: h.Name, Body: "门诊缴费", TotalFee: 10000, CashFee: 10000, InsuranceFee: 0,
			AllowFeeChange: 1, PayType: client.PayCash, SpbillCreateIP: "10.1.2.3",
			CityID: "440300", SerialNo: "S1", OrgNo: "H44030000001", GmtOutCreate: time.Date(2026, 3, 2, 9, 0, 0, 0, wire.CST),
		},
		NotifyURL: "http://127.0.0.1:1/notify",
	}
}

// insuredReq is an order with an insurance part for a bound payer (the worked bill).
func insuredReq(h *testenv.Merchant, openid string) *client.UnifiedOrderRequest {
	r := orderReq(h, openid)
	r.PayType, r.TotalFee, r.CashFee, r.InsuranceFee, r.RequestContent = client.PayCashInsurance, 6500, 1000, 5500, workedBill
	return r
}

func TestOrderLifecycle(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := b.env.Bind(t, b.h, "payer-1", "440300", "employee")

	req := insuredReq(b.h, "payer-1")
	req.Attach = "床位 12"
	placed, err := b.c.UnifiedOrder(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if placed.MedTransID == "" || placed.PayURL != b.env.URL+"/pay/"+placed.MedTransID || placed.CodeURL == "" || placed.PayAppID == "" {
		t.Fatalf("placed %+v", placed)
	}
	if placed.InsuranceFee != 6500 || placed.CashFee != 0 || placed.Raw.Get("med_trans_id") != placed.MedTransID {
		t.Fatalf("pre-settled split: cash %d insurance %d", placed.CashFee, placed.InsuranceFee)
	}

	// The same request again (the client signs it with a fresh nonce) is the same order.
	again, err := b.c.UnifiedOrder(ctx, req)
	if err != nil || again.MedTransID != placed.MedTransID {
		t.Fatalf("retry: %v %+v", err, again)
	}
	changed := *req
	changed.TotalFee++
	if _, err := b.c.UnifiedOrder(ctx, &changed); !client.IsCode(err, medpay.ErrDuplicateTradeNo) {
		t.Fatalf("changed content: %v, want 501", err)
	}

	o, err := b.c.QueryOrder(ctx, &client.QueryOrderRequest{HospOutTradeNo: req.HospOutTradeNo})
	if err != nil {
		t.Fatal(err)
	}
	if o.MedTradeState != client.StateNotPay || o.MedTransID != placed.MedTransID || o.Attach != "床位 12" || o.Paid() || !o.TimeEnd.IsZero() {
		t.Fatalf("unpaid order %+v", o)
	}

	if code, out := b.env.Confirm(t, placed.MedTransID, "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	o, err = b.c.QueryOrder(ctx, &client.QueryOrderRequest{MedTransID: placed.MedTransID})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Paid() || o.TotalFee != 6500 || o.InsuranceFee != 6500 || o.CashFee != 0 || o.OpenID != "payer-1" ||
		o.PayType == 0 || o.OrderType != client.DiagPay || o.InsuranceTradeStatus != "PAYED" || o.InsuranceOrderID == "" ||
		o.MedicalCardID != p.CardNo || !o.TimeEnd.Equal(b.env.Clock.Now().Truncate(time.Second)) {
		t.Fatalf("paid order %+v", o)
	}

	// Paid orders cannot be closed or placed again.
	if _, err := b.c.CloseOrder(ctx, &client.CloseOrderRequest{MedTransID: placed.MedTransID}); !client.IsCode(err, medpay.ErrOrderPaid) {
		t.Fatalf("close paid order: %v", err)
	}
	if _, err := b.c.UnifiedOrder(ctx, req); !client.IsCode(err, medpay.ErrOrderPaid) {
		t.Fatalf("place paid order again: %v", err)
	}

	// An unpaid order closes, twice.
	other, err := b.c.UnifiedOrder(ctx, orderReq(b.h, "payer-2"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		closed, err := b.c.CloseOrder(ctx, &client.CloseOrderRequest{MedTransID: other.MedTransID})
		if err != nil || closed.MedTradeState != client.StateClosed || closed.MedTransID != other.MedTransID {
			t.Fatalf("close: %v %+v", err, closed)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	b := setup(t)
	ctx := context.Background()

	_, err := b.c.QueryOrder(ctx, &client.QueryOrderRequest{HospOutTradeNo: "H-none"})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "502" || apiErr.Description == "" || apiErr.RequestID == "" {
		t.Fatalf("unknown order: %#v", err)
	}
	if !client.IsCode(err, "502") || client.IsCode(err, "503") || client.Code(err) != "502" || client.IsProtocol(err, "") {
		t.Fatal("helpers disagree with the error")
	}

	// Business errors of pre-settlement.
	req := orderReq(b.h, "nobody")
	req.PayType, req.CashFee, req.InsuranceFee = client.PayInsurance, 0, 10000
	if _, err := b.c.UnifiedOrder(ctx, req); !client.IsCode(err, medpay.ErrNoCard) {
		t.Fatalf("unbound payer: %v", err)
	}
	req = orderReq(b.h, "nobody")
	req.PayType, req.CashFee, req.InsuranceFee = client.PayCashInsurance, 0, 10000
	if _, err := b.c.UnifiedOrder(ctx, req); !client.IsCode(err, medpay.ErrCashFeeZero) {
		t.Fatalf("pay_type 3 without cash: %v", err)
	}

	// A field error is a protocol error with the field named.
	req = orderReq(b.h, "o1")
	req.Body = ""
	_, err = b.c.UnifiedOrder(ctx, req)
	var pe *client.ProtocolError
	if !errors.As(err, &pe) || pe.ReturnMsg != "参数格式校验错误 body is needed" || pe.RequestID == "" ||
		!client.IsProtocol(err, client.MsgBadField) || client.Code(err) != "" {
		t.Fatalf("missing body: %#v", err)
	}
	// Extra fields are signed and sent; an empty one removes a typed field.
	req = orderReq(b.h, "o1")
	req.Extra = map[string]string{"serial_no": "", "future_field": "x"}
	if _, err := b.c.UnifiedOrder(ctx, req); !client.IsProtocol(err, "参数格式校验错误 serial_no is needed") {
		t.Fatalf("extra removing serial_no: %v", err)
	}

	// A wrong key: the platform refuses the signature.
	wrongKey, _ := newClient(t, b.env, client.Config{AppID: b.h.AppID, MchID: b.h.MchID, APIKey: secret.APIKey(), Secret: b.h.Secret})
	if _, err := wrongKey.QueryOrder(ctx, &client.QueryOrderRequest{HospOutTradeNo: "H"}); !client.IsProtocol(err, client.MsgBadSignature) {
		t.Fatalf("wrong key: %v", err)
	}
	// Token errors of /cgi-bin/token come back as APIError with the errcode.
	wrongSecret, _ := newClient(t, b.env, client.Config{AppID: b.h.AppID, MchID: b.h.MchID, APIKey: b.h.APIKey, Secret: "nope"})
	if _, err := wrongSecret.QueryOrder(ctx, &client.QueryOrderRequest{HospOutTradeNo: "H"}); !client.IsCode(err, "40125") {
		t.Fatalf("wrong secret: %v", err)
	}
	unknown, _ := newClient(t, b.env, client.Config{AppID: "wx0000000000000000", MchID: b.h.MchID, APIKey: b.h.APIKey, Secret: "x"})
	if _, _, err := unknown.AccessToken(ctx); !client.IsCode(err, "40013") {
		t.Fatalf("unknown appid: %v", err)
	}
	// Another merchant's mch_id with this appid's token.
	other := b.env.Hospital(t)
	mixed, _ := newClient(t, b.env, client.Config{AppID: b.h.AppID, MchID: other.MchID, APIKey: other.APIKey, Secret: b.h.Secret})
	if _, err := mixed.QueryOrder(ctx, &client.QueryOrderRequest{HospOutTradeNo: "H"}); !client.IsProtocol(err, "参数格式校验错误 mch_id is invalid") {
		t.Fatalf("mch_id of another merchant: %v", err)
	}

	// Not the platform at all.
	junk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/cgi-bin/") {
			w.Write([]byte(`{"access_token":"t","expires_in":7200}`))
			return
		}
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer junk.Close()
	jc, err := client.New(client.Config{BaseURL: junk.URL, AppID: "a", MchID: "m", APIKey: "k", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	var he *client.HTTPError
	if _, err := jc.QueryOrder(ctx, &client.QueryOrderRequest{HospOutTradeNo: "H"}); !errors.As(err, &he) || he.StatusCode != 502 || !client.Retryable(err) {
		t.Fatalf("proxy error page: %#v", err)
	}
}

func TestTransportErrorIsRetryable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	c, err := client.New(client.Config{BaseURL: srv.URL, AppID: "a", MchID: "m", APIKey: "k", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.QueryOrder(context.Background(), &client.QueryOrderRequest{HospOutTradeNo: "H"})
	if err == nil || !client.Retryable(err) || client.IsProtocol(err, "") || client.Code(err) != "" {
		t.Fatalf("connection refused: %v (retryable %v)", err, client.Retryable(err))
	}
	if client.Retryable(&client.APIError{Code: "502"}) || !client.Retryable(&client.APIError{Code: "599"}) {
		t.Fatal("Retryable by code")
	}
}

func TestConfigChecks(t *testing.T) {
	t.Parallel()
	for _, cfg := range []client.Config{
		{BaseURL: "ftp://x", AppID: "a", MchID: "m", APIKey: "k"},
		{BaseURL: "http://x", MchID: "m", APIKey: "k"},
		{BaseURL: "http://x", AppID: "a", APIKey: "k"},
		{BaseURL: "http://x", AppID: "a", MchID: "m"},
		{BaseURL: "http://x", AppID: "a", MchID: "m", APIKey: "k", SubAppID: "s"},
		{BaseURL: "http://x", AppID: "a", MchID: "m", APIKey: "k", SignType: "SHA1"},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestAnswerSignatureChecked puts a proxy in front of the platform that alters answers: the client
// must refuse them.
func TestAnswerSignatureChecked(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var tamper atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(r.Method, b.env.URL+r.URL.RequestURI(), bytes.NewReader(body))
		resp, err := b.env.Client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if tamper.Load() {
			out = bytes.Replace(out, []byte("<![CDATA[10000]]></cash_fee>"), []byte("<![CDATA[1]]></cash_fee>"), 1)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.Write(out)
	}))
	defer proxy.Close()
	c, err := client.New(client.Config{BaseURL: proxy.URL, AppID: b.h.AppID, MchID: b.h.MchID, APIKey: b.h.APIKey, Secret: b.h.Secret})
	if err != nil {
		t.Fatal(err)
	}
	placed, err := c.UnifiedOrder(ctx, orderReq(b.h, "o1"))
	if err != nil || placed.CashFee != 10000 {
		t.Fatalf("untouched answer: %v %+v", err, placed)
	}
	tamper.Store(true)
	if o, err := c.QueryOrder(ctx, &client.QueryOrderRequest{MedTransID: placed.MedTransID}); !errors.Is(err, client.ErrBadSignature) || o != nil {
		t.Fatalf("tampered answer: %v %+v", err, o)
	}
}

func TestHMACSignType(t *testing.T) {
	b := setup(t)
	c, _ := newClient(t, b.env, client.Config{AppID: b.h.AppID, MchID: b.h.MchID, APIKey: b.h.APIKey, Secret: b.h.Secret, SignType: wire.SignTypeHMACSHA256})
	placed, err := c.UnifiedOrder(context.Background(), orderReq(b.h, "o1"))
	if err != nil {
		t.Fatal(err)
	}
	if placed.Raw.Get("sign_type") != wire.SignTypeHMACSHA256 || len(placed.Raw.Get("sign")) != 64 {
		t.Fatalf("answer sign_type %q sign %q", placed.Raw.Get("sign_type"), placed.Raw.Get("sign"))
	}
}

func TestTokenCachingAndRefresh(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	q := &client.QueryOrderRequest{HospOutTradeNo: "H-none"}
	call := func() {
		t.Helper()
		if _, err := b.c.QueryOrder(ctx, q); !client.IsCode(err, "502") {
			t.Fatalf("query: %v", err)
		}
	}
	call()
	call()
	if n := b.rt.count("/cgi-bin/token"); n != 1 {
		t.Fatalf("token fetched %d times for two calls, want 1", n)
	}
	tok1, exp1, err := b.c.AccessToken(ctx)
	if err != nil || !exp1.Equal(b.env.Clock.Now().Add(medpay.TokenTTL)) {
		t.Fatalf("token expiry %v, %v", exp1, err)
	}

	// Shortly before expiry the client renews on its own.
	b.env.Clock.Advance(medpay.TokenTTL - 4*time.Minute)
	call()
	tok2, _, _ := b.c.AccessToken(ctx)
	if n := b.rt.count("/cgi-bin/token"); n != 2 || tok2 == tok1 {
		t.Fatalf("token fetched %d times after nearing expiry (renewed %v), want 2", n, tok2 != tok1)
	}

	// A client whose clock does not see the platform's time passing holds an expired token: the
	// platform's answer makes it renew once and retry, transparently.
	c, rt := newClient(t, b.env, client.Config{AppID: b.h.AppID, MchID: b.h.MchID, APIKey: b.h.APIKey, Secret: b.h.Secret, Now: time.Now})
	if _, err := c.QueryOrder(ctx, q); !client.IsCode(err, "502") {
		t.Fatal(err)
	}
	b.env.Clock.Advance(medpay.TokenTTL + time.Second)
	if _, err := c.QueryOrder(ctx, q); !client.IsCode(err, "502") {
		t.Fatalf("after the platform expired the token: %v", err)
	}
	if n, calls := rt.count("/cgi-bin/token"), rt.count(client.PathQueryOrder); n != 2 || calls != 3 {
		t.Fatalf("token fetched %d times and %d queries sent, want 2 and 3", n, calls)
	}
}

func TestConcurrentCallsShareOneToken(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := b.c.QueryOrder(ctx, &client.QueryOrderRequest{HospOutTradeNo: "H-none"}); !client.IsCode(err, "502") {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := b.rt.count("/cgi-bin/token"); n != 1 {
		t.Fatalf("token fetched %d times, want 1", n)
	}
}

func TestProviderClient(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	env := b.env
	prov := env.NewMerchant(t, medpay.KindProvider, 0)
	cfg := client.Config{AppID: prov.AppID, MchID: prov.MchID, APIKey: prov.APIKey, Secret: prov.Secret, SubAppID: b.h.AppID, SubMchID: b.h.MchID}
	pc, rt := newClient(t, env, cfg)
	if !pc.ProviderMode() {
		t.Fatal("not in provider mode")
	}

	// Before the hospital authorises the provider: 402 on the token.
	if _, err := pc.QueryOrder(ctx, &client.QueryOrderRequest{HospOutTradeNo: "H"}); !client.IsCode(err, medpay.ErrNotAuthorised) {
		t.Fatalf("unauthorised provider: %v", err)
	}
	bad := cfg
	bad.Secret = "wrong"
	bc, _ := newClient(t, env, bad)
	if _, _, err := bc.AccessToken(ctx); !client.IsCode(err, medpay.ErrBadSecret) {
		t.Fatalf("bad provider secret: %v", err)
	}

	if err := env.Store.Authorize(ctx, prov.ID, b.h.ID); err != nil {
		t.Fatal(err)
	}
	env.Bind(t, b.h, "sub-payer", "440300", "employee")
	received := make(chan *client.Notification, 1)
	hosp := httptest.NewServer(client.NotificationHandler(prov.APIKey, func(ctx context.Context, n *client.Notification) error {
		received <- n
		return nil
	}))
	defer hosp.Close()

	req := insuredReq(b.h, "")
	req.SubOpenID, req.NotifyURL = "sub-payer", hosp.URL+"/notify"
	placed, err := pc.UnifiedOrder(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if placed.Raw.Get("sub_appid") != b.h.AppID || placed.Raw.Get("sub_mch_id") != b.h.MchID || rt.count("/payinsurance/gettoken") != 2 { // the 402 attempt, then one token
		t.Fatalf("answer sub_* %q %q", placed.Raw.Get("sub_appid"), placed.Raw.Get("sub_mch_id"))
	}
	if code, out := env.Confirm(t, placed.MedTransID, "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	o, err := pc.QueryOrder(ctx, &client.QueryOrderRequest{MedTransID: placed.MedTransID})
	if err != nil || o.MedTradeState != client.StateSuccess || o.SubOpenID != "sub-payer" {
		t.Fatalf("query: %v %+v", err, o)
	}
	if _, err := env.Worker.RunOnce(ctx, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-received:
		if n.NotifyType != client.NotifyPay || n.SubAppID != b.h.AppID || n.SubMchID != b.h.MchID || n.AppID != prov.AppID ||
			n.Order.MedTransID != placed.MedTransID || n.Order.SubOpenID != "sub-payer" {
			t.Fatalf("notification %+v order %+v", n, n.Order)
		}
	default:
		t.Fatal("no notification delivered")
	}

	t.Run("refund", func(t *testing.T) {
		r, err := pc.Refund(ctx, &client.RefundRequest{MedTransID: placed.MedTransID, HospOutRefundNo: "PR1"})
		if err != nil || r.InsuranceRefundFee != 6500 || r.Raw.Get("sub_mch_id") != b.h.MchID {
			t.Fatalf("provider refund: %v %+v", err, r)
		}
	})

	// The hospital's authorisation is withdrawn: calls fail with 510 even with a cached token.
	if err := env.Store.Revoke(ctx, prov.ID, b.h.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.QueryOrder(ctx, &client.QueryOrderRequest{MedTransID: placed.MedTransID}); !client.IsCode(err, medpay.ErrNoPermission) {
		t.Fatalf("after revoke: %v", err)
	}
}

// outboxBody returns the body of the notification queued for an order.
func outboxBody(t *testing.T, env *testenv.Env, medTransID string) []byte {
	t.Helper()
	o, err := env.Store.OrderByID(context.Background(), medTransID)
	if err != nil {
		t.Fatal(err)
	}
	var body string
	if err := env.DB.SQL().QueryRow(`SELECT body FROM outbox WHERE order_id = $1 ORDER BY id LIMIT 1`, o.ID).Scan(&body); err != nil {
		t.Fatal(err)
	}
	return []byte(body)
}

func TestNotificationHandler(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	env := b.env

	var mu sync.Mutex
	var got []*client.Notification
	fail := atomic.Bool{}
	handler := client.NotificationHandler(b.h.APIKey, func(ctx context.Context, n *client.Notification) error {
		if fail.Load() {
			return errors.New("database down")
		}
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		return nil
	})
	hosp := httptest.NewServer(handler)
	defer hosp.Close()

	req := orderReq(b.h, "o-notify")
	req.NotifyURL, req.Attach = hosp.URL+"/notify", "附加"
	placed, err := b.c.UnifiedOrder(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if code, out := env.Confirm(t, placed.MedTransID, "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	body := outboxBody(t, env, placed.MedTransID)

	post := func(body []byte) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/notify", bytes.NewReader(body)))
		return rec
	}
	answerCode := func(rec *httptest.ResponseRecorder) string {
		m, err := wire.Decode(rec.Body)
		if err != nil {
			t.Fatalf("answer not XML: %v", err)
		}
		return m.Get("return_code")
	}

	// The real body, fed directly.
	rec := post(body)
	if rec.Code != 200 || answerCode(rec) != "SUCCESS" {
		t.Fatalf("real notification: %d %s", rec.Code, rec.Body)
	}
	mu.Lock()
	n := got[0]
	mu.Unlock()
	if n.NotifyType != client.NotifyPay || n.NotifyID == "" || n.AppID != b.h.AppID || n.MchID != b.h.MchID || n.Refund != nil ||
		n.Order.MedTransID != placed.MedTransID || n.Order.MedTradeState != client.StateSuccess || n.Order.TotalFee != 10000 ||
		n.Order.CashFee != 10000 || n.Order.Attach != "附加" || n.Order.TimeEnd.IsZero() || n.Order.HospOutTradeNo != req.HospOutTradeNo {
		t.Fatalf("notification %+v, order %+v", n, n.Order)
	}

	// Tampered: 400 and fn not called.
	tampered := bytes.Replace(body, []byte("<![CDATA[10000]]></total_fee>"), []byte("<![CDATA[1]]></total_fee>"), 1)
	if bytes.Equal(tampered, body) {
		t.Fatal("tampering failed")
	}
	for _, bad := range [][]byte{tampered, []byte("not xml"), []byte("<xml><return_code>SUCCESS</return_code></xml>")} {
		if rec := post(bad); rec.Code != 400 || answerCode(rec) != "FAIL" {
			t.Fatalf("bad body %q: %d %s", bad, rec.Code, rec.Body)
		}
	}
	// Signed with another key.
	if _, err := client.ParseNotification(bytes.NewReader(body), secret.APIKey()); !errors.Is(err, client.ErrBadSignature) {
		t.Fatalf("wrong key: %v", err)
	}
	if rec := httptest.NewRecorder(); true {
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/notify", nil))
		if rec.Code != 405 {
			t.Fatalf("GET: %d", rec.Code)
		}
	}
	mu.Lock()
	if len(got) != 1 {
		t.Fatalf("fn called %d times, want 1", len(got))
	}
	mu.Unlock()

	// Through the platform's worker: fn failing makes the platform retry; succeeding delivers.
	fail.Store(true)
	if _, err := env.Worker.RunOnce(ctx, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	var state string
	var attempts int
	env.DB.SQL().QueryRow(`SELECT state, attempts FROM outbox WHERE body = $1`, string(body)).Scan(&state, &attempts)
	if state != "pending" || attempts != 1 {
		t.Fatalf("after a FAIL answer: state %s attempts %d", state, attempts)
	}
	fail.Store(false)
	env.Clock.Advance(16 * time.Second)
	if _, err := env.Worker.RunOnce(ctx, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	env.DB.SQL().QueryRow(`SELECT state, attempts FROM outbox WHERE body = $1`, string(body)).Scan(&state, &attempts)
	if state != "delivered" || attempts != 2 {
		t.Fatalf("after a SUCCESS answer: state %s attempts %d", state, attempts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[1].NotifyID != got[0].NotifyID {
		t.Fatalf("notifications %d, the redelivery must carry the same notify_id", len(got))
	}
}
