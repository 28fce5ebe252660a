package medins_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/bureau/bureautest"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/hsa"
	"github.com/medpay/medpay/medins"
	"github.com/medpay/medpay/national"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// env is a platform serving /v3/ over real HTTP, a bureau served over HTTP where the tests act
// as the hospital's HIS (6201 with its own institution's envelope client), the payer's wallet,
// the outbox worker, and a hospital endpoint receiving callbacks.
type env struct {
	store    *sqlstore.Store
	url      string
	h        *medins.Handler
	bureau   *bureautest.Served
	his      *hsa.Client // the hospital's institution at the bureau
	orgCodg  string
	cash     *cash.Simulator
	worker   *notify.Worker
	received chan callback // callbacks the hospital endpoint verified and opened
	// transactions are the JSAPI orders' TRANSACTION.SUCCESS callbacks it received.
	transactions chan apiv3.Transaction
	hookURL      string
	keys         map[string][]byte // APIv3 keys of the merchants, by mchid, for opening callbacks
	mu           sync.Mutex
	skew         atomic.Int64 // added to the business clock
}

// now is the platform's business clock: real time, moved forward by skew.
func (e *env) now() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }

type callback struct {
	n     *apiv3.Notification
	order medins.Order
}

func newEnv(t *testing.T) *env {
	t.Helper()
	engine := sqlstoretest.Engines()[len(sqlstoretest.Engines())-1]
	db := sqlstoretest.Open(t, engine)
	box, err := secret.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: sqlstore.NewStore(db, box), cash: cash.New(db, time.Now), received: make(chan callback, 16), transactions: make(chan apiv3.Transaction, 16), keys: map[string][]byte{}}
	e.bureau = bureautest.Serve(t, sqlstoretest.Open(t, engine), nil, 200*time.Millisecond)
	ctx := context.Background()
	in, err := e.bureau.Sim.CreateInstitution(ctx, bureau.InstitutionSpec{OrgCodg: "H44030100001", Name: "深圳市人民医院", CityID: "440300", Level: 3})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := hsa.ParsePrivateKey(in.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	bpub, err := hsa.ParsePublicKey(in.BureauPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	e.his = &hsa.Client{BaseURL: e.bureau.URL, AppID: in.AppID, AppSecret: in.AppSecret, PrivateKey: priv, BureauKey: bpub,
		Timeout: 30 * time.Second, HTTP: &http.Client{}}
	e.orgCodg = in.OrgCodg

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewUnstartedServer(nil)
	e.url = "http://" + srv.Listener.Addr().String()
	var h *medins.Handler
	e.worker = notify.NewWorker(db, &http.Client{}, notify.Options{Logger: logger, AllowPrivate: true, Timeout: 5 * time.Second,
		SignV3: func(hd http.Header, body []byte) error { return h.SignCallback(hd, body) }})
	h, err = medins.New(ctx, medins.Config{Store: e.store, Cash: e.cash, BaseURL: e.url, Sandbox: true, Logger: logger, Now: e.now,
		Bureau: func(ctx context.Context, org string) (medpay.Bureau, error) { return e.bureau.Sim.ForOrg(ctx, org) }})
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	mux := http.NewServeMux()
	mux.Handle("/v3/", h)
	mux.Handle("/sandbox/v3/", h)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)

	// The hospital's callback endpoint, verifying as a correct hospital must.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var peek apiv3.Notification
		json.Unmarshal(body, &peek)
		v := &apiv3.AnswerVerifier{Key: h.PlatformPublicKey(), KeyID: h.PlatformKeyID()}
		var opened []byte
		var n *apiv3.Notification
		var err error
		for _, key := range e.allKeys() {
			if n, opened, err = apiv3.ParseCallback(r.Context(), &apiv3.AnswerVerifier{Key: v.Key, KeyID: v.KeyID}, key, r.Header, body); err == nil {
				break
			}
		}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			w.Write(apiv3.CallbackFail(err.Error()))
			return
		}
		if n.EventType == apiv3.EventTransactionSuccess {
			var tx apiv3.Transaction
			json.Unmarshal(opened, &tx)
			e.transactions <- tx
			w.WriteHeader(http.StatusNoContent)
			return
		}
		var o medins.Order
		if err := json.Unmarshal(opened, &o); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		e.received <- callback{n: n, order: o}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	e.hookURL = hook.URL + "/medins/callback"
	return e
}

