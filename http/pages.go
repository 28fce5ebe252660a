package http

import (
	"embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/fee"
	"github.com/medpay/medpay/payment"
)

//go:embed templates
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"yuan": medpay.FormatYuanGrouped,
	"cst":  func(t time.Time) string { return t.In(medpay.CST).Format("2006-01-02 15:04:05") },
	"mask": medpay.MaskCardNo,
}).ParseFS(templateFS, "templates/*.html"))

type pageData struct {
	Title   string
	Sandbox bool
	Order   *medpay.Order
	Items   []fee.Item
	Total   int64
	Error   string
	Success bool
	Message string
	Return  string
	Refresh int    // seconds after which the page reloads itself (0: never)
	BindURL string // the card page without a card: where to bind one
	Script  string // a script of /assets to load, if any

	// The result page of a paid order.
	Refunded   *refundSummary
	StateClass string // ok, fail or wait
}

// refundSummary is what has been, or is being, given back of an order.
type refundSummary struct {
	Cash, Insurance, Hifp, Acct int64 // refunded
	Pending                     int64 // in refunds still processing
	Whole                       bool  // everything paid has been given back
	Last                        time.Time
}

func (s *Server) render(w http.ResponseWriter, status int, name string, d *pageData) {
	d.Sandbox = s.cfg.Sandbox
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		s.logger.Error("render", "page", name, "err", err)
	}
}

func (s *Server) pageOrder(w http.ResponseWriter, r *http.Request) (*medpay.Order, bool) {
	o, err := s.store.OrderByID(r.Context(), r.PathValue("id"))
	if err == nil {
		o, err = s.payment.Refresh(r.Context(), o)
	}
	if errors.Is(err, medpay.ErrNotFound) {
		s.render(w, http.StatusNotFound, "result.html", &pageData{Title: "订单不存在", Message: "请回到医院页面重新下单。"})
		return nil, false
	}
	if err != nil {
		s.logger.Error("pay page", "err", err)
		s.render(w, http.StatusInternalServerError, "result.html", &pageData{Title: "系统繁忙", Message: "请稍后刷新重试,您的资金是安全的。"})
		return nil, false
	}
	return o, true
}

// payPage shows the order and its split (GET pay_url).
func (s *Server) payPage(w http.ResponseWriter, r *http.Request) {
	o, ok := s.pageOrder(w, r)
	if !ok {
		return
	}
	if o.State != medpay.StateNotPay {
		s.result(w, r, o, nil)
		return
	}
	// A 扫码付 order asks who pays; a page that says who pays must name the order's payer.
	if q := r.URL.Query(); !payment.HasPayer(o) || q.Get("t") != "" || (s.cfg.Sandbox && q.Get("openid") != "") {
		if o, ok = s.identify(w, r, o); !ok {
			return
		}
	}
	s.renderPay(w, http.StatusOK, o, "")
}

// identify finds out who opened a 扫码付 order's page — a bind link of the order's app (?t=),
// or in the sandbox ?openid= — and makes them its payer, with the pre-settlement of their bound
// card. ok is false when the page was answered instead (the question, or why not).
func (s *Server) identify(w http.ResponseWriter, r *http.Request, o *medpay.Order) (*medpay.Order, bool) {
	q := r.URL.Query()
	appid := o.AppID
	if o.SubAppID != "" {
		appid = o.SubAppID
	}
	var openid string
	switch {
	case q.Get("t") != "":
		l, ok := s.bindLink(w, r, q.Get("t"))
		if !ok {
			return nil, false
		}
		if l.AppID != appid {
			s.render(w, http.StatusForbidden, "identify.html", &pageData{Title: "请确认付款人", Order: o, Error: "该链接不属于本医院。"})
			return nil, false
		}
		openid = l.OpenID
	case s.cfg.Sandbox && q.Get("openid") != "":
		openid = q.Get("openid")
	default:
		s.render(w, http.StatusOK, "identify.html", &pageData{Title: "请确认付款人", Order: o})
		return nil, false
	}
	claimed, err := s.payment.Identify(r.Context(), o.MedTransID, openid)
	var e *medpay.Error
	switch {
	case err == nil && claimed.State == medpay.StateNotPay:
		return claimed, true
	case err == nil:
		s.result(w, r, claimed, nil)
	case errors.As(err, &e) && e.Code == medpay.ErrNoCard:
		s.render(w, http.StatusConflict, "identify.html", &pageData{Title: "请确认付款人", Order: o,
			Error: "您还没有绑定医保卡,请先在医院页面绑定医保卡后再扫码。"})
	case errors.As(err, &e):
		s.render(w, http.StatusConflict, "identify.html", &pageData{Title: "请确认付款人", Order: o, Error: medpay.ErrorMessage(err)})
	default:
		s.logger.Error("identify payer", "med_trans_id", o.MedTransID, "err", err)
		s.render(w, http.StatusInternalServerError, "result.html", &pageData{Title: "系统繁忙", Message: "请稍后刷新重试,您的资金是安全的。"})
	}
	return nil, false
}

