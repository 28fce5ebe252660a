package http

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/sqlstore"
)

// The payer's card pages: bind_url (GET shows the form, POST binds through the bureau) and
// /me/cards (the bound card, with an unbind button). Every form posts to its own origin and is
// behind http.CrossOriginProtection (routes.go).

// payerView is the data of the payer pages of this file and paycode.go.
type payerView struct {
	pageData
	Hospital string
	Token    string // the bind link's token, when the page was reached through one
	AppID    string // sandbox: the payer named in the query
	OpenID   string
	Form     identityForm
	Cities   []medpay.City
	Card     *cardView // the card bound now, if any
	Notice   string
	// Payment code page.
	Code      string
	CodeGroup string // the digits in groups of four, for reading aloud
	QR        template.URL
	ExpiresIn int
}

type identityForm struct {
	Name, IDNo, CardNo, CityID string
}

// cardView is a bound card as the payer sees it: masked.
type cardView struct {
	CardNo, Name, IDNo, City string
}

func (s *Server) cardView(b *medpay.Binding) *cardView {
	city := b.CityID
	for _, c := range s.cities {
		if c.Code == b.CityID {
			city = c.Name
		}
	}
	return &cardView{CardNo: medpay.MaskCardNo(b.CardNo), Name: medpay.MaskName(b.Name), IDNo: medpay.MaskIDNo(b.IDNo), City: city}
}

// renderView renders a payer page whose data embeds pageData (as render does for pageData).
func (s *Server) renderView(w http.ResponseWriter, status int, name string, v *payerView) {
	v.Sandbox = s.cfg.Sandbox
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer") // the link's token is in the URL
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, v); err != nil {
		s.logger.Error("render", "page", name, "err", err)
	}
}

func (s *Server) pageError(w http.ResponseWriter, err error, what string) {
	s.logger.Error("payer page", "page", what, "err", err)
	s.render(w, http.StatusInternalServerError, "result.html", &pageData{Title: "系统繁忙", Message: "请稍后刷新重试。"})
}

// setWalletScenario makes the payer's sandbox wallet follow the scenario of the bound person:
// a cash_declined person's wallet declines, any other's does not, and so does a payer without a
// card. The sandbox API and the bind pages both bind through here.
func (s *Server) setWalletScenario(ctx context.Context, appid, openid string, b *medpay.Binding) error {
	if !s.cfg.Sandbox || s.cash == nil {
		return nil
	}
	declining := false
	if b != nil && s.sandbox != nil {
		p, err := s.sandboxPerson(ctx, b.IDNo)
		if err != nil && !errors.Is(err, medpay.ErrNotFound) {
			return err
		}
		declining = err == nil && p.Scenario == scenarioCashDeclined
	}
	return s.cash.SetDeclining(ctx, medpay.PayerID(appid, openid), declining)
}

// bindLink reads the link of the request's token and, when it cannot be used, answers a page
// that says why.
func (s *Server) bindLink(w http.ResponseWriter, r *http.Request, token string) (*sqlstore.BindLink, bool) {
	l, err := s.payment.BindLink(r.Context(), token)
	if errors.Is(err, medpay.ErrNotFound) {
		s.render(w, http.StatusNotFound, "result.html", &pageData{Title: "链接无效",
			Message: "该绑卡链接不存在。请回到医院页面重新打开绑卡页面。"})
		return nil, false
	} else if err != nil {
		s.pageError(w, err, "bind")
		return nil, false
	}
	now := s.now()
	d := &pageData{Return: l.ReturnURL}
	switch {
	case !l.UsedAt.IsZero():
		d.Title, d.Message = "链接已使用", "每个绑卡链接只能使用一次。如需再次绑卡或解绑,请回到医院页面重新获取链接。"
	case l.Failures >= payment.MaxBindFailures:
		d.Title, d.Message = "验证失败次数过多", "为保护您的信息,该链接已失效。请核对身份证和社保卡后,回到医院页面重新获取链接。"
	case !now.Before(l.ExpiresAt):
		d.Title, d.Message = "链接已过期", "绑卡链接 10 分钟内有效。请回到医院页面重新获取链接。"
	default:
		return l, true
	}
	s.render(w, http.StatusGone, "result.html", d)
	return nil, false
}

