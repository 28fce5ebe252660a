// Command medpay runs the medical-insurance payment platform and its operator tools.
//
//	medpay serve                 run the platform
//	medpay merchant create ...   onboard a hospital or pharmacy
//	medpay provider create ...   onboard a service provider
//	medpay provider authorize    record a hospital's authorisation of a provider (and revoke)
//	medpay notify list|show|resend
//	medpay reconcile             three-way reconciliation of a day
//	medpay bureau serve          the simulated bureau alone (national protocol)
//	medpay bureau institution create   register a hospital or platform at that bureau
//	medpay token                 get an access token (developer commands: through the Go SDK)
//	medpay order create|query|close
//	medpay refund create|query
//	medpay sign                  compute and check a signature
//	medpay loadtest              measure a running platform (throughput, latency, notification lag)
//	medpay cash serve|merchant   the simulated cash channel alone (WeChat Pay APIv3 subset)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "medpay:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: medpay <command> [flags]

commands:
  serve                     run the platform (open API, payer pages, notifications, bureau simulator)
  merchant create           onboard a hospital or pharmacy and print its credentials
  provider create           onboard a service provider
  provider authorize        record that a hospital authorised a service provider
  provider revoke           withdraw that authorisation
  notify list|show|resend   inspect and re-send notifications
  reconcile                 compare a day's ledger with the bureau's and the cash channel's journals
  bureau serve              run the simulated bureau alone, speaking the national protocol
  bureau institution create register a hospital or platform at that bureau
  cash serve                run the simulated cash channel alone (WeChat Pay APIv3 subset, docs/cash.md)
  cash merchant create      register a merchant at that channel and print its APIv3 credentials

developer commands (call the open API as a hospital, through the Go SDK):
  token                     get an access token (--sub-appid: as a service provider)
  order create|query|close  place, query or close an order
  refund create|query       refund a paid order, query a refund
  sign                      compute and check a signature, find the field that differs
  loadtest                  drive a running platform with orders, queries or payment cycles and
                            report throughput, latency and notification lag (sizing)

  The developer commands take --base-url, --appid, --mch-id, --key, --secret (and --sub-appid,
  --sub-mch-id in service-provider mode), usually exported once as MEDPAY_BASE_URL, MEDPAY_APPID,
  MEDPAY_MCH_ID, MEDPAY_KEY, MEDPAY_SECRET; --json prints the answer as JSON.

Run 'medpay <command> -h' for the flags of a command. Every flag can also be set through the
environment as MEDPAY_<FLAG> (upper case, dashes as underscores), e.g. MEDPAY_DB.
`

// run is the whole program, with its dependencies passed in so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "merchant":
		return runMerchant(ctx, rest, getenv, stdout, stderr)
	case "provider":
		return runProvider(ctx, rest, getenv, stdout, stderr)
	case "notify":
		return runNotify(ctx, rest, getenv, stdout, stderr)
	case "reconcile":
		return runReconcile(ctx, rest, getenv, stdout, stderr)
	case "bureau":
		return runBureau(ctx, rest, getenv, stdout, stderr)
	case "order":
		return runOrder(ctx, rest, getenv, stdout, stderr)
	case "refund":
		return runRefund(ctx, rest, getenv, stdout, stderr)
	case "token":
		return runToken(ctx, rest, getenv, stdout, stderr)
	case "loadtest":
		return runLoadtest(ctx, rest, getenv, stdout, stderr)
	case "sign":
		return runSign(ctx, rest, getenv, stdout, stderr)
	case "cash":
		return runCash(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// newFlags returns a flag set whose defaults can come from MEDPAY_* variables.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, then fills every flag not given on the command line from its
// environment variable.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", envName(f.Name), e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "MEDPAY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// optBool is a boolean flag that may be left unset, so that its default can depend on other
// flags. Like a flag.Bool, it is set to true by its name alone (--sandbox).
type optBool struct {
	set, v bool
}

func (b *optBool) IsBoolFlag() bool { return true }

func (b *optBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.v)
}

func (b *optBool) Set(s string) error {
	switch strings.ToLower(s) {
	case "true", "1", "on", "yes", "t":
		b.v = true
	case "false", "0", "off", "no", "f":
		b.v = false
	default:
		return fmt.Errorf("must be true or false, not %q", s)
	}
	b.set = true
	return nil
}

// or is the value given, else def.
func (b *optBool) or(def bool) bool {
	if b.set {
		return b.v
	}
	return def
}
