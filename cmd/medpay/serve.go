package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/cash"
	medpayhttp "github.com/medpay/medpay/http"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/sqlstore"
)

// Background pacing.
const (
	recoverEvery   = 15 * time.Second
	recoverAfter   = 30 * time.Second // an order untouched this long mid-saga is taken over
	expireEvery    = 30 * time.Second
	shutdownWindow = 15 * time.Second
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	dsn := fs.String("db", "medpay.db", "database: SQLite file, or a postgres:// URL")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	baseURL := fs.String("base-url", "", "public URL used in pay_url, code_url, bind_url (default http://<addr>)")
	sandbox := fs.String("sandbox", "", "true/false: test persons, /sandbox/*, banner on payer pages (default: on for SQLite, off for PostgreSQL)")
	serverKey := fs.String("server-key", "", "64 hex characters sealing API keys (default for SQLite: a file beside the database)")
	payAppID := fs.String("pay-appid", "wxmedpay0000000001", "pay_appid returned by unifiedorder (the payment mini-program)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (serve HTTPS)")
	tlsKey := fs.String("tls-key", "", "TLS key file")
	allowPrivate := fs.Bool("allow-private-notify", false, "accept notify URLs on loopback or private networks outside the sandbox")
	noPINLimit := fs.Int64("micropay-no-pin-limit", payment.DefaultNoPINLimit, "fen: a micropay (刷码付) up to this amount settles without the payer's PIN; above it the payer confirms with the PIN (0: always)")
	var proxies listFlag
	fs.Var(&proxies, "trusted-proxy", "address or CIDR of a proxy whose X-Forwarded-For is believed (repeatable)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	pprofAddr := fs.String("pprof-addr", "", "serve net/http/pprof on this address (off by default; keep it private)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)

	isSandbox := !sqlstore.IsPostgres(*dsn)
	switch strings.ToLower(*sandbox) {
	case "":
	case "true", "1", "on", "yes":
		isSandbox = true
	case "false", "0", "off", "no":
		isSandbox = false
	default:
		return fmt.Errorf("--sandbox must be true or false, not %q", *sandbox)
	}
	if *baseURL == "" {
		scheme := "http"
		if *tlsCert != "" {
			scheme = "https"
		}
		*baseURL = scheme + "://" + *addr
	}
	*baseURL = strings.TrimRight(*baseURL, "/")

	store, err := openStore(ctx, *dsn, *serverKey)
	if err != nil {
		return err
	}
	db := store.DB()
	defer db.Close()

	now := time.Now
	sim := bureau.New(db, now)
	if isSandbox {
		if err := sim.Seed(ctx); err != nil {
			return fmt.Errorf("seed sandbox persons: %w", err)
		}
	}
	wallet := cash.New(db, now)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	nm, err := notify.NewMetrics(reg, db, now)
	if err != nil {
		return err
	}
	worker := notify.NewWorker(db, &http.Client{}, notify.Options{
		Now: now, Logger: logger, Metrics: nm, AllowPrivate: isSandbox || *allowPrivate,
	})
	pay := &payment.Service{Store: store, Bureau: sim, Cash: wallet, Now: now, Logger: logger, Notify: worker.Kick}
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
	srv := medpayhttp.NewServer(medpayhttp.Config{
		BaseURL: *baseURL, PayAppID: *payAppID, Sandbox: isSandbox,
		AllowPrivateNotify: *allowPrivate, TrustedProxies: proxies,
		MicropayNoPINLimit: *noPINLimit,
	}, medpayhttp.Deps{Store: store, Payment: pay, Bureau: sim, Cash: wallet, Logger: logger, Now: now, Registry: reg})

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
	httpServer := &http.Server{
		Handler:           srv,
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
	wg.Go(func() { every(bg, recoverEvery, func() { recoverLoop(bg, pay, logger) }) })
	wg.Go(func() { every(bg, expireEvery, func() { housekeeping(bg, pay, store, logger) }) })

	mode := "production"
	if isSandbox {
		mode = "sandbox"
	}
	logger.Info("medpay serving", "addr", ln.Addr().String(), "base_url", *baseURL, "mode", mode, "db", sqlstore.Redact(*dsn))
	fmt.Fprintf(stdout, "medpay serving on %s (%s, %s)\n", *baseURL, mode, db.Dialect())

	errc := make(chan error, 1)
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