// bindView prepares the bind form of link l.
func (s *Server) bindView(ctx context.Context, l *sqlstore.BindLink, token string) (*payerView, error) {
	v := &payerView{pageData: pageData{Title: "绑定医保卡"}, Token: token, Cities: s.cities}
	m, err := s.store.MerchantByID(ctx, l.MerchantID)
	if err != nil {
		return nil, err
	}
	v.Hospital = m.Name
	if len(m.Cities) > 0 {
		v.Form.CityID = m.Cities[0]
	}
	b, err := s.store.BindingFor(ctx, l.AppID, l.OpenID)
	if err == nil {
		v.Card = s.cardView(b)
	} else if !errors.Is(err, medpay.ErrNotFound) {
		return nil, err
	}
	return v, nil
}

// bindPage is GET bind_url: the form.
func (s *Server) bindPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	l, ok := s.bindLink(w, r, token)
	if !ok {
		return
	}
	v, err := s.bindView(r.Context(), l, token)
	if err != nil {
		s.pageError(w, err, "bind")
		return
	}
	s.renderView(w, http.StatusOK, "bind.html", v)
}

// checkIdentity checks the form before the bureau is asked, and says in the payer's words what
// is wrong.
func (s *Server) checkIdentity(f identityForm) string {
	switch {
	case f.Name == "":
		return "请输入姓名。"
	case f.IDNo == "":
		return "请输入身份证号。"
	case !medpay.ValidIDNumber(f.IDNo):
		return "身份证号不正确:应为 18 位,最后一位是校验码(数字或 X)。请核对后重新输入。"
	case f.CardNo == "":
		return "请输入社会保障卡卡号。"
	case f.CityID == "":
		return "请选择参保城市。"
	}
	for _, c := range s.cities {
		if c.Code == f.CityID {
			return ""
		}
	}
	return "请从列表中选择参保城市。"
}

// bindSubmit is POST bind_url: verify with the bureau, bind, and return to the hospital.
func (s *Server) bindSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := r.PathValue("token")
	l, ok := s.bindLink(w, r, token)
	if !ok {
		return
	}
	v, err := s.bindView(ctx, l, token)
	if err != nil {
		s.pageError(w, err, "bind")
		return
	}
	if err := r.ParseForm(); err != nil {
		v.Error = "提交的内容无效,请重新填写。"
		s.renderView(w, http.StatusBadRequest, "bind.html", v)
		return
	}
	v.Form = identityForm{
		Name:   strings.TrimSpace(r.PostForm.Get("name")),
		IDNo:   strings.ToUpper(strings.TrimSpace(r.PostForm.Get("id_no"))),
		CardNo: strings.TrimSpace(r.PostForm.Get("card_no")),
		CityID: strings.TrimSpace(r.PostForm.Get("city_id")),
	}
	if msg := s.checkIdentity(v.Form); msg != "" {
		v.Error = msg
		s.renderView(w, http.StatusUnprocessableEntity, "bind.html", v)
		return
	}
	// The bureau verifies the identity; then the payer proves to be its holder on the bureau's
	// authorisation page, which sends them back to bindAuthorized.
	claimed, err := s.payment.VerifyForBind(ctx, token, medpay.Identity{
		Name: v.Form.Name, IDNo: v.Form.IDNo, CardNo: v.Form.CardNo, CityID: v.Form.CityID})
	var refused *medpay.Error
	switch {
	case errors.Is(err, payment.ErrLinkUnusable) || errors.Is(err, medpay.ErrNotFound):
		s.bindLink(w, r, token) // used or expired meanwhile: say which
		return
	case errors.As(err, &refused):
		if claimed.Failures >= payment.MaxBindFailures {
			s.bindLink(w, r, token)
			return
		}
		v.Error = fmt.Sprintf("%s。请核对后重新输入(还可尝试 %d 次)。", strings.TrimRight(refused.Message, "。"),
			payment.MaxBindFailures-claimed.Failures)
		s.renderView(w, http.StatusUnprocessableEntity, "bind.html", v)
		return
	case err != nil:
		s.pageError(w, err, "bind")
		return
	}
	back := s.cfg.BaseURL + "/bind/" + token + "/authorized"
	http.Redirect(w, r, s.bureau.AuthURL(back, "bind", medpay.ScopeBind), http.StatusSeeOther)
}

// bindAuthorized is where the bureau's authorisation page sends the payer back (?authCode=):
// the card is bound when the authorisation is the verified person's.
func (s *Server) bindAuthorized(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := r.PathValue("token")
	l, ok := s.bindLink(w, r, token)
	if !ok {
		return
	}
	b, _, err := s.payment.CompleteBind(ctx, token, r.URL.Query().Get("authCode"))
	var refused *medpay.Error
	switch {
	case errors.Is(err, payment.ErrLinkUnusable) || errors.Is(err, medpay.ErrNotFound):
		s.bindLink(w, r, token)
		return
	case errors.As(err, &refused):
		s.render(w, http.StatusUnprocessableEntity, "result.html", &pageData{Title: "授权未完成",
			Message: strings.TrimRight(refused.Message, "。") + "。请返回重新绑定。", Return: "/bind/" + token})
		return
	case err != nil:
		s.pageError(w, err, "bind")
		return
	}
	if err := s.setWalletScenario(ctx, l.AppID, l.OpenID, b); err != nil {
		s.logger.Error("sandbox wallet scenario", "err", err)
	}
	http.Redirect(w, r, l.ReturnURL, http.StatusSeeOther)
}

