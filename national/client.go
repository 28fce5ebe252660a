package national

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/fee"
	"github.com/medpay/medpay/hsa"
)

// Client is the platform's bureau across the network: every medpay.Bureau operation is one call
// of the national protocol through an hsa.Client (whose Timeout is the deadline of each call).
// Calls that are idempotent (all but auth_info) are sent once more when the first failed before
// reaching the bureau or without an answer, and not after a timeout, which already spent the
// deadline: the saga's recovery asks again later.
type Client struct {
	HSA *hsa.Client
	// OrgCodg is the platform's code at the bureau, sent where an operation names the institution.
	OrgCodg string
}

var (
	_ medpay.Bureau        = (*Client)(nil)
	_ medpay.BureauSandbox = (*Client)(nil)
)

// call runs one operation; idempotent ones are retried once after a failure that was not a
// timeout. Refusals become the domain's errors; no answer is medpay.ErrOutcomeUnknown.
func (c *Client) call(ctx context.Context, route string, idempotent bool, data, out any) error {
	err := c.HSA.Call(ctx, route, data, out)
	if err != nil && idempotent && errors.Is(err, hsa.ErrNoAnswer) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = c.HSA.Call(ctx, route, data, out)
	}
	return domainError(route, err)
}

// domainError maps a call's failure to the domain.
func domainError(route string, err error) error {
	if err == nil {
		return nil
	}
	var ref *hsa.Refusal
	switch {
	case errors.Is(err, hsa.ErrNoAnswer):
		return fmt.Errorf("bureau %s: %w (%v)", route, medpay.ErrOutcomeUnknown, err)
	case !errors.As(err, &ref):
		return fmt.Errorf("bureau %s: %w", route, err)
	}
	switch ref.Code {
	case CodeRefundExceeds:
		return medpay.Errorf(medpay.ErrRefundExceeds, "%s", ref.Message)
	case CodeIdentity:
		return medpay.Errorf(medpay.ErrIdentityMismatch, "%s", ref.Message)
	case CodeConflict:
		return fmt.Errorf("bureau %s: %s: %w", route, ref.Message, medpay.ErrConflict)
	case CodeRefundRefused:
		return medpay.Errorf(medpay.ErrBureauRefund, "%s", ref.Message)
	}
	if ref.Code >= 1000 && ref.Code < 2000 {
		// The envelope was refused (keys, clock, appId): nothing happened, and nothing will until
		// an operator fixes the configuration; not an answer about the operation.
		return fmt.Errorf("bureau %s: envelope refused: %w", route, err)
	}
	return medpay.Errorf(medpay.ErrBureauRejected, "%s", ref.Message)
}

// Identify implements medpay.Bureau (1101).
func (c *Client) Identify(ctx context.Context, id medpay.Identity) (*medpay.InsuredPerson, error) {
	var ans PersonAnswer
	err := c.call(ctx, RoutePerson, true, PersonData{IDNo: strings.ToUpper(strings.TrimSpace(id.IDNo)), UserName: strings.TrimSpace(id.Name),
		IDType: "01", CardNo: strings.TrimSpace(id.CardNo), InsuplcAdmdvs: id.CityID}, &ans)
	if err != nil {
		return nil, err
	}
	status := "active"
	if ans.InsuStas != "1" {
		status = "suspended"
	}
	return &medpay.InsuredPerson{PsnNo: ans.PsnNo, Name: ans.UserName, IDNo: ans.IDNo, CardNo: id.CardNo, CityID: ans.InsuplcAdmdvs,
		Insutype: ans.Insutype, PsnType: ans.PsnType, Status: status}, nil
}

// classLevel is chrgitmLv of an item class (docs/api/bureau.md (request_content)).
var classLevel = map[string]string{fee.ClassA: "01", fee.ClassB: "02", fee.ClassC: "03"}

