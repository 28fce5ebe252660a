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
	"github.com/medpay/medpay/sqlstore"
)

// openStore opens the database named by dsn with the server key that seals API keys, refusing a
// key that does not open what the database already holds (see openSealed).
func openStore(ctx context.Context, dsn, serverKey string) (*sqlstore.Store, error) {
	db, box, err := openSealed(ctx, dsn, serverKey)
	if err != nil {
		return nil, err
	}
	return sqlstore.NewStore(db, box), nil
}

const merchantUsage = `usage:
  medpay merchant create --name NAME --city CODE [--level N] [--refund-ip IP] [--kind hospital|pharmacy] [--json]
  medpay merchant list [--json]
  medpay merchant show [--json] MCH_ID|APPID

create onboards a hospital or pharmacy and prints its credentials once; list and show print the
hospitals and pharmacies (never their secrets). Every subcommand takes --db (env MEDPAY_DB).
`

func runMerchant(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand("merchant", merchantUsage, args, stdout, stderr)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		return merchantCreate(ctx, rest, getenv, stdout)
	case "list":
		return merchantList(ctx, "merchant list", rest, getenv, stdout, medpay.KindHospital, medpay.KindPharmacy)
	case "show":
		return merchantShow(ctx, "merchant show", rest, getenv, stdout)
	}
	return unknownSub("merchant", merchantUsage, sub, stderr)
}

func merchantCreate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("merchant create", stdout)
	setUsage(fs, "usage: medpay merchant create --name NAME --city CODE [--level N] [--refund-ip IP] [--kind hospital|pharmacy] [--json]\n\n"+
		"Onboards a hospital or pharmacy and prints its appid, secret, mch_id and API key, once.\n")
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	serverKey := fs.String("server-key", "", "64 hex characters sealing API keys (default: file beside the SQLite database)")
	name := fs.String("name", "", "required: institution name")
	kind := fs.String("kind", medpay.KindHospital, "hospital or pharmacy")
	level := fs.Int("level", 0, "hospital level: 0 社区, 1, 2, 3")
	asJSON := fs.Bool("json", false, "print JSON")
	asEnv := fs.Bool("env", false, "print shell export lines for the developer commands (MEDPAY_APPID, MEDPAY_SECRET, MEDPAY_MCH_ID, MEDPAY_KEY)")
	var cities, ips listFlag
	fs.Var(&cities, "city", "required: enabled 6-digit city code (repeatable)")
	fs.Var(&ips, "refund-ip", "address or CIDR allowed to request refunds (repeatable)")
	if err := parseFlags(fs, args, getenv); err != nil {
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
	format := ""
	switch {
	case *asJSON && *asEnv:
		return errors.New("merchant create: --json or --env, not both")
	case *asJSON:
		format = "json"
	case *asEnv:
		format = "env"
	}
	return createMerchant(ctx, *dsn, *serverKey, m, format, stdout)
}

var mchIDPattern = regexp.MustCompile(`^[0-9]{10}$`)

// createMerchant fills m's credentials, stores it and prints them once.
// format is "" (text), "json" or "env" (shell export lines).
func createMerchant(ctx context.Context, dsn, serverKey string, m *medpay.Merchant, format string, stdout io.Writer) error {
	store, err := openStore(ctx, dsn, serverKey)
	if err != nil {
		return err
	}
	defer store.DB().Close()
	m.CreatedAt = time.Now()
	creds, err := store.Onboard(ctx, m)
	if err != nil {
		return err
	}
	if format == "env" {
		fmt.Fprintf(stdout, "# %s: keep this file private (the secret and API key are not shown again)\n", m.Name)
		fmt.Fprintf(stdout, "export MEDPAY_APPID='%s' MEDPAY_SECRET='%s' MEDPAY_MCH_ID='%s' MEDPAY_KEY='%s'\n", creds.AppID, creds.Secret, creds.MchID, creds.APIKey)
		return nil
	}
	if format == "json" {
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
