package bureau

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type bundle struct {
	ctx   context.Context
	db    *sqlstore.DB
	sim   *Simulator
	clock *clock
}

// forEachEngine runs fn against a fresh, seeded simulator on every configured engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, b *bundle)) {
	t.Helper()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db := sqlstoretest.Open(t, engine)
			c := &clock{t: time.Date(2026, 3, 15, 10, 30, 0, 0, CST)}
			sim, err := Open(context.Background(), db, c.now)
			if err != nil {
				t.Fatal(err)
			}
			b := &bundle{ctx: context.Background(), db: db, sim: sim, clock: c}
			if err := b.sim.Seed(b.ctx); err != nil {
				t.Fatal(err)
			}
			fn(t, b)
		})
	}
}

func person(t *testing.T, city, scenario string) Person {
	t.Helper()
	p, ok := FindPerson(city, scenario)
	if !ok {
		t.Fatalf("no %s person in %s", scenario, city)
	}
	return p
}

// billReq is a bill of person p uploaded under the order number ord.
type billReq struct {
	p       Person
	ord     string
	level   int
	content string
	fee     int64
	city    string
}

// workedReq is the worked example for p at a level-3 hospital.
func workedReq(p Person, ord string) billReq {
	return billReq{p: p, ord: ord, level: 3, content: workedContent}
}

func feeReq(p Person, ord string, fee int64) billReq {
	return billReq{p: p, ord: ord, level: 1, fee: fee}
}

// auth is a fresh payAuthNo of p for the simulator's institution.
func (b *bundle) auth(t *testing.T, p Person) string {
	t.Helper()
	a, err := b.sim.SandboxPayAuth(b.ctx, p.IDNo, medpay.ScopePay)
	if err != nil {
		t.Fatal(err)
	}
	return a.PayAuthNo
}

func (b *bundle) uploadReq(t *testing.T, r billReq) medpay.UploadRequest {
	t.Helper()
	city := r.city
	if city == "" {
		city = r.p.CityID
	}
	return medpay.UploadRequest{MedOrgOrd: r.ord, PayAuthNo: b.auth(t, r.p), PsnNo: r.p.PsnNo, CityID: city, OrgCodg: "H44030100001",
		HospLevel: r.level, OrderType: "DiagPay", RequestContent: r.content, DefaultFee: r.fee}
}

func (b *bundle) upload(t *testing.T, r billReq) *medpay.Settlement {
	t.Helper()
	s, err := b.sim.Upload(b.ctx, b.uploadReq(t, r))
	if err != nil {
		t.Fatalf("Upload %s: %v", r.ord, err)
	}
	return s
}

// settle uploads r and settles it under orgBizSer r.ord+"-S".
func (b *bundle) settle(t *testing.T, r billReq) *medpay.Settlement {
	t.Helper()
	up := b.upload(t, r)
	s, err := b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: r.ord + "-S"})
	if err != nil {
		t.Fatalf("Settle %s: %v", r.ord, err)
	}
	return s
}

func (b *bundle) balance(t *testing.T, psnNo string) int64 {
	t.Helper()
	v, err := b.sim.Balance(b.ctx, psnNo)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (b *bundle) accumulators(t *testing.T, psnNo string, year int) map[string][2]int64 {
	t.Helper()
	as, err := b.sim.Accumulators(b.ctx, psnNo, year)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][2]int64{}
	for _, a := range as {
		m[a.MedGroup] = [2]int64{a.DeductibleUsed, a.PoolPaid}
	}
	return m
}

// hi is the 6203 HI refund of a whole settlement's insured part.
func hi(st *medpay.Settlement, sn string) medpay.RefundRequest {
	return medpay.RefundRequest{PayOrdID: st.PayOrdID, AppRefdSn: sn, RefdType: medpay.RefundHI, HifpPay: st.HifpPay, AcctPay: st.AcctPay}
}

func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	if got := medpay.ErrorCode(err); got != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	if !strings.Contains(medpay.ErrorMessage(err), msgPart) {
		t.Fatalf("message %q does not contain %q", medpay.ErrorMessage(err), msgPart)
	}
}

func TestSeedIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := sqlstoretest.DSN(t, engine)
			// Two "processes": two pools on one database, seeding at the same time, twice.
			var sims []*Simulator
			for range 2 {
				db, err := sqlstore.Open(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				sim, err := Open(ctx, db, nil)
				if err != nil {
					t.Fatal(err)
				}
				sims = append(sims, sim)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for i := range 4 {
				wg.Go(func() { errs <- sims[i%2].Seed(ctx) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			p := person(t, "440300", ScenarioEmployee)
			b := &bundle{ctx: ctx, sim: sims[0]}
			b.settle(t, feeReq(p, "seed-1", 100_00))
			before, _ := sims[0].Balance(ctx, p.PsnNo)
			if err := sims[1].Seed(ctx); err != nil {
				t.Fatal(err)
			}
			if after, _ := sims[0].Balance(ctx, p.PsnNo); after != before || after == p.AcctBalance {
				t.Fatalf("balance %d after re-seed, %d before (initial %d)", after, before, p.AcctBalance)
			}
			got, err := sims[1].Persons(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := SandboxPersons()
			sort.Slice(want, func(i, j int) bool { return want[i].PsnNo < want[j].PsnNo })
			for i := range want {
				if want[i].PsnNo == p.PsnNo {
					want[i].AcctBalance = before
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("persons (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddPersonsValidates(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		p.PsnNo, p.IDNo = "X1", p.IDNo[:17]+"?"
		if err := b.sim.AddPersons(b.ctx, p); err == nil {
			t.Fatal("invalid ID accepted")
		}
		// A new person whose ID number is taken is skipped, and gets no account.
		q := person(t, "440300", ScenarioEmployee)
		q.PsnNo, q.CardNo = "X2", "X2CARD"
		if err := b.sim.AddPersons(b.ctx, q); err != nil {
			t.Fatal(err)
		}
		if _, err := b.sim.Balance(b.ctx, "X2"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("Balance of a skipped person: %v", err)
		}
	})
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "510100", ScenarioRetiree)
		id := medpay.Identity{Name: p.Name, IDNo: p.IDNo, CardNo: p.CardNo, CityID: p.CityID}
		got, err := b.sim.Identify(b.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := &medpay.InsuredPerson{PsnNo: p.PsnNo, Name: p.Name, IDNo: p.IDNo, CardNo: p.CardNo, CityID: "510100",
			Insutype: "310", PsnType: PsnRetiree, Status: StatusActive}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("person (-want +got):\n%s", diff)
		}
		// Lower-case x and stray spaces are tolerated.
		if strings.HasSuffix(p.IDNo, "X") {
			id2 := id
			id2.IDNo = " " + strings.ToLower(p.IDNo)
			if _, err := b.sim.Identify(b.ctx, id2); err != nil {
				t.Fatal(err)
			}
		}
		s := person(t, "510100", ScenarioSuspended)
		got, err = b.sim.Identify(b.ctx, medpay.Identity{Name: s.Name, IDNo: s.IDNo, CardNo: s.CardNo, CityID: s.CityID})
		if err != nil || got.Status != StatusSuspended {
			t.Fatalf("suspended person: %+v, %v", got, err)
		}

		unknownID := p.IDNo[:14] + "999"
		unknownID += string(IDCheckDigit(unknownID))
		other := person(t, "440300", ScenarioEmployee)
		badCheck := p.IDNo[:17] + "0"
		if p.IDNo[17] == '0' {
			badCheck = p.IDNo[:17] + "1"
		}
		tests := []struct {
			name string
			edit func(*medpay.Identity)
			msg  string
		}{
			{"unknown person", func(i *medpay.Identity) { i.IDNo = unknownID }, "未查询到"},
			{"bad ID format", func(i *medpay.Identity) { i.IDNo = p.IDNo[:17] }, "格式"},
			{"bad check digit", func(i *medpay.Identity) { i.IDNo = badCheck }, "格式"},
			{"name", func(i *medpay.Identity) { i.Name = "王某某" }, "姓名"},
			{"card", func(i *medpay.Identity) { i.CardNo = other.CardNo }, "社保卡号"},
			{"city", func(i *medpay.Identity) { i.CityID = "440300" }, "深圳"},
		}
		for _, tt := range tests {
			id2 := id
			tt.edit(&id2)
			_, err := b.sim.Identify(b.ctx, id2)
			wantCode(t, err, medpay.ErrIdentityMismatch, tt.msg)
			if strings.Contains(err.Error(), id2.IDNo) && len(id2.IDNo) == 18 {
				t.Errorf("%s: message echoes the ID number: %v", tt.name, err)
			}
		}
	})
}

func TestUploadWorkedExample(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		s := b.upload(t, workedReq(p, "pw-1"))
		if s.SetlID != "" || s.PayOrdID == "" || s.PayToken == "" || s.OrdStas != medpay.OrdUploaded || s.MedfeeSumamt != 6500 ||
			s.HifpPay != 3207 || s.AcctPay != 3293 || s.PsnCashPay != 0 || s.Insurance() != 6500 {
			t.Fatalf("pre-settlement %+v", s)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00 {
			t.Fatalf("pre-settlement moved money: balance %d", got)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); len(acc) != 0 {
			t.Fatalf("pre-settlement moved accumulators: %v", acc)
		}
		// The same order with the same content is the same upload; with another content refused.
		again := b.upload(t, workedReq(p, "pw-1"))
		if again.PayOrdID != s.PayOrdID || again.PayToken != s.PayToken {
			t.Fatalf("re-upload %+v, first %+v", again, s)
		}
		_, err := b.sim.Upload(b.ctx, b.uploadReq(t, feeReq(p, "pw-1", 100)))
		wantCode(t, err, medpay.ErrBureauRejected, "内容不同")
		// Another institution has its own order numbers.
		other := b.sim.As("another0institution01")
		a, err := other.SandboxPayAuth(b.ctx, p.IDNo, medpay.ScopePay)
		if err != nil {
			t.Fatal(err)
		}
		req := b.uploadReq(t, feeReq(p, "pw-1", 100))
		if _, err := other.Upload(b.ctx, req); medpay.ErrorCode(err) != medpay.ErrBureauRejected {
			t.Fatalf("upload with another institution's payAuthNo: %v", err)
		}
		req.PayAuthNo = a.PayAuthNo
		o2, err := other.Upload(b.ctx, req)
		if err != nil || o2.PayOrdID == s.PayOrdID {
			t.Fatalf("other institution: %+v, %v", o2, err)
		}
		if _, err := other.Query(b.ctx, medpay.OrderRef{PayOrdID: s.PayOrdID}); medpay.ErrorCode(err) != medpay.ErrBureauRejected {
			t.Fatalf("query of another institution's order: %v", err)
		}
		// Settle is what Upload said.
		st, err := b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: s.PayOrdID, PayToken: s.PayToken, OrgBizSer: "pw-1-S"})
		if err != nil || st.HifpPay != s.HifpPay || st.AcctPay != s.AcctPay || st.PsnCashPay != s.PsnCashPay || st.SetlID == "" ||
			st.OrdStas != medpay.OrdSettled {
			t.Fatalf("settlement %+v (%v) differs from pre-settlement %+v", st, err, s)
		}
	})
}

