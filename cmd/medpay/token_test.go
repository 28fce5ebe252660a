package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/internal/testenv"
)

// devSetup starts a platform with a 深圳 hospital and returns the MEDPAY_* environment a
// developer would export for it.
func devSetup(t *testing.T) (*testenv.Env, *testenv.Merchant, map[string]string) {
	t.Helper()
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	return env, h, map[string]string{
		"MEDPAY_BASE_URL": env.URL, "MEDPAY_APPID": h.AppID, "MEDPAY_MCH_ID": h.MchID,
		"MEDPAY_KEY": h.APIKey, "MEDPAY_SECRET": h.Secret,
	}
}

// cli runs the command line with environment vars and returns stdout, stderr and the error.
func cli(t *testing.T, vars map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return vars[k] }, &out, &errOut)
	if key := vars["MEDPAY_KEY"]; key != "" && (strings.Contains(out.String(), key) || strings.Contains(errOut.String(), key)) {
		t.Fatalf("medpay %v printed the API key", args)
	}
	return out.String(), errOut.String(), err
}

// fields parses "name  value" lines.
func fields(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		m[k] = strings.TrimSpace(v)
	}
	return m
}

func TestTokenCommand(t *testing.T) {
	env, h, vars := devSetup(t)
	out, _, err := cli(t, vars, "token")
	if err != nil {
		t.Fatal(err)
	}
	f := fields(out)
	if len(f["access_token"]) < 20 || f["expires_in"] == "" || f["expires_at"] == "" {
		t.Fatalf("token output:\n%s", out)
	}
	// The token works for a call.
	r := env.Call(t, "/payinsurance/queryorder", f["access_token"], h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "hosp_out_trade_no", "H"))
	if r.Get("err_code") != medpay.ErrOrderNotFound {
		t.Fatalf("call with the printed token: %s %s", r.Get("return_msg"), r.Get("err_code"))
	}

	// Flags override the environment; no API key is needed for a token.
	out, _, err = cli(t, map[string]string{"MEDPAY_APPID": "wx-ignored"}, "token", "--json",
		"--base-url", env.URL, "--appid", h.AppID, "--mch-id", h.MchID, "--secret", h.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.AccessToken == "" || js.ExpiresIn < 7000 {
		t.Fatalf("--json: %v %s", err, out)
	}

	bad := map[string]string{}
	for k, v := range vars {
		bad[k] = v
	}
	bad["MEDPAY_SECRET"] = "wrong"
	if _, _, err := cli(t, bad, "token"); err == nil || !strings.Contains(err.Error(), "40125") {
		t.Fatalf("wrong secret: %v", err)
	}
	delete(bad, "MEDPAY_SECRET")
	if _, _, err := cli(t, bad, "token"); err == nil || !strings.Contains(err.Error(), "MEDPAY_SECRET") {
		t.Fatalf("no secret: %v", err)
	}
}

func TestTokenCommandProvider(t *testing.T) {
	env, h, _ := devSetup(t)
	prov := env.NewMerchant(t, medpay.KindProvider, 0)
	vars := map[string]string{"MEDPAY_BASE_URL": env.URL, "MEDPAY_APPID": prov.AppID, "MEDPAY_MCH_ID": prov.MchID,
		"MEDPAY_KEY": prov.APIKey, "MEDPAY_SECRET": prov.Secret, "MEDPAY_SUB_APPID": h.AppID}
	if _, _, err := cli(t, vars, "token"); err == nil || !strings.Contains(err.Error(), "402") {
		t.Fatalf("not authorised: %v", err)
	}
	if err := env.Store.Authorize(context.Background(), prov.ID, h.ID); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, vars, "token")
	if err != nil || fields(out)["access_token"] == "" {
		t.Fatalf("provider token: %v\n%s", err, out)
	}
	// With the hospital's mch_id too, the order commands work in provider mode.
	vars["MEDPAY_SUB_MCH_ID"] = h.MchID
	if _, _, err := cli(t, vars, "order", "query", "--trade-no", "H-none"); err == nil || !strings.Contains(err.Error(), "err_code 502") {
		t.Fatalf("provider query: %v", err)
	}
}

// A new token cuts the older ones to 5 minutes, so the commands reuse the one they got.
func TestTokenCache(t *testing.T) {
	_, _, vars := devSetup(t)
	path := t.TempDir() + "/tokens.json"
	vars["MEDPAY_TOKEN_CACHE"] = path
	tokenOf := func(args ...string) string {
		t.Helper()
		out, _, err := cli(t, vars, args...)
		if err != nil {
			t.Fatal(err)
		}
		return fields(out)["access_token"]
	}
	first := tokenOf("token")
	if _, _, err := cli(t, vars, "order", "query", "--trade-no", "H-none"); err == nil || !strings.Contains(err.Error(), "err_code 502") {
		t.Fatalf("order query: %v", err)
	}
	if again := tokenOf("token"); again != first {
		t.Errorf("the second command got a new token")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("token cache mode %v, want 0600", st.Mode().Perm())
	}
	fresh := tokenOf("token", "--new")
	if fresh == first {
		t.Errorf("--new returned the cached token")
	}
	if again := tokenOf("token"); again != fresh {
		t.Errorf("the cache did not keep the new token")
	}
	// Another platform, or no cache, gets its own token.
	vars["MEDPAY_TOKEN_CACHE"] = "off"
	if other := tokenOf("token"); other == fresh {
		t.Errorf("--token-cache off reused a token")
	}
}
