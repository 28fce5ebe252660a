package http

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore"
)

// The operator console under /console/. Roles: admin may do everything; reviewer decides
// applications and reads the rest masked; support reads, masked.

// dashboard is the console's first page: charts drawn on the server.
type dashboard struct {
	Charts      []template.HTML
	Orders24h   int
	Paid24h     int
	SuccessRate string
	Amount24h   int64
	Insurance   int64
	Cash        int64
	Dead        int
	LagP50      string
	LagMax      string
	Pending     int
}

func (s *Server) consoleDashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.now().In(medpay.CST)
	hourStart := now.Truncate(time.Hour).Add(-23 * time.Hour)
	dayStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, medpay.CST).AddDate(0, 0, -13)
	points, err := s.store.OrderPoints(ctx, dayStart, now.Add(time.Second))
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	d := &dashboard{}
	hourCount, hourAmount := make([]float64, 24), make([]float64, 24)
	dayCount, dayRate := make([]float64, 14), make([]float64, 14)
	dayPaid := make([]float64, 14)
	hourLabels, dayLabels := make([]string, 24), make([]string, 14)
	for i := range hourLabels {
		hourLabels[i] = hourStart.Add(time.Duration(i) * time.Hour).Format("15")
	}
	for i := range dayLabels {
		dayLabels[i] = dayStart.AddDate(0, 0, i).Format("01-02")
	}
	for _, p := range points {
		paid := p.State == medpay.StateSuccess || p.State == medpay.StateRefund
		if di := int(p.CreatedAt.Sub(dayStart) / (24 * time.Hour)); di >= 0 && di < 14 {
			dayCount[di]++
			if paid {
				dayPaid[di]++
			}
		}
		if hi := int(p.CreatedAt.Sub(hourStart) / time.Hour); hi >= 0 && hi < 24 {
			d.Orders24h++
			hourCount[hi]++
			if paid {
				d.Paid24h++
				hourAmount[hi] += float64(p.CashFee+p.InsuranceFee) / 100
				d.Amount24h += p.CashFee + p.InsuranceFee
				d.Insurance += p.InsuranceFee
				d.Cash += p.CashFee
			}
		}
	}
	for i := range dayRate {
		if dayCount[i] > 0 {
			dayRate[i] = 100 * dayPaid[i] / dayCount[i]
		}
	}
	if d.Orders24h > 0 {
		d.SuccessRate = fmt.Sprintf("%.1f%%", 100*float64(d.Paid24h)/float64(d.Orders24h))
	} else {
		d.SuccessRate = "—"
	}
	lags, at, dead, err := s.store.NotifyLag(ctx, hourStart, now.Add(time.Second))
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	d.Dead = dead
	lagHour := make([]float64, 24)
	lagN := make([]float64, 24)
	for i, l := range lags {
		if hi := int(at[i].Sub(hourStart) / time.Hour); hi >= 0 && hi < 24 {
			lagHour[hi] += l.Seconds()
			lagN[hi]++
		}
	}
	for i := range lagHour {
		if lagN[i] > 0 {
			lagHour[i] /= lagN[i]
		}
	}
	if len(lags) > 0 {
		sorted := append([]time.Duration(nil), lags...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		d.LagP50 = sorted[len(sorted)/2].Round(time.Millisecond).String()
		d.LagMax = sorted[len(sorted)-1].Round(time.Millisecond).String()
	} else {
		d.LagP50, d.LagMax = "—", "—"
	}
	deadAt, err := s.store.DeadSince(ctx, dayStart, now.Add(time.Second))
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	deadDay := make([]float64, 14)
	for _, at := range deadAt {
		if di := int(at.Sub(dayStart) / (24 * time.Hour)); di >= 0 && di < 14 {
			deadDay[di]++
		}
	}
	apps, err := s.store.Applications(ctx, medpay.AppSubmitted, 1000)
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	d.Pending = len(apps)
	d.Charts = []template.HTML{
		barChart("近 24 小时订单数(每小时)", hourLabels, hourCount, "%.0f", "#2f6fed"),
		barChart("近 24 小时支付金额(元,每小时)", hourLabels, hourAmount, "%.2f", "#07a35a"),
		barChart("近 14 天订单数(每天)", dayLabels, dayCount, "%.0f", "#2f6fed"),
		barChart("近 14 天支付成功率(%)", dayLabels, dayRate, "%.1f", "#d98e04"),
		splitChart("近 24 小时医保与现金占比", d.Insurance, d.Cash),
		barChart("近 24 小时通知平均延迟(秒,每小时)", hourLabels, lagHour, "%.2f", "#8e44ad"),
		barChart("近 14 天新增失败通知(每天,当前仍失败)", dayLabels, deadDay, "%.0f", "#c0392b"),
	}
	s.renderWeb(w, http.StatusOK, "console_dashboard.html", &webData{Title: "概览", Area: "console", Nav: "dashboard", User: userOf(r), Data: d})
}

