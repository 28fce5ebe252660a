package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore"
)

// notifyFixture makes an SQLite database with two merchants, an order and four notifications:
// P1 pending and OK1 delivered (merchant 1900000001, order MT1), D1 dead (1900000001) and D2
// dead (1900000002).
func notifyFixture(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "medpay.db")
	db, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	ms := sqlstore.MS(now)
	var m1, m2, o1 int64
	for _, m := range []struct {
		mchID string
		id    *int64
	}{{"1900000001", &m1}, {"1900000002", &m2}} {
		err := db.SQL().QueryRowContext(ctx, `INSERT INTO merchants (kind, name, appid, mch_id, secret_hash, api_key_enc, created_at)
			VALUES ('hospital', 'H', $1, $2, 'x', 'x', $3) RETURNING id`, "wx"+m.mchID, m.mchID, ms).Scan(m.id)
		if err != nil {
			t.Fatal(err)
		}
	}
	err = db.SQL().QueryRowContext(ctx, `INSERT INTO orders (med_trans_id, merchant_id, hosp_out_trade_no, fingerprint, fields,
		order_type, pay_type, total_fee, cash_fee, insurance_fee, state, cash_status, insurance_status, time_expire, created_at, updated_at)
		VALUES ('MT1', $1, 'H1', 'f', '{}', 'RegPay', 3, 100, 100, 0, 'SUCCESS', 'PAYED', 'PAYED', $2, $2, $2) RETURNING id`, m1, ms).Scan(&o1)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct {
		id       string
		merchant int64
		order    int64
		state    string
	}{
		{"OK1", m1, o1, notify.StateDelivered},
		{"D1", m1, 0, notify.StateDead},
		{"D2", m2, 0, notify.StateDead},
		{"P1", m1, o1, notify.StatePending},
	} {
		err := db.WriteTx(ctx, func(tx *sql.Tx) error {
			if err := notify.Enqueue(ctx, tx, &notify.Notification{NotifyID: n.id, Kind: notify.KindPay, MerchantID: n.merchant,
				OrderID: n.order, URL: "http://127.0.0.1:1/notify?token=s3cret-t0ken", Body: []byte("<xml><notify_id>" + n.id + "</notify_id></xml>")}, now); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE outbox SET state = $1, done_at = $2 WHERE notify_id = $3`, n.state, ms, n.id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func notifyCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runNotify(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), err
}

func TestNotifyCommand(t *testing.T) {
	t.Parallel()
	path := notifyFixture(t)
	env := map[string]string{"MEDPAY_DB": path}

	ids := func(out string) string {
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			got = append(got, strings.Fields(line)[0])
		}
		return strings.Join(got, " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"list"}, "P1 D2 D1 OK1"},
		{[]string{"list", "--merchant", "1900000001"}, "P1 D1 OK1"},
		{[]string{"list", "--order", "MT1"}, "P1 OK1"},
		{[]string{"list", "--state", "dead"}, "D2 D1"},
		{[]string{"list", "--merchant", "1900000001", "--state", "dead"}, "D1"},
	} {
		out, err := notifyCmd(t, env, c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := ids(out); got != c.want {
			t.Errorf("%v = %s, want %s\n%s", c.args, got, c.want, out)
		}
	}
	out, err := notifyCmd(t, env, "list", "--order", "MT1")
	if err != nil || !strings.Contains(out, "1900000001") || !strings.Contains(out, "MT1") {
		t.Fatalf("list shows no mch_id / med_trans_id: %v\n%s", err, out)
	}

	out, err = notifyCmd(t, env, "list", "--json", "--state", "pending")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rows) != 1 || rows[0]["notify_id"] != "P1" || rows[0]["mch_id"] != "1900000001" || rows[0]["med_trans_id"] != "MT1" ||
		rows[0]["state"] != "pending" || rows[0]["next_at"] == nil {
		t.Fatalf("json = %v", rows)
	}

	// The query strings of notify URLs (hospitals put tokens there) are masked everywhere.
	for _, args := range [][]string{{"list"}, {"list", "--json"}, {"show", "P1"}, {"show", "--json", "D1"}} {
		out, err := notifyCmd(t, env, args...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "s3cret-t0ken") || !strings.Contains(out, "http://127.0.0.1:1/notify?***") {
			t.Errorf("%v does not mask the notify URL's query:\n%s", args, out)
		}
	}

	// show, with --db after the argument and no environment.
	out, err = notifyCmd(t, nil, "show", "P1", "--db", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"notify_id", "P1", "MT1", "1900000001", "pending", "<xml><notify_id>P1</notify_id></xml>", "no attempts yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out, err = notifyCmd(t, env, "show", "--json", "D1")
	if err != nil || !strings.Contains(out, `"state": "dead"`) {
		t.Fatalf("show --json: %v\n%s", err, out)
	}

	// resend one, then every dead one of a merchant.
	if out, err = notifyCmd(t, env, "resend", "D1"); err != nil || !strings.Contains(out, "D1 is due again") {
		t.Fatalf("resend: %v %s", err, out)
	}
	if out, err = notifyCmd(t, env, "resend", "--dead", "--merchant", "1900000002"); err != nil || !strings.HasPrefix(out, "1 dead") {
		t.Fatalf("resend --dead: %v %s", err, out)
	}
	if out, err = notifyCmd(t, env, "list", "--state", "pending"); err != nil || ids(out) != "P1 D2 D1" {
		t.Fatalf("pending after resends: %v\n%s", err, out)
	}
	if out, err = notifyCmd(t, env, "resend", "--dead", "--merchant", "1900000001"); err != nil || !strings.HasPrefix(out, "0 dead") {
		t.Fatalf("resend --dead with none: %v %s", err, out)
	}

	// Mistakes.
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"list", "--state", "lost"},
		{"list", "--merchant", "nope"},
		{"list", "--order", "nope"},
		{"list", "extra"},
		{"show"},
		{"show", "nope"},
		{"resend"},
		{"resend", "nope"},
		{"resend", "--dead"},
		{"resend", "--merchant", "1900000001"},
		{"resend", "D1", "--dead", "--merchant", "1900000001"},
		{"resend", "--dead", "--merchant", "nope"},
	} {
		if _, err := notifyCmd(t, env, args...); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
	if _, err := notifyCmd(t, nil, "list", "--db", filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Error("list on a missing database file succeeded")
	}
}
