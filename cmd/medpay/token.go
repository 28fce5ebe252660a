package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/medpay/medpay/client"
	"github.com/medpay/medpay/wire"
)

// apiFlags are the flags of the commands that call the open API through the SDK. Each can come
// from the environment (MEDPAY_BASE_URL, MEDPAY_APPID, MEDPAY_MCH_ID, MEDPAY_KEY, MEDPAY_SECRET,
// MEDPAY_SUB_APPID, MEDPAY_SUB_MCH_ID, MEDPAY_SIGN_TYPE), so a developer exports them once.
type apiFlags struct {
	baseURL, appid, mchID, key, secret, subAppID, subMchID, signType *string
	asJSON                                                           *bool
	field                                                            *string
	tokenCache                                                       *string

	c *client.Client // the client built, whose token keepToken saves
}

func addAPIFlags(fs *flag.FlagSet) *apiFlags {
	return &apiFlags{
		baseURL:  fs.String("base-url", "http://127.0.0.1:8080", "the platform's URL"),
		appid:    fs.String("appid", "", "required: appid: the hospital's, or the service provider's"),
		mchID:    fs.String("mch-id", "", "required: mch_id: the hospital's, or the service provider's"),
		key:      fs.String("key", "", "required: the API key of mch_id (signs requests, verifies answers)"),
		secret:   fs.String("secret", "", "required: the app secret of appid (for the access token)"),
		subAppID: fs.String("sub-appid", "", "service-provider mode: the hospital's appid"),
		subMchID: fs.String("sub-mch-id", "", "service-provider mode: the hospital's mch_id"),
		signType: fs.String("sign-type", "", "MD5 (default) or HMAC-SHA256"),
		asJSON:   fs.Bool("json", false, "print the answer as JSON"),
		field:    fs.String("only", "", "print only this field's value (e.g. med_trans_id)"),
		tokenCache: fs.String("token-cache", "", "file keeping the access token between commands (mode 0600; default medpay/tokens.json "+
			"in the user's cache directory; off: none)"),
	}
}

// client builds the SDK client from the flags.
func (a *apiFlags) client() (*client.Client, error) {
	for _, f := range []struct{ v, name string }{{*a.appid, "appid"}, {*a.mchID, "mch-id"}, {*a.key, "key"}, {*a.secret, "secret"}} {
		if f.v == "" {
			return nil, fmt.Errorf("--%s (or %s) is required", f.name, envName(f.name))
		}
	}
	c, err := client.New(client.Config{
		BaseURL: *a.baseURL, AppID: *a.appid, MchID: *a.mchID, APIKey: *a.key, Secret: *a.secret,
		SubAppID: *a.subAppID, SubMchID: *a.subMchID, SignType: *a.signType,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	})
	if err != nil {
		return nil, err
	}
	a.c = c
	loadToken(tokenCachePath(*a.tokenCache), a.cacheKey(), c)
	return c, nil
}

func (a *apiFlags) cacheKey() string {
	return tokenCacheKey(strings.TrimRight(*a.baseURL, "/"), *a.appid, *a.subAppID, *a.secret)
}

// keepToken saves the token the command used for the next one (deferred by every command that
// builds a client). A cache that cannot be written only costs a new token next time.
func (a *apiFlags) keepToken() {
	if a.c != nil {
		saveToken(tokenCachePath(*a.tokenCache), a.cacheKey(), a.c)
	}
}

// envelope fields left out when printing an answer: the caller sees only what it asked about.
var envelopeFields = map[string]bool{"return_code": true, "return_msg": true, "result_code": true, "nonce_str": true, "sign": true, "sign_type": true}

// print prints a verified answer as the flags ask: one field's value, JSON, or name-value lines.
func (a *apiFlags) print(w io.Writer, m *wire.Message) error {
	if *a.field != "" {
		if !m.Has(*a.field) {
			return fmt.Errorf("the answer has no field %q", *a.field)
		}
		_, err := fmt.Fprintln(w, m.Get(*a.field))
		return err
	}
	return printAnswer(w, m, *a.asJSON)
}

// printAnswer prints the fields of a verified answer in the order the platform sent them: one
// "name  value" line each, or one JSON object.
func printAnswer(w io.Writer, m *wire.Message, asJSON bool) error {
	var keys []string
	for _, k := range m.Keys() {
		if !envelopeFields[k] {
			keys = append(keys, k)
		}
	}
	if asJSON {
		return printJSONObject(w, keys, m.Get)
	}
	width := 0
	for _, k := range keys {
		width = max(width, len(k))
	}
	for _, k := range keys {
		fmt.Fprintf(w, "%-*s  %s\n", width, k, escapeNewlines(m.Get(k)))
	}
	return nil
}

// printJSONObject writes {"k":"v",...} with the keys in the given order.
func printJSONObject(w io.Writer, keys []string, get func(string) string) error {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(get(k))
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// escapeNewlines keeps multi-line values (response_content) on one line.
func escapeNewlines(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// apiError makes an SDK error readable on the command line.
func apiError(what string, err error) error {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if client.IsProtocol(err, client.MsgBadSignature) {
		return fmt.Errorf("%s: %w (check --key, or compare with 'medpay sign')", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("token", stdout)
	api := addAPIFlags(fs)
	setUsage(fs, tokenUsage)
	fresh := fs.Bool("new", false, "ask for a new token even when the cached one is still good (cuts the older ones to 5 minutes)")
	defer api.keepToken()
	fs.Lookup("key").Usage = "the API key of mch_id (not needed for a token)"
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	// The API key is not needed for a token; the SDK wants one, so any placeholder will do.
	if *api.key == "" {
		*api.key = "-"
	}
	if *api.subAppID != "" && *api.subMchID == "" {
		*api.subMchID = "-" // nor is the hospital's mch_id
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	if *fresh {
		c.SetAccessToken("", time.Time{})
	}
	tok, expires, err := c.AccessToken(ctx)
	if err != nil {
		return apiError("token", err)
	}
	in := int(time.Until(expires).Round(time.Second).Seconds())
	switch *api.field {
	case "":
	case "access_token":
		_, err := fmt.Fprintln(stdout, tok)
		return err
	case "expires_in":
		_, err := fmt.Fprintln(stdout, in)
		return err
	default:
		return fmt.Errorf("token: --only is access_token or expires_in, not %q", *api.field)
	}
	if *api.asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"access_token": tok, "expires_in": in, "expires_at": expires.In(wire.CST).Format(time.RFC3339)})
	}
	fmt.Fprintf(stdout, "access_token  %s\nexpires_in    %d\nexpires_at    %s\n", tok, in, expires.In(wire.CST).Format(time.RFC3339))
	return nil
}

const tokenUsage = `usage: medpay token [flags]

Gets an access token: /cgi-bin/token, or /payinsurance/gettoken with --sub-appid.

A token is valid 7200 seconds, and asking for a new one cuts every older token of the same appid
down to 5 minutes. So the developer commands keep the token they got in a cache file (mode 0600,
under the user's cache directory, one entry per base URL and appid) and reuse it while it has more
than 5 minutes left; --new asks for a fresh one.
`
