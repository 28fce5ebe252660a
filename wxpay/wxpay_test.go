package wxpay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
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
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
	"github.com/medpay/medpay/wxpay"
)

const appID = "wxhospital00000001"

// receiver is the platform's notify URL: it verifies and opens every callback with the client,
// answers 204 when that succeeds and 400 {"code":"FAIL"} otherwise.
type receiver struct {
	URL      string
	events   chan *medpay.CashEvent
	refused  atomic.Int64
	failNext atomic.Int64 // answer 500 to this many valid callbacks first
}

// bundle is one channel served over HTTP under /cash, with a registered merchant and its client.
type bundle struct {
	ch     *cash.Channel
	db     *sqlstore.DB
	base   string // the channel's base URL (…/cash)
	client *wxpay.Client
	cfg    wxpay.Config
	creds  *cash.MerchantCredentials
	recv   *receiver
	offset *atomic.Int64 // added to the clock, in seconds
	now    func() time.Time
}

type options struct {
	noWorker        bool                                      // drive callbacks with DeliverOnce
	callbackTimeout time.Duration                             // the channel's; 0: its default
	transport       func(http.RoundTripper) http.RoundTripper // wraps the client's transport
}

func setup(t testing.TB, engine string, o options) *bundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db := sqlstoretest.Open(t, engine)
	key := make([]byte, 32)
	rand.Read(key)
	box, err := secret.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{db: db, offset: &atomic.Int64{}}
	b.now = func() time.Time { return time.Now().Add(time.Duration(b.offset.Load()) * time.Second) }
	b.ch, err = cash.NewChannel(ctx, db, box, cash.Options{Now: b.now, AllowPrivate: true, CallbackTimeout: o.callbackTimeout})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/cash/", http.StripPrefix("/cash", b.ch.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b.base = srv.URL + "/cash"
	if b.creds, err = b.ch.CreateMerchant(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	b.cfg = config(t, b.creds, b.base)
	b.cfg.Now = b.now
	if o.transport != nil {
		b.cfg.HTTP = &http.Client{Transport: o.transport(http.DefaultTransport)}
	}
	if b.client, err = wxpay.New(b.cfg); err != nil {
		t.Fatal(err)
	}
	b.recv = newReceiver(t, b.client)
	if !o.noWorker {
		done := make(chan struct{})
		go func() { b.ch.RunCallbacks(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return b
}

func config(t testing.TB, cr *cash.MerchantCredentials, base string) wxpay.Config {
	t.Helper()
	priv, err := apiv3.ParsePrivateKey([]byte(cr.MerchantPrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := apiv3.ParsePublicKey([]byte(cr.PlatformPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return wxpay.Config{BaseURL: base, MchID: cr.MchID, SerialNo: cr.MerchantSerialNo, PrivateKey: priv,
		APIv3Key: []byte(cr.APIv3Key), PlatformKey: pub, PlatformKeyID: cr.PlatformPublicKeyID, CashierURL: base + "/cashier"}
}

func newReceiver(t testing.TB, c *wxpay.Client) *receiver {
	rc := &receiver{events: make(chan *medpay.CashEvent, 100)}
	h := c.CallbackHandler(func(_ context.Context, ev *medpay.CashEvent) error {
		if rc.failNext.Add(-1) >= 0 {
			return errors.New("busy")
		}
		rc.events <- ev
		return nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == http.StatusBadRequest {
			rc.refused.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/notify/cash"
	return rc
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// event waits for the next callback the receiver accepted.
func (rc *receiver) event(t *testing.T) *medpay.CashEvent {
	t.Helper()
	select {
	case ev := <-rc.events:
		return ev
	case <-time.After(60 * time.Second): // a failsafe, not a timing assertion
		t.Fatal("no callback arrived")
		return nil
	}
}

func (b *bundle) prepay(t *testing.T, outTradeNo, openid string, fen int64) *medpay.CashPrepay {
	t.Helper()
	p, err := b.client.Prepay(context.Background(), medpay.CashPrepayRequest{OutTradeNo: outTradeNo, AppID: appID,
		OpenID: openid, Description: "门诊缴费", NotifyURL: b.recv.URL, Amount: fen})
	if err != nil {
		t.Fatalf("prepay %s: %v", outTradeNo, err)
	}
	return p
}

// sandbox POSTs a sandbox helper and returns the status and the decoded answer.
func (b *bundle) sandbox(t *testing.T, path string, in any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(in)
	resp, err := http.Post(b.base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (b *bundle) pay(t *testing.T, prepayID, pin string) (int, map[string]any) {
	t.Helper()
	return b.sandbox(t, "/sandbox/pay", map[string]string{"prepay_id": prepayID, "pin": pin})
}

func (b *bundle) balance(t *testing.T, openid string) int64 {
	t.Helper()
	status, out := b.sandbox(t, "/sandbox/wallets", map[string]string{"appid": appID, "openid": openid})
	if status != 200 {
		t.Fatalf("wallet: %d %v", status, out)
	}
	return int64(out["balance"].(float64))
}

func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, engine)
		})
	}
}

func TestPayRefundAndCallbacks(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine, options{})
		ctx := context.Background()
		start := b.balance(t, "payer-1")
		p := b.prepay(t, "ORDER-0001", "payer-1", 1000)
		if !strings.HasPrefix(p.PrepayID, "wx") || p.CodeURL != "" {
			t.Fatalf("prepay %+v", p)
		}
		if q, err := b.client.QueryPayment(ctx, "ORDER-0001"); err != nil || q.State != medpay.CashNotPaid || q.Paid() {
			t.Fatalf("before paying: %+v, %v", q, err)
		}
		if status, out := b.pay(t, p.PrepayID, "000000"); status != 403 || out["code"] != cash.PayWrongPIN {
			t.Fatalf("wrong PIN: %d %v", status, out)
		}
		if status, out := b.pay(t, p.PrepayID, cash.DefaultPIN); status != 200 || out["trade_state"] != "SUCCESS" {
			t.Fatalf("pay: %d %v", status, out)
		}
		ev := b.recv.event(t)
		if ev.Type != medpay.CashEventPaid || ev.Payment == nil || ev.Payment.OutTradeNo != "ORDER-0001" ||
			ev.Payment.State != medpay.CashPaid || ev.Payment.Amount != 1000 || ev.Payment.PayerAmount != 1000 ||
			ev.Payment.OpenID != "payer-1" || ev.Payment.TransactionID == "" || ev.Payment.PaidAt.IsZero() {
			t.Fatalf("payment callback %+v %+v", ev, ev.Payment)
		}
		q, err := b.client.QueryPayment(ctx, "ORDER-0001")
		if err != nil || q.State != medpay.CashPaid || q.TransactionID != ev.Payment.TransactionID || !q.PaidAt.Equal(ev.Payment.PaidAt) {
			t.Fatalf("query after paying: %+v, %v", q, err)
		}
		// Paying again changes nothing.
		if status, out := b.pay(t, p.PrepayID, cash.DefaultPIN); status != 200 || out["transaction_id"] != q.TransactionID {
			t.Fatalf("pay again: %d %v", status, out)
		}
		if got := b.balance(t, "payer-1"); got != start-1000 {
			t.Fatalf("balance after paying %d, want %d", got, start-1000)
		}

		// A partial refund, its callback and query; the rest; nothing more.
		r1, err := b.client.Refund(ctx, medpay.CashRefundRequest{OutTradeNo: "ORDER-0001", OutRefundNo: "REFUND-1", Amount: 300, Total: 1000, Reason: "部分退费"})
		if err != nil || r1.Status != medpay.CashRefundSuccess || r1.Amount != 300 || r1.Total != 1000 || r1.RefundID == "" {
			t.Fatalf("refund 1: %+v, %v", r1, err)
		}
		ev = b.recv.event(t)
		if ev.Type != medpay.CashEventRefunded || ev.Refund == nil || ev.Refund.OutRefundNo != "REFUND-1" ||
			ev.Refund.RefundID != r1.RefundID || ev.Refund.Amount != 300 || ev.Refund.Status != medpay.CashRefundSuccess {
			t.Fatalf("refund callback %+v %+v", ev, ev.Refund)
		}
		if got, err := b.client.QueryRefund(ctx, "REFUND-1"); err != nil || got.RefundID != r1.RefundID || got.Amount != 300 || got.SucceededAt.IsZero() {
			t.Fatalf("refund query: %+v, %v", got, err)
		}
		again, err := b.client.Refund(ctx, medpay.CashRefundRequest{OutTradeNo: "ORDER-0001", OutRefundNo: "REFUND-1", Amount: 300, Total: 1000, Reason: "部分退费"})
		if err != nil || again.RefundID != r1.RefundID {
			t.Fatalf("repeated refund: %+v, %v", again, err)
		}
		var apiErr *apiv3.Error
		_, err = b.client.Refund(ctx, medpay.CashRefundRequest{OutTradeNo: "ORDER-0001", OutRefundNo: "REFUND-1", Amount: 301, Total: 1000})
		if !errors.As(err, &apiErr) || apiErr.Code != apiv3.CodeInvalidRequest {
			t.Fatalf("refund number reused for another amount: %v", err)
		}
		_, err = b.client.Refund(ctx, medpay.CashRefundRequest{OutTradeNo: "ORDER-0001", OutRefundNo: "REFUND-2", Amount: 701, Total: 1000})
		if !errors.As(err, &apiErr) || apiErr.Code != apiv3.CodeInvalidRequest {
			t.Fatalf("refund above what is left: %v", err)
		}
		if r2, err := b.client.Refund(ctx, medpay.CashRefundRequest{OutTradeNo: "ORDER-0001", OutRefundNo: "REFUND-2", Amount: 700, Total: 1000}); err != nil || r2.Status != medpay.CashRefundSuccess {
			t.Fatalf("refund of the rest: %+v, %v", r2, err)
		}
		if ev := b.recv.event(t); ev.Refund == nil || ev.Refund.OutRefundNo != "REFUND-2" || ev.Refund.Amount != 700 {
			t.Fatalf("second refund callback %+v", ev)
		}
		if _, err := b.client.Refund(ctx, medpay.CashRefundRequest{OutTradeNo: "ORDER-0001", OutRefundNo: "REFUND-3", Amount: 1, Total: 1000}); !errors.As(err, &apiErr) {
			t.Fatalf("refund of a fully refunded order: %v", err)
		}
		if q, err := b.client.QueryPayment(ctx, "ORDER-0001"); err != nil || q.State != medpay.CashRefunded || !q.Paid() {
			t.Fatalf("query after refunds: %+v, %v", q, err)
		}
		if got := b.balance(t, "payer-1"); got != start {
			t.Fatalf("balance after refunds %d, want %d", got, start)
		}
		if _, err := b.client.QueryRefund(ctx, "REFUND-9"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("unknown refund: %v", err)
		}
		if _, err := b.client.QueryPayment(ctx, "ORDER-9999"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("unknown order: %v", err)
		}
		if n := b.recv.refused.Load(); n != 0 {
			t.Fatalf("the receiver refused %d callbacks of the channel", n)
		}
	})
}

func TestPrepayIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.SQLite, options{})
	p1 := b.prepay(t, "ORDER-IDEM", "payer-2", 500)
	p2 := b.prepay(t, "ORDER-IDEM", "payer-2", 500)
	if p1.PrepayID != p2.PrepayID {
		t.Fatalf("same order, prepay ids %s and %s", p1.PrepayID, p2.PrepayID)
	}
	_, err := b.client.Prepay(context.Background(), medpay.CashPrepayRequest{OutTradeNo: "ORDER-IDEM", AppID: appID,
		OpenID: "payer-2", Description: "门诊缴费", NotifyURL: b.recv.URL, Amount: 501})
	var apiErr *apiv3.Error
	if !errors.Is(err, medpay.ErrConflict) || !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Code != apiv3.CodeInvalidRequest {
		t.Fatalf("same number, other amount: %v", err)
	}
	// Field checks answer PARAM_ERROR naming the field.
	_, err = b.client.Prepay(context.Background(), medpay.CashPrepayRequest{OutTradeNo: "short", AppID: appID,
		OpenID: "payer-2", Description: "x", NotifyURL: b.recv.URL, Amount: 1})
	if !errors.As(err, &apiErr) || apiErr.Code != apiv3.CodeParamError || apiErr.Detail == nil || apiErr.Detail.Field != "out_trade_no" {
		t.Fatalf("short out_trade_no: %v", err)
	}
}

func TestNativeCloseAndPaidClose(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.SQLite, options{})
	ctx := context.Background()
	n := b.prepay(t, "ORDER-NATIVE", "", 800)
	if !strings.HasPrefix(n.CodeURL, "weixin://wxpay/bizpayurl?pr=") || n.PrepayID != "" {
		t.Fatalf("native prepay %+v", n)
	}
	if err := b.client.Close(ctx, "ORDER-NATIVE"); err != nil {
		t.Fatal(err)
	}
	if err := b.client.Close(ctx, "ORDER-NATIVE"); err != nil {
		t.Fatalf("closing twice: %v", err)
	}
	if q, err := b.client.QueryPayment(ctx, "ORDER-NATIVE"); err != nil || q.State != medpay.CashClosed {
		t.Fatalf("closed order: %+v, %v", q, err)
	}
	status, out := b.sandbox(t, "/sandbox/pay", map[string]string{"code_url": n.CodeURL, "openid": "scanner", "pin": cash.DefaultPIN})
	if status != 400 || out["code"] != cash.PayClosed {
		t.Fatalf("paying a closed order: %d %v", status, out)
	}
	// A native order is paid by whoever scans it.
	n2 := b.prepay(t, "ORDER-NATIVE2", "", 800)
	status, out = b.sandbox(t, "/sandbox/pay", map[string]string{"code_url": n2.CodeURL, "openid": "scanner", "pin": cash.DefaultPIN})
	if status != 200 || out["trade_state"] != "SUCCESS" {
		t.Fatalf("paying a native order: %d %v", status, out)
	}
	if ev := b.recv.event(t); ev.Payment == nil || ev.Payment.OutTradeNo != "ORDER-NATIVE2" || ev.Payment.OpenID != "scanner" {
		t.Fatalf("native callback %+v", ev)
	}
	if q, err := b.client.QueryPayment(ctx, "ORDER-NATIVE2"); err != nil || q.State != medpay.CashPaid || q.OpenID != "scanner" {
		t.Fatalf("native order paid: %+v, %v", q, err)
	}
	if err := b.client.Close(ctx, "ORDER-NATIVE2"); !errors.Is(err, medpay.ErrConflict) {
		t.Fatalf("closing a paid order: %v", err)
	}
	if err := b.client.Close(ctx, "ORDER-NONE00"); !errors.Is(err, medpay.ErrNotFound) {
		t.Fatalf("closing an unknown order: %v", err)
	}
}

func TestDeclinedPayer(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.SQLite, options{})
	if status, _ := b.sandbox(t, "/sandbox/wallets", map[string]any{"appid": appID, "openid": "declined", "declining": true}); status != 200 {
		t.Fatal(status)
	}
	p := b.prepay(t, "ORDER-DECL", "declined", 100)
	status, out := b.pay(t, p.PrepayID, cash.DefaultPIN)
	if status != 402 || out["code"] != cash.PayDeclined {
		t.Fatalf("declined payer: %d %v", status, out)
	}
	if q, err := b.client.QueryPayment(context.Background(), "ORDER-DECL"); err != nil || q.State != medpay.CashNotPaid {
		t.Fatalf("after the decline: %+v, %v", q, err)
	}
	// Short of money declines the same way, and a wallet topped up pays.
	b.sandbox(t, "/sandbox/wallets", map[string]any{"appid": appID, "openid": "declined", "declining": false, "balance": 99})
	if status, out := b.pay(t, p.PrepayID, cash.DefaultPIN); status != 402 {
		t.Fatalf("short of money: %d %v", status, out)
	}
	b.sandbox(t, "/sandbox/wallets", map[string]any{"appid": appID, "openid": "declined", "balance": 100})
	if status, out := b.pay(t, p.PrepayID, cash.DefaultPIN); status != 200 {
		t.Fatalf("topped up: %d %v", status, out)
	}
	if got := b.balance(t, "declined"); got != 0 {
		t.Fatalf("balance %d", got)
	}
}

func TestLostAnswersThenQuery(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine, options{})
		ctx := context.Background()
		b.sandbox(t, "/sandbox/wallets", map[string]any{"appid": appID, "openid": "unlucky", "lose_answers": true})
		start := b.balance(t, "unlucky")
		req := medpay.CashPrepayRequest{OutTradeNo: "ORDER-LOST", AppID: appID, OpenID: "unlucky", Description: "住院预交金",
			NotifyURL: b.recv.URL, Amount: 2000}
		_, err := b.client.Prepay(ctx, req)
		if !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("lost prepay answer: %v", err)
		}
		// The query tells: the order exists; asking again answers it.
		if q, err := b.client.QueryPayment(ctx, "ORDER-LOST"); err != nil || q.State != medpay.CashNotPaid {
			t.Fatalf("query after the lost answer: %+v, %v", q, err)
		}
		p, err := b.client.Prepay(ctx, req)
		if err != nil || p.PrepayID == "" {
			t.Fatalf("prepay again: %+v, %v", p, err)
		}
		if status, out := b.pay(t, p.PrepayID, cash.DefaultPIN); status != 200 {
			t.Fatalf("pay: %d %v", status, out)
		}
		b.recv.event(t)
		rr := medpay.CashRefundRequest{OutTradeNo: "ORDER-LOST", OutRefundNo: "REFUND-LOST", Amount: 2000, Total: 2000}
		if _, err := b.client.Refund(ctx, rr); !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("lost refund answer: %v", err)
		}
		got, err := b.client.QueryRefund(ctx, "REFUND-LOST")
		if err != nil || got.Status != medpay.CashRefundSuccess || got.Amount != 2000 {
			t.Fatalf("refund query after the lost answer: %+v, %v", got, err)
		}
		again, err := b.client.Refund(ctx, rr)
		if err != nil || again.RefundID != got.RefundID {
			t.Fatalf("refund again: %+v, %v", again, err)
		}
		if ev := b.recv.event(t); ev.Refund == nil || ev.Refund.RefundID != got.RefundID {
			t.Fatalf("refund callback %+v", ev)
		}
		if bal := b.balance(t, "unlucky"); bal != start {
			t.Fatalf("balance %d after paying and refunding once, want %d", bal, start)
		}
	})
}