func (s *Server) renderPay(w http.ResponseWriter, status int, o *medpay.Order, msg string) {
	d := &pageData{Title: "确认支付", Order: o, Error: msg, Total: o.CashFee + o.InsuranceFee}
	if bill, err := fee.Parse(o.RequestContent, o.OrderType, o.RequestedCash()+o.RequestedInsurance()); err == nil && !bill.Default {
		d.Items = bill.Items
	}
	s.render(w, status, "pay.html", d)
}

// payConfirm is the sandbox's one-step payment (POST pay_url with the test PIN): the same steps
// as the bureau's page and the cashier (payment.Service.Confirm). Outside the sandbox the
// platform takes no PIN: the payer pays through /pay/{id}/authorize.
func (s *Server) payConfirm(w http.ResponseWriter, r *http.Request) {
	o, ok := s.pageOrder(w, r)
	if !ok {
		return
	}
	if !s.cfg.Sandbox {
		http.Redirect(w, r, "/pay/"+o.MedTransID+"/authorize", http.StatusSeeOther)
		return
	}
	if o.State == medpay.StateNotPay && !payment.HasPayer(o) {
		s.render(w, http.StatusConflict, "identify.html", &pageData{Title: "请确认付款人", Order: o})
		return
	}
	if err := r.ParseForm(); err != nil {
		s.renderPay(w, http.StatusBadRequest, o, "请求无效,请重新输入支付密码。")
		return
	}
	paid, err := s.payment.Confirm(r.Context(), o.MedTransID, r.PostForm.Get("pin"))
	var pinErr *payment.PINError
	switch {
	case errors.As(err, &pinErr) && !pinErr.BlockedUntil.IsZero():
		s.renderPay(w, http.StatusForbidden, o, "支付密码错误次数过多,请于 "+pinErr.BlockedUntil.In(medpay.CST).Format("15:04")+" 后再试。")
		return
	case errors.As(err, &pinErr):
		s.renderPay(w, http.StatusForbidden, o, "支付密码错误,还可以尝试 "+itoa(pinErr.Remaining)+" 次。")
		return
	case paid == nil:
		s.logger.Error("confirm", "med_trans_id", o.MedTransID, "err", err)
		s.render(w, http.StatusInternalServerError, "result.html", &pageData{Title: "系统繁忙", Message: "支付结果确认中,请稍后刷新本页查看,不会重复扣款。"})
		return
	}
	if paid.ReturnURL != "" && paid.State.Final() {
		http.Redirect(w, r, returnURL(paid), http.StatusSeeOther)
		return
	}
	s.result(w, r, paid, err)
}

// returnURL is the hospital's return_url with the order's identifiers added to its query.
func returnURL(o *medpay.Order) string {
	u, err := url.Parse(o.ReturnURL)
	if err != nil {
		return o.ReturnURL
	}
	q := u.Query()
	q.Set("med_trans_id", o.MedTransID)
	q.Set("hosp_out_trade_no", o.HospOutTradeNo)
	q.Set("med_trade_state", string(o.State))
	u.RawQuery = q.Encode()
	return u.String()
}

