package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/client"
	"github.com/medpay/medpay/client/medins"
	"github.com/medpay/medpay/hsa"
	"github.com/medpay/medpay/wire"
)

// The 医保 2.0 flow (docs/v3.md): the hospital talks to the bureau itself (authorisation →
// payAuthNo, 6201 → payOrdId and the split), places the cash part as a JSAPI order and the 医保
// order at the platform, and hands both to the platform's cashier with
// requestMedicalInsurancePay; the result comes by callback, or by query when the patient is back
// first.

// V3Config enables the 2.0 flow.
type V3Config struct {
	Client    *medins.Client // the hospital's APIv3 credentials
	HIS       *hsa.Client    // the hospital's institution at the bureau (national protocol)
	OrgCodg   string         // its code at the bureau: med_inst_no
	BureauURL string         // sandbox: where the bureau authorises a test person without the page
	IDNo      string         // sandbox: the test person the patient authorises as
}

// v3Record is what the 2.0 flow keeps beside the Record.
type v3Record struct {
	params *medins.PayParams
}

func (a *App) mountV3(mux, root *http.ServeMux) {
	mux.HandleFunc("POST /v3/clinic", a.v3Pay)
	mux.HandleFunc("GET /v3/orders/{no}/pay", a.v3PayPage)
	root.Handle("POST /v3/callback", a.cfg.V3.Client.CallbackHandler(a.v3Callback))
	root.HandleFunc("POST /v3/transaction", a.v3Transaction)
}

