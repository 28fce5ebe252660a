package bureau

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/hsa"
	"github.com/medpay/medpay/national"
)

// Server serves the simulator over HTTP as a bureau of the national protocol (national.md
// §1–5): the operations under /org/local/api/hos/, the payer's authorisation page at /auth and,
// in sandbox mode, /sandbox/persons and /sandbox/payauth. Mount it at the bureau's base URL with
// the prefix stripped.
type Server struct {
	sim     *Simulator
	hsa     *hsa.Handler
	sandbox bool
	hold    time.Duration
	log     *slog.Logger
	mux     *http.ServeMux
}

// ServerOptions tune a Server.
type ServerOptions struct {
	Sandbox bool // serve /sandbox/*
	Logger  *slog.Logger
	// Hold bounds how long the answer to a bureau_timeout person is held (default 2 min); the
	// caller's deadline normally ends it first.
	Hold time.Duration
	// Window is the envelope's clock window (default 5 min).
	Window time.Duration
	// Now is the envelope's clock (default time.Now); the books keep the simulator's.
	Now func() time.Time
}

// NewServer returns the bureau's server; it reads (or makes) the bureau's key.
func NewServer(ctx context.Context, sim *Simulator, opts ServerOptions) (*Server, error) {
	key, err := sim.BureauKey(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Hold <= 0 {
		opts.Hold = 2 * time.Minute
	}
	s := &Server{sim: sim, sandbox: opts.Sandbox, hold: opts.Hold, log: opts.Logger, mux: http.NewServeMux(),
		hsa: &hsa.Handler{Institutions: sim, BureauKey: key, Now: opts.Now, Window: opts.Window, Log: opts.Logger}}
	ops := map[string]func(ctx context.Context, sim *Simulator, inst *Institution, data json.RawMessage) (any, error){
		national.RouteUpload:    s.upload,
		national.RouteSettle:    s.settle,
		national.RouteRefund:    s.refund,
		national.RouteQuery:     s.query,
		national.RouteRevoke:    s.revoke,
		national.RoutePerson:    s.person,
		national.RouteStatement: s.statement,
		national.RouteAuth:      s.authInfo,
	}
	for route, op := range ops {
		s.mux.HandleFunc("POST "+hsa.RoutePrefix+route, func(w http.ResponseWriter, r *http.Request) {
			s.hsa.Serve(w, r, func(ctx context.Context, hi *hsa.Institution, data json.RawMessage) (any, error) {
				inst, err := sim.InstitutionByAppID(ctx, hi.AppID)
				if err != nil {
					return nil, err
				}
				res, err := op(ctx, sim.As(inst.AppID), inst, data)
				// ctx runs the operation to its end even when the caller hangs up; a held answer
				// waits for the caller itself.
				return res, s.answer(r.Context(), route, err)
			})
		})
	}
	auth := http.NewServeMux()
	auth.HandleFunc("GET /auth", s.authPage)
	auth.HandleFunc("POST /auth", s.authConfirm)
	s.mux.Handle("/auth", http.NewCrossOriginProtection().Handler(auth))
	if opts.Sandbox {
		s.mux.HandleFunc("GET /sandbox/persons", s.sandboxPersons)
		s.mux.HandleFunc("POST /sandbox/payauth", s.sandboxPayAuth)
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// answer turns an operation's error into the envelope's answer: a refusal, a lost answer as the
// scenario wants it, or an internal error.
func (s *Server) answer(ctx context.Context, route string, err error) error {
	if err == nil {
		return nil
	}
	var lost *LostAnswer
	if errors.As(err, &lost) {
		if lost.Hold {
			// The bureau does not answer in time: hold until the caller gives up.
			t := time.NewTimer(s.hold)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
		// The answer is lost on the way (or never comes): the connection drops.
		panic(http.ErrAbortHandler)
	}
	var me *medpay.Error
	switch {
	case errors.Is(err, medpay.ErrConflict):
		return &hsa.Refusal{Code: national.CodeConflict, Message: "业务流水号已用于其他业务"}
	case errors.As(err, &me):
		code := national.CodeRefused
		switch me.Code {
		case medpay.ErrRefundExceeds:
			code = national.CodeRefundExceeds
		case medpay.ErrIdentityMismatch:
			code = national.CodeIdentity
		case medpay.ErrBureauRefund:
			code = national.CodeRefundRefused
		}
		return &hsa.Refusal{Code: code, Message: me.Message}
	}
	return err
}

// ---- operations ----

func decode(data json.RawMessage, v any) error {
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return rejected("data 格式有误：%v", err)
	}
	return nil
}

// required refuses the first empty field, naming it.
func required(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if strings.TrimSpace(fields[i+1]) == "" {
			return rejected("缺少必填字段 %s", fields[i])
		}
	}
	return nil
}

func yuanField(name, v string) (int64, error) {
	fen, err := national.ParseYuan(v)
	if err != nil {
		return 0, rejected("%s：%v", name, err)
	}
	return fen, nil
}

var classOfLevel = map[string]string{"01": ClassA, "02": ClassB, "03": ClassC}

// billContent turns 6201's fee details into request_content (docs/api/bureau.md (request_content)), checking the sums.
func billContent(d *national.UploadData) (string, error) {
	total, err := yuanField("medfeeSumamt", d.MedfeeSumamt)
	if err != nil {
		return "", err
	}
	type item struct {
		Code      string `json:"code"`
		Name      string `json:"name"`
		Class     string `json:"class"`
		Price     int64  `json:"price"`
		Qty       int64  `json:"qty"`
		SelfRatio *int   `json:"self_ratio_pct,omitempty"`
	}
	items := make([]item, 0, len(d.Feedetails))
	var sum int64
	for i, f := range d.Feedetails {
		name := fmt.Sprintf("feedetailList[%d]", i)
		if err := required(name+".feedetlSn", f.FeedetlSn, name+".detItemFeeSumamt", f.DetItemFeeSumamt, name+".cnt", f.Cnt,
			name+".pric", f.Pric, name+".medListCodg", f.MedListCodg, name+".medListName", f.MedListName); err != nil {
			return "", err
		}
		amt, err := yuanField(name+".detItemFeeSumamt", f.DetItemFeeSumamt)
		if err != nil {
			return "", err
		}
		price, err := yuanField(name+".pric", f.Pric)
		if err != nil {
			return "", err
		}
		qty, err := strconv.ParseInt(f.Cnt, 10, 64)
		if err != nil || qty <= 0 {
			return "", rejected("%s.cnt 应为正整数（模拟器不支持小数数量）", name)
		}
		if price*qty != amt {
			return "", rejected("%s.detItemFeeSumamt %s 不等于 pric × cnt", name, f.DetItemFeeSumamt)
		}
		it := item{Code: f.MedListCodg, Name: f.MedListName, Class: ClassA, Price: price, Qty: qty}
		if f.ChrgitmLv != "" {
			c, ok := classOfLevel[f.ChrgitmLv]
			if !ok {
				return "", rejected("%s.chrgitmLv %q 无效（01、02、03）", name, f.ChrgitmLv)
			}
			it.Class = c
		}
		if f.SelfpayProp != "" && it.Class == ClassB {
			pct, err := national.ParseYuan(f.SelfpayProp) // a proportion with two decimals reads as hundredths
			if err != nil || pct > 100 {
				return "", rejected("%s.selfpayProp %q 无效", name, f.SelfpayProp)
			}
			p := int(pct)
			it.SelfRatio = &p
		}
		sum += amt
		items = append(items, it)
	}
	if sum != total {
		return "", rejected("medfeeSumamt %s 不等于 feedetailList 的 detItemFeeSumamt 之和 %s", d.MedfeeSumamt, national.Yuan(sum))
	}
	acctUsed := d.AcctUsedFlag != "0"
	b, err := json.Marshal(map[string]any{"med_type": d.MedType, "dept_name": d.DeptName, "acct_used": acctUsed, "items": items})
	return string(b), err
}

func (s *Server) upload(ctx context.Context, sim *Simulator, inst *Institution, data json.RawMessage) (any, error) {
	var d national.UploadData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	if d.PayAuthNo == "" && d.EcToken == "" {
		return nil, rejected("缺少必填字段 payAuthNo 或 ecToken")
	}
	if d.EcToken != "" {
		return nil, rejected("模拟器暂不支持 ecToken，请使用 payAuthNo")
	}
	if err := required("mdtrtId", d.MdtrtID, "orgCodg", d.OrgCodg, "medOrgOrd", d.MedOrgOrd, "medType", d.MedType,
		"medfeeSumamt", d.MedfeeSumamt, "feedetailList", strings.Repeat("x", len(d.Feedetails))); err != nil {
		return nil, err
	}
	content, err := billContent(&d)
	if err != nil {
		return nil, err
	}
	level := inst.Level
	if d.HospLv != "" {
		if level, err = strconv.Atoi(d.HospLv); err != nil {
			return nil, rejected("hospLv %q 无效", d.HospLv)
		}
	}
	st, err := sim.Upload(ctx, medpay.UploadRequest{MedOrgOrd: d.MedOrgOrd, PayAuthNo: d.PayAuthNo, PsnNo: d.PsnNo,
		CityID: d.InsuplcAdmdvs, OrgCodg: d.OrgCodg, HospLevel: level, OrderType: d.OrderType, RequestContent: content})
	if err != nil {
		return nil, err
	}
	ans := national.UploadAnswer{PayOrdID: st.PayOrdID, PayToken: st.PayToken, MedOrgOrd: d.MedOrgOrd, Split: national.SplitOf(st),
		RespContent: st.ResponseContent}
	var rc ResponseContent
	if json.Unmarshal([]byte(st.ResponseContent), &rc) == nil {
		ans.InscpScpAmt, ans.PreselfpayAmt = national.Yuan(rc.InscpScpAmt), national.Yuan(rc.PreselfpayAmt)
		ans.FulamtOwnpayAmt, ans.ActPayDedc = national.Yuan(rc.FulamtOwnpayAmt), national.Yuan(rc.ActPayDedc)
	}
	return ans, nil
}

func orderAnswer(st *medpay.Settlement, medOrgOrd string) national.OrderAnswer {
	a := national.OrderAnswer{PayOrdID: st.PayOrdID, OrdStas: strconv.Itoa(st.OrdStas), MedOrgOrd: medOrgOrd}
	if medpay.OrdSettledState(st.OrdStas) {
		a.Split = national.SplitOf(st)
		a.SetlID, a.SetlTime, a.RespContent = st.SetlID, national.FormatTime(st.SetlTime), st.ResponseContent
		switch {
		case st.PsnCashPay == 0:
			a.SetlType = medpay.RefundHI
		case st.Insurance() == 0:
			a.SetlType = medpay.RefundCash
		default:
			a.SetlType = medpay.RefundAll
		}
	}
	return a
}

func (s *Server) settle(ctx context.Context, sim *Simulator, inst *Institution, data json.RawMessage) (any, error) {
	var d national.SettleData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	if err := required("payOrdId", d.PayOrdID, "payToken", d.PayToken, "orgBizSer", d.OrgBizSer); err != nil {
		return nil, err
	}
	st, err := sim.Settle(ctx, medpay.SettleRequest{PayOrdID: d.PayOrdID, PayToken: d.PayToken, PayAuthNo: d.PayAuthNo, OrgBizSer: d.OrgBizSer})
	if err != nil {
		return nil, err
	}
	a := orderAnswer(st, "")
	if !medpay.OrdSettledState(st.OrdStas) { // a repeat after a refund: the settlement as made
		a.Split, a.SetlID, a.SetlTime, a.RespContent = national.SplitOf(st), st.SetlID, national.FormatTime(st.SetlTime), st.ResponseContent
	}
	return a, nil
}

func (s *Server) orderRef(data json.RawMessage) (medpay.OrderRef, error) {
	var d national.OrderRefData
	if err := decode(data, &d); err != nil {
		return medpay.OrderRef{}, err
	}
	if err := required("payOrdId", d.PayOrdID, "payToken", d.PayToken); err != nil {
		return medpay.OrderRef{}, err
	}
	return medpay.OrderRef{PayOrdID: d.PayOrdID, PayToken: d.PayToken}, nil
}

func (s *Server) query(ctx context.Context, sim *Simulator, inst *Institution, data json.RawMessage) (any, error) {
	ref, err := s.orderRef(data)
	if err != nil {
		return nil, err
	}
	st, err := sim.Query(ctx, ref)
	if err != nil {
		return nil, err
	}
	r, err := sim.order(ctx, sim.db.SQL(), ref.PayOrdID)
	if err != nil {
		return nil, err
	}
	a := orderAnswer(st, r.MedOrgOrd)
	a.TraceTime, a.CallType = national.FormatTime(sim.now()), "6301"
	return a, nil
}

func (s *Server) revoke(ctx context.Context, sim *Simulator, inst *Institution, data json.RawMessage) (any, error) {
	ref, err := s.orderRef(data)
	if err != nil {
		return nil, err
	}
	return nil, sim.Revoke(ctx, ref)
}

func (s *Server) refund(ctx context.Context, sim *Simulator, inst *Institution, data json.RawMessage) (any, error) {
	var d national.RefundData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	if err := required("payOrdId", d.PayOrdID, "appRefdSn", d.AppRefdSn, "refdType", d.RefdType, "totlRefdAmt", d.TotlRefdAmt,
		"cashRefdAmt", d.CashRefdAmt, "psnAcctRefdAmt", d.PsnAcctRefdAmt, "fundRefdAmt", d.FundRefdAmt); err != nil {
		return nil, err
	}
	if (d.PayAuthNo == "") == (d.EcToken == "") {
		return nil, rejected("payAuthNo 与 ecToken 须且只能填写一个")
	}
	var amt [4]int64
	for i, f := range [][2]string{{"totlRefdAmt", d.TotlRefdAmt}, {"cashRefdAmt", d.CashRefdAmt}, {"psnAcctRefdAmt", d.PsnAcctRefdAmt},
		{"fundRefdAmt", d.FundRefdAmt}} {
		v, err := yuanField(f[0], f[1])
		if err != nil {
			return nil, err
		}
		amt[i] = v
	}
	if amt[0] != amt[1]+amt[2]+amt[3] {
		return nil, rejected("totlRefdAmt 不等于 cashRefdAmt + psnAcctRefdAmt + fundRefdAmt")
	}
	r, err := sim.Refund(ctx, medpay.RefundRequest{PayOrdID: d.PayOrdID, AppRefdSn: d.AppRefdSn, PayAuthNo: d.PayAuthNo, RefdType: d.RefdType,
		CashPay: amt[1], AcctPay: amt[2], HifpPay: amt[3], Reason: d.ExpContent})
	var lost *LostAnswer
	if errors.As(err, &lost) && !lost.Hold {
		// The refund is made but its outcome is not told: EXP, ask again with the same appRefdSn.
		return national.RefundAnswer{RefStatus: national.RefundExp, PayOrdID: d.PayOrdID, AppRefdSn: d.AppRefdSn}, nil
	}
	if err != nil {
		return nil, err
	}
	return national.RefundAnswer{RefStatus: national.RefundSucc, PayOrdID: d.PayOrdID, AppRefdSn: r.AppRefdSn, RefdID: r.RefundID,
		RefdTime: national.FormatTime(sim.now()), CashRefdAmt: national.Yuan(r.CashPay), PsnAcctRefdAmt: national.Yuan(r.AcctPay),
		FundRefdAmt: national.Yuan(r.HifpPay)}, nil
}

func (s *Server) person(ctx context.Context, sim *Simulator, inst *Institution, data json.RawMessage) (any, error) {
	var d national.PersonData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	if err := required("idNo", d.IDNo, "userName", d.UserName); err != nil {
		return nil, err
	}
	p, err := sim.Identify(ctx, medpay.Identity{Name: d.UserName, IDNo: d.IDNo, CardNo: d.CardNo, CityID: d.InsuplcAdmdvs})
	if err != nil {
		return nil, err
	}
	stas := "1"
	if p.Status != StatusActive {
		stas = "2"
	}
	return national.PersonAnswer{PsnNo: p.PsnNo, Insutype: p.Insutype, PsnType: p.PsnType, InsuStas: stas, InsuplcAdmdvs: p.CityID,
		UserName: medpay.MaskName(p.Name), IDNo: medpay.MaskIDNo(p.IDNo)}, nil
}

func (s *Server) statement(ctx context.Context, sim *Simulator, inst *Institution, data json.RawMessage) (any, error) {
	var d national.StatementData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	if err := required("stmtDate", d.StmtDate); err != nil {
		return nil, err
	}
	day, err := time.ParseInLocation(national.DateLayout, d.StmtDate, CST)
	if err != nil {
		return nil, rejected("stmtDate %q 应为 yyyy-MM-dd", d.StmtDate)
	}
	entries, err := sim.Statement(ctx, day)
	if err != nil {
		return nil, err
	}
	a := national.StatementAnswer{StmtDate: d.StmtDate, Records: []national.StatementRecord{}}
	var fund, acct, cash int64
	for _, e := range entries {
		a.Records = append(a.Records, national.StatementRecord{Kind: e.Kind, Time: national.FormatTime(e.Time), PayOrdID: e.PayOrdID,
			MedOrgOrd: e.MedOrgOrd, SetlID: e.SetlID, AppRefdSn: e.AppRefdSn, RefdID: e.RefundID, PsnNo: e.PsnNo,
			FundPay: national.Yuan(e.HifpPay), PsnAcctPay: national.Yuan(e.AcctPay), OwnPayAmt: national.Yuan(e.CashPay)})
		sign := int64(1)
		switch e.Kind {
		case medpay.StmtSettle:
			a.SetlCnt++
		case medpay.StmtRefund:
			a.RefdCnt++
			sign = -1
		case medpay.StmtRevoke:
			a.RevsCnt++
		}
		fund, acct, cash = fund+sign*e.HifpPay, acct+sign*e.AcctPay, cash+sign*e.CashPay
	}
	a.FundPaySum, a.AcctPaySum, a.CashSum = national.Yuan(fund), national.Yuan(acct), national.Yuan(cash)
	return a, nil
}

func (s *Server) authInfo(ctx context.Context, sim *Simulator, inst *Institution, data json.RawMessage) (any, error) {
	var d national.AuthData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	if err := required("authCode", d.AuthCode); err != nil {
		return nil, err
	}
	a, err := sim.Authorize(ctx, d.AuthCode)
	if err != nil {
		return nil, err
	}
	return national.AuthAnswer{PayAuthNo: a.PayAuthNo, PsnNo: a.PsnNo, UserName: a.Name, IDNo: a.IDNo, InsuplcAdmdvs: a.CityID,
		ValidUntil: national.FormatTime(a.ValidUntil)}, nil
}

// ---- the payer's authorisation page (national.md §5) ----

// knownApp reports whether appID may ask for authorisations: a registered institution, or the
// platform the simulator serves in process.
func (s *Server) knownApp(ctx context.Context, appID string) (bool, error) {
	if appID == s.sim.appID {
		return true, nil
	}
	_, err := s.sim.InstitutionByAppID(ctx, appID)
	if errors.Is(err, hsa.ErrUnknownApp) {
		return false, nil
	}
	return err == nil, err
}

type authView struct {
	AppID, RedirectURI, State, Scope string
	Cities                           []authCity
	Error                            string
	IDNo                             string
}

type authCity struct {
	Name    string
	Persons []Person
}

var authTemplate = template.Must(template.New("auth").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>医保电子凭证授权（模拟）</title>
<style>body{font-family:system-ui,sans-serif;margin:0;background:#f4f6f8;color:#222}main{max-width:420px;margin:0 auto;padding:16px}
.card{background:#fff;border-radius:12px;padding:16px;margin-bottom:12px}label{display:block;margin:12px 0 4px}
select,input,button{width:100%;box-sizing:border-box;font-size:17px;padding:10px;border-radius:8px;border:1px solid #ccc}
button{background:#1a7f4b;color:#fff;border:0;margin-top:16px}.err{color:#b00020}.muted{color:#777;font-size:13px}
.banner{background:#fff3cd;padding:8px;text-align:center;font-size:13px}</style></head>
<body><div class="banner">模拟医保局 · 测试环境</div><main>
<div class="card"><h1 style="font-size:20px">医保电子凭证授权</h1>
<p class="muted">{{if eq .Scope "bind"}}授权后，该机构可在您解绑前使用您的医保电子凭证结算。{{else}}授权后 24 小时内，该机构可使用您的医保电子凭证结算。{{end}}</p>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
<form method="post" action="auth">
<input type="hidden" name="appId" value="{{.AppID}}"><input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}"><input type="hidden" name="scope" value="{{.Scope}}">
<label for="id_no">参保人（测试人员）</label>
<select id="id_no" name="id_no" required>{{range .Cities}}<optgroup label="{{.Name}}">{{range .Persons}}
<option value="{{.IDNo}}"{{if eq .IDNo $.IDNo}} selected{{end}}>{{.Name}} · {{.Scenario}}</option>{{end}}</optgroup>{{end}}</select>
<label for="pin">支付密码</label>
<input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="off" maxlength="6" required>
<p class="muted">测试人员的密码均为 123456。</p>
<button type="submit" id="confirm">确认授权</button>
</form></div></main></body></html>`))

func (s *Server) authParams(ctx context.Context, v url.Values) (*authView, string) {
	av := &authView{AppID: v.Get("appId"), RedirectURI: v.Get("redirect_uri"), State: v.Get("state"), Scope: normScope(v.Get("scope"))}
	ok, err := s.knownApp(ctx, av.AppID)
	if err != nil {
		return nil, "系统繁忙，请稍后重试。"
	}
	if !ok {
		return nil, "未登记的机构（appId）。"
	}
	u, err := url.Parse(av.RedirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "redirect_uri 应为 http 或 https 的绝对地址。"
	}
	return av, ""
}

func (s *Server) renderAuth(w http.ResponseWriter, r *http.Request, status int, av *authView) {
	persons, err := s.sim.Persons(r.Context())
	if err != nil {
		s.log.Error("bureau auth page", "err", err)
		http.Error(w, "系统繁忙", http.StatusInternalServerError)
		return
	}
	byCity := map[string]int{}
	for _, p := range persons {
		i, ok := byCity[p.CityID]
		if !ok {
			i = len(av.Cities)
			byCity[p.CityID] = i
			av.Cities = append(av.Cities, authCity{Name: s.sim.cityName(p.CityID)})
		}
		av.Cities[i].Persons = append(av.Cities[i].Persons, p)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	// No form-action: the confirmation redirects to the institution's redirect_uri, and browsers
	// apply form-action to the whole redirect chain.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if err := authTemplate.Execute(w, av); err != nil {
		s.log.Error("bureau auth page", "err", err)
	}
}

func (s *Server) authPage(w http.ResponseWriter, r *http.Request) {
	av, msg := s.authParams(r.Context(), r.URL.Query())
	if av == nil {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	s.renderAuth(w, r, http.StatusOK, av)
}

func (s *Server) authConfirm(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "提交的内容无效", http.StatusBadRequest)
		return
	}
	av, msg := s.authParams(r.Context(), r.PostForm)
	if av == nil {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	av.IDNo = r.PostForm.Get("id_no")
	p, err := s.sim.PersonByIDNo(r.Context(), av.IDNo)
	switch {
	case errors.Is(err, medpay.ErrNotFound):
		av.Error = "请选择参保人。"
	case err != nil:
		s.log.Error("bureau auth", "err", err)
		http.Error(w, "系统繁忙", http.StatusInternalServerError)
		return
	case r.PostForm.Get("pin") != SandboxPIN:
		av.Error = "支付密码不正确。"
	}
	if av.Error != "" {
		s.renderAuth(w, r, http.StatusUnprocessableEntity, av)
		return
	}
	code, err := s.sim.As(av.AppID).IssueAuthCode(r.Context(), p.PsnNo, av.Scope)
	if err != nil {
		s.log.Error("bureau auth code", "err", err)
		http.Error(w, "系统繁忙", http.StatusInternalServerError)
		return
	}
	u, _ := url.Parse(av.RedirectURI)
	q := u.Query()
	q.Set("authCode", code)
	q.Set("state", av.State)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// ---- sandbox ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) sandboxPersons(w http.ResponseWriter, r *http.Request) {
	persons, err := s.sim.Persons(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "系统繁忙"})
		return
	}
	city, scenario := r.URL.Query().Get("city_id"), r.URL.Query().Get("scenario")
	out := []national.SandboxPerson{}
	for _, p := range persons {
		if (city != "" && p.CityID != city) || (scenario != "" && p.Scenario != scenario) {
			continue
		}
		out = append(out, national.SandboxPerson{PsnNo: p.PsnNo, Name: p.Name, IDNo: p.IDNo, CardNo: p.CardNo, CityID: p.CityID,
			Scenario: p.Scenario, PIN: p.PIN, PsnType: p.PsnType})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) sandboxPayAuth(w http.ResponseWriter, r *http.Request) {
	var req national.SandboxPayAuthRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil || req.AppID == "" || req.IDNo == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": `body must be {"appId","idNo"}`})
		return
	}
	ok, err := s.knownApp(r.Context(), req.AppID)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "系统繁忙"})
		return
	}
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "unknown appId"})
		return
	}
	a, err := s.sim.As(req.AppID).SandboxPayAuth(r.Context(), req.IDNo, req.Scope)
	if err != nil {
		status := http.StatusUnprocessableEntity
		if medpay.ErrorCode(err) == medpay.ErrSystem {
			status = http.StatusInternalServerError
		}
		writeJSON(w, status, map[string]string{"message": medpay.ErrorMessage(err)})
		return
	}
	writeJSON(w, http.StatusOK, national.SandboxPayAuthAnswer{PayAuthNo: a.PayAuthNo, PsnNo: a.PsnNo, ValidUntil: national.FormatTime(a.ValidUntil)})
}
