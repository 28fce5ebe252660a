package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the medpay command once for the tests that run it as a process.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "medpay-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "medpay")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is a running medpay serve.
type proc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serve starts the binary on db with extra environment and waits until it answers /healthz.
func serve(t *testing.T, db, addr string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--db", db, "--addr", addr)
	cmd.Env = append(append(os.Environ(), remoteEnv(t)...), env...)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, url: "http://" + addr, done: make(chan struct{})}
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
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("medpay exited before serving: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("medpay did not become healthy")
	return nil
}

// waitUntil polls cond until it holds. It fails the test only when cond has not held for two
// minutes: a guard against a hang on a busy machine, not a measure of speed.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitKilled waits for the process to die by SIGKILL.
func (p *proc) waitKilled(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		if p.err == nil || !strings.Contains(p.err.Error(), "killed") {
			t.Fatalf("process ended with %v, want killed", p.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("process was not killed at the fault point")
	}
}

// stop ends the process with SIGTERM (graceful shutdown) and waits.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("graceful shutdown: %v", p.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("no graceful shutdown")
	}
}

// hospitalReceiver is a hospital's notify_url: it verifies each notification with key, passes it
// to accept, and acknowledges it when accept returns true. It returns the URL.
func hospitalReceiver(t *testing.T, key string, accept func(m *wire.Message) bool) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := wire.Decode(r.Body)
		if err != nil || !wire.Verify(m, key) {
			http.Error(w, "bad notification", http.StatusBadRequest)
			return
		}
		if !accept(m) {
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("<xml><return_code>SUCCESS</return_code><return_msg>OK</return_msg></xml>"))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/notify"
}

type creds struct {
	AppID  string `json:"appid"`
	Secret string `json:"secret"`
	MchID  string `json:"mch_id"`
	APIKey string `json:"api_key"`
}

func onboard(t *testing.T, db string, env ...string) creds {
	t.Helper()
	cmd := exec.Command(binary(t), "merchant", "create", "--db", db, "--name", "深圳市人民医院",
		"--city", "440300", "--level", "3", "--refund-ip", "127.0.0.1", "--json")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("merchant create: %v", err)
	}
	var c creds
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func token(t *testing.T, base string, c creds) string {
	t.Helper()
	resp, err := http.Get(base + "/cgi-bin/token?grant_type=client_credential&appid=" + c.AppID + "&secret=" + c.Secret)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return body.AccessToken
}

func postJSON(base, path, body string) (*http.Response, error) {
	return http.Post(base+path, "application/json", strings.NewReader(body))
}

