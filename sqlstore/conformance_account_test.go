package sqlstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

func (b *bundle) account(t *testing.T, kind, role string) *medpay.Account {
	t.Helper()
	a := &medpay.Account{Kind: kind, Email: fmt.Sprintf("User%d@Example.cn ", b.next()), Role: role,
		PasswordHash: "h", TOTPSecret: "JBSWY3DPEHPK3PXP", CreatedAt: t0}
	if err := b.store.CreateAccount(b.ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConformanceAccounts(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		a := b.account(t, medpay.AccountOperator, medpay.RoleAdmin)
		got, err := b.store.AccountByEmail(b.ctx, medpay.AccountOperator, a.Email)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != a.ID || got.TOTPSecret != "JBSWY3DPEHPK3PXP" || got.TOTPOn || got.Email != a.Email || !got.CreatedAt.Equal(t0.Truncate(time.Millisecond)) {
			t.Fatalf("read back %+v", got)
		}
		// Emails are stored normalised; the same email of the same kind conflicts, of another kind not.
		dup := &medpay.Account{Kind: medpay.AccountOperator, Email: " " + a.Email, Role: medpay.RoleSupport, CreatedAt: t0}
		if err := b.store.CreateAccount(b.ctx, dup, nil); !errors.Is(err, medpay.ErrConflict) {
			t.Fatalf("duplicate email: %v", err)
		}
		staff := &medpay.Account{Kind: medpay.AccountStaff, Email: a.Email, Role: medpay.RoleOwner, CreatedAt: t0}
		if err := b.store.CreateAccount(b.ctx, staff, nil); err != nil {
			t.Fatalf("same email, other kind: %v", err)
		}
		// The TOTP secret is sealed at rest.
		var sealed string
		db.SQL().QueryRowContext(b.ctx, `SELECT totp_enc FROM accounts WHERE id = $1`, a.ID).Scan(&sealed)
		if sealed == "" || sealed == "JBSWY3DPEHPK3PXP" {
			t.Fatalf("totp stored as %q", sealed)
		}
		if err := b.store.SetTOTP(b.ctx, a.ID, "NEWSECRET", true, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.store.AccountByID(b.ctx, a.ID); !got.TOTPOn || got.TOTPSecret != "NEWSECRET" {
			t.Fatalf("after SetTOTP %+v", got)
		}
		// A TOTP step is used once, and never an earlier one after a later.
		for _, c := range []struct {
			step int64
			want bool
		}{{100, true}, {100, false}, {99, false}, {101, true}} {
			if ok, err := b.store.ClaimTOTPStep(b.ctx, a.ID, c.step); err != nil || ok != c.want {
				t.Fatalf("claim step %d: %v %v, want %v", c.step, ok, err, c.want)
			}
		}
		if _, err := b.store.AccountByEmail(b.ctx, medpay.AccountOperator, "nobody@x"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
	})
}

func TestConformanceSessions(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		a := b.account(t, medpay.AccountOperator, medpay.RoleAdmin)
		if err := b.store.CreateSession(b.ctx, "h1", a.ID, false, t0); err != nil {
			t.Fatal(err)
		}
		s, err := b.store.Session(b.ctx, "h1", t0.Add(time.Minute))
		if err != nil || s.Account.ID != a.ID || s.MFA {
			t.Fatalf("session %+v %v", s, err)
		}
		if err := b.store.SetSessionMFA(b.ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		// Each use moves the idle deadline.
		at := t0.Add(time.Minute)
		for i := 0; i < 3; i++ {
			at = at.Add(medpay.SessionIdle - time.Second)
			if s, err := b.store.Session(b.ctx, "h1", at); err != nil || !s.MFA {
				t.Fatalf("use %d: %+v %v", i, s, err)
			}
		}
		if _, err := b.store.Session(b.ctx, "h1", at.Add(medpay.SessionIdle+time.Millisecond)); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("idle session: %v", err)
		}
		// The absolute end holds however often the session is used.
		b.store.CreateSession(b.ctx, "h2", a.ID, true, t0)
		for at := t0; at.Before(t0.Add(medpay.SessionAbsolute - time.Minute)); at = at.Add(10 * time.Minute) {
			if _, err := b.store.Session(b.ctx, "h2", at); err != nil {
				t.Fatalf("at %v: %v", at.Sub(t0), err)
			}
		}
		if _, err := b.store.Session(b.ctx, "h2", t0.Add(medpay.SessionAbsolute)); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("past absolute end: %v", err)
		}
		b.store.CreateSession(b.ctx, "h3", a.ID, true, t0)
		if err := b.store.DeleteSession(b.ctx, "h3"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Session(b.ctx, "h3", t0); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("deleted session: %v", err)
		}
	})
}