// UploadDataOf writes a bill as 6201's data: the items of request_content become feedetailList.
func UploadDataOf(req medpay.UploadRequest, orgCodg string) (*UploadData, error) {
	bill, err := fee.Parse(req.RequestContent, req.OrderType, req.DefaultFee)
	if err != nil {
		return nil, medpay.Errorf(medpay.ErrBureauRejected, "费用明细有误：%v", err)
	}
	if req.OrgCodg != "" {
		orgCodg = req.OrgCodg
	}
	d := &UploadData{PayAuthNo: req.PayAuthNo, MdtrtID: req.MedOrgOrd, OrgCodg: orgCodg, PsnNo: req.PsnNo, MedOrgOrd: req.MedOrgOrd,
		InsuplcAdmdvs: req.CityID, DeptName: bill.DeptName, MedType: bill.MedType, AcctUsedFlag: "0",
		HospLv: strconv.Itoa(req.HospLevel), OrderType: req.OrderType}
	if bill.AcctUsed {
		d.AcctUsedFlag = "1"
	}
	var sum int64
	for i, it := range bill.Items {
		f := FeeDetail{FeedetlSn: strconv.Itoa(i + 1), DetItemFeeSumamt: Yuan(it.Amount()), Cnt: strconv.FormatInt(it.Qty, 10),
			Pric: Yuan(it.Price), MedListCodg: it.Code, MedListName: it.Name, ChrgitmLv: classLevel[it.Class]}
		if it.Class == fee.ClassB && it.HasSelfRatio {
			f.SelfpayProp = fmt.Sprintf("%d.%02d", it.SelfRatioPct/100, it.SelfRatioPct%100)
		}
		sum += it.Amount()
		d.Feedetails = append(d.Feedetails, f)
	}
	d.MedfeeSumamt = Yuan(sum)
	return d, nil
}

// Upload implements medpay.Bureau (6201).
func (c *Client) Upload(ctx context.Context, req medpay.UploadRequest) (*medpay.Settlement, error) {
	d, err := UploadDataOf(req, c.OrgCodg)
	if err != nil {
		return nil, err
	}
	var ans UploadAnswer
	if err := c.call(ctx, RouteUpload, true, d, &ans); err != nil {
		return nil, err
	}
	st := &medpay.Settlement{PayOrdID: ans.PayOrdID, PayToken: ans.PayToken, OrdStas: medpay.OrdUploaded, ResponseContent: ans.RespContent}
	if err := ans.Split.Apply(st); err != nil {
		return nil, fmt.Errorf("bureau %s: %w", RouteUpload, err)
	}
	if st.PayOrdID == "" || st.PayToken == "" {
		return nil, fmt.Errorf("bureau %s: answer without payOrdId or payToken", RouteUpload)
	}
	return st, nil
}

func (a *OrderAnswer) settlement() (*medpay.Settlement, error) {
	stas, err := strconv.Atoi(a.OrdStas)
	if err != nil {
		return nil, fmt.Errorf("ordStas %q", a.OrdStas)
	}
	st := &medpay.Settlement{PayOrdID: a.PayOrdID, OrdStas: stas, SetlID: a.SetlID, ResponseContent: a.RespContent}
	if a.FeeSumamt != "" {
		if err := a.Split.Apply(st); err != nil {
			return nil, err
		}
	}
	if st.SetlTime, err = ParseTime(a.SetlTime); err != nil {
		return nil, err
	}
	return st, nil
}

// Settle implements medpay.Bureau (6202).
func (c *Client) Settle(ctx context.Context, req medpay.SettleRequest) (*medpay.Settlement, error) {
	var ans OrderAnswer
	if err := c.call(ctx, RouteSettle, true, SettleData{PayAuthNo: req.PayAuthNo, PayOrdID: req.PayOrdID, PayToken: req.PayToken,
		OrgCodg: c.OrgCodg, OrgBizSer: req.OrgBizSer}, &ans); err != nil {
		return nil, err
	}
	st, err := ans.settlement()
	if err != nil {
		return nil, fmt.Errorf("bureau %s: %w", RouteSettle, err)
	}
	st.PayToken = req.PayToken
	return st, nil
}

