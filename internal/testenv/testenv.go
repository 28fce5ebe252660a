// Package testenv wires the whole platform for tests: a fresh database, the bureau and cash
// simulators, the payment service, the notification worker and an httptest server running the
// real handlers. Tests meet the system as hospitals do: over HTTP with real signatures.
package testenv

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/bureau/bureautest"
	"github.com/medpay/medpay/cash"
	medpayhttp "github.com/medpay/medpay/http"
	"github.com/medpay/medpay/medins"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
	"github.com/medpay/medpay/wire"
	"github.com/medpay/medpay/wxpay"
)

// Clock is a settable clock shared by every component of an Env.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Env is a running platform.
type Env struct {
	URL    string
	Server *httptest.Server
	DB     *sqlstore.DB
	Store  *sqlstore.Store
	// Bureau is the simulator whose books the tests read (the served one in remote mode, acting
	// for the platform's institution); BureauAPI is what the platform calls.
	Bureau    *bureau.Simulator
	BureauAPI medpay.Bureau
	BureauDB  *sqlstore.DB // the bureau's database (the platform's in process)
	Cash      *cash.Simulator
	// CashChannel is the simulated cash channel over APIv3, served at <URL>/cash, and Gateway the
	// platform's port to it (the payer-driven saga's): Go calls on the channel (*cash.Local), as
	// medpay serve does, or with MEDPAY_TEST_CASH=remote the WeChat Pay v3 client (*wxpay.Client)
	// of the channel served on a database of its own.
	CashChannel *cash.Channel
	Gateway     medpay.CashGateway
	CashBooks   cash.Books // the channel's journal of the platform's payments
	Pay         *payment.Service
	Worker      *notify.Worker
	Clock       *Clock
	Metrics     *prometheus.Registry
	Client      *http.Client
	// V3 serves 医保 2.0 (/v3/); BureauURL is where the bureau is served to hospitals' HIS.
	V3        *medins.Handler
	BureauURL string
}

// BureauEnv selects the bureau of the end-to-end suites: MEDPAY_TEST_BUREAU=remote serves the
// simulated bureau over HTTP and has the platform speak the national protocol to it.
const BureauEnv = "MEDPAY_TEST_BUREAU"

// CashEnv selects the cash channel of the end-to-end suites: MEDPAY_TEST_CASH=remote serves the
// simulated channel over HTTP on a database of its own, the platform reaching it as a WeChat Pay
// v3 merchant across the network.
const CashEnv = "MEDPAY_TEST_CASH"

// RemoteCash reports whether the end-to-end suites run against a cash channel across the network.
func RemoteCash() bool { return os.Getenv(CashEnv) == "remote" }

// Remote reports whether the end-to-end suites run against a bureau across the network.
func Remote() bool { return os.Getenv(BureauEnv) == "remote" }

// RemoteTimeout is the platform's deadline per call to a remote bureau in tests.
const RemoteTimeout = 10 * time.Second

// Options tune an Env.
type Options struct {
	Engine  string // sqlstore.SQLite (default) or sqlstore.Postgres
	Sandbox *bool  // default true
	// Config overrides the server config (BaseURL is always the test server's).
	Config medpayhttp.Config
	// Log receives the platform's JSON logs (discarded by default; shown with -v).
	Log io.Writer
}

