package bill

import (
	"testing"

	"github.com/medpay/medpay"
)

func TestSumRemembersOverflow(t *testing.T) {
	var s sum
	s.add(1 << 62)
	s.add(1 << 62)
	s.add(-1)
	if !s.overflow {
		t.Fatalf("2^62 + 2^62 did not overflow: %d", s.fen)
	}
	var ok sum
	for i := 0; i < 1000; i++ {
		ok.add(medpay.MaxFee)
	}
	if ok.overflow || ok.fen != 1000*medpay.MaxFee {
		t.Fatalf("1000 × MaxFee = %d, overflow %v", ok.fen, ok.overflow)
	}
}