func TestResponseContent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		st := b.settle(t, workedReq(p, "rc-1"))
		var m map[string]any
		if err := json.Unmarshal([]byte(st.ResponseContent), &m); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := []string{"acct_pay", "act_pay_dedc", "balc", "fulamt_ownpay_amt", "hifp_pay", "hosp_lv", "inscp_scp_amt", "insutype",
			"items", "med_type", "medfee_sumamt", "preselfpay_amt", "psn_cash_pay", "psn_no", "psn_type", "ratio_pct", "setl_id", "setl_time"}
		if diff := cmp.Diff(want, keys); diff != "" {
			t.Fatalf("keys (-want +got):\n%s", diff)
		}
		var rc ResponseContent
		if err := json.Unmarshal([]byte(st.ResponseContent), &rc); err != nil {
			t.Fatal(err)
		}
		wantRC := ResponseContent{SetlID: st.SetlID, PsnNo: p.PsnNo, Insutype: "310", PsnType: PsnEmployee, MedType: "11", HospLv: 3,
			RatioPct: 55, MedfeeSumamt: 6500, FulamtOwnpayAmt: 300, PreselfpayAmt: 370, InscpScpAmt: 5830, ActPayDedc: 0,
			HifpPay: 3207, AcctPay: 3293, PsnCashPay: 0, Balc: 2000_00 - 3293, SetlTime: "2026-03-15 10:30:00",
			Items: []ItemSplit{
				{Code: "250101001", Name: "血常规", Class: "A", Price: 2500, Qty: 1, Amount: 2500},
				{Code: "86900011", Name: "阿莫西林胶囊", Class: "B", Price: 1850, Qty: 2, Amount: 3700, SelfRatio: 10, SelfpayAmt: 370},
				{Code: "X0001", Name: "口罩", Class: "C", Price: 300, Qty: 1, Amount: 300, SelfRatio: 100, SelfpayAmt: 300},
			}}
		if diff := cmp.Diff(wantRC, rc); diff != "" {
			t.Fatalf("response_content (-want +got):\n%s", diff)
		}
		if b.balance(t, p.PsnNo) != rc.Balc {
			t.Fatal("balc is not the balance after")
		}
	})
}

