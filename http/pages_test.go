package http_test

import (
	"bytes"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/medpay/medpay/internal/testenv"
)

func TestPayQRCodeIsPNGOfPayURL(t *testing.T) {
	env, h, token := setup(t)
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "qr"))
	ok(t, r)
	resp, err := env.Client.Get(r.Get("code_url"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("not a usable PNG: %v", err)
	}
}

// TestPayPageRefusesCrossOriginPost: a form on another site cannot make the payer pay.
func TestPayPageRefusesCrossOriginPost(t *testing.T) {
	env, h, token := setup(t)
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "csrf"))
	ok(t, r)
	req, _ := http.NewRequest(http.MethodPost, r.Get("pay_url"), strings.NewReader(url.Values{"pin": {"123456"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := env.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin POST answered %d", resp.StatusCode)
	}
	q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", r.Get("med_trans_id")))
	if q.Get("med_trade_state") != "NOTPAY" {
		t.Fatalf("order state %s after a cross-origin POST", q.Get("med_trade_state"))
	}
}

func TestPayPageUnknownOrderAndResult(t *testing.T) {
	env, h, token := setup(t)
	resp, err := env.Client.Get(env.URL + "/pay/M000")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(body), "订单不存在") {
		t.Fatalf("unknown order page: %d", resp.StatusCode)
	}
	// A paid order's page shows the result instead of the form.
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "paid-page"))
	env.Confirm(t, r.Get("med_trans_id"), "123456")
	resp, err = env.Client.Get(r.Get("pay_url"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "支付成功") || strings.Contains(string(body), `name="pin"`) {
		t.Fatalf("paid order page:\n%s", body)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	env, h, token := setup(t)
	env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "m"))
	env.Post(t, "/payinsurance/unifiedorder", token, []byte("<xml>"))
	resp, err := env.Client.Get(env.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	resp, err = env.Client.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`medpay_api_requests_total{endpoint="unifiedorder",outcome="SUCCESS"} 1`,
		`medpay_api_requests_total{endpoint="unifiedorder",outcome="FAIL"} 1`,
		`medpay_api_request_seconds_bucket`,
		`medpay_api_signature_failures_total 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	env.DB.Close()
	resp, err = env.Client.Get(env.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the database closed: %d", resp.StatusCode)
	}
}
