package bureautest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/hsa"
	"github.com/medpay/medpay/national"
	"github.com/medpay/medpay/sqlstore"
)

// Served is a simulated bureau served over real HTTP (loopback), with one institution registered
// for the caller.
type Served struct {
	URL         string
	DB          *sqlstore.DB
	Server      *httptest.Server
	Sim         *bureau.Simulator
	Institution *bureau.NewInstitution
	PrivateKey  string // the institution's, base64
}

// Serve migrates db's bureau tables, seeds the sandbox persons, registers an institution and
// serves the bureau until the test ends. now is the bureau's business clock (nil: time.Now);
// envelopes always use the real clock. hold bounds how long a bureau_timeout person's answer is
// held before the connection is dropped (0: a minute, past any caller's deadline).
func Serve(t testing.TB, db *sqlstore.DB, now func() time.Time, hold time.Duration) *Served {
	t.Helper()
	ctx := context.Background()
	sim, err := bureau.Open(ctx, db, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	in, err := sim.CreateInstitution(ctx, bureau.InstitutionSpec{OrgCodg: "P00000000001", Name: "medpay 平台", CityID: "440300", Level: 3})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	sim.BaseURL = "http://" + srv.Listener.Addr().String()
	if hold <= 0 {
		hold = time.Minute
	}
	h, err := bureau.NewServer(ctx, sim, bureau.ServerOptions{Sandbox: true, Hold: hold,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return &Served{URL: sim.BaseURL, DB: db, Server: srv, Sim: sim, Institution: in, PrivateKey: in.PrivateKey}
}

// HSA returns an envelope client of the institution with the deadline timeout per call.
func (s *Served) HSA(t testing.TB, timeout time.Duration) *hsa.Client {
	t.Helper()
	priv, err := hsa.ParsePrivateKey(s.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := hsa.ParsePublicKey(s.Institution.BureauPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &hsa.Client{BaseURL: s.URL, AppID: s.Institution.AppID, AppSecret: s.Institution.AppSecret, PrivateKey: priv,
		BureauKey: pub, Timeout: timeout, HTTP: &http.Client{}}
}

// Client returns the platform's bureau client for the institution.
func (s *Served) Client(t testing.TB, timeout time.Duration) *national.Client {
	return &national.Client{HSA: s.HSA(t, timeout), OrgCodg: s.Institution.OrgCodg}
}

// AuthCode has person idNo confirm on the bureau's authorisation page, as a payer's browser
// would (GET the page, POST the form with the PIN), and returns the authCode of the redirect.
func (s *Served) AuthCode(t testing.TB, idNo, scope string) string {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"appId": {s.Institution.AppID}, "redirect_uri": {"https://platform.example/cb"}, "state": {"st"}, "scope": {scope}}
	resp, err := noFollow.Get(s.URL + "/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("auth page: %d", resp.StatusCode)
	}
	q.Set("id_no", idNo)
	q.Set("pin", bureau.SandboxPIN)
	resp, err = noFollow.Post(s.URL+"/auth", "application/x-www-form-urlencoded", strings.NewReader(q.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Query().Get("state") != "st" || loc.Query().Get("authCode") == "" {
		t.Fatalf("auth confirm: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("authCode")
}
