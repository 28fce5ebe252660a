package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bill"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/reconcile"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// The hospital portal under /portal/: the staff of one merchant manage their integration.

// KeyOverlap is how long a rotated API key and app secret keep working beside the new ones.
const KeyOverlap = 24 * time.Hour

// portalHome is the portal's first page: the application's state before approval, then the
// merchant with its credentials (shown once) and the day's figures.
type portalHome struct {
	Application *medpay.Application
	Merchant    *medpay.Merchant
	Suspended   bool
	PendingKeys bool
	Credentials *medpay.Credentials // shown once
	Retired     []sqlstore.RetiredKey
}

// portalMerchant returns the staff member's merchant, or nil before approval.
func (s *Server) portalMerchant(ctx context.Context, u *user) (*medpay.Merchant, error) {
	if u.MerchantID == 0 {
		return nil, nil
	}
	return s.store.MerchantByID(ctx, u.MerchantID)
}

func (s *Server) portalHome(w http.ResponseWriter, r *http.Request) {
	s.renderPortalHome(w, r, nil, "")
}

func (s *Server) renderPortalHome(w http.ResponseWriter, r *http.Request, creds *medpay.Credentials, notice string) {
	ctx := r.Context()
	u := userOf(r)
	d := &portalHome{Credentials: creds}
	var err error
	if u.ApplicationID != 0 {
		if d.Application, err = s.store.Application(ctx, u.ApplicationID); err != nil {
			s.webError(w, r, "portal", err)
			return
		}
	}
	if d.Merchant, err = s.portalMerchant(ctx, u); err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	if d.Merchant != nil {
		if d.Suspended, err = s.store.Suspended(ctx, d.Merchant.ID); err == nil {
			d.PendingKeys, err = s.store.HasPendingCredentials(ctx, d.Merchant.ID)
		}
		if err == nil {
			d.Retired, err = s.store.RetiredKeys(ctx, d.Merchant.ID, s.now())
		}
		if err != nil {
			s.webError(w, r, "portal", err)
			return
		}
	}
	s.renderWeb(w, http.StatusOK, "portal_home.html", &webData{Title: "机构门户", Area: "portal", Nav: "home", User: u,
		Notice: notice, Data: d})
}

