package cash

import (
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/secret"
)

// maxRequest bounds a request body.
const maxRequest = 64 << 10

// Handler serves the channel: the APIv3 subset under /v3/, the cashier page at /cashier and the
// sandbox helpers under /sandbox/. Mounted under a prefix (e.g. /cash) with http.StripPrefix,
// requests are still verified against the URL the merchant signed (RequestURI, prefix included).
func (c *Channel) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+apiv3.PathJSAPI, c.api(c.handlePrepay(apiv3.TradeJSAPI)))
	mux.HandleFunc("POST "+apiv3.PathNative, c.api(c.handlePrepay(apiv3.TradeNative)))
	mux.HandleFunc("GET "+apiv3.PathByOutTrade+"{out_trade_no}", c.api(c.handleQuery))
	mux.HandleFunc("POST "+apiv3.PathByOutTrade+"{out_trade_no}/close", c.api(c.handleClose))
	mux.HandleFunc("POST "+apiv3.PathRefunds, c.api(c.handleRefund))
	mux.HandleFunc("GET "+apiv3.PathRefunds+"/{out_refund_no}", c.api(c.handleRefundQuery))

	pages := http.NewServeMux()
	pages.HandleFunc("GET /cashier", c.cashierPage)
	pages.HandleFunc("POST /cashier", c.cashierPay)
	mux.Handle("/cashier", http.NewCrossOriginProtection().Handler(pages))

	mux.HandleFunc("POST /sandbox/pay", c.sandboxPay)
	mux.HandleFunc("POST /sandbox/wallets", c.sandboxWallet)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := c.db.Ping(r.Context()); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	})
	return mux
}

type apiHandler func(r *http.Request, a apiv3.Authorization, body []byte) (int, any, error)

// api verifies the request's signature, runs h and answers signed: JSON, 204, or the error body.
func (c *Channel) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(apiv3.HeaderRequestID, secret.RandomString(32, "0123456789ABCDEF"))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
		if err != nil {
			c.signer.WriteError(w, apiv3.ParamError("body", "", "请求体过大或读取失败"))
			return
		}
		uri := r.RequestURI
		if !strings.HasPrefix(uri, "/") { // absolute form (through a proxy)
			uri = r.URL.RequestURI()
		}
		a, err := c.verify.Verify(r.Context(), r.Method, uri, r.Header, body)
		if err != nil {
			c.logger.Info("cash: request refused", "path", r.URL.Path, "mchid", a.MchID, "err", err)
			c.signer.WriteError(w, apiv3.Errorf(http.StatusUnauthorized, apiv3.CodeSignError, "签名错误"))
			return
		}
		status, v, err := h(r, a, body)
		var apiErr *apiv3.Error
		switch {
		case errors.Is(err, errAnswerLost):
			c.logger.Info("cash: sandbox scenario drops this answer", "path", r.URL.Path, "mchid", a.MchID)
			panic(http.ErrAbortHandler) // the connection closes with no answer
		case errors.As(err, &apiErr):
			c.signer.WriteError(w, apiErr)
		case err != nil:
			c.logger.Error("cash: request failed", "path", r.URL.Path, "mchid", a.MchID, "err", err)
			c.signer.WriteError(w, apiv3.Errorf(http.StatusInternalServerError, apiv3.CodeSystemError, "系统错误"))
		default:
			c.signer.WriteJSON(w, status, v)
		}
	}
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return apiv3.ParamError("body", "", "JSON 格式错误: "+err.Error())
	}
	return nil
}

func (c *Channel) handlePrepay(tradeType string) apiHandler {
	return func(r *http.Request, a apiv3.Authorization, body []byte) (int, any, error) {
		var req apiv3.PrepayRequest
		if err := decode(body, &req); err != nil {
			return 0, nil, err
		}
		ans, err := c.Prepay(r.Context(), a.MchID, tradeType, &req)
		return http.StatusOK, ans, err
	}
}

func checkQueryMchID(r *http.Request, a apiv3.Authorization) error {
	if r.URL.Query().Get("mchid") != a.MchID {
		return apiv3.ParamError("query", "mchid", "与请求的商户号不一致")
	}
	return nil
}

func (c *Channel) handleQuery(r *http.Request, a apiv3.Authorization, _ []byte) (int, any, error) {
	if err := checkQueryMchID(r, a); err != nil {
		return 0, nil, err
	}
	tx, err := c.Query(r.Context(), a.MchID, r.PathValue("out_trade_no"))
	return http.StatusOK, tx, err
}

func (c *Channel) handleClose(r *http.Request, a apiv3.Authorization, body []byte) (int, any, error) {
	var req apiv3.CloseRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	if req.MchID != a.MchID {
		return 0, nil, apiv3.ParamError("body", "mchid", "与请求的商户号不一致")
	}
	return http.StatusNoContent, nil, c.Close(r.Context(), a.MchID, r.PathValue("out_trade_no"))
}