func TestUploadRejects(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		susp := person(t, "440300", ScenarioSuspended)
		badBill := `{"items":[{"class":"A","price":100,"qty":1},{"class":"B","price":100,"qty":0}]}`
		tests := []struct {
			name string
			req  billReq
			msg  string
		}{
			{"suspended", workedReq(susp, "r1"), "参保状态暂停"},
			{"bad bill", billReq{p: p, ord: "r2", level: 1, content: badBill}, "items[1].qty"},
			{"zero bill", feeReq(p, "r3", 0), "费用总额为 0"},
			{"negative fee", feeReq(p, "r4", -5), "负数"},
			{"other city", billReq{p: p, ord: "r5", level: 1, fee: 100, city: "440100"}, "广州"},
			{"hospital level", billReq{p: p, ord: "r6", level: 4, fee: 100}, "医院等级"},
		}
		for _, tt := range tests {
			_, err := b.sim.Upload(b.ctx, b.uploadReq(t, tt.req))
			wantCode(t, err, medpay.ErrBureauRejected, tt.msg)
		}
		req := b.uploadReq(t, feeReq(p, "r7", 100))
		req.PayAuthNo = "PAforged"
		_, err := b.sim.Upload(b.ctx, req)
		wantCode(t, err, medpay.ErrBureauRejected, "payAuthNo")
		req = b.uploadReq(t, feeReq(p, "r8", 100))
		req.PsnNo = susp.PsnNo
		_, err = b.sim.Upload(b.ctx, req)
		wantCode(t, err, medpay.ErrBureauRejected, "payAuthNo")
		req = b.uploadReq(t, feeReq(p, "", 100))
		_, err = b.sim.Upload(b.ctx, req)
		wantCode(t, err, medpay.ErrBureauRejected, "medOrgOrd")
		// A payAuthNo of scope pay lasts 24 hours.
		req = b.uploadReq(t, feeReq(p, "r9", 100))
		b.clock.set(b.clock.now().Add(PayAuthTTL))
		_, err = b.sim.Upload(b.ctx, req)
		wantCode(t, err, medpay.ErrBureauRejected, "过期")
		if got := b.balance(t, susp.PsnNo); got != 2000_00 {
			t.Fatalf("suspended balance %d", got)
		}
	})
}

func TestSettleIdempotent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		up := b.upload(t, workedReq(p, "idem-1"))
		req := medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: "biz-1"}
		first, err := b.sim.Settle(b.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		b.clock.set(b.clock.now().Add(time.Minute))
		second, err := b.sim.Settle(b.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, second, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Fatalf("replay differs (-first +second):\n%s", diff)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00-3293 {
			t.Fatalf("balance %d, debited more than once", got)
		}
		q, err := b.sim.Query(b.ctx, medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: up.PayToken})
		if err != nil || q.SetlID != first.SetlID || q.OrdStas != medpay.OrdSettled {
			t.Fatalf("query: %+v, %v", q, err)
		}
		// A second settle under another orgBizSer is refused; so are a wrong token and no order.
		_, err = b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: "biz-2"})
		wantCode(t, err, medpay.ErrBureauRejected, "已结算")
		_, err = b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: "wrong", OrgBizSer: "biz-1"})
		wantCode(t, err, medpay.ErrBureauRejected, "payToken")
		_, err = b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: "nothing", OrgBizSer: "biz-3"})
		wantCode(t, err, medpay.ErrBureauRejected, "不存在")
		_, err = b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID})
		wantCode(t, err, medpay.ErrBureauRejected, "orgBizSer")
		wantCode(t, b.sim.Revoke(b.ctx, medpay.OrderRef{PayOrdID: up.PayOrdID}), medpay.ErrBureauRejected, "请退款")
	})
}

func TestSettleConcurrentOnce(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "510100", ScenarioEmployee)
		up := b.upload(t, feeReq(p, "conc-1", 500_00))
		req := medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: "conc-1-S"}
		others := make([]*medpay.Settlement, 4)
		for i := range others {
			others[i] = b.upload(t, feeReq(p, fmt.Sprintf("conc-other-%d", i), 10_00))
		}
		const n = 16
		results := make([]*medpay.Settlement, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i], errs[i] = b.sim.Settle(b.ctx, req) })
		}
		// Meanwhile other orders of the same person, to contend for the account.
		for i, o := range others {
			wg.Go(func() {
				if _, err := b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: o.PayOrdID, OrgBizSer: fmt.Sprintf("o-%d", i)}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if results[i].SetlID != results[0].SetlID || results[i].AcctPay != results[0].AcctPay {
				t.Fatalf("call %d: %+v, call 0: %+v", i, results[i], results[0])
			}
		}
		// 成都 employee: deductible 200 元 first, then 60 %. Whatever the order, the four 10 元 bills
		// and the 500 元 bill together use the 200 元 deductible and pay 60 % of the remaining 340 元.
		acc := b.accumulators(t, p.PsnNo, 2026)["outpatient"]
		if acc != [2]int64{200_00, 204_00} {
			t.Fatalf("accumulators %v", acc)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00-(540_00-204_00) {
			t.Fatalf("balance %d", got)
		}
	})
}

