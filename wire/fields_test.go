package wire

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	needed  = " is needed"
	invalid = " is invalid"
)

// check runs read on a message holding (or, when absent, not holding) field "f" and compares
// the value read and the exact error text ("" for none; otherwise the suffix after the field).
func check(t *testing.T, value string, absent bool, read func(f *Fields) any, want any, wantErr string) {
	t.Helper()
	m := NewMessage()
	if !absent {
		m.Set("f", value)
	}
	f := NewFields(m)
	got := read(f)
	if got != want {
		t.Errorf("value = %#v, want %#v", got, want)
	}
	err := f.Err()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("err = %v, want nil", err)
	case wantErr != "" && (err == nil || err.Error() != "参数格式校验错误 f"+wantErr):
		t.Errorf("err = %v, want 参数格式校验错误 f%s", err, wantErr)
	}
	var fe *FieldError
	if err != nil && (!errors.As(err, &fe) || fe.Field != "f" || fe.Missing != (wantErr == needed)) {
		t.Errorf("err = %#v, want *FieldError for f", err)
	}
}

func TestFieldsString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		value    string
		absent   bool
		max      int
		required bool
		want     string
		wantErr  string
	}{
		{"valid", "abc", false, 3, true, "abc", ""},
		{"runes not bytes", "挂号费", false, 3, true, "挂号费", ""},
		{"too long", "abcd", false, 3, true, "", invalid},
		{"too long runes", "挂号费用", false, 3, false, "", invalid},
		{"no limit", strings.Repeat("x", 100000), false, 0, true, strings.Repeat("x", 100000), ""},
		{"invalid utf-8", "a\xffb", false, 10, true, "", invalid},
		{"whitespace is a value", " ", false, 10, true, " ", ""},
		{"absent required", "", true, 10, true, "", needed},
		{"empty required", "", false, 10, true, "", needed},
		{"absent optional", "", true, 10, false, "", ""},
		{"empty optional", "", false, 10, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, tt.value, tt.absent, func(f *Fields) any { return f.String("f", tt.max, tt.required) }, tt.want, tt.wantErr)
		})
	}
}

func TestFieldsUint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		value    string
		absent   bool
		required bool
		want64   int64
		want8    int
		err64    string
		err8     string
	}{
		{"zero", "0", false, true, 0, 0, "", ""},
		{"one", "1", false, true, 1, 1, "", ""},
		{"uint8 max", "255", false, true, 255, 255, "", ""},
		{"above uint8", "256", false, true, 256, 0, "", invalid},
		{"int64 max", "9223372036854775807", false, true, 1<<63 - 1, 0, "", invalid},
		{"above int64", "9223372036854775808", false, true, 0, 0, invalid, invalid},
		{"huge", strings.Repeat("9", 40), false, true, 0, 0, invalid, invalid},
		{"leading zero", "01", false, true, 0, 0, invalid, invalid},
		{"double zero", "00", false, true, 0, 0, invalid, invalid},
		{"plus sign", "+1", false, true, 0, 0, invalid, invalid},
		{"minus sign", "-1", false, true, 0, 0, invalid, invalid},
		{"minus zero", "-0", false, true, 0, 0, invalid, invalid},
		{"space", " 1", false, true, 0, 0, invalid, invalid},
		{"trailing space", "1 ", false, true, 0, 0, invalid, invalid},
		{"decimal", "1.00", false, true, 0, 0, invalid, invalid},
		{"underscore", "1_000", false, true, 0, 0, invalid, invalid},
		{"hex", "0x10", false, true, 0, 0, invalid, invalid},
		{"fullwidth digit", "１", false, true, 0, 0, invalid, invalid},
		{"absent required", "", true, true, 0, 0, needed, needed},
		{"empty required", "", false, true, 0, 0, needed, needed},
		{"absent optional", "", true, false, 0, 0, "", ""},
		{"invalid optional", "x", false, false, 0, 0, invalid, invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, tt.value, tt.absent, func(f *Fields) any { return f.Uint64("f", tt.required) }, tt.want64, tt.err64)
			check(t, tt.value, tt.absent, func(f *Fields) any { return f.Uint8("f", tt.required) }, tt.want8, tt.err8)
		})
	}
}

