// Package http serves the platform over net/http: the open API hospitals call, the payer's pages,
// the sandbox helper API and the operational endpoints. routes.go lists every route.
package http

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/reconcile"
	"github.com/medpay/medpay/sqlstore"
)

// Config holds the server's settings.
type Config struct {
	BaseURL  string // public URL used in pay_url, code_url, bind_url (no trailing slash)
	PayAppID string // the payment mini-program's appid, returned as pay_appid
	Sandbox  bool   // enables /sandbox/* and the banner on payer pages
	// AllowPrivateNotify accepts notify URLs on loopback or private networks outside the sandbox.
	AllowPrivateNotify bool
	// TrustedProxies may set X-Forwarded-For (addresses or CIDR prefixes).
	TrustedProxies []string
	// MicropayNoPINLimit is the amount in fen (cash + insurance) up to which a micropay (刷码付)
	// settles without the payer's PIN; above it the order waits USERPAYING for the payer to
	// confirm. 0 means payment.DefaultNoPINLimit (1 000 元); negative asks for the PIN every time.
	MicropayNoPINLimit int64
	// CallbackIPs are the platform's egress addresses, answered by /cgi-bin/getcallbackip.
	CallbackIPs []string
	// MetricsElsewhere leaves /metrics out of the routes: it is served on another address
	// (MetricsHandler). MetricsToken, when set, is the bearer token /metrics requires.
	MetricsElsewhere bool
	MetricsToken     string
	// Register and CashMerchants check applications' 定点 codes and cash-channel merchant ids
	// (apply.go); nil means the sandbox's format checks, or refusal outside the sandbox.
	Register      medpay.InstitutionRegister
	CashMerchants medpay.MerchantChecker
}

// Server is the platform's HTTP server.
type Server struct {
	cfg     Config
	store   *sqlstore.Store
	payment *payment.Service
	bureau  medpay.Bureau
	sandbox medpay.BureauSandbox
	cities  []medpay.City
	cash    Wallets
	books   reconcile.CashBooks
	cashAPI http.Handler
	v3      http.Handler
	logger  *slog.Logger
	now     func() time.Time
	metrics *metrics
	reg     *prometheus.Registry
	handler http.Handler
}

// Wallets are the simulated cash channel's wallets, whose sandbox scenario follows the person a
// payer binds (*cash.Simulator in process, cash.RemoteWallets for a served channel).
type Wallets interface {
	SetDeclining(ctx context.Context, payer string, declining bool) error
}

// Deps are the server's collaborators.
type Deps struct {
	Store   *sqlstore.Store
	Payment *payment.Service
	Bureau  medpay.Bureau
	// Sandbox is the simulated bureau's sandbox side (test persons, authorisation without the
	// page); nil when the bureau is not a simulator.
	Sandbox medpay.BureauSandbox
	// Cities are the coverage cities the bind page offers.
	Cities []medpay.City
	Cash   Wallets
	// CashBooks is the cash channel's journal for reconciliation (cash.Books).
	CashBooks reconcile.CashBooks
	CashAPI   http.Handler // the simulated cash channel over APIv3, mounted at /cash in the sandbox
	V3        http.Handler // 医保 2.0 (package medins), mounted at /v3/ and /sandbox/v3/
	Logger    *slog.Logger
	Now       func() time.Time
	Registry  *prometheus.Registry // metrics are registered here and served at /metrics
}

// NewServer returns a server; it registers its metrics on d.Registry.
func NewServer(cfg Config, d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, store: d.Store, payment: d.Payment, bureau: d.Bureau, sandbox: d.Sandbox, cities: d.Cities, cash: d.Cash, books: d.CashBooks, cashAPI: d.CashAPI, v3: d.V3,
		logger: d.Logger, now: d.Now, reg: d.Registry, metrics: newMetrics(d.Registry)}
	s.handler = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// health answers 200 once the database is reachable.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.DB().Ping(ctx); err != nil {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok"))
}
