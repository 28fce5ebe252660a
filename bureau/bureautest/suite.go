// Package bureautest is the conformance suite of medpay.Bureau, in the style of River's driver
// tests: every implementation (the in-process simulator, the network client talking to the
// served simulator) runs the same tests through the port, so that the platform can rely on one
// behaviour whichever bureau it has.
package bureautest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
)

// Harness is one fresh bureau under test, its books seeded with the sandbox persons.
type Harness struct {
	Bureau  medpay.Bureau
	Sandbox medpay.BureauSandbox
	// Impatient is the same bureau with a short deadline per call (the served bureau holds a
	// bureau_timeout person's answer until the caller gives up); in process, Bureau itself.
	Impatient medpay.Bureau
	// AuthCode has a person confirm on the bureau's authorisation page and returns the authCode.
	AuthCode func(t *testing.T, idNo, scope string) string
	// Now is the bureau's business clock (its statement's day).
	Now func() time.Time
}

// Run runs the suite; open returns a fresh harness for each test.
func Run(t *testing.T, open func(t *testing.T) *Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *Harness)
	}{
		{"Identify", testIdentify},
		{"UploadSplitAndSameOrder", testUpload},
		{"UploadRefusals", testUploadRefusals},
		{"SettleOnce", testSettleOnce},
		{"RevokeBeforeSettle", testRevoke},
		{"RefundRules", testRefund},
		{"ScenarioSettleLost", testSettleLost},
		{"ScenarioBureauTimeout", testBureauTimeout},
		{"ScenarioRefundUnknown", testRefundUnknown},
		{"Statement", testStatement},
		{"Authorize", testAuthorize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

// workedBill is the bill of docs/api/bureau.md (request_content): 65.00 元, at a level-3 hospital in 深圳 an employee's
// split is hifp 32.07, account 32.93.
const workedBill = `{"med_type":"11","dept_name":"内科","acct_used":true,"items":[
{"code":"250101001","name":"血常规","class":"A","price":2500,"qty":1},
{"code":"86900011","name":"阿莫西林胶囊","class":"B","price":1850,"qty":2,"self_ratio_pct":10},
{"code":"X0001","name":"口罩","class":"C","price":300,"qty":1}]}`

func person(t *testing.T, scenario string) bureau.Person {
	t.Helper()
	p, ok := bureau.FindPerson("440300", scenario)
	if !ok {
		t.Fatalf("no sandbox person %s", scenario)
	}
	return p
}

func payAuth(t *testing.T, h *Harness, p bureau.Person) string {
	t.Helper()
	a, err := h.Sandbox.SandboxPayAuth(ctx, p.IDNo, medpay.ScopePay)
	if err != nil {
		t.Fatal(err)
	}
	if a.PsnNo != p.PsnNo || a.PayAuthNo == "" {
		t.Fatalf("sandbox authorisation %+v", a)
	}
	return a.PayAuthNo
}

func uploadReq(t *testing.T, h *Harness, p bureau.Person, ord, content string, fee int64) medpay.UploadRequest {
	return medpay.UploadRequest{MedOrgOrd: ord, PayAuthNo: payAuth(t, h, p), PsnNo: p.PsnNo, CityID: p.CityID, OrgCodg: "H44030100001",
		HospLevel: 3, OrderType: "DiagPay", RequestContent: content, DefaultFee: fee}
}

func upload(t *testing.T, h *Harness, p bureau.Person, ord string) *medpay.Settlement {
	t.Helper()
	st, err := h.Bureau.Upload(ctx, uploadReq(t, h, p, ord, workedBill, 0))
	if err != nil {
		t.Fatalf("upload %s: %v", ord, err)
	}
	return st
}

func settle(t *testing.T, h *Harness, p bureau.Person, ord string) *medpay.Settlement {
	t.Helper()
	up := upload(t, h, p, ord)
	st, err := h.Bureau.Settle(ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: ord + "-S"})
	if err != nil {
		t.Fatalf("settle %s: %v", ord, err)
	}
	return st
}

func wantCode(t *testing.T, err error, code, part string) {
	t.Helper()
	if medpay.ErrorCode(err) != code {
		t.Fatalf("err %v, want code %s", err, code)
	}
	if !strings.Contains(medpay.ErrorMessage(err), part) {
		t.Fatalf("message %q does not contain %q", medpay.ErrorMessage(err), part)
	}
}

func testIdentify(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioRetiree)
	got, err := h.Bureau.Identify(ctx, medpay.Identity{Name: p.Name, IDNo: p.IDNo, CardNo: p.CardNo, CityID: p.CityID})
	if err != nil {
		t.Fatal(err)
	}
	if got.PsnNo != p.PsnNo || got.Insutype != "310" || got.PsnType != bureau.PsnRetiree || got.Status != bureau.StatusActive ||
		got.CityID != p.CityID {
		t.Fatalf("person %+v", got)
	}
	s := person(t, bureau.ScenarioSuspended)
	if got, err := h.Bureau.Identify(ctx, medpay.Identity{Name: s.Name, IDNo: s.IDNo, CardNo: s.CardNo, CityID: s.CityID}); err != nil ||
		got.Status != bureau.StatusSuspended {
		t.Fatalf("suspended: %+v, %v", got, err)
	}
	_, err = h.Bureau.Identify(ctx, medpay.Identity{Name: "王某某", IDNo: p.IDNo, CardNo: p.CardNo, CityID: p.CityID})
	wantCode(t, err, medpay.ErrIdentityMismatch, "姓名")
}

