package wire

import (
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/medpay/medpay"
)

// CST is China Standard Time, the zone of every wire time (fixed UTC+8, no DST).
var CST = medpay.CST

// timeLayout is yyyyMMddHHmmss.
const timeLayout = "20060102150405"

// FormatTime formats t as yyyyMMddHHmmss in CST.
func FormatTime(t time.Time) string { return t.In(CST).Format(timeLayout) }

// FieldError is a protocol-level field error; Error() is the exact return_msg reason (docs/api/errors.md).
type FieldError struct {
	Field   string
	Missing bool // required and absent or empty; otherwise the value is invalid
}

func (e *FieldError) Error() string {
	if e.Missing {
		return "参数格式校验错误 " + e.Field + " is needed"
	}
	return "参数格式校验错误 " + e.Field + " is invalid"
}

// Fields reads typed fields from a message and remembers the first error, so a handler can read
// all its fields and check Err once; the error names the first bad field in call order.
// Every reader treats an empty value as absent. On error a reader returns the zero value.
type Fields struct {
	m   *Message
	err *FieldError
}

// NewFields starts reading m.
func NewFields(m *Message) *Fields { return &Fields{m: m} }

// Err returns the first *FieldError, or nil.
func (f *Fields) Err() error {
	if f.err == nil {
		return nil // not a typed nil inside a non-nil interface
	}
	return f.err
}

// Fail records an error found by logic outside Fields, unless one is already recorded.
func (f *Fields) Fail(name string, missing bool) {
	if f.err == nil {
		f.err = &FieldError{Field: name, Missing: missing}
	}
}

// get returns the value, or ok=false when it is empty (recording "needed" if required).
func (f *Fields) get(name string, required bool) (string, bool) {
	v := f.m.Get(name)
	if v == "" {
		if required {
			f.Fail(name, true)
		}
		return "", false
	}
	return v, true
}

// String reads a text field of at most maxLen characters (runes); maxLen <= 0 means no limit.
// Invalid UTF-8 is invalid.
func (f *Fields) String(name string, maxLen int, required bool) string {
	f.trace(FieldSpec{Name: name, Type: "String", MaxLen: maxLen, Required: required})
	v, ok := f.get(name, required)
	if !ok {
		return ""
	}
	if !utf8.ValidString(v) || (maxLen > 0 && utf8.RuneCountInString(v) > maxLen) {
		f.Fail(name, false)
		return ""
	}
	return v
}

// Uint64 reads a non-negative decimal integer: digits only (no sign, space or leading zero
// except "0" itself), at most math.MaxInt64 so it fits an int64 amount. Absent -> 0.
func (f *Fields) Uint64(name string, required bool) int64 {
	v, _ := f.uint(name, required, math.MaxInt64)
	return v
}

// OptUint64 reads an optional Uint64 field; present is true only when a valid value was read.
func (f *Fields) OptUint64(name string) (v int64, present bool) {
	return f.uint(name, false, math.MaxInt64)
}

// UintMax reads a Uint64 field of at most limit (an amount bounded by the domain); present is
// true only when a valid value was read.
func (f *Fields) UintMax(name string, required bool, limit int64) (v int64, present bool) {
	return f.uint(name, required, limit)
}

// Uint8 reads a Uint64 field of at most 255.
func (f *Fields) Uint8(name string, required bool) int {
	v, _ := f.uint(name, required, math.MaxUint8)
	return int(v)
}

func (f *Fields) uint(name string, required bool, limit int64) (int64, bool) {
	f.trace(FieldSpec{Name: name, Type: "Int", Max: limit, Required: required})
	v, ok := f.get(name, required)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if !isDigits(v) || (len(v) > 1 && v[0] == '0') || err != nil || n > limit {
		f.Fail(name, false)
		return 0, false
	}
	return n, true
}

// isDigits reports whether s is only ASCII digits (ParseInt alone would accept a sign).
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Enum reads a field that must be one of allowed (exact, case-sensitive).
func (f *Fields) Enum(name string, required bool, allowed ...string) string {
	f.trace(FieldSpec{Name: name, Type: "Enum", Required: required, Values: allowed})
	v, ok := f.get(name, required)
	if !ok {
		return ""
	}
	if !slices.Contains(allowed, v) {
		f.Fail(name, false)
		return ""
	}
	return v
}

// Time reads a yyyyMMddHHmmss time in CST (exactly 14 digits, a real calendar time).
// It returns the zero time and false when the field is absent or invalid.
func (f *Fields) Time(name string, required bool) (time.Time, bool) {
	f.trace(FieldSpec{Name: name, Type: "Time", MaxLen: len(timeLayout), Required: required})
	v, ok := f.get(name, required)
	if !ok {
		return time.Time{}, false
	}
	// time.Parse accepts one-digit hours etc.; the wire format is fixed width.
	t, err := time.ParseInLocation(timeLayout, v, CST)
	if len(v) != len(timeLayout) || !isDigits(v) || err != nil {
		f.Fail(name, false)
		return time.Time{}, false
	}
	return t, true
}

// FieldSpec is what a reader declares about a field as it reads it. The API reference's request
// tables are generated from them (http's apidoc test), so the document cannot drift from the
// checks.
type FieldSpec struct {
	Name     string
	Type     string   // String, Int, Enum or Time
	MaxLen   int      // String: characters (0: no limit); Time: 14
	Max      int64    // Int: largest value
	Required bool     // absent or empty is "needed"
	Values   []string // Enum: the values allowed
}

var fieldTrace atomic.Pointer[func(*Message, FieldSpec)]

// TraceFields makes every reader report the field it reads, with the message read, to fn; nil
// stops it. It serves the generator of the API reference; nothing else sets it.
func TraceFields(fn func(m *Message, s FieldSpec)) {
	if fn == nil {
		fieldTrace.Store(nil)
		return
	}
	fieldTrace.Store(&fn)
}

func (f *Fields) trace(s FieldSpec) {
	if fn := fieldTrace.Load(); fn != nil {
		(*fn)(f.m, s)
	}
}
