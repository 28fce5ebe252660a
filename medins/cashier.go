package medins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
)

// The cashier (v3.md §3): the sandbox stand-in for wx.requestMedicalInsurancePay. The hospital's
// page loads /v3/cashier.js and calls requestMedicalInsurancePay with the parameters it signed;
// the function opens the cashier page, which verifies paySign, shows the split, takes the PIN,
// pays (cash, then the bureau) and sends the payer back to the hospital's page.

const cashierScript = `// medpay 医保 2.0 cashier (v3.md §3)
(function () {
  var cashier = %s;
  window.requestMedicalInsurancePay = function (p) {
    var q = new URLSearchParams({
      mixTradeNo: p.mixTradeNo, appId: p.appId, timeStamp: p.timeStamp, nonceStr: p.nonceStr,
      "package": p["package"], signType: p.signType, paySign: p.paySign, "return": location.href
    });
    location.assign(cashier + "?" + q.toString());
    return new Promise(function () {});
  };
})();
`

func (h *Handler) cashierJS(w http.ResponseWriter, r *http.Request) {
	u, _ := json.Marshal(h.cfg.BaseURL + "/v3/cashier")
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	fmt.Fprintf(w, cashierScript, u)
}

// cashierParams are requestMedicalInsurancePay's parameters as the cashier receives them.
type cashierParams struct {
	MixTradeNo, AppID, TimeStamp, NonceStr, Package, SignType, PaySign, Return string
}

func readParams(v url.Values) cashierParams {
	return cashierParams{MixTradeNo: v.Get("mixTradeNo"), AppID: v.Get("appId"), TimeStamp: v.Get("timeStamp"),
		NonceStr: v.Get("nonceStr"), Package: v.Get("package"), SignType: v.Get("signType"), PaySign: v.Get("paySign"), Return: v.Get("return")}
}

// PaySignMessage is what the merchant signs for the cashier: appId\ntimeStamp\nnonceStr\npackage\n.
func PaySignMessage(appID, timeStamp, nonceStr, pkg string) []byte {
	return []byte(appID + "\n" + timeStamp + "\n" + nonceStr + "\n" + pkg + "\n")
}

// verifyParams finds the order and checks paySign with the key of the merchant that placed it.
func (h *Handler) verifyParams(ctx context.Context, p cashierParams) (*medpay.Order, *Order, error) {
	o, err := h.cfg.Store.OrderByID(ctx, p.MixTradeNo)
	if err != nil || o.Generation != medpay.GenerationV3 {
		return nil, nil, errors.New("订单不存在")
	}
	v, err := view(o)
	if err != nil {
		return nil, nil, err
	}
	appID := v.AppID
	if v.SubAppID != "" {
		appID = v.SubAppID
	}
	owner := o.MerchantID
	if o.ProviderID != 0 {
		owner = o.ProviderID
	}
	creds, err := h.cfg.Store.MerchantV3(ctx, owner)
	if err != nil {
		return nil, nil, errors.New("商户未开通 APIv3")
	}
	pub, err := apiv3.ParsePublicKey([]byte(creds.PublicKey))
	if err != nil {
		return nil, nil, err
	}
	ts, err := strconv.ParseInt(p.TimeStamp, 10, 64)
	switch {
	case p.SignType != "RSA":
		return nil, nil, errors.New("signType 须为 RSA")
	case p.AppID != appID && p.AppID != v.AppID:
		return nil, nil, errors.New("appId 与订单不符")
	case p.Package != "prepay_id="+v.PrepayID:
		return nil, nil, errors.New("package 与订单的 prepay_id 不符")
	case err != nil || p.NonceStr == "":
		return nil, nil, errors.New("timeStamp 或 nonceStr 无效")
	case h.cfg.Now().Sub(time.Unix(ts, 0)) > 24*time.Hour:
		return nil, nil, errors.New("签名已过期")
	}
	if err := apiv3.Verify(pub, PaySignMessage(p.AppID, p.TimeStamp, p.NonceStr, p.Package), p.PaySign); err != nil {
		return nil, nil, errors.New("paySign 验证失败")
	}
	return o, v, nil
}

