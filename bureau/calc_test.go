package bureau

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// workedContent is the bill of docs/api/bureau.md (request_content).
const workedContent = `{
  "med_type": "11",
  "dept_name": "内科",
  "acct_used": true,
  "items": [
    {"code": "250101001", "name": "血常规", "class": "A", "price": 2500, "qty": 1},
    {"code": "86900011", "name": "阿莫西林胶囊", "class": "B", "price": 1850, "qty": 2, "self_ratio_pct": 10},
    {"code": "X0001", "name": "口罩", "class": "C", "price": 300, "qty": 1}
  ]
}`

func mustParse(t testing.TB, content string) *Bill {
	t.Helper()
	b, err := ParseBill(content, "DiagPay", 0)
	if err != nil {
		t.Fatalf("ParseBill: %v", err)
	}
	return b
}

func shenzhenRule(t testing.TB, psnType string, level int) Rule {
	t.Helper()
	p, ok := PolicyFor("440300", time.Date(2025, 6, 1, 0, 0, 0, 0, CST))
	if !ok {
		t.Fatal("no 深圳 policy")
	}
	return p.Rule(psnType, level)
}

// amounts is the part of a split a table compares.
type amounts struct {
	Medfee, Fulamt, Preself, Inscp, Dedc, Hifp, Acct, Cash int64
}

func amountsOf(s *Split) amounts {
	return amounts{s.MedfeeSumamt, s.FulamtOwnpayAmt, s.PreselfpayAmt, s.InscpScpAmt, s.ActPayDedc, s.HifpPay, s.AcctPay, s.PsnCashPay}
}

func TestCalculateWorkedExample(t *testing.T) {
	t.Parallel()
	// 深圳 440300, employee, level-3 hospital (55 %): medfee 6500, class C 300, class B 3700 × 10 %
	// = 370, inside policy 5830, no deductible, pool 5830 × 55 % = 3206.5 → 3207 (half up).
	r := shenzhenRule(t, PsnEmployee, 3)
	if r.RatioPct != 55 || r.BSelfRatioPct != 10 || r.DeductibleFen != 0 || r.AnnualLimitFen != 10000_00 {
		t.Fatalf("深圳 employee level 3 rule = %+v", r)
	}
	s, err := Calculate(mustParse(t, workedContent), r, EntitlementFor(r, 0, 0, 2000_00))
	if err != nil {
		t.Fatal(err)
	}
	want := amounts{Medfee: 6500, Fulamt: 300, Preself: 370, Inscp: 5830, Dedc: 0, Hifp: 3207, Acct: 3293, Cash: 0}
	if diff := cmp.Diff(want, amountsOf(s)); diff != "" {
		t.Fatalf("split (-want +got):\n%s", diff)
	}
	wantItems := []int64{0, 370, 300}
	for i, it := range s.Items {
		if it.SelfpayAmt != wantItems[i] {
			t.Errorf("item %d selfpay = %d, want %d", i, it.SelfpayAmt, wantItems[i])
		}
	}
	if s.Items[1].Class != ClassB || s.Items[1].SelfRatio != 10 || s.Items[2].SelfRatio != 100 {
		t.Errorf("items = %+v", s.Items)
	}
}

