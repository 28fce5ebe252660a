package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// bureauProc is a running `medpay bureau serve` on its own database, with the platform
// registered as an institution.
type bureauProc struct {
	*proc
	db   string
	addr string
	env  []string // the platform's MEDPAY_BUREAU_* settings for it
}

// startBureau runs the bureau binary on db at addr with extra environment and waits until it
// answers.
func startBureau(t *testing.T, db, addr string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), "bureau", "serve", "--db", db, "--addr", addr, "--hold", "2s")
	cmd.Env = append(os.Environ(), env...)
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
				t.Log("bureau: " + sc.Text())
			}
		}
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.url + "/sandbox/persons?scenario=none"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("bureau exited before serving: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("bureau did not start")
	return nil
}

// newBureau registers the platform at a fresh bureau database and serves it.
func newBureau(t *testing.T, env ...string) *bureauProc {
	t.Helper()
	db := filepath.Join(t.TempDir(), "bureau.db")
	cmd := exec.Command(binary(t), "bureau", "institution", "create", "--db", db, "--org-codg", "P00000000001",
		"--name", "medpay 平台", "--city", "440300", "--level", "3", "--json")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bureau institution create: %v", err)
	}
	var in bureau.NewInstitution
	if err := json.Unmarshal(out, &in); err != nil || in.PrivateKey == "" {
		t.Fatalf("institution: %v %s", err, out)
	}
	keyFile := filepath.Join(t.TempDir(), "bureau.key")
	if err := os.WriteFile(keyFile, []byte(in.PrivateKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	b := &bureauProc{db: db, addr: addr, env: []string{
		"MEDPAY_BUREAU_URL=http://" + addr, "MEDPAY_BUREAU_APP_ID=" + in.AppID, "MEDPAY_BUREAU_APP_SECRET=" + in.AppSecret,
		"MEDPAY_BUREAU_PRIVATE_KEY_FILE=" + keyFile, "MEDPAY_BUREAU_PUBLIC_KEY=" + in.BureauPublicKey,
		"MEDPAY_BUREAU_ORG_CODG=" + in.OrgCodg, "MEDPAY_BUREAU_TIMEOUT=10s"}}
	b.proc = startBureau(t, db, addr, env...)
	return b
}

var remotes sync.Map // test name → *bureauProc

// remoteEnv is the environment that points the platform of test t at its bureau process, when
// the end-to-end suites run with MEDPAY_TEST_BUREAU=remote (one bureau per test, kept across the
// platform's restarts); nil otherwise.
//
// With MEDPAY_TEST_CASH=remote it also points the platform at a `medpay cash serve` of its own
// (one per test, kept across restarts).
func remoteEnv(t *testing.T) []string {
	var env []string
	if testenv.Remote() {
		if b, ok := remotes.Load(t.Name()); ok {
			env = append(env, b.(*bureauProc).env...)
		} else {
			b := newBureau(t)
			remotes.Store(t.Name(), b)
			t.Cleanup(func() { remotes.Delete(t.Name()) })
			env = append(env, b.env...)
		}
	}
	if testenv.RemoteCash() {
		env = append(env, remoteCash(t).env...)
	}
	return env
}

// cashRemote is the cash channel process of a test run with MEDPAY_TEST_CASH=remote.
type cashRemote struct {
	db    string
	mchid string
	env   []string
}

var cashRemotes sync.Map // test name → *cashRemote

func remoteCash(t *testing.T) *cashRemote {
	if c, ok := cashRemotes.Load(t.Name()); ok {
		return c.(*cashRemote)
	}
	db := filepath.Join(t.TempDir(), "cash.db")
	addr := freeAddr(t)
	startProc(t, "http://"+addr+"/healthz", "cash", "serve", "--db", db, "--addr", addr)
	cr := cashMerchant(t, db)
	c := &cashRemote{db: db, mchid: cr.MchID, env: cashEnv(t, cr, "http://"+addr)}
	cashRemotes.Store(t.Name(), c)
	t.Cleanup(func() { cashRemotes.Delete(t.Name()) })
	return c
}

// cashReconcileArgs are the flags that point medpay reconcile of test t at its channel's journal
// when the channel runs apart.
func cashReconcileArgs(t *testing.T) []string {
	c, ok := cashRemotes.Load(t.Name())
	if !ok {
		return nil
	}
	return []string{"--cash-db", c.(*cashRemote).db, "--cash-mchid", c.(*cashRemote).mchid}
}

// cashWallets opens the wallets of test t: the channel's own database when it runs apart, else
// the platform's sdb.
func cashWallets(t *testing.T, sdb *sqlstore.DB) *cash.Simulator {
	c, ok := cashRemotes.Load(t.Name())
	if !ok {
		return cash.New(sdb, nil)
	}
	cdb, err := sqlstore.OpenBare(context.Background(), c.(*cashRemote).db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cdb.Close() })
	return cash.New(cdb, nil)
}

