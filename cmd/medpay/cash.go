package main

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wxpay"
)

const cashUsage = `usage:
  medpay cash serve --db D --addr A            run the simulated cash channel alone (APIv3 subset, cashier, callbacks)
  medpay cash merchant create --db D [--json]  register a merchant at that channel and print its credentials
`

func runCash(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "serve":
		return runCashServe(ctx, args[1:], getenv, stdout, stderr)
	case len(args) > 1 && args[0] == "merchant" && args[1] == "create":
		return runCashMerchantCreate(ctx, args[2:], getenv, stdout, stderr)
	}
	fmt.Fprint(stderr, cashUsage)
	return errors.New("unknown cash command")
}

// channelKey is the key sealing a channel served alone: given, or kept in a file beside its
// SQLite database (made at the first start).
func channelKey(dsn, given string) ([]byte, error) {
	if given != "" {
		return secret.ParseKey(given)
	}
	if sqlstore.IsPostgres(dsn) {
		return nil, errors.New("--server-key (MEDPAY_SERVER_KEY) is required with PostgreSQL: 64 hex characters, e.g. from `openssl rand -hex 32`")
	}
	return secret.LoadOrCreateKeyFile(keyFile(dsn))
}

// openChannel opens the channel's own database (without the platform's schema) and the channel.
func openChannel(ctx context.Context, dsn, serverKey string, logger *slog.Logger) (*cash.Channel, *sqlstore.DB, error) {
	key, err := channelKey(dsn, serverKey)
	if err != nil {
		return nil, nil, err
	}
	box, err := secret.NewBox(key)
	if err != nil {
		return nil, nil, err
	}
	db, err := sqlstore.OpenBare(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	// The simulated channel is a sandbox: notify URLs on loopback and private networks are fine.
	ch, err := cash.NewChannel(ctx, db, box, cash.Options{Logger: logger, AllowPrivate: true})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return ch, db, nil
}

func runCashServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("cash serve", stderr)
	dsn := fs.String("db", "cash.db", "the channel's database: SQLite file, or a postgres:// URL")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	serverKey := fs.String("server-key", "", "64 hex characters sealing the keys kept in the database (default for SQLite: a file beside it)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	logger, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	ch, db, err := openChannel(ctx, *dsn, *serverKey, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: ch.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { ch.RunCallbacks(bg) })
	_, keyID := ch.PublicKey()
	logger.Info("medpay cash serving", "addr", ln.Addr().String(), "db", sqlstore.Redact(*dsn), "platform_public_key_id", keyID)
	fmt.Fprintf(stdout, "medpay cash serving on http://%s (%s)\n", ln.Addr(), db.Dialect())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownWindow)
		err = srv.Shutdown(sctx)
		cancel()
	}
	stopBG()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func runCashMerchantCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("cash merchant create", stderr)
	dsn := fs.String("db", "cash.db", "the channel's database: SQLite file, or a postgres:// URL")
	serverKey := fs.String("server-key", "", "64 hex characters sealing the keys kept in the database (default for SQLite: a file beside it)")
	mchid := fs.String("mchid", "", "merchant number (default: a new 10-digit number)")
	pubFile := fs.String("public-key", "", "the merchant's RSA public key (PEM); without it a key pair is generated and the private key printed once")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *mchid != "" && !mchIDPattern.MatchString(*mchid) {
		return fmt.Errorf("--mchid %q is not 10 digits", *mchid)
	}
	var pub *rsa.PublicKey
	if *pubFile != "" {
		data, err := os.ReadFile(*pubFile)
		if err != nil {
			return err
		}
		k, err := apiv3.ParsePublicKey(data)
		if err != nil {
			return fmt.Errorf("--public-key: %w", err)
		}
		pub = k
	}
	ch, db, err := openChannel(ctx, *dsn, *serverKey, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer db.Close()
	cr, err := ch.CreateMerchant(ctx, *mchid, pub)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(cr)
	}
	fmt.Fprintf(stdout, "Merchant registered at the cash channel. Keep these now: the APIv3 key and private key are not shown again.\n\n")
	fmt.Fprintf(stdout, "  mchid                   %s\n  apiv3_key               %s\n  merchant_serial_no      %s\n  platform_public_key_id  %s\n\n",
		cr.MchID, cr.APIv3Key, cr.MerchantSerialNo, cr.PlatformPublicKeyID)
	if cr.MerchantPrivateKey != "" {
		fmt.Fprintf(stdout, "merchant_private_key:\n%s\n", cr.MerchantPrivateKey)
	}
	fmt.Fprintf(stdout, "platform_public_key:\n%s", cr.PlatformPublicKey)
	return nil
}

// cashGatewayFlags are the platform's credentials at a remote APIv3 cash channel.
type cashGatewayFlags struct {
	url, mchid, apiv3KeyFile, privateKeyFile, serialNo, publicKeyFile, publicKeyID *string
}

