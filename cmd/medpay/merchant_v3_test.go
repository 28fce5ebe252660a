package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medpay/medpay/apiv3"
)

// TestMerchantCreateV3 provisions APIv3 credentials (v3.md §5) with and without a public key of
// the merchant's own: the platform key is the same for both, a private key is printed only when
// medpay generated it, and the printed pieces work together.
func TestMerchantCreateV3(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "medpay.db")
	create := func(extra ...string) map[string]any {
		t.Helper()
		var out, errOut bytes.Buffer
		args := append([]string{"merchant", "create", "--db", db, "--name", "甲医院", "--city", "440300", "--v3", "--json"}, extra...)
		if err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut); err != nil {
			t.Fatal(err, errOut.String())
		}
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a := create()
	for _, k := range []string{"appid", "mch_id", "mchid", "apiv3_key", "merchant_serial_no", "merchant_private_key", "platform_public_key", "platform_public_key_id"} {
		if s, _ := a[k].(string); s == "" {
			t.Errorf("no %s", k)
		}
	}
	if len(a["apiv3_key"].(string)) != 32 {
		t.Errorf("apiv3_key %q is not 32 characters", a["apiv3_key"])
	}
	priv, err := apiv3.ParsePrivateKey([]byte(a["merchant_private_key"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	plat, err := apiv3.ParsePublicKey([]byte(a["platform_public_key"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	if plat.Equal(&priv.PublicKey) {
		t.Fatal("the platform key is the merchant's")
	}

	key, err := apiv3.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(dir, "merchant.pem")
	if err := os.WriteFile(pemFile, []byte(apiv3.EncodePublicKey(&key.PublicKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	b := create("--public-key", pemFile)
	if _, ok := b["merchant_private_key"]; ok {
		t.Error("a private key was printed although the merchant gave its public key")
	}
	if b["platform_public_key_id"] != a["platform_public_key_id"] || b["platform_public_key"] != a["platform_public_key"] {
		t.Error("the platform key changed between merchants")
	}
	if b["merchant_serial_no"] == a["merchant_serial_no"] {
		t.Error("two merchants share a serial")
	}
}

// TestServeV3: medpay serve answers 医保 2.0 requests signed with credentials from merchant
// create --v3 (made while it serves), signs its answers with the key it printed, and serves the
// cashier script.
func TestServeV3(t *testing.T) {
	// Not parallel, like the other tests that start the binary.
	db := filepath.Join(t.TempDir(), "medpay.db")
	addr := freeAddr(t)
	startProc(t, "http://"+addr+"/healthz", "serve", "--db", db, "--addr", addr)
	out, err := exec.Command(binary(t), "merchant", "create", "--db", db, "--name", "乙医院", "--city", "440300", "--v3", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var cr struct {
		MchID      string `json:"mchid"`
		Serial     string `json:"merchant_serial_no"`
		PrivateKey string `json:"merchant_private_key"`
		Platform   string `json:"platform_public_key"`
		PlatformID string `json:"platform_public_key_id"`
	}
	if err := json.Unmarshal(out, &cr); err != nil {
		t.Fatal(err)
	}
	key, err := apiv3.ParsePrivateKey([]byte(cr.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := apiv3.ParsePublicKey([]byte(cr.Platform))
	if err != nil {
		t.Fatal(err)
	}
	c := &apiv3.Client{BaseURL: "http://" + addr, MchID: cr.MchID, SerialNo: cr.Serial, Key: key,
		Verifier: &apiv3.AnswerVerifier{Key: pub, KeyID: cr.PlatformID}}
	err = c.Do(context.Background(), http.MethodGet, "/v3/med-ins/orders/out-trade-no/NONE", nil, nil)
	var ae *apiv3.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Code != apiv3.CodeOrderNotExist {
		t.Fatalf("query of an unknown order: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/v3/cashier.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(js), "requestMedicalInsurancePay") {
		t.Fatalf("cashier.js: %d %s", resp.StatusCode, js)
	}
}
