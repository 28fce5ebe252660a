package http

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/wire"
)

// 刷码付: the payer's payment code (/me/code, POST /sandbox/paycode) and the institution's
// micropay call that spends it (docs/api/orders.md (micropay)).

// micropay places and settles the order of a scanned payment code.
func (s *Server) micropay(ctx context.Context, c *call) (*wire.Message, error) {
	r, err := s.parseOrder(ctx, c, true)
	if err != nil {
		return nil, err
	}
	f := wire.NewFields(c.req)
	authCode := f.String("auth_code", 128, true)
	if err := f.Err(); err != nil {
		return nil, err
	}
	o, err := s.payment.Micropay(ctx, &payment.MicropayRequest{PlaceRequest: *r, AuthCode: authCode,
		PayerField: c.openidField(), NoPINLimit: s.cfg.MicropayNoPINLimit})
	if err != nil {
		return nil, err
	}
	m := wire.NewMessage()
	payment.SetOrderFields(m, o)
	if payment.ReportedState(o) == medpay.StateUserPaying && o.State == medpay.StateNotPay {
		// The payer confirms with the PIN on the payment page (defined here).
		m.Set("pay_url", s.payURL(o))
	}
	return m, nil
}

// sandboxPayCode issues a payment code: {"appid","openid"} -> {"auth_code","expires_in"}.
func (s *Server) sandboxPayCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppID  string `json:"appid"`
		OpenID string `json:"openid"`
	}
	if err := decodeJSON(r, &req); err != nil || req.AppID == "" || req.OpenID == "" {
		writeJSON(w, http.StatusBadRequest, jsonError{Error: "Bad Request", Message: "body must be {\"appid\",\"openid\"}"})
		return
	}
	if _, err := s.store.MerchantByAppID(r.Context(), req.AppID); errors.Is(err, medpay.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, jsonError{Error: "Not Found", Message: "unknown appid"})
		return
	} else if err != nil {
		s.jsonFail(w, r, http.StatusInternalServerError, err)
		return
	}
	code, _, err := s.payment.IssuePayCode(r.Context(), req.AppID, req.OpenID)
	if err != nil {
		s.jsonFail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"auth_code": code, "expires_in": int(payment.PayCodeTTL.Seconds())})
}

// payCodePage is GET /me/code?appid=…&openid=… (sandbox): a fresh payment code as a QR code and
// digits. Each visit issues a new code; earlier ones stay valid until used or expired.
func (s *Server) payCodePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	appid, openid := r.URL.Query().Get("appid"), r.URL.Query().Get("openid")
	if appid == "" || openid == "" {
		s.render(w, http.StatusBadRequest, "result.html", &pageData{Title: "缺少参数",
			Message: "请用 /me/code?appid=…&openid=… 打开付款码。"})
		return
	}
	if _, err := s.store.MerchantByAppID(ctx, appid); errors.Is(err, medpay.ErrNotFound) {
		s.render(w, http.StatusNotFound, "result.html", &pageData{Title: "应用不存在", Message: "appid 未注册。"})
		return
	} else if err != nil {
		s.pageError(w, err, "code")
		return
	}
	code, _, err := s.payment.IssuePayCode(ctx, appid, openid)
	if err != nil {
		s.pageError(w, err, "code")
		return
	}
	png, err := qrcode.Encode(code, qrcode.Medium, 256)
	if err != nil {
		s.pageError(w, err, "code")
		return
	}
	ttl := int(payment.PayCodeTTL.Seconds())
	v := &payerView{pageData: pageData{Title: "医保付款码", Refresh: ttl, Script: "/assets/paycode.js"}, AppID: appid, OpenID: openid, Code: code,
		CodeGroup: groupDigits(code), ExpiresIn: int(payment.PayCodeTTL.Seconds()),
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))}
	if b, err := s.store.BindingFor(ctx, appid, openid); err == nil {
		v.Card = s.cardView(b)
	}
	s.renderView(w, http.StatusOK, "code.html", v)
}

// groupDigits writes a code in groups of four.
func groupDigits(code string) string {
	var b strings.Builder
	for i, r := range code {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
