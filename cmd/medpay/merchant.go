package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// openStore opens the database named by dsn and the server key that seals API keys.
func openStore(ctx context.Context, dsn, serverKey string) (*sqlstore.Store, error) {
	key, err := loadServerKey(dsn, serverKey)
	if err != nil {
		return nil, err
	}
	box, err := secret.NewBox(key)
	if err != nil {
		return nil, err
	}
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return sqlstore.NewStore(db, box), nil
}

// loadServerKey returns the key given, or for SQLite the one kept beside the database file.
func loadServerKey(dsn, given string) ([]byte, error) {
	if given != "" {
		return secret.ParseKey(given)
	}
	if sqlstore.IsPostgres(dsn) {
		return nil, errors.New("--server-key (MEDPAY_SERVER_KEY) is required with PostgreSQL: 64 hex characters, e.g. from `openssl rand -hex 32`")
	}
	return secret.LoadOrCreateKeyFile(dsn + ".key")
}

func runMerchant(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: medpay merchant create --name NAME --city CODE [--level N] [--refund-ip IP] [--kind hospital|pharmacy] [--v3 [--public-key merchant.pem]] [--json]")
	}
	fs := newFlags("merchant create", stderr)
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	serverKey := fs.String("server-key", "", "64 hex characters sealing API keys (default: file beside the SQLite database)")
	name := fs.String("name", "", "institution name")
	kind := fs.String("kind", medpay.KindHospital, "hospital or pharmacy")
	level := fs.Int("level", 0, "hospital level: 0 社区, 1, 2, 3")
	asJSON := fs.Bool("json", false, "print JSON")
	v3 := v3Flags(fs)
	var cities, ips listFlag
	fs.Var(&cities, "city", "enabled 6-digit city code (repeatable)")
	fs.Var(&ips, "refund-ip", "address or CIDR allowed to request refunds (repeatable)")
	if err := parseFlags(fs, args[1:], getenv); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("--name is required")
	}
	if *kind != medpay.KindHospital && *kind != medpay.KindPharmacy {
		return fmt.Errorf("--kind must be hospital or pharmacy, not %q", *kind)
	}
	if *level < 0 || *level > 3 {
		return fmt.Errorf("--level must be 0 to 3, not %d", *level)
	}
	if len(cities) == 0 {
		return errors.New("--city is required (a 6-digit city code; see the city list in the README)")
	}
	for _, c := range cities {
		if _, ok := bureau.PolicyFor(c, time.Now()); !ok {
			return fmt.Errorf("--city %s: not a covered city code", c)
		}
	}
	for _, ip := range ips {
		if _, err := netip.ParsePrefix(ip); err != nil {
			if _, err := netip.ParseAddr(ip); err != nil {
				return fmt.Errorf("--refund-ip %q is neither an address nor a CIDR prefix", ip)
			}
		}
	}
	m := &medpay.Merchant{Kind: *kind, Name: *name, Cities: cities, Level: *level, RefundIPs: ips}
	return createMerchant(ctx, *dsn, *serverKey, m, v3, *asJSON, stdout)
}

var mchIDPattern = regexp.MustCompile(`^[0-9]{10}$`)

// createMerchant fills m's credentials, stores it and prints them once.
func createMerchant(ctx context.Context, dsn, serverKey string, m *medpay.Merchant, v3 *v3Options, asJSON bool, stdout io.Writer) error {
	if err := v3.load(); err != nil {
		return err
	}
	store, err := openStore(ctx, dsn, serverKey)
	if err != nil {
		return err
	}
	defer store.DB().Close()
	appSecret := secret.AppSecret()
	m.SecretHash = secret.Hash(appSecret)
	m.APIKey = secret.APIKey()
	m.CreatedAt = time.Now()
	for attempt := 0; ; attempt++ {
		m.AppID = "wx" + secret.RandomString(16, "0123456789abcdef")
		m.MchID = "19" + secret.RandomString(8, "0123456789")
		err = store.CreateMerchant(ctx, m)
		if !errors.Is(err, medpay.ErrConflict) || attempt == 5 {
			break
		}
	}
	if err != nil {
		return err
	}
	creds := medpay.Credentials{AppID: m.AppID, Secret: appSecret, MchID: m.MchID, APIKey: m.APIKey, Name: m.Name, Cities: m.Cities}
	if v3.enabled() {
		return registerV3(ctx, store, m, v3, creds, asJSON, stdout)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(creds)
	}
	fmt.Fprintf(stdout, "%s onboarded (%s). Keep these now: the secret and API key are not shown again.\n\n", m.Name, m.Kind)
	fmt.Fprintf(stdout, "  appid    %s\n  secret   %s\n  mch_id   %s\n  api_key  %s\n", creds.AppID, creds.Secret, creds.MchID, creds.APIKey)
	if len(m.Cities) > 0 {
		fmt.Fprintf(stdout, "  cities   %v\n", m.Cities)
	}
	return nil
}
