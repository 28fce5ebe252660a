package main

import (
	"strings"
	"testing"
)

func TestRefundCommands(t *testing.T) {
	env, h, vars := devSetup(t)
	out, _, err := cli(t, vars, "order", "create", "--openid", "refund-payer", "--hospital-name", h.Name,
		"--total-fee", "3000", "--notify-url", "http://127.0.0.1:1/notify", "--trade-no", "CLI-R-1")
	if err != nil {
		t.Fatal(err)
	}
	id := fields(out)["med_trans_id"]
	if code, res := env.Confirm(t, id, "123456"); code != 200 || res["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, res)
	}

	out, _, err = cli(t, vars, "refund", "create", "--trade-no", "CLI-R-1", "--refund-no", "CR1", "--part", "CASH_ONLY",
		"--cash-refund-fee", "1000", "--reason", "退号")
	if err != nil {
		t.Fatal(err)
	}
	f := fields(out)
	if f["med_refund_id"] == "" || f["hosp_out_refund_no"] != "CR1" || f["cash_refund_fee"] != "1000" || f["med_trans_id"] != id {
		t.Fatalf("refund create:\n%s", out)
	}
	out, _, err = cli(t, vars, "refund", "query", "--refund-no", "CR1")
	if err != nil || fields(out)["med_refund_id"] != f["med_refund_id"] || fields(out)["med_refund_state"] != "SUCCESS" {
		t.Fatalf("refund query: %v\n%s", err, out)
	}
	out, _, err = cli(t, vars, "refund", "query", "--med-refund-id", f["med_refund_id"], "--json")
	if err != nil || !strings.Contains(out, `"hosp_out_refund_no":"CR1"`) {
		t.Fatalf("refund query --json: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"refund", "create", "--trade-no", "CLI-R-1", "--refund-no", "CR2", "--part", "CASH_ONLY", "--cash-refund-fee", "5000"}, "err_code 515"},
		{[]string{"refund", "create", "--trade-no", "CLI-R-1"}, "--refund-no is required"},
		{[]string{"refund", "create", "--refund-no", "X"}, "one of --med-trans-id and --trade-no"},
		{[]string{"refund", "query", "--refund-no", "none"}, "err_code 508"},
		{[]string{"refund", "query"}, "one of --med-refund-id and --refund-no"},
	} {
		if _, _, err := cli(t, vars, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("medpay %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
