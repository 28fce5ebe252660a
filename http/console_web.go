package http

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// The web side of onboarding: accounts, sessions and the shared look of /apply, /portal/ and
// /console/. Pages are rendered on the server and work without JavaScript.

//go:embed console_templates
var consoleFS embed.FS

var consoleCSS, _ = consoleFS.ReadFile("console_templates/console.css")

var consolePages = template.Must(template.New("").Funcs(template.FuncMap{
	"yuan": medpay.FormatYuan,
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.In(medpay.CST).Format("2006-01-02 15:04:05")
	},
	"join":      func(s []string) string { return strings.Join(s, ", ") },
	"city":      cityName,
	"has":       func(list []string, v string) bool { return contains(list, v) },
	"state":     stateName,
	"roleName":  roleName,
	"maskID":    medpay.MaskCardNo,
	"maskName":  medpay.MaskName,
	"maskEmail": maskEmail,
	"list":      func(v ...string) []string { return v },
	"partyName": partyName,
	"sub":       func(a, b int64) int64 { return a - b },
	"kind":      kindName,
	"serialID": func(serial string) string {
		if i := strings.LastIndexByte(serial, '-'); i > 0 {
			return serial[:i]
		}
		return serial
	},
}).ParseFS(consoleFS, "console_templates/*.html"))

// consoleCSP allows the pages' own stylesheet, images (QR codes as data: URLs) and the consent
// document shown in an <object>; no script at all.
const consoleCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; object-src 'self'; frame-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Cookie names; each area has its own session.
const (
	consoleCookie = "medpay_console"
	portalCookie  = "medpay_portal"
)

// user is the signed-in account of a request.
type user struct {
	*medpay.Account
	tokenHash string
	mfa       bool
}

// webData is what every console, portal and application page gets.
type webData struct {
	Title   string
	Area    string // "console", "portal" or "apply"
	Nav     string // the current section
	User    *user
	Sandbox bool
	Error   string
	Notice  string
	Data    any
}

func (s *Server) renderWeb(w http.ResponseWriter, status int, name string, d *webData) {
	d.Sandbox = s.cfg.Sandbox
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", consoleCSP)
	w.WriteHeader(status)
	if err := consolePages.ExecuteTemplate(w, name, d); err != nil {
		s.logger.Error("render", "page", name, "err", err)
	}
}

func (s *Server) webError(w http.ResponseWriter, r *http.Request, area string, err error) {
	s.logger.Error("web", "rid", requestID(r.Context()), "path", r.URL.Path, "err", err)
	s.renderWeb(w, http.StatusInternalServerError, "message.html", &webData{Title: "系统繁忙", Area: area,
		Error: "系统繁忙,请稍后重试。编号 " + requestID(r.Context())})
}

func (s *Server) consoleStyle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(consoleCSS)
}

// secureCookies is true when the platform is served over https.
func (s *Server) secureCookies() bool { return strings.HasPrefix(s.cfg.BaseURL, "https://") }

func (s *Server) setSession(w http.ResponseWriter, name, path, token string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: token, Path: path, HttpOnly: true, Secure: s.secureCookies(),
		SameSite: http.SameSiteStrictMode, MaxAge: int(medpay.SessionAbsolute.Seconds())})
}

