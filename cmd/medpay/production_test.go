package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/sqlstore"
)

// counterparties serves a bureau and a cash channel as processes of their own, each on its own
// database, and returns the environment that points medpay serve at both: what production mode
// needs to start.
func counterparties(t *testing.T) []string {
	t.Helper()
	b := newBureau(t)
	cdb := filepath.Join(t.TempDir(), "cash.db")
	addr := freeAddr(t)
	startProc(t, "http://"+addr+"/healthz", "cash", "serve", "--db", cdb, "--addr", addr)
	return append(append([]string(nil), b.env...), cashEnv(t, cashMerchant(t, cdb), "http://"+addr)...)
}

// cashEnv is the environment that points medpay serve at the channel at base as merchant cr.
func cashEnv(t *testing.T, cr *cash.MerchantCredentials, base string) []string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"apiv3.key": cr.APIv3Key, "merchant_key.pem": cr.MerchantPrivateKey, "channel_pub.pem": cr.PlatformPublicKey}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"MEDPAY_CASH_URL=" + base, "MEDPAY_CASH_MCHID=" + cr.MchID, "MEDPAY_CASH_SERIAL_NO=" + cr.MerchantSerialNo,
		"MEDPAY_CASH_APIV3_KEY_FILE=" + filepath.Join(dir, "apiv3.key"),
		"MEDPAY_CASH_PRIVATE_KEY_FILE=" + filepath.Join(dir, "merchant_key.pem"),
		"MEDPAY_CASH_PUBLIC_KEY_FILE=" + filepath.Join(dir, "channel_pub.pem"),
		"MEDPAY_CASH_PUBLIC_KEY_ID=" + cr.PlatformPublicKeyID}
}

// withoutMedpayEnv is the process environment without any MEDPAY_ setting, so that a test sees
// exactly the configuration it gives.
func withoutMedpayEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MEDPAY_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// TestProductionRefusesPlayMoney: outside the sandbox the server does not start unless both
// counterparties are remote, and says which flags are missing.
func TestProductionRefusesPlayMoney(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	for _, c := range []struct {
		args          []string
		named, absent []string
	}{
		{nil, []string{"--bureau-url", "--cash-url"}, nil},
		{[]string{"--bureau-url", "http://127.0.0.1:1"}, []string{"--cash-url"}, []string{"--bureau-url"}},
		{[]string{"--cash-url", "http://127.0.0.1:1"}, []string{"--bureau-url"}, []string{"--cash-url"}},
	} {
		db := filepath.Join(t.TempDir(), "medpay.db")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, binary(t), append([]string{"serve", "--sandbox=false", "--db", db, "--addr", freeAddr(t)}, c.args...)...)
		cmd.Env = withoutMedpayEnv("MEDPAY_SERVER_KEY=" + strings.Repeat("ab", 32))
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || cmd.ProcessState == nil || cmd.ProcessState.Success() {
			t.Fatalf("serve --sandbox=false %v started or was stopped: %v\n%s", c.args, err, out)
		}
		for _, f := range c.named {
			if !strings.Contains(string(out), f) {
				t.Errorf("serve --sandbox=false %v: the refusal does not name %s: %s", c.args, f, out)
			}
		}
		for _, f := range c.absent {
			if strings.Contains(string(out), f) {
				t.Errorf("serve --sandbox=false %v: the refusal names %s, which was given: %s", c.args, f, out)
			}
		}
		if strings.Contains(string(out), "medpay serving") {
			t.Errorf("serve --sandbox=false %v announced it serves: %s", c.args, out)
		}
	}
}

// TestProductionHasNoPlayMoney starts production mode with a remote bureau and cash channel: no
// sandbox route answers and the database holds no sandbox person or wallet.
func TestProductionHasNoPlayMoney(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	env := counterparties(t)
	db := filepath.Join(t.TempDir(), "medpay.db")
	addr := freeAddr(t)
	p := startProcEnv(t, env, "http://"+addr+"/healthz", "serve", "--db", db, "--addr", addr, "--sandbox=false")
	for _, path := range []string{"/sandbox/persons", "/bureau/sandbox/persons", "/cash/healthz"} {
		resp, err := httpGet("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		if resp != 404 {
			t.Errorf("GET %s answered %d in production mode", path, resp)
		}
	}
	p.stop(t)
	sdb, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	for _, table := range []string{"bureau_persons", "cash_wallets"} {
		var n int
		if err := sdb.SQL().QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err == nil && n > 0 {
			t.Errorf("%s holds %d rows in a production database", table, n)
		}
	}
}

// httpGet returns the status of GET url.
func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
