// Package fee parses the fee details of a bill (docs/api/bureau.md (request_content)): the request_content a hospital
// passes through, shared by the simulated bureau and the client that uploads bills to a real
// one (national.md 6201).
package fee

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Item classes (docs/api/bureau.md (request_content)).
const (
	ClassA = "A" // 甲类: fully inside policy
	ClassB = "B" // 乙类: the person first pays self_ratio_pct (乙类先行自付)
	ClassC = "C" // 丙类 / outside the catalogue: fully self-paid
)

// Medical types (med_type, docs/api/bureau.md (request_content)).
const (
	MedTypeOutpatient   = "11" // 普通门诊
	MedTypeRegistration = "12" // 门诊挂号
	MedTypeChronic      = "14" // 门诊慢特病
	MedTypeInpatient    = "21" // 住院
)

// Limits on a bill (a limit on everything).
const (
	MaxContentBytes = 64 << 10         // request_content larger than this is refused
	MaxItems        = 1000             // items per bill
	MaxItemPrice    = 10_000_000_00    // 1 000 万元 per unit, in fen
	MaxItemQty      = 100_000          // units per item
	MaxBillTotal    = 1_000_000_000_00 // 10 亿元 per bill, in fen (keeps every product far from overflow)
)

// ErrInvalidBill is wrapped by every *BillError.
var ErrInvalidBill = errors.New("invalid bill")

// BillError is a bill the bureau refuses, naming the item (0-based index, -1 for the bill itself)
// and the field at fault.
type BillError struct {
	Item   int    // index into items, -1 when the error is about the bill as a whole
	Field  string // JSON field name, "" when the content is not JSON at all
	Reason string // human reason, Chinese
}

func (e *BillError) Error() string {
	var where string
	switch {
	case e.Item >= 0 && e.Field != "":
		where = fmt.Sprintf("items[%d].%s", e.Item, e.Field)
	case e.Item >= 0:
		where = fmt.Sprintf("items[%d]", e.Item)
	case e.Field != "":
		where = e.Field
	default:
		where = "request_content"
	}
	return where + ": " + e.Reason
}

func (e *BillError) Unwrap() error { return ErrInvalidBill }

