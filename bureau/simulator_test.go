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
			b := &bundle{ctx: context.Background(), db: db, sim: New(db, c.now), clock: c}
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

// workedReq is the worked example for p at a level-3 hospital.
func workedReq(p Person, serial string) medpay.SettleRequest {
	return medpay.SettleRequest{Serial: serial, PsnNo: p.PsnNo, CityID: p.CityID, HospLevel: 3, OrderType: "DiagPay",
		OrgNo: "H44030100001", RequestContent: workedContent}
}

func feeReq(p Person, serial string, fee int64) medpay.SettleRequest {
	return medpay.SettleRequest{Serial: serial, PsnNo: p.PsnNo, CityID: p.CityID, HospLevel: 1, OrderType: "DiagPay", DefaultFee: fee}
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

func (b *bundle) settle(t *testing.T, req medpay.SettleRequest) *medpay.Settlement {
	t.Helper()
	s, err := b.sim.Settle(b.ctx, req)
	if err != nil {
		t.Fatalf("Settle %s: %v", req.Serial, err)
	}
	return s
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
				sims = append(sims, New(db, nil))
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
			if _, err := sims[0].Settle(ctx, feeReq(p, "seed-1", 100_00)); err != nil {
				t.Fatal(err)
			}
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

func TestVerifyIdentity(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "510100", ScenarioRetiree)
		id := medpay.Identity{Name: p.Name, IDNo: p.IDNo, CardNo: p.CardNo, CityID: p.CityID}
		got, err := b.sim.VerifyIdentity(b.ctx, id)
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
			if _, err := b.sim.VerifyIdentity(b.ctx, id2); err != nil {
				t.Fatal(err)
			}
		}
		s := person(t, "510100", ScenarioSuspended)
		got, err = b.sim.VerifyIdentity(b.ctx, medpay.Identity{Name: s.Name, IDNo: s.IDNo, CardNo: s.CardNo, CityID: s.CityID})
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
			_, err := b.sim.VerifyIdentity(b.ctx, id2)
			wantCode(t, err, medpay.ErrIdentityMismatch, tt.msg)
			if strings.Contains(err.Error(), id2.IDNo) && len(id2.IDNo) == 18 {
				t.Errorf("%s: message echoes the ID number: %v", tt.name, err)
			}
		}
	})
}

