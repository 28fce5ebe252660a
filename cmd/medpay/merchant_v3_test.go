package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
