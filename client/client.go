// Package client is the Go SDK of the medpay open API (the 微信医保支付-style
// /payinsurance/* interface) for hospitals, pharmacies and service providers.
//
// A Client holds one merchant's credentials. It gets and caches the access token (refreshing it
// before it expires, and once more when the platform says it is no longer valid), signs every
// request with a fresh nonce, verifies the signature of every answer, and turns the three layers
// of the answer into Go values: a protocol failure is a *ProtocolError, a business failure an
// *APIError carrying the err_code, success the typed response.
//
//	c, err := client.New(client.Config{
//		BaseURL: "https://medpay.example.com",
//		AppID:   "wx...", MchID: "19...", APIKey: "...", Secret: "...",
//	})
//	o, err := c.QueryOrder(ctx, &client.QueryOrderRequest{HospOutTradeNo: "H1"})
//	if client.IsCode(err, "502") { ... } // not found
//
// In service-provider mode (服务商模式) AppID, MchID, APIKey and Secret are the provider's and
// SubAppID, SubMchID name the hospital; one Client per hospital served.
//
// NotificationHandler receives the platform's notifications.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medpay/medpay/wire"
)

// Config is a client's settings.
type Config struct {
	BaseURL string // the platform, e.g. https://medpay.example.com (no trailing slash needed)
	AppID   string // the hospital's appid, or the service provider's
	MchID   string // the hospital's mch_id, or the service provider's
	APIKey  string // the 32-character signing key of MchID
	Secret  string // the app secret of AppID, for access tokens
	// SignType is "" or "MD5" (MD5, the default) or "HMAC-SHA256".
	SignType string

	// Service-provider mode: the hospital acted for.
	SubAppID string
	SubMchID string

	// HTTPClient sends the requests; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock deciding when the cached token is due for renewal; nil means time.Now.
	Now func() time.Time
	// RefreshBefore is how long before its expiry a token is renewed; 0 means 5 minutes.
	RefreshBefore time.Duration
}

// Client calls the open API for one merchant. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time
}

// maxAnswer bounds an XML answer; maxBill bounds a downloaded bill.
const (
	maxAnswer = 1 << 20
	maxBill   = 256 << 20
)

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	switch {
	case cfg.AppID == "":
		return nil, errors.New("client: AppID is required")
	case cfg.MchID == "":
		return nil, errors.New("client: MchID is required")
	case cfg.APIKey == "":
		return nil, errors.New("client: APIKey is required")
	case (cfg.SubAppID == "") != (cfg.SubMchID == ""):
		return nil, errors.New("client: service-provider mode needs both SubAppID and SubMchID")
	}
	if cfg.SignType != "" && cfg.SignType != wire.SignTypeMD5 && cfg.SignType != wire.SignTypeHMACSHA256 {
		return nil, fmt.Errorf("client: SignType %q: want MD5 or HMAC-SHA256", cfg.SignType)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = 5 * time.Minute
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{cfg: cfg, http: hc}, nil
}

// ProviderMode reports whether the client acts for a hospital as a service provider.
func (c *Client) ProviderMode() bool { return c.cfg.SubAppID != "" }

// AccessToken returns a valid access token and its expiry, from the cache or freshly fetched:
// /cgi-bin/token with Secret in independent mode, /payinsurance/gettoken in service-provider
// mode. Calls use it themselves; it is exported for tools.
func (c *Client) AccessToken(ctx context.Context) (string, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.cfg.Now().Before(c.expires.Add(-c.cfg.RefreshBefore)) {
		return c.token, c.expires, nil
	}
	if err := c.fetchToken(ctx); err != nil {
		return "", time.Time{}, err
	}
	return c.token, c.expires, nil
}