func addCashGatewayFlags(fs interface {
	String(name, value, usage string) *string
}) *cashGatewayFlags {
	return &cashGatewayFlags{
		url:            fs.String("cash-url", "", "base URL of the APIv3 cash channel (https://api.mch.weixin.qq.com, or a medpay cash serve)"),
		mchid:          fs.String("cash-mchid", "", "the platform's merchant number at the cash channel"),
		apiv3KeyFile:   fs.String("cash-apiv3-key-file", "", "file holding the 32-character APIv3 key"),
		privateKeyFile: fs.String("cash-private-key-file", "", "the merchant private key (PEM)"),
		serialNo:       fs.String("cash-serial-no", "", "the merchant key's serial number"),
		publicKeyFile:  fs.String("cash-public-key-file", "", "the channel's public key (PEM)"),
		publicKeyID:    fs.String("cash-public-key-id", "", "the channel's public key id (PUB_KEY_ID_…)"),
	}
}

// gateway checks the flags and builds the client; nil when --cash-url is not given.
func (f *cashGatewayFlags) gateway() (*wxpay.Client, error) {
	if *f.url == "" {
		for name, v := range map[string]string{"--cash-mchid": *f.mchid, "--cash-apiv3-key-file": *f.apiv3KeyFile,
			"--cash-private-key-file": *f.privateKeyFile, "--cash-serial-no": *f.serialNo,
			"--cash-public-key-file": *f.publicKeyFile, "--cash-public-key-id": *f.publicKeyID} {
			if v != "" {
				return nil, fmt.Errorf("%s given without --cash-url", name)
			}
		}
		return nil, nil
	}
	var missing []string
	for _, m := range []struct{ name, v string }{{"--cash-mchid", *f.mchid}, {"--cash-apiv3-key-file", *f.apiv3KeyFile},
		{"--cash-private-key-file", *f.privateKeyFile}, {"--cash-serial-no", *f.serialNo},
		{"--cash-public-key-file", *f.publicKeyFile}, {"--cash-public-key-id", *f.publicKeyID}} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("--cash-url needs %s", strings.Join(missing, ", "))
	}
	apiv3Key, err := os.ReadFile(*f.apiv3KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--cash-apiv3-key-file: %w", err)
	}
	pemKey, err := os.ReadFile(*f.privateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--cash-private-key-file: %w", err)
	}
	priv, err := apiv3.ParsePrivateKey(pemKey)
	if err != nil {
		return nil, fmt.Errorf("--cash-private-key-file: %w", err)
	}
	pemPub, err := os.ReadFile(*f.publicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--cash-public-key-file: %w", err)
	}
	pub, err := apiv3.ParsePublicKey(pemPub)
	if err != nil {
		return nil, fmt.Errorf("--cash-public-key-file: %w", err)
	}
	cashier := ""
	if !strings.HasPrefix(*f.url, wxpay.WeChatPay) {
		cashier = strings.TrimRight(*f.url, "/") + "/cashier" // medpay's simulated channel
	}
	return wxpay.New(wxpay.Config{BaseURL: *f.url, MchID: *f.mchid, SerialNo: *f.serialNo, PrivateKey: priv,
		APIv3Key: []byte(strings.TrimSpace(string(apiv3Key))), PlatformKey: pub, PlatformKeyID: *f.publicKeyID, CashierURL: cashier})
}

// sandboxCashChannel is the simulated channel on the platform's database, served at
// <base-url>/cash in sandbox mode.
func sandboxCashChannel(ctx context.Context, db *sqlstore.DB, box *secret.Box, now func() time.Time, logger *slog.Logger) (*cash.Channel, error) {
	return cash.NewChannel(ctx, db, box, cash.Options{Now: now, Logger: logger, AllowPrivate: true})
}

// cashAPI is ch's handler, or nil without a channel.
func cashAPI(ch *cash.Channel) http.Handler {
	if ch == nil {
		return nil
	}
	return ch.Handler()
}

// sandboxGateway is the platform's gateway to the simulated channel it serves (the payer's
// cashier is at cashier): Go calls on the channel (cash.Local), as a merchant registered there on
// first start, the way the platform reaches the in-process bureau. No signatures and no HTTP
// between the two halves of one process; the channel's APIv3 mount at <base-url>/cash still
// serves other merchants, and --cash-url puts the platform on APIv3 (wxpay) for a separate one.
func sandboxGateway(ctx context.Context, db *sqlstore.DB, box *secret.Box, ch *cash.Channel, cashier string) (*cash.Local, error) {
	var mchid, priv string
	read := func() error {
		return db.SQL().QueryRowContext(ctx, `SELECT mchid, private_key FROM sandbox_cash_merchant WHERE id = 1`).Scan(&mchid, &priv)
	}
	err := read()
	if errors.Is(err, sql.ErrNoRows) {
		var cr *cash.MerchantCredentials
		if cr, err = ch.CreateMerchant(ctx, "", nil); err != nil {
			return nil, err
		}
		err = db.WriteTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO sandbox_cash_merchant (id, mchid, serial_no, apiv3_key, private_key, channel_key, channel_key_id)
				VALUES (1, $1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`, cr.MchID, cr.MerchantSerialNo,
				box.Seal(cr.APIv3Key), box.Seal(cr.MerchantPrivateKey), cr.PlatformPublicKey, cr.PlatformPublicKeyID)
			return err
		})
		if err != nil {
			return nil, err
		}
		err = read() // another process starting on the same database may have won
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox cash merchant: %w", err)
	}
	if priv, err = box.Open(priv); err != nil {
		return nil, err
	}
	key, err := apiv3.ParsePrivateKey([]byte(priv))
	if err != nil {
		return nil, err
	}
	return ch.Local(ctx, cash.LocalConfig{MchID: mchid, PrivateKey: key, CashierURL: cashier})
}