// result shows what became of an order, in the payer's words: for a paid order the split, the
// time, the order numbers and what was refunded.
func (s *Server) result(w http.ResponseWriter, r *http.Request, o *medpay.Order, err error) {
	d := &pageData{Order: o, StateClass: "fail"}
	if o.ReturnURL != "" {
		d.Return = returnURL(o)
	}
	switch o.State {
	case medpay.StateSuccess, medpay.StateRefund:
		d.Title, d.Success, d.StateClass = "支付成功", true, "ok"
		d.Total = o.CashFee + o.InsuranceFee
		if rs := s.refundSummary(r, o); rs != nil {
			d.Refunded = rs
			switch {
			case rs.Whole:
				d.Title, d.StateClass = "已退款", "refund"
			case rs.Cash+rs.Insurance > 0:
				d.Title, d.StateClass = "已部分退款", "refund"
			default:
				d.Title, d.StateClass = "退款处理中", "refund"
			}
		}
	case medpay.StateUserPaying, medpay.StateSysRefunding:
		d.Title, d.Message, d.StateClass = "支付处理中", "正在确认支付结果,请稍后刷新本页。结果确认前不会重复扣款。", "wait"
	case medpay.StateClosed:
		d.Title, d.Message = "订单已关闭", o.StatusDesc+"。如需就诊缴费,请回到医院页面重新下单。"
	case medpay.StateSysRefunded:
		d.Title, d.Message = "支付失败", "现金支付未成功,已结算的医保部分已全部退回,您没有被扣款。"
	default:
		d.Title, d.Message = "支付失败", o.StatusDesc+"。您没有被扣款,可回到医院页面重新下单。"
	}
	if err != nil && o.State == medpay.StateNotPay {
		d.Title, d.Message = "暂时无法支付", medpay.ErrorMessage(err)
	}
	s.render(w, http.StatusOK, "result.html", d)
}

// refundSummary adds up the order's refunds; nil when it has none (or they cannot be read, which
// the page survives: it then shows the payment alone).
func (s *Server) refundSummary(r *http.Request, o *medpay.Order) *refundSummary {
	refunds, err := s.store.RefundsOfOrder(r.Context(), o.ID)
	if err != nil {
		s.logger.Error("result page refunds", "med_trans_id", o.MedTransID, "err", err)
		return nil
	}
	if len(refunds) == 0 {
		return nil
	}
	rs := &refundSummary{}
	for _, rf := range refunds {
		switch rf.State {
		case medpay.RefundSuccess:
			rs.Cash += rf.CashRefundFee
			rs.Insurance += rf.InsuranceRefundFee
			rs.Hifp += rf.HifpRefund
			rs.Acct += rf.AcctRefund
			if rf.SuccessTime.After(rs.Last) {
				rs.Last = rf.SuccessTime
			}
		case medpay.RefundProcessing:
			rs.Pending += rf.CashRefundFee + rf.InsuranceRefundFee
		}
	}
	if rs.Cash+rs.Insurance+rs.Pending == 0 {
		return nil // only failed refunds: nothing was given back
	}
	rs.Whole = rs.Cash == o.CashFee && rs.Insurance == o.InsuranceFee
	return rs
}

// payQR is code_url: a PNG QR code of pay_url for 扫码付.
func (s *Server) payQR(w http.ResponseWriter, r *http.Request) {
	o, err := s.store.OrderByID(r.Context(), r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	png, err := qrcode.Encode(s.payURL(o), qrcode.Medium, 256)
	if err != nil {
		s.logger.Error("qr", "err", err)
		http.Error(w, "qr failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(png)
}

// sandboxBindURL issues a card-binding link for a sandbox payer who opened /me/cards without a
// card, returning to that page; "" when it cannot (the page then only says there is no card).
func (s *Server) sandboxBindURL(r *http.Request, appid, openid string) string {
	m, err := s.store.MerchantByAppID(r.Context(), appid)
	if err != nil {
		return ""
	}
	back := s.cfg.BaseURL + "/me/cards?" + url.Values{"appid": {appid}, "openid": {openid}}.Encode()
	token, _, err := s.payment.NewBindLink(r.Context(), m, appid, openid, back)
	if err != nil {
		s.logger.Error("cards page bind link", "err", err)
		return ""
	}
	return s.bindURL(token)
}
