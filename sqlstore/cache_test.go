package sqlstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// twoStores gives two Stores on one database, as two server processes have, each with a cache
// clock the test moves.
func twoStores(t *testing.T, db *sqlstore.DB) (a, b *bundle, real *clock) {
	a, b = setup(t, db), setup(t, db)
	b.clock = a.clock
	b.store.Now = a.clock.Now
	real = newClock(time.Unix(1000, 0))
	sqlstore.SetCacheClock(a.store, real.Now)
	sqlstore.SetCacheClock(b.store, real.Now)
	return a, b, real
}

// TestCacheMerchants: a merchant another process changed is seen within CacheTTL, one changed
// here at once, and one created anywhere at once (absence is not cached).
func TestCacheMerchants(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		a, b, real := twoStores(t, db)
		m := a.merchant(t)
		if got, err := a.store.MerchantByMchID(a.ctx, m.MchID); err != nil || got.APIKey != m.APIKey {
			t.Fatalf("first read: %v", err)
		}
		if _, err := a.store.MerchantByAppID(a.ctx, m.AppID); err != nil {
			t.Fatal(err)
		}
		// The other process changes the key (as a rotation would), straight in the table.
		box, _ := secret.NewBox(serverKey)
		newKey := secret.APIKey()
		if _, err := db.SQL().Exec(`UPDATE merchants SET api_key_enc = $1 WHERE id = $2`, box.Seal(newKey), m.ID); err != nil {
			t.Fatal(err)
		}
		key := func(what string) string {
			t.Helper()
			byMch, err1 := a.store.MerchantByMchID(a.ctx, m.MchID)
			byApp, err2 := a.store.MerchantByAppID(a.ctx, m.AppID)
			if err1 != nil || err2 != nil || byMch.APIKey != byApp.APIKey {
				t.Fatalf("%s: %v %v", what, err1, err2)
			}
			return byMch.APIKey
		}
		if key("within the bound") != m.APIKey {
			t.Errorf("the cached copy was not used within CacheTTL")
		}
		real.Add(sqlstore.CacheTTL)
		if key("after the bound") != newKey {
			t.Errorf("a change older than CacheTTL was not seen")
		}
		// A change made through this Store's hook is seen at once.
		newer := secret.APIKey()
		if _, err := db.SQL().Exec(`UPDATE merchants SET api_key_enc = $1 WHERE id = $2`, box.Seal(newer), m.ID); err != nil {
			t.Fatal(err)
		}
		a.store.ForgetMerchant(m.ID)
		if key("after forget") != newer {
			t.Errorf("ForgetMerchant did not drop the cached copy")
		}

		// Not found is asked again every time.
		if _, err := a.store.MerchantByAppID(a.ctx, "wxlater"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("absent: %v", err)
		}
		later := &medpay.Merchant{Kind: medpay.KindHospital, Name: "后来", AppID: "wxlater", MchID: "1999999999",
			SecretHash: secret.Hash("s"), APIKey: secret.APIKey(), CreatedAt: t0}
		if err := b.store.CreateMerchant(b.ctx, later); err != nil {
			t.Fatal(err)
		}
		if got, err := a.store.MerchantByAppID(a.ctx, "wxlater"); err != nil || got.ID != later.ID {
			t.Fatalf("created by the other process: %v", err)
		}

		// Callers get their own copy.
		got, _ := a.store.MerchantByAppID(a.ctx, "wxlater")
		got.APIKey = "changed by the caller"
		if again, _ := a.store.MerchantByAppID(a.ctx, "wxlater"); again.APIKey != later.APIKey {
			t.Errorf("a caller's change reached the cache")
		}
	})
}