func testUpload(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioEmployee)
	st := upload(t, h, p, "up-1")
	if st.PayOrdID == "" || st.PayToken == "" || st.OrdStas != medpay.OrdUploaded || st.MedfeeSumamt != 6500 || st.HifpPay != 3207 ||
		st.AcctPay != 3293 || st.PsnCashPay != 0 || !strings.Contains(st.ResponseContent, `"inscp_scp_amt":5830`) {
		t.Fatalf("upload %+v", st)
	}
	again := upload(t, h, p, "up-1")
	if again.PayOrdID != st.PayOrdID || again.PayToken != st.PayToken {
		t.Fatalf("same order, same content: %+v, first %+v", again, st)
	}
	_, err := h.Bureau.Upload(ctx, uploadReq(t, h, p, "up-1", "", 100))
	wantCode(t, err, medpay.ErrBureauRejected, "内容不同")
	q, err := h.Bureau.Query(ctx, medpay.OrderRef{PayOrdID: st.PayOrdID, PayToken: st.PayToken})
	if err != nil || q.OrdStas != medpay.OrdUploaded {
		t.Fatalf("query of an upload: %+v, %v", q, err)
	}
}

func testUploadRefusals(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioEmployee)
	req := uploadReq(t, h, p, "ur-1", "", 100)
	req.PayAuthNo = "PAforged"
	_, err := h.Bureau.Upload(ctx, req)
	wantCode(t, err, medpay.ErrBureauRejected, "payAuthNo")
	s := person(t, bureau.ScenarioSuspended)
	_, err = h.Bureau.Upload(ctx, uploadReq(t, h, s, "ur-2", "", 100))
	wantCode(t, err, medpay.ErrBureauRejected, "参保状态暂停")
	_, err = h.Bureau.Upload(ctx, uploadReq(t, h, p, "ur-3", `{"items":[{"class":"A","price":100,"qty":0}]}`, 0))
	wantCode(t, err, medpay.ErrBureauRejected, "qty")
}

func testSettleOnce(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioEmployee)
	up := upload(t, h, p, "so-1")
	req := medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, PayAuthNo: payAuth(t, h, p), OrgBizSer: "so-1-S"}
	st, err := h.Bureau.Settle(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if st.OrdStas != medpay.OrdSettled || st.SetlID == "" || st.HifpPay != 3207 || st.AcctPay != 3293 || st.SetlTime.IsZero() {
		t.Fatalf("settlement %+v", st)
	}
	again, err := h.Bureau.Settle(ctx, req)
	if err != nil || again.SetlID != st.SetlID || again.HifpPay != st.HifpPay {
		t.Fatalf("repeat with the same orgBizSer: %+v, %v", again, err)
	}
	req.OrgBizSer = "so-1-S2"
	_, err = h.Bureau.Settle(ctx, req)
	wantCode(t, err, medpay.ErrBureauRejected, "已结算")
	req.PayToken = "wrong"
	_, err = h.Bureau.Settle(ctx, req)
	wantCode(t, err, medpay.ErrBureauRejected, "payToken")
	q, err := h.Bureau.Query(ctx, medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: up.PayToken})
	if err != nil || q.OrdStas != medpay.OrdSettled || q.SetlID != st.SetlID || q.AcctPay != 3293 || q.HifpPay != 3207 {
		t.Fatalf("query: %+v, %v", q, err)
	}
	wantCode(t, h.Bureau.Revoke(ctx, medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: up.PayToken}), medpay.ErrBureauRejected, "请退款")
}

