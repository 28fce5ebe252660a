package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

func TestConformanceBindings(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		get := func(appid, openid string) (*medpay.Binding, error) {
			t.Helper()
			return b.store.BindingFor(b.ctx, appid, openid)
		}
		first := &medpay.Binding{AppID: "wxA", OpenID: "o1", PsnNo: "P1", Name: "张三", IDNo: "440301199001011234",
			CardNo: "C1", CityID: "440300", Insutype: "310"}
		if _, err := get("wxA", "o1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("before binding: %v, want ErrNotFound", err)
		}
		if err := b.store.Bind(b.ctx, first, t0); err != nil {
			t.Fatal(err)
		}
		got, err := get("wxA", "o1")
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "binding", first, got)

		// The same openid under another appid is another payer.
		other := *first
		other.AppID, other.PsnNo, other.CardNo = "wxB", "P2", "C2"
		if err := b.store.Bind(b.ctx, &other, t0); err != nil {
			t.Fatal(err)
		}

		// Rebinding replaces every column of the earlier card.
		second := &medpay.Binding{AppID: "wxA", OpenID: "o1", PsnNo: "P3", Name: "李四", IDNo: "110101198001011234",
			CardNo: "C3", CityID: "110000", Insutype: ""}
		if err := b.store.Bind(b.ctx, second, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err = get("wxA", "o1"); err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "rebound", second, got)
		if n := b.count(t, `SELECT COUNT(*) FROM bindings WHERE appid = 'wxA' AND openid = 'o1'`); n != 1 {
			t.Errorf("rows for (wxA, o1) = %d, want 1", n)
		}
		if got, err = get("wxB", "o1"); err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "other appid", &other, got)
		if _, err := get("wxA", "o2"); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("unbound openid: %v, want ErrNotFound", err)
		}

		if err := b.store.Unbind(b.ctx, "wxA", "o1"); err != nil {
			t.Fatal(err)
		}
		if _, err := get("wxA", "o1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("after unbind: %v, want ErrNotFound", err)
		}
		if err := b.store.Unbind(b.ctx, "wxA", "o1"); err != nil {
			t.Errorf("unbinding nothing: %v", err)
		}
		if _, err := get("wxB", "o1"); err != nil {
			t.Errorf("unbinding (wxA, o1) touched (wxB, o1): %v", err)
		}
	})
}

func TestConformancePINFailures(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		record := func(payer string, ok bool, at time.Time, wantFailures int, wantUntil time.Time) {
			t.Helper()
			failures, until, err := b.store.RecordPIN(b.ctx, payer, ok, at)
			if err != nil {
				t.Fatal(err)
			}
			if failures != wantFailures || until.UnixMilli() != wantUntil.UnixMilli() {
				t.Errorf("RecordPIN(%s, ok=%v, t0+%v) = %d, %v; want %d, %v", payer, ok, at.Sub(t0), failures, until, wantFailures, wantUntil)
			}
		}
		blocked := func(payer string, at time.Time, want time.Time) {
			t.Helper()
			got, err := b.store.PINBlockedUntil(b.ctx, payer, at)
			if err != nil {
				t.Fatal(err)
			}
			if got.UnixMilli() != want.UnixMilli() {
				t.Errorf("PINBlockedUntil(%s, t0+%v) = %v, want %v", payer, at.Sub(t0), got, want)
			}
		}
		var none time.Time
		blocked("p", t0, none)

		// Failures count up; a success resets the count.
		for i := 1; i <= 3; i++ {
			record("p", false, t0, i, none)
		}
		record("other", false, t0, 1, none) // per payer
		record("p", true, t0, 0, none)
		record("p", false, t0, 1, none)
		record("p", true, t0, 0, none)
		record("p", true, t0, 0, none) // a success with nothing to clear

		// MaxPINFailures in a row block for PINBlock.
		for i := 1; i < sqlstore.MaxPINFailures; i++ {
			record("p", false, t0.Add(time.Duration(i)*time.Second), i, none)
			blocked("p", t0.Add(time.Duration(i)*time.Second), none)
		}
		at := t0.Add(time.Minute)
		end := at.Add(sqlstore.PINBlock)
		record("p", false, at, sqlstore.MaxPINFailures, end)
		blocked("p", at, end)
		blocked("p", end.Add(-time.Millisecond), end)
		blocked("p", end, none)
		blocked("other", at, none)

		// Once the block is served the count starts again, and a failure does not report the
		// old block.
		after := end.Add(time.Minute)
		record("p", false, after, 1, none)
		blocked("p", after, none)
		for i := 2; i < sqlstore.MaxPINFailures; i++ {
			record("p", false, after, i, none)
		}
		record("p", false, after, sqlstore.MaxPINFailures, after.Add(sqlstore.PINBlock))
		blocked("p", after, after.Add(sqlstore.PINBlock))
		// A success lifts the block.
		record("p", true, after, 0, none)
		blocked("p", after, none)
	})
}

// A failing read must not look like "not blocked": the PIN check would fail open.
func TestConformancePINBlockedUntilReportsErrors(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		for i := 0; i < sqlstore.MaxPINFailures; i++ {
			if _, _, err := b.store.RecordPIN(b.ctx, "p", false, t0); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(b.ctx)
		cancel()
		until, err := b.store.PINBlockedUntil(ctx, "p", t0)
		if err == nil {
			t.Errorf("PINBlockedUntil on a failed read = %v, nil; want an error", until)
		}
	})
}
