package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/client/medins"
	"github.com/medpay/medpay/hsa"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/secret"
)

// TestBrowserV3Flow: in Chromium, the patient pays a clinic bill through the hospital's 医保 2.0
// flow: the hospital uploads to the bureau itself, places the JSAPI and 医保 orders, and its page
// calls requestMedicalInsurancePay from the platform's cashier.js; the patient sees the split on
// the platform's cashier, enters the PIN, and lands back on the hospital's page showing 已支付,
// learnt by callback or by query.
func TestBrowserV3Flow(t *testing.T) {
	br := testenv.NewBrowser(t)
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	if env.BureauURL == "" {
		t.Fatal("the test platform serves no bureau for the HIS")
	}
	ctx := context.Background()
	h := env.Hospital(t)
	// The hospital's APIv3 credentials, as medpay merchant create --v3 makes them.
	key, err := apiv3.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v3 := &medpay.MerchantV3{MerchantID: h.ID, SerialNo: secret.RandomString(40, "0123456789ABCDEF"),
		PublicKey: apiv3.EncodePublicKey(&key.PublicKey), APIv3Key: secret.APIKey(), CreatedAt: time.Now()}
	if err := env.Store.CreateMerchantV3(ctx, v3); err != nil {
		t.Fatal(err)
	}
	pk, err := env.Store.PlatformKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	platform, _ := apiv3.ParsePrivateKey([]byte(pk.PrivateKey))
	sdk, err := medins.New(medins.Config{BaseURL: env.URL, MchID: h.MchID, SerialNo: v3.SerialNo, PrivateKey: apiv3.EncodePrivateKey(key),
		APIv3Key: v3.APIv3Key, PlatformPublicKey: apiv3.EncodePublicKey(&platform.PublicKey), PlatformPublicKeyID: pk.KeyID, HTTP: env.Client})
	if err != nil {
		t.Fatal(err)
	}
	// The hospital's institution at the bureau, and its HIS's envelope client.
	in, err := env.Bureau.CreateInstitution(ctx, bureau.InstitutionSpec{OrgCodg: "H44030100009", Name: h.Name, CityID: "440300", Level: 3})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := hsa.ParsePrivateKey(in.PrivateKey)
	bpub, _ := hsa.ParsePublicKey(in.BureauPublicKey)
	his := &hsa.Client{BaseURL: env.BureauURL, AppID: in.AppID, AppSecret: in.AppSecret, PrivateKey: priv, BureauKey: bpub, Timeout: 30 * time.Second}
	p, _ := bureau.FindPerson("440300", bureau.ScenarioEmployee)

	hosp := httptest.NewUnstartedServer(nil)
	app := NewApp(Config{PublicURL: "http://" + hosp.Listener.Addr().String(), HospitalName: h.Name, CityID: "440300",
		MedpayURL: env.URL, AppID: h.AppID, Now: env.Clock.Now,
		V3: &V3Config{Client: sdk, HIS: his, OrgCodg: in.OrgCodg, BureauURL: env.BureauURL, IDNo: p.IDNo}})
	hosp.Config.Handler = app
	hosp.Start()
	t.Cleanup(hosp.Close)

	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { env.Worker.Run(wctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	br.Do(chromedp.Navigate(hosp.URL+"/"), chromedp.WaitVisible("#v3clinic"), chromedp.Click("#v3clinic"))
	br.Do(chromedp.WaitVisible("#v3pay"), chromedp.Click("#v3pay"))
	// The platform's cashier: the split, then the PIN.
	br.Do(chromedp.WaitVisible("#pin"))
	if total, gov := br.Text("#total"), br.Text("#gov"); total != "¥65.00" || gov == "¥0.00" {
		t.Fatalf("cashier shows total %q, fund %q", total, gov)
	}
	br.Do(chromedp.SendKeys("#pin", "123456"), chromedp.Click("#pay"), chromedp.WaitVisible("#state"))
	loc, err := chromedp.Run(br.Ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, hosp.URL+"/orders/V3") {
		t.Fatalf("landed on %s", loc)
	}
	if state := br.Text("#state"); state != "已支付" {
		t.Fatalf("hospital page shows %q", state)
	}
	t.Logf("paid, the hospital learnt it by %s", br.Text("#source"))
}
