package medpay

import (
	"fmt"
	"time"
)

// Amounts are int64 fen (分) everywhere: no floats near money.

// FormatYuan renders fen as yuan with two decimals, e.g. 3207 -> "32.07", -5 -> "-0.05".
func FormatYuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// CST is China Standard Time (UTC+8, no daylight saving), the zone of every time on the wire, in
// bills and in the bureau's calendar (annual accumulators, statements).
var CST = time.FixedZone("CST", 8*3600)

// FormatYuanGrouped is FormatYuan with thousands separators, for people: 123456789 ->
// "1,234,567.89".
func FormatYuanGrouped(fen int64) string {
	s := FormatYuan(fen)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	whole, frac := s[:len(s)-3], s[len(s)-3:]
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	return sign + whole + frac
}