// placeOrder binds the person of scenario to openid and places a mixed order; it returns the
// med_trans_id.
func placeOrder(t *testing.T, base, tok string, c creds, openid, scenario, notifyURL string) string {
	t.Helper()
	p, _ := bureau.FindPerson("440300", scenario)
	resp, err := postJSON(base, "/sandbox/bindings", `{"appid":"`+c.AppID+`","openid":"`+openid+`","id_no":"`+p.IDNo+`"}`)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bind: %v %v", err, resp)
	}
	resp.Body.Close()
	m := wire.NewMessage()
	for _, kv := range [][2]string{{"appid", c.AppID}, {"mch_id", c.MchID}, {"openid", openid}, {"order_type", "DiagPay"},
		{"hosp_out_trade_no", "HIS-" + openid}, {"hospital_name", "深圳市人民医院"}, {"body", "门诊缴费"},
		{"total_fee", "6500"}, {"cash_fee", "2925"}, {"insurance_fee", "3575"}, {"allow_fee_change", "0"}, {"pay_type", "3"},
		{"spbill_create_ip", "127.0.0.1"}, {"notify_url", notifyURL}, {"city_id", "440300"}, {"serial_no", "S1"},
		{"org_no", "H1"}, {"gmt_out_create", "20260302090000"}, {"nonce_str", wire.Nonce()},
		{"request_content", `{"acct_used":false,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`}} {
		m.Set(kv[0], kv[1])
	}
	wire.SignInPlace(m, c.APIKey)
	resp, err = http.Post(base+"/payinsurance/unifiedorder?access_token="+url.QueryEscape(tok), "text/xml", strings.NewReader(string(m.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ans, err := wire.Decode(resp.Body)
	if err != nil || ans.Get("result_code") != "SUCCESS" {
		t.Fatalf("unifiedorder: %v %v %s", err, ans.Keys(), ans.Get("err_code_des")+ans.Get("return_msg"))
	}
	return ans.Get("med_trans_id")
}

// TestKillMidPayment kills the real process with SIGKILL at each point of the payment saga,
// restarts it, and checks that every order ends in a final state with books that balance
// against the bureau's and the cash channel's own records.
func TestKillMidPayment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	cases := []struct {
		point, scenario string
		want            medpay.TradeState
	}{
		{"cash paid", "employee", medpay.StateSuccess},            // the payer paid at the channel; nothing recorded it yet
		{"settled", "employee", medpay.StateSuccess},              // the bureau settled; the answer died with the process
		{"finished", "employee", medpay.StateSuccess},             // committed; the notification not yet sent
		{"settled", "bureau_timeout", medpay.StatePayError},       // settlement unknown: revoke it, refund the cash
		{"reversed", "bureau_timeout", medpay.StatePayError},      // the upload revoked, died before refunding the cash
		{"cash refunded", "bureau_timeout", medpay.StatePayError}, // the cash refunded, died before recording it
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "medpay.db")
	c := onboard(t, db)

	// A hospital that acknowledges every notification.
	var mu sync.Mutex
	notified := map[string]int{}
	notifyURL := hospitalReceiver(t, c.APIKey, func(m *wire.Message) bool {
		mu.Lock()
		notified[m.Get("med_trans_id")+"/"+m.Get("med_trade_state")]++
		mu.Unlock()
		return true
	})

	addr := freeAddr(t)
	ids := make([]string, len(cases))
	for i, tc := range cases {
		p := serve(t, db, addr, "MEDPAY_FAULT="+tc.point)
		tok := token(t, p.url, c)
		ids[i] = placeOrder(t, p.url, tok, c, fmt.Sprintf("crash-%d", i), tc.scenario, notifyURL)
		resp, err := postJSON(p.url, "/sandbox/orders/"+ids[i]+"/confirm", `{"pin":"123456"}`)
		if err == nil {
			// The channel's TRANSACTION.SUCCESS callback may have carried the saga on in another
			// request, which meets the fault point while this one answers: the process dies all
			// the same (waitKilled), and recovery must finish the order.
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Logf("%s/%s: answered before the kill: %s", tc.point, tc.scenario, b)
		}
		p.waitKilled(t)

		// Restart without faults: recovery at start finishes or undoes the order, and the
		// worker delivers its notification from the outbox.
		p = serve(t, db, addr)
		waitUntil(t, "the notification of "+tc.point+"/"+tc.scenario, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(notified) > i
		})
		p.stop(t)
	}

	ctx := context.Background()
	sdb, err := sqlstore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	key, err := secret.LoadOrCreateKeyFile(db + ".key")
	if err != nil {
		t.Fatal(err)
	}
	box, _ := secret.NewBox(key)
	store := sqlstore.NewStore(sdb, box)
	sim := bureau.New(bureauBooks(t, sdb), nil)
	wallet := cashWallets(t, sdb)
	if total, err := store.LedgerTotal(ctx); err != nil || total != 0 {
		t.Fatalf("ledger total %d, %v", total, err)
	}
	for i, tc := range cases {
		o, err := store.OrderByID(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if o.State != tc.want || o.Step != medpay.StepDone {
			t.Errorf("%s/%s: state %s step %q, want %s done", tc.point, tc.scenario, o.State, o.Step, tc.want)
		}
		mu.Lock()
		if notified[o.MedTransID+"/"+string(o.State)] == 0 {
			t.Errorf("%s/%s: no notification of %s arrived", tc.point, tc.scenario, o.State)
		}
		mu.Unlock()
		person, _ := bureau.FindPerson("440300", tc.scenario)
		payer := c.AppID + "/" + o.OpenID
		moved, _ := store.Balance(ctx, medpay.PayerWalletAccount(payer))
		bal, _ := wallet.Balance(ctx, payer)
		if bal != 1_000_000+moved {
			t.Errorf("%s/%s: wallet %d, ledger says %d", tc.point, tc.scenario, bal, 1_000_000+moved)
		}
		if tc.want == medpay.StateSuccess && moved != -o.CashFee {
			t.Errorf("%s/%s: wallet moved %d, want %d (charged exactly once)", tc.point, tc.scenario, moved, -o.CashFee)
		}
		if tc.want != medpay.StateSuccess && moved != 0 {
			t.Errorf("%s/%s: wallet moved %d for a failed order", tc.point, tc.scenario, moved)
		}
		// The bureau keeps the settlement of a paid order, and nothing of a failed one: its upload
		// revoked, or its settlement's insured part refunded (6203 HI leaves the cash part: 6).
		state, err := sim.OrderState(ctx, o.PayOrdID)
		if tc.want == medpay.StateSuccess && (err != nil || state != medpay.OrdSettled) {
			t.Errorf("%s/%s: bureau order state %d %v, want settled", tc.point, tc.scenario, state, err)
		}
		if tc.want != medpay.StateSuccess && (err != nil || (state != medpay.OrdRevoked && state != medpay.OrdRefundedPart)) {
			t.Errorf("%s/%s: bureau order state %d %v, want revoked or refunded", tc.point, tc.scenario, state, err)
		}
		_ = person
	}
}

// TestKillMidRefund kills the process at each point of the refund saga, restarts it, and checks
// that the refund ends SUCCESS having paid out exactly once, with its notification delivered.
func TestKillMidRefund(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	points := []string{"bureau_refunded", "cash_refunded", "refund_finished"}
	dir := t.TempDir()
	db := filepath.Join(dir, "medpay.db")
	c := onboard(t, db)

	var mu sync.Mutex
	notified := map[string]int{}
	notifyURL := hospitalReceiver(t, c.APIKey, func(m *wire.Message) bool {
		if m.Get("notify_type") == "REFUND" {
			mu.Lock()
			notified[m.Get("hosp_out_refund_no")]++
			mu.Unlock()
		}
		return true
	})

	addr := freeAddr(t)
	ids := make([]string, len(points))
	for i, point := range points {
		p := serve(t, db, addr)
		tok := token(t, p.url, c)
		ids[i] = placeOrder(t, p.url, tok, c, fmt.Sprintf("refund-%d", i), "refund_unknown", notifyURL)
		resp, err := postJSON(p.url, "/sandbox/orders/"+ids[i]+"/confirm", `{"pin":"123456"}`)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		p.stop(t)

		p = serve(t, db, addr, "MEDPAY_FAULT="+point)
		tok = token(t, p.url, c)
		m := wire.NewMessage()
		for _, kv := range [][2]string{{"appid", c.AppID}, {"mch_id", c.MchID}, {"med_trans_id", ids[i]},
			{"hosp_out_refund_no", "RF-" + point}, {"notify_url", notifyURL}, {"nonce_str", wire.Nonce()}} {
			m.Set(kv[0], kv[1])
		}
		wire.SignInPlace(m, c.APIKey)
		if resp, err := http.Post(p.url+"/payinsurance/refund?access_token="+url.QueryEscape(tok), "text/xml", strings.NewReader(string(m.Bytes()))); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("%s: the refund was answered; the process should have died: %s", point, b)
		}
		p.waitKilled(t)

		p = serve(t, db, addr)
		waitUntil(t, "the REFUND notification of "+point, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return notified["RF-"+point] > 0
		})
		p.stop(t)
	}

	ctx := context.Background()
	sdb, err := sqlstore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	key, _ := secret.LoadOrCreateKeyFile(db + ".key")
	box, _ := secret.NewBox(key)
	store := sqlstore.NewStore(sdb, box)
	wallet := cashWallets(t, sdb)
	if total, _ := store.LedgerTotal(ctx); total != 0 {
		t.Fatalf("ledger total %d", total)
	}
	for i, point := range points {
		o, _ := store.OrderByID(ctx, ids[i])
		refunds, err := store.RefundsOfOrder(ctx, o.ID)
		if err != nil || len(refunds) != 1 {
			t.Fatalf("%s: refunds %v %v", point, refunds, err)
		}
		r := refunds[0]
		if r.State != medpay.RefundSuccess || o.State != medpay.StateRefund {
			t.Errorf("%s: refund %s, order %s", point, r.State, o.State)
		}
		payer := c.AppID + "/" + o.OpenID
		if bal, _ := wallet.Balance(ctx, payer); bal != 1_000_000 {
			t.Errorf("%s: wallet %d after a whole refund, want 1000000", point, bal)
		}
		moves, _ := store.OrderLedger(ctx, o.ID)
		if len(moves) != 0 {
			t.Errorf("%s: net ledger after a whole refund %v", point, moves)
		}
		var n int
		bureauBooks(t, sdb).SQL().QueryRow(`SELECT COUNT(*) FROM bureau_order_refunds WHERE app_refd_sn = $1`, r.BureauSerial()).Scan(&n)
		if n != 1 {
			t.Errorf("%s: bureau refunds %d", point, n)
		}
		mu.Lock()
		if notified["RF-"+point] == 0 {
			t.Errorf("%s: no REFUND notification arrived", point)
		}
		mu.Unlock()
	}
}

// TestMerchantCreateWhileServing onboards hospitals through the command while the server runs on
// the same SQLite file, and uses them at once.
func TestMerchantCreateWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	db := filepath.Join(t.TempDir(), "medpay.db")
	p := serve(t, db, freeAddr(t))
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Go(func() {
			c := onboard(t, db)
			if tok := token(t, p.url, c); tok == "" {
				t.Errorf("no token for a hospital onboarded while serving")
			}
		})
	}
	wg.Wait()
	p.stop(t)
}