// bureauBooks opens the bureau's books of test t: its own database when remote, else the
// platform's sdb.
func bureauBooks(t *testing.T, sdb *sqlstore.DB) *sqlstore.DB {
	t.Helper()
	b, ok := remotes.Load(t.Name())
	if !ok {
		return sdb
	}
	db, err := sqlstore.OpenBare(context.Background(), b.(*bureauProc).db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func refundReq(t *testing.T, base string, c creds, medTransID, refundNo string) (*wire.Message, error) {
	t.Helper()
	m := wire.NewMessage()
	for _, kv := range [][2]string{{"appid", c.AppID}, {"mch_id", c.MchID}, {"med_trans_id", medTransID},
		{"hosp_out_refund_no", refundNo}, {"nonce_str", wire.Nonce()}} {
		m.Set(kv[0], kv[1])
	}
	wire.SignInPlace(m, c.APIKey)
	resp, err := http.Post(base+"/payinsurance/refund?access_token="+url.QueryEscape(token(t, base, c)), "text/xml", strings.NewReader(string(m.Bytes())))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return wire.Decode(resp.Body)
}

// TestKillBureau runs the platform and the bureau as two processes talking the national
// protocol, kills the bureau (SIGKILL) after it has settled and before it answers, and again
// after it has refunded, restarts it, and checks that every order and refund ends final, that
// the bureau kept nothing of a payment the platform undid and refunded once, and that `medpay
// reconcile` finds the day clean.
func TestKillBureau(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	t.Parallel()
	b := newBureau(t, "MEDPAY_BUREAU_FAULT=pay_order")
	db := filepath.Join(t.TempDir(), "medpay.db")
	c := onboard(t, db)
	notifyURL := hospitalReceiver(t, c.APIKey, func(*wire.Message) bool { return true })
	addr := freeAddr(t)
	p := serve(t, db, addr, b.env...)
	tok := token(t, p.url, c)

	// 1. Settlements: the bureau dies after settling the first; the second meets it dead.
	ids := []string{placeOrder(t, p.url, tok, c, "kb-1", "employee", notifyURL), placeOrder(t, p.url, tok, c, "kb-2", "retiree", notifyURL)}
	resp, err := postJSON(p.url, "/sandbox/orders/"+ids[0]+"/confirm", `{"pin":"123456"}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b.proc.waitKilled(t)
	resp, err = postJSON(p.url, "/sandbox/orders/"+ids[1]+"/confirm", `{"pin":"123456"}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The bureau comes back; a platform restart runs recovery at once. The second payer, who
	// met the bureau dead at its authorisation, nothing taken, pays now.
	b.proc = startBureau(t, b.db, b.addr)
	p.stop(t)
	p = serve(t, db, addr, b.env...)
	if o := openTestStore(t, db); true {
		if cur, err := o.OrderByID(context.Background(), ids[1]); err != nil || cur.State != medpay.StateNotPay {
			t.Fatalf("the order whose payer met the bureau dead: %+v %v", cur, err)
		}
	}
	resp, err = postJSON(p.url, "/sandbox/orders/"+ids[1]+"/confirm", `{"pin":"123456"}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// 2. A refund: a paid order, then the bureau dies after refunding and before answering.
	paid := placeOrder(t, p.url, tok, c, "kb-3", "employee", notifyURL)
	resp, err = postJSON(p.url, "/sandbox/orders/"+paid+"/confirm", `{"pin":"123456"}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b.proc.cmd.Process.Kill()
	<-b.proc.done
	b.proc = startBureau(t, b.db, b.addr, "MEDPAY_BUREAU_FAULT=refund_Order")
	ans, err := refundReq(t, p.url, c, paid, "KB-R1")
	if err != nil || ans.Get("err_code") != medpay.ErrBureauRefund {
		t.Fatalf("refund while the bureau dies: %v %v", err, ans)
	}
	b.proc.waitKilled(t)
	b.proc = startBureau(t, b.db, b.addr)
	// The hospital asks again with the same refund number: 6203 answers the first outcome.
	ans, err = refundReq(t, p.url, c, paid, "KB-R1")
	if err != nil || ans.Get("med_refund_state") != medpay.RefundSuccess {
		t.Fatalf("refund retry: %v %v", err, ans)
	}

	// Every order is final, and the bureau's books say the same.
	ctx := context.Background()
	store := openTestStore(t, db)
	bdb, err := sqlstore.OpenBare(ctx, b.db)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	sim := bureau.New(bdb, nil)
	want := map[string][2]any{ids[0]: {medpay.StatePayError, medpay.OrdRefundedPart}, ids[1]: {medpay.StateSuccess, medpay.OrdSettled},
		paid: {medpay.StateRefund, medpay.OrdRefundedPart}}
	for id, w := range want {
		o, err := store.OrderByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		stas, err := sim.OrderState(ctx, o.PayOrdID)
		if o.State != w[0] || o.Step != medpay.StepDone || err != nil || stas != w[1] {
			t.Errorf("order %s: %s step %q, bureau %d %v; want %v done, bureau %v", id, o.State, o.Step, stas, err, w[0], w[1])
		}
	}
	p.stop(t)

	var out, errOut bytes.Buffer
	today := time.Now().In(medpay.CST).Format("20060102")
	env := map[string]string{}
	for _, kv := range b.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if err := run(ctx, append([]string{"reconcile", "--db", db, "--date", today}, cashReconcileArgs(t)...), func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatalf("reconcile: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "serials") {
		t.Fatalf("reconcile output:\n%s", out.String())
	}
}

// openTestStore opens the platform's store on the SQLite file db with its key file.
func openTestStore(t *testing.T, db string) *sqlstore.Store {
	t.Helper()
	sdb, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	key, err := secret.LoadOrCreateKeyFile(db + ".key")
	if err != nil {
		t.Fatal(err)
	}
	box, err := secret.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	return sqlstore.NewStore(sdb, box)
}