func (e *env) allKeys() [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out [][]byte
	for _, k := range e.keys {
		out = append(out, k)
	}
	return out
}

// merchant is a merchant provisioned with APIv3 credentials, and its client.
type merchant struct {
	*medpay.Merchant
	client *apiv3.Client
	key    []byte // its APIv3 key
}

func (e *env) merchant(t *testing.T, kind string) *merchant {
	t.Helper()
	ctx := context.Background()
	m := &medpay.Merchant{Kind: kind, Name: "测试" + kind, AppID: "wx" + secret.RandomString(16, "0123456789abcdef"),
		MchID: "19" + secret.RandomString(8, "0123456789"), SecretHash: secret.Hash("x"), APIKey: secret.APIKey(),
		Cities: []string{"440300"}, Level: 3, CreatedAt: time.Now()}
	if err := e.store.CreateMerchant(ctx, m); err != nil {
		t.Fatal(err)
	}
	key, err := apiv3.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v3 := &medpay.MerchantV3{MerchantID: m.ID, SerialNo: secret.RandomString(40, "0123456789ABCDEF"),
		PublicKey: apiv3.EncodePublicKey(&key.PublicKey), APIv3Key: secret.APIKey(), CreatedAt: time.Now()}
	if err := e.store.CreateMerchantV3(ctx, v3); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.keys[m.MchID] = []byte(v3.APIv3Key)
	e.mu.Unlock()
	return &merchant{Merchant: m, key: []byte(v3.APIv3Key), client: &apiv3.Client{BaseURL: e.url, MchID: m.MchID, SerialNo: v3.SerialNo, Key: key,
		Verifier: &apiv3.AnswerVerifier{Key: e.h.PlatformPublicKey(), KeyID: e.h.PlatformKeyID()}}}
}

// upload is the HIS's 6201 for a person of scenario: the payAuthNo (from the bureau's sandbox
// authorisation), the payOrdId and the split in fen.
type upload struct {
	payAuthNo, payOrdID, payToken, idNo string
	fund, acct, own                     int64
}

