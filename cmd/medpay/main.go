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
//	medpay loadtest floor        serve the no-storage floor that loadtest's figures are read against
//	medpay cash serve|merchant   the simulated cash channel alone (WeChat Pay APIv3 subset)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // help asked for and printed
	default:
		fmt.Fprintln(os.Stderr, "medpay:", err)
		os.Exit(1)
	}
}

const usage = `usage: medpay <command> [flags]

commands:
  serve                     run the platform (open API, payer pages, notifications, bureau simulator)
  merchant create|list|show onboard a hospital or pharmacy and print its credentials; list them
  provider create|list      onboard a service provider; list them
  provider authorize|revoke record or withdraw a hospital's authorisation of a service provider
  notify list|show|resend   inspect and re-send notifications
  notify receive            listen as a hospital would: print and verify the notifications that arrive
  operator create           create an operator account of the web console (/console/)
  reconcile                 compare a day's ledger with the bureau's and the cash channel's journals
  bureau serve              run the simulated bureau alone, speaking the national protocol
  bureau institution create register a hospital or platform at that bureau
  cash serve                run the simulated cash channel alone (WeChat Pay APIv3 subset, docs/cash.md)
  cash merchant create      register a merchant at that channel and print its APIv3 credentials
  server-key rotate         re-seal the stored API keys under a new server key
  version                   print the version and the revision it was built from

developer commands (call the open API as a hospital, through the Go SDK):
  token                     get an access token (cached, see 'medpay token -h'; --sub-appid: as a service provider)
  order create|query|close  place, query or close an order
  refund create|query       refund a paid order, query a refund
  sign                      compute and check a signature, find the field that differs
  sandbox persons|bind|confirm|paycode
                            the sandbox's test persons; bind one, confirm an order, get a payment code
  loadtest                  drive a running platform with orders, queries or payment cycles and
                            report throughput, latency and notification lag (sizing)
  loadtest floor            serve the no-storage floor (XML, signature, answer): this machine's ceiling

  The developer commands take --base-url, --appid, --mch-id, --key, --secret (and --sub-appid,
  --sub-mch-id in service-provider mode), usually exported once as MEDPAY_BASE_URL, MEDPAY_APPID,
  MEDPAY_MCH_ID, MEDPAY_KEY, MEDPAY_SECRET ('merchant create --env' prints them); --json prints
  the answer as JSON, --only NAME one field's value alone.

Run 'medpay <command> -h' (or --help) for the flags of a command. Every flag can also be set
through the environment as MEDPAY_<FLAG> (upper case, dashes as underscores), e.g. MEDPAY_DB.
The API reference is docs/api/README.md.
`

// run is the whole program, with its dependencies passed in so tests can call it. Help asked for
// is printed on stdout and answered with flag.ErrHelp (exit status 0); errors are returned, not
// printed, so main prints each once.
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
	case "operator":
		return runOperator(ctx, rest, getenv, stdout, stderr)
	case "reconcile":
		return runReconcile(ctx, rest, getenv, stdout, stderr)
	case "bureau":
		return runBureau(ctx, rest, getenv, stdout, stderr)
	case "sandbox":
		return runSandbox(ctx, rest, getenv, stdout, stderr)
	case "server-key":
		return runServerKey(ctx, rest, getenv, stdout, stderr)
	case "version":
		return runVersion(rest, getenv, stdout)
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
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && !isHelp(rest[0]) { // medpay help order create
			return run(ctx, append(rest, "-h"), getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// subcommand splits "medpay <group> <sub> ..." for a group of subcommands. With no subcommand it
// prints the group's usage on stderr and fails; asked for help, it prints it on stdout and
// answers flag.ErrHelp.
func subcommand(group, groupUsage string, args []string, stdout, stderr io.Writer) (string, []string, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, groupUsage)
		return "", nil, fmt.Errorf("%s: which subcommand?", group)
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, groupUsage)
		return "", nil, flag.ErrHelp
	}
	return args[0], args[1:], nil
}

// unknownSub is the error for a subcommand a group does not have.
func unknownSub(group, groupUsage, sub string, stderr io.Writer) error {
	fmt.Fprint(stderr, groupUsage)
	return fmt.Errorf("%s: unknown subcommand %q", group, sub)
}

// newFlags returns the flag set of "medpay <name>". Its help goes to stdout; errors are returned
// by parseFlags, never printed by the flag package (main prints them once). Flags whose usage
// starts with "required" are the ones the command cannot do without.
func newFlags(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "usage: medpay %s [flags]\n", name); printFlags(fs) }
	return fs
}

// setUsage gives fs a usage text (synopsis and description) printed above its flags.
func setUsage(fs *flag.FlagSet, text string) {
	fs.Usage = func() { fmt.Fprint(fs.Output(), text); printFlags(fs) }
}

// printFlags lists fs's flags as --name, with defaults and environment variables.
func printFlags(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, "\nflags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, use := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n        %s", line, use)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, " [%s]\n", envName(f.Name))
	})
}

// parseQuiet parses args without letting the flag package print anything: -h and --help print
// the usage on stdout and answer flag.ErrHelp; any other error comes back once, with a hint.
func parseQuiet(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%s: %w (see 'medpay %s -h')", fs.Name(), err, fs.Name())
	}
	return nil
}

// parseFlags parses args, then fills every flag not given on the command line from its
// environment variable.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := parseQuiet(fs, args); err != nil {
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

// newLogger is the JSON logger of the serving commands, at the level named by --log-level.
func newLogger(levelName string, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), nil
}
