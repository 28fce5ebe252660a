package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

const notifyUsage = `usage:
  medpay notify list [--merchant MCH_ID] [--order MED_TRANS_ID] [--state pending|delivered|dead] [--limit N] [--json]
  medpay notify show [--json] NOTIFY_ID
  medpay notify resend NOTIFY_ID
  medpay notify resend --dead --merchant MCH_ID

Every subcommand takes --db (default medpay.db, env MEDPAY_DB): an SQLite file or a postgres:// URL.
A running server's worker sends a resent notification within a second.
`

// runNotify is "medpay notify": args are the words after "notify".
func runNotify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand("notify", notifyUsage, args, stdout, stderr)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return notifyList(ctx, rest, getenv, stdout, stderr)
	case "show":
		return notifyShow(ctx, rest, getenv, stdout, stderr)
	case "resend":
		return notifyResend(ctx, rest, getenv, stdout, stderr)
	case "receive":
		return notifyReceive(ctx, rest, getenv, stdout, stderr)
	}
	return unknownSub("notify", notifyUsage, sub, stderr)
}

// parseInterleaved parses flags given before, between and after the positional arguments, then
// fills the unset ones from the environment, and returns the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var pos []string
	for {
		if err := parseQuiet(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return pos, parseFlags(fs, nil, getenv)
}

// openNotifyDB opens the database, refusing to create a new SQLite file by mistake.
func openNotifyDB(ctx context.Context, dsn string) (*sqlstore.DB, error) {
	if !sqlstore.IsPostgres(dsn) {
		path := strings.TrimPrefix(dsn, "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("database %s: %w (set --db or MEDPAY_DB)", path, err)
		}
	}
	return sqlstore.Open(ctx, dsn)
}

func merchantIDOf(ctx context.Context, db *sqlstore.DB, mchID string) (int64, error) {
	var id int64
	err := db.SQL().QueryRowContext(ctx, `SELECT id FROM merchants WHERE mch_id = $1`, mchID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("no merchant with mch_id %s", mchID)
	}
	return id, err
}

func orderIDOf(ctx context.Context, db *sqlstore.DB, medTransID string) (int64, error) {
	var id int64
	err := db.SQL().QueryRowContext(ctx, `SELECT id FROM orders WHERE med_trans_id = $1`, medTransID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("no order with med_trans_id %s", medTransID)
	}
	return id, err
}

// names resolves merchant and order ids to mch_id and med_trans_id for display.
type names struct {
	ctx       context.Context
	db        *sqlstore.DB
	merchants map[int64]string
	orders    map[int64]string
}

func newNames(ctx context.Context, db *sqlstore.DB) *names {
	return &names{ctx: ctx, db: db, merchants: map[int64]string{}, orders: map[int64]string{}}
}

func (n *names) lookup(cache map[int64]string, query string, id int64) string {
	if id == 0 {
		return ""
	}
	if v, ok := cache[id]; ok {
		return v
	}
	var v string
	if err := n.db.SQL().QueryRowContext(n.ctx, query, id).Scan(&v); err != nil {
		v = "#" + strconv.FormatInt(id, 10)
	}
	cache[id] = v
	return v
}

func (n *names) mchID(id int64) string {
	return n.lookup(n.merchants, `SELECT mch_id FROM merchants WHERE id = $1`, id)
}

func (n *names) medTransID(id int64) string {
	return n.lookup(n.orders, `SELECT med_trans_id FROM orders WHERE id = $1`, id)
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(wire.CST).Format("2006-01-02 15:04:05")
}

// notifyJSON is a notification as printed by --json.
type notifyJSON struct {
	NotifyID   string        `json:"notify_id"`
	Kind       string        `json:"kind"`
	MchID      string        `json:"mch_id"`
	MedTransID string        `json:"med_trans_id,omitempty"`
	RefundID   int64         `json:"refund_id,omitempty"`
	URL        string        `json:"url"`
	State      string        `json:"state"`
	Attempts   int           `json:"attempts"`
	NextAt     *time.Time    `json:"next_at,omitempty"`
	CreatedAt  time.Time     `json:"created_at"`
	DoneAt     *time.Time    `json:"done_at,omitempty"`
	Body       string        `json:"body,omitempty"`
	History    []attemptJSON `json:"history,omitempty"`
}

type attemptJSON struct {
	At         time.Time `json:"at"`
	HTTPStatus int       `json:"http_status"`
	LatencyMS  int64     `json:"latency_ms"`
	Answer     string    `json:"answer"`
	Error      string    `json:"error"`
}

func toJSON(r *notify.Row, nm *names) notifyJSON {
	j := notifyJSON{
		NotifyID: r.NotifyID, Kind: r.Kind, MchID: nm.mchID(r.MerchantID), MedTransID: nm.medTransID(r.OrderID),
		RefundID: r.RefundID, URL: notify.RedactURL(r.URL), State: r.State, Attempts: r.Attempts, CreatedAt: r.CreatedAt.In(wire.CST),
	}
	if r.State == notify.StatePending {
		t := r.NextAt.In(wire.CST)
		j.NextAt = &t
	}
	if !r.DoneAt.IsZero() {
		t := r.DoneAt.In(wire.CST)
		j.DoneAt = &t
	}
	return j
}

func notifyList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("notify list", stdout)
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	mch := fs.String("merchant", "", "only this merchant's (mch_id)")
	order := fs.String("order", "", "only this order's (med_trans_id)")
	state := fs.String("state", "", "only pending, delivered or dead")
	limit := fs.Int("limit", 50, "at most this many, newest first (1000 at most)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("notify list: unexpected argument %q", pos[0])
	}
	switch *state {
	case "", notify.StatePending, notify.StateDelivered, notify.StateDead:
	default:
		return fmt.Errorf("--state must be pending, delivered or dead, not %q", *state)
	}
	db, err := openNotifyDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	f := notify.Filter{State: *state, Limit: *limit}
	if *mch != "" {
		if f.MerchantID, err = merchantIDOf(ctx, db, *mch); err != nil {
			return err
		}
	}
	if *order != "" {
		if f.OrderID, err = orderIDOf(ctx, db, *order); err != nil {
			return err
		}
	}
	rows, err := notify.List(ctx, db, f)
	if err != nil {
		return err
	}
	nm := newNames(ctx, db)
	if *asJSON {
		out := make([]notifyJSON, 0, len(rows))
		for i := range rows {
			out = append(out, toJSON(&rows[i], nm))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NOTIFY_ID\tKIND\tMCH_ID\tMED_TRANS_ID\tSTATE\tATTEMPTS\tNEXT_OR_DONE\tURL")
	for _, r := range rows {
		when := r.DoneAt
		if r.State == notify.StatePending {
			when = r.NextAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.NotifyID, r.Kind, nm.mchID(r.MerchantID),
			orDash(nm.medTransID(r.OrderID)), r.State, r.Attempts, notify.MaxAttempts, showTime(when), notify.RedactURL(r.URL))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if eff := min(max(f.Limit, 0), 1000); eff > 0 && len(rows) == eff {
		fmt.Fprintf(stderr, "(first %d shown; use --limit or a filter for more)\n", len(rows))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func notifyShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("notify show", stdout)
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: medpay notify show [--json] NOTIFY_ID")
	}
	db, err := openNotifyDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	r, atts, err := notify.Show(ctx, db, pos[0])
	if errors.Is(err, medpay.ErrNotFound) {
		return fmt.Errorf("no notification %s", pos[0])
	}
	if err != nil {
		return err
	}
	nm := newNames(ctx, db)
	if *asJSON {
		j := toJSON(r, nm)
		j.Body = string(r.Body)
		for _, a := range atts {
			j.History = append(j.History, attemptJSON{At: a.At.In(wire.CST), HTTPStatus: a.HTTPStatus,
				LatencyMS: a.Latency.Milliseconds(), Answer: a.Answer, Error: a.Error})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "notify_id\t%s\n", r.NotifyID)
	fmt.Fprintf(tw, "kind\t%s\n", r.Kind)
	fmt.Fprintf(tw, "mch_id\t%s\n", nm.mchID(r.MerchantID))
	fmt.Fprintf(tw, "med_trans_id\t%s\n", orDash(nm.medTransID(r.OrderID)))
	if r.RefundID != 0 {
		fmt.Fprintf(tw, "refund_id\t%d\n", r.RefundID)
	}
	fmt.Fprintf(tw, "url\t%s\n", notify.RedactURL(r.URL))
	fmt.Fprintf(tw, "state\t%s\n", r.State)
	fmt.Fprintf(tw, "attempts\t%d of %d\n", r.Attempts, notify.MaxAttempts)
	fmt.Fprintf(tw, "created_at\t%s\n", showTime(r.CreatedAt))
	if r.State == notify.StatePending {
		fmt.Fprintf(tw, "next_at\t%s\n", showTime(r.NextAt))
	} else {
		fmt.Fprintf(tw, "done_at\t%s\n", showTime(r.DoneAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nbody:\n%s\n", r.Body)
	if len(atts) == 0 {
		fmt.Fprintln(stdout, "\nno attempts yet")
		return nil
	}
	fmt.Fprintln(stdout, "\nattempts:")
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tAT\tSTATUS\tLATENCY\tERROR\tANSWER")
	for i, a := range atts {
		status := "-"
		if a.HTTPStatus != 0 {
			status = strconv.Itoa(a.HTTPStatus)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, showTime(a.At), status, a.Latency,
			orDash(oneLine(a.Error, 100)), orDash(oneLine(a.Answer, 100)))
	}
	return tw.Flush()
}

// oneLine shortens s to at most n characters on one line for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}

func notifyResend(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("notify resend", stdout)
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	dead := fs.Bool("dead", false, "resend every dead notification of --merchant")
	mch := fs.String("merchant", "", "with --dead: the merchant (mch_id)")
	pos, err := parseInterleaved(fs, args, getenv)
	if err != nil {
		return err
	}
	switch {
	case *dead && len(pos) > 0:
		return errors.New("notify resend: give either NOTIFY_ID or --dead --merchant MCH_ID")
	case *dead && *mch == "":
		return errors.New("notify resend --dead needs --merchant MCH_ID")
	case !*dead && *mch != "":
		return errors.New("notify resend: --merchant goes with --dead")
	case !*dead && len(pos) != 1:
		return errors.New("usage: medpay notify resend NOTIFY_ID | medpay notify resend --dead --merchant MCH_ID")
	}
	db, err := openNotifyDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now()
	if *dead {
		id, err := merchantIDOf(ctx, db, *mch)
		if err != nil {
			return err
		}
		n, err := notify.ResendDead(ctx, db, id, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead notifications of %s are due again\n", n, *mch)
		return nil
	}
	switch err := notify.Resend(ctx, db, pos[0], now); {
	case errors.Is(err, medpay.ErrNotFound):
		return fmt.Errorf("no notification %s", pos[0])
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "notification %s is due again (%d attempts on the schedule)\n", pos[0], notify.MaxAttempts)
	return nil
}
