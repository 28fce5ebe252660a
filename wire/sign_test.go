package wire

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const (
	key1 = "192006250b4c09247ec02edce69f6a2d"
	key2 = "0123456789abcdef0123456789abcdef"
)

// msg builds a message from name, value pairs, in order.
func msg(kv ...string) *Message {
	m := NewMessage()
	for i := 0; i < len(kv); i += 2 {
		m.Set(kv[i], kv[i+1])
	}
	return m
}

// row1 and row2 are the test vectors of docs/api/README.md (signing), fields deliberately out of order.
func row1() *Message {
	return msg("nonce_str", "ibuaiVcKdpRxkhJA", "mch_id", "10000100", "device_info", "1000",
		"body", "test", "appid", "wxd930ea5d5a258f4f")
}

func row2() *Message {
	return msg("appid", "wx0000000000000001", "mch_id", "1900000001", "nonce_str", "abc123",
		"total_fee", "100", "cash_fee", "0", "insurance_fee", "100", "order_type", "RegPay",
		"pay_type", "2")
}

func TestSpecVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		m         *Message
		key       string
		canonical string // before "&key="
		md5       string
		md5Typed  string // MD5 with sign_type=MD5 present (computed independently, not in the spec)
		hmac      string // "" when the spec gives none
	}{
		{
			name:      "row1",
			m:         row1(),
			key:       key1,
			canonical: "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA",
			md5:       "9A0A8659F005D6984697E2CA0A9CF3B7",
			md5Typed:  "6B4978B16793D0C2604CD59C47425A27",
			hmac:      "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6",
		},
		{
			name:      "row2",
			m:         row2(),
			key:       key2,
			canonical: "appid=wx0000000000000001&cash_fee=0&insurance_fee=100&mch_id=1900000001&nonce_str=abc123&order_type=RegPay&pay_type=2&total_fee=100",
			md5:       "7D35A2C671B93218EE0F2D78EA572909",
			md5Typed:  "4EEA0AA5C0BAEC4785881386875C6EE4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := CanonicalString(tt.m, tt.key)
			if want := tt.canonical + "&key=" + tt.key; s != want {
				t.Fatalf("CanonicalString = %q, want %q", s, want)
			}
			if got, err := Sign(tt.m, tt.key); err != nil || got != tt.md5 {
				t.Errorf("Sign = %q, %v; want %q", got, err, tt.md5)
			}
			for _, st := range []string{SignTypeMD5, ""} { // explicit MD5 and present-but-empty
				m := tt.m.Clone()
				m.Set("sign_type", st)
				want := tt.md5 // an empty sign_type is dropped like any empty field
				if st != "" {
					want = tt.md5Typed
				}
				if got, err := Sign(m, tt.key); err != nil || got != want {
					t.Errorf("sign_type=%q: Sign = %q, %v; want %q", st, got, err, want)
				}
			}
			if tt.hmac != "" {
				// The published HMAC vector is over the string without sign_type.
				if got, err := signString(s, tt.key, SignTypeHMACSHA256); err != nil || got != tt.hmac {
					t.Errorf("HMAC = %q, %v; want %q", got, err, tt.hmac)
				}
			}
			m := tt.m.Clone()
			if err := SignInPlace(m, tt.key); err != nil {
				t.Fatal(err)
			}
			if m.Get("sign") != tt.md5 || !Verify(m, tt.key) {
				t.Errorf("SignInPlace/Verify: sign=%q", m.Get("sign"))
			}
		})
	}
}

// With sign_type present it is part of the signed string (value computed independently).
func TestSignTypeIsSigned(t *testing.T) {
	t.Parallel()
	m := row1()
	m.Set("sign_type", SignTypeHMACSHA256)
	const want = "2C9DF1156522C0B2B03B4DBF3BCA5CACB602CBD5CA0F9E112458CF3E9855303B"
	if got, err := Sign(m, key1); err != nil || got != want {
		t.Fatalf("Sign = %q, %v; want %q", got, err, want)
	}
	if !strings.Contains(CanonicalString(m, key1), "&sign_type=HMAC-SHA256&key=") {
		t.Errorf("sign_type not in canonical string")
	}
	if err := SignInPlace(m, key1); err != nil || !Verify(m, key1) {
		t.Fatalf("SignInPlace/Verify failed: %v", err)
	}
	m.Set("sign_type", SignTypeMD5) // downgrading the algorithm must break the signature
	if Verify(m, key1) {
		t.Errorf("Verify accepted a changed sign_type")
	}
}

