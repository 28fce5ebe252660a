// Command hospital is an example hospital web app built on the medpay Go SDK (package client).
//
// A patient pays a registration fee (挂号, RegPay) or a clinic bill (诊间缴费, DiagPay) with
// medical insurance: the app places the order with UnifiedOrder, sends the patient to pay_url,
// receives the result at its notify_url through client.NotificationHandler (idempotent on
// notify_id), and when the patient comes back to return_url it looks at its own record first and
// asks the platform with QueryOrder only when no notification has arrived yet — the return
// handling docs/api/notifications.md recommends. State is kept in memory.
//
// See README.md for a one-command run against `go run ./cmd/medpay serve`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/medpay/medpay/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hospital:", err)
		}
		os.Exit(1)
	}
}

// credentials is what `medpay merchant create --json` prints.
type credentials struct {
	AppID  string   `json:"appid"`
	Secret string   `json:"secret"`
	MchID  string   `json:"mch_id"`
	APIKey string   `json:"api_key"`
	Name   string   `json:"name"`
	Cities []string `json:"cities"`
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hospital", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address of the hospital app")
	publicURL := fs.String("public-url", "", "the app's URL as the platform and the patient reach it (default http://<addr>)")
	credFile := fs.String("credentials", "", "JSON printed by `medpay merchant create --json` (a file, or - for standard input)")
	baseURL := fs.String("medpay-url", or(getenv("MEDPAY_BASE_URL"), "http://127.0.0.1:8080"), "the medpay platform (MEDPAY_BASE_URL)")
	var cred credentials
	fs.StringVar(&cred.AppID, "appid", getenv("MEDPAY_APPID"), "the hospital's appid (MEDPAY_APPID)")
	fs.StringVar(&cred.MchID, "mch-id", getenv("MEDPAY_MCH_ID"), "the hospital's mch_id (MEDPAY_MCH_ID)")
	fs.StringVar(&cred.APIKey, "key", getenv("MEDPAY_KEY"), "the hospital's API key (MEDPAY_KEY)")
	fs.StringVar(&cred.Secret, "secret", getenv("MEDPAY_SECRET"), "the hospital's app secret (MEDPAY_SECRET)")
	fs.StringVar(&cred.Name, "name", "示例医院", "hospital name")
	city := fs.String("city", "", "city_id of the orders (default: the hospital's first city, or 440300)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *credFile != "" {
		var r io.Reader = stdin
		if *credFile != "-" {
			f, err := os.Open(*credFile)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		if err := json.NewDecoder(r).Decode(&cred); err != nil {
			return fmt.Errorf("--credentials: %w", err)
		}
	}
	if *city == "" {
		*city = "440300"
		if len(cred.Cities) > 0 {
			*city = cred.Cities[0]
		}
	}
	c, err := client.New(client.Config{BaseURL: *baseURL, AppID: cred.AppID, MchID: cred.MchID, APIKey: cred.APIKey, Secret: cred.Secret})
	if err != nil {
		return fmt.Errorf("%w (give --credentials, or --appid --mch-id --key --secret)", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *publicURL == "" {
		*publicURL = "http://" + ln.Addr().String()
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	app := NewApp(Config{Client: c, APIKey: cred.APIKey, PublicURL: *publicURL, HospitalName: cred.Name,
		CityID: *city, MedpayURL: *baseURL, AppID: cred.AppID, Logger: logger})
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "%s is open at %s (paying through %s)\n", cred.Name, *publicURL, *baseURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

func or(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}