func TestAccumulatorsAcrossSettlementsAndYears(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		// 成都 employee at a level-1 hospital: deductible 200 元, 60 %, limit 2 000 元.
		p := person(t, "510100", ScenarioEmployee)
		s1 := b.settle(t, feeReq(p, "acc-1", 150_00)) // all deductible
		if s1.HifpPay != 0 || s1.AcctPay != 150_00 {
			t.Fatalf("first: %+v", s1)
		}
		s2 := b.settle(t, feeReq(p, "acc-2", 150_00)) // 50 元 deductible left, (150−50) × 60 % = 60 元
		if s2.HifpPay != 60_00 || s2.AcctPay != 90_00 {
			t.Fatalf("second: %+v", s2)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); acc["outpatient"] != [2]int64{200_00, 60_00} {
			t.Fatalf("accumulators %v", acc)
		}
		// Chronic (14) has accumulators of its own.
		chronic := billReq{p: p, ord: "acc-3", level: 1, content: `{"med_type":"14","items":[{"class":"A","price":10000,"qty":1}]}`}
		if s := b.settle(t, chronic); s.HifpPay != 0 {
			t.Fatalf("chronic bill used the outpatient deductible: %+v", s)
		}
		// Pool limit: 2 000 元 a year; 60 % of a 4 000 元 bill is 2 400 元, capped at the 1 940 元 left.
		if s4 := b.settle(t, feeReq(p, "acc-4", 4000_00)); s4.HifpPay != 1940_00 {
			t.Fatalf("limit: %+v", s4)
		}
		if s5 := b.settle(t, feeReq(p, "acc-5", 100_00)); s5.HifpPay != 0 {
			t.Fatalf("limit reached: %+v", s5)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); acc["outpatient"] != [2]int64{200_00, 2000_00} {
			t.Fatalf("accumulators %v", acc)
		}
		// A new year (CST): deductible and limit start again.
		b.clock.set(time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC)) // 2027-01-01 00:00 CST
		if s6 := b.settle(t, feeReq(p, "acc-6", 300_00)); s6.HifpPay != 60_00 {
			t.Fatalf("new year: %+v", s6)
		}
		if acc := b.accumulators(t, p.PsnNo, 2027); acc["outpatient"] != [2]int64{200_00, 60_00} {
			t.Fatalf("2027 accumulators %v", acc)
		}
		// Refunding last year's settlement in full restores last year's accumulators.
		if _, err := b.sim.Refund(b.ctx, hi(s2, "acc-2-r")); err != nil {
			t.Fatal(err)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); acc["outpatient"] != [2]int64{150_00, 1940_00} {
			t.Fatalf("2026 accumulators after refund %v", acc)
		}
	})
}

// TestRevoke: an upload revoked before it is settled refuses the late settle (6202 after 6401),
// and revoking is idempotent.
func TestRevoke(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		up := b.upload(t, workedReq(p, "rev-1"))
		ref := medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: up.PayToken}
		for range 2 {
			if err := b.sim.Revoke(b.ctx, ref); err != nil {
				t.Fatal(err)
			}
		}
		_, err := b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: "rev-1-S"})
		wantCode(t, err, medpay.ErrBureauRejected, "已撤销")
		q, err := b.sim.Query(b.ctx, ref)
		if err != nil || q.OrdStas != medpay.OrdRevoked {
			t.Fatalf("query: %+v, %v", q, err)
		}
		_, err = b.sim.Refund(b.ctx, hi(up, "rev-1-r"))
		wantCode(t, err, medpay.ErrBureauRejected, "未结算")
		wantCode(t, b.sim.Revoke(b.ctx, medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: "x"}), medpay.ErrBureauRejected, "payToken")
		if got := b.balance(t, p.PsnNo); got != 2000_00 {
			t.Fatalf("balance %d", got)
		}
	})
}

// TestSettleRevokeRace: a settle and a revoke of one order at the same time end with the order
// either revoked with nothing taken, or settled with the revoke refused.
func TestSettleRevokeRace(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		var settled int64
		for i := range 10 {
			up := b.upload(t, feeReq(p, fmt.Sprintf("race-%d", i), 100))
			var wg sync.WaitGroup
			var serr, rerr error
			wg.Go(func() {
				_, serr = b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, OrgBizSer: fmt.Sprintf("race-%d-S", i)})
			})
			wg.Go(func() { rerr = b.sim.Revoke(b.ctx, medpay.OrderRef{PayOrdID: up.PayOrdID}) })
			wg.Wait()
			state, _ := b.sim.OrderState(b.ctx, up.PayOrdID)
			switch {
			case state == medpay.OrdRevoked && rerr == nil && serr != nil:
			case state == medpay.OrdSettled && serr == nil && rerr != nil:
				settled++
			default:
				t.Fatalf("race %d: state %d, settle %v, revoke %v", i, state, serr, rerr)
			}
		}
		// 深圳 level 1: the account pays 25 % of each 1 元 bill settled.
		if got := b.balance(t, p.PsnNo); got != 2000_00-settled*25 {
			t.Fatalf("balance %d with %d settled", got, settled)
		}
	})
}

