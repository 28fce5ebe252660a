package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

const sandboxUsage = `usage:
  medpay sandbox persons [--city CODE] [--scenario NAME] [--json] [--only NAME]
  medpay sandbox bind --openid OPENID (--id-no ID_NO | --city CODE --scenario NAME)
  medpay sandbox confirm [--pin PIN] MED_TRANS_ID
  medpay sandbox paycode --openid OPENID [--only auth_code]

Calls the sandbox helper API of a platform running in sandbox mode (docs/api/sandbox.md): lists
the insured test persons, binds one to a payer of the hospital, confirms an order as the payer
would on the payment page (PIN 123456), issues a payment code for micropay. Takes --base-url and
--appid like the developer commands (MEDPAY_BASE_URL, MEDPAY_APPID).
`

// sandboxFlags are the flags every sandbox subcommand takes.
type sandboxFlags struct{ baseURL, appid, field *string }

func addSandboxFlags(fs *flag.FlagSet) *sandboxFlags {
	return &sandboxFlags{
		baseURL: fs.String("base-url", "http://127.0.0.1:8080", "the platform's URL"),
		appid:   fs.String("appid", "", "the hospital's appid"),
		field:   fs.String("only", "", "print only this field's value (of the first person, for persons)"),
	}
}

func runSandbox(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand("sandbox", sandboxUsage, args, stdout, stderr)
	if err != nil {
		return err
	}
	fs := newFlags("sandbox "+sub, stdout)
	setUsage(fs, sandboxUsage)
	sf := addSandboxFlags(fs)
	switch sub {
	case "persons":
		city := fs.String("city", "", "only this city (6-digit code)")
		scenario := fs.String("scenario", "", "only this scenario (employee, retiree, resident, acct_empty, suspended, ...)")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := parseFlags(fs, rest, getenv); err != nil {
			return err
		}
		q := url.Values{}
		if *city != "" {
			q.Set("city_id", *city)
		}
		if *scenario != "" {
			q.Set("scenario", *scenario)
		}
		var persons []map[string]any
		if err := sandboxCall(ctx, http.MethodGet, *sf.baseURL+"/sandbox/persons?"+q.Encode(), nil, &persons); err != nil {
			return err
		}
		if *sf.field != "" {
			if len(persons) == 0 {
				return errors.New("sandbox persons: nobody matches")
			}
			return printField(stdout, persons[0], *sf.field)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(persons)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CITY\tSCENARIO\tNAME\tID_NO\tCARD_NO\tPIN")
		for _, p := range persons {
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%v\n", p["city_id"], p["scenario"], p["name"], p["id_no"], p["card_no"], p["pin"])
		}
		return tw.Flush()
	case "bind":
		openid := fs.String("openid", "", "required: the payer's openid under --appid")
		idNo := fs.String("id-no", "", "the test person's ID number (or --city and --scenario)")
		city := fs.String("city", "", "with --scenario: bind that city's person of the scenario")
		scenario := fs.String("scenario", "", "with --city: the scenario")
		if err := parseFlags(fs, rest, getenv); err != nil {
			return err
		}
		if *sf.appid == "" || *openid == "" {
			return errors.New("sandbox bind: --appid (MEDPAY_APPID) and --openid are required")
		}
		if *idNo == "" {
			if *city == "" || *scenario == "" {
				return errors.New("sandbox bind: give --id-no, or --city and --scenario")
			}
			var persons []map[string]any
			q := url.Values{"city_id": {*city}, "scenario": {*scenario}}
			if err := sandboxCall(ctx, http.MethodGet, *sf.baseURL+"/sandbox/persons?"+q.Encode(), nil, &persons); err != nil {
				return err
			}
			if len(persons) == 0 {
				return fmt.Errorf("sandbox bind: no test person of scenario %s in %s", *scenario, *city)
			}
			*idNo = fmt.Sprint(persons[0]["id_no"])
		}
		var out map[string]any
		body := map[string]string{"appid": *sf.appid, "openid": *openid, "id_no": *idNo}
		if err := sandboxCall(ctx, http.MethodPost, *sf.baseURL+"/sandbox/bindings", body, &out); err != nil {
			return err
		}
		return printMap(stdout, out, *sf.field)
	case "confirm":
		pin := fs.String("pin", "123456", "the payer's PIN")
		pos, err := parseInterleaved(fs, rest, getenv)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return errors.New("sandbox confirm: give the order's MED_TRANS_ID")
		}
		var out map[string]any
		if err := sandboxCall(ctx, http.MethodPost, *sf.baseURL+"/sandbox/orders/"+url.PathEscape(pos[0])+"/confirm", map[string]string{"pin": *pin}, &out); err != nil {
			return err
		}
		return printMap(stdout, out, *sf.field)
	case "paycode":
		openid := fs.String("openid", "", "required: the payer's openid under --appid")
		if err := parseFlags(fs, rest, getenv); err != nil {
			return err
		}
		if *sf.appid == "" || *openid == "" {
			return errors.New("sandbox paycode: --appid (MEDPAY_APPID) and --openid are required")
		}
		var out map[string]any
		if err := sandboxCall(ctx, http.MethodPost, *sf.baseURL+"/sandbox/paycode", map[string]string{"appid": *sf.appid, "openid": *openid}, &out); err != nil {
			return err
		}
		return printMap(stdout, out, *sf.field)
	}
	return unknownSub("sandbox", sandboxUsage, sub, stderr)
}

// sandboxCall sends a JSON request (body nil: none) and decodes the JSON answer into out; an
// answer other than 200 is an error carrying the platform's message.
func sandboxCall(ctx context.Context, method, u string, body, out any) error {
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNotFound && strings.Contains(string(data), "404 page not found") {
		return fmt.Errorf("%s: no sandbox here (is the platform running with --sandbox?)", u)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s %s", method, u, resp.Status, strings.TrimSpace(string(data)))
	}
	return json.Unmarshal(data, out)
}

// printMap prints a JSON object as "name  value" lines in name order, or one field's value.
func printMap(w io.Writer, m map[string]any, field string) error {
	if field != "" {
		return printField(w, m, field)
	}
	keys := make([]string, 0, len(m))
	width := 0
	for k := range m {
		keys = append(keys, k)
		width = max(width, len(k))
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%-*s  %v\n", width, k, m[k])
	}
	return nil
}

func printField(w io.Writer, m map[string]any, field string) error {
	v, ok := m[field]
	if !ok {
		return fmt.Errorf("the answer has no field %q", field)
	}
	_, err := fmt.Fprintln(w, v)
	return err
}