// invalidate drops the cached token if it is still tok (another call may have renewed it).
func (c *Client) invalidate(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

// fetchToken gets a new token; c.mu is held.
func (c *Client) fetchToken(ctx context.Context) error {
	if c.cfg.Secret == "" {
		return errors.New("client: Secret is required to get an access token")
	}
	now := c.cfg.Now()
	q := url.Values{}
	q.Set("appid", c.cfg.AppID)
	q.Set("secret", c.cfg.Secret)
	var path string
	if c.ProviderMode() {
		path = "/payinsurance/gettoken"
		q.Set("sub_appid", c.cfg.SubAppID)
	} else {
		path = "/cgi-bin/token"
		q.Set("grant_type", "client_credential")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.BaseURL+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, body, err := c.send(req, maxAnswer)
	if err != nil {
		return err
	}
	rid := resp.Header.Get("X-Request-Id")
	var tok string
	var ttl int64
	if c.ProviderMode() {
		m, err := decodeAnswer(resp, body)
		if err != nil {
			return err
		}
		if err := layered(m, rid); err != nil {
			return err
		}
		tok = m.Get("access_token")
		ttl, _ = strconv.ParseInt(m.Get("expires_in"), 10, 64)
	} else {
		var out struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int64  `json:"expires_in"`
			ErrCode     int    `json:"errcode"`
			ErrMsg      string `json:"errmsg"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return &HTTPError{StatusCode: resp.StatusCode, Body: snippet(body)}
		}
		if out.ErrCode != 0 {
			msg, r := splitRID(out.ErrMsg)
			if r == "" {
				r = rid
			}
			return &APIError{Code: strconv.Itoa(out.ErrCode), Description: msg, RequestID: r}
		}
		tok, ttl = out.AccessToken, out.ExpiresIn
	}
	if tok == "" || ttl <= 0 {
		return fmt.Errorf("client: token answer without access_token or expires_in (rid %s)", rid)
	}
	c.token, c.expires = tok, now.Add(time.Duration(ttl)*time.Second)
	return nil
}

// send performs req and reads at most limit bytes of the answer.
func (c *Client) send(req *http.Request, limit int64) (*http.Response, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("client: answer larger than %d bytes", limit)
	}
	return resp, body, nil
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// decodeAnswer reads the XML envelope of an answer.
func decodeAnswer(resp *http.Response, body []byte) (*wire.Message, error) {
	m, err := wire.Decode(bytes.NewReader(body))
	if err != nil || !m.Has("return_code") {
		return nil, &HTTPError{StatusCode: resp.StatusCode, Body: snippet(body)}
	}
	return m, nil
}

// layered turns return_code and result_code into errors (the signature, when there is one, has
// been checked before).
func layered(m *wire.Message, rid string) error {
	if m.Get("return_code") != "SUCCESS" {
		reason, r := splitRID(m.Get("return_msg"))
		if r == "" {
			r = rid
		}
		return &ProtocolError{ReturnMsg: reason, RequestID: r}
	}
	if m.Get("result_code") != "SUCCESS" {
		return &APIError{Code: m.Get("err_code"), Description: m.Get("err_code_des"), RequestID: rid}
	}
	return nil
}

// build makes the signed request message: the merchant's identifiers, the fields of req, a fresh
// nonce, sign_type and sign.
func (c *Client) build(req any) (*wire.Message, error) {
	m := wire.NewMessage()
	m.Set("appid", c.cfg.AppID)
	m.Set("mch_id", c.cfg.MchID)
	if c.ProviderMode() {
		m.Set("sub_appid", c.cfg.SubAppID)
		m.Set("sub_mch_id", c.cfg.SubMchID)
	}
	if req != nil {
		encodeFields(m, req)
	}
	m.Set("nonce_str", wire.Nonce())
	if c.cfg.SignType != "" {
		m.Set("sign_type", c.cfg.SignType)
	}
	m.Del("sign")
	if err := wire.SignInPlace(m, c.cfg.APIKey); err != nil {
		return nil, err
	}
	return m, nil
}

// post sends one signed call and returns the raw HTTP answer. It renews the token once when
// the platform says the cached one is no longer valid.
func (c *Client) post(ctx context.Context, path string, req any, limit int64) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		tok, _, err := c.AccessToken(ctx)
		if err != nil {
			return nil, nil, err
		}
		m, err := c.build(req) // a fresh nonce for every attempt
		if err != nil {
			return nil, nil, err
		}
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost,
			c.cfg.BaseURL+path+"?access_token="+url.QueryEscape(tok), bytes.NewReader(m.Bytes()))
		if err != nil {
			return nil, nil, err
		}
		hr.Header.Set("Content-Type", "text/xml; charset=utf-8")
		resp, body, err := c.send(hr, limit)
		if err != nil {
			return nil, nil, err
		}
		if attempt == 0 && isXML(resp, body) {
			if a, err := wire.Decode(bytes.NewReader(body)); err == nil && a.Get("return_code") == "FAIL" &&
				strings.HasPrefix(a.Get("return_msg"), MsgTokenInvalid) {
				c.invalidate(tok)
				continue
			}
		}
		return resp, body, nil
	}
}

func isXML(resp *http.Response, body []byte) bool {
	ct := resp.Header.Get("Content-Type")
	return strings.Contains(ct, "xml") || bytes.HasPrefix(bytes.TrimSpace(body), []byte("<xml"))
}

// call sends req to path and decodes a verified SUCCESS answer into out (a pointer to a struct
// with wire tags and a Raw field).
func (c *Client) call(ctx context.Context, path string, req, out any) error {
	resp, body, err := c.post(ctx, path, req, maxAnswer)
	if err != nil {
		return err
	}
	m, err := decodeAnswer(resp, body)
	if err != nil {
		return err
	}
	return c.finish(m, resp.Header.Get("X-Request-Id"), out)
}

// finish verifies a decoded answer and fills out.
func (c *Client) finish(m *wire.Message, rid string, out any) error {
	if m.Get("return_code") == "SUCCESS" && !wire.Verify(m, c.cfg.APIKey) {
		return fmt.Errorf("%w: answer to the call (rid %s)", ErrBadSignature, rid)
	}
	if err := layered(m, rid); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := decodeFields(m, out); err != nil {
		return err
	}
	setRaw(out, m)
	return nil
}