var cashierTmpl = template.Must(template.New("cashier").Funcs(template.FuncMap{"yuan": yuan}).Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>医保支付</title>
<style>body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}td{padding:.2rem .6rem}.err{color:#b00}</style></head>
<body>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
{{with .Order}}
<h1>{{.MedInstName}}</h1>
<table id="split">
<tr><td>总金额</td><td id="total">{{yuan .TotalFee}}</td></tr>
<tr><td>医保统筹</td><td id="gov">{{yuan .MedInsGovFee}}</td></tr>
<tr><td>个人账户</td><td id="self">{{yuan .MedInsSelfFee}}</td></tr>
{{if .MedInsOtherFee}}<tr><td>其他</td><td id="other">{{yuan .MedInsOtherFee}}</td></tr>{{end}}
<tr><td>微信支付现金</td><td id="cash">{{yuan .WechatPayCashFee}}</td></tr>
</table>
{{if $.Done}}<p id="result">{{$.Done}}</p>
{{else}}<form method="post" action="cashier">
{{range $k, $v := $.Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<label>支付密码 <input type="password" name="pin" id="pin" inputmode="numeric" autocomplete="off" required></label>
<button type="submit" id="pay">确认支付</button>
</form>{{end}}
{{end}}
</body></html>`))

// yuan shows fen as yuan with two decimals.
func yuan(fen int64) string { return fmt.Sprintf("¥%d.%02d", fen/100, fen%100) }

type cashierView struct {
	Error  string
	Order  *Order
	Done   string
	Hidden map[string]string
}

func (h *Handler) renderCashier(w http.ResponseWriter, status int, v cashierView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// No form-action: Chromium applies it to the redirect back to the hospital's page too.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := cashierTmpl.Execute(w, v); err != nil {
		h.cfg.Logger.Error("v3: cashier page", "err", err)
	}
}

func hidden(p cashierParams) map[string]string {
	return map[string]string{"mixTradeNo": p.MixTradeNo, "appId": p.AppID, "timeStamp": p.TimeStamp, "nonceStr": p.NonceStr,
		"package": p.Package, "signType": p.SignType, "paySign": p.PaySign, "return": p.Return}
}

// cashierPage is GET /v3/cashier: the split and the PIN form.
func (h *Handler) cashierPage(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL.Query())
	_, v, err := h.verifyParams(r.Context(), p)
	if err != nil {
		h.renderCashier(w, http.StatusBadRequest, cashierView{Error: err.Error()})
		return
	}
	view := cashierView{Order: v, Hidden: hidden(p)}
	if v.MixPayStatus != MixCreated {
		view.Done = "订单状态:" + v.MixPayStatus
	}
	h.renderCashier(w, http.StatusOK, view)
}

// cashierSubmit is POST /v3/cashier: pays, then returns to the hospital's page.
func (h *Handler) cashierSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.renderCashier(w, http.StatusBadRequest, cashierView{Error: "表单无效"})
		return
	}
	p := readParams(r.PostForm)
	o, v, err := h.verifyParams(r.Context(), p)
	if err != nil {
		h.renderCashier(w, http.StatusBadRequest, cashierView{Error: err.Error()})
		return
	}
	if err := h.pay(r.Context(), o, r.PostForm.Get("pin")); err != nil {
		var pe *errPayer
		if !errors.As(err, &pe) {
			h.cfg.Logger.Error("v3: pay", "mix_trade_no", o.MedTransID, "err", err)
			h.renderCashier(w, http.StatusInternalServerError, cashierView{Error: "系统繁忙,请稍后查询订单", Order: v})
			return
		}
		h.renderCashier(w, http.StatusOK, cashierView{Error: pe.msg, Order: v, Hidden: hidden(p)})
		return
	}
	v, _ = view(o)
	if back, ok := h.returnURL(v, p.Return); ok {
		q := back.Query()
		q.Set("mixTradeNo", o.MedTransID)
		q.Set("mixPayStatus", v.MixPayStatus)
		back.RawQuery = q.Encode()
		http.Redirect(w, r, back.String(), http.StatusSeeOther)
		return
	}
	h.renderCashier(w, http.StatusOK, cashierView{Order: v, Done: "订单状态:" + v.MixPayStatus})
}

// returnURL accepts a page to return to on the host of the order's callback_url only, so that
// the cashier cannot be used to send payers to another site.
func (h *Handler) returnURL(v *Order, raw string) (*url.URL, bool) {
	back, err := url.Parse(raw)
	if err != nil || raw == "" || (back.Scheme != "http" && back.Scheme != "https") {
		return nil, false
	}
	cb, err := url.Parse(v.CallbackURL)
	if err != nil || cb.Host != back.Host {
		return nil, false
	}
	return back, true
}

// sandboxConfirm is POST /sandbox/v3/orders/{mix_trade_no}/confirm {"pin"}: the cashier without
// a browser. It answers the order as the queries do.
func (h *Handler) sandboxConfirm(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PIN string `json:"pin"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil {
		h.writeError(w, apiv3.Errorf(http.StatusBadRequest, apiv3.CodeParamError, "body must be {\"pin\":\"…\"}"))
		return
	}
	o, err := h.cfg.Store.OrderByID(r.Context(), r.PathValue("no"))
	if errors.Is(err, medpay.ErrNotFound) || (err == nil && o.Generation != medpay.GenerationV3) {
		h.writeError(w, apiv3.Errorf(http.StatusNotFound, apiv3.CodeOrderNotExist, "no such order"))
		return
	} else if err != nil {
		h.writeError(w, systemError(err))
		return
	}
	if err := h.pay(r.Context(), o, in.PIN); err != nil {
		var pe *errPayer
		if errors.As(err, &pe) {
			h.writeError(w, apiv3.Errorf(http.StatusForbidden, apiv3.CodeRuleLimit, "%s", pe.msg))
			return
		}
		h.writeError(w, systemError(err))
		return
	}
	v, err := view(o)
	if err != nil {
		h.writeError(w, systemError(err))
		return
	}
	h.signer.WriteJSON(w, http.StatusOK, v)
}
