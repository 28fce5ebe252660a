package http_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/wire"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestBillDownload(t *testing.T) {
	env, h, token := setup(t)
	mixed, _ := paidOrder(t, env, h, token, "bill-payer", "employee")
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "bill-cash", "attach", "a,b"))
	ok(t, r)
	cashOnly := r.Get("med_trans_id")
	env.Confirm(t, cashOnly, "123456")
	ref := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, mixed, "BR1", "part_refund_type", "CASH_ONLY", "cash_refund_fee", "1000"))
	ok(t, ref)
	ref2 := env.Call(t, "/payinsurance/refund", token, h.APIKey, refundReq(h, mixed, "BR2", "part_refund_type", "INSURANCE_ONLY"))
	ok(t, ref2)

	env.Clock.Advance(24 * time.Hour)
	token = env.Token(t, h)
	download := func(kv ...string) (*wireOrText, string) {
		req := testenv.Msg(append([]string{"appid", h.AppID, "mch_id", h.MchID, "nonce_str", wire.Nonce()}, kv...)...)
		if err := wire.SignInPlace(req, h.APIKey); err != nil {
			t.Fatal(err)
		}
		resp, body := env.Post(t, "/payinsurance/billdownload", token, req.Bytes())
		return &wireOrText{body: body}, resp.Header.Get("Content-Type")
	}

	all, ctype := download("bill_date", "20260302", "bill_type", "ALL")
	if ctype != "text/plain; charset=utf-8" {
		t.Fatalf("content type %q: %s", ctype, all.body)
	}
	text := string(all.body)
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	last := lines[len(lines)-1]
	sum := sha256.Sum256([]byte(text[:len(text)-len(last)-1]))
	if last != "sha256="+hex.EncodeToString(sum[:]) {
		t.Fatalf("checksum line %q does not match the bill", last)
	}
	// Golden: the bill with the run's random identifiers replaced by names.
	tradeNo := func(id string) string {
		o, err := env.Store.OrderByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return o.HospOutTradeNo
	}
	normal := strings.NewReplacer(h.AppID, "{APPID}", h.MchID, "{MCH_ID}", mixed, "{MIXED}", cashOnly, "{CASH}",
		ref.Get("med_refund_id"), "{REFUND1}", ref2.Get("med_refund_id"), "{REFUND2}", last, "sha256={SUM}",
		tradeNo(mixed), "{TRADE_MIXED}", tradeNo(cashOnly), "{TRADE_CASH}").Replace(text)
	golden := filepath.Join("testdata", "bill_all.golden")
	if *update {
		os.WriteFile(golden, []byte(normal), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if normal != string(want) {
		t.Errorf("bill differs from %s:\n%s", golden, normal)
	}

	success, _ := download("bill_date", "20260302", "bill_type", "SUCCESS")
	if n := strings.Count(string(success.body), "`SUCCESS,"); n != 2 || strings.Contains(string(success.body), "`REFUND,") {
		t.Errorf("SUCCESS bill has %d payment rows:\n%s", n, success.body)
	}
	refunds, _ := download("bill_date", "20260302", "bill_type", "REFUND")
	if n := strings.Count(string(refunds.body), "`REFUND,"); n != 2 || strings.Count(string(refunds.body), "\n") != 6 {
		t.Errorf("REFUND bill has %d refund rows:\n%s", n, refunds.body)
	}
	gz, ctype := download("bill_date", "20260302", "bill_type", "ALL", "tar_type", "GZIP")
	zr, err := gzip.NewReader(bytes.NewReader(gz.body))
	if err != nil {
		t.Fatalf("gzip (%s): %v", ctype, err)
	}
	unzipped, _ := io.ReadAll(zr)
	if string(unzipped) != text {
		t.Error("the gzip bill differs from the text bill")
	}

	none, _ := download("bill_date", "20260301", "bill_type", "ALL")
	bizFail(t, none.msg(t), medpay.ErrNoBill)
	today, _ := download("bill_date", "20260303", "bill_type", "ALL")
	if m := today.msg(t); !strings.HasPrefix(m.Get("return_msg"), "参数格式校验错误 bill_date is invalid") {
		t.Errorf("today's bill: %s", m.Get("return_msg"))
	}
	bad, _ := download("bill_date", "2026-3-2", "bill_type", "ALL")
	if m := bad.msg(t); !strings.HasPrefix(m.Get("return_msg"), "参数格式校验错误 bill_date is invalid") {
		t.Errorf("malformed date: %s", m.Get("return_msg"))
	}
}

type wireOrText struct{ body []byte }

func (w *wireOrText) msg(t *testing.T) *wire.Message {
	t.Helper()
	m, err := wire.Decode(bytes.NewReader(w.body))
	if err != nil {
		t.Fatalf("not XML: %s", w.body)
	}
	return m
}