// portalRevealCredentials shows the credentials of an approval, once.
func (s *Server) portalRevealCredentials(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	if u.MerchantID == 0 {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	creds, err := s.store.TakeCredentials(r.Context(), u.MerchantID, s.auditEntry(r, u, "credentials.reveal", "", ""))
	if errors.Is(err, medpay.ErrNotFound) {
		s.renderPortalHome(w, r, nil, "凭证已经显示过,不能再次查看;如已遗失,请轮换密钥。")
		return
	}
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	s.renderPortalHome(w, r, creds, "")
}

// portalRotate gives the merchant a new API key and app secret; the old ones work for KeyOverlap.
func (s *Server) portalRotate(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	if u.MerchantID == 0 {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	e := s.auditEntry(r, u, "keys.rotate", "", "overlap "+KeyOverlap.String())
	creds, err := s.store.RotateKeys(r.Context(), u.MerchantID, KeyOverlap, e)
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	s.renderPortalHome(w, r, creds, "新密钥已生成。旧的 API 密钥和 AppSecret 将在 "+
		s.now().Add(KeyOverlap).In(medpay.CST).Format("2006-01-02 15:04")+" 前继续有效。")
}

// portalSettings: refund IP allow-list and the notify URL test.
type portalSettings struct {
	Merchant   *medpay.Merchant
	RefundIPs  string
	NotifyURL  string
	TestResult *notifyTest
}

type notifyTest struct {
	Status  int
	Latency time.Duration
	Answer  string
	Error   string
	OK      bool
}

func (s *Server) portalSettings(w http.ResponseWriter, r *http.Request) {
	s.renderPortalSettings(w, r, http.StatusOK, nil, "", "")
}

func (s *Server) renderPortalSettings(w http.ResponseWriter, r *http.Request, status int, test *notifyTest, notice, errMsg string) {
	u := userOf(r)
	m, err := s.portalMerchant(r.Context(), u)
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	if m == nil {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	d := &portalSettings{Merchant: m, RefundIPs: strings.Join(m.RefundIPs, "\n"), NotifyURL: r.PostFormValue("notify_url"), TestResult: test}
	s.renderWeb(w, status, "portal_settings.html", &webData{Title: "接入设置", Area: "portal", Nav: "settings", User: u,
		Notice: notice, Error: errMsg, Data: d})
}

func (s *Server) portalSetRefundIPs(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	var ips []string
	for _, f := range strings.Fields(strings.ReplaceAll(r.PostFormValue("refund_ips"), ",", " ")) {
		if _, err := netip.ParsePrefix(f); err != nil {
			if _, err := netip.ParseAddr(f); err != nil {
				s.renderPortalSettings(w, r, http.StatusUnprocessableEntity, nil, "", "“"+f+"”既不是 IP 地址也不是 CIDR 网段。")
				return
			}
		}
		ips = append(ips, f)
	}
	if len(ips) > 100 {
		s.renderPortalSettings(w, r, http.StatusUnprocessableEntity, nil, "", "最多 100 条。")
		return
	}
	if err := s.store.SetRefundIPs(r.Context(), u.MerchantID, ips, s.auditEntry(r, u, "refund_ips.set", "", strings.Join(ips, ","))); err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	s.renderPortalSettings(w, r, http.StatusOK, nil, "退款 IP 白名单已保存。", "")
}

// portalNotifyTest sends a signed test notification to the URL given and shows the answer.
func (s *Server) portalNotifyTest(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u := userOf(r)
	m, err := s.portalMerchant(ctx, u)
	if err != nil || m == nil {
		s.webError(w, r, "portal", fmt.Errorf("notify test: %v", err))
		return
	}
	raw := strings.TrimSpace(r.PostFormValue("notify_url"))
	if err := notify.CheckURL(ctx, raw, s.cfg.Sandbox || s.cfg.AllowPrivateNotify); err != nil {
		s.renderPortalSettings(w, r, http.StatusUnprocessableEntity, nil, "", "通知地址不可用:"+err.Error())
		return
	}
	msg := wire.NewMessage()
	msg.Set("return_code", "SUCCESS")
	msg.Set("appid", m.AppID)
	msg.Set("mch_id", m.MchID)
	msg.Set("notify_type", "TEST")
	msg.Set("notify_id", "TEST-"+secret.RandomString(16, "0123456789abcdef"))
	msg.Set("nonce_str", wire.Nonce())
	if err := wire.SignInPlace(msg, m.APIKey); err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	s.audit(r, m.ID, "notify.test", raw, "")
	res := &notifyTest{}
	client := notify.Client(5*time.Second, s.cfg.Sandbox || s.cfg.AllowPrivateNotify)
	start := time.Now()
	resp, err := client.Post(raw, "text/xml; charset=utf-8", strings.NewReader(string(msg.Bytes())))
	res.Latency = time.Since(start).Round(time.Millisecond)
	if err != nil {
		res.Error = err.Error()
	} else {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		res.Status, res.Answer = resp.StatusCode, string(body)
		res.OK = resp.StatusCode == http.StatusOK && strings.Contains(res.Answer, "SUCCESS")
	}
	s.renderPortalSettings(w, r, http.StatusOK, res, "", "")
}

// orderList is the data of the order lists of the portal and the console.
type orderList struct {
	Orders   []*medpay.Order
	Refunds  []*medpay.Refund
	State    string
	Query    string
	Day      string
	Merchant string
	Unmask   bool
	Base     string // /portal or /console
}

func (s *Server) orderFilter(r *http.Request) (sqlstore.OrderFilter, *orderList) {
	q := r.URL.Query()
	f := sqlstore.OrderFilter{State: q.Get("state"), Query: strings.TrimSpace(q.Get("q")), Limit: 100}
	d := &orderList{State: f.State, Query: f.Query, Day: q.Get("day")}
	if start, end, err := bill.Day(strings.ReplaceAll(d.Day, "-", "")); err == nil {
		f.From, f.To = start, end
	}
	return f, d
}

func (s *Server) portalOrders(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	if u.MerchantID == 0 {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	f, d := s.orderFilter(r)
	f.MerchantID = u.MerchantID
	var err error
	if d.Orders, err = s.store.Orders(r.Context(), f); err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	d.Base = "/portal"
	s.renderWeb(w, http.StatusOK, "orders.html", &webData{Title: "订单", Area: "portal", Nav: "orders", User: u, Data: d})
}

func (s *Server) portalRefunds(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	if u.MerchantID == 0 {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	d := &orderList{State: r.URL.Query().Get("state"), Base: "/portal"}
	var err error
	if d.Refunds, err = s.store.RefundsOfMerchant(r.Context(), u.MerchantID, d.State, 100); err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	s.renderWeb(w, http.StatusOK, "refunds.html", &webData{Title: "退款", Area: "portal", Nav: "refunds", User: u, Data: d})
}

// timeline is an order with everything that happened to it.
type timeline struct {
	Order         *medpay.Order
	Merchant      *medpay.Merchant
	Refunds       []*medpay.Refund
	Notifications []notificationView
	Unmask        bool
	MayAct        bool
	Base          string
}

type notificationView struct {
	notify.Row
	Attempts []notify.Attempt
}

func (s *Server) loadTimeline(ctx context.Context, o *medpay.Order) (*timeline, error) {
	t := &timeline{Order: o}
	var err error
	if t.Merchant, err = s.store.MerchantByID(ctx, o.MerchantID); err != nil {
		return nil, err
	}
	if t.Refunds, err = s.store.RefundsOfOrder(ctx, o.ID); err != nil {
		return nil, err
	}
	rows, err := notify.List(ctx, s.store.DB(), notify.Filter{OrderID: o.ID, Limit: 100})
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		_, atts, err := notify.Show(ctx, s.store.DB(), row.NotifyID)
		if err != nil {
			return nil, err
		}
		t.Notifications = append(t.Notifications, notificationView{Row: row, Attempts: atts})
	}
	return t, nil
}

func (s *Server) portalOrder(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	o, err := s.store.OrderByID(r.Context(), r.PathValue("id"))
	if errors.Is(err, medpay.ErrNotFound) || (err == nil && o.MerchantID != u.MerchantID && o.ProviderID != u.MerchantID) {
		s.renderWeb(w, http.StatusNotFound, "message.html", &webData{Title: "订单不存在", Area: "portal", User: u, Error: "没有这笔订单。"})
		return
	}
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	t, err := s.loadTimeline(r.Context(), o)
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	t.MayAct, t.Base = true, "/portal"
	s.renderWeb(w, http.StatusOK, "order.html", &webData{Title: "订单 " + o.MedTransID, Area: "portal", Nav: "orders", User: u,
		Notice: r.URL.Query().Get("notice"), Data: t})
}

// portalResend makes one of the merchant's notifications due again.
func (s *Server) portalResend(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	row, _, err := notify.Show(r.Context(), s.store.DB(), r.PathValue("id"))
	if errors.Is(err, medpay.ErrNotFound) || (err == nil && row.MerchantID != u.MerchantID) {
		s.renderWeb(w, http.StatusNotFound, "message.html", &webData{Title: "通知不存在", Area: "portal", User: u, Error: "没有这条通知。"})
		return
	}
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	s.resend(w, r, row, "/portal")
}

func (s *Server) resend(w http.ResponseWriter, r *http.Request, row *notify.Row, base string) {
	err := notify.Resend(r.Context(), s.store.DB(), row.NotifyID, s.now())
	notice := "通知已重新排队发送。"
	if errors.Is(err, notify.ErrInFlight) {
		notice = "该通知正在发送中,请稍后再试。"
	} else if err != nil {
		s.webError(w, r, "portal", err)
		return
	} else {
		s.audit(r, row.MerchantID, "notify.resend", row.NotifyID, "")
	}
	o, err := s.store.OrderByRowID(r.Context(), row.OrderID)
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	http.Redirect(w, r, base+"/orders/"+o.MedTransID+"?notice="+urlQueryEscape(notice), http.StatusSeeOther)
}

// portalBills lists the days to download and serves a day's bill.
func (s *Server) portalBills(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	if u.MerchantID == 0 {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	q := r.URL.Query()
	if day := q.Get("day"); day != "" {
		start, _, err := bill.Day(strings.ReplaceAll(day, "-", ""))
		typ := q.Get("type")
		if typ != bill.TypeSuccess && typ != bill.TypeRefund {
			typ = bill.TypeAll
		}
		if err == nil {
			data, gerr := bill.Generate(r.Context(), s.store, u.MerchantID, start, typ)
			if medpay.ErrorCode(gerr) == medpay.ErrNoBill {
				s.renderBills(w, r, "该日没有交易,无账单。")
				return
			}
			if gerr != nil {
				s.webError(w, r, "portal", gerr)
				return
			}
			s.audit(r, u.MerchantID, "bill.download", start.Format("20060102"), typ)
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="bill-%s-%s.csv"`, start.Format("20060102"), typ))
			w.Write(data)
			return
		}
	}
	s.renderBills(w, r, "")
}

func (s *Server) renderBills(w http.ResponseWriter, r *http.Request, errMsg string) {
	var days []string
	today := s.now().In(medpay.CST)
	for i := 0; i < 14; i++ {
		days = append(days, today.AddDate(0, 0, -i).Format(time.DateOnly))
	}
	s.renderWeb(w, http.StatusOK, "bills.html", &webData{Title: "对账单", Area: "portal", Nav: "bills", User: userOf(r), Error: errMsg, Data: days})
}

// reconView is a day's reconciliation.
type reconView struct {
	Day    string
	Report *reconcile.Report
	Base   string
}

func (s *Server) reconcileDay(r *http.Request) (*reconView, error) {
	day := r.URL.Query().Get("day")
	start, _, err := bill.Day(strings.ReplaceAll(day, "-", ""))
	if err != nil {
		n := s.now().In(medpay.CST)
		start = time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, medpay.CST)
	}
	v := &reconView{Day: start.Format(time.DateOnly)}
	if s.bureau == nil || s.books == nil {
		return v, nil
	}
	v.Report, err = reconcile.Day(r.Context(), s.store, s.bureau, s.books, start)
	return v, err
}

// portalReconcile shows the day's reconciliation, limited to the merchant's own serials.
func (s *Server) portalReconcile(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	if u.MerchantID == 0 {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	v, err := s.reconcileDay(r)
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	if v.Report != nil {
		mine := v.Report.Discrepancies[:0:0]
		for _, d := range v.Report.Discrepancies {
			if s.serialMerchant(r.Context(), d.Serial) == u.MerchantID {
				mine = append(mine, d)
			}
		}
		v.Report.Discrepancies = mine
		v.Report.Totals = nil // the platform's totals are not the merchant's
	}
	v.Base = "/portal"
	s.renderWeb(w, http.StatusOK, "reconcile.html", &webData{Title: "对账结果", Area: "portal", Nav: "reconcile", User: u, Data: v})
}

// serialMerchant finds the merchant behind an idempotency serial (<med_trans_id>-S1,
// <med_refund_id>-B), or 0.
func (s *Server) serialMerchant(ctx context.Context, serial string) int64 {
	id := serial
	if i := strings.LastIndexByte(serial, '-'); i > 0 {
		id = serial[:i]
	}
	if o, err := s.store.OrderByID(ctx, id); err == nil {
		return o.MerchantID
	}
	if rf, err := s.store.RefundByID(ctx, id); err == nil {
		return rf.MerchantID
	}
	return 0
}

// Staff and invitations.

type staffView struct {
	Staff      []*medpay.Account
	InviteLink string
	Providers  []providerView
}

type providerView struct {
	MchID, Name string
}

func (s *Server) portalStaff(w http.ResponseWriter, r *http.Request) {
	s.renderStaff(w, r, http.StatusOK, "", "", "")
}

func (s *Server) renderStaff(w http.ResponseWriter, r *http.Request, status int, link, notice, errMsg string) {
	u := userOf(r)
	if u.MerchantID == 0 {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	staff, err := s.store.StaffOf(r.Context(), u.MerchantID)
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	s.renderWeb(w, status, "portal_staff.html", &webData{Title: "员工与服务商", Area: "portal", Nav: "staff", User: u,
		Notice: notice, Error: errMsg, Data: &staffView{Staff: staff, InviteLink: link}})
}

// InviteTTL is how long an invitation link works.
const InviteTTL = 72 * time.Hour

func (s *Server) portalInvite(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	email := sqlstore.NormalizeEmail(r.PostFormValue("email"))
	if !emailPattern.MatchString(email) {
		s.renderStaff(w, r, http.StatusUnprocessableEntity, "", "", "请填写有效的邮箱。")
		return
	}
	token := secret.Token()
	a := &medpay.Account{Kind: medpay.AccountStaff, Email: email, Name: strings.TrimSpace(r.PostFormValue("name")),
		Role: medpay.RoleStaff, MerchantID: u.MerchantID, CreatedAt: s.now()}
	err := s.store.Invite(r.Context(), a, secret.Hash(token), s.now().Add(InviteTTL), s.auditEntry(r, u, "staff.invite", email, ""))
	if errors.Is(err, medpay.ErrConflict) {
		s.renderStaff(w, r, http.StatusConflict, "", "", "该邮箱已有账号。")
		return
	}
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	s.renderStaff(w, r, http.StatusOK, s.cfg.BaseURL+"/portal/invite/"+token, "邀请已创建。请把下面的链接交给该员工,链接只显示这一次,72 小时内有效。", "")
}

func (s *Server) invitePage(w http.ResponseWriter, r *http.Request) {
	s.renderWeb(w, http.StatusOK, "invite.html", &webData{Title: "设置密码", Area: "portal", Data: r.PathValue("token")})
}

func (s *Server) inviteAccept(w http.ResponseWriter, r *http.Request) {
	password := r.PostFormValue("password")
	if len([]rune(password)) < secret.MinPasswordLen || len(password) > 128 {
		s.renderWeb(w, http.StatusUnprocessableEntity, "invite.html", &webData{Title: "设置密码", Area: "portal",
			Error: fmt.Sprintf("密码至少 %d 位。", secret.MinPasswordLen), Data: r.PathValue("token")})
		return
	}
	_, err := s.store.AcceptInvite(r.Context(), secret.Hash(r.PathValue("token")), secret.HashPassword(password), s.now())
	if errors.Is(err, medpay.ErrNotFound) {
		s.renderWeb(w, http.StatusNotFound, "message.html", &webData{Title: "邀请无效", Area: "portal", Error: "邀请链接无效或已过期。"})
		return
	}
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	http.Redirect(w, r, "/portal/login", http.StatusSeeOther)
}

// portalProvider authorises or revokes a service provider, named by its mch_id.
func (s *Server) portalProvider(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	ctx := r.Context()
	p, err := s.store.MerchantByMchID(ctx, strings.TrimSpace(r.PostFormValue("provider")))
	if errors.Is(err, medpay.ErrNotFound) || (err == nil && p.Kind != medpay.KindProvider) {
		s.renderStaff(w, r, http.StatusUnprocessableEntity, "", "", "没有这个服务商商户号。")
		return
	}
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	action := r.PostFormValue("action")
	if action == "revoke" {
		err = s.store.Revoke(ctx, p.ID, u.MerchantID)
	} else {
		action = "authorize"
		err = s.store.Authorize(ctx, p.ID, u.MerchantID)
	}
	if err == nil {
		err = s.audit(r, u.MerchantID, "provider."+action, p.MchID, p.Name)
	}
	if err != nil {
		s.webError(w, r, "portal", err)
		return
	}
	msg := "已授权服务商 " + p.Name + " 代为调用接口。"
	if action == "revoke" {
		msg = "已撤销服务商 " + p.Name + " 的授权。"
	}
	s.renderStaff(w, r, http.StatusOK, "", msg, "")
}

func atoi64(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