func testRevoke(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioEmployee)
	up := upload(t, h, p, "rv-1")
	ref := medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: up.PayToken}
	for range 2 {
		if err := h.Bureau.Revoke(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	_, err := h.Bureau.Settle(ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: "rv-1-S"})
	wantCode(t, err, medpay.ErrBureauRejected, "已撤销")
	if q, err := h.Bureau.Query(ctx, ref); err != nil || q.OrdStas != medpay.OrdRevoked {
		t.Fatalf("query: %+v, %v", q, err)
	}
}

func testRefund(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioAcctEmpty) // hifp 3207, cash 3293
	st := settle(t, h, p, "rf-1")
	req := func(sn, typ string, hifp, acct, cash int64) medpay.RefundRequest {
		return medpay.RefundRequest{PayOrdID: st.PayOrdID, AppRefdSn: sn, PayAuthNo: payAuth(t, h, p), RefdType: typ, HifpPay: hifp,
			AcctPay: acct, CashPay: cash}
	}
	_, err := h.Bureau.Refund(ctx, req("x1", medpay.RefundAll, 3207, 0, 1))
	wantCode(t, err, medpay.ErrBureauRejected, "ALL")
	_, err = h.Bureau.Refund(ctx, req("x2", medpay.RefundHI, 3207, 0, 1))
	wantCode(t, err, medpay.ErrBureauRejected, "HI")
	_, err = h.Bureau.Refund(ctx, req("x3", medpay.RefundCash, 1, 0, 1))
	wantCode(t, err, medpay.ErrBureauRejected, "CASH")
	r, err := h.Bureau.Refund(ctx, req("r1", medpay.RefundHI, 3207, 0, 0))
	if err != nil || r.HifpPay != 3207 || r.RefundID == "" || r.AppRefdSn != "r1" {
		t.Fatalf("refund %+v, %v", r, err)
	}
	again, err := h.Bureau.Refund(ctx, req("r1", medpay.RefundHI, 3207, 0, 0))
	if err != nil || again.RefundID != r.RefundID {
		t.Fatalf("repeat: %+v, %v", again, err)
	}
	if _, err := h.Bureau.Refund(ctx, req("r1", medpay.RefundCash, 0, 0, 100)); !errors.Is(err, medpay.ErrConflict) {
		t.Fatalf("appRefdSn reused for another refund: %v", err)
	}
	_, err = h.Bureau.Refund(ctx, req("r2", medpay.RefundHI, 1, 0, 0))
	wantCode(t, err, medpay.ErrRefundExceeds, "超过")
	if _, err := h.Bureau.Refund(ctx, req("r3", medpay.RefundCash, 0, 0, 3293)); err != nil {
		t.Fatal(err)
	}
	if q, err := h.Bureau.Query(ctx, medpay.OrderRef{PayOrdID: st.PayOrdID, PayToken: st.PayToken}); err != nil || q.OrdStas != medpay.OrdRefunded {
		t.Fatalf("query after refunding everything: %+v, %v", q, err)
	}
	up := upload(t, h, p, "rf-2")
	_, err = h.Bureau.Refund(ctx, medpay.RefundRequest{PayOrdID: up.PayOrdID, AppRefdSn: "r4", PayAuthNo: payAuth(t, h, p),
		RefdType: medpay.RefundHI, HifpPay: 1})
	wantCode(t, err, medpay.ErrBureauRejected, "未结算")
}

func testSettleLost(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioSettleLost)
	up := upload(t, h, p, "sl-1")
	// In process the first answer is lost; over the network the client's one repeat of an
	// idempotent call may already find it. Either way the settlement is there, once.
	req := medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: "sl-1-S"}
	first, err := h.Bureau.Settle(ctx, req)
	if err != nil && !errors.Is(err, medpay.ErrOutcomeUnknown) {
		t.Fatalf("first settle: %v", err)
	}
	q, err := h.Bureau.Query(ctx, medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: up.PayToken})
	if err != nil || q.OrdStas != medpay.OrdSettled || q.HifpPay != 3207 {
		t.Fatalf("query: %+v, %v", q, err)
	}
	st, err := h.Bureau.Settle(ctx, req)
	if err != nil || st.SetlID != q.SetlID || (first != nil && first.SetlID != q.SetlID) {
		t.Fatalf("repeat: %+v, %v", st, err)
	}
}