// barChart draws values as an SVG bar chart with its title, an axis maximum and labels; every
// bar has a <title> with its value so that it reads without colour or hover.
func barChart(title string, labels []string, values []float64, format, colour string) template.HTML {
	const w, h, left, bottom, top = 640, 240, 64, 30, 20
	maxV := 0.0
	for _, v := range values {
		maxV = max(maxV, v)
	}
	scale := maxV
	if scale == 0 {
		scale = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s</figcaption><svg viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		template.HTMLEscapeString(title), w, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, left, h-bottom, w, h-bottom)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="tick" text-anchor="end">%s</text>`, left-6, top+6, template.HTMLEscapeString(fmt.Sprintf(format, maxV)))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="tick" text-anchor="end">0</text>`, left-4, h-bottom)
	n := len(values)
	slot := float64(w-left) / float64(max(n, 1))
	step := max(1, n/6)
	for i, v := range values {
		bh := v / scale * float64(h-bottom-top)
		x := float64(left) + float64(i)*slot + slot*0.15
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s</title></rect>`,
			x, float64(h-bottom)-bh, slot*0.7, bh, colour, template.HTMLEscapeString(labels[i]), template.HTMLEscapeString(fmt.Sprintf(format, v)))
		if i%step == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`, x+slot*0.35, h-6, template.HTMLEscapeString(labels[i]))
		}
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String())
}

// splitChart draws the insurance and cash shares as one stacked bar with a legend.
func splitChart(title string, insurance, cash int64) template.HTML {
	total := insurance + cash
	share := 0.0
	if total > 0 {
		share = float64(insurance) / float64(total)
	}
	const w = 640
	iw := share * w
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s</figcaption><svg viewBox="0 0 %d 80" role="img" aria-label="%s">`,
		template.HTMLEscapeString(title), w, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect x="0" y="8" width="%.1f" height="32" fill="#2f6fed"><title>医保 %s 元</title></rect>`, iw, medpay.FormatYuan(insurance))
	fmt.Fprintf(&b, `<rect x="%.1f" y="8" width="%.1f" height="32" fill="#07a35a"><title>现金 %s 元</title></rect>`, iw, w-iw, medpay.FormatYuan(cash))
	if total == 0 {
		fmt.Fprintf(&b, `<rect x="0" y="8" width="%d" height="32" fill="#e3e6eb"/>`, w)
	}
	fmt.Fprintf(&b, `<text x="0" y="68" class="tick">■ 医保 %s 元(%.1f%%)</text>`, medpay.FormatYuan(insurance), share*100)
	fmt.Fprintf(&b, `<text x="%d" y="68" class="tick" text-anchor="end">■ 现金 %s 元(%.1f%%)</text>`, w, medpay.FormatYuan(cash), (1-share)*100)
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String())
}

// Applications.

type applicationsView struct {
	Applications []*medpay.Application
	State        string
}

func (s *Server) consoleApplications(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	if state == "" {
		state = medpay.AppSubmitted
	}
	if state == "all" {
		state = ""
	}
	apps, err := s.store.Applications(r.Context(), state, 200)
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	s.renderWeb(w, http.StatusOK, "console_applications.html", &webData{Title: "接入申请", Area: "console", Nav: "applications",
		User: userOf(r), Data: &applicationsView{Applications: apps, State: r.URL.Query().Get("state")}})
}

type applicationView struct {
	App        *medpay.Application
	Evidence   *medpay.Evidence
	Simplified bool
	MayDecide  bool
	Contacts   bool // contacts shown in clear
}

func (s *Server) consoleApplication(w http.ResponseWriter, r *http.Request) {
	s.renderApplication(w, r, http.StatusOK, "", "")
}

