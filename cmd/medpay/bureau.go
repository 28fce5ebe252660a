package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/hsa"
	"github.com/medpay/medpay/national"
	"github.com/medpay/medpay/sqlstore"
)

// medpay bureau serve|institution create: the simulated bureau as its own process, with its own
// database, speaking the national protocol (national.md, docs/api/sandbox.md).
func runBureau(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "serve":
		return runBureauServe(ctx, args[1:], getenv, stdout, stderr)
	case len(args) > 1 && args[0] == "institution" && args[1] == "create":
		return runInstitutionCreate(ctx, args[2:], getenv, stdout, stderr)
	}
	return errors.New("usage: medpay bureau serve --db D --addr A | medpay bureau institution create --db D --org-codg C --name N --city CODE [--level N] [--public-key B64] [--json]")
}

// openBureau opens the bureau's database (its own tables only) and the simulator on it.
func openBureau(ctx context.Context, dsn string) (*sqlstore.DB, *bureau.Simulator, error) {
	db, err := sqlstore.OpenBare(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	sim, err := bureau.Open(ctx, db, nil)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, sim, nil
}

func runBureauServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("bureau serve", stderr)
	dsn := fs.String("db", "bureau.db", "the bureau's database: SQLite file, or a postgres:// URL")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	sandbox := fs.Bool("sandbox", true, "test persons and /sandbox/persons, /sandbox/payauth")
	hold := fs.Duration("hold", 2*time.Minute, "how long the answer to a bureau_timeout person is held at most")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, func(k string) string { return getenv(strings.Replace(k, "MEDPAY_", "MEDPAY_BUREAU_", 1)) }); err != nil {
		return err
	}
	logger, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	db, sim, err := openBureau(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if *sandbox {
		if err := sim.Seed(ctx); err != nil {
			return fmt.Errorf("seed sandbox persons: %w", err)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	sim.BaseURL = "http://" + ln.Addr().String()
	srv, err := bureau.NewServer(ctx, sim, bureau.ServerOptions{Sandbox: *sandbox, Logger: logger, Hold: *hold})
	if err != nil {
		return err
	}
	var h http.Handler = srv
	if point := getenv("MEDPAY_BUREAU_FAULT"); point != "" && *sandbox {
		// Crash testing: the bureau dies like kill -9 after it has acted on the named route and
		// before it answers.
		logger.Warn("fault injection armed", "route", point)
		h = faultAfter(srv, point)
	}
	httpServer := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: *hold + time.Minute, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	key, _ := sim.BureauKey(ctx)
	logger.Info("bureau serving", "addr", ln.Addr().String(), "db", sqlstore.Redact(*dsn))
	fmt.Fprintf(stdout, "bureau serving on %s (%s), public key %s\n", sim.BaseURL, db.Dialect(), hsa.EncodePublicKey(&key.PublicKey))
	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownWindow)
		err = httpServer.Shutdown(sctx)
		cancel()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// dieBeforeAnswer kills the process when the handler starts its answer.
type dieBeforeAnswer struct{ http.ResponseWriter }

func (d *dieBeforeAnswer) WriteHeader(int) { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
func (d *dieBeforeAnswer) Write([]byte) (int, error) {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	return 0, nil
}

// faultAfter serves the operation route with a writer that kills the process once the bureau
// has acted and is about to answer; other routes are served normally.
func faultAfter(h http.Handler, route string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == hsa.RoutePrefix+route {
			w = &dieBeforeAnswer{ResponseWriter: w}
		}
		h.ServeHTTP(w, r)
	})
}

func runInstitutionCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("bureau institution create", stderr)
	dsn := fs.String("db", "bureau.db", "the bureau's database")
	org := fs.String("org-codg", "", "the institution's code (e.g. H44030100001)")
	name := fs.String("name", "", "its name")
	city := fs.String("city", "", "its city (6-digit code)")
	level := fs.Int("level", 3, "hospital level: 0 community, 1, 2, 3")
	pub := fs.String("public-key", "", "the institution's SM2 public key, base64 (default: a key pair is made and printed once)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, func(k string) string { return getenv(strings.Replace(k, "MEDPAY_", "MEDPAY_BUREAU_", 1)) }); err != nil {
		return err
	}
	db, sim, err := openBureau(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	in, err := sim.CreateInstitution(ctx, bureau.InstitutionSpec{OrgCodg: *org, Name: *name, CityID: *city, Level: *level, PublicKey: *pub})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(in)
	}
	fmt.Fprintf(stdout, "appId            %s\nappSecret        %s\norgCodg          %s\nname             %s\nbureauPublicKey  %s\npublicKey        %s\n",
		in.AppID, in.AppSecret, in.OrgCodg, in.Name, in.BureauPublicKey, in.PublicKey)
	if in.PrivateKey != "" {
		fmt.Fprintf(stdout, "privateKey       %s   (shown once; the bureau does not keep it)\n", in.PrivateKey)
	}
	return nil
}

