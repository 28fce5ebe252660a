package sqlstore_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

func TestConformanceMerchantRoundTrip(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		want := &medpay.Merchant{
			Kind:       medpay.KindPharmacy,
			Name:       "大药房",
			AppID:      "wxapp0001",
			MchID:      "1000000001",
			SecretHash: secret.Hash("s"),
			APIKey:     secret.APIKey(),
			Cities:     []string{"440300", "440100", "110000"},
			Level:      2,
			RefundIPs:  []string{"10.0.0.1", "192.168.0.0/16", "2001:db8::/32"},
			CreatedAt:  t0,
		}
		key := want.APIKey
		if err := b.store.CreateMerchant(b.ctx, want); err != nil {
			t.Fatal(err)
		}
		if want.ID == 0 {
			t.Fatal("CreateMerchant did not set ID")
		}
		byAppID, err := b.store.MerchantByAppID(b.ctx, want.AppID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "by appid", want, byAppID)
		byMchID, err := b.store.MerchantByMchID(b.ctx, want.MchID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "by mch_id", want, byMchID)
		byID, err := b.store.MerchantByID(b.ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "by id", want, byID)
		if byID.APIKey != key {
			t.Errorf("api key = %q, want %q", byID.APIKey, key)
		}

		// The stored column holds a sealed form, not the key.
		var stored string
		if err := db.SQL().QueryRowContext(b.ctx, `SELECT api_key_enc FROM merchants WHERE id = $1`, want.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored == "" || strings.Contains(stored, key) {
			t.Errorf("api_key_enc %q reveals the key %q", stored, key)
		}

		// Another server key cannot open it: an error, never a wrong key.
		otherBox, err := secret.NewBox([]byte(strings.Repeat("k", 32)))
		if err != nil {
			t.Fatal(err)
		}
		other := sqlstore.NewStore(db, otherBox)
		if m, err := other.MerchantByID(b.ctx, want.ID); err == nil || errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("read with another server key: %+v, %v; want a decryption error", m, err)
		}
	})
}

func TestConformanceMerchantEmptyLists(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		m2 := &medpay.Merchant{Kind: medpay.KindProvider, Name: "服务商", AppID: "wxprov", MchID: "2000000001",
			SecretHash: "h", APIKey: secret.APIKey(), CreatedAt: t0}
		if err := b.store.CreateMerchant(b.ctx, m2); err != nil {
			t.Fatal(err)
		}
		got, err := b.store.MerchantByID(b.ctx, m2.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Cities) != 0 || len(got.RefundIPs) != 0 {
			t.Errorf("cities %q, refund IPs %q; want none", got.Cities, got.RefundIPs)
		}
		mustDiff(t, "provider", m2, got)
		if m.ID == m2.ID {
			t.Errorf("two merchants share id %d", m.ID)
		}
	})
}

func TestConformanceMerchantConflictsAndNotFound(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		sameAppID := &medpay.Merchant{Kind: medpay.KindHospital, Name: "x", AppID: m.AppID, MchID: "9999999999",
			SecretHash: "h", APIKey: secret.APIKey(), CreatedAt: t0}
		if err := b.store.CreateMerchant(b.ctx, sameAppID); !errors.Is(err, medpay.ErrConflict) {
			t.Errorf("duplicate appid: err = %v, want ErrConflict", err)
		}
		sameMchID := &medpay.Merchant{Kind: medpay.KindHospital, Name: "x", AppID: "wxother", MchID: m.MchID,
			SecretHash: "h", APIKey: secret.APIKey(), CreatedAt: t0}
		if err := b.store.CreateMerchant(b.ctx, sameMchID); !errors.Is(err, medpay.ErrConflict) {
			t.Errorf("duplicate mch_id: err = %v, want ErrConflict", err)
		}
		badKey := &medpay.Merchant{Kind: medpay.KindHospital, Name: "x", AppID: "wxbad", MchID: "8888888888",
			SecretHash: "h", APIKey: "short", CreatedAt: t0}
		if err := b.store.CreateMerchant(b.ctx, badKey); err == nil {
			t.Error("a 5-character API key was accepted")
		}
		if n := b.count(t, `SELECT COUNT(*) FROM merchants`); n != 1 {
			t.Errorf("merchants = %d after rejected inserts, want 1", n)
		}
		// The store still works after the failed transactions.
		b.merchant(t)

		if _, err := b.store.MerchantByAppID(b.ctx, "nope"); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("unknown appid: %v", err)
		}
		if _, err := b.store.MerchantByMchID(b.ctx, "nope"); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("unknown mch_id: %v", err)
		}
		if _, err := b.store.MerchantByID(b.ctx, 1<<40); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("unknown id: %v", err)
		}
	})
}