func TestDroppingZeroChangesSignature(t *testing.T) {
	t.Parallel()
	m := row2()
	if err := SignInPlace(m, key2); err != nil {
		t.Fatal(err)
	}
	m.Del("cash_fee")
	got, _ := Sign(m, key2)
	if got == "7D35A2C671B93218EE0F2D78EA572909" {
		t.Errorf("signature unchanged without cash_fee=0")
	}
	if Verify(m, key2) {
		t.Errorf("Verify accepted the message without cash_fee=0")
	}
}

func TestCanonicalString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    *Message
		want string
	}{
		{"empty message", msg(), "&key=K"},
		{"empty values dropped", msg("b", "", "a", "1", "c", ""), "a=1&key=K"},
		{"zero kept", msg("a", "0"), "a=0&key=K"},
		{"sign excluded", msg("sign", "ABC", "a", "1"), "a=1&key=K"},
		{"byte-wise order", msg("b", "1", "B", "2", "a_b", "3", "ab", "4", "a", "5"), "B=2&a=5&a_b=3&ab=4&b=1&key=K"},
		{"raw values", msg("u", "http://x/?a=1&b=2", "z", "中文 <>"), "u=http://x/?a=1&b=2&z=中文 <>&key=K"},
		{"whitespace value kept", msg("a", " "), "a= &key=K"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := CanonicalString(tt.m, "K"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEmptyValueDoesNotChangeSignature(t *testing.T) {
	t.Parallel()
	a, b := row1(), row1()
	b.Set("attach", "")
	sa, _ := Sign(a, key1)
	sb, _ := Sign(b, key1)
	if sa != sb {
		t.Errorf("empty field changed the signature: %s vs %s", sa, sb)
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	got := RedactedCanonicalString(row1())
	if strings.Contains(got, key1) || !strings.HasSuffix(got, "&nonce_str=ibuaiVcKdpRxkhJA&key=***") {
		t.Errorf("RedactedCanonicalString = %q", got)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	signed := row1()
	signed.Set("sign", "9A0A8659F005D6984697E2CA0A9CF3B7")
	tests := []struct {
		name   string
		modify func(m *Message)
		key    string
		want   bool
	}{
		{"valid", func(*Message) {}, key1, true},
		{"lower-case sign", func(m *Message) { m.Set("sign", strings.ToLower(m.Get("sign"))) }, key1, true},
		{"wrong key", func(*Message) {}, key2, false},
		{"no sign", func(m *Message) { m.Del("sign") }, key1, false},
		{"empty sign", func(m *Message) { m.Set("sign", "") }, key1, false},
		{"truncated sign", func(m *Message) { m.Set("sign", m.Get("sign")[:31]) }, key1, false},
		{"changed value", func(m *Message) { m.Set("body", "test2") }, key1, false},
		{"added field", func(m *Message) { m.Set("attach", "x") }, key1, false},
		{"added empty field", func(m *Message) { m.Set("attach", "") }, key1, true},
		{"unknown sign_type", func(m *Message) { m.Set("sign_type", "SHA1") }, key1, false},
		{"lower-case sign_type", func(m *Message) { m.Set("sign_type", "md5") }, key1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := signed.Clone()
			tt.modify(m)
			if got := Verify(m, tt.key); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSignTypeInvalid(t *testing.T) {
	t.Parallel()
	m := msg("a", "1", "sign_type", "hmac-sha256")
	if _, err := Sign(m, "k"); !errors.Is(err, ErrSignType) {
		t.Errorf("Sign err = %v, want ErrSignType", err)
	}
	if err := SignInPlace(m, "k"); !errors.Is(err, ErrSignType) || m.Has("sign") {
		t.Errorf("SignInPlace err = %v, sign set = %v", err, m.Has("sign"))
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b *Message
		want []string
	}{
		{"equal", row2(), row2(), nil},
		{"order ignored", msg("a", "1", "b", "2"), msg("b", "2", "a", "1"), nil},
		{
			"all kinds",
			msg("total_fee", "100", "cash_fee", "0", "body", "药"),
			msg("total_fee", "101", "body", "药", "attach", ""),
			[]string{`attach: missing in first`, `cash_fee: missing in second`, `total_fee: "100" vs "101"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Diff(tt.a, tt.b); !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNonce(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	var counts [256]int
	for range 1000 {
		n := Nonce()
		if len(n) != 32 || strings.Trim(n, nonceAlphabet) != "" {
			t.Fatalf("bad nonce %q", n)
		}
		if seen[n] {
			t.Fatalf("repeated nonce %q", n)
		}
		seen[n] = true
		for i := range len(n) {
			counts[n[i]]++
		}
	}
	// 32000 draws over 62 letters: each expected ~516; all must show up.
	for i := range len(nonceAlphabet) {
		if c := counts[nonceAlphabet[i]]; c < 300 || c > 750 {
			t.Errorf("letter %q drawn %d times", nonceAlphabet[i], c)
		}
	}
}