// Query implements medpay.Bureau (6301).
func (c *Client) Query(ctx context.Context, ref medpay.OrderRef) (*medpay.Settlement, error) {
	var ans OrderAnswer
	if err := c.call(ctx, RouteQuery, true, OrderRefData{PayOrdID: ref.PayOrdID, PayToken: ref.PayToken, OrgCodg: c.OrgCodg}, &ans); err != nil {
		return nil, err
	}
	st, err := ans.settlement()
	if err != nil {
		return nil, fmt.Errorf("bureau %s: %w", RouteQuery, err)
	}
	st.PayToken = ref.PayToken
	return st, nil
}

// Revoke implements medpay.Bureau (6401).
func (c *Client) Revoke(ctx context.Context, ref medpay.OrderRef) error {
	return c.call(ctx, RouteRevoke, true, OrderRefData{PayOrdID: ref.PayOrdID, PayToken: ref.PayToken, OrgCodg: c.OrgCodg}, nil)
}

// Refund implements medpay.Bureau (6203). An answer EXP is medpay.ErrOutcomeUnknown.
func (c *Client) Refund(ctx context.Context, req medpay.RefundRequest) (*medpay.BureauRefund, error) {
	d := RefundData{PayOrdID: req.PayOrdID, AppRefdSn: req.AppRefdSn, PayAuthNo: req.PayAuthNo, AppRefdTime: FormatTime(time.Now()),
		RefdType: req.RefdType, TotlRefdAmt: Yuan(req.HifpPay + req.AcctPay + req.CashPay), CashRefdAmt: Yuan(req.CashPay),
		PsnAcctRefdAmt: Yuan(req.AcctPay), FundRefdAmt: Yuan(req.HifpPay), ExpContent: req.Reason}
	var ans RefundAnswer
	if err := c.call(ctx, RouteRefund, true, d, &ans); err != nil {
		return nil, err
	}
	switch ans.RefStatus {
	case RefundSucc:
	case RefundExp:
		return nil, fmt.Errorf("bureau %s %s: refStatus EXP: %w", RouteRefund, req.AppRefdSn, medpay.ErrOutcomeUnknown)
	default:
		return nil, medpay.Errorf(medpay.ErrBureauRefund, "医保退款失败（refStatus %s）", ans.RefStatus)
	}
	r := &medpay.BureauRefund{RefundID: ans.RefdID, AppRefdSn: ans.AppRefdSn, HifpPay: req.HifpPay, AcctPay: req.AcctPay, CashPay: req.CashPay}
	if ans.FundRefdAmt != "" {
		var err error
		if r.HifpPay, err = ParseYuan(ans.FundRefdAmt); err == nil {
			if r.AcctPay, err = ParseYuan(ans.PsnAcctRefdAmt); err == nil {
				r.CashPay, err = ParseYuan(ans.CashRefdAmt)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("bureau %s: %w", RouteRefund, err)
		}
	}
	return r, nil
}

// Statement implements medpay.Bureau (3201).
func (c *Client) Statement(ctx context.Context, day time.Time) ([]medpay.StatementEntry, error) {
	var ans StatementAnswer
	if err := c.call(ctx, RouteStatement, true, StatementData{OrgCodg: c.OrgCodg, StmtDate: day.In(medpay.CST).Format(DateLayout)}, &ans); err != nil {
		return nil, err
	}
	out := make([]medpay.StatementEntry, 0, len(ans.Records))
	for _, r := range ans.Records {
		e := medpay.StatementEntry{Kind: r.Kind, PayOrdID: r.PayOrdID, MedOrgOrd: r.MedOrgOrd, SetlID: r.SetlID, AppRefdSn: r.AppRefdSn,
			RefundID: r.RefdID, PsnNo: r.PsnNo}
		var err error
		if e.Time, err = ParseTime(r.Time); err == nil {
			if e.HifpPay, err = ParseYuan(r.FundPay); err == nil {
				if e.AcctPay, err = ParseYuan(r.PsnAcctPay); err == nil {
					e.CashPay, err = ParseYuan(r.OwnPayAmt)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("bureau %s: record %s: %w", RouteStatement, r.PayOrdID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Authorize implements medpay.Bureau (auth_info). Not retried: an authCode is single use.
func (c *Client) Authorize(ctx context.Context, authCode string) (*medpay.PayAuth, error) {
	var ans AuthAnswer
	if err := c.call(ctx, RouteAuth, false, AuthData{AuthCode: authCode}, &ans); err != nil {
		return nil, err
	}
	until, err := ParseTime(ans.ValidUntil)
	if err != nil {
		return nil, fmt.Errorf("bureau %s: %w", RouteAuth, err)
	}
	return &medpay.PayAuth{PayAuthNo: ans.PayAuthNo, PsnNo: ans.PsnNo, Name: ans.UserName, IDNo: ans.IDNo,
		CityID: ans.InsuplcAdmdvs, ValidUntil: until}, nil
}

// AuthURL implements medpay.Bureau: the bureau's authorisation page.
func (c *Client) AuthURL(redirectURI, state, scope string) string {
	q := url.Values{"appId": {c.HSA.AppID}, "redirect_uri": {redirectURI}, "state": {state}}
	if scope != "" {
		q.Set("scope", scope)
	}
	return strings.TrimSuffix(c.HSA.BaseURL, "/") + "/auth?" + q.Encode()
}

// ---- the simulated bureau's sandbox API (plain JSON, not enveloped) ----

// SandboxPerson is a test person as GET <bureau>/sandbox/persons lists it (docs/api/sandbox.md (沙箱辅助接口)).
type SandboxPerson struct {
	PsnNo    string `json:"psn_no"`
	Name     string `json:"name"`
	IDNo     string `json:"id_no"`
	CardNo   string `json:"card_no"`
	CityID   string `json:"city_id"`
	Scenario string `json:"scenario"`
	PIN      string `json:"pin"`
	PsnType  string `json:"psn_type"`
}

// SandboxPayAuthRequest is the body of POST <bureau>/sandbox/payauth.
type SandboxPayAuthRequest struct {
	AppID string `json:"appId"`
	IDNo  string `json:"idNo"`
	Scope string `json:"scope,omitempty"`
}

// SandboxPayAuthAnswer is its answer.
type SandboxPayAuthAnswer struct {
	PayAuthNo  string `json:"payAuthNo"`
	PsnNo      string `json:"psnNo"`
	ValidUntil string `json:"validUntil,omitempty"`
}

func (c *Client) sandbox(ctx context.Context, method, path string, body, out any) error {
	timeout := c.HSA.Timeout
	if timeout <= 0 {
		timeout = hsa.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.HSA.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HSA.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("bureau sandbox %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(data, &e)
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("bureau sandbox %s: %s: %w", path, e.Message, medpay.ErrNotFound)
		}
		return medpay.Errorf(medpay.ErrBureauRejected, "%s", e.Message)
	}
	return json.Unmarshal(data, out)
}

// SandboxPersons implements medpay.BureauSandbox.
func (c *Client) SandboxPersons(ctx context.Context) ([]medpay.SandboxPerson, error) {
	var ps []SandboxPerson
	if err := c.sandbox(ctx, http.MethodGet, "/sandbox/persons", nil, &ps); err != nil {
		return nil, err
	}
	out := make([]medpay.SandboxPerson, len(ps))
	for i, p := range ps {
		out[i] = medpay.SandboxPerson{PsnNo: p.PsnNo, Name: p.Name, IDNo: p.IDNo, CardNo: p.CardNo, CityID: p.CityID,
			Scenario: p.Scenario, PIN: p.PIN, PsnType: p.PsnType}
	}
	return out, nil
}

// SandboxPayAuth implements medpay.BureauSandbox.
func (c *Client) SandboxPayAuth(ctx context.Context, idNo, scope string) (*medpay.PayAuth, error) {
	var ans SandboxPayAuthAnswer
	if err := c.sandbox(ctx, http.MethodPost, "/sandbox/payauth", SandboxPayAuthRequest{AppID: c.HSA.AppID, IDNo: idNo, Scope: scope}, &ans); err != nil {
		return nil, err
	}
	until, err := ParseTime(ans.ValidUntil)
	if err != nil {
		return nil, err
	}
	return &medpay.PayAuth{PayAuthNo: ans.PayAuthNo, PsnNo: ans.PsnNo, ValidUntil: until}, nil
}
