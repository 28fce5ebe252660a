package main

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/medpay/medpay/client"
	"github.com/medpay/medpay/wire"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"yuan":  func(fen int64) string { return fmt.Sprintf("%d.%02d", fen/100, fen%100) },
	"state": stateText,
}).ParseFS(templateFS, "templates/*.html"))

// Config is what the app needs.
type Config struct {
	Client       *client.Client
	APIKey       string // verifies notifications
	PublicURL    string // the app's own URL, for notify_url and return_url
	HospitalName string
	CityID       string
	OrgNo        string // institution code from the bureau
	// MedpayURL and AppID serve the sandbox shortcut that binds a test card.
	MedpayURL string
	AppID     string
	Logger    *slog.Logger
	Now       func() time.Time
}

// Record is the hospital's own record of an order.
type Record struct {
	TradeNo      string // hosp_out_trade_no
	Kind         string // RegPay or DiagPay
	Title        string
	OpenID       string
	TotalFee     int64
	MedTransID   string
	PayURL       string
	State        string // med_trade_state as last learnt
	CashFee      int64
	InsuranceFee int64
	Source       string // how the state was learnt: "notification" or "query"
	PaidAt       time.Time
	Created      time.Time
}

// Final reports whether the record needs no further news about the payment.
func (r *Record) Final() bool {
	switch r.State {
	case client.StateSuccess, client.StatePayError, client.StateClosed, client.StateRefund, client.StateSysRefunded:
		return true
	}
	return false
}

// App is the hospital web app. It keeps its state in memory.
type App struct {
	cfg     Config
	handler http.Handler

	mu      sync.Mutex
	orders  map[string]*Record // by hosp_out_trade_no
	notices map[string]bool    // notify_id already processed
	seq     int

	// Counters that show what the app did (the tests read them).
	Queries       int // QueryOrder calls made on a patient's return
	Notifications int // notifications processed (repeats excluded)
	Repeats       int // repeated notifications acknowledged without effect
}

