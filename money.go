package medpay

import (
	"fmt"
	"math"
	"time"
)

// Amounts are int64 fen (分) everywhere: no floats near money.

// MaxFee is the largest amount of an order, a leg or a refund: 10 亿元, the bureau's largest
// bill. Amounts above it are refused where they enter, so that no sum the platform makes can
// come near the int64 range; the sums are checked all the same (AddFen).
const MaxFee int64 = 100_000_000_000

// AddFen returns the sum of amounts, and false when it overflows int64.
func AddFen(amounts ...int64) (int64, bool) {
	var sum int64
	for _, a := range amounts {
		if (a > 0 && sum > math.MaxInt64-a) || (a < 0 && sum < math.MinInt64-a) {
			return 0, false
		}
		sum += a
	}
	return sum, true
}

// FeeInRange reports whether each amount is between 0 and MaxFee.
func FeeInRange(amounts ...int64) bool {
	for _, a := range amounts {
		if a < 0 || a > MaxFee {
			return false
		}
	}
	return true
}

// FormatYuan renders fen as yuan with two decimals, e.g. 3207 -> "32.07", -5 -> "-0.05".
func FormatYuan(fen int64) string {
	sign, abs := "", uint64(fen)
	if fen < 0 {
		sign, abs = "-", -uint64(fen) // two's complement: exact even for math.MinInt64
	}
	return fmt.Sprintf("%s%d.%02d", sign, abs/100, abs%100)
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