func (s *Server) clearSession(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, HttpOnly: true, Secure: s.secureCookies(),
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// currentUser returns the session's account of kind, or nil.
func (s *Server) currentUser(r *http.Request, cookie, kind string) (*user, error) {
	c, err := r.Cookie(cookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	h := secret.Hash(c.Value)
	sess, err := s.store.Session(r.Context(), h, s.now())
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if sess.Account.Kind != kind {
		return nil, nil
	}
	return &user{Account: sess.Account, tokenHash: h, mfa: sess.MFA}, nil
}

type userKey struct{}

func userOf(r *http.Request) *user { u, _ := r.Context().Value(userKey{}).(*user); return u }

// requireOperator lets through operators with a finished second factor in one of roles (any role
// when none is given).
func (s *Server) requireOperator(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.currentUser(r, consoleCookie, medpay.AccountOperator)
		if err != nil {
			s.webError(w, r, "console", err)
			return
		}
		if u == nil {
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
			return
		}
		if !u.mfa {
			http.Redirect(w, r, "/console/totp", http.StatusSeeOther)
			return
		}
		if len(roles) > 0 && !contains(roles, u.Role) {
			s.renderWeb(w, http.StatusForbidden, "message.html", &webData{Title: "无权操作", Area: "console", User: u,
				Error: "您的角色(" + roleName(u.Role) + ")无权执行此操作。"})
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	}
}

// requireStaff lets through staff signed in to the portal (owners only when ownerOnly).
func (s *Server) requireStaff(h http.HandlerFunc, ownerOnly bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.currentUser(r, portalCookie, medpay.AccountStaff)
		if err != nil {
			s.webError(w, r, "portal", err)
			return
		}
		if u == nil {
			http.Redirect(w, r, "/portal/login", http.StatusSeeOther)
			return
		}
		if !u.mfa {
			http.Redirect(w, r, "/portal/totp", http.StatusSeeOther)
			return
		}
		if ownerOnly && u.Role != medpay.RoleOwner {
			s.renderWeb(w, http.StatusForbidden, "message.html", &webData{Title: "无权操作", Area: "portal", User: u,
				Error: "只有机构管理员可以执行此操作。"})
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	}
}

// audit appends an action of the request's user to the audit log.
func (s *Server) audit(r *http.Request, merchantID int64, action, target, detail string) error {
	u := userOf(r)
	e := s.auditEntry(r, u, action, target, detail)
	e.MerchantID = merchantID
	return s.store.Audit(r.Context(), e)
}

func (s *Server) auditEntry(r *http.Request, u *user, action, target, detail string) *medpay.AuditEntry {
	e := &medpay.AuditEntry{At: s.now(), Action: action, Target: target, Detail: detail, IP: s.clientIP(r)}
	if u != nil {
		e.ActorID, e.Actor = u.ID, u.Kind+":"+u.Email
		if u.Kind == medpay.AccountStaff {
			e.MerchantID = u.MerchantID
		}
	}
	return e
}

// loginForm is the data of a login page.
type loginForm struct {
	Email  string
	Action string
}

// login checks email and password for an account of kind, with throttling per account and per
// address, and starts a session. It returns the account, or renders the refusal and returns nil.
func (s *Server) login(w http.ResponseWriter, r *http.Request, kind, area, cookie, path string) *medpay.Account {
	ctx := r.Context()
	email := sqlstore.NormalizeEmail(r.PostFormValue("email"))
	password := r.PostFormValue("password")
	now := s.now()
	acctKey, ipKey := "acct:"+kind+":"+email, "ip:"+s.clientIP(r)
	refuse := func(status int, msg string) {
		s.renderWeb(w, status, "login.html", &webData{Title: "登录", Area: area, Error: msg,
			Data: loginForm{Email: email, Action: path + "login"}})
	}
	na, err := s.store.LoginFailures(ctx, acctKey, now)
	if err != nil {
		s.webError(w, r, area, err)
		return nil
	}
	ni, err := s.store.LoginFailures(ctx, ipKey, now)
	if err != nil {
		s.webError(w, r, area, err)
		return nil
	}
	if na >= medpay.LoginFailuresAccount || ni >= medpay.LoginFailuresAddress {
		refuse(http.StatusTooManyRequests, "登录失败次数过多,请 15 分钟后再试。")
		return nil
	}
	a, err := s.store.AccountByEmail(ctx, kind, email)
	if err != nil && !errors.Is(err, medpay.ErrNotFound) {
		s.webError(w, r, area, err)
		return nil
	}
	hash := ""
	if a != nil {
		hash = a.PasswordHash
	}
	if !secret.CheckPassword(hash, password) {
		if _, err := s.store.RecordLoginFailure(ctx, acctKey, now); err != nil {
			s.webError(w, r, area, err)
			return nil
		}
		if _, err := s.store.RecordLoginFailure(ctx, ipKey, now); err != nil {
			s.webError(w, r, area, err)
			return nil
		}
		if a != nil {
			s.store.Audit(ctx, &medpay.AuditEntry{At: now, ActorID: a.ID, Actor: kind + ":" + a.Email, MerchantID: a.MerchantID,
				Action: "login.fail", IP: s.clientIP(r)})
		}
		refuse(http.StatusUnauthorized, "邮箱或密码错误。")
		return nil
	}
	if err := s.store.ClearLoginFailures(ctx, acctKey); err != nil {
		s.webError(w, r, area, err)
		return nil
	}
	token := secret.Token()
	// Operators give their second factor before the session may act.
	if err := s.store.CreateSession(ctx, secret.Hash(token), a.ID, kind != medpay.AccountOperator && !a.TOTPOn, now); err != nil {
		s.webError(w, r, area, err)
		return nil
	}
	if err := s.store.Audit(ctx, &medpay.AuditEntry{At: now, ActorID: a.ID, Actor: kind + ":" + a.Email, MerchantID: a.MerchantID,
		Action: "login", IP: s.clientIP(r)}); err != nil {
		s.webError(w, r, area, err)
		return nil
	}
	s.setSession(w, cookie, path, token)
	return a
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, cookie, kind, path string) {
	u, err := s.currentUser(r, cookie, kind)
	if err == nil && u != nil {
		s.store.DeleteSession(r.Context(), u.tokenHash)
		s.store.Audit(r.Context(), s.auditEntry(r, u, "logout", "", ""))
	}
	s.clearSession(w, cookie, path)
	http.Redirect(w, r, path+"login", http.StatusSeeOther)
}

// Console login and second factor.

func (s *Server) consoleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.renderWeb(w, http.StatusOK, "login.html", &webData{Title: "运营控制台登录", Area: "console",
		Data: loginForm{Action: "/console/login"}})
}

func (s *Server) consoleLogin(w http.ResponseWriter, r *http.Request) {
	if s.login(w, r, medpay.AccountOperator, "console", consoleCookie, "/console/") != nil {
		http.Redirect(w, r, "/console/totp", http.StatusSeeOther)
	}
}

func (s *Server) consoleLogout(w http.ResponseWriter, r *http.Request) {
	s.logout(w, r, consoleCookie, medpay.AccountOperator, "/console/")
}

// totpData is the second-factor page: enrolment shows the secret and its QR code.
type totpData struct {
	Action   string
	Required bool // operators must enrol; staff may
	Enrol    bool
	Secret   string
	URL      string
	QR       template.URL
}

const totpIssuer = "medpay"

var totpOpts = totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// matchTOTP finds the time step (the current one or a neighbour, for clock drift) whose code is
// code.
func matchTOTP(code, secretText string, at time.Time) (int64, bool) {
	code = strings.TrimSpace(code)
	for _, off := range []int64{0, -1, 1} {
		t := at.Add(time.Duration(off) * 30 * time.Second)
		want, err := totp.GenerateCodeCustom(secretText, t, totpOpts)
		if err == nil && len(code) == len(want) && subtle.ConstantTimeCompare([]byte(code), []byte(want)) == 1 {
			return t.Unix() / 30, true
		}
	}
	return 0, false
}

// consoleTOTP asks for the code, and at the first login enrols the operator.
func (s *Server) consoleTOTP(w http.ResponseWriter, r *http.Request) {
	s.secondFactor(w, r, "console", consoleCookie, medpay.AccountOperator, "/console/")
}

// portalTOTP asks for the code of staff who enabled the second factor, and lets a signed-in
// staff member enable it.
func (s *Server) portalTOTP(w http.ResponseWriter, r *http.Request) {
	s.secondFactor(w, r, "portal", portalCookie, medpay.AccountStaff, "/portal/")
}

// secondFactor asks for a TOTP code to finish a sign-in, enrolling the account first when it has
// no second factor yet (operators at their first sign-in; staff who choose to).
func (s *Server) secondFactor(w http.ResponseWriter, r *http.Request, area, cookie, kind, base string) {
	ctx := r.Context()
	u, err := s.currentUser(r, cookie, kind)
	if err != nil {
		s.webError(w, r, area, err)
		return
	}
	if u == nil {
		http.Redirect(w, r, base+"login", http.StatusSeeOther)
		return
	}
	if u.mfa && u.TOTPOn {
		http.Redirect(w, r, base, http.StatusSeeOther)
		return
	}
	if !u.TOTPOn && u.TOTPSecret == "" {
		key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: u.Email})
		if err != nil {
			s.webError(w, r, area, err)
			return
		}
		if err := s.store.SetTOTP(ctx, u.ID, key.Secret(), false, nil); err != nil {
			s.webError(w, r, area, err)
			return
		}
		u.TOTPSecret = key.Secret()
	}
	d := &totpData{Enrol: !u.TOTPOn, Action: base + "totp", Required: kind == medpay.AccountOperator}
	if d.Enrol {
		d.Secret = u.TOTPSecret
		d.URL = fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s", totpIssuer, u.Email, u.TOTPSecret, totpIssuer)
		if png, err := qrcode.Encode(d.URL, qrcode.Medium, 200); err == nil {
			d.QR = template.URL("data:image/png;base64," + base64Std(png))
		}
	}
	if r.Method == http.MethodPost {
		now := s.now()
		key := "totp:" + kind + ":" + u.Email
		n, err := s.store.LoginFailures(ctx, key, now)
		if err != nil {
			s.webError(w, r, area, err)
			return
		}
		if n >= medpay.LoginFailuresAccount {
			s.renderWeb(w, http.StatusTooManyRequests, "totp.html", &webData{Title: "两步验证", Area: area, User: signedIn(u), Data: d,
				Error: "验证码错误次数过多,请 15 分钟后再试。"})
			return
		}
		step, ok := matchTOTP(r.PostFormValue("code"), u.TOTPSecret, now)
		if ok {
			if ok, err = s.store.ClaimTOTPStep(ctx, u.ID, step); err != nil {
				s.webError(w, r, area, err)
				return
			}
		}
		if !ok {
			s.store.RecordLoginFailure(ctx, key, now)
			s.renderWeb(w, http.StatusUnauthorized, "totp.html", &webData{Title: "两步验证", Area: area, User: signedIn(u), Data: d,
				Error: "验证码不正确。"})
			return
		}
		s.store.ClearLoginFailures(ctx, key)
		if d.Enrol {
			if err := s.store.SetTOTP(ctx, u.ID, u.TOTPSecret, true, s.auditEntry(r, u, "totp.enrol", "", "")); err != nil {
				s.webError(w, r, area, err)
				return
			}
		}
		if err := s.store.SetSessionMFA(ctx, u.tokenHash); err != nil {
			s.webError(w, r, area, err)
			return
		}
		http.Redirect(w, r, base, http.StatusSeeOther)
		return
	}
	s.renderWeb(w, http.StatusOK, "totp.html", &webData{Title: "两步验证", Area: area, User: signedIn(u), Data: d})
}