func testBureauTimeout(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioBureauTimeout)
	up := upload(t, h, p, "bt-1")
	ref := medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: up.PayToken}
	if _, err := h.Impatient.Settle(ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: "bt-1-S"}); !errors.Is(err, medpay.ErrOutcomeUnknown) {
		t.Fatalf("settle: %v", err)
	}
	if _, err := h.Impatient.Query(ctx, ref); !errors.Is(err, medpay.ErrOutcomeUnknown) {
		t.Fatalf("query: %v", err)
	}
	if err := h.Bureau.Revoke(ctx, ref); err != nil {
		t.Fatal(err)
	}
}

func testRefundUnknown(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioRefundUnknown)
	st := settle(t, h, p, "ru-1")
	req := medpay.RefundRequest{PayOrdID: st.PayOrdID, AppRefdSn: "ru-1-R", PayAuthNo: payAuth(t, h, p), RefdType: medpay.RefundHI,
		HifpPay: st.HifpPay, AcctPay: st.AcctPay}
	if _, err := h.Bureau.Refund(ctx, req); !errors.Is(err, medpay.ErrOutcomeUnknown) {
		t.Fatalf("first refund: %v", err)
	}
	r, err := h.Bureau.Refund(ctx, req)
	if err != nil || r.HifpPay != st.HifpPay || r.AcctPay != st.AcctPay {
		t.Fatalf("repeat: %+v, %v", r, err)
	}
}

func testStatement(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioEmployee)
	st := settle(t, h, p, "stm-1")
	if _, err := h.Bureau.Refund(ctx, medpay.RefundRequest{PayOrdID: st.PayOrdID, AppRefdSn: "stm-1-R", PayAuthNo: payAuth(t, h, p),
		RefdType: medpay.RefundHI, HifpPay: 100}); err != nil {
		t.Fatal(err)
	}
	up := upload(t, h, p, "stm-2")
	if err := h.Bureau.Revoke(ctx, medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: up.PayToken}); err != nil {
		t.Fatal(err)
	}
	entries, err := h.Bureau.Statement(ctx, h.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]medpay.StatementEntry{}
	for _, e := range entries {
		got[e.Kind+"/"+e.PayOrdID] = e
	}
	if e := got[medpay.StmtSettle+"/"+st.PayOrdID]; e.HifpPay != 3207 || e.AcctPay != 3293 || e.SetlID != st.SetlID || e.MedOrgOrd != "stm-1" {
		t.Fatalf("settle entry %+v in %+v", e, entries)
	}
	if e := got[medpay.StmtRefund+"/"+st.PayOrdID]; e.HifpPay != 100 || e.AcctPay != 0 || e.AppRefdSn != "stm-1-R" || e.RefundID == "" {
		t.Fatalf("refund entry %+v", e)
	}
	if e := got[medpay.StmtRevoke+"/"+up.PayOrdID]; e.Kind != medpay.StmtRevoke || e.HifpPay != 0 {
		t.Fatalf("revoke entry %+v", e)
	}
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3: %+v", len(entries), entries)
	}
}

func testAuthorize(t *testing.T, h *Harness) {
	p := person(t, bureau.ScenarioEmployee)
	code := h.AuthCode(t, p.IDNo, medpay.ScopeBind)
	a, err := h.Bureau.Authorize(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if a.PsnNo != p.PsnNo || a.PayAuthNo == "" || !a.ValidUntil.IsZero() || a.IDNo != medpay.MaskIDNo(p.IDNo) || a.CityID != p.CityID {
		t.Fatalf("authorisation %+v", a)
	}
	_, err = h.Bureau.Authorize(ctx, code)
	wantCode(t, err, medpay.ErrBureauRejected, "已使用")
	// The payAuthNo uploads for that person.
	req := uploadReq(t, h, p, "au-1", workedBill, 0)
	req.PayAuthNo = a.PayAuthNo
	if _, err := h.Bureau.Upload(ctx, req); err != nil {
		t.Fatal(err)
	}
	if u := h.Bureau.AuthURL("https://platform.example/cb", "s1", medpay.ScopeBind); !strings.Contains(u, "/auth?") ||
		!strings.Contains(u, "scope=bind") || !strings.Contains(u, "redirect_uri=https%3A%2F%2Fplatform.example%2Fcb") {
		t.Fatalf("AuthURL %s", u)
	}
}
