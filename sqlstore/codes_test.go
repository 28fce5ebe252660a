package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// maxFailures is the limit of failed uses the tests give ClaimBindLink (the rule is payment's).
const maxFailures = 5

// codesStore is a store with one hospital, for the single-use credential tests.
func codesStore(t *testing.T, db *sqlstore.DB) (*sqlstore.Store, *medpay.Merchant) {
	t.Helper()
	box, err := secret.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := sqlstore.NewStore(db, box)
	m := &medpay.Merchant{Kind: medpay.KindHospital, Name: "h", AppID: "wxcodes", MchID: "1900000077",
		SecretHash: secret.Hash("s"), APIKey: secret.APIKey(), Cities: []string{"440300"}, Level: 3}
	if err := s.CreateMerchant(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return s, m
}

func TestBindLinkClaim(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s, m := codesStore(t, db)
		now := time.UnixMilli(1_770_000_000_123)
		l := &sqlstore.BindLink{MerchantID: m.ID, AppID: m.AppID, OpenID: "o1", ReturnURL: "https://h/", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
		if err := s.CreateBindLink(ctx, "hash-1", l); err != nil || l.ID == 0 {
			t.Fatalf("create: %v id %d", err, l.ID)
		}
		if err := s.CreateBindLink(ctx, "hash-1", &sqlstore.BindLink{MerchantID: m.ID, CreatedAt: now, ExpiresAt: now}); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("duplicate hash: %v", err)
		}
		if _, err := s.ClaimBindLink(ctx, "nope", now, maxFailures); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("claim unknown: %v", err)
		}
		// A refusal releases the claim and counts; MaxBindFailures of them burn the link.
		for i := 1; i <= maxFailures; i++ {
			c, err := s.ClaimBindLink(ctx, "hash-1", now, maxFailures)
			if err != nil || c.OpenID != "o1" || !c.UsedAt.Equal(now) {
				t.Fatalf("claim %d: %+v %v", i, c, err)
			}
			if err := s.ReleaseBindLink(ctx, c, true); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.BindLinkByHash(ctx, "hash-1")
		if err != nil || got.Failures != maxFailures || !got.UsedAt.IsZero() || got.Usable(now, maxFailures) {
			t.Fatalf("after %d failures: %+v %v", maxFailures, got, err)
		}
		if _, err := s.ClaimBindLink(ctx, "hash-1", now, maxFailures); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("claim a burnt link: %v", err)
		}

		// Expiry is exclusive: a link is usable strictly before expires_at.
		l2 := &sqlstore.BindLink{MerchantID: m.ID, AppID: m.AppID, OpenID: "o2", ReturnURL: "https://h/", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := s.CreateBindLink(ctx, "hash-2", l2); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClaimBindLink(ctx, "hash-2", now.Add(time.Minute), maxFailures); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("claim at expiry: %v", err)
		}
		// Of racing claims exactly one wins.
		wins := race(t, func() error { _, err := s.ClaimBindLink(ctx, "hash-2", now, maxFailures); return err })
		if wins != 1 {
			t.Fatalf("%d racing claims won, want 1", wins)
		}
		// Issuing purges links expired for more than a day.
		later := &sqlstore.BindLink{MerchantID: m.ID, AppID: m.AppID, OpenID: "o3", ReturnURL: "https://h/", CreatedAt: now.Add(25 * time.Hour), ExpiresAt: now.Add(26 * time.Hour)}
		if err := s.CreateBindLink(ctx, "hash-3", later); err != nil {
			t.Fatal(err)
		}
		if _, err := s.BindLinkByHash(ctx, "hash-1"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("old link not purged: %v", err)
		}
	})
}

func TestPayCodeClaim(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s, m := codesStore(t, db)
		now := time.UnixMilli(1_770_000_000_456)
		c := &sqlstore.PayCode{AppID: m.AppID, OpenID: "p1", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := s.CreatePayCode(ctx, "code-1", c); err != nil || c.ID == 0 {
			t.Fatalf("create: %v", err)
		}
		if err := s.CreatePayCode(ctx, "code-1", &sqlstore.PayCode{AppID: m.AppID, OpenID: "x", CreatedAt: now, ExpiresAt: now}); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		// Another payer, or another app, neither claims nor spends it.
		for _, who := range [][2]string{{m.AppID, "p2"}, {"wxother", "p1"}, {"wxother", ""}} {
			if _, err := s.ClaimPayCode(ctx, "code-1", who[0], who[1], now); !errors.Is(err, medpay.ErrNotFound) {
				t.Fatalf("claim as %v: %v", who, err)
			}
		}
		got, err := s.ClaimPayCode(ctx, "code-1", m.AppID, "", now) // the code names the payer
		if err != nil || got.OpenID != "p1" || got.ID != c.ID {
			t.Fatalf("claim: %+v %v", got, err)
		}
		if _, err := s.ClaimPayCode(ctx, "code-1", m.AppID, "p1", now); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("second claim: %v", err)
		}
		if err := s.ReleasePayCode(ctx, got); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClaimPayCode(ctx, "code-1", m.AppID, "p1", now.Add(time.Minute)); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("claim at expiry: %v", err)
		}
		wins := race(t, func() error { _, err := s.ClaimPayCode(ctx, "code-1", m.AppID, "p1", now.Add(time.Second)); return err })
		if wins != 1 {
			t.Fatalf("%d racing claims won, want 1", wins)
		}
		stored, err := s.PayCodeByHash(ctx, "code-1")
		if err != nil || stored.UsedAt.IsZero() || !stored.ExpiresAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("stored: %+v %v", stored, err)
		}
	})
}

// race runs claim from several goroutines at once and counts the successes; every failure must
// be medpay.ErrNotFound.
func race(t *testing.T, claim func() error) int {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	wins := 0
	for range 8 {
		wg.Go(func() {
			err := claim()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, medpay.ErrNotFound):
				t.Errorf("racing claim: %v", err)
			}
		})
	}
	wg.Wait()
	return wins
}
