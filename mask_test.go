package medpay_test

import (
	"testing"

	"github.com/medpay/medpay"
)

func TestMasks(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{medpay.MaskCardNo("K12345678"), "*****5678"},
		{medpay.MaskCardNo("123"), "***"},
		{medpay.MaskIDNo("44030019900101123X"), "440***********123X"},
		{medpay.MaskName("张三丰"), "张**"},
		{medpay.MaskName(""), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestFormatYuan(t *testing.T) {
	t.Parallel()
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 3207: "32.07", 100000: "1000.00", -5: "-0.05"} {
		if got := medpay.FormatYuan(fen); got != want {
			t.Errorf("FormatYuan(%d) = %q, want %q", fen, got, want)
		}
	}
}