func (s *Server) renderApplication(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string) {
	ctx := r.Context()
	u := userOf(r)
	a, err := s.store.Application(ctx, atoi64(r.PathValue("id")))
	if errors.Is(err, medpay.ErrNotFound) {
		s.renderWeb(w, http.StatusNotFound, "message.html", &webData{Title: "申请不存在", Area: "console", User: u, Error: "没有这份申请。"})
		return
	}
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	v := &applicationView{App: a, Simplified: a.Simplified(), MayDecide: u.Role == medpay.RoleAdmin || u.Role == medpay.RoleReviewer}
	// Reviewers need the applicant's contacts to decide; reading them is audited.
	v.Contacts = v.MayDecide
	if v.Contacts {
		if err := s.audit(r, a.MerchantID, "pii.view", fmt.Sprintf("application:%d", a.ID), "contacts"); err != nil {
			s.webError(w, r, "console", err)
			return
		}
	}
	if ev, err := s.store.ApplicationEvidence(ctx, a.ID); err == nil {
		v.Evidence = ev
	} else if !errors.Is(err, medpay.ErrNotFound) {
		s.webError(w, r, "console", err)
		return
	}
	s.renderWeb(w, status, "console_application.html", &webData{Title: "申请 #" + strconv.FormatInt(a.ID, 10), Area: "console",
		Nav: "applications", User: u, Notice: notice, Error: errMsg, Data: v})
}

