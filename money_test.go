package medpay_test

import (
	"math"
	"testing"

	"github.com/medpay/medpay"
)

func TestAddFen(t *testing.T) {
	for _, c := range []struct {
		in   []int64
		want int64
		ok   bool
	}{
		{nil, 0, true},
		{[]int64{1 << 62, 1 << 62}, 0, false},
		{[]int64{math.MaxInt64, 1}, 0, false},
		{[]int64{math.MinInt64, -1}, 0, false},
		{[]int64{math.MaxInt64, -1, 1}, math.MaxInt64, true},
		{[]int64{medpay.MaxFee, medpay.MaxFee, -5}, 2*medpay.MaxFee - 5, true},
	} {
		if got, ok := medpay.AddFen(c.in...); got != c.want || ok != c.ok {
			t.Errorf("AddFen(%v) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestFormatYuanExtremes(t *testing.T) {
	for fen, want := range map[int64]string{
		math.MinInt64: "-92233720368547758.08",
		math.MaxInt64: "92233720368547758.07",
		-5:            "-0.05",
		3207:          "32.07",
	} {
		if got := medpay.FormatYuan(fen); got != want {
			t.Errorf("FormatYuan(%d) = %s, want %s", fen, got, want)
		}
	}
}

// TestCheckSplitOverflow: legs whose sum wraps around int64 must not pass as below the total.
func TestCheckSplitOverflow(t *testing.T) {
	o := &medpay.Order{MedTransID: "M1", PayType: medpay.PayCashInsurance, TotalFee: 100,
		CashFee: 1 << 62, InsuranceFee: 1 << 62, HifpPay: 1 << 62}
	if err := o.CheckSplit(); err == nil {
		t.Fatal("cash_fee = insurance_fee = 2^62 passed CheckSplit")
	}
	o = &medpay.Order{MedTransID: "M2", PayType: medpay.PayCash, TotalFee: medpay.MaxFee + 1, CashFee: medpay.MaxFee + 1}
	if err := o.CheckSplit(); err == nil {
		t.Fatal("an amount above MaxFee passed CheckSplit")
	}
	o = &medpay.Order{MedTransID: "M3", PayType: medpay.PayCashInsurance, TotalFee: medpay.MaxFee,
		CashFee: medpay.MaxFee / 2, InsuranceFee: medpay.MaxFee / 2, HifpPay: medpay.MaxFee / 2}
	if err := o.CheckSplit(); err != nil {
		t.Fatal(err)
	}
}
func TestFormatYuanGrouped(t *testing.T) {
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 99999: "999.99", 100000: "1,000.00", 123456789: "1,234,567.89",
		-100000000: "-1,000,000.00", -5: "-0.05"} {
		if got := medpay.FormatYuanGrouped(fen); got != want {
			t.Errorf("FormatYuanGrouped(%d) = %q, want %q", fen, got, want)
		}
	}
}
