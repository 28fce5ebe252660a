package medins_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	sdk "github.com/medpay/medpay/client/medins"
	"github.com/medpay/medpay/medins"
)

// TestSDK runs a mixed order through the SDK as a hospital would: typed requests, the payer's
// fields encrypted, a refusal as *apiv3.Error, the callback verified and opened by its handler
// (which refuses a signature probe), and queries.
func TestSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hosp := e.merchant(t, medpay.KindHospital)
	got := make(chan *sdk.Order, 2)
	var c *sdk.Client
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.CallbackHandler(func(_ context.Context, o *sdk.Order) error { got <- o; return nil }).ServeHTTP(w, r)
	}))
	defer hook.Close()
	var err error
	c, err = sdk.New(sdk.Config{BaseURL: e.url, MchID: hosp.MchID, SerialNo: hosp.client.SerialNo,
		PrivateKey: apiv3.EncodePrivateKey(hosp.client.Key), APIv3Key: string(hosp.key),
		PlatformPublicKey: apiv3.EncodePublicKey(e.h.PlatformPublicKey()), PlatformPublicKeyID: e.h.PlatformKeyID()})
	if err != nil {
		t.Fatal(err)
	}
	up := e.upload(t, bureau.ScenarioEmployee, "SDK-1", false)
	prepayID, err := c.Prepay(ctx, &sdk.PrepayRequest{PrepayRequest: apiv3.PrepayRequest{AppID: hosp.AppID, Description: "门诊",
		OutTradeNo: "JS-SDK-1", NotifyURL: hook.URL, Amount: apiv3.Amount{Total: up.own}, Payer: &apiv3.Payer{OpenID: "o-sdk"}}})
	if err != nil {
		t.Fatal(err)
	}
	name, _ := c.EncryptSensitive("张三")
	digest, _ := c.EncryptSensitive(sdk.IDDigest(up.idNo))
	req := e.orderFor(t, hosp, medins.CashAndInsurance, "SDK-1", "o-sdk", &up, 0)
	req.Payer = &sdk.Payer{Name: name, IDDigest: digest, CardType: "ID_CARD"}
	req.PrepayID, req.CallbackURL = prepayID, hook.URL+"/cb"

	bad := req
	bad.TotalFee++
	_, err = c.CreateOrder(ctx, &bad)
	var ae *apiv3.Error
	if !errors.As(err, &ae) || ae.Code != apiv3.CodeRuleLimit {
		t.Fatalf("a broken total gave %v", err)
	}
	o, err := c.CreateOrder(ctx, &req)
	if err != nil {
		t.Fatal(err)
	}
	params, err := c.PayParams(hosp.AppID, prepayID, o.MixTradeNo)
	if err != nil || params.Package != "prepay_id="+prepayID {
		t.Fatalf("pay params %+v %v", params, err)
	}
	if status, _ := e.confirm(t, o.MixTradeNo, cash.DefaultPIN); status != http.StatusOK {
		t.Fatalf("confirm %d", status)
	}
	e.deliver(t)
	select {
	case cb := <-got:
		if cb.MixTradeNo != o.MixTradeNo || cb.MixPayStatus != sdk.MixSuccess {
			t.Fatalf("callback %+v", cb)
		}
	default:
		t.Fatal("the SDK's handler did not accept the callback")
	}

	// A probe signed WECHATPAY/SIGNTEST/… is refused by the handler.
	probe := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/cb", nil)
	r.Header.Set(apiv3.HeaderSignature, apiv3.ProbePrefix+"abc")
	r.Header.Set(apiv3.HeaderSerial, e.h.PlatformKeyID())
	c.CallbackHandler(func(context.Context, *sdk.Order) error { t.Error("probe accepted"); return nil }).ServeHTTP(probe, r)
	if probe.Code/100 != 4 {
		t.Fatalf("probe answered %d", probe.Code)
	}

	for _, q := range []func() (*sdk.Order, error){
		func() (*sdk.Order, error) { return c.QueryByMixTradeNo(ctx, o.MixTradeNo) },
		func() (*sdk.Order, error) { return c.QueryByOutTradeNo(ctx, "SDK-1") },
	} {
		if got, err := q(); err != nil || got.MixPayStatus != sdk.MixSuccess {
			t.Fatalf("query %+v %v", got, err)
		}
	}
	if js, err := c.QueryPrepay(ctx, "JS-SDK-1"); err != nil || js.TradeState != apiv3.StateSuccess {
		t.Fatalf("prepay query %+v %v", js, err)
	}
}
