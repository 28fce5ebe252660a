package apiv3

import (
	"fmt"
	"strings"
)

// Authorization is the Authorization header of a merchant's request:
//
//	WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"
type Authorization struct {
	MchID     string
	NonceStr  string
	Signature string
	Timestamp string
	SerialNo  string // the merchant key's serial number, as registered with the channel
}

// String is the header value, fields in the order of WeChat Pay's documents.
func (a Authorization) String() string {
	return fmt.Sprintf(`%s mchid="%s",nonce_str="%s",signature="%s",timestamp="%s",serial_no="%s"`,
		Schema, a.MchID, a.NonceStr, a.Signature, a.Timestamp, a.SerialNo)
}

// maxAuthorization bounds the header (a 2048-bit signature is 344 base64 characters).
const maxAuthorization = 2048

// ParseAuthorization reads an Authorization header. Every field is required exactly once, in any
// order, as key="value" with no quote inside the value; unknown keys are refused, so that what
// was verified is all there is.
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	if len(h) > maxAuthorization {
		return a, fmt.Errorf("%w: Authorization header of %d bytes", ErrSignature, len(h))
	}
	rest, ok := strings.CutPrefix(h, Schema+" ")
	if !ok {
		return a, fmt.Errorf("%w: Authorization scheme is not %s", ErrSignature, Schema)
	}
	seen := map[string]bool{}
	for rest != "" {
		var key, val string
		var ok bool
		key, rest, ok = strings.Cut(rest, "=")
		key = strings.TrimSpace(key)
		if !ok || !strings.HasPrefix(rest, `"`) {
			return a, fmt.Errorf("%w: Authorization field %q is not key=\"value\"", ErrSignature, key)
		}
		val, rest, ok = strings.Cut(rest[1:], `"`)
		if !ok {
			return a, fmt.Errorf("%w: Authorization field %q has no closing quote", ErrSignature, key)
		}
		if rest != "" {
			if rest, ok = strings.CutPrefix(rest, ","); !ok {
				return a, fmt.Errorf("%w: Authorization fields not separated by commas", ErrSignature)
			}
			if strings.TrimSpace(rest) == "" {
				return a, fmt.Errorf("%w: Authorization ends with a comma", ErrSignature)
			}
		}
		if seen[key] {
			return a, fmt.Errorf("%w: Authorization field %q repeated", ErrSignature, key)
		}
		seen[key] = true
		switch key {
		case "mchid":
			a.MchID = val
		case "nonce_str":
			a.NonceStr = val
		case "signature":
			a.Signature = val
		case "timestamp":
			a.Timestamp = val
		case "serial_no":
			a.SerialNo = val
		default:
			return a, fmt.Errorf("%w: unknown Authorization field %q", ErrSignature, key)
		}
	}
	for _, f := range [...]struct{ name, val string }{
		{"mchid", a.MchID}, {"nonce_str", a.NonceStr}, {"signature", a.Signature},
		{"timestamp", a.Timestamp}, {"serial_no", a.SerialNo},
	} {
		if f.val == "" {
			return a, fmt.Errorf("%w: Authorization field %s missing or empty", ErrSignature, f.name)
		}
	}
	return a, nil
}