// v3Transaction acknowledges the JSAPI order's own callback; the 医保 order's callback is the
// one the app acts on.
func (a *App) v3Transaction(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, apiv3.MaxBody))
	if _, err := a.cfg.V3.Client.ParseTransaction(r.Context(), r.Header, body); err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write(apiv3.CallbackFail("verification failed"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// v3Pay authorises the patient at the bureau, uploads the bill (6201), places the JSAPI cash
// order and the 医保 order, then shows the page that opens the cashier.
func (a *App) v3Pay(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	openid := patientID(r)
	v3 := a.cfg.V3
	now := a.cfg.Now()
	a.mu.Lock()
	a.seq++
	no := fmt.Sprintf("V3%s%04d", now.In(wire.CST).Format("20060102150405"), a.seq)
	a.mu.Unlock()
	fail := func(msg string, err error) {
		a.cfg.Logger.Warn("v3 order", "trade_no", no, "err", err)
		a.render(w, http.StatusOK, "index.html", &pageData{OpenID: openid, Error: msg})
	}
	payAuthNo, err := sandboxPayAuth(ctx, v3.BureauURL, v3.HIS.AppID, v3.IDNo)
	if err != nil {
		fail("医保授权失败。", err)
		return
	}
	var up map[string]any
	if err := v3.HIS.Call(ctx, "uldFeeInfo", clinicBill(payAuthNo, no, v3.OrgCodg, a.cfg.CityID), &up); err != nil {
		fail("医保上传失败。", err)
		return
	}
	fund, acct, own := yuanField(up, "fundPay"), yuanField(up, "psnAcctPay"), yuanField(up, "ownPayAmt")
	svc := services[client.DiagPay]
	prepayID := ""
	mix := medins.InsuranceOnly
	if own > 0 {
		mix = medins.CashAndInsurance
		if prepayID, err = v3.Client.Prepay(ctx, &medins.PrepayRequest{PrepayRequest: apiv3.PrepayRequest{AppID: a.cfg.AppID,
			Description: svc.title, OutTradeNo: "JS" + no, NotifyURL: a.cfg.PublicURL + "/v3/transaction",
			Amount: apiv3.Amount{Total: own, Currency: "CNY"}, Payer: &apiv3.Payer{OpenID: openid}}}); err != nil {
			fail("下单失败,请稍后再试。", err)
			return
		}
	}
	o, err := v3.Client.CreateOrder(ctx, &medins.OrderRequest{MixPayType: mix, OrderType: "DIAG_PAY", AppID: a.cfg.AppID, OpenID: openid,
		OutTradeNo: no, SerialNo: no, PayOrderID: up["payOrdId"].(string), PayAuthNo: payAuthNo, CityID: a.cfg.CityID,
		MedInstName: a.cfg.HospitalName, MedInstNo: v3.OrgCodg, MedInsOrderCreateTime: now.Format(time.RFC3339),
		TotalFee: fund + acct + own, MedInsGovFee: fund, MedInsSelfFee: acct, MedInsCashFee: own, WechatPayCashFee: own,
		CallbackURL: a.cfg.PublicURL + "/v3/callback", PrepayID: prepayID})
	if err != nil {
		fail("下单失败:"+err.Error(), err)
		return
	}
	params, err := v3.Client.PayParams(a.cfg.AppID, prepayID, o.MixTradeNo)
	if err != nil {
		fail("签名失败。", err)
		return
	}
	a.mu.Lock()
	a.orders[no] = &Record{TradeNo: no, Kind: "V3", Title: svc.title + "(医保 2.0)", OpenID: openid, TotalFee: o.TotalFee,
		MedTransID: o.MixTradeNo, State: client.StateNotPay, CashFee: own, InsuranceFee: fund + acct, Created: now}
	a.v3[no] = &v3Record{params: params}
	a.mu.Unlock()
	http.Redirect(w, r, "/v3/orders/"+url.PathEscape(no)+"/pay", http.StatusSeeOther)
}

var v3PayPage = template.Must(template.New("v3pay").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title><script src="{{.Cashier}}"></script></head>
<body><h2 id="title">{{.Title}}</h2><p>合计 <span id="total">¥{{.Total}}</span></p>
<button id="v3pay">医保支付</button>
<script>
document.getElementById("v3pay").addEventListener("click", function () {
  requestMedicalInsurancePay({{.Params}});
});
</script></body></html>`))

// v3PayPage shows the order with the button that opens the platform's cashier; when the cashier
// sends the patient back here, it learns the result (by callback already, or by query) and
// shows the order.
func (a *App) v3PayPage(w http.ResponseWriter, r *http.Request) {
	no := r.PathValue("no")
	a.mu.Lock()
	rec, v3 := a.orders[no], a.v3[no]
	final := rec != nil && rec.Final() // the callback may be changing it meanwhile
	a.mu.Unlock()
	if rec == nil || v3 == nil {
		a.render(w, http.StatusNotFound, "order.html", &pageData{Error: "找不到这笔订单。"})
		return
	}
	if r.URL.Query().Get("mixTradeNo") != "" {
		// Back from the cashier: what the URL says is a hint; the platform is asked.
		if !final {
			if o, err := a.cfg.V3.Client.QueryByOutTradeNo(r.Context(), no); err == nil {
				a.v3Learn(o, "query")
			}
		}
		http.Redirect(w, r, "/orders/"+url.PathEscape(no), http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	v3PayPage.Execute(w, map[string]any{"Title": rec.Title, "Total": fmt.Sprintf("%d.%02d", rec.TotalFee/100, rec.TotalFee%100),
		"Cashier": a.cfg.MedpayURL + "/v3/cashier.js", "Params": v3.params})
}

func (a *App) v3Callback(_ context.Context, o *medins.Order) error {
	if !a.v3Learn(o, "notification") {
		return errors.New("unknown order")
	}
	return nil
}

// v3Learn records the state of a 2.0 order; it reports whether the order is the app's.
func (a *App) v3Learn(o *medins.Order, source string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := a.orders[o.OutTradeNo]
	if rec == nil || rec.MedTransID != o.MixTradeNo {
		return false
	}
	if rec.Final() {
		return true
	}
	switch o.MixPayStatus {
	case medins.MixSuccess:
		rec.State, rec.PaidAt = client.StateSuccess, a.cfg.Now()
	case medins.MixFail:
		rec.State = client.StatePayError
	default:
		return true
	}
	rec.Source = source
	if source == "notification" {
		a.Notifications++
	} else {
		a.Queries++
	}
	return true
}

// sandboxPayAuth authorises a test person at the simulated bureau without its page (national.md §5).
func sandboxPayAuth(ctx context.Context, bureauURL, appID, idNo string) (string, error) {
	body, _ := json.Marshal(map[string]string{"appId": appID, "idNo": idNo, "scope": "pay"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, bureauURL+"/sandbox/payauth", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ans struct {
		PayAuthNo string `json:"payAuthNo"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK || ans.PayAuthNo == "" {
		return "", fmt.Errorf("sandbox payauth: HTTP %d", resp.StatusCode)
	}
	return ans.PayAuthNo, nil
}

// clinicBill is the clinic bill as 6201 fee details (bureau.md's worked example), the personal
// account left unused so that a cash part remains.
func clinicBill(payAuthNo, no, orgCodg, city string) map[string]any {
	return map[string]any{"payAuthNo": payAuthNo, "mdtrtId": "MD" + no, "orgCodg": orgCodg, "medOrgOrd": no,
		"medType": "11", "insuplcAdmdvs": city, "acctUsedFlag": "0", "medfeeSumamt": "65.00",
		"feedetailList": []map[string]any{
			{"feedetlSn": "1", "detItemFeeSumamt": "25.00", "cnt": "1", "pric": "25.00", "medListCodg": "250101001", "medListName": "血常规", "chrgitmLv": "01"},
			{"feedetlSn": "2", "detItemFeeSumamt": "37.00", "cnt": "2", "pric": "18.50", "medListCodg": "86900011", "medListName": "阿莫西林胶囊", "chrgitmLv": "02", "selfpayProp": "0.10"},
			{"feedetlSn": "3", "detItemFeeSumamt": "3.00", "cnt": "1", "pric": "3.00", "medListCodg": "X0001", "medListName": "口罩", "chrgitmLv": "03"},
		}}
}

// yuanField reads a yuan string of a national answer as fen.
func yuanField(m map[string]any, k string) int64 {
	s, _ := m[k].(string)
	var yuan, fen int64
	var frac string
	fmt.Sscanf(s, "%d.%s", &yuan, &frac)
	if len(frac) == 2 {
		fmt.Sscanf(frac, "%d", &fen)
	}
	return yuan*100 + fen
}
