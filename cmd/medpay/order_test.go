package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/medpay/medpay"
)

func TestOrderCommands(t *testing.T) {
	env, h, vars := devSetup(t)
	env.Bind(t, h, "cli-payer", "440300", "acct_empty")

	out, _, err := cli(t, vars, "order", "create", "--openid", "cli-payer", "--hospital-name", h.Name,
		"--total-fee", "6500", "--cash-fee", "1000", "--insurance-fee", "5500", "--notify-url", "http://127.0.0.1:1/notify",
		"--request-content", `{"acct_used":true,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`,
		"--attach", "cli", "--field", "channel_no=C1")
	if err != nil {
		t.Fatal(err)
	}
	f := fields(out)
	id, no := f["med_trans_id"], f["hosp_out_trade_no"]
	if id == "" || !strings.HasPrefix(no, "CLI") || f["pay_url"] != env.URL+"/pay/"+id || f["pay_type"] != "3" || f["sign"] != "" || f["nonce_str"] != "" {
		t.Fatalf("order create output:\n%s", out)
	}

	out, _, err = cli(t, vars, "order", "query", "--trade-no", no, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var q map[string]string
	if err := json.Unmarshal([]byte(out), &q); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if q["med_trans_id"] != id || q["med_trade_state"] != "NOTPAY" || q["attach"] != "cli" || q["openid"] != "cli-payer" {
		t.Fatalf("query: %v", q)
	}

	if code, res := env.Confirm(t, id, "123456"); code != 200 || res["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, res)
	}
	out, _, err = cli(t, vars, "order", "query", "--med-trans-id", id)
	if err != nil || fields(out)["med_trade_state"] != "SUCCESS" || fields(out)["time_end"] == "" {
		t.Fatalf("query after paying: %v\n%s", err, out)
	}
	if _, _, err := cli(t, vars, "order", "close", "--med-trans-id", id); err == nil || !strings.Contains(err.Error(), "err_code "+medpay.ErrOrderPaid) {
		t.Fatalf("close a paid order: %v", err)
	}

	// A cash-only order (the default when only --total-fee is given), then closed.
	out, _, err = cli(t, vars, "order", "create", "--openid", "cli-payer-2", "--hospital-name", h.Name, "--type", "RegPay",
		"--total-fee", "1200", "--notify-url", "http://127.0.0.1:1/notify", "--trade-no", "CLI-REG-1")
	if err != nil || fields(out)["pay_type"] != "1" || fields(out)["cash_fee"] != "1200" {
		t.Fatalf("cash order: %v\n%s", err, out)
	}
	out, _, err = cli(t, vars, "order", "close", "--trade-no", "CLI-REG-1")
	if err != nil || fields(out)["med_trade_state"] != "CLOSED" {
		t.Fatalf("close: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"order", "query", "--trade-no", "H-none"}, "err_code 502"},
		{[]string{"order", "query"}, "one of --med-trans-id and --trade-no"},
		{[]string{"order", "create", "--openid", "x"}, "--total-fee is required"},
		{[]string{"order", "create", "--openid", "x", "--total-fee", "100", "--hospital-name", "H"}, "notify_url is needed"},
		{[]string{"order", "frobnicate"}, `order: unknown subcommand "frobnicate"`},
		{[]string{"order", "query", "--trade-no", "H", "--key", strings.Repeat("0", 32)}, "签名失败"},
	} {
		if _, _, err := cli(t, vars, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("medpay %v: %v, want %q", tc.args, err, tc.want)
		}
	}
	noKey := map[string]string{"MEDPAY_BASE_URL": env.URL, "MEDPAY_APPID": h.AppID, "MEDPAY_MCH_ID": h.MchID, "MEDPAY_SECRET": h.Secret}
	if _, _, err := cli(t, noKey, "order", "query", "--trade-no", "H"); err == nil || !strings.Contains(err.Error(), "--key (or MEDPAY_KEY)") {
		t.Errorf("no key: %v", err)
	}
}
