package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	medpayhttp "github.com/medpay/medpay/http"
	"github.com/medpay/medpay/medins"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/reconcile"
	"github.com/medpay/medpay/sqlstore"
)

// realCounterparties refuses production mode on simulated money: outside the sandbox both the
// bureau and the cash channel must be parties on the network, or a pay_url would be paid from
// the simulator's wallets and the hospital told it was paid.
func realCounterparties(bureauURL, cashURL string) error {
	var missing []string
	if bureauURL == "" {
		missing = append(missing, "--bureau-url")
	}
	if cashURL == "" {
		missing = append(missing, "--cash-url")
	}
	if len(missing) > 0 {
		return fmt.Errorf("production mode (--sandbox=false) pays real money and needs a remote bureau and cash channel: missing %s (or run with --sandbox)",
			strings.Join(missing, " and "))
	}
	return nil
}

// Background pacing.
const (
	recoverEvery   = 15 * time.Second
	recoverAfter   = 30 * time.Second // an order untouched this long mid-saga is taken over
	expireEvery    = 30 * time.Second
	shutdownWindow = 15 * time.Second
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stdout)
	dsn := fs.String("db", "medpay.db", "database: SQLite file, or a postgres:// URL")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	baseURL := fs.String("base-url", "", "public URL used in pay_url, code_url, bind_url (default http://<addr>)")
	var sandbox optBool
	fs.Var(&sandbox, "sandbox", "test persons, /sandbox/*, banner on payer pages (default: on for SQLite, off for PostgreSQL; --sandbox=false to turn off)")
	serverKey := fs.String("server-key", "", "64 hex characters sealing API keys (default for SQLite: a file beside the database)")
	payAppID := fs.String("pay-appid", "wxmedpay0000000001", "pay_appid returned by unifiedorder (the payment mini-program)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (serve HTTPS)")
	tlsKey := fs.String("tls-key", "", "TLS key file")
	allowPrivate := fs.Bool("allow-private-notify", false, "accept notify URLs on loopback or private networks outside the sandbox")
	noPINLimit := fs.Int64("micropay-no-pin-limit", payment.DefaultNoPINLimit, "fen: a micropay (刷码付) up to this amount settles without the payer's PIN; above it the payer confirms with the PIN (0: always)")
	var proxies listFlag
	fs.Var(&proxies, "trusted-proxy", "address or CIDR of a proxy whose X-Forwarded-For is believed (repeatable)")
	var callbackIPs listFlag
	fs.Var(&callbackIPs, "callback-ip", "an egress address of the platform, answered by /cgi-bin/getcallbackip (repeatable)")
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics on this address only, not on --addr (e.g. 127.0.0.1:9090)")
	metricsToken := fs.String("metrics-token", "", "bearer token that /metrics requires (Authorization: Bearer <token>)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	pprofAddr := fs.String("pprof-addr", "", "serve net/http/pprof on this address (off by default; keep it private)")
	bf := addBureauFlags(fs)
	cashFlags := addCashGatewayFlags(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// Flag parsing stops at the first argument that is not a flag: '--sandbox true' would
		// silently drop every flag after it.
		return fmt.Errorf("unexpected argument %q: serve takes flags only, and the flags after it were not read "+
			"(a boolean flag takes its value with '=', e.g. --sandbox=true)", fs.Arg(0))
	}
	isSandbox := sandbox.or(!sqlstore.IsPostgres(*dsn))
	if !isSandbox {
		if err := realCounterparties(*bf.url, *cashFlags.url); err != nil {
			return err
		}
	}
	// The remote cash channel's credentials are checked before anything starts.
	remoteCash, err := cashFlags.gateway()
	if err != nil {
		return err
	}
	logger, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)

	for _, ip := range callbackIPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("--callback-ip: %q is not an IP address", ip)
		}
	}
	if *baseURL == "" {
		scheme := "http"
		if *tlsCert != "" {
			scheme = "https"
		}
		*baseURL = scheme + "://" + defaultHost(*addr, stderr)
	}
	*baseURL = strings.TrimRight(*baseURL, "/")

	store, err := openStore(ctx, *dsn, *serverKey)
	if err != nil {
		return err
	}
	db := store.DB()
	defer db.Close()
	// Personal data written before it was sealed at rest is sealed now.
	if n, err := store.SealPersonalData(ctx); err != nil {
		return fmt.Errorf("seal personal data: %w", err)
	} else if n > 0 {
		logger.Info("sealed personal data at rest", "rows", n)
	}

	now := time.Now
	bu, sim, remote, err := platformBureau(ctx, bf, db)
	if err != nil {
		return err
	}
	var bureauSandbox medpay.BureauSandbox
	var bureauServer http.Handler
	if sim != nil {
		// The in-process simulator, also served at <base-url>/bureau (its authorisation page;
		// its sandbox API in sandbox mode).
		sim.BaseURL = *baseURL + "/bureau"
		bureauSandbox = sim
		if isSandbox {
			if err := sim.Seed(ctx); err != nil {
				return fmt.Errorf("seed sandbox persons: %w", err)
			}
		}
		if bureauServer, err = bureau.NewServer(ctx, sim, bureau.ServerOptions{Sandbox: isSandbox, Logger: logger}); err != nil {
			return err
		}
	} else if isSandbox {
		bureauSandbox = remote // the simulated bureau's sandbox API
	}
	wallet := cash.New(db, now)
	var cashChannel *cash.Channel // the simulated channel over APIv3, at <base-url>/cash
	var localCash *cash.Local     // the platform's in-process gateway to it
	var gateway medpay.CashGateway
	var sandboxPay func(ctx context.Context, prepayID, pin string) (*medpay.CashPayment, error)
	var wallets medpayhttp.Wallets = wallet
	if remoteCash != nil {
		gateway = remoteCash
		if isSandbox {
			hc := &http.Client{Timeout: 30 * time.Second}
			sandboxPay, wallets = cash.RemoteSandboxPay(*cashFlags.url, hc), cash.RemoteWallets{Base: *cashFlags.url, HTTP: hc}
		}
	}
	if isSandbox {
		if cashChannel, err = sandboxCashChannel(ctx, db, store.Box(), now, logger); err != nil {
			return fmt.Errorf("cash channel: %w", err)
		}
		if remoteCash == nil {
			// The platform pays through the channel it serves, by Go calls.
			if localCash, err = sandboxGateway(ctx, db, store.Box(), cashChannel, *baseURL+"/cash/cashier"); err != nil {
				return fmt.Errorf("cash channel: %w", err)
			}
			gateway, sandboxPay = localCash, localCash.SandboxPay
		}
	}
	// The channel's journal for the console's reconciliation: the channel this process serves
	// (the platform's merchant there), or none when the channel runs apart.
	var books reconcile.CashBooks
	if remoteCash == nil && cashChannel != nil {
		b := cash.Books{DB: db}
		db.SQL().QueryRowContext(ctx, `SELECT mchid FROM sandbox_cash_merchant WHERE id = 1`).Scan(&b.MchID)
		books = b
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	nm, err := notify.NewMetrics(reg, db, now)
	if err != nil {
		return err
	}
	var v3 *medins.Handler
	worker := notify.NewWorker(db, &http.Client{}, notify.Options{
		Now: now, Logger: logger, Metrics: nm, AllowPrivate: isSandbox || *allowPrivate,
		SignV3: func(h http.Header, body []byte) error { return v3.SignCallback(h, body) },
	})
	pay := &payment.Service{Store: store, Bureau: bu, Cash: wallet, Now: now, Logger: logger, Notify: worker.Kick,
		Gateway: gateway, CashNotifyURL: *baseURL + "/notify/cash", Sandbox: bureauSandbox, SandboxPay: sandboxPay}
	if localCash != nil {
		// Payments at the channel's cashier reach the saga at once, by Go call; one this misses
		// (a crash after the channel's commit) is found by recovery's query.
		localCash.OnPaid(func(ctx context.Context, p *medpay.CashPayment) {
			if err := pay.CashPaid(ctx, p); err != nil {
				logger.Warn("cash payment left to recovery", "out_trade_no", p.OutTradeNo, "err", err)
			}
		})
	}
	if point := getenv("MEDPAY_FAULT"); point != "" && isSandbox {
		// Crash testing: die like kill -9 at a named point of the payment saga.
		logger.Warn("fault injection armed", "point", point)
		pay.Fault = func(p string) {
			if p == point {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	if *noPINLimit <= 0 {
		*noPINLimit = -1 // every micropay asks for the PIN (in Config, 0 would mean the default)
	}
	if v3, err = newV3(ctx, store, sim, wallet, *baseURL, isSandbox, worker.Kick, logger, now); err != nil {
		return err
	}
	srv := medpayhttp.NewServer(medpayhttp.Config{
		BaseURL: *baseURL, PayAppID: *payAppID, Sandbox: isSandbox,
		AllowPrivateNotify: *allowPrivate, TrustedProxies: proxies,
		MicropayNoPINLimit: *noPINLimit, CallbackIPs: callbackIPs,
		MetricsElsewhere: *metricsAddr != "", MetricsToken: *metricsToken,
	}, medpayhttp.Deps{Store: store, Payment: pay, Bureau: bu, Sandbox: bureauSandbox,
		Cities: bureau.CityList(), Cash: wallets, CashBooks: books, CashAPI: cashAPI(cashChannel), V3: v3, Logger: logger, Now: now, Registry: reg})

	// Orders a crash left mid-saga are finished or undone before new work is taken.
	if n, err := pay.RecoverOnce(ctx, now().Add(time.Hour), 1000); err != nil {
		logger.Error("recovery at start", "err", err)
	} else if n > 0 {
		logger.Info("recovered orders at start", "count", n)
	}
	if n, err := pay.RecoverRefunds(ctx, now().Add(time.Hour), 1000); err != nil {
		logger.Error("refund recovery at start", "err", err)
	} else if n > 0 {
		logger.Info("recovered refunds at start", "count", n)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// /metrics on an address of its own (an operations network), when asked.
	var metricsServer *http.Server
	var mln net.Listener
	if *metricsAddr != "" {
		if mln, err = net.Listen("tcp", *metricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		metricsServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		logger.Info("metrics serving", "addr", mln.Addr().String())
	}
	var handler http.Handler = srv
	if bureauServer != nil {
		mux := http.NewServeMux()
		mux.Handle("/bureau/", http.StripPrefix("/bureau", bureauServer))
		mux.Handle("/", srv)
		handler = mux
	}
	httpServer := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if *pprofAddr != "" {
		stopPprof, err := servePprof(*pprofAddr, logger)
		if err != nil {
			stopBG()
			return err
		}
		defer stopPprof()
	}
	wg.Go(func() { worker.Run(bg) })
	if cashChannel != nil {
		wg.Go(func() { cashChannel.RunCallbacks(bg) })
	}
	wg.Go(func() { every(bg, recoverEvery, func() { recoverLoop(bg, pay, logger) }) })
	wg.Go(func() { every(bg, expireEvery, func() { housekeeping(bg, pay, store, logger) }) })
	wg.Go(func() { every(bg, recoverEvery, func() { recoverV3(bg, v3, logger) }) })

	mode := "production"
	if isSandbox {
		mode = "sandbox"
	}
	bureauAt := "in process"
	if remote != nil {
		bureauAt = remote.HSA.BaseURL
	}
	logger.Info("medpay serving", "addr", ln.Addr().String(), "base_url", *baseURL, "mode", mode, "db", sqlstore.Redact(*dsn), "bureau", bureauAt)
	fmt.Fprintf(stdout, "medpay serving on %s (%s, %s)\n", *baseURL, mode, db.Dialect())

	errc := make(chan error, 2)
	if metricsServer != nil {
		go func() { errc <- metricsServer.Serve(mln) }()
	}
	go func() {
		if *tlsCert != "" {
			errc <- httpServer.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			errc <- httpServer.Serve(ln)
		}
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
		logger.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownWindow)
		err = httpServer.Shutdown(sctx)
		cancel()
	}
	if metricsServer != nil {
		metricsServer.Close()
	}
	stopBG()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// every runs fn now and then at each tick until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func recoverLoop(ctx context.Context, pay *payment.Service, logger *slog.Logger) {
	if n, err := pay.RecoverOnce(ctx, time.Now().Add(-recoverAfter), 100); err != nil {
		logger.Error("recovery", "err", err)
	} else if n > 0 {
		logger.Info("recovered orders", "count", n)
	}
	if n, err := pay.RecoverRefunds(ctx, time.Now().Add(-recoverAfter), 100); err != nil {
		logger.Error("refund recovery", "err", err)
	} else if n > 0 {
		logger.Info("recovered refunds", "count", n)
	}
}

func housekeeping(ctx context.Context, pay *payment.Service, store *sqlstore.Store, logger *slog.Logger) {
	if _, err := pay.ExpireOnce(ctx, 500); err != nil {
		logger.Error("expire orders", "err", err)
	}
	if err := store.PurgeNonces(ctx, time.Now()); err != nil {
		logger.Error("purge nonces", "err", err)
	}
}

// defaultHost is the host:port of the default base URL for a listen address: an address without
// a host (":8096") or a wildcard one listens on every interface, so the URL names the loopback
// address, with a warning that phones need --base-url.
func defaultHost(addr string, stderr io.Writer) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, _ := netip.ParseAddr(host); host != "" && !ip.IsUnspecified() {
		return addr
	}
	fmt.Fprintf(stderr, "medpay: --addr %s listens on every interface; pay_url, code_url and bind_url will use http://127.0.0.1:%s, "+
		"which only this machine can open: give --base-url with the address phones reach\n", addr, port)
	return net.JoinHostPort("127.0.0.1", port)
}