func TestConformanceProviderAuthorization(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		provider, h1, h2 := b.merchant(t), b.merchant(t), b.merchant(t)
		check := func(p, m int64, want bool) {
			t.Helper()
			got, err := b.store.IsAuthorized(b.ctx, p, m)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("IsAuthorized(%d, %d) = %v, want %v", p, m, got, want)
			}
		}
		check(provider.ID, h1.ID, false)
		for i := 0; i < 2; i++ { // idempotent
			if err := b.store.Authorize(b.ctx, provider.ID, h1.ID); err != nil {
				t.Fatalf("authorize #%d: %v", i+1, err)
			}
		}
		if n := b.count(t, `SELECT COUNT(*) FROM provider_authorizations`); n != 1 {
			t.Errorf("authorisation rows = %d, want 1", n)
		}
		check(provider.ID, h1.ID, true)
		check(provider.ID, h2.ID, false)
		check(h1.ID, provider.ID, false) // not symmetric

		if err := b.store.Authorize(b.ctx, provider.ID, 1<<40); err == nil {
			t.Error("authorising an unknown merchant succeeded")
		}

		if err := b.store.Revoke(b.ctx, provider.ID, h1.ID); err != nil {
			t.Fatal(err)
		}
		check(provider.ID, h1.ID, false)
		if err := b.store.Revoke(b.ctx, provider.ID, h1.ID); err != nil {
			t.Errorf("revoking twice: %v", err)
		}
		if err := b.store.Authorize(b.ctx, provider.ID, h1.ID); err != nil {
			t.Fatal(err)
		}
		check(provider.ID, h1.ID, true)
	})
}

func TestConformanceTokens(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		tok := func(appid, sub string, at time.Time) *medpay.Token {
			t.Helper()
			k := &medpay.Token{Hash: secret.Hash(secret.Token()), AppID: appid, SubAppID: sub,
				IssuedAt: at, ExpiresAt: at.Add(medpay.TokenTTL)}
			if err := b.store.CreateToken(b.ctx, k); err != nil {
				t.Fatal(err)
			}
			return k
		}
		valid := func(k *medpay.Token, at time.Time) bool {
			t.Helper()
			got, err := b.store.TokenByHash(b.ctx, k.Hash, at)
			if errors.Is(err, medpay.ErrNotFound) {
				return false
			}
			if err != nil {
				t.Fatal(err)
			}
			// ExpiresAt moves when the scope rotates; the expect calls check it.
			if d := cmp.Diff(k, got, cmpOpts, cmpopts.IgnoreFields(medpay.Token{}, "ExpiresAt")); d != "" {
				t.Errorf("token mismatch (-want +got):\n%s", d)
			}
			return true
		}
		expect := func(name string, k *medpay.Token, at time.Time, want bool) {
			t.Helper()
			if got := valid(k, at); got != want {
				t.Errorf("%s valid at t0+%v = %v, want %v", name, at.Sub(t0), got, want)
			}
		}

		first := tok("wxA", "", t0)
		got, err := b.store.TokenByHash(b.ctx, first.Hash, t0)
		if err != nil {
			t.Fatal(err)
		}
		mustDiff(t, "token", first, got)
		expect("first", first, t0, true)
		expect("first", first, t0.Add(medpay.TokenTTL-time.Millisecond), true)
		expect("first", first, t0.Add(medpay.TokenTTL), false)
		if _, err := b.store.TokenByHash(b.ctx, "no-such-hash", t0); !errors.Is(err, medpay.ErrNotFound) {
			t.Errorf("unknown hash: %v", err)
		}

		// Other scopes, issued before the rotation.
		subH1 := tok("wxA", "wxH1", t0)
		subH2 := tok("wxA", "wxH2", t0)
		otherApp := tok("wxB", "", t0)

		// A new token for (wxA, "") leaves first valid for exactly TokenOverlap.
		t1 := t0.Add(30 * time.Minute)
		second := tok("wxA", "", t1)
		expect("first", first, t1.Add(medpay.TokenOverlap-time.Millisecond), true)
		expect("first", first, t1.Add(medpay.TokenOverlap), false)
		expect("second", second, t1.Add(medpay.TokenTTL-time.Millisecond), true)
		expect("second", second, t1.Add(medpay.TokenTTL), false)
		for name, k := range map[string]*medpay.Token{"(wxA, wxH1)": subH1, "(wxA, wxH2)": subH2, "(wxB)": otherApp} {
			expect(name, k, t1.Add(medpay.TokenOverlap), true)
			expect(name, k, t0.Add(medpay.TokenTTL-time.Millisecond), true)
		}

		// A third token inside the overlap shortens second, and never extends first.
		t2 := t1.Add(time.Minute)
		third := tok("wxA", "", t2)
		expect("first", first, t1.Add(medpay.TokenOverlap), false)
		expect("second", second, t2.Add(medpay.TokenOverlap-time.Millisecond), true)
		expect("second", second, t2.Add(medpay.TokenOverlap), false)
		expect("third", third, t2.Add(medpay.TokenTTL-time.Millisecond), true)

		// Rotating a provider-mode scope leaves the others alone.
		t3 := t2.Add(time.Minute)
		h1b := tok("wxA", "wxH1", t3)
		expect("(wxA, wxH1) old", subH1, t3.Add(medpay.TokenOverlap), false)
		expect("(wxA, wxH1) new", h1b, t3.Add(medpay.TokenOverlap), true)
		expect("(wxA, wxH2)", subH2, t3.Add(medpay.TokenOverlap), true)
		expect("third", third, t3.Add(medpay.TokenOverlap), true)
	})
}