// Portal login.

func (s *Server) portalLoginPage(w http.ResponseWriter, r *http.Request) {
	s.renderWeb(w, http.StatusOK, "login.html", &webData{Title: "机构门户登录", Area: "portal",
		Data: loginForm{Action: "/portal/login"}})
}

func (s *Server) portalLogin(w http.ResponseWriter, r *http.Request) {
	if a := s.login(w, r, medpay.AccountStaff, "portal", portalCookie, "/portal/"); a != nil && a.TOTPOn {
		http.Redirect(w, r, "/portal/totp", http.StatusSeeOther)
	} else if a != nil {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
	}
}

func (s *Server) portalLogout(w http.ResponseWriter, r *http.Request) {
	s.logout(w, r, portalCookie, medpay.AccountStaff, "/portal/")
}

func roleName(role string) string {
	switch role {
	case medpay.RoleAdmin:
		return "管理员"
	case medpay.RoleReviewer:
		return "审核员"
	case medpay.RoleSupport:
		return "客服(只读)"
	case medpay.RoleOwner:
		return "机构管理员"
	case medpay.RoleStaff:
		return "机构员工"
	}
	return role
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// maskEmail keeps the first character of the local part and the domain.
func maskEmail(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at < 1 {
		return medpay.MaskCardNo(e)
	}
	return e[:1] + "***" + e[at:]
}

func partyName(p string) string {
	switch p {
	case "bureau_fund":
		return "医保统筹基金"
	case "personal_account":
		return "个人账户"
	case "cash":
		return "现金渠道"
	}
	return p
}

func kindName(k string) string {
	switch k {
	case medpay.KindHospital:
		return "医院"
	case medpay.KindPharmacy:
		return "药店"
	case medpay.KindProvider:
		return "服务商"
	}
	return k
}

// signedIn is u when its sign-in is complete (the navigation is shown), nil otherwise.
func signedIn(u *user) *user {
	if u != nil && u.mfa {
		return u
	}
	return nil
}
