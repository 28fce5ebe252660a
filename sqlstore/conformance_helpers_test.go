package sqlstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// t0 is the suite's epoch. It carries sub-millisecond digits on purpose: the stores keep Unix
// milliseconds, so every comparison has to survive the truncation.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 123_456_789, time.UTC)

// clock is a settable clock for Store.Now, safe for concurrent readers.
type clock struct{ ns atomic.Int64 }

func newClock(at time.Time) *clock {
	c := &clock{}
	c.Set(at)
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(at time.Time)    { c.ns.Store(at.UnixNano()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// bundle is what every conformance test works with (River's setup(t) habit).
type bundle struct {
	ctx   context.Context
	db    *sqlstore.DB
	store *sqlstore.Store
	clock *clock
	seq   atomic.Int64 // unique suffixes for business keys
}

var serverKey = []byte("0123456789abcdef0123456789abcdef")

func setup(t *testing.T, db *sqlstore.DB) *bundle {
	t.Helper()
	box, err := secret.NewBox(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{ctx: context.Background(), db: db, store: sqlstore.NewStore(db, box), clock: newClock(t0)}
	b.store.Now = b.clock.Now
	return b
}

func (b *bundle) next() int64 { return b.seq.Add(1) }

// merchant creates a hospital with unique appid and mch_id.
func (b *bundle) merchant(t *testing.T) *medpay.Merchant {
	t.Helper()
	n := b.next()
	m := &medpay.Merchant{
		Kind:       medpay.KindHospital,
		Name:       fmt.Sprintf("第%d人民医院", n),
		AppID:      fmt.Sprintf("wx%016d", n),
		MchID:      fmt.Sprintf("1%09d", n),
		SecretHash: secret.Hash(secret.AppSecret()),
		APIKey:     secret.APIKey(),
		Cities:     []string{"440300"},
		Level:      3,
		CreatedAt:  t0,
	}
	if err := b.store.CreateMerchant(b.ctx, m); err != nil {
		t.Fatalf("create merchant: %v", err)
	}
	return m
}

// newOrder returns an unsaved DiagPay order of m with every stored field set. The request-derived
// fields come from Fields, as they do when an order is read back.
func (b *bundle) newOrder(m *medpay.Merchant, tradeNo string) *medpay.Order {
	n := b.next()
	o := &medpay.Order{
		MedTransID:     fmt.Sprintf("MT%s%06d", m.MchID, n),
		MerchantID:     m.ID,
		ProviderID:     0,
		OrderType:      medpay.OrderDiagPay,
		HospOutTradeNo: tradeNo,
		TotalFee:       1000,
		CashFee:        300,
		InsuranceFee:   700,
		HifpPay:        500,
		AcctPay:        200,
		PayType:        medpay.PayCashInsurance,
		CityID:         "440300",
		Fields: map[string]string{
			"appid":             m.AppID,
			"mch_id":            m.MchID,
			"openid":            "o-payer",
			"hospital_name":     m.Name,
			"body":              "门诊缴费",
			"cash_add_fee":      "0",
			"cash_reduced_fee":  "0",
			"allow_fee_change":  "1",
			"spbill_create_ip":  "10.0.0.1",
			"notify_url":        "https://hospital.example/notify",
			"return_url":        "https://hospital.example/return",
			"serial_no":         "S1",
			"org_no":            "H44030000001",
			"bill_no":           "B1",
			"attach":            "附加 & <xml>",
			"request_content":   `{"payOrdId":"1"}`,
			"hosp_out_trade_no": tradeNo,
			"total_fee":         "1000",
			"cash_fee":          "300",
			"insurance_fee":     "700",
		},
		Fingerprint:      fmt.Sprintf("fp-%d", n),
		TimeExpire:       t0.Add(medpay.DefaultExpiry),
		State:            medpay.StateNotPay,
		CashStatus:       medpay.LegNotPay,
		InsuranceStatus:  medpay.LegNotPay,
		StatusDesc:       "待支付",
		PsnNo:            "P0001",
		CardNo:           "C0001",
		InsuranceOrderID: "",
		CashOrderID:      "",
		ResponseContent:  `{"setl":1}`,
		Step:             medpay.StepNone,
		Attempt:          0,
		CreatedAt:        t0,
	}
	o.LoadFields()
	return o
}

func (b *bundle) createOrder(t *testing.T, m *medpay.Merchant, tradeNo string) *medpay.Order {
	t.Helper()
	o := b.newOrder(m, tradeNo)
	if err := b.store.CreateOrder(b.ctx, o); err != nil {
		t.Fatalf("create order: %v", err)
	}
	return o
}

// count runs a COUNT(*) query.
func (b *bundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := b.db.SQL().QueryRowContext(b.ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// cmpOpts compares stored values: times to the millisecond (the stored precision), nil and empty
// slices and maps alike.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool { return a.UnixMilli() == b.UnixMilli() }),
	cmpopts.EquateEmpty(),
}

func mustDiff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}