func TestConformanceLoginFailuresAreCountedAtomically(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		var wg sync.WaitGroup
		seen := make(chan int, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := b.store.RecordLoginFailure(b.ctx, "acct:x", t0)
				if err != nil {
					t.Error(err)
				}
				seen <- n
			}()
		}
		wg.Wait()
		close(seen)
		counts := map[int]bool{}
		for n := range seen {
			if counts[n] {
				t.Fatalf("count %d returned twice: failures were lost", n)
			}
			counts[n] = true
		}
		if n, _ := b.store.LoginFailures(b.ctx, "acct:x", t0.Add(time.Minute)); n != 20 {
			t.Fatalf("failures %d, want 20", n)
		}
		// A failure after the window starts counting again.
		later := t0.Add(medpay.LoginWindow + time.Second)
		if n, _ := b.store.LoginFailures(b.ctx, "acct:x", later); n != 0 {
			t.Fatalf("after the window %d", n)
		}
		if n, _ := b.store.RecordLoginFailure(b.ctx, "acct:x", later); n != 1 {
			t.Fatalf("new window starts at %d", n)
		}
		b.store.ClearLoginFailures(b.ctx, "acct:x")
		if n, _ := b.store.LoginFailures(b.ctx, "acct:x", later); n != 0 {
			t.Fatalf("after clear %d", n)
		}
	})
}

func TestConformanceAuditLogAppendOnly(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		for i := 0; i < 3; i++ {
			if err := b.store.Audit(b.ctx, &medpay.AuditEntry{At: t0, Actor: "operator:a", MerchantID: int64(i % 2), Action: fmt.Sprint("a", i)}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := b.store.AuditLog(b.ctx, 0, 10)
		if err != nil || len(all) != 3 || all[0].Action != "a2" {
			t.Fatalf("log %+v %v", all, err)
		}
		if one, _ := b.store.AuditLog(b.ctx, 1, 10); len(one) != 1 || one[0].Action != "a1" {
			t.Fatalf("merchant 1: %+v", one)
		}
		for _, q := range []string{`UPDATE audit_log SET detail = 'x'`, `DELETE FROM audit_log`} {
			if _, err := db.SQL().ExecContext(b.ctx, q); err == nil {
				t.Errorf("%s succeeded", q)
			}
		}
		if all, _ := b.store.AuditLog(b.ctx, 0, 10); len(all) != 3 || all[0].Detail != "" {
			t.Fatalf("log changed: %+v", all)
		}
	})
}

