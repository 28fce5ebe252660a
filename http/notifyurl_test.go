package http_test

import (
	"testing"

	medpayhttp "github.com/medpay/medpay/http"
	"github.com/medpay/medpay/internal/testenv"
)

// TestNotifyURLPrivateAddresses: outside the sandbox a notify_url on loopback, private or
// link-local addresses is refused at order time, unless the operator allows private ones.
func TestNotifyURLPrivateAddresses(t *testing.T) {
	t.Parallel()
	off := false
	for _, allow := range []bool{false, true} {
		env := testenv.New(t, testenv.Options{Sandbox: &off, Config: medpayhttp.Config{AllowPrivateNotify: allow}})
		h := env.Hospital(t)
		token := env.Token(t, h)
		for _, u := range []string{"http://127.0.0.1:8080/n", "http://10.1.2.3/n", "http://[::1]/n", "http://169.254.169.254/latest", "http://localhost/n"} {
			req := testenv.OrderRequest(h, "o", "notify_url", u)
			if allow {
				ok(t, env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, req))
				continue
			}
			resp, body := env.Post(t, "/payinsurance/unifiedorder", token, signed(t, req, h.APIKey))
			protocolFail(t, resp, body, "参数格式校验错误 notify_url is invalid")
		}
	}
}

// TestSandboxRoutesOffInProduction: the sandbox helper API does not exist outside the sandbox.
func TestSandboxRoutesOffInProduction(t *testing.T) {
	t.Parallel()
	off := false
	env := testenv.New(t, testenv.Options{Sandbox: &off})
	resp, err := env.Client.Get(env.URL + "/sandbox/persons")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("/sandbox/persons in production answered %d", resp.StatusCode)
	}
}