func billErr(item int, field, format string, args ...any) *BillError {
	return &BillError{Item: item, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Item is one line of a bill. Amounts in fen.
type Item struct {
	Code  string
	Name  string
	Class string // ClassA, ClassB, ClassC
	Price int64  // unit price, fen, >= 0
	Qty   int64  // units, > 0
	// SelfRatioPct is the 乙类 self ratio of this item when HasSelfRatio; otherwise the city's
	// default applies. Ignored for classes A and C.
	SelfRatioPct int
	HasSelfRatio bool
}

// Amount is price × qty.
func (it Item) Amount() int64 { return it.Price * it.Qty }

// Bill is a parsed request_content.
type Bill struct {
	MedType  string
	DeptName string
	AcctUsed bool // whether the personal account may pay the self part
	Items    []Item
	// Default reports that the bill was made up as one class-A item of the order's fee, because
	// request_content was absent or in the national payAuthNo/payOrdId form.
	Default bool
}

// DefaultMedType is the med_type of a bill that does not name one: 12 (门诊挂号) for RegPay,
// 11 (普通门诊) otherwise.
func DefaultMedType(orderType string) string {
	if orderType == "RegPay" {
		return MedTypeRegistration
	}
	return MedTypeOutpatient
}

// KnownMedType reports whether the simulator knows med_type t.
func KnownMedType(t string) bool {
	switch t {
	case MedTypeOutpatient, MedTypeRegistration, MedTypeChronic, MedTypeInpatient:
		return true
	}
	return false
}

// MedGroup is the group of med types that share annual accumulators (deductible, pool limit):
// "outpatient" (11, 12), "chronic" (14), "inpatient" (21).
func MedGroup(medType string) string {
	switch medType {
	case MedTypeChronic:
		return "chronic"
	case MedTypeInpatient:
		return "inpatient"
	}
	return "outpatient"
}

// Parse parses request_content (docs/api/bureau.md (request_content)). When content is empty (or blank), is the national
// form (an object with payAuthNo or payOrdId and no items), or is not JSON at all (a city
// bureau's own message, XML), the bill is one class-A item of defaultFee. orderType (RegPay, DiagPay) chooses the default med_type. Every refusal is a
// *BillError naming the item and field.
func Parse(content, orderType string, defaultFee int64) (*Bill, error) {
	if len(content) > MaxContentBytes {
		return nil, billErr(-1, "", "内容过长（%d 字节，上限 %d）", len(content), MaxContentBytes)
	}
	trimmed := bytes.TrimSpace([]byte(content))
	if len(trimmed) == 0 {
		return defaultBill(orderType, defaultFee)
	}
	if trimmed[0] != '{' && trimmed[0] != '[' {
		// Not JSON: a format the simulator does not know (a city bureau's own message, XML).
		// It passes through and is priced like the national form.
		return defaultBill(orderType, defaultFee)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return nil, billErr(-1, "", "不是合法的 JSON 对象（%s）", jsonReason(err))
	}
	_, hasItems := top["items"]
	_, hasAuth := top["payAuthNo"]
	_, hasOrd := top["payOrdId"]
	if !hasItems && (hasAuth || hasOrd) {
		return defaultBill(orderType, defaultFee)
	}
	b := &Bill{MedType: DefaultMedType(orderType), AcctUsed: true}
	if raw, ok := top["med_type"]; ok && !isNull(raw) {
		mt, err := codeString(raw)
		if err != nil {
			return nil, billErr(-1, "med_type", "应为字符串，如 \"11\"")
		}
		if !KnownMedType(mt) {
			return nil, billErr(-1, "med_type", "未知的医疗类别 %q（支持 11、12、14、21）", mt)
		}
		b.MedType = mt
	}
	if raw, ok := top["dept_name"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &b.DeptName); err != nil {
			return nil, billErr(-1, "dept_name", "应为字符串")
		}
	}
	if raw, ok := top["acct_used"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &b.AcctUsed); err != nil {
			return nil, billErr(-1, "acct_used", "应为 true 或 false")
		}
	}
	if !hasItems || isNull(top["items"]) {
		return nil, billErr(-1, "items", "缺少费用明细")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(top["items"], &raws); err != nil {
		return nil, billErr(-1, "items", "应为数组")
	}
	if len(raws) == 0 {
		return nil, billErr(-1, "items", "费用明细为空")
	}
	if len(raws) > MaxItems {
		return nil, billErr(-1, "items", "明细过多（%d 项，上限 %d）", len(raws), MaxItems)
	}
	b.Items = make([]Item, 0, len(raws))
	for i, raw := range raws {
		it, err := parseItem(i, raw)
		if err != nil {
			return nil, err
		}
		b.Items = append(b.Items, it)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

func defaultBill(orderType string, fee int64) (*Bill, error) {
	b := &Bill{
		MedType:  DefaultMedType(orderType),
		AcctUsed: true,
		Default:  true,
		Items:    []Item{{Code: "DEFAULT", Name: "医疗费用", Class: ClassA, Price: fee, Qty: 1}},
	}
	if fee < 0 {
		return nil, billErr(-1, "", "订单金额不能为负数（%d 分）", fee)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

func parseItem(i int, raw json.RawMessage) (Item, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Item{}, billErr(i, "", "应为 JSON 对象")
	}
	var it Item
	for _, f := range []struct {
		name string
		dst  *string
	}{{"code", &it.Code}, {"name", &it.Name}} {
		if r, ok := fields[f.name]; ok && !isNull(r) {
			s, err := codeString(r)
			if err != nil {
				return Item{}, billErr(i, f.name, "应为字符串")
			}
			*f.dst = s
		}
	}
	r, ok := fields["class"]
	if !ok || isNull(r) {
		return Item{}, billErr(i, "class", "缺少（应为 A、B 或 C）")
	}
	if err := json.Unmarshal(r, &it.Class); err != nil {
		return Item{}, billErr(i, "class", "应为字符串 A、B 或 C")
	}
	price, err := intField(i, fields, "price", true)
	if err != nil {
		return Item{}, err
	}
	it.Price = price
	qty, err := intField(i, fields, "qty", true)
	if err != nil {
		return Item{}, err
	}
	it.Qty = qty
	if _, ok := fields["self_ratio_pct"]; ok && !isNull(fields["self_ratio_pct"]) {
		v, err := intField(i, fields, "self_ratio_pct", false)
		if err != nil {
			return Item{}, err
		}
		if v < 0 || v > 100 {
			return Item{}, billErr(i, "self_ratio_pct", "应在 0 到 100 之间（%d）", v)
		}
		it.SelfRatioPct, it.HasSelfRatio = int(v), true
	}
	if err := it.validate(i); err != nil {
		return Item{}, err
	}
	return it, nil
}

// intField reads an integer field of item i. Integers only: a fraction or a string is an error.
func intField(i int, fields map[string]json.RawMessage, name string, required bool) (int64, error) {
	r, ok := fields[name]
	if !ok || isNull(r) {
		if required {
			return 0, billErr(i, name, "缺少")
		}
		return 0, nil
	}
	var n json.Number
	if err := json.Unmarshal(r, &n); err != nil || bytes.HasPrefix(bytes.TrimSpace(r), []byte(`"`)) {
		return 0, billErr(i, name, "应为整数")
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return 0, billErr(i, name, "应为整数（%s）", n.String())
	}
	return v, nil
}

// codeString accepts a JSON string, or an integer written as a number (med_type 11).
func codeString(r json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(r, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(r, &n); err != nil {
		return "", err
	}
	if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
		return "", err
	}
	return n.String(), nil
}

func isNull(r json.RawMessage) bool { return string(bytes.TrimSpace(r)) == "null" }

func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("第 %d 字节附近语法错误", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "应为对象"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func (it Item) validate(i int) error {
	switch it.Class {
	case ClassA, ClassB, ClassC:
	default:
		return billErr(i, "class", "未知类别 %q（应为 A、B 或 C）", it.Class)
	}
	if it.Price < 0 {
		return billErr(i, "price", "不能为负数（%d）", it.Price)
	}
	if it.Price > MaxItemPrice {
		return billErr(i, "price", "超过上限（%d 分）", it.Price)
	}
	if it.Qty <= 0 {
		return billErr(i, "qty", "应大于 0（%d）", it.Qty)
	}
	if it.Qty > MaxItemQty {
		return billErr(i, "qty", "超过上限（%d）", it.Qty)
	}
	if it.HasSelfRatio && (it.SelfRatioPct < 0 || it.SelfRatioPct > 100) {
		return billErr(i, "self_ratio_pct", "应在 0 到 100 之间（%d）", it.SelfRatioPct)
	}
	return nil
}

// Validate checks a bill built in code the way ParseBill checks a parsed one: known med_type, at
// most MaxItems valid items, and a total above zero.
func (b *Bill) Validate() error {
	if !KnownMedType(b.MedType) {
		return billErr(-1, "med_type", "未知的医疗类别 %q（支持 11、12、14、21）", b.MedType)
	}
	if len(b.Items) == 0 {
		return billErr(-1, "items", "费用明细为空")
	}
	if len(b.Items) > MaxItems {
		return billErr(-1, "items", "明细过多（%d 项，上限 %d）", len(b.Items), MaxItems)
	}
	var total int64
	for i, it := range b.Items {
		if err := it.validate(i); err != nil {
			return err
		}
		total += it.Amount() // each amount <= MaxItemPrice × MaxItemQty = 10^14: no overflow
		if total > MaxBillTotal {
			return billErr(i, "", "费用总额超过上限（%d 分）", int64(MaxBillTotal))
		}
	}
	if total <= 0 {
		return billErr(-1, "items", "费用总额为 0，无需结算")
	}
	return nil
}