// NewApp returns the app.
func NewApp(cfg Config) *App {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OrgNo == "" {
		cfg.OrgNo = "H44030000001"
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	a := &App{cfg: cfg, orders: map[string]*Record{}, notices: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("POST /register", a.pay(client.RegPay))
	mux.HandleFunc("POST /clinic", a.pay(client.DiagPay))
	mux.HandleFunc("GET /return", a.patientReturn)
	mux.HandleFunc("GET /orders/{no}", a.orderPage)
	mux.HandleFunc("POST /bind", a.bind)
	mux.HandleFunc("POST /sandbox-bind", a.sandboxBind)
	pages := http.NewCrossOriginProtection().Handler(mux)
	root := http.NewServeMux()
	root.Handle("/notify", client.NotificationHandler(cfg.APIKey, a.onNotification))
	root.Handle("/", pages)
	a.handler = root
	return a
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Record returns a copy of the record of an order, or nil.
func (a *App) Record(tradeNo string) *Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.orders[tradeNo]; ok {
		c := *r
		return &c
	}
	return nil
}

// What the patient can pay for. A real HIS takes the bill from its own records; the clinic
// bill is the worked example of docs/api/bureau.md.
type service struct {
	title          string
	total          int64
	cash           int64 // the expected split; the bureau's pre-settlement decides (allow_fee_change=1)
	insurance      int64
	requestContent string
}

var services = map[string]service{
	client.RegPay: {title: "普通门诊挂号", total: 2500, cash: 500, insurance: 2000},
	client.DiagPay: {title: "门诊缴费 · 内科", total: 6500, cash: 1000, insurance: 5500, requestContent: `{"med_type":"11","dept_name":"内科","acct_used":true,"items":[` +
		`{"code":"250101001","name":"血常规","class":"A","price":2500,"qty":1},` +
		`{"code":"86900011","name":"阿莫西林胶囊","class":"B","price":1850,"qty":2,"self_ratio_pct":10},` +
		`{"code":"X0001","name":"口罩","class":"C","price":300,"qty":1}]}`},
}

type pageData struct {
	Hospital string
	OpenID   string
	Orders   []*Record
	Order    *Record
	Error    string
	Message  string
}

func (a *App) render(w http.ResponseWriter, status int, name string, d *pageData) {
	d.Hospital = a.cfg.HospitalName
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		a.cfg.Logger.Error("render", "page", name, "err", err)
	}
}

// patientID is the patient's openid. A real app gets it from the WeChat login; this one lets the
// patient type it and remembers it in a cookie.
func patientID(r *http.Request) string {
	if v := strings.TrimSpace(r.FormValue("openid")); v != "" {
		return v
	}
	if c, err := r.Cookie("openid"); err == nil && c.Value != "" {
		return c.Value
	}
	return "patient-1"
}

func (a *App) index(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	var list []*Record
	for _, rec := range a.orders {
		c := *rec
		list = append(list, &c)
	}
	a.mu.Unlock()
	slices.SortFunc(list, func(x, y *Record) int { return y.Created.Compare(x.Created) })
	a.render(w, http.StatusOK, "index.html", &pageData{OpenID: patientID(r), Orders: list, Message: r.URL.Query().Get("msg")})
}

// pay places an order of kind and sends the patient to the payment page.
func (a *App) pay(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		openid := patientID(r)
		http.SetCookie(w, &http.Cookie{Name: "openid", Value: openid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		svc := services[kind]
		now := a.cfg.Now()
		a.mu.Lock()
		a.seq++
		no := fmt.Sprintf("%s%s%04d", map[string]string{client.RegPay: "REG", client.DiagPay: "DIAG"}[kind], now.In(wire.CST).Format("20060102150405"), a.seq)
		a.mu.Unlock()
		req := &client.UnifiedOrderRequest{
			OrderFields: client.OrderFields{
				OpenID: openid, OrderType: kind, HospOutTradeNo: no, HospitalName: a.cfg.HospitalName, Body: svc.title,
				TotalFee: svc.total, CashFee: svc.cash, InsuranceFee: svc.insurance, AllowFeeChange: 1, PayType: client.PayCashInsurance,
				SpbillCreateIP: clientIP(r), CityID: a.cfg.CityID, SerialNo: no[len(no)-min(len(no), 20):], OrgNo: a.cfg.OrgNo,
				GmtOutCreate: now, RequestContent: svc.requestContent,
			},
			NotifyURL: a.cfg.PublicURL + "/notify", ReturnURL: a.cfg.PublicURL + "/return?order=" + url.QueryEscape(no),
		}
		resp, err := a.cfg.Client.UnifiedOrder(r.Context(), req)
		if err != nil {
			a.cfg.Logger.Warn("unifiedorder", "trade_no", no, "err", err)
			msg := "下单失败,请稍后再试。"
			switch client.Code(err) {
			case "511":
				msg = "您还没有绑定医保卡,请先绑定。"
			case "506":
				msg = "医保结算被拒绝:" + err.Error()
			}
			a.render(w, http.StatusOK, "index.html", &pageData{OpenID: openid, Error: msg})
			return
		}
		a.mu.Lock()
		a.orders[no] = &Record{TradeNo: no, Kind: kind, Title: svc.title, OpenID: openid, TotalFee: svc.total,
			MedTransID: resp.MedTransID, PayURL: resp.PayURL, State: client.StateNotPay,
			CashFee: resp.CashFee, InsuranceFee: resp.InsuranceFee, Created: now}
		a.mu.Unlock()
		http.Redirect(w, r, resp.PayURL, http.StatusSeeOther)
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "127.0.0.1"
	}
	return host
}

// onNotification records a PAY notification. It is idempotent on notify_id: a repeat is
// acknowledged and changes nothing. Returning an error makes the platform send it again.
func (a *App) onNotification(ctx context.Context, n *client.Notification) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.notices[n.NotifyID] {
		a.Repeats++
		return nil
	}
	if n.Order == nil { // a REFUND notification: this example does not refund
		a.notices[n.NotifyID] = true
		return nil
	}
	rec, ok := a.orders[n.Order.HospOutTradeNo]
	switch {
	case !ok:
		// Not ours (or lost with a restart of this in-memory app): acknowledge, and log.
		a.cfg.Logger.Warn("notification for an unknown order", "hosp_out_trade_no", n.Order.HospOutTradeNo)
	case rec.MedTransID != n.Order.MedTransID || rec.TotalFee != n.Order.TotalFee:
		a.cfg.Logger.Error("notification does not match the order", "hosp_out_trade_no", rec.TradeNo,
			"med_trans_id", n.Order.MedTransID, "total_fee", n.Order.TotalFee)
	default:
		a.apply(rec, n.Order, "notification")
	}
	a.notices[n.NotifyID] = true
	a.Notifications++
	return nil
}

// apply records what the platform says of an order; a.mu is held.
func (a *App) apply(rec *Record, o *client.Order, source string) {
	if rec.Final() && rec.State == o.MedTradeState {
		return
	}
	rec.State, rec.CashFee, rec.InsuranceFee, rec.Source = o.MedTradeState, o.CashFee, o.InsuranceFee, source
	if o.Paid() {
		rec.PaidAt = o.TimeEnd
	}
}

// patientReturn is return_url. The query string says what the platform's page saw, but anyone
// can type a URL: the app trusts its own record, and when no notification has arrived yet it
// asks the platform.
func (a *App) patientReturn(w http.ResponseWriter, r *http.Request) {
	no := or(r.URL.Query().Get("order"), r.URL.Query().Get("hosp_out_trade_no"))
	a.mu.Lock()
	rec, ok := a.orders[no]
	final := ok && rec.Final()
	a.mu.Unlock()
	if !ok {
		a.render(w, http.StatusNotFound, "order.html", &pageData{Error: "找不到这笔订单。"})
		return
	}
	if !final {
		o, err := a.cfg.Client.QueryOrder(r.Context(), &client.QueryOrderRequest{HospOutTradeNo: no})
		a.mu.Lock()
		a.Queries++
		if err == nil && o.MedTransID == rec.MedTransID {
			a.apply(rec, o, "query")
		}
		a.mu.Unlock()
		if err != nil {
			a.cfg.Logger.Warn("queryorder on return", "trade_no", no, "err", err)
		}
	}
	http.Redirect(w, r, "/orders/"+url.PathEscape(no), http.StatusSeeOther)
}

func (a *App) orderPage(w http.ResponseWriter, r *http.Request) {
	rec := a.Record(r.PathValue("no"))
	if rec == nil {
		a.render(w, http.StatusNotFound, "order.html", &pageData{Error: "找不到这笔订单。"})
		return
	}
	a.render(w, http.StatusOK, "order.html", &pageData{Order: rec})
}

// bind sends the patient to the platform's card-binding page (GetBindURL).
func (a *App) bind(w http.ResponseWriter, r *http.Request) {
	openid := patientID(r)
	http.SetCookie(w, &http.Cookie{Name: "openid", Value: openid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	u, err := a.cfg.Client.GetBindURL(r.Context(), &client.GetBindURLRequest{OpenID: openid, URL: a.cfg.PublicURL + "/?msg=" + url.QueryEscape("医保卡已绑定")})
	if err != nil {
		a.render(w, http.StatusOK, "index.html", &pageData{OpenID: openid, Error: "暂时无法绑定医保卡:" + err.Error()})
		return
	}
	http.Redirect(w, r, u.BindURL, http.StatusSeeOther)
}

// sandboxBind binds a sandbox test person's card to the patient through the platform's sandbox
// helper API (not part of the open API; only a sandbox platform has it).
func (a *App) sandboxBind(w http.ResponseWriter, r *http.Request) {
	openid := patientID(r)
	http.SetCookie(w, &http.Cookie{Name: "openid", Value: openid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if err := SandboxBind(r.Context(), http.DefaultClient, a.cfg.MedpayURL, a.cfg.AppID, openid, a.cfg.CityID, "employee"); err != nil {
		a.render(w, http.StatusOK, "index.html", &pageData{OpenID: openid, Error: "沙箱绑卡失败:" + err.Error()})
		return
	}
	http.Redirect(w, r, "/?msg="+url.QueryEscape("已绑定沙箱测试卡"), http.StatusSeeOther)
}

// SandboxBind binds the first sandbox person of city and scenario to (appid, openid).
func SandboxBind(ctx context.Context, hc *http.Client, medpayURL, appid, openid, city, scenario string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, medpayURL+"/sandbox/persons?city_id="+url.QueryEscape(city)+"&scenario="+url.QueryEscape(scenario), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var persons []struct {
		IDNo string `json:"id_no"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&persons) != nil || len(persons) == 0 {
		return fmt.Errorf("no sandbox person for %s/%s (is the platform a sandbox?): HTTP %d", city, scenario, resp.StatusCode)
	}
	body, _ := json.Marshal(map[string]string{"appid": appid, "openid": openid, "id_no": persons[0].IDNo})
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, medpayURL+"/sandbox/bindings", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp2, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK {
		return fmt.Errorf("sandbox binding: HTTP %d", resp2.StatusCode)
	}
	return nil
}

// stateText is a state in the patient's words.
func stateText(s string) string {
	switch s {
	case client.StateSuccess:
		return "已支付"
	case client.StateNotPay:
		return "待支付"
	case client.StateUserPaying:
		return "支付中"
	case client.StatePayError:
		return "支付失败"
	case client.StateClosed:
		return "已关闭"
	case client.StateRefund:
		return "已退款"
	case client.StateSysRefunding:
		return "支付失败,退回中"
	case client.StateSysRefunded:
		return "支付失败,已退回"
	}
	return s
}
