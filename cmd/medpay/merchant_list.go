package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// merchantJSON is a merchant as list and show print it with --json: never a credential.
type merchantJSON struct {
	MchID       string     `json:"mch_id"`
	AppID       string     `json:"appid"`
	Kind        string     `json:"kind"`
	Name        string     `json:"name"`
	Cities      []string   `json:"cities,omitempty"`
	Level       *int       `json:"level,omitempty"`
	RefundIPs   []string   `json:"refund_ips,omitempty"`
	Orders      int64      `json:"orders"`
	LastOrderAt *time.Time `json:"last_order_at,omitempty"`
	Authorized  []string   `json:"authorized,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

func toMerchantJSON(s sqlstore.MerchantSummary) merchantJSON {
	j := merchantJSON{MchID: s.MchID, AppID: s.AppID, Kind: s.Kind, Name: s.Name, Cities: s.Cities, RefundIPs: s.RefundIPs,
		Orders: s.Orders, Authorized: s.Authorized, CreatedAt: s.CreatedAt.In(medpay.CST)}
	if s.Kind != medpay.KindProvider {
		j.Level = &s.Level
	}
	if s.LastOrderAt != 0 {
		t := sqlstore.FromMS(s.LastOrderAt).In(medpay.CST)
		j.LastOrderAt = &t
	}
	return j
}

// loadMerchants reads the merchants of kinds from the database named by --db.
func loadMerchants(ctx context.Context, dsn string, kinds ...string) ([]sqlstore.MerchantSummary, error) {
	db, err := openNotifyDB(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.ListMerchants(ctx, kinds...)
}

func merchantList(ctx context.Context, name string, args []string, getenv func(string) string, stdout io.Writer, kinds ...string) error {
	fs := newFlags(name, stdout)
	setUsage(fs, "usage: medpay "+name+" [--json]\n\nLists them, oldest first, with their order counts (never a secret or a key; times in China time).\n")
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	list, err := loadMerchants(ctx, *dsn, kinds...)
	if err != nil {
		return err
	}
	if *asJSON {
		out := []merchantJSON{}
		for _, s := range list {
			out = append(out, toMerchantJSON(s))
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "none yet")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if kinds[0] == medpay.KindProvider {
		fmt.Fprintln(tw, "MCH_ID\tAPPID\tNAME\tAUTHORISED BY\tCREATED (China time)")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.MchID, s.AppID, s.Name, orDash(strings.Join(s.Authorized, ",")), showTime(s.CreatedAt))
		}
	} else {
		fmt.Fprintln(tw, "MCH_ID\tAPPID\tKIND\tNAME\tCITIES\tLEVEL\tORDERS\tCREATED (China time)")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.MchID, s.AppID, s.Kind, s.Name, strings.Join(s.Cities, ","), s.Level, s.Orders, showTime(s.CreatedAt))
		}
	}
	return tw.Flush()
}

func merchantShow(ctx context.Context, name string, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags(name, stdout)
	setUsage(fs, "usage: medpay "+name+" [--json] MCH_ID|APPID\n\nPrints one hospital, pharmacy or service provider (never its secret or key; times in China time).\n")
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%s: give one MCH_ID or APPID", name)
	}
	list, err := loadMerchants(ctx, *dsn)
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.MchID != pos[0] && s.AppID != pos[0] {
			continue
		}
		j := toMerchantJSON(s)
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetEscapeHTML(false)
			return enc.Encode(j)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
		row("mch_id", s.MchID)
		row("appid", s.AppID)
		row("kind", s.Kind)
		row("name", s.Name)
		if s.Kind != medpay.KindProvider {
			row("cities", orDash(strings.Join(s.Cities, ",")))
			row("level", strconv.Itoa(s.Level))
			row("refund_ips", orDash(strings.Join(s.RefundIPs, ",")))
			row("providers", orDash(strings.Join(s.Authorized, ",")))
		} else {
			row("authorised by", orDash(strings.Join(s.Authorized, ",")))
		}
		row("orders", strconv.FormatInt(s.Orders, 10))
		if j.LastOrderAt != nil {
			row("last order", showTime(*j.LastOrderAt))
		}
		row("created", showTime(s.CreatedAt)+" (China time)")
		return tw.Flush()
	}
	return fmt.Errorf("%s: no merchant with mch_id or appid %q in %s", name, pos[0], sqlstore.Redact(*dsn))
}
