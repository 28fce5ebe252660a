package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/client"
	"github.com/medpay/medpay/internal/testenv"
)

// The endpoints of this file are built by other parts of the project; each test skips itself
// while the platform does not serve its route, and runs once it does.

// paidOrder places the worked bill for a payer of scenario and has it confirmed.
func paidOrder(t *testing.T, b *bundle, openid, scenario string) (*client.UnifiedOrderRequest, *client.UnifiedOrderResponse) {
	t.Helper()
	b.env.Bind(t, b.h, openid, "440300", scenario)
	req := insuredReq(b.h, openid)
	placed, err := b.c.UnifiedOrder(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if code, out := b.env.Confirm(t, placed.MedTransID, "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", code, out)
	}
	return req, placed
}

func TestRefundAndQueryRefund(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	// acct_empty: hifp 3207, cash 3293.
	req, placed := paidOrder(t, b, "refund-payer", "acct_empty")

	part := &client.RefundRequest{MedTransID: placed.MedTransID, HospOutRefundNo: "R1", PartRefundType: client.RefundCashOnly,
		CashRefundFee: 1000, RefundReason: "部分退费", NotifyURL: "http://127.0.0.1:1/refunds"}
	r1, err := b.c.Refund(ctx, part)
	if err != nil {
		t.Fatal(err)
	}
	if r1.MedRefundID == "" || r1.HospOutRefundNo != "R1" || r1.MedTransID != placed.MedTransID || r1.CashRefundFee != 1000 ||
		r1.InsuranceRefundFee != 0 || r1.TotalFee != 6500 || r1.MedRefundState == "" {
		t.Fatalf("partial refund %+v", r1)
	}
	again, err := b.c.Refund(ctx, part)
	if err != nil || again.MedRefundID != r1.MedRefundID {
		t.Fatalf("retry with the same number: %v %+v", err, again)
	}
	changed := *part
	changed.CashRefundFee = 999
	if _, err := b.c.Refund(ctx, &changed); !client.IsCode(err, medpay.ErrDuplicateRefundNo) {
		t.Fatalf("same number, other content: %v", err)
	}

	// The rest: cash 2293 and the insurance part.
	r2, err := b.c.Refund(ctx, &client.RefundRequest{HospOutTradeNo: req.HospOutTradeNo, HospOutRefundNo: "R2"})
	if err != nil {
		t.Fatal(err)
	}
	if r2.CashRefundFee != 2293 || r2.InsuranceRefundFee != 3207 {
		t.Fatalf("full refund %+v", r2)
	}
	if _, err := b.c.Refund(ctx, &client.RefundRequest{MedTransID: placed.MedTransID, HospOutRefundNo: "R3", PartRefundType: client.RefundCashOnly, CashRefundFee: 1}); !client.IsCode(err, medpay.ErrRefundExceeds) {
		t.Fatalf("refund beyond what was paid: %v", err)
	}

	for _, q := range []*client.QueryRefundRequest{{HospOutRefundNo: "R1"}, {MedRefundID: r1.MedRefundID}} {
		got, err := b.c.QueryRefund(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if got.MedRefundID != r1.MedRefundID || got.CashRefundFee != 1000 || got.MedRefundState != client.RefundSuccess ||
			got.RefundSuccessTime.IsZero() || got.CashRefundStatus == "" {
			t.Fatalf("queryrefund %+v: %+v", q, got)
		}
	}
	if _, err := b.c.QueryRefund(ctx, &client.QueryRefundRequest{HospOutRefundNo: "R-none"}); !client.IsCode(err, medpay.ErrRefundNotFound) {
		t.Fatalf("unknown refund: %v", err)
	}
	o, err := b.c.QueryOrder(ctx, &client.QueryOrderRequest{MedTransID: placed.MedTransID})
	if err != nil || o.MedTradeState != client.StateRefund || !o.Paid() {
		t.Fatalf("order after refunds: %v %+v", err, o)
	}

	// The REFUND notification decodes into the Refund fields.
	var body string
	err = b.env.DB.SQL().QueryRow(`SELECT body FROM outbox WHERE kind = 'REFUND' ORDER BY id LIMIT 1`).Scan(&body)
	if err != nil {
		t.Fatalf("no REFUND notification in the outbox: %v", err)
	}
	n, err := client.ParseNotification(strings.NewReader(body), b.h.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	if n.NotifyType != client.NotifyRefund || n.Refund == nil || n.Order != nil || n.Refund.MedRefundID == "" ||
		n.Refund.MedTransID != placed.MedTransID || n.Refund.MedRefundState != client.RefundSuccess {
		t.Fatalf("refund notification %+v %+v", n, n.Refund)
	}
}

// sandboxJSON posts JSON to a sandbox route and decodes the answer.
func sandboxJSON(t *testing.T, env *testenv.Env, path string, in any, out any) int {
	t.Helper()
	data, _ := json.Marshal(in)
	resp, err := env.Client.Post(env.URL+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(out)
	return resp.StatusCode
}

func TestMicroPay(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.env.Bind(t, b.h, "code-payer", "440300", "employee")
	var code struct {
		AuthCode  string `json:"auth_code"`
		ExpiresIn int    `json:"expires_in"`
	}
	if st := sandboxJSON(t, b.env, "/sandbox/paycode", map[string]string{"appid": b.h.AppID, "openid": "code-payer"}, &code); st != 200 || code.AuthCode == "" {
		t.Fatalf("paycode: %d %+v", st, code)
	}
	o := orderReq(b.h, "code-payer")
	req := &client.MicroPayRequest{AuthCode: code.AuthCode, OrderFields: client.OrderFields{OpenID: o.OpenID, OrderType: client.RegPay,
		HospOutTradeNo: o.HospOutTradeNo, HospitalName: o.HospitalName, Body: "挂号费", TotalFee: 500, CashFee: 500, InsuranceFee: 0,
		AllowFeeChange: 1, PayType: client.PayCash, SpbillCreateIP: o.SpbillCreateIP, CityID: o.CityID, SerialNo: o.SerialNo,
		OrgNo: o.OrgNo, GmtOutCreate: o.GmtOutCreate}}
	paid, err := b.c.MicroPay(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if paid.MedTransID == "" || paid.HospOutTradeNo != req.HospOutTradeNo || (paid.MedTradeState != client.StateSuccess && paid.MedTradeState != client.StateUserPaying) {
		t.Fatalf("micropay %+v", paid)
	}
	q, err := b.c.QueryOrder(ctx, &client.QueryOrderRequest{MedTransID: paid.MedTransID})
	if err != nil || q.MedTradeState != paid.MedTradeState {
		t.Fatalf("query after micropay: %v %+v", err, q)
	}
	// A code is single use.
	req2 := *req
	req2.HospOutTradeNo += "b"
	if _, err := b.c.MicroPay(ctx, &req2); !client.IsCode(err, medpay.ErrAuthCode) {
		t.Fatalf("reused auth_code: %v", err)
	}
}

func TestGetMedInfo(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := b.env.Bind(t, b.h, "info-payer", "440300", "employee")
	info, err := b.c.GetMedInfo(ctx, &client.GetMedInfoRequest{OpenID: "info-payer"})
	if err != nil {
		t.Fatal(err)
	}
	if info.CardStatus != "BOUND" || info.MedicalCardNo != p.CardNo || info.UserName != medpay.MaskName(p.Name) || info.CityID != "440300" {
		t.Fatalf("medinfo %+v", info)
	}
	if _, err := b.c.GetMedInfo(ctx, &client.GetMedInfoRequest{OpenID: "unbound"}); !client.IsCode(err, medpay.ErrNoCard) {
		t.Fatalf("unbound payer: %v", err)
	}
}

func TestGetBindURL(t *testing.T) {
	b := setup(t)
	u, err := b.c.GetBindURL(context.Background(), &client.GetBindURLRequest{OpenID: "new-payer", URL: "http://127.0.0.1:9/back"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.BindURL, b.env.URL+"/") {
		t.Fatalf("bind_url %q", u.BindURL)
	}
	resp, err := b.env.Client.Get(u.BindURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bind page: %d", resp.StatusCode)
	}
}

func TestBillDownload(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	_, placed := paidOrder(t, b, "bill-payer", "employee")
	day := b.env.Clock.Now().Format("20060102")
	b.env.Clock.Advance(24 * time.Hour)
	bill, err := b.c.BillDownload(ctx, &client.BillDownloadRequest{BillDate: day, BillType: "ALL"})
	if err != nil {
		t.Fatal(err)
	}
	text := string(bill)
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if !strings.Contains(text, placed.MedTransID) || !strings.HasPrefix(lines[len(lines)-1], "sha256=") {
		t.Fatalf("bill:\n%s", text)
	}
}
