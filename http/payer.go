package http

import (
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/medpay/medpay"
)

// The payer-driven payment (issue 10): the payer authorises the insurance part at the bureau's
// page, pays the cash part in the channel's cashier, and the platform settles; the channel tells
// the platform of the cash payment by callback (POST /notify/cash) and the payer's return.

// payAuthorize is GET /pay/{id}/authorize: the payer is sent to the bureau's authorisation page
// (scope pay), which sends them back to /pay/{id}/authorized with the order's id as state; an
// order without an insurance part goes straight to the cashier.
func (s *Server) payAuthorize(w http.ResponseWriter, r *http.Request) {
	o, ok := s.pageOrder(w, r)
	if !ok {
		return
	}
	if o.State != medpay.StateNotPay {
		s.result(w, r, o, nil)
		return
	}
	if o.InsuranceFee == 0 || o.Step == medpay.StepAuthorized || o.Step == medpay.StepCashPay {
		s.toCashier(w, r, o.MedTransID)
		return
	}
	back := s.cfg.BaseURL + "/pay/" + o.MedTransID + "/authorized"
	http.Redirect(w, r, s.bureau.AuthURL(back, o.MedTransID, medpay.ScopePay), http.StatusSeeOther)
}

// payAuthorized is where the bureau's page sends the payer back (?authCode&state): the state must
// name the order, and the authorisation must be the order's insured person's.
func (s *Server) payAuthorized(w http.ResponseWriter, r *http.Request) {
	o, ok := s.pageOrder(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(o.MedTransID)) != 1 || q.Get("authCode") == "" {
		s.render(w, http.StatusBadRequest, "result.html", &pageData{Title: "授权未完成", Message: "授权信息无效,请返回重新支付。",
			Return: "/pay/" + o.MedTransID})
		return
	}
	paid, err := s.payment.AuthorizePay(r.Context(), o.MedTransID, q.Get("authCode"))
	var refused *medpay.Error
	switch {
	case errors.As(err, &refused) && paid != nil && paid.State == medpay.StateNotPay:
		s.render(w, http.StatusUnprocessableEntity, "result.html", &pageData{Title: "授权未完成",
			Message: strings.TrimRight(refused.Message, "。") + "。", Return: "/pay/" + o.MedTransID})
		return
	case paid == nil:
		s.pageError(w, err, "pay authorized")
		return
	}
	if paid.State == medpay.StateNotPay && paid.CashFee > 0 {
		s.toCashier(w, r, paid.MedTransID)
		return
	}
	s.payDone(w, r, paid, err)
}

// toCashier places the cash prepay and sends the payer to the channel's cashier.
func (s *Server) toCashier(w http.ResponseWriter, r *http.Request, medTransID string) {
	o, p, err := s.payment.PrepayCash(r.Context(), medTransID)
	if o != nil && o.State != medpay.StateNotPay {
		s.result(w, r, o, nil)
		return
	}
	if err != nil {
		s.pageError(w, err, "cash prepay")
		return
	}
	appid, _ := o.Payer()
	params, err := s.payment.Gateway.PayParams(appid, p.PrepayID)
	if err != nil {
		s.pageError(w, err, "cash pay params")
		return
	}
	if u, ok := s.payment.Gateway.CashierURL(params, s.cfg.BaseURL+"/pay/"+o.MedTransID+"/paid"); ok {
		http.Redirect(w, r, u, http.StatusSeeOther)
		return
	}
	// WeChat Pay: the cashier is opened by WeixinJSBridge from these parameters, which the
	// payment mini-program reads from the page.
	s.render(w, http.StatusOK, "result.html", &pageData{Title: "请在微信中完成支付", Order: o,
		Message: "appId=" + params.AppID + "&timeStamp=" + params.TimeStamp + "&nonceStr=" + params.NonceStr +
			"&package=" + params.Package + "&signType=" + params.SignType + "&paySign=" + params.PaySign})
}

// payPaid is where the cashier sends the payer back: the platform asks the channel rather than
// trusting the return, and shows the result.
func (s *Server) payPaid(w http.ResponseWriter, r *http.Request) {
	o, ok := s.pageOrder(w, r)
	if !ok {
		return
	}
	paid, err := s.payment.SyncCash(r.Context(), o.MedTransID)
	if paid == nil {
		s.pageError(w, err, "cash return")
		return
	}
	s.payDone(w, r, paid, err)
}

func (s *Server) payDone(w http.ResponseWriter, r *http.Request, o *medpay.Order, err error) {
	if o.ReturnURL != "" && o.State.Final() {
		http.Redirect(w, r, returnURL(o), http.StatusSeeOther)
		return
	}
	s.result(w, r, o, err)
}

// cashNotify is POST /notify/cash: the cash channel's callbacks, verified by the gateway. A 2XX
// answer ends the channel's deliveries; anything else makes it deliver again.
func (s *Server) cashNotify(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err == nil {
		err = s.payment.CashCallback(r.Context(), r.Header, body)
	}
	if err != nil {
		s.logger.Warn("cash callback refused", "err", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"code":"FAIL","message":"失败"}`)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