// recorder keeps the last request the client sent, with its body.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	req  *http.Request
	body []byte
	// edit, when set, changes each answer before the client reads it.
	edit func(body []byte) []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.req, r.body = req.Clone(context.Background()), body
	edit := r.edit
	r.mu.Unlock()
	resp, err := r.next.RoundTrip(req)
	if err != nil || edit == nil {
		return resp, err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	answer = edit(answer)
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	resp.ContentLength = int64(len(answer))
	return resp, nil
}

func TestReplayedRequestRefused(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	b := setup(t, sqlstore.SQLite, options{transport: func(n http.RoundTripper) http.RoundTripper { rec.next = n; return rec }})
	b.prepay(t, "ORDER-REPLAY", "payer-3", 100)
	rec.mu.Lock()
	replay := rec.req.Clone(context.Background())
	replay.Body = io.NopCloser(bytes.NewReader(rec.body))
	rec.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(replay)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiv3.Error
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 401 || e.Code != apiv3.CodeSignError {
		t.Fatalf("replayed request: %d %+v", resp.StatusCode, e)
	}
}

func TestTamperedAnswerRefused(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	b := setup(t, sqlstore.SQLite, options{transport: func(n http.RoundTripper) http.RoundTripper { rec.next = n; return rec }})
	p := b.prepay(t, "ORDER-TAMPER", "payer-4", 100)
	b.pay(t, p.PrepayID, cash.DefaultPIN)
	rec.mu.Lock()
	rec.edit = func(body []byte) []byte { return bytes.Replace(body, []byte(`"SUCCESS"`), []byte(`"NOTPAY"`), 1) }
	rec.mu.Unlock()
	if q, err := b.client.QueryPayment(context.Background(), "ORDER-TAMPER"); !errors.Is(err, medpay.ErrOutcomeUnknown) || !errors.Is(err, apiv3.ErrUnverified) {
		t.Fatalf("tampered answer: %+v, %v", q, err)
	}
	// A client trusting another channel key refuses the genuine answer too.
	rec.mu.Lock()
	rec.edit = nil
	rec.mu.Unlock()
	other, _ := apiv3.GenerateKey()
	cfg := b.cfg
	cfg.PlatformKey = &other.PublicKey
	c, err := wxpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.QueryPayment(context.Background(), "ORDER-TAMPER"); !errors.Is(err, apiv3.ErrUnverified) {
		t.Fatalf("answer under another key: %v", err)
	}
}

func TestSignatureProbesRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.SQLite, options{noWorker: true})
	ctx := context.Background()
	// A probe to the platform's notify URL: a correctly shaped callback whose signature starts
	// with the probe prefix.
	key, _ := apiv3.GenerateKey()
	n, err := apiv3.NewNotification([]byte(b.creds.APIv3Key), "PROBE-1", apiv3.EventTransactionSuccess, "支付成功",
		apiv3.OriginalTypeTransaction, time.Now(), []byte(`{"mchid":"`+b.creds.MchID+`","out_trade_no":"X","trade_state":"SUCCESS"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, h, err := (&apiv3.Signer{Key: key, Serial: b.creds.PlatformPublicKeyID}).BuildCallback(n)
	if err != nil {
		t.Fatal(err)
	}
	h.Set(apiv3.HeaderSignature, apiv3.ProbePrefix+h.Get(apiv3.HeaderSignature))
	req, _ := http.NewRequest("POST", b.recv.URL, bytes.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var fail map[string]string
	json.NewDecoder(resp.Body).Decode(&fail)
	resp.Body.Close()
	if resp.StatusCode != 400 || fail["code"] != "FAIL" || b.recv.refused.Load() != 1 {
		t.Fatalf("probe to the notify URL: %d %v", resp.StatusCode, fail)
	}
	if _, err := b.client.ParseCallback(ctx, h, body); !errors.Is(err, apiv3.ErrSignature) {
		t.Fatalf("probe parsed: %v", err)
	}
	// A probe to the channel: an Authorization whose signature carries the prefix.
	req, _ = http.NewRequest("GET", b.base+apiv3.PathByOutTrade+"X?mchid="+b.creds.MchID, nil)
	a := apiv3.Authorization{MchID: b.creds.MchID, NonceStr: apiv3.Nonce(), Timestamp: apiv3.Timestamp(time.Now()),
		SerialNo: b.creds.MerchantSerialNo, Signature: apiv3.ProbePrefix + "AAAA"}
	req.Header.Set("Authorization", a.String())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("probe to the channel answered %d", resp.StatusCode)
	}
}

func TestCallbacksRetriedUntilAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.SQLite, options{noWorker: true})
	ctx := context.Background()
	b.recv.failNext.Store(2)
	p := b.prepay(t, "ORDER-RETRY", "payer-5", 100)
	b.pay(t, p.PrepayID, cash.DefaultPIN)
	for i, gap := range []time.Duration{0, 15 * time.Second, 15 * time.Second} {
		b.offset.Add(int64(gap / time.Second))
		// Just before the gap ends nothing is due.
		if i > 0 {
			if n, err := b.ch.DeliverOnce(ctx, b.now().Add(-2*time.Second)); err != nil || n != 0 {
				t.Fatalf("attempt %d early: %d, %v", i+1, n, err)
			}
		}
		n, err := b.ch.DeliverOnce(ctx, b.now())
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[i == 2]; n != want {
			t.Fatalf("attempt %d delivered %d, want %d", i+1, n, want)
		}
	}
	ev := b.recv.event(t)
	if ev.Payment == nil || ev.Payment.OutTradeNo != "ORDER-RETRY" {
		t.Fatalf("callback %+v", ev)
	}
	if n, _ := b.ch.DeliverOnce(ctx, b.now().Add(time.Hour)); n != 0 {
		t.Fatalf("delivered again after acceptance: %d", n)
	}
}

func TestExpiredPrepayCannotBePaid(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.SQLite, options{noWorker: true})
	p := b.prepay(t, "ORDER-EXPIRE", "payer-7", 100)
	b.offset.Add(int64((cash.PrepayLifetime + time.Second) / time.Second))
	if status, out := b.pay(t, p.PrepayID, cash.DefaultPIN); status != 400 || out["code"] != cash.PayExpired {
		t.Fatalf("paying after the prepay expired: %d %v", status, out)
	}
	if q, err := b.client.QueryPayment(context.Background(), "ORDER-EXPIRE"); err != nil || q.State != medpay.CashNotPaid {
		t.Fatalf("query: %+v, %v", q, err)
	}
}

// TestSlowNotifyURLDoesNotHoldOthersUp: a notify URL that does not answer does not delay the
// callback of another order in the same batch.
func TestSlowNotifyURLDoesNotHoldOthersUp(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.SQLite, options{noWorker: true, callbackTimeout: time.Hour})
	ctx := context.Background()
	release := make(chan struct{}) // the slow URL answers 500 once the fast callback arrived
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(slow.Close)
	p1, err := b.client.Prepay(ctx, medpay.CashPrepayRequest{OutTradeNo: "ORDER-SLOW", AppID: appID, OpenID: "slow",
		Description: "门诊缴费", NotifyURL: slow.URL + "/notify", Amount: 100})
	if err != nil {
		t.Fatal(err)
	}
	p2 := b.prepay(t, "ORDER-FAST", "fast", 100)
	b.pay(t, p1.PrepayID, cash.DefaultPIN)
	b.pay(t, p2.PrepayID, cash.DefaultPIN)
	done := make(chan int)
	go func() {
		n, _ := b.ch.DeliverOnce(ctx, b.now())
		done <- n
	}()
	// The fast order's callback arrives while the slow one still hangs.
	if ev := b.recv.event(t); ev.Payment == nil || ev.Payment.OutTradeNo != "ORDER-FAST" {
		t.Fatalf("callback %+v", ev)
	}
	close(release)
	if n := <-done; n != 1 {
		t.Fatalf("delivered %d, want 1 (the slow one failed)", n)
	}
}

func TestSandboxWalletChecksItsInput(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.SQLite, options{noWorker: true})
	for _, body := range []any{
		map[string]any{"openid": "x"},
		map[string]any{"appid": appID, "openid": "x", "balance": -1},
		"not an object",
	} {
		if status, out := b.sandbox(t, "/sandbox/wallets", body); status != 400 || out["code"] != "PARAM_ERROR" {
			t.Errorf("%v: %d %v", body, status, out)
		}
	}
	if status, out := b.sandbox(t, "/sandbox/pay", map[string]string{"prepay_id": "wx-none", "pin": cash.DefaultPIN}); status != 404 || out["code"] != cash.PayNotFound {
		t.Errorf("paying an unknown prepay: %d %v", status, out)
	}
}
