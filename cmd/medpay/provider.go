package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/medpay/medpay"
)

const providerUsage = `usage:
  medpay provider create --name NAME [--json]
  medpay provider list [--json]
  medpay provider authorize --provider PROVIDER_MCH_ID --merchant HOSPITAL_MCH_ID
  medpay provider revoke --provider PROVIDER_MCH_ID --merchant HOSPITAL_MCH_ID

A service provider (服务商) calls the open API for the hospitals that authorised it. Every
subcommand takes --db (env MEDPAY_DB).
`

func runProvider(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand("provider", providerUsage, args, stdout, stderr)
	if err != nil {
		return err
	}
	args = append([]string{sub}, rest...)
	switch sub {
	case "list":
		return merchantList(ctx, "provider list", rest, getenv, stdout, medpay.KindProvider)
	case "create":
		fs := newFlags("provider create", stdout)
		dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
		serverKey := fs.String("server-key", "", "64 hex characters sealing API keys")
		name := fs.String("name", "", "required: service provider name")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := parseFlags(fs, args[1:], getenv); err != nil {
			return err
		}
		if *name == "" {
			return errors.New("--name is required")
		}
		format := ""
		if *asJSON {
			format = "json"
		}
		return createMerchant(ctx, *dsn, *serverKey, &medpay.Merchant{Kind: medpay.KindProvider, Name: *name}, format, stdout)
	case "authorize", "revoke":
		fs := newFlags("provider "+args[0], stdout)
		dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
		serverKey := fs.String("server-key", "", "64 hex characters sealing API keys")
		prov := fs.String("provider", "", "required: the service provider's mch_id")
		merch := fs.String("merchant", "", "required: the hospital's mch_id")
		if err := parseFlags(fs, args[1:], getenv); err != nil {
			return err
		}
		store, err := openStore(ctx, *dsn, *serverKey)
		if err != nil {
			return err
		}
		defer store.DB().Close()
		p, err := store.MerchantByMchID(ctx, *prov)
		if err != nil || p.Kind != medpay.KindProvider {
			return fmt.Errorf("--provider %q: no service provider with this mch_id", *prov)
		}
		h, err := store.MerchantByMchID(ctx, *merch)
		if err != nil || h.Kind == medpay.KindProvider {
			return fmt.Errorf("--merchant %q: no hospital or pharmacy with this mch_id", *merch)
		}
		if args[0] == "authorize" {
			if err := store.Authorize(ctx, p.ID, h.ID); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s (%s) authorised %s (%s)\n", h.Name, h.MchID, p.Name, p.MchID)
			return nil
		}
		if err := store.Revoke(ctx, p.ID, h.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s (%s) no longer authorises %s (%s)\n", h.Name, h.MchID, p.Name, p.MchID)
		return nil
	}
	return unknownSub("provider", providerUsage, sub, stderr)
}