func (b *bundle) application(t *testing.T) (*medpay.Application, *medpay.Account) {
	t.Helper()
	a := &medpay.Application{Kind: medpay.KindHospital, Name: "申请医院", OrgCodg: "H44030300001", Level: 3,
		Cities: []string{"440300", "440100"}, CashMchID: "1900000109", MPAppID: "wx0123456789abcdef",
		ContactName: "张三", ContactPhone: "13800000000", ContactEmail: fmt.Sprintf("c%d@h.example", b.next()), CreatedAt: t0}
	owner := &medpay.Account{Email: a.ContactEmail, PasswordHash: "h"}
	ev := &medpay.Evidence{ContentType: "application/pdf", Filename: "c.pdf", Data: []byte("%PDF-1.4 \x00\xff")}
	if err := b.store.CreateApplication(b.ctx, a, ev, owner, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	return a, owner
}

func TestConformanceApplications(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		reviewer := b.account(t, medpay.AccountOperator, medpay.RoleReviewer)
		a, owner := b.application(t)
		if owner.Role != medpay.RoleOwner || owner.ApplicationID != a.ID || owner.MerchantID != 0 {
			t.Fatalf("owner %+v", owner)
		}
		ev, err := b.store.ApplicationEvidence(b.ctx, a.ID)
		if err != nil || string(ev.Data) != "%PDF-1.4 \x00\xff" || len(ev.SHA256) != 64 {
			t.Fatalf("evidence %+v %v", ev, err)
		}
		got, err := b.store.Application(b.ctx, a.ID)
		if err != nil || got.State != medpay.AppSubmitted || len(got.Cities) != 2 || got.ContactEmail != a.ContactEmail {
			t.Fatalf("application %+v %v", got, err)
		}
		if list, _ := b.store.Applications(b.ctx, medpay.AppSubmitted, 10); len(list) != 1 {
			t.Fatalf("submitted list %d", len(list))
		}
		// A city not asked for cannot be approved.
		audit := &medpay.AuditEntry{At: t0, ActorID: reviewer.ID, Actor: "operator:r", Action: "application.approve"}
		if _, err := b.store.ApproveApplication(b.ctx, a.ID, []string{"110000"}, reviewer, audit); err == nil {
			t.Fatal("approved a city not asked for")
		}
		m, err := b.store.ApproveApplication(b.ctx, a.ID, []string{"440300"}, reviewer, audit)
		if err != nil {
			t.Fatal(err)
		}
		if m.Name != a.Name || len(m.Cities) != 1 || m.Cities[0] != "440300" {
			t.Fatalf("merchant %+v", m)
		}
		if _, err := b.store.ApproveApplication(b.ctx, a.ID, []string{"440300"}, reviewer, audit); !errors.Is(err, sqlstore.ErrNotSubmitted) {
			t.Fatalf("second approval: %v", err)
		}
		if acct, _ := b.store.AccountByID(b.ctx, owner.ID); acct.MerchantID != m.ID {
			t.Fatalf("owner not linked: %+v", acct)
		}
		// The credentials are shown once and match the stored merchant.
		creds, err := b.store.TakeCredentials(b.ctx, m.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := b.store.MerchantByID(b.ctx, m.ID)
		if creds.APIKey != stored.APIKey || secret.Hash(creds.Secret) != stored.SecretHash || creds.MchID != stored.MchID {
			t.Fatalf("credentials %+v do not match the merchant", creds)
		}
		if _, err := b.store.TakeCredentials(b.ctx, m.ID, nil); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("credentials shown twice: %v", err)
		}
		// Rejection keeps the reason.
		a2, _ := b.application(t)
		if err := b.store.RejectApplication(b.ctx, a2.ID, "同意文件不清晰", reviewer, &medpay.AuditEntry{At: t0, Action: "application.reject"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.store.Application(b.ctx, a2.ID); got.State != medpay.AppRejected || got.Reason != "同意文件不清晰" {
			t.Fatalf("rejected %+v", got)
		}
		if err := b.store.RejectApplication(b.ctx, a2.ID, "x", reviewer, &medpay.AuditEntry{At: t0}); !errors.Is(err, sqlstore.ErrNotSubmitted) {
			t.Fatalf("second rejection: %v", err)
		}
		if log, _ := b.store.AuditLog(b.ctx, 0, 10); len(log) < 4 {
			t.Fatalf("audit entries %d", len(log))
		}
	})
}

func TestConformanceKeyRotationAndControls(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		oldKey, oldHash := m.APIKey, m.SecretHash
		creds, err := b.store.RotateKeys(b.ctx, m.ID, time.Hour, &medpay.AuditEntry{At: t0, Action: "keys.rotate"})
		if err != nil {
			t.Fatal(err)
		}
		now, _ := b.store.MerchantByID(b.ctx, m.ID)
		if now.APIKey != creds.APIKey || now.APIKey == oldKey || now.SecretHash != secret.Hash(creds.Secret) {
			t.Fatalf("rotation did not take")
		}
		retired, err := b.store.RetiredKeys(b.ctx, m.ID, t0.Add(59*time.Minute))
		if err != nil || len(retired) != 1 || retired[0].APIKey != oldKey || retired[0].SecretHash != oldHash {
			t.Fatalf("retired %+v %v", retired, err)
		}
		if retired, _ := b.store.RetiredKeys(b.ctx, m.ID, t0.Add(time.Hour)); len(retired) != 0 {
			t.Fatalf("retired key valid after the overlap: %+v", retired)
		}
		// A second rotation shortens nothing already shorter and keeps one overlap at most.
		b.store.RotateKeys(b.ctx, m.ID, time.Minute, &medpay.AuditEntry{At: t0.Add(time.Second), Action: "keys.rotate"})
		if retired, _ := b.store.RetiredKeys(b.ctx, m.ID, t0.Add(2*time.Minute)); len(retired) != 0 {
			t.Fatalf("after a short second rotation: %d retired keys valid", len(retired))
		}

		if s, _ := b.store.Suspended(b.ctx, m.ID); s {
			t.Fatal("suspended from the start")
		}
		b.store.SetSuspended(b.ctx, m.ID, true, "欠费", &medpay.AuditEntry{At: t0, Action: "merchant.suspend"})
		if s, _ := b.store.Suspended(b.ctx, m.ID); !s {
			t.Fatal("not suspended")
		}
		other := b.merchant(t)
		if id, err := b.store.SuspendedOf(b.ctx, other.ID, m.ID); err != nil || id != m.ID {
			t.Fatalf("SuspendedOf %d %v", id, err)
		}
		if id, _ := b.store.SuspendedOf(b.ctx, other.ID, other.ID); id != 0 {
			t.Fatalf("SuspendedOf a merchant in good standing: %d", id)
		}
		rows, err := b.store.Merchants(b.ctx, 10)
		if err != nil || len(rows) != 2 || !rows[1].Suspended || rows[1].Reason != "欠费" || rows[1].MchID != m.MchID || rows[0].Suspended {
			t.Fatalf("merchants %+v %v", rows, err)
		}
		b.store.SetSuspended(b.ctx, m.ID, false, "", &medpay.AuditEntry{At: t0, Action: "merchant.resume"})
		if s, _ := b.store.Suspended(b.ctx, m.ID); s {
			t.Fatal("still suspended")
		}
		b.store.SetMerchantCities(b.ctx, m.ID, []string{"440100", "510100"}, &medpay.AuditEntry{At: t0, Action: "c"})
		b.store.SetRefundIPs(b.ctx, m.ID, []string{"10.0.0.0/8"}, &medpay.AuditEntry{At: t0, Action: "i"})
		got, _ := b.store.MerchantByID(b.ctx, m.ID)
		if len(got.Cities) != 2 || got.Cities[1] != "510100" || len(got.RefundIPs) != 1 {
			t.Fatalf("after updates %+v", got)
		}
	})
}