func (e *env) upload(t *testing.T, scenario, medOrgOrd string, useAcct bool) upload {
	t.Helper()
	p, ok := bureau.FindPerson("440300", scenario)
	if !ok {
		t.Fatalf("no %s person", scenario)
	}
	body, _ := json.Marshal(national.SandboxPayAuthRequest{AppID: e.his.AppID, IDNo: p.IDNo, Scope: medpay.ScopePay})
	resp, err := http.Post(e.bureau.URL+"/sandbox/payauth", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var auth national.SandboxPayAuthAnswer
	json.NewDecoder(resp.Body).Decode(&auth)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || auth.PayAuthNo == "" {
		t.Fatalf("sandbox payauth: %d", resp.StatusCode)
	}
	acct := "0"
	if useAcct {
		acct = "1"
	}
	bill := map[string]any{"payAuthNo": auth.PayAuthNo, "mdtrtId": "MD" + medOrgOrd, "orgCodg": e.orgCodg, "medOrgOrd": medOrgOrd,
		"medType": "11", "insuplcAdmdvs": "440300", "acctUsedFlag": acct, "medfeeSumamt": "65.00",
		"feedetailList": []map[string]any{
			{"feedetlSn": "1", "detItemFeeSumamt": "25.00", "cnt": "1", "pric": "25.00", "medListCodg": "250101001", "medListName": "血常规", "chrgitmLv": "01"},
			{"feedetlSn": "2", "detItemFeeSumamt": "37.00", "cnt": "2", "pric": "18.50", "medListCodg": "86900011", "medListName": "阿莫西林胶囊", "chrgitmLv": "02", "selfpayProp": "0.10"},
			{"feedetlSn": "3", "detItemFeeSumamt": "3.00", "cnt": "1", "pric": "3.00", "medListCodg": "X0001", "medListName": "口罩", "chrgitmLv": "03"},
		}}
	var up map[string]any
	if err := e.his.Call(context.Background(), national.RouteUpload, bill, &up); err != nil {
		t.Fatalf("6201: %v", err)
	}
	fen := func(k string) int64 {
		s, _ := up[k].(string)
		v, err := national.ParseYuan(s)
		if err != nil {
			t.Fatalf("6201 %s=%v: %v", k, up[k], err)
		}
		return v
	}
	return upload{payAuthNo: auth.PayAuthNo, payOrdID: up["payOrdId"].(string), payToken: up["payToken"].(string), idNo: p.IDNo,
		fund: fen("fundPay"), acct: fen("psnAcctPay"), own: fen("ownPayAmt")}
}

// revoke is the HIS's 6401 of its upload.
func (e *env) revoke(t *testing.T, up upload) {
	t.Helper()
	if err := e.his.Call(context.Background(), national.RouteRevoke, map[string]any{"payOrdId": up.payOrdID, "payToken": up.payToken, "orgCodg": e.orgCodg}, nil); err != nil {
		t.Fatalf("6401: %v", err)
	}
}

// prepay places the JSAPI cash order and returns its prepay_id.
func (e *env) prepay(t *testing.T, m *merchant, subMchID, outTradeNo, openid string, amount int64) string {
	t.Helper()
	req := medins.PrepayRequest{PrepayRequest: apiv3.PrepayRequest{AppID: m.AppID, MchID: m.MchID, Description: "门诊缴费",
		OutTradeNo: outTradeNo, NotifyURL: e.hookURL, Amount: apiv3.Amount{Total: amount, Currency: "CNY"}, Payer: &apiv3.Payer{OpenID: openid}},
		SubMchID: subMchID}
	var ans apiv3.PrepayAnswer
	if err := m.client.Do(context.Background(), http.MethodPost, medins.PathJSAPI, req, &ans); err != nil {
		t.Fatalf("jsapi: %v", err)
	}
	return ans.PrepayID
}

// orderFor is a valid order body for an upload (nil: cash only).
func (e *env) orderFor(t *testing.T, m *merchant, mix, outTradeNo, openid string, up *upload, cash int64) medins.OrderRequest {
	t.Helper()
	pub := e.h.PlatformPublicKey()
	name, err := apiv3.EncryptSensitive(pub, "测试人")
	if err != nil {
		t.Fatal(err)
	}
	r := medins.OrderRequest{MixPayType: mix, OrderType: "DIAG_PAY", AppID: m.AppID, OpenID: openid,
		Payer: &medins.Payer{Name: name, CardType: "ID_CARD"}, OutTradeNo: outTradeNo, SerialNo: "SN" + outTradeNo,
		CityID: "440300", MedInstName: "深圳市人民医院", MedInstNo: e.orgCodg,
		MedInsOrderCreateTime: time.Now().Format(time.RFC3339), CallbackURL: e.hookURL, TotalFee: cash}
	if up != nil {
		r.PayOrderID, r.PayAuthNo = up.payOrdID, up.payAuthNo
		r.MedInsGovFee, r.MedInsSelfFee, r.MedInsCashFee = up.fund, up.acct, up.own
		r.TotalFee = up.fund + up.acct + up.own
		r.WechatPayCashFee = up.own
	} else {
		r.MedInsCashFee, r.WechatPayCashFee = cash, cash
	}
	return r
}

func (e *env) createOrder(t *testing.T, m *merchant, r medins.OrderRequest) *medins.Order {
	t.Helper()
	var o medins.Order
	if err := m.client.Do(context.Background(), http.MethodPost, medins.PathOrders, r, &o); err != nil {
		t.Fatalf("order: %v", err)
	}
	return &o
}

// confirm pays an order at the sandbox cashier without a browser.
func (e *env) confirm(t *testing.T, mix, pin string) (int, *medins.Order) {
	t.Helper()
	resp, err := http.Post(e.url+"/sandbox/v3/orders/"+mix+"/confirm", "application/json", bytes.NewReader([]byte(`{"pin":"`+pin+`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o medins.Order
	json.NewDecoder(resp.Body).Decode(&o)
	return resp.StatusCode, &o
}

// deliver runs the outbox once and returns the callback the hospital accepted, if any.
func (e *env) deliver(t *testing.T) *callback {
	t.Helper()
	if _, err := e.worker.RunOnce(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-e.received:
		return &c
	default:
		return nil
	}
}

func (e *env) query(t *testing.T, m *merchant, path string) (*medins.Order, error) {
	t.Helper()
	var o medins.Order
	err := m.client.Do(context.Background(), http.MethodGet, path, nil, &o)
	return &o, err
}

func wantAPIError(t *testing.T, err error, status int, code, part string) {
	t.Helper()
	var ae *apiv3.Error
	if !errors.As(err, &ae) || ae.Status != status || ae.Code != code || !bytes.Contains([]byte(ae.Message), []byte(part)) {
		t.Fatalf("err %v, want %d %s naming %q", err, status, code, part)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
