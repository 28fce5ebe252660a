package medpay_test

import (
	"testing"

	"github.com/medpay/medpay"
)

func TestFormatYuanGrouped(t *testing.T) {
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 99999: "999.99", 100000: "1,000.00", 123456789: "1,234,567.89",
		-100000000: "-1,000,000.00", -5: "-0.05"} {
		if got := medpay.FormatYuanGrouped(fen); got != want {
			t.Errorf("FormatYuanGrouped(%d) = %q, want %q", fen, got, want)
		}
	}
}