func TestConformanceInvitations(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := b.merchant(t)
		a := &medpay.Account{Kind: medpay.AccountStaff, Email: "new@h.example", Role: medpay.RoleStaff, MerchantID: m.ID, CreatedAt: t0}
		if err := b.store.Invite(b.ctx, a, "inv", t0.Add(time.Hour), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.AcceptInvite(b.ctx, "inv", "pw", t0.Add(2*time.Hour)); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("expired invitation: %v", err)
		}
		got, err := b.store.AcceptInvite(b.ctx, "inv", "pw", t0.Add(time.Minute))
		if err != nil || got.PasswordHash != "pw" || got.MerchantID != m.ID {
			t.Fatalf("accepted %+v %v", got, err)
		}
		if _, err := b.store.AcceptInvite(b.ctx, "inv", "pw2", t0.Add(time.Minute)); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("invitation used twice: %v", err)
		}
		if staff, _ := b.store.StaffOf(b.ctx, m.ID); len(staff) != 1 {
			t.Fatalf("staff %d", len(staff))
		}
	})
}

func TestConformanceOrderSearchAndDashboard(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m1, m2 := b.merchant(t), b.merchant(t)
		o1 := b.newOrder(m1, "T1")
		o2 := b.newOrder(m2, "T2")
		o2.CreatedAt, o2.UpdatedAt = t0.Add(25*time.Hour), t0.Add(25*time.Hour)
		prov := b.merchant(t)
		o2.ProviderID = prov.ID
		for _, o := range []*medpay.Order{o1, o2} {
			if err := b.store.CreateOrder(b.ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			f    sqlstore.OrderFilter
			want int
		}{
			{sqlstore.OrderFilter{}, 2},
			{sqlstore.OrderFilter{MerchantID: m1.ID}, 1},
			{sqlstore.OrderFilter{Query: "T2"}, 1},
			{sqlstore.OrderFilter{Query: o1.MedTransID}, 1},
			{sqlstore.OrderFilter{State: string(medpay.StateSuccess)}, 0},
			{sqlstore.OrderFilter{State: string(o1.State)}, 2},
			{sqlstore.OrderFilter{From: t0.Add(24 * time.Hour)}, 1},
			{sqlstore.OrderFilter{To: t0.Add(time.Hour)}, 1},
			{sqlstore.OrderFilter{MerchantID: m1.ID, Query: "T2"}, 0},
			{sqlstore.OrderFilter{MerchantID: prov.ID}, 1},
		} {
			got, err := b.store.Orders(b.ctx, c.f)
			if err != nil || len(got) != c.want {
				t.Errorf("%+v: %d orders (%v), want %d", c.f, len(got), err, c.want)
			}
		}
		pts, err := b.store.OrderPoints(b.ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
		if err != nil || len(pts) != 1 || pts[0].CashFee != 300 || pts[0].InsuranceFee != 700 {
			t.Fatalf("points %+v %v", pts, err)
		}
		if _, _, dead, err := b.store.NotifyLag(b.ctx, t0, t0.Add(time.Hour)); err != nil || dead != 0 {
			t.Fatalf("lag: dead %d %v", dead, err)
		}
	})
}