// TestCacheTokens: a cached token obeys the cut that a newer token, issued by either process,
// makes to its expiry, and a token issued by the other process is usable at once.
func TestCacheTokens(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		a, b, _ := twoStores(t, db)
		issue := func(s *sqlstore.Store, at time.Time) *medpay.Token {
			t.Helper()
			k := &medpay.Token{Hash: secret.Hash(secret.Token()), AppID: "wxA", IssuedAt: at, ExpiresAt: at.Add(medpay.TokenTTL)}
			if err := s.CreateToken(a.ctx, k); err != nil {
				t.Fatal(err)
			}
			return k
		}
		valid := func(s *sqlstore.Store, k *medpay.Token, at time.Time) bool {
			t.Helper()
			_, err := s.TokenByHash(a.ctx, k.Hash, at)
			if err != nil && !errors.Is(err, medpay.ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		first := issue(b.store, t0)
		if !valid(a.store, first, t0) { // read and cached by a, a second before the cut
			t.Fatal("fresh token refused")
		}
		t1 := t0.Add(time.Second)
		second := issue(b.store, t1) // the other process cuts first to t1 + TokenOverlap
		if !valid(a.store, second, t1) {
			t.Fatal("a token issued by the other process was not usable at once")
		}
		if !valid(a.store, first, t1.Add(medpay.TokenOverlap-time.Millisecond)) {
			t.Error("first refused inside the overlap")
		}
		if valid(a.store, first, t1.Add(medpay.TokenOverlap)) {
			t.Error("a cached token outlived the cut made by the other process")
		}

		// Issued by the same process: its copies go at once.
		third := issue(a.store, t1.Add(2*time.Second))
		if !valid(a.store, third, t1.Add(2*time.Second)) || !valid(a.store, second, t1.Add(2*time.Second)) {
			t.Fatal("tokens refused")
		}
		fourth := issue(a.store, t1.Add(3*time.Second))
		_ = fourth
		if valid(a.store, third, t1.Add(3*time.Second).Add(medpay.TokenOverlap)) {
			t.Error("a cached token outlived the cut made by this process")
		}
	})
}

// TestCacheSuspension: SuspendedOf answers from its copy for CacheTTL, "not suspended" included.
// A suspension made by another process is refused here once CacheTTL has passed; one made, or
// lifted, through this Store at once.
func TestCacheSuspension(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		a, b, real := twoStores(t, db)
		m, other := a.merchant(t), a.merchant(t)
		suspendedOf := func(s *sqlstore.Store, what string) int64 {
			t.Helper()
			id, err := s.SuspendedOf(a.ctx, m.ID, other.ID)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			return id
		}
		audit := func(action string) *medpay.AuditEntry { return &medpay.AuditEntry{At: t0, Action: action} }
		if got := suspendedOf(a.store, "good standing"); got != 0 {
			t.Fatalf("good standing: suspended %d", got)
		}
		if got := suspendedOf(b.store, "good standing, b"); got != 0 {
			t.Fatalf("good standing: suspended %d", got)
		}

		// The other process suspends: seen here once the copy has aged out, and never later.
		if err := b.store.SetSuspended(b.ctx, m.ID, true, "欠费", audit("merchant.suspend")); err != nil {
			t.Fatal(err)
		}
		if got := suspendedOf(b.store, "suspending process"); got != m.ID {
			t.Errorf("the process that suspended did not refuse at once: %d", got)
		}
		if got := suspendedOf(a.store, "within the bound"); got != 0 {
			t.Errorf("the copy was not used within CacheTTL (got %d): this test measures nothing", got)
		}
		real.Add(sqlstore.CacheTTL - time.Millisecond)
		if got := suspendedOf(a.store, "just within the bound"); got != 0 {
			t.Errorf("the copy was dropped before CacheTTL (got %d)", got)
		}
		real.Add(time.Millisecond)
		if got := suspendedOf(a.store, "after the bound"); got != m.ID {
			t.Errorf("a suspension older than CacheTTL was not seen: %d", got)
		}
		// Either argument: the hospital acted for.
		if id, err := a.store.SuspendedOf(a.ctx, other.ID, m.ID); err != nil || id != m.ID {
			t.Errorf("SuspendedOf(other, suspended) = %d, %v", id, err)
		}

		// This process resumes and suspends again: each seen here at once, with no wait.
		if err := a.store.SetSuspended(a.ctx, m.ID, false, "", audit("merchant.resume")); err != nil {
			t.Fatal(err)
		}
		if got := suspendedOf(a.store, "resumed here"); got != 0 {
			t.Errorf("a resumption made here was not seen at once: %d", got)
		}
		if err := a.store.SetSuspended(a.ctx, other.ID, true, "", audit("merchant.suspend")); err != nil {
			t.Fatal(err)
		}
		if got := suspendedOf(a.store, "suspended here"); got != other.ID {
			t.Errorf("a suspension made here was not seen at once: %d", got)
		}
		// And b, which had read m as suspended, sees the resumption within the bound.
		real.Add(sqlstore.CacheTTL)
		if got := suspendedOf(b.store, "b after the bound"); got != other.ID {
			t.Errorf("b after the bound: %d", got)
		}
	})
}