func (c *Channel) handleRefund(r *http.Request, a apiv3.Authorization, body []byte) (int, any, error) {
	var req apiv3.RefundRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	ans, err := c.Refund(r.Context(), a.MchID, &req)
	return http.StatusOK, ans, err
}

func (c *Channel) handleRefundQuery(r *http.Request, a apiv3.Authorization, _ []byte) (int, any, error) {
	ans, err := c.QueryRefund(r.Context(), a.MchID, r.PathValue("out_refund_no"))
	return http.StatusOK, ans, err
}

// writeSandbox answers the sandbox helpers in JSON.
func writeSandbox(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (c *Channel) sandboxError(w http.ResponseWriter, err error) {
	var pe *PayError
	if errors.As(err, &pe) {
		status := http.StatusBadRequest
		switch pe.Code {
		case PayNotFound:
			status = http.StatusNotFound
		case PayWrongPIN:
			status = http.StatusForbidden
		case PayDeclined:
			status = http.StatusPaymentRequired
		}
		writeSandbox(w, status, map[string]string{"code": pe.Code, "message": pe.Message})
		return
	}
	c.logger.Error("cash sandbox", "err", err)
	writeSandbox(w, http.StatusInternalServerError, map[string]string{"code": "SYSTEM_ERROR", "message": "系统错误"})
}

// sandboxPay pays an order with the PIN without a browser: {"prepay_id" or "code_url", "pin"},
// and for native orders the scanning payer's "openid" (and "appid").
func (c *Channel) sandboxPay(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PrepayID string `json:"prepay_id"`
		CodeURL  string `json:"code_url"`
		AppID    string `json:"appid"`
		OpenID   string `json:"openid"`
		PIN      string `json:"pin"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest)).Decode(&req); err != nil {
		writeSandbox(w, http.StatusBadRequest, map[string]string{"code": "PARAM_ERROR", "message": err.Error()})
		return
	}
	t, err := c.tradeByPrepay(r.Context(), req.PrepayID, req.CodeURL)
	if err != nil {
		c.sandboxError(w, err)
		return
	}
	tx, err := c.Pay(r.Context(), t, req.AppID, req.OpenID, req.PIN)
	if err != nil {
		c.sandboxError(w, err)
		return
	}
	writeSandbox(w, http.StatusOK, tx)
}

// sandboxWallet sets a payer's wallet: {"appid","openid"} and the fields of WalletSettings.
func (c *Channel) sandboxWallet(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppID  string `json:"appid"`
		OpenID string `json:"openid"`
		WalletSettings
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest)).Decode(&req); err != nil || req.AppID == "" || req.OpenID == "" ||
		(req.Balance != nil && (*req.Balance < 0 || *req.Balance > 100*MaxTotal)) {
		writeSandbox(w, http.StatusBadRequest, map[string]string{"code": "PARAM_ERROR",
			"message": `body must be {"appid","openid"} with optional "balance" (fen, not negative), "declining", "lose_answers", "pin"`})
		return
	}
	payer := medpay.PayerID(req.AppID, req.OpenID)
	if err := c.SetWallet(r.Context(), payer, req.WalletSettings); err != nil {
		c.sandboxError(w, err)
		return
	}
	bal, err := c.wallet.Balance(r.Context(), payer)
	if err != nil {
		c.sandboxError(w, err)
		return
	}
	writeSandbox(w, http.StatusOK, map[string]any{"payer": payer, "balance": bal})
}

// cashierView is what the cashier page shows.
type cashierView struct {
	Params      apiv3.PayParams
	RedirectURL string
	Merchant    string
	Description string
	Yuan        string
	Message     string
	Paid        bool
	Error       bool
}

// cashierParams reads the JSAPI parameters and the return address from the query or the form.
func cashierParams(v url.Values) (apiv3.PayParams, string) {
	return apiv3.PayParams{AppID: v.Get("appId"), TimeStamp: v.Get("timeStamp"), NonceStr: v.Get("nonceStr"),
		Package: v.Get("package"), SignType: v.Get("signType"), PaySign: v.Get("paySign")}, v.Get("redirect_url")
}

// cashierTrade finds the order of p and checks p's paySign with the merchant's key, as WeChat's
// cashier does before it shows anything.
func (c *Channel) cashierTrade(r *http.Request, p apiv3.PayParams) (*trade, error) {
	prepayID, ok := strings.CutPrefix(p.Package, "prepay_id=")
	if !ok || p.SignType != "RSA" {
		return nil, &PayError{PayNotFound, "支付参数无效"}
	}
	t, err := c.tradeByPrepay(r.Context(), prepayID, "")
	if err != nil {
		return nil, err
	}
	var pemKey string
	if err := c.db.SQL().QueryRowContext(r.Context(), `SELECT public_key FROM cash_merchants WHERE mchid = $1`, t.MchID).Scan(&pemKey); err != nil {
		return nil, err
	}
	pub, err := apiv3.ParsePublicKey([]byte(pemKey))
	if err != nil {
		return nil, err
	}
	if p.AppID != t.AppID || apiv3.Verify(pub, apiv3.PayMessage(p.AppID, p.TimeStamp, p.NonceStr, p.Package), p.PaySign) != nil {
		return nil, &PayError{PayNotFound, "支付签名验证失败"}
	}
	return t, nil
}

func (c *Channel) renderCashier(w http.ResponseWriter, status int, v cashierView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:")
	w.WriteHeader(status)
	if err := cashierTemplate.Execute(w, v); err != nil {
		c.logger.Error("cashier page", "err", err)
	}
}

func (c *Channel) cashierError(w http.ResponseWriter, v cashierView, err error) {
	var pe *PayError
	v.Error = true
	if errors.As(err, &pe) {
		v.Message = pe.Message
		status := http.StatusOK
		if pe.Code == PayNotFound {
			status = http.StatusNotFound
		}
		c.renderCashier(w, status, v)
		return
	}
	c.logger.Error("cashier", "err", err)
	v.Message = "系统繁忙，请稍后再试"
	c.renderCashier(w, http.StatusInternalServerError, v)
}

func (v *cashierView) fill(t *trade) {
	v.Merchant, v.Description = t.MchID, t.Description
	v.Yuan = medpay.FormatYuan(t.Total)
}

func (c *Channel) cashierPage(w http.ResponseWriter, r *http.Request) {
	p, redirect := cashierParams(r.URL.Query())
	v := cashierView{Params: p, RedirectURL: redirect}
	t, err := c.cashierTrade(r, p)
	if err != nil {
		c.cashierError(w, v, err)
		return
	}
	v.fill(t)
	v.Paid = t.State == "SUCCESS" || t.State == "REFUND"
	c.renderCashier(w, http.StatusOK, v)
}

func (c *Channel) cashierPay(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	p, redirect := cashierParams(r.PostForm)
	v := cashierView{Params: p, RedirectURL: redirect}
	t, err := c.cashierTrade(r, p)
	if err != nil {
		c.cashierError(w, v, err)
		return
	}
	v.fill(t)
	if _, err := c.Pay(r.Context(), t, "", "", r.PostForm.Get("pin")); err != nil {
		c.cashierError(w, v, err)
		return
	}
	if u, err := url.Parse(redirect); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		http.Redirect(w, r, redirect, http.StatusSeeOther)
		return
	}
	v.Paid = true
	c.renderCashier(w, http.StatusOK, v)
}

var cashierTemplate = template.Must(template.New("cashier").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>收银台（沙箱）</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f2f2f2;color:#222}
main{max-width:28rem;margin:0 auto;padding:1rem}
.banner{background:#fff3cd;color:#664d03;padding:.5rem 1rem;font-size:.9rem}
.card{background:#fff;border-radius:.5rem;padding:1rem;margin:.75rem 0}
.amount{font-size:2.2rem;font-weight:600;text-align:center;margin:.5rem 0}
.muted{color:#666;font-size:.9rem;text-align:center}
label{display:block;margin:.5rem 0 .25rem}
input[type=password]{width:100%;box-sizing:border-box;font-size:1.4rem;padding:.6rem;letter-spacing:.4rem}
button{width:100%;margin-top:1rem;padding:.8rem;font-size:1.1rem;border:0;border-radius:.4rem;background:#07c160;color:#fff}
.error{color:#b00020}
.ok{color:#07c160;text-align:center;font-size:1.3rem}
</style></head>
<body>
<div class="banner">沙箱收银台：模拟的零钱，不涉及真实资金。</div>
<main>
{{if .Description}}
<div class="card">
<p class="muted">{{.Description}}</p>
<p class="amount" id="amount">¥{{.Yuan}}</p>
<p class="muted">商户号 {{.Merchant}}</p>
</div>
{{end}}
{{if .Message}}<p class="error" id="message" role="alert">{{.Message}}</p>{{end}}
{{if .Paid}}
<p class="ok" id="paid">支付成功</p>
{{if .RedirectURL}}<p><a href="{{.RedirectURL}}">返回商户</a></p>{{end}}
{{else if .Description}}
<form method="post" action="cashier" class="card">
<input type="hidden" name="appId" value="{{.Params.AppID}}">
<input type="hidden" name="timeStamp" value="{{.Params.TimeStamp}}">
<input type="hidden" name="nonceStr" value="{{.Params.NonceStr}}">
<input type="hidden" name="package" value="{{.Params.Package}}">
<input type="hidden" name="signType" value="{{.Params.SignType}}">
<input type="hidden" name="paySign" value="{{.Params.PaySign}}">
<input type="hidden" name="redirect_url" value="{{.RedirectURL}}">
<label for="pin">请输入支付密码</label>
<input type="password" id="pin" name="pin" inputmode="numeric" autocomplete="off" maxlength="6" required>
<button type="submit" id="pay">确认支付</button>
</form>
{{end}}
</main></body></html>
`))