func TestConformanceOnboardAndMerchantLists(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		m := &medpay.Merchant{Kind: medpay.KindPharmacy, Name: "大药房", Cities: []string{"440300"}, CreatedAt: t0}
		creds, err := b.store.Onboard(b.ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.store.MerchantByAppID(b.ctx, creds.AppID)
		if err != nil || got.ID != m.ID || got.APIKey != creds.APIKey || got.SecretHash != secret.Hash(creds.Secret) || got.MchID != creds.MchID {
			t.Fatalf("onboarded %+v %v (creds %+v)", got, err, creds)
		}
		if has, _ := b.store.HasPendingCredentials(b.ctx, m.ID); has {
			t.Fatal("merchant create keeps no credentials to show later")
		}

		o := b.createOrder(t, m, "T-r")
		for _, r := range []*medpay.Refund{newRefund(o, "A", 100, 0), newRefund(o, "B", 0, 200)} {
			if _, err := b.store.CreateRefund(b.ctx, o.ID, func(*medpay.Order, []*medpay.Refund) (*medpay.Refund, error) { return r, nil }); err != nil {
				t.Fatal(err)
			}
		}
		if rs, err := b.store.RefundsOfMerchant(b.ctx, m.ID, "", 10); err != nil || len(rs) != 2 || rs[0].HospOutRefund != "B" {
			t.Fatalf("refunds %v %v", len(rs), err)
		}
		if rs, _ := b.store.RefundsOfMerchant(b.ctx, m.ID, medpay.RefundSuccess, 10); len(rs) != 0 {
			t.Fatalf("state filter: %d", len(rs))
		}
		if rs, _ := b.store.RefundsOfMerchant(b.ctx, b.merchant(t).ID, "", 10); len(rs) != 0 {
			t.Fatalf("another merchant's refunds: %d", len(rs))
		}

		// Notification lag: written at t0, delivered 3 s later; one dead.
		for i, st := range []string{"delivered", "dead", "pending"} {
			if _, err := db.SQL().ExecContext(b.ctx, `INSERT INTO outbox (notify_id, merchant_id, kind, url, body, state, next_at, created_at, done_at)
				VALUES ($1, $2, 'PAY', 'http://h/n', '<xml/>', $3, 0, $4, $5)`, fmt.Sprint("N", i), m.ID, st, sqlstore.MS(t0), sqlstore.MS(t0.Add(3*time.Second))); err != nil {
				t.Fatal(err)
			}
		}
		lags, at, dead, err := b.store.NotifyLag(b.ctx, t0, t0.Add(time.Hour))
		if err != nil || len(lags) != 1 || lags[0] != 3*time.Second || !at[0].Equal(t0.Add(3*time.Second).Truncate(time.Millisecond)) || dead != 1 {
			t.Fatalf("lag %v at %v dead %d %v", lags, at, dead, err)
		}
		if deadAt, err := b.store.DeadSince(b.ctx, t0, t0.Add(time.Hour)); err != nil || len(deadAt) != 1 {
			t.Fatalf("dead since %v %v", deadAt, err)
		}
		if deadAt, _ := b.store.DeadSince(b.ctx, t0.Add(time.Hour), t0.Add(2*time.Hour)); len(deadAt) != 0 {
			t.Fatalf("dead outside the range %v", deadAt)
		}
	})
}