func TestRefund(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "420100", ScenarioEmployee)
		balance0 := b.balance(t, p.PsnNo)
		st := b.settle(t, workedReq(p, "ref-s1"))
		b.clock.set(b.clock.now().Add(24 * time.Hour))
		r, err := b.sim.Refund(b.ctx, hi(st, "ref-r1"))
		if err != nil {
			t.Fatal(err)
		}
		if r.AppRefdSn != "ref-r1" || r.HifpPay != st.HifpPay || r.AcctPay != st.AcctPay || r.RefundID == "" {
			t.Fatalf("refund %+v of %+v", r, st)
		}
		if got := b.balance(t, p.PsnNo); got != balance0 {
			t.Fatalf("balance %d, want %d", got, balance0)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); acc["outpatient"] != [2]int64{0, 0} {
			t.Fatalf("accumulators %v", acc)
		}
		again, err := b.sim.Refund(b.ctx, hi(st, "ref-r1"))
		if err != nil || *again != *r {
			t.Fatalf("replay: %+v, %v", again, err)
		}
		_, err = b.sim.Refund(b.ctx, hi(st, "ref-r2"))
		wantCode(t, err, medpay.ErrRefundExceeds, "已全额退款")
		if got := b.balance(t, p.PsnNo); got != balance0 {
			t.Fatalf("balance %d after a second refund", got)
		}
		// A refunded settlement is still one that was settled (no cash part: refunded in full).
		qs, err := b.sim.Query(b.ctx, medpay.OrderRef{PayOrdID: st.PayOrdID})
		if err != nil || qs.SetlID != st.SetlID || qs.OrdStas != medpay.OrdRefunded {
			t.Fatalf("query settlement: %+v, %v", qs, err)
		}
		wantCode(t, b.sim.Revoke(b.ctx, medpay.OrderRef{PayOrdID: st.PayOrdID}), medpay.ErrBureauRejected, "请退款")
		// The appRefdSn reused for other amounts or another order is a conflict.
		st2 := b.settle(t, feeReq(p, "ref-s2", 100))
		if _, err := b.sim.Refund(b.ctx, hi(st2, "ref-r1")); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("refund serial reuse: %v", err)
		}
		_, err = b.sim.Refund(b.ctx, medpay.RefundRequest{PayOrdID: "nothing", AppRefdSn: "ref-r3", RefdType: medpay.RefundHI, HifpPay: 1})
		wantCode(t, err, medpay.ErrBureauRejected, "不存在")
	})
}

// TestRefundTypes applies the component rules of 6203: ALL equals every component; CASH carries
// cash only; HI no cash; nothing above what is left.
func TestRefundTypes(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioAcctEmpty) // worked example: hifp 3207, cash 3293
		st := b.settle(t, workedReq(p, "rt-1"))
		if st.HifpPay != 3207 || st.AcctPay != 0 || st.PsnCashPay != 3293 {
			t.Fatalf("settlement %+v", st)
		}
		req := func(sn, typ string, hifp, acct, cash int64) medpay.RefundRequest {
			return medpay.RefundRequest{PayOrdID: st.PayOrdID, AppRefdSn: sn, RefdType: typ, HifpPay: hifp, AcctPay: acct, CashPay: cash}
		}
		refused := []struct {
			r    medpay.RefundRequest
			code string
			msg  string
		}{
			{req("x1", medpay.RefundAll, 3207, 0, 3000), medpay.ErrBureauRejected, "ALL"},
			{req("x2", medpay.RefundCash, 1, 0, 100), medpay.ErrBureauRejected, "CASH"},
			{req("x3", medpay.RefundHI, 100, 0, 1), medpay.ErrBureauRejected, "HI"},
			{req("x4", medpay.RefundHI, 3208, 0, 0), medpay.ErrRefundExceeds, "超过"},
			{req("x5", "PART", 1, 0, 0), medpay.ErrBureauRejected, "refdType"},
		}
		for _, tt := range refused {
			_, err := b.sim.Refund(b.ctx, tt.r)
			wantCode(t, err, tt.code, tt.msg)
		}
		if _, err := b.sim.Refund(b.ctx, req("c1", medpay.RefundCash, 0, 0, 1293)); err != nil {
			t.Fatal(err)
		}
		// ALL after a part refund no longer equals the original.
		_, err := b.sim.Refund(b.ctx, req("a1", medpay.RefundAll, 3207, 0, 3293))
		wantCode(t, err, medpay.ErrBureauRejected, "ALL")
		if _, err := b.sim.Refund(b.ctx, req("h1", medpay.RefundHI, 3207, 0, 0)); err != nil {
			t.Fatal(err)
		}
		_, err = b.sim.Refund(b.ctx, req("c2", medpay.RefundCash, 0, 0, 2001))
		wantCode(t, err, medpay.ErrRefundExceeds, "超过")
		if _, err := b.sim.Refund(b.ctx, req("c3", medpay.RefundCash, 0, 0, 2000)); err != nil {
			t.Fatal(err)
		}
		if s, _ := b.sim.OrderState(b.ctx, st.PayOrdID); s != medpay.OrdRefunded {
			t.Fatalf("state %d after refunding everything", s)
		}
		// ALL in one go on another settlement.
		st2 := b.settle(t, workedReq(p, "rt-2"))
		if _, err := b.sim.Refund(b.ctx, medpay.RefundRequest{PayOrdID: st2.PayOrdID, AppRefdSn: "all", RefdType: medpay.RefundAll,
			HifpPay: st2.HifpPay, AcctPay: st2.AcctPay, CashPay: st2.PsnCashPay}); err != nil {
			t.Fatal(err)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); acc["outpatient"] != [2]int64{0, 0} {
			t.Fatalf("accumulators %v", acc)
		}
	})
}

