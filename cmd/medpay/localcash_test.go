package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"testing"

	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// TestSandboxConfirmSignsNothing: medpay serve in sandbox mode without --cash-url reaches the
// channel it serves by Go calls. A sandbox confirmation and a refund leave no trace of APIv3
// between the two: no request nonce was claimed at the channel (every signed request claims
// one) and no callback was written for the platform (each would be sealed and signed at
// delivery), while the channel holds the payment and its refund.
func TestSandboxConfirmSignsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if testenv.RemoteCash() {
		t.Skip("with --cash-url the platform is an APIv3 merchant of the channel, as it must be")
	}
	t.Parallel()
	db := filepath.Join(t.TempDir(), "medpay.db")
	c := onboard(t, db)
	notifyURL := hospitalReceiver(t, c.APIKey, func(*wire.Message) bool { return true })
	p := serve(t, db, freeAddr(t))
	tok := token(t, p.url, c)
	id := placeOrder(t, p.url, tok, c, "no-sign", "employee", notifyURL)
	resp, err := postJSON(p.url, "/sandbox/orders/"+id+"/confirm", `{"pin":"123456"}`)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		State string `json:"med_trade_state"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	resp.Body.Close()
	if err != nil || out.State != "SUCCESS" {
		t.Fatalf("confirm: %d %+v %v", resp.StatusCode, out, err)
	}
	ans, err := refundReq(t, p.url, c, id, "NS-R1")
	if err != nil || ans.Get("result_code") != "SUCCESS" || ans.Get("med_refund_state") != "SUCCESS" {
		t.Fatalf("refund: %v %s %s", err, ans.Get("med_refund_state"), ans.Get("err_code_des"))
	}
	p.stop(t)

	sdb, err := sqlstore.OpenBare(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := sdb.SQL().QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT COUNT(*) FROM cash_nonces`); n != 0 {
		t.Errorf("the channel verified %d signed requests", n)
	}
	if n := count(`SELECT COUNT(*) FROM cash_callbacks`); n != 0 {
		t.Errorf("the channel wrote %d callbacks", n)
	}
	if n := count(`SELECT COUNT(*) FROM cash_trades t JOIN sandbox_cash_merchant m ON m.mchid = t.mchid
		WHERE t.out_trade_no = $1 AND t.state = 'REFUND' AND t.refunded = t.total`, id); n != 1 {
		t.Errorf("the channel holds %d refunded payments of the order, want 1", n)
	}
}