// New starts a platform for t, stopped at cleanup.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Engine == "" {
		// MEDPAY_TEST_ENGINE=postgres runs the end-to-end suites on PostgreSQL (with
		// MEDPAY_TEST_POSTGRES naming the server).
		opts.Engine = sqlstore.SQLite
		if os.Getenv("MEDPAY_TEST_ENGINE") == sqlstore.Postgres {
			opts.Engine = sqlstore.Postgres
		}
	}
	db := sqlstoretest.Open(t, opts.Engine)
	box, err := secret.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	clock := &Clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, wire.CST)}
	e := &Env{DB: db, Store: sqlstore.NewStore(db, box), Clock: clock, Metrics: prometheus.NewRegistry()}
	e.Store.Now = clock.Now
	// The bureau: in process, or (MEDPAY_TEST_BUREAU=remote) served over HTTP on a database of
	// its own, the platform talking to it through the national protocol.
	var api medpay.Bureau
	var sandbox medpay.BureauSandbox
	var inProcess *bureau.Simulator
	if Remote() {
		// A bureau_timeout person's answer is held a moment, then its connection dropped: the
		// platform sees no answer as after its deadline, without the suites waiting for it.
		s := bureautest.Serve(t, sqlstoretest.Open(t, opts.Engine), clock.Now, 200*time.Millisecond)
		c := s.Client(t, RemoteTimeout)
		e.Bureau, e.BureauDB, api, sandbox = s.Sim.As(s.Institution.AppID), s.DB, c, c
		e.BureauURL = s.URL
	} else {
		sim, err := bureau.Open(context.Background(), db, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.Seed(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.Bureau, e.BureauDB, api, sandbox = sim, db, sim, sim
		inProcess = sim
	}
	e.BureauAPI = api
	e.Cash = cash.New(db, clock.Now)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.Log != nil {
		logger = slog.New(slog.NewJSONHandler(opts.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e.Worker = notify.NewWorker(db, &http.Client{}, notify.Options{Now: clock.Now, Logger: logger, AllowPrivate: true, Timeout: 2 * time.Second,
		SignV3: func(h http.Header, body []byte) error { return e.V3.SignCallback(h, body) }})
	e.Pay = &payment.Service{Store: e.Store, Bureau: api, Cash: e.Cash, Now: clock.Now, Logger: logger}
	cfg := opts.Config
	cfg.Sandbox = opts.Sandbox == nil || *opts.Sandbox
	if cfg.PayAppID == "" {
		cfg.PayAppID = "wxpaytest"
	}
	srv := httptest.NewUnstartedServer(nil)
	cfg.BaseURL = "http://" + srv.Listener.Addr().String()
	// The cash channel: in process on the platform's database, served at <URL>/cash, or
	// (MEDPAY_TEST_CASH=remote) served over HTTP on a database of its own.
	cashDB, cashBase := db, cfg.BaseURL+"/cash"
	var cashSrv *httptest.Server
	if RemoteCash() {
		cashDB = sqlstoretest.Open(t, opts.Engine)
		cashSrv = httptest.NewUnstartedServer(nil)
		cashBase = "http://" + cashSrv.Listener.Addr().String()
	}
	ch, err := cash.NewChannel(context.Background(), cashDB, box, cash.Options{Now: clock.Now, Logger: logger, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	e.CashChannel = ch
	var cashAPI http.Handler = ch.Handler()
	var wallets medpayhttp.Wallets = e.Cash
	cr, err := ch.CreateMerchant(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cashSrv != nil {
		cashSrv.Config.Handler = ch.Handler()
		cashSrv.Start()
		t.Cleanup(cashSrv.Close)
		e.Cash = cash.New(cashDB, clock.Now) // the wallets the tests read are the channel's
		hc := &http.Client{Timeout: 20 * time.Second}
		cashAPI, wallets, e.Pay.SandboxPay = nil, cash.RemoteWallets{Base: cashBase, HTTP: hc}, cash.RemoteSandboxPay(cashBase, hc)
		e.Gateway = cashClient(t, cr, cashBase, clock.Now)
	} else {
		local, err := ch.Local(context.Background(), cash.LocalConfig{MchID: cr.MchID, PrivateKey: parseKey(t, cr.MerchantPrivateKey),
			CashierURL: cashBase + "/cashier"})
		if err != nil {
			t.Fatal(err)
		}
		local.OnPaid(func(ctx context.Context, p *medpay.CashPayment) {
			if err := e.Pay.CashPaid(ctx, p); err != nil {
				logger.Warn("cash payment left to recovery", "out_trade_no", p.OutTradeNo, "err", err)
			}
		})
		e.Gateway, e.Pay.SandboxPay = local, local.SandboxPay
	}
	e.CashBooks = cash.Books{DB: cashDB, MchID: cr.MchID}
	e.Pay.Gateway, e.Pay.CashNotifyURL = e.Gateway, cfg.BaseURL+"/notify/cash"
	e.Pay.Sandbox = sandbox
	books := e.Bureau
	e.V3, err = medins.New(context.Background(), medins.Config{Store: e.Store, Cash: e.Cash, BaseURL: cfg.BaseURL, Sandbox: cfg.Sandbox,
		Notify: e.Worker.Kick, Logger: logger, Now: clock.Now,
		Bureau: func(ctx context.Context, org string) (medpay.Bureau, error) { return books.ForOrg(ctx, org) }})
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = medpayhttp.NewServer(cfg, medpayhttp.Deps{Store: e.Store, Payment: e.Pay, Bureau: api,
		Sandbox: sandbox, Cities: bureau.CityList(), Cash: wallets, CashBooks: e.CashBooks, CashAPI: cashAPI, V3: e.V3, Logger: logger, Now: clock.Now, Registry: e.Metrics})
	if inProcess != nil {
		// As medpay serve does: the in-process bureau's pages at <base-url>/bureau.
		inProcess.BaseURL = cfg.BaseURL + "/bureau"
		e.BureauURL = inProcess.BaseURL
		bs, err := bureau.NewServer(context.Background(), inProcess, bureau.ServerOptions{Sandbox: cfg.Sandbox, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/bureau/", http.StripPrefix("/bureau", bs))
		mux.Handle("/", handler)
		handler = mux
	}
	srv.Config.Handler = handler
	srv.Start()
	t.Cleanup(srv.Close)
	e.Server, e.URL = srv, srv.URL
	e.Client = srv.Client()
	return e
}

func parseKey(t testing.TB, pemKey string) *rsa.PrivateKey {
	t.Helper()
	k, err := apiv3.ParsePrivateKey([]byte(pemKey))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// cashClient is the platform's WeChat Pay v3 client, as merchant cr, of the channel served at base.
func cashClient(t testing.TB, cr *cash.MerchantCredentials, base string, now func() time.Time) *wxpay.Client {
	t.Helper()
	pub, err := apiv3.ParsePublicKey([]byte(cr.PlatformPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	c, err := wxpay.New(wxpay.Config{BaseURL: base, MchID: cr.MchID, SerialNo: cr.MerchantSerialNo, PrivateKey: parseKey(t, cr.MerchantPrivateKey),
		APIv3Key: []byte(cr.APIv3Key), PlatformKey: pub, PlatformKeyID: cr.PlatformPublicKeyID, CashierURL: base + "/cashier",
		Now: now, HTTP: &http.Client{Timeout: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Merchant is an onboarded institution with its clear credentials.
type Merchant struct {
	*medpay.Merchant
	Secret string
}

// NewMerchant onboards a merchant of kind in cities at level.
func (e *Env) NewMerchant(t testing.TB, kind string, level int, cities ...string) *Merchant {
	t.Helper()
	s := secret.AppSecret()
	m := &medpay.Merchant{
		Kind: kind, Name: "测试" + kind + secret.RandomString(4, "0123456789"),
		AppID: "wx" + secret.RandomString(16, "0123456789abcdef"), MchID: "19" + secret.RandomString(8, "0123456789"),
		SecretHash: secret.Hash(s), APIKey: secret.APIKey(), Cities: cities, Level: level,
		RefundIPs: []string{"127.0.0.1", "::1"}, CreatedAt: e.Clock.Now(),
	}
	if err := e.Store.CreateMerchant(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return &Merchant{Merchant: m, Secret: s}
}

// Hospital onboards a level-3 hospital in 深圳 (440300) and the given extra cities.
func (e *Env) Hospital(t testing.TB, extraCities ...string) *Merchant {
	return e.NewMerchant(t, medpay.KindHospital, 3, append([]string{"440300"}, extraCities...)...)
}

// Token gets an independent-mode access token for m.
func (e *Env) Token(t testing.TB, m *Merchant) string {
	t.Helper()
	resp, err := e.Client.Get(e.URL + "/cgi-bin/token?grant_type=client_credential&appid=" + m.AppID + "&secret=" + m.Secret)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ErrCode     int    `json:"errcode"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token: %v %+v", err, body)
	}
	return body.AccessToken
}

// Post sends raw bytes to an open API path with the token and returns the HTTP response body.
func (e *Env) Post(t testing.TB, path, token string, body []byte) (*http.Response, []byte) {
	t.Helper()
	u := e.URL + path
	if token != "" {
		u += "?access_token=" + url.QueryEscape(token)
	}
	resp, err := e.Client.Post(u, "text/xml", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// Call signs req with key (adding nonce_str unless present) and posts it; it decodes the answer
// and, when return_code is SUCCESS, verifies the answer's signature.
func (e *Env) Call(t testing.TB, path, token, key string, req *wire.Message) *wire.Message {
	t.Helper()
	if !req.Has("nonce_str") {
		req.Set("nonce_str", wire.Nonce())
	}
	if err := wire.SignInPlace(req, key); err != nil {
		t.Fatal(err)
	}
	_, data := e.Post(t, path, token, req.Bytes())
	resp, err := wire.Decode(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("answer is not XML: %v\n%s", err, data)
	}
	if resp.Get("return_code") == "SUCCESS" && !wire.Verify(resp, key) {
		t.Fatalf("answer signature does not verify:\n%s", data)
	}
	return resp
}

// Msg builds a message from name, value pairs.
func Msg(kv ...string) *wire.Message {
	m := wire.NewMessage()
	for i := 0; i+1 < len(kv); i += 2 {
		m.Set(kv[i], kv[i+1])
	}
	return m
}

// OrderRequest is a valid unifiedorder body for m and payer openid; kv override or add fields
// (an empty value removes the field).
func OrderRequest(m *Merchant, openid string, kv ...string) *wire.Message {
	req := Msg(
		"appid", m.AppID, "mch_id", m.MchID, "openid", openid,
		"order_type", "DiagPay", "hosp_out_trade_no", "H"+secret.RandomString(12, "0123456789"),
		"hospital_name", m.Name, "body", "门诊缴费",
		"total_fee", "10000", "cash_fee", "10000", "insurance_fee", "0", "allow_fee_change", "1", "pay_type", "1",
		"spbill_create_ip", "10.1.2.3", "notify_url", "http://127.0.0.1:1/notify",
		"city_id", "440300", "serial_no", "S1", "org_no", "H44030000001", "gmt_out_create", "20260302090000",
	)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			req.Del(kv[i])
		} else {
			req.Set(kv[i], kv[i+1])
		}
	}
	return req
}

// Bind binds the sandbox person of city and scenario to (m.AppID, openid) and returns the person.
func (e *Env) Bind(t testing.TB, m *Merchant, openid, city, scenario string) bureau.Person {
	t.Helper()
	p, ok := bureau.FindPerson(city, scenario)
	if !ok {
		t.Fatalf("no sandbox person %s/%s", city, scenario)
	}
	body := `{"appid":"` + m.AppID + `","openid":"` + openid + `","id_no":"` + p.IDNo + `"}`
	resp, err := e.Client.Post(e.URL+"/sandbox/bindings", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("bind: %d %s", resp.StatusCode, data)
	}
	return p
}

// Confirm confirms an order through the sandbox API with pin and returns the JSON answer.
func (e *Env) Confirm(t testing.TB, medTransID, pin string) (int, map[string]any) {
	t.Helper()
	resp, err := e.Client.Post(e.URL+"/sandbox/orders/"+medTransID+"/confirm", "application/json", strings.NewReader(`{"pin":"`+pin+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}
