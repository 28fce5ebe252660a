package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay/wire"
)

func TestMerchantListShow(t *testing.T) {
	db := filepath.Join(t.TempDir(), "medpay.db")
	hosp := strings.Fields(createHospital(t, db))
	prov := mustCLI(t, "provider", "create", "--db", db, "--name", "某服务商", "--json")
	var p struct {
		MchID  string `json:"mch_id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(prov), &p); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "provider", "authorize", "--db", db, "--provider", p.MchID, "--merchant", hosp[0])

	list := mustCLI(t, "merchant", "list", "--db", db)
	if !strings.Contains(list, hosp[0]) || !strings.Contains(list, "深圳市人民医院") || strings.Contains(list, p.MchID) {
		t.Errorf("merchant list:\n%s", list)
	}
	if !strings.Contains(list, "CREATED (China time)") {
		t.Errorf("merchant list does not say its times are China time:\n%s", list)
	}
	plist := mustCLI(t, "provider", "list", "--db", db)
	if !strings.Contains(plist, p.MchID) || !strings.Contains(plist, hosp[0]) || strings.Contains(plist, "深圳市人民医院") {
		t.Errorf("provider list:\n%s", plist)
	}
	show := mustCLI(t, "merchant", "show", "--db", db, hosp[0])
	for _, want := range []string{"mch_id", hosp[0], "440300", "providers", p.MchID, "(China time)"} {
		if !strings.Contains(show, want) {
			t.Errorf("merchant show lacks %q:\n%s", want, show)
		}
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, "merchant", "show", "--json", "--db", db, hosp[0])), &j); err != nil || j["mch_id"] != hosp[0] {
		t.Errorf("merchant show --json: %v %v", err, j)
	}
	for _, out := range []string{list, plist, show} {
		if strings.Contains(out, hosp[1]) || strings.Contains(out, p.Secret) {
			t.Fatal("a listing printed a credential")
		}
	}
	if _, err := runCLI(t, "merchant", "show", "--db", db, "1900000000"); err == nil || !strings.Contains(err.Error(), "no merchant") {
		t.Errorf("unknown merchant: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestNotifyReceive plays the platform against 'medpay notify receive': a notification signed
// with the key is printed as verified and answered SUCCESS; a badly signed one is answered FAIL.
func TestNotifyReceive(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	addr := freeAddr(t)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"notify", "receive", "--addr", addr, "--count", "1"},
			func(k string) string { return map[string]string{"MEDPAY_KEY": key}[k] }, &out, io.Discard)
	}()
	post := func(m *wire.Message) *wire.Message {
		t.Helper()
		var resp *http.Response
		var err error
		for { // until the receiver listens: it says so before serving
			if strings.Contains(out.String(), "listening") {
				resp, err = http.Post("http://"+addr+"/notify", "text/xml", bytes.NewReader(m.Bytes()))
				break
			}
			select {
			case err := <-done:
				t.Fatalf("receiver ended: %v", err)
			case <-time.After(5 * time.Millisecond): // poll the output again
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		a, err := wire.Decode(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	n := wire.NewMessage()
	for _, kv := range [][2]string{{"return_code", "SUCCESS"}, {"appid", "wx1"}, {"mch_id", "1900000001"}, {"nonce_str", "n1"},
		{"notify_type", "PAY"}, {"notify_id", "M1-SUCCESS"}, {"med_trans_id", "M1"}, {"med_trade_state", "SUCCESS"}} {
		n.Set(kv[0], kv[1])
	}
	bad := n.Clone()
	if err := wire.SignInPlace(bad, strings.Repeat("x", 32)); err != nil {
		t.Fatal(err)
	}
	if a := post(bad); a.Get("return_code") != "FAIL" {
		t.Errorf("a badly signed notification was answered %s", a.Get("return_code"))
	}
	if err := wire.SignInPlace(n, key); err != nil {
		t.Fatal(err)
	}
	if a := post(n); a.Get("return_code") != "SUCCESS" {
		t.Errorf("a well signed notification was answered %s", a.Get("return_code"))
	}
	if err := <-done; err != nil { // --count 1: it stops after the one accepted
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"SIGNATURE DOES NOT VERIFY", "PAY notification M1-SUCCESS", "signature verified", "med_trade_state  SUCCESS", "(China time)"} {
		if !strings.Contains(got, want) {
			t.Errorf("receiver output lacks %q:\n%s", want, got)
		}
	}
}

func TestDefaultBaseURLHost(t *testing.T) {
	for addr, want := range map[string]string{
		":8096": "127.0.0.1:8096", "0.0.0.0:80": "127.0.0.1:80", "[::]:8080": "127.0.0.1:8080",
		"127.0.0.1:8080": "127.0.0.1:8080", "pay.example:443": "pay.example:443",
	} {
		var warn bytes.Buffer
		if got := defaultHost(addr, &warn); got != want {
			t.Errorf("defaultHost(%q) = %q, want %q", addr, got, want)
		}
		if (want != addr) != strings.Contains(warn.String(), "--base-url") {
			t.Errorf("defaultHost(%q) warned %q", addr, warn.String())
		}
	}
}