func TestCalculateTable(t *testing.T) {
	t.Parallel()
	worked := mustParse(t, workedContent)
	noAcct := mustParse(t, strings.Replace(workedContent, `"acct_used": true`, `"acct_used": false`, 1))
	a := func(fen int64) *Bill {
		return &Bill{MedType: "11", AcctUsed: true, Items: []Item{{Class: ClassA, Price: fen, Qty: 1}}}
	}
	sz3 := shenzhenRule(t, PsnEmployee, 3)
	cdPol, _ := PolicyFor("510100", time.Date(2025, 6, 1, 0, 0, 0, 0, CST))
	cd1 := cdPol.Rule(PsnEmployee, 1) // 成都: deductible 200 元, 60 %, limit 2 000 元
	tests := []struct {
		name string
		bill *Bill
		rule Rule
		ent  Entitlement
		want amounts
	}{
		{"worked example, 2000 元 account", worked, sz3, Entitlement{0, 10000_00, 2000_00},
			amounts{6500, 300, 370, 5830, 0, 3207, 3293, 0}},
		{"account smaller than self part", worked, sz3, Entitlement{0, 10000_00, 1000},
			amounts{6500, 300, 370, 5830, 0, 3207, 1000, 2293}},
		{"acct_used false", noAcct, sz3, Entitlement{0, 10000_00, 2000_00},
			amounts{6500, 300, 370, 5830, 0, 3207, 0, 3293}},
		{"no account (resident)", worked, sz3, Entitlement{0, 10000_00, 0},
			amounts{6500, 300, 370, 5830, 0, 3207, 0, 3293}},
		{"pool limit reached", worked, sz3, Entitlement{0, 0, 2000_00},
			amounts{6500, 300, 370, 5830, 0, 0, 6500, 0}},
		{"pool limit partly remaining", worked, sz3, Entitlement{0, 1000, 2000_00},
			amounts{6500, 300, 370, 5830, 0, 1000, 5500, 0}},
		{"deductible untouched, bill below it", a(100_00), cd1, EntitlementFor(cd1, 0, 0, 0),
			amounts{10000, 0, 0, 10000, 10000, 0, 0, 10000}},
		{"deductible partly used", a(100_00), cd1, EntitlementFor(cd1, 150_00, 0, 2000_00),
			// 50 元 deductible left; (10000 − 5000) × 60 % = 3000
			amounts{10000, 0, 0, 10000, 5000, 3000, 7000, 0}},
		{"deductible used up", a(100_00), cd1, EntitlementFor(cd1, 200_00, 0, 0),
			amounts{10000, 0, 0, 10000, 0, 6000, 0, 4000}},
		{"deductible used beyond (preset lowered)", a(100_00), cd1, EntitlementFor(cd1, 300_00, 0, 0),
			amounts{10000, 0, 0, 10000, 0, 6000, 0, 4000}},
		{"pool partly remaining after deductible", a(1000_00), cd1, EntitlementFor(cd1, 0, 1990_00, 0),
			// (100000 − 20000) × 60 % = 48000, capped at the 1000 left
			amounts{100000, 0, 0, 100000, 20000, 1000, 0, 99000}},
		{"ratio rounds half up", a(1), Rule{RatioPct: 50}, Entitlement{0, 100, 0},
			amounts{1, 0, 0, 1, 0, 1, 0, 0}},
		{"ratio rounds below half down", a(1), Rule{RatioPct: 49}, Entitlement{0, 100, 0},
			amounts{1, 0, 0, 1, 0, 0, 0, 1}},
		// 乙类 rounding is per item: two items of 5 fen at 10 % are 0.5 + 0.5 → 1 + 1 = 2 (on the sum
		// it would be 1).
		{"B rounded per item", &Bill{MedType: "11", AcctUsed: true, Items: []Item{
			{Class: ClassB, Price: 5, Qty: 1}, {Class: ClassB, Price: 5, Qty: 1}}}, Rule{RatioPct: 0, BSelfRatioPct: 10}, Entitlement{},
			amounts{10, 0, 2, 8, 0, 0, 0, 10}},
		{"B item ratio overrides default", &Bill{MedType: "11", AcctUsed: true, Items: []Item{
			{Class: ClassB, Price: 1000, Qty: 3, SelfRatioPct: 30, HasSelfRatio: true}}}, Rule{RatioPct: 100, BSelfRatioPct: 10}, Entitlement{0, 1 << 40, 0},
			amounts{3000, 0, 900, 2100, 0, 2100, 0, 900}},
		{"B item ratio 0 explicit", &Bill{MedType: "11", AcctUsed: true, Items: []Item{
			{Class: ClassB, Price: 1000, Qty: 1, SelfRatioPct: 0, HasSelfRatio: true}}}, Rule{RatioPct: 100, BSelfRatioPct: 10}, Entitlement{0, 1 << 40, 0},
			amounts{1000, 0, 0, 1000, 0, 1000, 0, 0}},
		{"all class C", &Bill{MedType: "11", AcctUsed: true, Items: []Item{{Class: ClassC, Price: 700, Qty: 2}}}, sz3, Entitlement{0, 1 << 40, 500},
			amounts{1400, 1400, 0, 0, 0, 0, 500, 900}},
		{"zero-price item among others", &Bill{MedType: "11", AcctUsed: true, Items: []Item{{Class: ClassA, Price: 0, Qty: 1}, {Class: ClassA, Price: 100, Qty: 1}}},
			Rule{RatioPct: 70}, Entitlement{0, 1 << 40, 0}, amounts{100, 0, 0, 100, 0, 70, 0, 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Calculate(tt.bill, tt.rule, tt.ent)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, amountsOf(s)); diff != "" {
				t.Fatalf("split (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCalculateRefuses(t *testing.T) {
	t.Parallel()
	r := Rule{RatioPct: 70, BSelfRatioPct: 10}
	tests := []struct {
		name        string
		bill        *Bill
		rule        Rule
		ent         Entitlement
		wantBillErr bool // a *BillError is expected
	}{
		{"zero total", &Bill{MedType: "11", Items: []Item{{Class: ClassA, Price: 0, Qty: 1}}}, r, Entitlement{}, true},
		{"no items", &Bill{MedType: "11"}, r, Entitlement{}, true},
		{"negative price", &Bill{MedType: "11", Items: []Item{{Class: ClassA, Price: -1, Qty: 1}}}, r, Entitlement{}, true},
		{"zero qty", &Bill{MedType: "11", Items: []Item{{Class: ClassA, Price: 1, Qty: 0}}}, r, Entitlement{}, true},
		{"unknown class", &Bill{MedType: "11", Items: []Item{{Class: "D", Price: 1, Qty: 1}}}, r, Entitlement{}, true},
		{"unknown med_type", &Bill{MedType: "99", Items: []Item{{Class: ClassA, Price: 1, Qty: 1}}}, r, Entitlement{}, true},
		{"self ratio over 100", &Bill{MedType: "11", Items: []Item{{Class: ClassB, Price: 1, Qty: 1, SelfRatioPct: 101, HasSelfRatio: true}}}, r, Entitlement{}, true},
		{"total over the limit", &Bill{MedType: "11", Items: []Item{{Class: ClassA, Price: MaxItemPrice, Qty: MaxItemQty}}}, r, Entitlement{}, true},
		{"rule ratio over 100", &Bill{MedType: "11", Items: []Item{{Class: ClassA, Price: 1, Qty: 1}}}, Rule{RatioPct: 101}, Entitlement{}, false},
		{"negative entitlement", &Bill{MedType: "11", Items: []Item{{Class: ClassA, Price: 1, Qty: 1}}}, r, Entitlement{AcctBalance: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Calculate(tt.bill, tt.rule, tt.ent)
			if err == nil {
				t.Fatal("Calculate succeeded")
			}
			if got := errors.Is(err, ErrInvalidBill); got != tt.wantBillErr {
				t.Fatalf("err = %v, bill error %v, want %v", err, got, tt.wantBillErr)
			}
		})
	}
}

func TestParseBillDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, orderType string
		fee                      int64
		want                     *Bill
	}{
		{"absent, RegPay", "", "RegPay", 1200, &Bill{MedType: "12", AcctUsed: true, Default: true,
			Items: []Item{{Code: "DEFAULT", Name: "医疗费用", Class: ClassA, Price: 1200, Qty: 1}}}},
		{"blank, DiagPay", "  \n", "DiagPay", 500, &Bill{MedType: "11", AcctUsed: true, Default: true,
			Items: []Item{{Code: "DEFAULT", Name: "医疗费用", Class: ClassA, Price: 500, Qty: 1}}}},
		{"national form", `{"payAuthNo":"AUTH123","payOrdId":"ORD456","setlLatlnt":"0,0"}`, "DiagPay", 800,
			&Bill{MedType: "11", AcctUsed: true, Default: true, Items: []Item{{Code: "DEFAULT", Name: "医疗费用", Class: ClassA, Price: 800, Qty: 1}}}},
		{"national form, payOrdId only", `{"payOrdId":"ORD456"}`, "RegPay", 800,
			&Bill{MedType: "12", AcctUsed: true, Default: true, Items: []Item{{Code: "DEFAULT", Name: "医疗费用", Class: ClassA, Price: 800, Qty: 1}}}},
		{"items, RegPay default med_type", `{"items":[{"class":"A","price":100,"qty":1}]}`, "RegPay", 0,
			&Bill{MedType: "12", AcctUsed: true, Items: []Item{{Class: ClassA, Price: 100, Qty: 1}}}},
		{"med_type as number, acct_used false", `{"med_type":14,"acct_used":false,"items":[{"class":"B","price":100,"qty":2,"self_ratio_pct":5,"code":"c1","name":"n1"}]}`, "DiagPay", 0,
			&Bill{MedType: "14", AcctUsed: false, Items: []Item{{Code: "c1", Name: "n1", Class: ClassB, Price: 100, Qty: 2, SelfRatioPct: 5, HasSelfRatio: true}}}},
		{"nulls mean absent", `{"med_type":null,"acct_used":null,"items":[{"class":"B","price":100,"qty":1,"self_ratio_pct":null}]}`, "DiagPay", 0,
			&Bill{MedType: "11", AcctUsed: true, Items: []Item{{Class: ClassB, Price: 100, Qty: 1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseBill(tt.content, tt.orderType, tt.fee)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("bill (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBillErrors(t *testing.T) {
	t.Parallel()
	ok := `{"class":"A","price":100,"qty":1}`
	items := func(its ...string) string { return `{"items":[` + strings.Join(its, ",") + `]}` }
	tests := []struct {
		name, content string
		fee           int64
		item          int
		field         string
	}{
		{"malformed JSON", `{"items":[`, 0, -1, ""},
		{"not an object", `[1,2]`, 0, -1, ""},
		{"trailing garbage", `{"items":[]} x`, 0, -1, ""},
		{"items missing", `{"med_type":"11"}`, 0, -1, "items"},
		{"items not an array", `{"items":"x"}`, 0, -1, "items"},
		{"items empty", `{"items":[]}`, 0, -1, "items"},
		{"unknown med_type", `{"med_type":"99","items":[` + ok + `]}`, 0, -1, "med_type"},
		{"med_type wrong type", `{"med_type":true,"items":[` + ok + `]}`, 0, -1, "med_type"},
		{"acct_used wrong type", `{"acct_used":"yes","items":[` + ok + `]}`, 0, -1, "acct_used"},
		{"dept_name wrong type", `{"dept_name":1,"items":[` + ok + `]}`, 0, -1, "dept_name"},
		{"item not an object", items(ok, `1`), 0, 1, ""},
		{"price missing", items(`{"class":"A","qty":1}`), 0, 0, "price"},
		{"price negative", items(ok, `{"class":"A","price":-1,"qty":1}`), 0, 1, "price"},
		{"price a string", items(`{"class":"A","price":"100","qty":1}`), 0, 0, "price"},
		{"price a fraction", items(`{"class":"A","price":10.5,"qty":1}`), 0, 0, "price"},
		{"price too large", items(`{"class":"A","price":100000000000,"qty":1}`), 0, 0, "price"},
		{"qty zero", items(ok, ok, `{"class":"A","price":1,"qty":0}`), 0, 2, "qty"},
		{"qty negative", items(`{"class":"A","price":1,"qty":-2}`), 0, 0, "qty"},
		{"qty missing", items(`{"class":"A","price":1}`), 0, 0, "qty"},
		{"qty a fraction", items(`{"class":"A","price":1,"qty":0.5}`), 0, 0, "qty"},
		{"class unknown", items(`{"class":"D","price":1,"qty":1}`), 0, 0, "class"},
		{"class lower case", items(`{"class":"a","price":1,"qty":1}`), 0, 0, "class"},
		{"class missing", items(`{"price":1,"qty":1}`), 0, 0, "class"},
		{"class not a string", items(`{"class":1,"price":1,"qty":1}`), 0, 0, "class"},
		{"code not a string", items(`{"code":{},"class":"A","price":1,"qty":1}`), 0, 0, "code"},
		{"self_ratio_pct over 100", items(`{"class":"B","price":1,"qty":1,"self_ratio_pct":101}`), 0, 0, "self_ratio_pct"},
		{"self_ratio_pct negative", items(ok, `{"class":"B","price":1,"qty":1,"self_ratio_pct":-1}`), 0, 1, "self_ratio_pct"},
		{"self_ratio_pct a fraction", items(`{"class":"B","price":1,"qty":1,"self_ratio_pct":5.5}`), 0, 0, "self_ratio_pct"},
		{"zero total", items(`{"class":"A","price":0,"qty":3}`), 0, -1, "items"},
		{"default fee zero", ``, 0, -1, "items"},
		{"default fee negative", ``, -100, -1, ""},
		{"national form, fee zero", `{"payAuthNo":"x"}`, 0, -1, "items"},
		{"too many items", items(strings.Repeat(ok+",", MaxItems) + ok), 0, -1, "items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseBill(tt.content, "DiagPay", tt.fee)
			var be *BillError
			if !errors.As(err, &be) {
				t.Fatalf("err = %v, want *BillError", err)
			}
			if !errors.Is(err, ErrInvalidBill) {
				t.Fatalf("err does not wrap ErrInvalidBill")
			}
			if be.Item != tt.item || be.Field != tt.field {
				t.Fatalf("err = %q: item %d field %q, want item %d field %q", err, be.Item, be.Field, tt.item, tt.field)
			}
			if tt.item >= 0 && !strings.Contains(err.Error(), fmt.Sprintf("items[%d]", tt.item)) {
				t.Fatalf("message %q does not name the item", err)
			}
			if be.Reason == "" {
				t.Fatal("no reason")
			}
		})
	}
}

func TestParseBillTooLarge(t *testing.T) {
	t.Parallel()
	_, err := ParseBill(strings.Repeat(" ", MaxContentBytes+1), "DiagPay", 100)
	if !errors.Is(err, ErrInvalidBill) {
		t.Fatalf("err = %v", err)
	}
}

// TestCalculateProperties: for any valid bill, rule and entitlement, the legs sum to the whole,
// nothing is negative and no limit is exceeded.
func TestCalculateProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "items")
		b := &Bill{MedType: rapid.SampledFrom([]string{"11", "12", "14", "21"}).Draw(t, "med_type"), AcctUsed: rapid.Bool().Draw(t, "acct_used")}
		var total int64
		for i := 0; i < n; i++ {
			it := Item{
				Class: rapid.SampledFrom([]string{ClassA, ClassB, ClassC}).Draw(t, "class"),
				Price: rapid.Int64Range(0, 10_000_000).Draw(t, "price"),
				Qty:   rapid.Int64Range(1, 1000).Draw(t, "qty"),
			}
			if rapid.Bool().Draw(t, "has_ratio") {
				it.SelfRatioPct, it.HasSelfRatio = rapid.IntRange(0, 100).Draw(t, "self_ratio"), true
			}
			total += it.Amount()
			b.Items = append(b.Items, it)
		}
		r := Rule{RatioPct: rapid.IntRange(0, 100).Draw(t, "ratio"), BSelfRatioPct: rapid.IntRange(0, 100).Draw(t, "b_ratio")}
		e := Entitlement{
			DeductibleLeft: rapid.Int64Range(0, 1_000_000).Draw(t, "dedc_left"),
			PoolLeft:       rapid.Int64Range(0, 100_000_000).Draw(t, "pool_left"),
			AcctBalance:    rapid.Int64Range(0, 100_000_000).Draw(t, "balance"),
		}
		s, err := Calculate(b, r, e)
		if total == 0 {
			if !errors.Is(err, ErrInvalidBill) {
				t.Fatalf("zero bill: err = %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.MedfeeSumamt != total || s.MedfeeSumamt != s.HifpPay+s.AcctPay+s.PsnCashPay {
			t.Fatalf("invariant broken: %+v", amountsOf(s))
		}
		for _, v := range []int64{s.FulamtOwnpayAmt, s.PreselfpayAmt, s.InscpScpAmt, s.ActPayDedc, s.HifpPay, s.AcctPay, s.PsnCashPay} {
			if v < 0 {
				t.Fatalf("negative amount: %+v", amountsOf(s))
			}
		}
		if s.ActPayDedc > e.DeductibleLeft || s.HifpPay > e.PoolLeft || s.AcctPay > e.AcctBalance {
			t.Fatalf("entitlement exceeded: %+v with %+v", amountsOf(s), e)
		}
		if !b.AcctUsed && s.AcctPay != 0 {
			t.Fatalf("account used although acct_used is false")
		}
		var itemSelf int64
		for _, it := range s.Items {
			if it.Class != ClassA {
				itemSelf += it.SelfpayAmt
			}
		}
		if itemSelf != s.FulamtOwnpayAmt+s.PreselfpayAmt {
			t.Fatalf("items' selfpay %d != fulamt %d + preself %d", itemSelf, s.FulamtOwnpayAmt, s.PreselfpayAmt)
		}
	})
}

func FuzzParseBill(f *testing.F) {
	f.Add(workedContent, int64(0))
	f.Add(``, int64(100))
	f.Add(`{"payAuthNo":"x"}`, int64(100))
	f.Add(`{"items":[{"class":"B","price":5,"qty":1}]}`, int64(0))
	f.Add(`{"items":[{"class":"C","price":-5,"qty":1}]}`, int64(0))
	f.Fuzz(func(t *testing.T, content string, fee int64) {
		b, err := ParseBill(content, "DiagPay", fee)
		if err != nil {
			if !errors.Is(err, ErrInvalidBill) {
				t.Fatalf("error is not a bill error: %v", err)
			}
			return
		}
		r := Rule{RatioPct: 55, BSelfRatioPct: 10}
		if _, err := Calculate(b, r, Entitlement{DeductibleLeft: 100, PoolLeft: 1 << 40, AcctBalance: 1000}); err != nil {
			t.Fatalf("parsed bill does not calculate: %v", err)
		}
	})
}

func BenchmarkCalculate(b *testing.B) {
	bill := mustParse(b, workedContent)
	r := shenzhenRule(b, PsnEmployee, 3)
	e := Entitlement{PoolLeft: 10000_00, AcctBalance: 2000_00}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Calculate(bill, r, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAndCalculate(b *testing.B) {
	r := shenzhenRule(b, PsnEmployee, 3)
	e := Entitlement{PoolLeft: 10000_00, AcctBalance: 2000_00}
	b.ReportAllocs()
	for b.Loop() {
		bill, err := ParseBill(workedContent, "DiagPay", 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Calculate(bill, r, e); err != nil {
			b.Fatal(err)
		}
	}
}