// cardsPayer finds the payer of a /me/cards request: through a bind link's token (t), or, in
// the sandbox only, by appid and openid (there is no identity provider to authenticate a payer,
// so outside the sandbox a page may only act for a payer the hospital vouched for with a link).
func (s *Server) cardsPayer(w http.ResponseWriter, r *http.Request, form url.Values) (v *payerView, appid, openid string, ok bool) {
	ctx := r.Context()
	v = &payerView{pageData: pageData{Title: "我的医保卡"}}
	if t := form.Get("t"); t != "" {
		l, ok := s.bindLink(w, r, t)
		if !ok {
			return nil, "", "", false
		}
		v.Token, v.Return = t, l.ReturnURL
		return v, l.AppID, l.OpenID, true
	}
	if !s.cfg.Sandbox {
		s.render(w, http.StatusForbidden, "result.html", &pageData{Title: "请从医院页面进入",
			Message: "为保护您的信息,请在医院的小程序或公众号中打开医保卡管理页面。"})
		return nil, "", "", false
	}
	appid, openid = form.Get("appid"), form.Get("openid")
	if appid == "" || openid == "" {
		s.render(w, http.StatusBadRequest, "result.html", &pageData{Title: "缺少参数",
			Message: "沙箱中请用 /me/cards?appid=…&openid=… 打开本页。"})
		return nil, "", "", false
	}
	if _, err := s.store.MerchantByAppID(ctx, appid); errors.Is(err, medpay.ErrNotFound) {
		s.render(w, http.StatusNotFound, "result.html", &pageData{Title: "应用不存在", Message: "appid 未注册。"})
		return nil, "", "", false
	} else if err != nil {
		s.pageError(w, err, "cards")
		return nil, "", "", false
	}
	v.AppID, v.OpenID = appid, openid
	return v, appid, openid, true
}

// cardsPage is GET /me/cards: the payer's bound card.
func (s *Server) cardsPage(w http.ResponseWriter, r *http.Request) {
	v, appid, openid, ok := s.cardsPayer(w, r, r.URL.Query())
	if !ok {
		return
	}
	b, err := s.store.BindingFor(r.Context(), appid, openid)
	if err == nil {
		v.Card = s.cardView(b)
	} else if !errors.Is(err, medpay.ErrNotFound) {
		s.pageError(w, err, "cards")
		return
	}
	if r.URL.Query().Get("unbound") == "1" && v.Card == nil {
		v.Notice = "已解除绑定。"
	}
	if v.Card == nil && v.Token == "" {
		v.BindURL = s.sandboxBindURL(r, appid, openid)
	}
	s.renderView(w, http.StatusOK, "cards.html", v)
}

// cardsUnbind is POST /me/cards: unbind the payer's card.
func (s *Server) cardsUnbind(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, "result.html", &pageData{Title: "请求无效", Message: "请返回上一页重试。"})
		return
	}
	v, appid, openid, ok := s.cardsPayer(w, r, r.PostForm)
	if !ok {
		return
	}
	if v.Token != "" {
		l, err := s.payment.UnbindWithLink(ctx, v.Token)
		if errors.Is(err, payment.ErrLinkUnusable) || errors.Is(err, medpay.ErrNotFound) {
			s.bindLink(w, r, v.Token)
			return
		} else if err != nil {
			s.pageError(w, err, "cards")
			return
		}
		if err := s.setWalletScenario(ctx, l.AppID, l.OpenID, nil); err != nil {
			s.logger.Error("sandbox wallet scenario", "err", err)
		}
		http.Redirect(w, r, l.ReturnURL, http.StatusSeeOther)
		return
	}
	if err := s.payment.Unbind(ctx, appid, openid); err != nil {
		s.pageError(w, err, "cards")
		return
	}
	if err := s.setWalletScenario(ctx, appid, openid, nil); err != nil {
		s.logger.Error("sandbox wallet scenario", "err", err)
	}
	q := url.Values{"appid": {appid}, "openid": {openid}, "unbound": {"1"}}
	http.Redirect(w, r, "/me/cards?"+q.Encode(), http.StatusSeeOther)
}
