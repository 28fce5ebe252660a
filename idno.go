package medpay

import "time"

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// IDCheckDigit returns the GB 11643-1999 check character (0-9 or X) of the first 17 digits of
// an ID number. It returns 0 when id17 is not 17 digits.
func IDCheckDigit(id17 string) byte {
	if len(id17) != 17 || !isDigits(id17) {
		return 0
	}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(id17[i]-'0') * idWeights[i]
	}
	return "10X98765432"[sum%11]
}

// ValidIDNumber reports whether s is a well-formed 18-digit resident ID number: 17 digits, an
// address code not starting with 0, a real birth date from 1800 on, and the GB 11643 check
// character (X upper case; normalise with strings.ToUpper first to accept x).
func ValidIDNumber(s string) bool {
	if len(s) != 18 || !isDigits(s[:17]) || s[0] == '0' {
		return false
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil || birth.Year() < 1800 {
		return false
	}
	return s[17] == IDCheckDigit(s[:17])
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
