package medpay

import "strings"

// Personal data is masked in every output and log.

// MaskCardNo keeps the last 4 characters of a card number.
func MaskCardNo(s string) string { return maskKeepLast(s, 4) }

// MaskIDNo keeps the first 3 and the last 4 characters of an ID number.
func MaskIDNo(s string) string {
	r := []rune(s)
	if len(r) <= 7 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
}

// MaskName keeps the first character of a name.
func MaskName(s string) string {
	r := []rune(s)
	if len(r) == 0 {
		return ""
	}
	return string(r[0]) + strings.Repeat("*", len(r)-1)
}

func maskKeepLast(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return strings.Repeat("*", len(r))
	}
	return strings.Repeat("*", len(r)-n) + string(r[len(r)-n:])
}
