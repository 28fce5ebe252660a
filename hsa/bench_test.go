package hsa

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// A typical 6202 pay_order: the request the platform seals, the answer it opens.
func settleAnswer() map[string]any {
	return map[string]any{
		"payOrdId": "ORD20261130000001", "ordStas": "4", "feeSumamt": "128.50", "ownPayAmt": "25.70",
		"psnAcctPay": "30.00", "fundPay": "72.80", "setlId": "SETL20261130000001", "setlTime": "2026-11-30 12:00:00",
	}
}

func BenchmarkSeal(b *testing.B) {
	k := instKey(b)
	data := settleRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(testAppID, testAppSecret, k, data, nil, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := bureauKey(b)
	env, err := Seal(testAppID, testAppSecret, k, settleAnswer(), &Answer{0, "成功", true}, testNow)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(env, testAppSecret, &k.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTrip6202: Client.Call to a Handler over loopback HTTP, each call sealed,
// opened, answered, sealed and opened again (the replay cache sees a new signature every time).
func BenchmarkRoundTrip6202(b *testing.B) {
	bu := newBureau(b, func(context.Context, *Institution, json.RawMessage) (any, error) { return settleAnswer(), nil })
	bu.handler.Now = time.Now
	c := bu.client()
	c.Now = time.Now
	ctx := context.Background()
	var out map[string]any
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Call(ctx, "pay_order", settleRequest(), &out); err != nil {
			b.Fatal(err)
		}
	}
}