// consoleEvidence serves the consent document, as the type it was sniffed as, never rendered
// as HTML.
func (s *Server) consoleEvidence(w http.ResponseWriter, r *http.Request) {
	id := atoi64(r.PathValue("id"))
	ev, err := s.store.ApplicationEvidence(r.Context(), id)
	if errors.Is(err, medpay.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	s.audit(r, 0, "evidence.view", fmt.Sprintf("application:%d", id), ev.SHA256)
	w.Header().Set("Content-Type", ev.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if ev.ContentType != "application/pdf" {
		// An image needs nothing active; Chromium's PDF viewer does not run in a sandboxed
		// document, so PDFs rely on the sniffed type and nosniff.
		w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self'")
	}
	w.Header().Set("Content-Disposition", `inline; filename="consent-`+strconv.FormatInt(id, 10)+extFor(ev.ContentType)+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(ev.Data)
}

func extFor(ctype string) string {
	switch ctype {
	case "application/pdf":
		return ".pdf"
	case "image/png":
		return ".png"
	}
	return ".jpg"
}

func (s *Server) consoleApprove(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	id := atoi64(r.PathValue("id"))
	if err := r.ParseForm(); err != nil {
		s.renderApplication(w, r, http.StatusBadRequest, "", "表单无效。")
		return
	}
	cities := r.PostForm["city"]
	e := s.auditEntry(r, u, "application.approve", fmt.Sprintf("application:%d", id), strings.Join(cities, ","))
	m, err := s.store.ApproveApplication(r.Context(), id, cities, u.Account, e)
	switch {
	case errors.Is(err, sqlstore.ErrNotSubmitted):
		s.renderApplication(w, r, http.StatusConflict, "", "这份申请已经处理过。")
		return
	case errors.Is(err, medpay.ErrNotFound):
		http.NotFound(w, r)
		return
	case err != nil && strings.Contains(err.Error(), "city"):
		s.renderApplication(w, r, http.StatusUnprocessableEntity, "", "请至少选择一个申请中的城市。")
		return
	case err != nil:
		s.webError(w, r, "console", err)
		return
	}
	s.renderApplication(w, r, http.StatusOK, "已批准,商户号 "+m.MchID+";凭证将在机构门户中向申请人显示一次。", "")
}

func (s *Server) consoleReject(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	id := atoi64(r.PathValue("id"))
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" || len([]rune(reason)) > 500 {
		s.renderApplication(w, r, http.StatusUnprocessableEntity, "", "请填写驳回原因(申请人可见,不超过 500 字)。")
		return
	}
	e := s.auditEntry(r, u, "application.reject", fmt.Sprintf("application:%d", id), reason)
	err := s.store.RejectApplication(r.Context(), id, reason, u.Account, e)
	if errors.Is(err, sqlstore.ErrNotSubmitted) {
		s.renderApplication(w, r, http.StatusConflict, "", "这份申请已经处理过。")
		return
	}
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	s.renderApplication(w, r, http.StatusOK, "已驳回。", "")
}

// Merchants.

type merchantsView struct {
	Merchants   []sqlstore.MerchantRow
	MaySuspend  bool
	AllCities   []bureau.City
	CityChoices map[int64][]string
}

func (s *Server) consoleMerchants(w http.ResponseWriter, r *http.Request) {
	s.renderMerchants(w, r, http.StatusOK, "", "")
}

func (s *Server) renderMerchants(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string) {
	u := userOf(r)
	ms, err := s.store.Merchants(r.Context(), 500)
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	s.renderWeb(w, status, "console_merchants.html", &webData{Title: "商户", Area: "console", Nav: "merchants", User: u,
		Notice: notice, Error: errMsg, Data: &merchantsView{Merchants: ms, MaySuspend: u.Role == medpay.RoleAdmin, AllCities: bureau.Cities()}})
}

func (s *Server) consoleSuspend(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	id := atoi64(r.PathValue("id"))
	m, err := s.store.MerchantByID(r.Context(), id)
	if errors.Is(err, medpay.ErrNotFound) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	suspend := r.PostFormValue("action") != "resume"
	action := "merchant.resume"
	if suspend {
		action = "merchant.suspend"
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	e := s.auditEntry(r, u, action, m.MchID, reason)
	e.MerchantID = m.ID
	if err := s.store.SetSuspended(r.Context(), m.ID, suspend, reason, e); err != nil {
		s.webError(w, r, "console", err)
		return
	}
	notice := "已恢复商户 " + m.Name + "。"
	if suspend {
		notice = "已暂停商户 " + m.Name + ":其接口调用将返回 510。"
	}
	s.renderMerchants(w, r, http.StatusOK, notice, "")
}

func (s *Server) consoleCities(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	id := atoi64(r.PathValue("id"))
	m, err := s.store.MerchantByID(r.Context(), id)
	if errors.Is(err, medpay.ErrNotFound) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	var cities []string
	for _, c := range strings.Fields(strings.ReplaceAll(r.PostFormValue("cities"), ",", " ")) {
		if _, ok := bureau.DefaultPolicies().City(c); !ok {
			s.renderMerchants(w, r, http.StatusUnprocessableEntity, "", "城市代码 "+c+" 不在覆盖范围内。")
			return
		}
		cities = append(cities, c)
	}
	e := s.auditEntry(r, u, "merchant.cities", m.MchID, strings.Join(cities, ","))
	e.MerchantID = m.ID
	if err := s.store.SetMerchantCities(r.Context(), m.ID, cities, e); err != nil {
		s.webError(w, r, "console", err)
		return
	}
	s.renderMerchants(w, r, http.StatusOK, "已更新 "+m.Name+" 的开通城市。", "")
}

// Orders.

func (s *Server) consoleOrders(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	f, d := s.orderFilter(r)
	if mch := strings.TrimSpace(r.URL.Query().Get("mch_id")); mch != "" {
		d.Merchant = mch
		m, err := s.store.MerchantByMchID(r.Context(), mch)
		if err == nil {
			f.MerchantID = m.ID
		} else {
			f.MerchantID = -1
		}
	}
	var err error
	if d.Orders, err = s.store.Orders(r.Context(), f); err != nil {
		s.webError(w, r, "console", err)
		return
	}
	d.Base = "/console"
	s.renderWeb(w, http.StatusOK, "orders.html", &webData{Title: "订单", Area: "console", Nav: "orders", User: u, Data: d})
}

func (s *Server) consoleOrder(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	o, err := s.store.OrderByID(r.Context(), r.PathValue("id"))
	if errors.Is(err, medpay.ErrNotFound) {
		s.renderWeb(w, http.StatusNotFound, "message.html", &webData{Title: "订单不存在", Area: "console", User: u, Error: "没有这笔订单。"})
		return
	}
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	t, err := s.loadTimeline(r.Context(), o)
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	t.Base, t.MayAct = "/console", u.Role == medpay.RoleAdmin
	errMsg := ""
	if r.URL.Query().Get("unmask") == "1" {
		if u.MayUnmask() {
			if err := s.audit(r, o.MerchantID, "pii.view", "order:"+o.MedTransID, "psn_no, card_no, openid"); err != nil {
				s.webError(w, r, "console", err)
				return
			}
			t.Unmask = true
		} else {
			errMsg = "您的角色不能查看完整个人信息。"
		}
	}
	s.renderWeb(w, http.StatusOK, "order.html", &webData{Title: "订单 " + o.MedTransID, Area: "console", Nav: "orders", User: u,
		Notice: r.URL.Query().Get("notice"), Error: errMsg, Data: t})
}

// Notifications.

type deadView struct {
	Rows []notify.Row
}

func (s *Server) consoleNotifications(w http.ResponseWriter, r *http.Request) {
	s.renderDead(w, r, "")
}

func (s *Server) renderDead(w http.ResponseWriter, r *http.Request, notice string) {
	rows, err := notify.List(r.Context(), s.store.DB(), notify.Filter{State: notify.StateDead, Limit: 500})
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	s.renderWeb(w, http.StatusOK, "console_notifications.html", &webData{Title: "失败通知", Area: "console", Nav: "notifications",
		User: userOf(r), Notice: notice, Data: &deadView{Rows: rows}})
}

// consoleResend makes the selected dead notifications (or all of them) due again.
func (s *Server) consoleResend(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.renderDead(w, r, "表单无效。")
		return
	}
	if r.PostFormValue("all") == "1" {
		n, err := notify.ResendDead(ctx, s.store.DB(), 0, s.now())
		if err != nil {
			s.webError(w, r, "console", err)
			return
		}
		s.audit(r, 0, "notify.resend_dead", "all", strconv.Itoa(n))
		s.renderDead(w, r, fmt.Sprintf("已将 %d 条失败通知重新排队。", n))
		return
	}
	n := 0
	for _, id := range r.PostForm["notify_id"] {
		row, _, err := notify.Show(ctx, s.store.DB(), id)
		if errors.Is(err, medpay.ErrNotFound) {
			continue
		}
		if err == nil {
			err = notify.Resend(ctx, s.store.DB(), id, s.now())
		}
		if errors.Is(err, notify.ErrInFlight) {
			continue
		}
		if err != nil {
			s.webError(w, r, "console", err)
			return
		}
		s.audit(r, row.MerchantID, "notify.resend", id, "")
		n++
	}
	s.renderDead(w, r, fmt.Sprintf("已将 %d 条通知重新排队。", n))
}

func (s *Server) consoleResendOne(w http.ResponseWriter, r *http.Request) {
	row, _, err := notify.Show(r.Context(), s.store.DB(), r.PathValue("id"))
	if errors.Is(err, medpay.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	s.resend(w, r, row, "/console")
}

// Reconciliation, policies, audit.

func (s *Server) consoleReconcile(w http.ResponseWriter, r *http.Request) {
	v, err := s.reconcileDay(r)
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	v.Base = "/console"
	s.renderWeb(w, http.StatusOK, "reconcile.html", &webData{Title: "对账", Area: "console", Nav: "reconcile", User: userOf(r), Data: v})
}

func (s *Server) consolePolicies(w http.ResponseWriter, r *http.Request) {
	s.renderWeb(w, http.StatusOK, "console_policies.html", &webData{Title: "城市政策", Area: "console", Nav: "policies",
		User: userOf(r), Data: bureau.Policies()})
}

func (s *Server) consoleAudit(w http.ResponseWriter, r *http.Request) {
	entries, err := s.store.AuditLog(r.Context(), atoi64(r.URL.Query().Get("merchant")), 500)
	if err != nil {
		s.webError(w, r, "console", err)
		return
	}
	s.renderWeb(w, http.StatusOK, "console_audit.html", &webData{Title: "审计日志", Area: "console", Nav: "audit", User: userOf(r), Data: entries})
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// stateName is a trade state in Chinese.
func stateName(st any) string {
	switch fmt.Sprint(st) {
	case "NOTPAY":
		return "待支付"
	case "USERPAYING":
		return "支付中"
	case "SUCCESS":
		return "支付成功"
	case "PAYERROR":
		return "支付失败"
	case "CLOSED":
		return "已关闭"
	case "REFUND":
		return "已退款"
	case "SYS_REFUNDING":
		return "系统退款中"
	case "SYS_REFUNDED":
		return "系统已退款"
	case "PROCESSING":
		return "处理中"
	case "FAIL":
		return "失败"
	case "CHANGE":
		return "需人工处理"
	case "pending":
		return "待发送"
	case "delivered":
		return "已送达"
	case "dead":
		return "发送失败"
	case medpay.AppSubmitted:
		return "待审核"
	case medpay.AppApproved:
		return "已批准"
	case medpay.AppRejected:
		return "已驳回"
	}
	return fmt.Sprint(st)
}
