package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// TestKillCashMidPayments runs the platform and `medpay cash serve` as two processes speaking
// WeChat Pay APIv3, kills the channel (SIGKILL) while payers pay and again while refunds run,
// restarts it, and checks that every order ends paid exactly once and every refund refunded
// exactly once, nothing taken twice or kept for a payment that did not happen, and that `medpay
// reconcile` finds the day clean against the channel's own journal.
func TestKillCashMidPayments(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	cashDB := filepath.Join(t.TempDir(), "cash.db")
	caddr := freeAddr(t)
	startCash := func() *proc {
		return startProc(t, "http://"+caddr+"/healthz", "cash", "serve", "--db", cashDB, "--addr", caddr)
	}
	cp := startCash()
	cr := cashMerchant(t, cashDB)
	// This test's own channel, whatever MEDPAY_TEST_CASH says (the last setting wins).
	env := append(remoteEnv(t), cashEnv(t, cr, "http://"+caddr)...)
	db := filepath.Join(t.TempDir(), "medpay.db")
	c := onboard(t, db)
	notifyURL := hospitalReceiver(t, c.APIKey, func(*wire.Message) bool { return true })
	addr := freeAddr(t)
	p := serve(t, db, addr, env...)
	tok := token(t, p.url, c)

	const orders = 6
	ids := make([]string, orders)
	for i := range orders {
		ids[i] = placeOrder(t, p.url, tok, c, fmt.Sprintf("kc-%d", i), "employee", notifyURL)
	}
	confirmAll := func() {
		var wg sync.WaitGroup
		first := make(chan struct{})
		var once sync.Once
		for _, id := range ids {
			wg.Go(func() {
				if resp, err := postJSON(p.url, "/sandbox/orders/"+id+"/confirm", `{"pin":"123456"}`); err == nil {
					resp.Body.Close()
				}
				once.Do(func() { close(first) })
			})
		}
		<-first
		cp.cmd.Process.Kill() // mid-payments: the other payers meet it dying or dead
		<-cp.done
		wg.Wait()
	}
	confirmAll()

	// The channel comes back; the platform's recovery at start asks it about every order at the
	// cashier, and the payers who met it dead pay again.
	cp = startCash()
	p.stop(t)
	p = serve(t, db, addr, env...)
	store := openTestStore(t, db)
	ctx := context.Background()
	for _, id := range ids {
		o, err := store.OrderByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("after the kill and restarts: %s %s at %q", id, o.State, o.Step)
		if o.State == medpay.StateNotPay {
			resp, err := postJSON(p.url, "/sandbox/orders/"+id+"/confirm", `{"pin":"123456"}`)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	waitUntil(t, "every order paid", func() bool {
		for _, id := range ids {
			if o, err := store.OrderByID(ctx, id); err != nil || o.State != medpay.StateSuccess {
				return false
			}
		}
		return true
	})

	// Refunds: the channel dies after the first answer; the hospital retries with the same number.
	var wg sync.WaitGroup
	first := make(chan struct{})
	var once sync.Once
	for i, id := range ids {
		wg.Go(func() {
			refundReq(t, p.url, c, id, fmt.Sprintf("KC-R%d", i))
			once.Do(func() { close(first) })
		})
	}
	<-first
	cp.cmd.Process.Kill()
	<-cp.done
	wg.Wait()
	cp = startCash()
	waitUntil(t, "every refund made", func() bool {
		done := true
		for i, id := range ids {
			ans, err := refundReq(t, p.url, c, id, fmt.Sprintf("KC-R%d", i))
			if err != nil || ans.Get("med_refund_state") != medpay.RefundSuccess {
				done = false
			}
		}
		return done
	})

	// The channel's wallets: each payer paid once and was refunded once, whatever the kills.
	cdb, err := sqlstore.OpenBare(ctx, cashDB)
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	wallet := cash.New(cdb, nil)
	for i, id := range ids {
		o, _ := store.OrderByID(ctx, id)
		if o.State != medpay.StateRefund || o.Step != medpay.StepDone {
			t.Errorf("order %d: %s at %q, want REFUND done", i, o.State, o.Step)
		}
		if bal, _ := wallet.Balance(ctx, c.AppID+"/"+o.OpenID); bal != cash.DefaultBalance {
			t.Errorf("order %d: wallet %d after a whole refund, want %d", i, bal, cash.DefaultBalance)
		}
		if moves, _ := store.OrderLedger(ctx, o.ID); len(moves) != 0 {
			t.Errorf("order %d: net ledger after a whole refund %v", i, moves)
		}
	}
	p.stop(t)

	var out, errOut bytes.Buffer
	today := time.Now().In(medpay.CST).Format("20060102")
	getenv := func(k string) string {
		for _, kv := range env {
			if key, v, _ := strings.Cut(kv, "="); key == k {
				return v
			}
		}
		return ""
	}
	if err := run(ctx, []string{"reconcile", "--db", db, "--date", today, "--cash-db", cashDB, "--cash-mchid", cr.MchID}, getenv, &out, &errOut); err != nil {
		t.Fatalf("reconcile: %v\n%s%s", err, out.String(), errOut.String())
	}
}