func TestConformanceNonces(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		claim := func(mch, nonce string, at time.Time, want bool) {
			t.Helper()
			got, err := b.store.ClaimNonce(b.ctx, mch, nonce, at)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("ClaimNonce(%s, %s, t0+%v) = %v, want %v", mch, nonce, at.Sub(t0), got, want)
			}
		}
		claim("m1", "n1", t0, true)
		claim("m1", "n1", t0, false)
		claim("m1", "n1", t0.Add(time.Minute), false)
		claim("m2", "n1", t0, true) // per merchant
		claim("m1", "n2", t0, true)
		// Remembered for the whole window, usable again after it.
		claim("m1", "n1", t0.Add(sqlstore.NonceWindow), false)
		claim("m1", "n1", t0.Add(sqlstore.NonceWindow+time.Millisecond), true)
		// Reclaiming restarts the window.
		claim("m1", "n1", t0.Add(sqlstore.NonceWindow+time.Minute), false)

		// Purge drops what is older than the window, keeps the rest.
		claim("m3", "late", t0.Add(sqlstore.NonceWindow), true)
		if err := b.store.PurgeNonces(b.ctx, t0.Add(sqlstore.NonceWindow+time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		// Left: (m1,n1) reclaimed at t0+window+1ms and (m3,late) at t0+window.
		if n := b.count(t, `SELECT COUNT(*) FROM nonces`); n != 2 {
			t.Errorf("nonces after purge = %d, want 2", n)
		}
		claim("m1", "n1", t0.Add(sqlstore.NonceWindow+time.Minute), false)
		claim("m2", "n1", t0.Add(sqlstore.NonceWindow+time.Minute), true)
	})
}

func TestConformanceNonceRace(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		const n = 12
		var wg sync.WaitGroup
		results := make(chan bool, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := b.store.ClaimNonce(b.ctx, "m", "raced", t0)
				if err != nil {
					t.Error(err)
				}
				results <- ok
			}()
		}
		wg.Wait()
		close(results)
		wins := 0
		for ok := range results {
			if ok {
				wins++
			}
		}
		if wins != 1 {
			t.Errorf("%d of %d racing claims won, want 1", wins, n)
		}
	})
}