func TestRefundConcurrentOnce(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioRetiree)
		st := b.settle(t, workedReq(p, "rc-s"))
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range 8 {
			wg.Go(func() { _, errs[i] = b.sim.Refund(b.ctx, hi(st, fmt.Sprintf("rc-r%d", i%2))) })
		}
		wg.Wait()
		var ok, exceeds int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case medpay.ErrorCode(err) == medpay.ErrRefundExceeds:
				exceeds++
			default:
				t.Fatal(err)
			}
		}
		if ok != 4 || exceeds != 4 {
			t.Fatalf("%d refunds answered, %d exceeded; want one appRefdSn winning 4 and the other refused 4 times", ok, exceeds)
		}
		if got := b.balance(t, p.PsnNo); got != 5000_00 {
			t.Fatalf("balance %d", got)
		}
	})
}

func TestScenarioBureauTimeout(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioBureauTimeout)
		up := b.upload(t, workedReq(p, "bt-1"))
		ref := medpay.OrderRef{PayOrdID: up.PayOrdID, PayToken: up.PayToken}
		for range 2 {
			_, err := b.sim.Settle(b.ctx, medpay.SettleRequest{PayOrdID: up.PayOrdID, OrgBizSer: "bt-1-S"})
			if !errors.Is(err, medpay.ErrOutcomeUnknown) {
				t.Fatalf("settle: %v", err)
			}
		}
		if _, err := b.sim.Query(b.ctx, ref); !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("query: %v", err)
		}
		// The platform gives up and revokes: nothing is taken, and a late settle is refused
		// (unanswered, like every settle of this person).
		if err := b.sim.Revoke(b.ctx, ref); err != nil {
			t.Fatal(err)
		}
		if s, _ := b.sim.OrderState(b.ctx, up.PayOrdID); s != medpay.OrdRevoked {
			t.Fatalf("state %d", s)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00 {
			t.Fatalf("balance %d", got)
		}
	})
}

func TestScenarioSettleLost(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioSettleLost)
		up := b.upload(t, workedReq(p, "sl-1"))
		req := medpay.SettleRequest{PayOrdID: up.PayOrdID, PayToken: up.PayToken, OrgBizSer: "sl-1-S"}
		if _, err := b.sim.Settle(b.ctx, req); !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("first settle: %v", err)
		}
		q, err := b.sim.Query(b.ctx, medpay.OrderRef{PayOrdID: up.PayOrdID})
		if err != nil || q.HifpPay != 3207 || q.OrdStas != medpay.OrdSettled {
			t.Fatalf("query: %+v, %v", q, err)
		}
		// After a restart (a new simulator on the same database) the answer is no longer lost.
		s, err := New(b.db, b.clock.now).Settle(b.ctx, req)
		if err != nil || s.SetlID != q.SetlID {
			t.Fatalf("retry: %+v, %v", s, err)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00-3293 {
			t.Fatalf("balance %d", got)
		}
	})
}

func TestScenarioRefundUnknown(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440100", ScenarioRefundUnknown)
		st := b.settle(t, workedReq(p, "ru-s"))
		if _, err := b.sim.Refund(b.ctx, hi(st, "ru-r")); !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("first refund: %v", err)
		}
		r, err := New(b.db, b.clock.now).Refund(b.ctx, hi(st, "ru-r"))
		if err != nil || r.HifpPay != st.HifpPay || r.AcctPay != st.AcctPay {
			t.Fatalf("retry: %+v, %v", r, err)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00 {
			t.Fatalf("balance %d: refunded more or less than once", got)
		}
	})
}

func TestScenarioAccounts(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		tests := []struct {
			scenario   string
			acct, cash int64
		}{
			{ScenarioEmployee, 3293, 0},
			{ScenarioCashDeclined, 3293, 0}, // the bureau sees an employee
			{ScenarioAcctEmpty, 0, 3293},
			// 居民 (illustrative figures): 40 % at level 3, 5830 × 40 % = 2332; no account.
			{ScenarioResident, 0, 6500 - 2332},
		}
		for _, tt := range tests {
			p := person(t, "440300", tt.scenario)
			s := b.settle(t, workedReq(p, "acct-"+tt.scenario))
			if s.AcctPay != tt.acct || s.PsnCashPay != tt.cash {
				t.Errorf("%s: %+v", tt.scenario, s)
			}
		}
	})
}