// bureauFlags are the platform's settings for a bureau across the network (--bureau-*).
type bureauFlags struct {
	url, appID, secret, secretFile, priv, privFile, pub, orgCodg *string
	timeout                                                      *time.Duration
}

func addBureauFlags(fs interface {
	String(name, value, usage string) *string
	Duration(name string, value time.Duration, usage string) *time.Duration
}) *bureauFlags {
	return &bureauFlags{
		url:        fs.String("bureau-url", "", "base URL of the bureau (national protocol); without it, sandbox mode uses the in-process simulator"),
		appID:      fs.String("bureau-app-id", "", "the platform's appId at the bureau"),
		secret:     fs.String("bureau-app-secret", "", "the platform's appSecret at the bureau"),
		secretFile: fs.String("bureau-app-secret-file", "", "file holding the appSecret"),
		priv:       fs.String("bureau-private-key", "", "the platform's SM2 private key, base64"),
		privFile:   fs.String("bureau-private-key-file", "", "file holding the private key"),
		pub:        fs.String("bureau-public-key", "", "the bureau's SM2 public key, base64"),
		orgCodg:    fs.String("bureau-org-codg", "", "the platform's institution code at the bureau"),
		timeout:    fs.Duration("bureau-timeout", 10*time.Second, "deadline of each call to the bureau"),
	}
}

func fromFile(value, file, what string) (string, error) {
	if value != "" || file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// client returns the bureau client, or nil when no --bureau-url was given.
func (f *bureauFlags) client() (*national.Client, error) {
	if *f.url == "" {
		return nil, nil
	}
	secret, err := fromFile(*f.secret, *f.secretFile, "--bureau-app-secret-file")
	if err != nil {
		return nil, err
	}
	privB64, err := fromFile(*f.priv, *f.privFile, "--bureau-private-key-file")
	if err != nil {
		return nil, err
	}
	if *f.appID == "" || secret == "" || privB64 == "" || *f.pub == "" {
		return nil, errors.New("--bureau-url needs --bureau-app-id, --bureau-app-secret, --bureau-private-key and --bureau-public-key")
	}
	priv, err := hsa.ParsePrivateKey(privB64)
	if err != nil {
		return nil, fmt.Errorf("--bureau-private-key: %w", err)
	}
	pub, err := hsa.ParsePublicKey(*f.pub)
	if err != nil {
		return nil, fmt.Errorf("--bureau-public-key: %w", err)
	}
	return &national.Client{OrgCodg: *f.orgCodg, HSA: &hsa.Client{BaseURL: strings.TrimRight(*f.url, "/"), AppID: *f.appID,
		AppSecret: secret, PrivateKey: priv, BureauKey: pub, Timeout: *f.timeout, HTTP: &http.Client{}}}, nil
}

// platformBureau is the bureau the platform talks to: the client when configured, else the
// in-process simulator on the platform's database.
func platformBureau(ctx context.Context, f *bureauFlags, db *sqlstore.DB) (medpay.Bureau, *bureau.Simulator, *national.Client, error) {
	c, err := f.client()
	if err != nil || c != nil {
		return c, nil, c, err
	}
	sim, err := bureau.Open(ctx, db, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	return sim, sim, nil, nil
}