func TestFieldsOptUint64(t *testing.T) {
	t.Parallel()
	type res struct {
		v       int64
		present bool
	}
	tests := []struct {
		name    string
		value   string
		absent  bool
		want    res
		wantErr string
	}{
		{"present", "42", false, res{42, true}, ""},
		{"zero present", "0", false, res{0, true}, ""},
		{"absent", "", true, res{0, false}, ""},
		{"empty", "", false, res{0, false}, ""},
		{"invalid", "4 2", false, res{0, false}, invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, tt.value, tt.absent, func(f *Fields) any {
				v, ok := f.OptUint64("f")
				return res{v, ok}
			}, tt.want, tt.wantErr)
		})
	}
}

func TestFieldsEnum(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		value    string
		absent   bool
		required bool
		want     string
		wantErr  string
	}{
		{"first", "RegPay", false, true, "RegPay", ""},
		{"second", "DiagPay", false, true, "DiagPay", ""},
		{"case matters", "regpay", false, true, "", invalid},
		{"unknown", "Other", false, false, "", invalid},
		{"space", "RegPay ", false, true, "", invalid},
		{"absent required", "", true, true, "", needed},
		{"empty optional", "", false, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, tt.value, tt.absent, func(f *Fields) any { return f.Enum("f", tt.required, "RegPay", "DiagPay") }, tt.want, tt.wantErr)
		})
	}
}

func TestFieldsTime(t *testing.T) {
	t.Parallel()
	type res struct {
		t  time.Time
		ok bool
	}
	tests := []struct {
		name     string
		value    string
		absent   bool
		required bool
		want     res
		wantErr  string
	}{
		{"valid", "20240101120304", false, true, res{time.Date(2024, 1, 1, 12, 3, 4, 0, CST), true}, ""},
		{"leap day", "20240229235959", false, true, res{time.Date(2024, 2, 29, 23, 59, 59, 0, CST), true}, ""},
		{"no leap day", "20230229000000", false, true, res{}, invalid},
		{"month 13", "20241301000000", false, true, res{}, invalid},
		{"hour 24", "20240101240000", false, true, res{}, invalid},
		{"second 60", "20240101235960", false, true, res{}, invalid},
		{"short", "2024010112030", false, true, res{}, invalid},
		{"long", "202401011203040", false, true, res{}, invalid},
		{"separators", "2024-01-01 12:03", false, true, res{}, invalid},
		{"sign", "+2024010112030", false, true, res{}, invalid},
		{"absent required", "", true, true, res{}, needed},
		{"absent optional", "", true, false, res{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, tt.value, tt.absent, func(f *Fields) any {
				v, ok := f.Time("f", tt.required)
				return res{v, ok}
			}, tt.want, tt.wantErr)
		})
	}
}

func TestTimeZone(t *testing.T) {
	t.Parallel()
	f := NewFields(msg("t", "20240101080000"))
	got, _ := f.Time("t", true)
	if want := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Time = %v, want %v", got, want)
	}
	if name, off := got.Zone(); name != "CST" || off != 8*3600 {
		t.Errorf("zone = %s %d", name, off)
	}
	if s := FormatTime(time.Date(2023, 12, 31, 16, 0, 1, 999, time.UTC)); s != "20240101000001" {
		t.Errorf("FormatTime = %s", s)
	}
}

// The first error in call order wins, including one recorded with Fail.
func TestFieldsFirstError(t *testing.T) {
	t.Parallel()
	m := msg("total_fee", "x", "cash_fee", "1", "pay_type", "9")
	f := NewFields(m)
	if f.Err() != nil {
		t.Fatal("fresh Fields has an error")
	}
	f.String("appid", 32, false)
	_ = f.Uint64("cash_fee", true)
	_ = f.Uint64("total_fee", true)
	_ = f.Uint8("pay_type", true)
	_ = f.String("openid", 128, true)
	f.Fail("other", true)
	if err := f.Err(); err == nil || err.Error() != "参数格式校验错误 total_fee is invalid" {
		t.Errorf("err = %v", err)
	}
	// Readers keep returning values after an error.
	if v := f.Uint64("cash_fee", true); v != 1 {
		t.Errorf("cash_fee = %d after an error", v)
	}

	g := NewFields(m)
	g.Fail("sub_openid", true)
	_ = g.Uint64("total_fee", true)
	if err := g.Err(); err == nil || err.Error() != "参数格式校验错误 sub_openid is needed" {
		t.Errorf("err = %v", err)
	}
}
