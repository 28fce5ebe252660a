package wire

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Values of the sign_type field (docs/api/README.md, signing).
const (
	SignTypeMD5        = "MD5"
	SignTypeHMACSHA256 = "HMAC-SHA256"
)

// ErrSignType is returned for a sign_type other than absent, empty, "MD5" or "HMAC-SHA256"
// (matched exactly, case included).
var ErrSignType = errors.New("sign_type is invalid")

// CanonicalString is the string signed (docs/api/README.md, signing): every field but "sign" whose value is not
// empty ("0" is kept), sorted byte-wise by name, name=value joined with "&" (raw values),
// then "&key=" + key.
func CanonicalString(m *Message, key string) string {
	names := make([]string, 0, len(m.keys))
	n := len("&key=") + len(key)
	for _, k := range m.keys {
		if v := m.vals[k]; k != "sign" && v != "" {
			names = append(names, k)
			n += len(k) + len(v) + 2
		}
	}
	slices.Sort(names) // Go string order is byte-wise
	var sb strings.Builder
	sb.Grow(n)
	for i, k := range names {
		if i > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(m.vals[k])
	}
	sb.WriteString("&key=")
	sb.WriteString(key)
	return sb.String()
}

// RedactedCanonicalString is CanonicalString with the key shown as "***": the only form of
// the string to sign that may be logged or printed.
func RedactedCanonicalString(m *Message) string { return CanonicalString(m, "***") }

// Sign computes the upper-case hex signature of m with key, using m's sign_type: absent, empty
// or "MD5" -> MD5, "HMAC-SHA256" -> HMAC-SHA256 keyed with key, else ErrSignType.
func Sign(m *Message, key string) (string, error) {
	return signString(CanonicalString(m, key), key, m.Get("sign_type"))
}

// signString hashes an already built canonical string. It is separate so the spec's HMAC vector,
// published for a string without sign_type, can be checked directly.
func signString(s, key, signType string) (string, error) {
	switch signType {
	case "", SignTypeMD5:
		sum := md5.Sum([]byte(s))
		return strings.ToUpper(hex.EncodeToString(sum[:])), nil
	case SignTypeHMACSHA256:
		h := hmac.New(sha256.New, []byte(key))
		h.Write([]byte(s))
		return strings.ToUpper(hex.EncodeToString(h.Sum(nil))), nil
	default:
		return "", ErrSignType
	}
}

// SignInPlace sets m's "sign" field to Sign(m, key).
func SignInPlace(m *Message, key string) error {
	sig, err := Sign(m, key)
	if err != nil {
		return err
	}
	m.Set("sign", sig)
	return nil
}

// Verify reports whether m's "sign" field is the signature of m with key. Lower-case hex is
// accepted. The comparison takes constant time so the signature cannot be guessed byte by byte.
func Verify(m *Message, key string) bool {
	got := m.Get("sign")
	want, err := Sign(m, key)
	if got == "" || err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.ToUpper(got)), []byte(want)) == 1
}

// Diff names the fields in which a and b differ, sorted, for debugging signatures:
// `total_fee: "100" vs "101"`, `cash_fee: missing in second`, `attach: missing in first`.
func Diff(a, b *Message) []string {
	var out []string
	for _, k := range a.keys {
		va := a.vals[k]
		vb, ok := b.vals[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: missing in second", k))
		case va != vb:
			out = append(out, fmt.Sprintf("%s: %q vs %q", k, va, vb))
		}
	}
	for _, k := range b.keys {
		if !a.Has(k) {
			out = append(out, fmt.Sprintf("%s: missing in first", k))
		}
	}
	slices.Sort(out)
	return out
}

const nonceAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Nonce returns a fresh 32-character random string over [A-Za-z0-9] from crypto/rand
// (about 190 bits).
func Nonce() string {
	const n = 32
	// Rejection sampling: bytes >= 248 (4*62) are skipped so every letter is equally likely.
	const limit = 256 - 256%len(nonceAlphabet)
	out := make([]byte, 0, n)
	var buf [2 * n]byte
	for len(out) < n {
		rand.Read(buf[:]) // never fails (crypto/rand crashes the program instead)
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, nonceAlphabet[int(c)%len(nonceAlphabet)])
			}
		}
	}
	return string(out)
}