func TestPreSettleWorkedExample(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		s, err := b.sim.PreSettle(b.ctx, workedReq(p, ""))
		if err != nil {
			t.Fatal(err)
		}
		if s.SetlID != "" || s.MedfeeSumamt != 6500 || s.HifpPay != 3207 || s.AcctPay != 3293 || s.PsnCashPay != 0 || s.Insurance() != 6500 {
			t.Fatalf("pre-settlement %+v", s)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00 {
			t.Fatalf("pre-settlement moved money: balance %d", got)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); len(acc) != 0 {
			t.Fatalf("pre-settlement moved accumulators: %v", acc)
		}
		// PreSettle is what Settle then does.
		st := b.settle(t, workedReq(p, "pw-1"))
		if st.HifpPay != s.HifpPay || st.AcctPay != s.AcctPay || st.PsnCashPay != s.PsnCashPay || st.SetlID == "" {
			t.Fatalf("settlement %+v differs from pre-settlement %+v", st, s)
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

func TestPreSettleRejects(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		susp := person(t, "440300", ScenarioSuspended)
		badBill := `{"items":[{"class":"A","price":100,"qty":1},{"class":"B","price":100,"qty":0}]}`
		tests := []struct {
			name string
			req  medpay.SettleRequest
			msg  string
		}{
			{"suspended", workedReq(susp, ""), "参保状态暂停"},
			{"bad bill", medpay.SettleRequest{PsnNo: p.PsnNo, CityID: p.CityID, HospLevel: 1, RequestContent: badBill}, "items[1].qty"},
			{"zero bill", feeReq(p, "", 0), "费用总额为 0"},
			{"negative fee", feeReq(p, "", -5), "负数"},
			{"other city", medpay.SettleRequest{PsnNo: p.PsnNo, CityID: "440100", HospLevel: 1, DefaultFee: 100}, "广州"},
			{"hospital level", medpay.SettleRequest{PsnNo: p.PsnNo, CityID: p.CityID, HospLevel: 4, DefaultFee: 100}, "医院等级"},
			{"unknown person", medpay.SettleRequest{PsnNo: "nobody", DefaultFee: 100}, "不存在"},
		}
		for _, tt := range tests {
			_, err := b.sim.PreSettle(b.ctx, tt.req)
			wantCode(t, err, medpay.ErrBureauRejected, tt.msg)
			tt.req.Serial = "rej-" + tt.name
			_, err = b.sim.Settle(b.ctx, tt.req)
			wantCode(t, err, medpay.ErrBureauRejected, tt.msg)
		}
		if got := b.balance(t, susp.PsnNo); got != 2000_00 {
			t.Fatalf("suspended balance %d", got)
		}
		// An empty CityID means the person's city.
		if _, err := b.sim.PreSettle(b.ctx, medpay.SettleRequest{PsnNo: p.PsnNo, HospLevel: 1, DefaultFee: 100}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSettleIdempotent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		first := b.settle(t, workedReq(p, "idem-1"))
		b.clock.set(b.clock.now().Add(time.Minute))
		second := b.settle(t, workedReq(p, "idem-1"))
		if diff := cmp.Diff(first, second); diff != "" {
			t.Fatalf("replay differs (-first +second):\n%s", diff)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00-3293 {
			t.Fatalf("balance %d, debited more than once", got)
		}
		q, err := b.sim.QuerySettlement(b.ctx, "idem-1")
		if err != nil || q.SetlID != first.SetlID {
			t.Fatalf("query: %+v, %v", q, err)
		}
		// The same serial for another bill is a conflict.
		_, err = b.sim.Settle(b.ctx, feeReq(p, "idem-1", 100))
		if !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("reuse of a serial: %v", err)
		}
		other := person(t, "440300", ScenarioRetiree)
		_, err = b.sim.Settle(b.ctx, workedReq(other, "idem-1"))
		if !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("reuse of a serial for another person: %v", err)
		}
		if _, err := b.sim.QuerySettlement(b.ctx, "never"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("query of nothing: %v", err)
		}
		if _, err := b.sim.Settle(b.ctx, workedReq(p, "")); medpay.ErrorCode(err) != medpay.ErrBureauRejected {
			t.Fatalf("empty serial: %v", err)
		}
	})
}

func TestSettleConcurrentOnce(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "510100", ScenarioEmployee)
		req := feeReq(p, "conc-1", 500_00)
		const n = 16
		results := make([]*medpay.Settlement, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i], errs[i] = b.sim.Settle(b.ctx, req) })
		}
		// Meanwhile other serials of the same person, to contend for the account.
		for i := range 4 {
			wg.Go(func() {
				if _, err := b.sim.Settle(b.ctx, feeReq(p, fmt.Sprintf("conc-other-%d", i), 10_00)); err != nil {
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
		var n1 int
		if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM bureau_settlements WHERE psn_no = $1`, p.PsnNo).Scan(&n1); err != nil {
			t.Fatal(err)
		}
		if n1 != 5 {
			t.Fatalf("%d settlements, want 5", n1)
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
		chronic := medpay.SettleRequest{Serial: "acc-3", PsnNo: p.PsnNo, CityID: p.CityID, HospLevel: 1, OrderType: "DiagPay",
			RequestContent: `{"med_type":"14","items":[{"class":"A","price":10000,"qty":1}]}`}
		if s := b.settle(t, chronic); s.HifpPay != 0 {
			t.Fatalf("chronic bill used the outpatient deductible: %+v", s)
		}
		// Pool limit: 2 000 元 a year; 60 % of a 4 000 元 bill is 2 400 元, capped at the 1 940 元 left.
		s4 := b.settle(t, feeReq(p, "acc-4", 4000_00))
		if s4.HifpPay != 1940_00 {
			t.Fatalf("limit: %+v", s4)
		}
		s5 := b.settle(t, feeReq(p, "acc-5", 100_00))
		if s5.HifpPay != 0 {
			t.Fatalf("limit reached: %+v", s5)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); acc["outpatient"] != [2]int64{200_00, 2000_00} {
			t.Fatalf("accumulators %v", acc)
		}
		// A new year (CST): deductible and limit start again.
		b.clock.set(time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC)) // 2027-01-01 00:00 CST
		s6 := b.settle(t, feeReq(p, "acc-6", 300_00))
		if s6.HifpPay != 60_00 {
			t.Fatalf("new year: %+v", s6)
		}
		if acc := b.accumulators(t, p.PsnNo, 2027); acc["outpatient"] != [2]int64{200_00, 60_00} {
			t.Fatalf("2027 accumulators %v", acc)
		}
		// Refunding last year's settlement restores last year's accumulators.
		if _, err := b.sim.Refund(b.ctx, "acc-2-r", "acc-2"); err != nil {
			t.Fatal(err)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); acc["outpatient"] != [2]int64{150_00, 1940_00} {
			t.Fatalf("2026 accumulators after refund %v", acc)
		}
	})
}

func TestReverseRestoresExactly(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "510100", ScenarioRetiree)
		b.settle(t, feeReq(p, "rev-0", 100_00))
		balance0, acc0 := b.balance(t, p.PsnNo), b.accumulators(t, p.PsnNo, 2026)
		st := b.settle(t, workedReq(p, "rev-1"))
		if b.balance(t, p.PsnNo) != balance0-st.AcctPay {
			t.Fatal("not debited")
		}
		for range 2 { // idempotent
			if err := b.sim.Reverse(b.ctx, "rev-1"); err != nil {
				t.Fatal(err)
			}
		}
		if got := b.balance(t, p.PsnNo); got != balance0 {
			t.Fatalf("balance %d, want %d", got, balance0)
		}
		if diff := cmp.Diff(acc0, b.accumulators(t, p.PsnNo, 2026)); diff != "" {
			t.Fatalf("accumulators (-before +after):\n%s", diff)
		}
		if _, err := b.sim.QuerySettlement(b.ctx, "rev-1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("query of a reversed settlement: %v", err)
		}
		if state, _ := b.sim.SettlementState(b.ctx, "rev-1"); state != StateReversed {
			t.Fatalf("state %s", state)
		}
		// Settling the reversed serial again is refused.
		_, err := b.sim.Settle(b.ctx, workedReq(p, "rev-1"))
		wantCode(t, err, medpay.ErrBureauRejected, "已冲正")
		if _, err := b.sim.Refund(b.ctx, "rev-1-r", "rev-1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("refund of a reversed settlement: %v", err)
		}
	})
}

func TestReverseUnknownSerialTombstone(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		for range 2 {
			if err := b.sim.Reverse(b.ctx, "tomb-1"); err != nil {
				t.Fatal(err)
			}
		}
		if state, _ := b.sim.SettlementState(b.ctx, "tomb-1"); state != StateTombstone {
			t.Fatalf("state %q", state)
		}
		_, err := b.sim.Settle(b.ctx, workedReq(p, "tomb-1"))
		wantCode(t, err, medpay.ErrBureauRejected, "已冲正")
		if _, err := b.sim.QuerySettlement(b.ctx, "tomb-1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("query of a tombstone: %v", err)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00 {
			t.Fatalf("balance %d", got)
		}
	})
}

// TestSettleReverseRace: a settle and a reverse of one serial at the same time end either with the
// settle refused, or with the settlement reversed; never with money taken.
func TestSettleReverseRace(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioEmployee)
		for i := range 10 {
			serial := fmt.Sprintf("race-%d", i)
			var wg sync.WaitGroup
			wg.Go(func() { b.sim.Settle(b.ctx, workedReq(p, serial)) })
			wg.Go(func() {
				if err := b.sim.Reverse(b.ctx, serial); err != nil {
					t.Error(err)
				}
			})
			wg.Wait()
			if state, _ := b.sim.SettlementState(b.ctx, serial); state != StateTombstone && state != StateReversed {
				t.Fatalf("%s: state %s", serial, state)
			}
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00 {
			t.Fatalf("balance %d", got)
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
		r, err := b.sim.Refund(b.ctx, "ref-r1", "ref-s1")
		if err != nil {
			t.Fatal(err)
		}
		if r.Serial != "ref-r1" || r.HifpPay != st.HifpPay || r.AcctPay != st.AcctPay || r.RefundID == "" {
			t.Fatalf("refund %+v of %+v", r, st)
		}
		if got := b.balance(t, p.PsnNo); got != balance0 {
			t.Fatalf("balance %d, want %d", got, balance0)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); acc["outpatient"] != [2]int64{0, 0} {
			t.Fatalf("accumulators %v", acc)
		}
		again, err := b.sim.Refund(b.ctx, "ref-r1", "ref-s1")
		if err != nil || *again != *r {
			t.Fatalf("replay: %+v, %v", again, err)
		}
		q, err := b.sim.QueryRefund(b.ctx, "ref-r1")
		if err != nil || *q != *r {
			t.Fatalf("query: %+v, %v", q, err)
		}
		_, err = b.sim.Refund(b.ctx, "ref-r2", "ref-s1")
		wantCode(t, err, medpay.ErrRefundExceeds, "已全额退款")
		if got := b.balance(t, p.PsnNo); got != balance0 {
			t.Fatalf("balance %d after a second refund", got)
		}
		// A refunded settlement is still one that was settled.
		qs, err := b.sim.QuerySettlement(b.ctx, "ref-s1")
		if err != nil || qs.SetlID != st.SetlID {
			t.Fatalf("query settlement: %+v, %v", qs, err)
		}
		if state, _ := b.sim.SettlementState(b.ctx, "ref-s1"); state != StateRefunded {
			t.Fatalf("state %s", state)
		}
		wantCode(t, b.sim.Reverse(b.ctx, "ref-s1"), medpay.ErrBureauRejected, "已退款")
		// Serial reused for another settlement; unknown settlement.
		b.settle(t, feeReq(p, "ref-s2", 100))
		if _, err := b.sim.Refund(b.ctx, "ref-r1", "ref-s2"); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("refund serial reuse: %v", err)
		}
		if _, err := b.sim.Refund(b.ctx, "ref-r3", "nothing"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("refund of nothing: %v", err)
		}
		if _, err := b.sim.QueryRefund(b.ctx, "ref-r3"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("query of no refund: %v", err)
		}
	})
}

func TestRefundConcurrentOnce(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440300", ScenarioRetiree)
		b.settle(t, workedReq(p, "rc-s"))
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range 8 {
			wg.Go(func() { _, errs[i] = b.sim.Refund(b.ctx, fmt.Sprintf("rc-r%d", i%2), "rc-s") })
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
			t.Fatalf("%d refunds answered, %d exceeded; want one serial winning 4 and the other refused 4 times", ok, exceeds)
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
		if _, err := b.sim.PreSettle(b.ctx, workedReq(p, "")); err != nil {
			t.Fatalf("pre-settlement: %v", err)
		}
		for range 2 {
			if _, err := b.sim.Settle(b.ctx, workedReq(p, "bt-1")); !errors.Is(err, medpay.ErrOutcomeUnknown) {
				t.Fatalf("settle: %v", err)
			}
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00-3293 {
			t.Fatalf("the settlement was not recorded once: balance %d", got)
		}
		if _, err := b.sim.QuerySettlement(b.ctx, "bt-1"); !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("query: %v", err)
		}
		// The platform gives up and reverses: nothing is taken.
		if err := b.sim.Reverse(b.ctx, "bt-1"); err != nil {
			t.Fatal(err)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00 {
			t.Fatalf("balance %d after reversal", got)
		}
		if acc := b.accumulators(t, p.PsnNo, 2026); acc["outpatient"] != [2]int64{0, 0} {
			t.Fatalf("accumulators %v", acc)
		}
		// A settle that does not even reach the bureau (reversed first) is also unanswered.
		if err := b.sim.Reverse(b.ctx, "bt-2"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.sim.Settle(b.ctx, workedReq(p, "bt-2")); !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("settle after reversal: %v", err)
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
		if _, err := b.sim.Settle(b.ctx, workedReq(p, "sl-1")); !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("first settle: %v", err)
		}
		q, err := b.sim.QuerySettlement(b.ctx, "sl-1")
		if err != nil || q.HifpPay != 3207 {
			t.Fatalf("query: %+v, %v", q, err)
		}
		// After a restart (a new simulator on the same database) the answer is no longer lost.
		sim2 := New(b.db, b.clock.now)
		s, err := sim2.Settle(b.ctx, workedReq(p, "sl-1"))
		if err != nil || s.SetlID != q.SetlID {
			t.Fatalf("retry: %+v, %v", s, err)
		}
		if got := b.balance(t, p.PsnNo); got != 2000_00-3293 {
			t.Fatalf("balance %d", got)
		}
		// Each new serial loses its first answer again.
		if _, err := sim2.Settle(b.ctx, feeReq(p, "sl-2", 100)); !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("new serial: %v", err)
		}
	})
}

func TestScenarioRefundUnknown(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, b *bundle) {
		p := person(t, "440100", ScenarioRefundUnknown)
		st := b.settle(t, workedReq(p, "ru-s"))
		if _, err := b.sim.Refund(b.ctx, "ru-r", "ru-s"); !errors.Is(err, medpay.ErrOutcomeUnknown) {
			t.Fatalf("first refund: %v", err)
		}
		q, err := b.sim.QueryRefund(b.ctx, "ru-r")
		if err != nil || q.HifpPay != st.HifpPay || q.AcctPay != st.AcctPay {
			t.Fatalf("query: %+v, %v", q, err)
		}
		r, err := New(b.db, b.clock.now).Refund(b.ctx, "ru-r", "ru-s")
		if err != nil || *r != *q {
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
		s2 := b.settle(t, feeReq(p, "st-2", 100_00))
		b.clock.set(day1.Add(2 * time.Minute))
		if err := b.sim.Reverse(b.ctx, "st-2"); err != nil {
			t.Fatal(err)
		}
		if err := b.sim.Reverse(b.ctx, "st-tomb"); err != nil {
			t.Fatal(err)
		}
		day2 := day1.Add(24 * time.Hour)
		b.clock.set(day2)
		r, err := b.sim.Refund(b.ctx, "st-r1", "st-1")
		if err != nil {
			t.Fatal(err)
		}
		got1, err := b.sim.Statement(b.ctx, day1)
		if err != nil {
			t.Fatal(err)
		}
		want1 := []StatementEntry{
			{Time: day1, Kind: KindSettle, Serial: "st-1", SetlID: s1.SetlID, PsnNo: p.PsnNo, HifpPay: s1.HifpPay, AcctPay: s1.AcctPay},
			{Time: day1.Add(time.Minute), Kind: KindSettle, Serial: "st-2", SetlID: s2.SetlID, PsnNo: p.PsnNo, HifpPay: s2.HifpPay, AcctPay: s2.AcctPay},
			{Time: day1.Add(2 * time.Minute), Kind: KindReverse, Serial: "st-2", SetlID: s2.SetlID, PsnNo: p.PsnNo, HifpPay: s2.HifpPay, AcctPay: s2.AcctPay},
		}
		if diff := cmp.Diff(want1, got1, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Fatalf("day 1 (-want +got):\n%s", diff)
		}
		got2, err := b.sim.Statement(b.ctx, day2.UTC()) // the day is the CST day whatever the zone
		if err != nil {
			t.Fatal(err)
		}
		want2 := []StatementEntry{{Time: day2, Kind: KindRefund, Serial: "st-r1", SetlID: s1.SetlID, PsnNo: p.PsnNo,
			HifpPay: r.HifpPay, AcctPay: r.AcctPay, RefundID: r.RefundID, SettleSerial: "st-1"}}
		if diff := cmp.Diff(want2, got2, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Fatalf("day 2 (-want +got):\n%s", diff)
		}
		if got, _ := b.sim.Statement(b.ctx, day1.Add(-24*time.Hour)); len(got) != 0 {
			t.Fatalf("day before: %v", got)
		}
	})
}
