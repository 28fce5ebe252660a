package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
	"github.com/medpay/medpay/wxpay"
)

// startProc starts the binary with args and waits until health answers 200.
func startProc(t *testing.T, health string, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, nil, health, args...)
}

// startProcEnv is startProc with extra environment.
func startProcEnv(t *testing.T, env []string, health string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if testing.Verbose() {
				t.Log(sc.Text())
			}
		}
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%v exited before serving: %v", args, p.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%v did not become healthy", args)
	return nil
}

// cashMerchant provisions a merchant at the channel's database through the binary.
func cashMerchant(t *testing.T, db string, flags ...string) *cash.MerchantCredentials {
	t.Helper()
	out, err := exec.Command(binary(t), append([]string{"cash", "merchant", "create", "--db", db, "--json"}, flags...)...).Output()
	if err != nil {
		t.Fatalf("cash merchant create: %v", err)
	}
	var cr cash.MerchantCredentials
	if err := json.Unmarshal(out, &cr); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return &cr
}

func cashClient(t *testing.T, cr *cash.MerchantCredentials, base string) *wxpay.Client {
	t.Helper()
	priv, err := apiv3.ParsePrivateKey([]byte(cr.MerchantPrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := apiv3.ParsePublicKey([]byte(cr.PlatformPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	c, err := wxpay.New(wxpay.Config{BaseURL: base, MchID: cr.MchID, SerialNo: cr.MerchantSerialNo, PrivateKey: priv,
		APIv3Key: []byte(cr.APIv3Key), PlatformKey: pub, PlatformKeyID: cr.PlatformPublicKeyID, CashierURL: base + "/cashier",
		HTTP: &http.Client{Timeout: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// callbacks is the platform's notify URL for cash callbacks: it verifies each with the client and
// keeps the events by id (a redelivered event must not differ).
type callbacks struct {
	URL    string
	mu     sync.Mutex
	byID   map[string]*medpay.CashEvent
	paid   map[string]bool // out_trade_no
	refund map[string]bool // out_refund_no
	signal chan struct{}
	bad    []string
}

func newCallbacks(t *testing.T, c *wxpay.Client) *callbacks {
	cb := &callbacks{byID: map[string]*medpay.CashEvent{}, paid: map[string]bool{}, refund: map[string]bool{}, signal: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := c.ParseCallback(r.Context(), r.Header, body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			w.Write(apiv3.CallbackFail(err.Error()))
			return
		}
		cb.mu.Lock()
		if prev, ok := cb.byID[ev.ID]; ok {
			if fmt.Sprint(prev.Payment, prev.Refund) != fmt.Sprint(ev.Payment, ev.Refund) {
				cb.bad = append(cb.bad, ev.ID)
			}
		}
		cb.byID[ev.ID] = ev
		if ev.Payment != nil {
			cb.paid[ev.Payment.OutTradeNo] = true
		}
		if ev.Refund != nil {
			cb.refund[ev.Refund.OutRefundNo] = true
		}
		cb.mu.Unlock()
		select {
		case cb.signal <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	cb.URL = srv.URL + "/cash-notify"
	return cb
}

// waitFor waits, on each callback, until cond holds.
func (cb *callbacks) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for {
		cb.mu.Lock()
		ok := cond()
		cb.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-cb.signal:
		case <-time.After(90 * time.Second): // a failsafe, not a timing assertion
			t.Fatalf("still waiting for %s", what)
		}
	}
}

func postJSONTo(t *testing.T, url string, in any) (int, map[string]any, error) {
	body, _ := json.Marshal(in)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

func TestCashMerchantCreateJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "cash.db")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"cash", "merchant", "create", "--db", db, "--json"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	var m map[string]string
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mchid", "apiv3_key", "merchant_serial_no", "merchant_private_key", "platform_public_key", "platform_public_key_id"} {
		if m[k] == "" {
			t.Errorf("no %s in %s", k, out.String())
		}
	}
	if len(m["apiv3_key"]) != 32 || !strings.HasPrefix(m["platform_public_key_id"], "PUB_KEY_ID_") || len(m["mchid"]) != 10 {
		t.Errorf("credentials %v", m)
	}
	priv, err := apiv3.ParsePrivateKey([]byte(m["merchant_private_key"]))
	if err != nil {
		t.Fatal(err)
	}
	if cash.SerialNo(&priv.PublicKey) != m["merchant_serial_no"] {
		t.Error("the serial number does not name the printed key")
	}
	// With the merchant's own public key no private key is printed.
	pem := filepath.Join(dir, "merchant.pem")
	os.WriteFile(pem, []byte(apiv3.EncodePublicKey(&priv.PublicKey)), 0o600)
	out.Reset()
	if err := run(context.Background(), []string{"cash", "merchant", "create", "--db", db, "--json", "--public-key", pem, "--mchid", "1234567890"},
		func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	var m2 map[string]string
	json.Unmarshal(out.Bytes(), &m2)
	if _, ok := m2["merchant_private_key"]; ok || m2["mchid"] != "1234567890" || m2["merchant_serial_no"] != m["merchant_serial_no"] ||
		m2["platform_public_key_id"] != m["platform_public_key_id"] {
		t.Errorf("with --public-key: %v", m2)
	}
}

func TestServeChecksCashFlags(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"serve", "--db", filepath.Join(t.TempDir(), "m.db"), "--cash-url", "https://api.mch.weixin.qq.com", "--cash-mchid", "1900000001"},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--cash-apiv3-key-file") || !strings.Contains(err.Error(), "--cash-public-key-id") {
		t.Fatalf("incomplete cash flags: %v", err)
	}
	err = run(context.Background(), []string{"serve", "--db", filepath.Join(t.TempDir(), "m.db")},
		func(k string) string { return map[string]string{"MEDPAY_CASH_MCHID": "1900000001"}[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "without --cash-url") {
		t.Fatalf("cash flag without --cash-url: %v", err)
	}
}

// TestSandboxServeMountsCashChannel pays through the channel mounted at <base-url>/cash.
func TestSandboxServeMountsCashChannel(t *testing.T) {
	// Not parallel: see TestKillCashServe.
	db := filepath.Join(t.TempDir(), "medpay.db")
	addr := freeAddr(t)
	startProc(t, "http://"+addr+"/cash/healthz", "serve", "--db", db, "--addr", addr)
	cr := cashMerchant(t, db)
	base := "http://" + addr + "/cash"
	c := cashClient(t, cr, base)
	cb := newCallbacks(t, c)
	ctx := context.Background()
	p, err := c.Prepay(ctx, medpay.CashPrepayRequest{OutTradeNo: "MOUNT-0001", AppID: "wxapp", OpenID: "mounted", Description: "挂号费", NotifyURL: cb.URL, Amount: 1200})
	if err != nil {
		t.Fatal(err)
	}
	if status, out, err := postJSONTo(t, base+"/sandbox/pay", map[string]string{"prepay_id": p.PrepayID, "pin": cash.DefaultPIN}); err != nil || status != 200 {
		t.Fatalf("pay: %d %v %v", status, out, err)
	}
	cb.waitFor(t, "the payment callback", func() bool { return cb.paid["MOUNT-0001"] })
	if q, err := c.QueryPayment(ctx, "MOUNT-0001"); err != nil || q.State != medpay.CashPaid {
		t.Fatalf("query: %+v, %v", q, err)
	}

	// The sandbox scenarios reach the mounted channel: a cash_declined person bound on the
	// platform has a wallet that declines.
	h := onboard(t, db)
	resp, err := http.Get("http://" + addr + "/sandbox/persons?city_id=440300&scenario=cash_declined")
	if err != nil {
		t.Fatal(err)
	}
	var persons []struct {
		IDNo string `json:"id_no"`
	}
	json.NewDecoder(resp.Body).Decode(&persons)
	resp.Body.Close()
	if len(persons) == 0 {
		t.Fatal("no cash_declined person in 440300")
	}
	if status, out, err := postJSONTo(t, "http://"+addr+"/sandbox/bindings", map[string]string{"appid": h.AppID, "openid": "declined", "id_no": persons[0].IDNo}); err != nil || status != 200 {
		t.Fatalf("bind: %d %v %v", status, out, err)
	}
	p, err = c.Prepay(ctx, medpay.CashPrepayRequest{OutTradeNo: "MOUNT-0002", AppID: h.AppID, OpenID: "declined", Description: "挂号费", NotifyURL: cb.URL, Amount: 1200})
	if err != nil {
		t.Fatal(err)
	}
	if status, out, err := postJSONTo(t, base+"/sandbox/pay", map[string]string{"prepay_id": p.PrepayID, "pin": cash.DefaultPIN}); err != nil || status != 402 || out["code"] != cash.PayDeclined {
		t.Fatalf("declined payer: %d %v %v", status, out, err)
	}
	if q, err := c.QueryPayment(ctx, "MOUNT-0002"); err != nil || q.State != medpay.CashNotPaid {
		t.Fatalf("query after the decline: %+v, %v", q, err)
	}
}

// TestKillCashServe kills medpay cash serve with SIGKILL while payers pay and refunds run,
// restarts it and finishes every order: nothing is paid or refunded twice, and every callback
// arrives. On each engine.
func TestKillCashServe(t *testing.T) {
	// Not parallel with the other tests of the package: its processes would load the machine
	// under TestTwoProcessesShareNotifications, whose first seconds are a timing window.
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			killCashServe(t, sqlstoretest.DSN(t, engine))
		})
	}
}

func killCashServe(t *testing.T, db string) {
	keyFlag := []string{"--server-key", fmt.Sprintf("%064x", time.Now().UnixNano())}
	addr := freeAddr(t)
	base := "http://" + addr
	serveArgs := append([]string{"cash", "serve", "--db", db, "--addr", addr}, keyFlag...)
	p := startProc(t, base+"/healthz", serveArgs...)
	cr := cashMerchant(t, db, keyFlag...) // while the channel serves
	c := cashClient(t, cr, base)
	cb := newCallbacks(t, c)
	ctx := context.Background()

	const orders = 12
	total := func(i int) int64 { return int64(1000 + 100*i) }
	out := func(i int) string { return fmt.Sprintf("KILL-%04d", i) }
	refundNo := func(i int) string { return fmt.Sprintf("KILL-R-%04d", i) }
	req := func(i int) medpay.CashPrepayRequest {
		return medpay.CashPrepayRequest{OutTradeNo: out(i), AppID: "wxapp", OpenID: fmt.Sprintf("payer-%d", i),
			Description: "门诊缴费", NotifyURL: cb.URL, Amount: total(i)}
	}
	refundReq := func(i int) medpay.CashRefundRequest {
		return medpay.CashRefundRequest{OutTradeNo: out(i), OutRefundNo: refundNo(i), Amount: total(i) / 2, Total: total(i)}
	}
	prepays := make([]string, orders)
	for i := range orders {
		pp, err := c.Prepay(ctx, req(i))
		if err != nil {
			t.Fatal(err)
		}
		prepays[i] = pp.PrepayID
	}

	// Payers pay and the platform refunds half, from two workers, until the channel dies.
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < orders; i += 2 {
				status, _, err := postJSONTo(t, base+"/sandbox/pay", map[string]string{"prepay_id": prepays[i], "pin": cash.DefaultPIN})
				if err != nil || status != 200 {
					return // the channel died
				}
				if _, err := c.Refund(ctx, refundReq(i)); err != nil {
					return
				}
			}
		})
	}
	cb.waitFor(t, "a few callbacks before the kill", func() bool { return len(cb.byID) >= 3 })
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.waitKilled(t)
	wg.Wait()

	startProc(t, base+"/healthz", serveArgs...)
	unpaid, unrefunded := 0, 0
	defer func() { t.Logf("after the kill: %d orders unpaid, %d paid but not refunded", unpaid, unrefunded) }()
	for i := range orders {
		// The platform asks again with the same numbers; the payer pays what is still unpaid.
		pp, err := c.Prepay(ctx, req(i))
		if err != nil || pp.PrepayID != prepays[i] {
			t.Fatalf("prepay %d again: %+v, %v", i, pp, err)
		}
		q, err := c.QueryPayment(ctx, out(i))
		if err != nil {
			t.Fatal(err)
		}
		switch q.State {
		case medpay.CashPaid:
			unrefunded++
		case medpay.CashNotPaid:
			unpaid++
		}
		if q.State == medpay.CashNotPaid {
			if status, o, err := postJSONTo(t, base+"/sandbox/pay", map[string]string{"prepay_id": prepays[i], "pin": cash.DefaultPIN}); err != nil || status != 200 {
				t.Fatalf("pay %d after restart: %d %v %v", i, status, o, err)
			}
		}
		r, err := c.Refund(ctx, refundReq(i))
		if err != nil || r.Status != medpay.CashRefundSuccess || r.Amount != total(i)/2 {
			t.Fatalf("refund %d after restart: %+v, %v", i, r, err)
		}
		if q, err := c.QueryPayment(ctx, out(i)); err != nil || q.State != medpay.CashRefunded || q.Amount != total(i) {
			t.Fatalf("order %d: %+v, %v", i, q, err)
		}
	}
	cb.waitFor(t, "every callback", func() bool { return len(cb.paid) == orders && len(cb.refund) == orders })
	cb.mu.Lock()
	bad := cb.bad
	cb.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("redelivered events differ: %v", bad)
	}
	for i := range orders {
		status, o, err := postJSONTo(t, base+"/sandbox/wallets", map[string]string{"appid": "wxapp", "openid": fmt.Sprintf("payer-%d", i)})
		if err != nil || status != 200 {
			t.Fatal(status, err)
		}
		if got, want := int64(o["balance"].(float64)), cash.DefaultBalance-total(i)+total(i)/2; got != want {
			t.Errorf("payer %d: balance %d, want %d (paid once, refunded once)", i, got, want)
		}
	}
	var apiErr *apiv3.Error
	if _, err := c.Refund(ctx, medpay.CashRefundRequest{OutTradeNo: out(0), OutRefundNo: "KILL-R-MORE", Amount: total(0)/2 + 1, Total: total(0)}); !errors.As(err, &apiErr) {
		t.Fatalf("refund above what was paid: %v", err)
	}
}

// TestProductionMountsNoCashChannel: outside the sandbox there is no simulated channel to reach.
func TestProductionMountsNoCashChannel(t *testing.T) {
	// Not parallel: see TestKillCashServe.
	env := counterparties(t)
	addr := freeAddr(t)
	startProcEnv(t, env, "http://"+addr+"/healthz", "serve", "--db", filepath.Join(t.TempDir(), "medpay.db"), "--addr", addr, "--sandbox=false")
	for _, c := range []struct{ method, path string }{{"GET", "/cash/healthz"}, {"POST", "/cash/sandbox/pay"}, {"POST", "/cash" + apiv3.PathJSAPI}} {
		req, _ := http.NewRequest(c.method, "http://"+addr+c.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s answered %d in production mode", c.method, c.path, resp.StatusCode)
		}
	}
}
