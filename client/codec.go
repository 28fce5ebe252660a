package client

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medpay/medpay/wire"
)

// The request and response structs name their wire fields in a `wire:"name"` tag. On requests,
// strings and times are sent only when set; integers are always sent (the protocol wants
// cash_fee=0 present), unless the tag says omitempty. Responses are read leniently: unknown fields
// are kept in Raw only, absent fields leave the zero value, and a number or time that does not
// parse is an error (a signed answer that says something else than it seems to is not used).

var timeType = reflect.TypeFor[time.Time]()

type fieldInfo struct {
	index     []int // path to the field, through embedded structs
	name      string
	omitEmpty bool
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

func fieldsOf(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("wire")
		if !ok && sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			// An embedded group of fields (OrderFields) is encoded as if declared here.
			for _, inner := range fieldsOf(sf.Type) {
				inner.index = append([]int{i}, inner.index...)
				out = append(out, inner)
			}
			continue
		}
		if !ok || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		out = append(out, fieldInfo{index: []int{i}, name: name, omitEmpty: opts == "omitempty"})
	}
	fieldCache.Store(t, out)
	return out
}

// encodeFields appends the tagged fields of the struct v points to onto m.
func encodeFields(m *wire.Message, v any) {
	rv := reflect.ValueOf(v).Elem()
	for _, f := range fieldsOf(rv.Type()) {
		fv := rv.FieldByIndex(f.index)
		switch fv.Kind() {
		case reflect.String:
			if s := fv.String(); s != "" {
				m.Set(f.name, s)
			}
		case reflect.Int, reflect.Int64:
			if n := fv.Int(); n != 0 || !f.omitEmpty {
				m.Set(f.name, strconv.FormatInt(n, 10))
			}
		case reflect.Struct:
			if t := fv.Interface().(time.Time); !t.IsZero() {
				m.Set(f.name, wire.FormatTime(t))
			}
		default:
			panic("client: unsupported field type " + fv.Type().String())
		}
	}
	if f, ok := rv.Type().FieldByName("Extra"); ok && f.Type == reflect.TypeFor[map[string]string]() {
		extra := rv.FieldByIndex(f.Index).Interface().(map[string]string)
		for _, k := range slices.Sorted(maps.Keys(extra)) {
			if extra[k] == "" {
				m.Del(k)
			} else {
				m.Set(k, extra[k])
			}
		}
	}
}

// decodeFields fills the tagged fields of the struct v points to from m.
func decodeFields(m *wire.Message, v any) error {
	rv := reflect.ValueOf(v).Elem()
	for _, f := range fieldsOf(rv.Type()) {
		s := m.Get(f.name)
		if s == "" {
			continue
		}
		fv := rv.FieldByIndex(f.index)
		switch fv.Kind() {
		case reflect.String:
			fv.SetString(s)
		case reflect.Int, reflect.Int64:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("client: answer field %s=%q is not an integer", f.name, s)
			}
			fv.SetInt(n)
		case reflect.Struct:
			if fv.Type() != timeType {
				panic("client: unsupported field type " + fv.Type().String())
			}
			t, err := time.ParseInLocation("20060102150405", s, wire.CST)
			if err != nil {
				return fmt.Errorf("client: answer field %s=%q is not a yyyyMMddHHmmss time", f.name, s)
			}
			fv.Set(reflect.ValueOf(t))
		default:
			panic("client: unsupported field type " + fv.Type().String())
		}
	}
	return nil
}

// setRaw stores the whole answer in out's Raw field, if it has one.
func setRaw(out any, m *wire.Message) {
	rv := reflect.ValueOf(out).Elem()
	if f := rv.FieldByName("Raw"); f.IsValid() && f.Type() == reflect.TypeFor[*wire.Message]() {
		f.Set(reflect.ValueOf(m))
	}
}
