package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/reconcile"
	"github.com/medpay/medpay/sqlstore"
)

// runReconcile is `medpay reconcile`: the three-way reconciliation of one day — the platform's
// ledger against the bureau's and the cash channel's journals. It fails when they disagree, so a
// scheduler can alert on it.
func runReconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("reconcile", stdout)
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	serverKey := fs.String("server-key", "", "64 hex characters sealing API keys")
	date := fs.String("date", "", "the day, yyyyMMdd in China Standard Time (default: yesterday)")
	asJSON := fs.Bool("json", false, "print JSON")
	cashDB := fs.String("cash-db", "", "the cash channel's database when it runs apart (medpay cash serve --db); default: --db")
	cashMchID := fs.String("cash-mchid", "", "the platform's merchant number at the cash channel (default: the sandbox's)")
	bf := addBureauFlags(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	now := time.Now().In(medpay.CST)
	day := time.Date(now.Year(), now.Month(), now.Day()-1, 0, 0, 0, 0, medpay.CST)
	if *date != "" {
		d, err := time.ParseInLocation("20060102", *date, medpay.CST)
		if err != nil {
			return fmt.Errorf("--date %q: want yyyyMMdd", *date)
		}
		day = d
	}
	store, err := openStore(ctx, *dsn, *serverKey)
	if err != nil {
		return err
	}
	defer store.DB().Close()
	bu, sim, _, err := platformBureau(ctx, bf, store.DB())
	if err != nil {
		return err
	}
	books := cash.Books{DB: store.DB(), MchID: *cashMchID}
	if books.MchID == "" {
		// The sandbox's own merchant at the channel it serves; none: every merchant's payments.
		store.DB().SQL().QueryRowContext(ctx, `SELECT mchid FROM sandbox_cash_merchant WHERE id = 1`).Scan(&books.MchID)
	}
	if *cashDB != "" {
		cdb, err := sqlstore.OpenBare(ctx, *cashDB)
		if err != nil {
			return fmt.Errorf("--cash-db: %w", err)
		}
		defer cdb.Close()
		books.DB = cdb
	}
	// A database the channel never ran on has no journal tables yet: they are created empty.
	if err := cash.Migrate(ctx, books.DB); err != nil {
		return fmt.Errorf("cash channel journal: %w", err)
	}
	// cash.Books also reads the wallet on its database, which charges 医保 2.0 orders' cash part;
	// with the channel's journal on a database of its own, the platform's wallet is read too.
	var journal reconcile.CashBooks = books
	if *cashDB != "" {
		journal = reconcile.Journals{books, cash.New(store.DB(), nil)}
	}
	r, err := reconcile.Day(ctx, store, bu, journal, day, v3Journals(sim))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "reconciliation of %s: %d serials\n", r.Day, r.Serials)
		for _, party := range []string{reconcile.BureauFund, reconcile.PersonalAccount, reconcile.Cash} {
			t := r.Totals[party]
			fmt.Fprintf(stdout, "  %-17s ledger %12s   books %12s\n", party, medpay.FormatYuan(t.Platform), medpay.FormatYuan(t.Books))
		}
		for _, d := range r.Discrepancies {
			fmt.Fprintf(stdout, "  DISCREPANCY %-17s %s: ledger %s, books %s\n", d.Party, d.Serial, medpay.FormatYuan(d.Platform), medpay.FormatYuan(d.Books))
		}
	}
	if !r.OK() {
		return errors.New(fmt.Sprint(len(r.Discrepancies), " discrepancies"))
	}
	return nil
}