func TestStatement(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		day1 := b.clock.now()
		s1 := b.settle(t, workedReq(p, "st-1"))
		b.clock.set(day1.Add(time.Minute))
		up2 := b.upload(t, feeReq(p, "st-2", 100_00))
		b.clock.set(day1.Add(2 * time.Minute))
		if err := b.sim.Revoke(b.ctx, medpay.OrderRef{PayOrdID: up2.PayOrdID}); err != nil {
			t.Fatal(err)
		}
		day2 := day1.Add(24 * time.Hour)
		b.clock.set(day2)
		r, err := b.sim.Refund(b.ctx, hi(s1, "st-r1"))
		if err != nil {
			t.Fatal(err)
		}
		// Another institution's movements are not in this one's statement.
		other := b.sim.As("another0institution01")
		a, _ := other.SandboxPayAuth(b.ctx, p.IDNo, medpay.ScopePay)
		if _, err := other.Upload(b.ctx, medpay.UploadRequest{MedOrgOrd: "o", PayAuthNo: a.PayAuthNo, HospLevel: 1, DefaultFee: 100}); err != nil {
			t.Fatal(err)
		}
		got1, err := b.sim.Statement(b.ctx, day1)
		if err != nil {
			t.Fatal(err)
		}
		want1 := []medpay.StatementEntry{
			{Time: day1, Kind: medpay.StmtSettle, PayOrdID: s1.PayOrdID, MedOrgOrd: "st-1", SetlID: s1.SetlID, PsnNo: p.PsnNo,
				HifpPay: s1.HifpPay, AcctPay: s1.AcctPay},
			{Time: day1.Add(2 * time.Minute), Kind: medpay.StmtRevoke, PayOrdID: up2.PayOrdID, MedOrgOrd: "st-2", PsnNo: p.PsnNo},
		}
		eqTime := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
		if diff := cmp.Diff(want1, got1, eqTime); diff != "" {
			t.Fatalf("day 1 (-want +got):\n%s", diff)
		}
		got2, err := b.sim.Statement(b.ctx, day2.UTC()) // the day is the CST day whatever the zone
		if err != nil {
			t.Fatal(err)
		}
		want2 := []medpay.StatementEntry{{Time: day2, Kind: medpay.StmtRefund, PayOrdID: s1.PayOrdID, MedOrgOrd: "st-1", SetlID: s1.SetlID,
			PsnNo: p.PsnNo, HifpPay: r.HifpPay, AcctPay: r.AcctPay, RefundID: r.RefundID, AppRefdSn: "st-r1"}}
		if diff := cmp.Diff(want2, got2, eqTime); diff != "" {
			t.Fatalf("day 2 (-want +got):\n%s", diff)
		}
		if got, _ := b.sim.Statement(b.ctx, day1.Add(-24*time.Hour)); len(got) != 0 {
			t.Fatalf("day before: %v", got)
		}
	})
}

// TestAuthorize: an authCode is single use and lives 5 minutes; its payAuthNo lives 24 hours
// (scope pay) or until unbound (scope bind), for its institution only.
func TestAuthorize(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		code, err := b.sim.IssueAuthCode(b.ctx, p.PsnNo, medpay.ScopePay)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.sim.As("another0institution01").Authorize(b.ctx, code); medpay.ErrorCode(err) != medpay.ErrBureauRejected {
			t.Fatalf("another institution's code: %v", err)
		}
		a, err := b.sim.Authorize(b.ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if a.PsnNo != p.PsnNo || a.IDNo != medpay.MaskIDNo(p.IDNo) || a.Name != medpay.MaskName(p.Name) ||
			!a.ValidUntil.Equal(b.clock.now().Add(PayAuthTTL)) || a.PayAuthNo == "" {
			t.Fatalf("authorisation %+v", a)
		}
		_, err = b.sim.Authorize(b.ctx, code)
		wantCode(t, err, medpay.ErrBureauRejected, "已使用")
		late, _ := b.sim.IssueAuthCode(b.ctx, p.PsnNo, medpay.ScopeBind)
		b.clock.set(b.clock.now().Add(AuthCodeTTL))
		_, err = b.sim.Authorize(b.ctx, late)
		wantCode(t, err, medpay.ErrBureauRejected, "过期")
		bindCode, _ := b.sim.IssueAuthCode(b.ctx, p.PsnNo, medpay.ScopeBind)
		bound, err := b.sim.Authorize(b.ctx, bindCode)
		if err != nil || !bound.ValidUntil.IsZero() {
			t.Fatalf("bind authorisation %+v, %v", bound, err)
		}
		// A year on, the bind authorisation still uploads; the pay one does not.
		b.clock.set(b.clock.now().Add(365 * 24 * time.Hour))
		req := medpay.UploadRequest{MedOrgOrd: "auth-1", PayAuthNo: bound.PayAuthNo, HospLevel: 1, DefaultFee: 100}
		if _, err := b.sim.Upload(b.ctx, req); err != nil {
			t.Fatal(err)
		}
		req.MedOrgOrd, req.PayAuthNo = "auth-2", a.PayAuthNo
		_, err = b.sim.Upload(b.ctx, req)
		wantCode(t, err, medpay.ErrBureauRejected, "过期")
	})
}
