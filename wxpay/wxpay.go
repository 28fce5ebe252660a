// Package wxpay is the platform's client of a WeChat Pay APIv3 cash channel: JSAPI and native
// prepay, the JSAPI cashier's paySign parameters, query, close, refund, refund query and the
// callbacks, every answer and callback verified with the channel's public key. It implements
// medpay.CashGateway. Pointed at WeChat Pay (https://api.mch.weixin.qq.com) with a merchant's
// real credentials it works unchanged; pointed at medpay's simulated channel (medpay cash serve,
// or <base-url>/cash in the sandbox) it also knows that channel's cashier page.
package wxpay

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
)

// WeChatPay is WeChat Pay's API base.
const WeChatPay = "https://api.mch.weixin.qq.com"

// Config is a merchant's credentials at the channel and the channel's public key.
type Config struct {
	BaseURL       string // default WeChatPay
	MchID         string
	SerialNo      string          // the merchant key's serial number
	PrivateKey    *rsa.PrivateKey // the merchant's key
	APIv3Key      []byte          // 32 bytes, opens callbacks
	PlatformKey   *rsa.PublicKey  // the channel's public key …
	PlatformKeyID string          // … and its id, PUB_KEY_ID_…
	// CashierURL is the simulated channel's cashier page (<base>/cashier); empty for WeChat Pay,
	// whose cashier the payer's WeChat opens from the PayParams.
	CashierURL string
	HTTP       *http.Client     // nil: one with a 10 s timeout
	Now        func() time.Time // nil: time.Now
	Nonces     apiv3.NonceStore // replay store for answers and callbacks; nil: in memory
}

// Client is a WeChat Pay v3 client for one merchant. It is safe for concurrent use.
type Client struct {
	cfg      Config
	api      *apiv3.Client
	verifier *apiv3.AnswerVerifier
}

var _ medpay.CashGateway = (*Client)(nil)

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.MchID == "":
		return nil, errors.New("wxpay: no mchid")
	case cfg.SerialNo == "":
		return nil, errors.New("wxpay: no merchant key serial number")
	case cfg.PrivateKey == nil:
		return nil, errors.New("wxpay: no merchant private key")
	case len(cfg.APIv3Key) != apiv3.KeySize:
		return nil, fmt.Errorf("wxpay: APIv3 key of %d bytes, want %d", len(cfg.APIv3Key), apiv3.KeySize)
	case cfg.PlatformKey == nil || cfg.PlatformKeyID == "":
		return nil, errors.New("wxpay: no channel public key or key id")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = WeChatPay
	}
	if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("wxpay: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &apiv3.AnswerVerifier{Key: cfg.PlatformKey, KeyID: cfg.PlatformKeyID, Nonces: cfg.Nonces, Now: cfg.Now}
	return &Client{cfg: cfg, verifier: v, api: &apiv3.Client{BaseURL: cfg.BaseURL, MchID: cfg.MchID,
		SerialNo: cfg.SerialNo, Key: cfg.PrivateKey, Verifier: v, HTTP: cfg.HTTP, Now: cfg.Now}}, nil
}

// classify turns a failed call into the domain's terms: no or unverifiable answer and 5XX are
// ErrOutcomeUnknown; 404 is ErrNotFound; the *apiv3.Error stays reachable with errors.As.
func classify(op string, err error, conflict ...string) error {
	if err == nil {
		return nil
	}
	var e *apiv3.Error
	if errors.As(err, &e) {
		return e.PortError("wxpay "+op, conflict...)
	}
	if errors.Is(err, apiv3.ErrTransport) || errors.Is(err, apiv3.ErrUnverified) {
		return fmt.Errorf("wxpay %s: %w: %w", op, medpay.ErrOutcomeUnknown, err)
	}
	return fmt.Errorf("wxpay %s: %w", op, err)
}

// Prepay implements medpay.CashGateway.
func (c *Client) Prepay(ctx context.Context, r medpay.CashPrepayRequest) (*medpay.CashPrepay, error) {
	req := apiv3.PrepayRequest{AppID: r.AppID, MchID: c.cfg.MchID, Description: r.Description, OutTradeNo: r.OutTradeNo,
		Attach: r.Attach, NotifyURL: r.NotifyURL, Amount: apiv3.Amount{Total: r.Amount, Currency: "CNY"}}
	if !r.Expire.IsZero() {
		req.TimeExpire = r.Expire.In(medpay.CST).Format(time.RFC3339)
	}
	path := apiv3.PathNative
	if r.OpenID != "" {
		path, req.Payer = apiv3.PathJSAPI, &apiv3.Payer{OpenID: r.OpenID}
	}
	var ans apiv3.PrepayAnswer
	if err := c.api.Do(ctx, http.MethodPost, path, &req, &ans); err != nil {
		// The simulator answers a reused number INVALID_REQUEST; WeChat Pay's tables also name
		// OUT_TRADE_NO_USED.
		return nil, classify("prepay", err, apiv3.CodeInvalidRequest, "OUT_TRADE_NO_USED")
	}
	if (r.OpenID != "" && ans.PrepayID == "") || (r.OpenID == "" && ans.CodeURL == "") {
		return nil, fmt.Errorf("wxpay prepay: %w: answer without prepay_id or code_url", medpay.ErrOutcomeUnknown)
	}
	return &medpay.CashPrepay{OutTradeNo: r.OutTradeNo, PrepayID: ans.PrepayID, CodeURL: ans.CodeURL}, nil
}

// PayParams implements medpay.CashGateway: the merchant signs appId\ntimeStamp\nnonceStr\npackage\n.
func (c *Client) PayParams(appID, prepayID string) (*medpay.CashPayParams, error) {
	p := &medpay.CashPayParams{AppID: appID, TimeStamp: apiv3.Timestamp(c.cfg.Now()), NonceStr: apiv3.Nonce(),
		Package: "prepay_id=" + prepayID, SignType: "RSA"}
	sig, err := apiv3.Sign(c.cfg.PrivateKey, apiv3.PayMessage(p.AppID, p.TimeStamp, p.NonceStr, p.Package))
	if err != nil {
		return nil, err
	}
	p.PaySign = sig
	return p, nil
}

// CashierURL implements medpay.CashGateway.
func (c *Client) CashierURL(p *medpay.CashPayParams, returnURL string) (string, bool) {
	if c.cfg.CashierURL == "" {
		return "", false
	}
	q := url.Values{"appId": {p.AppID}, "timeStamp": {p.TimeStamp}, "nonceStr": {p.NonceStr},
		"package": {p.Package}, "signType": {p.SignType}, "paySign": {p.PaySign}}
	if returnURL != "" {
		q.Set("redirect_url", returnURL)
	}
	return c.cfg.CashierURL + "?" + q.Encode(), true
}

// QueryPayment implements medpay.CashGateway.
func (c *Client) QueryPayment(ctx context.Context, outTradeNo string) (*medpay.CashPayment, error) {
	var t apiv3.Transaction
	path := apiv3.PathByOutTrade + url.PathEscape(outTradeNo) + "?mchid=" + url.QueryEscape(c.cfg.MchID)
	if err := c.api.Do(ctx, http.MethodGet, path, nil, &t); err != nil {
		return nil, classify("query", err)
	}
	if t.OutTradeNo != outTradeNo || t.MchID != c.cfg.MchID {
		return nil, fmt.Errorf("wxpay query: %w: answer is about %s/%s", medpay.ErrOutcomeUnknown, t.MchID, t.OutTradeNo)
	}
	return payment(&t)
}

func payment(t *apiv3.Transaction) (*medpay.CashPayment, error) {
	p := &medpay.CashPayment{OutTradeNo: t.OutTradeNo, TransactionID: t.TransactionID, State: t.TradeState, StateDesc: t.TradeStateDesc}
	if t.Amount != nil {
		p.Amount, p.PayerAmount = t.Amount.Total, t.Amount.PayerTotal
	}
	if t.Payer != nil {
		p.OpenID = t.Payer.OpenID
	}
	if t.SuccessTime != "" {
		at, err := time.Parse(time.RFC3339, t.SuccessTime)
		if err != nil {
			return nil, fmt.Errorf("wxpay: success_time %q: %w", t.SuccessTime, err)
		}
		p.PaidAt = at
	}
	return p, nil
}

// Close implements medpay.CashGateway.
func (c *Client) Close(ctx context.Context, outTradeNo string) error {
	path := apiv3.PathByOutTrade + url.PathEscape(outTradeNo) + "/close"
	return classify("close", c.api.Do(ctx, http.MethodPost, path, &apiv3.CloseRequest{MchID: c.cfg.MchID}, nil), apiv3.CodeOrderPaid)
}

// Refund implements medpay.CashGateway.
func (c *Client) Refund(ctx context.Context, r medpay.CashRefundRequest) (*medpay.CashRefund, error) {
	req := apiv3.RefundRequest{OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo, Reason: r.Reason, NotifyURL: r.NotifyURL,
		Amount: apiv3.RefundRequestAmount{Refund: r.Amount, Total: r.Total, Currency: "CNY"}}
	var ans apiv3.Refund
	if err := c.api.Do(ctx, http.MethodPost, apiv3.PathRefunds, &req, &ans); err != nil {
		return nil, classify("refund", err)
	}
	if ans.OutRefundNo != r.OutRefundNo {
		return nil, fmt.Errorf("wxpay refund: %w: answer is about %s", medpay.ErrOutcomeUnknown, ans.OutRefundNo)
	}
	return ans.CashRefund()
}

// QueryRefund implements medpay.CashGateway.
func (c *Client) QueryRefund(ctx context.Context, outRefundNo string) (*medpay.CashRefund, error) {
	var ans apiv3.Refund
	if err := c.api.Do(ctx, http.MethodGet, apiv3.PathRefunds+"/"+url.PathEscape(outRefundNo), nil, &ans); err != nil {
		return nil, classify("refund query", err)
	}
	if ans.OutRefundNo != outRefundNo {
		return nil, fmt.Errorf("wxpay refund query: %w: answer is about %s", medpay.ErrOutcomeUnknown, ans.OutRefundNo)
	}
	return ans.CashRefund()
}

// ParseCallback implements medpay.CashGateway.
func (c *Client) ParseCallback(ctx context.Context, header map[string][]string, body []byte) (*medpay.CashEvent, error) {
	n, plain, err := apiv3.ParseCallback(ctx, c.verifier, c.cfg.APIv3Key, http.Header(header), body)
	if err != nil {
		return nil, fmt.Errorf("wxpay callback: %w", err)
	}
	ev := &medpay.CashEvent{ID: n.ID, Type: n.EventType}
	switch n.Resource.OriginalType {
	case apiv3.OriginalTypeTransaction:
		var t apiv3.Transaction
		if err := json.Unmarshal(plain, &t); err != nil {
			return nil, fmt.Errorf("wxpay callback %s: %w", n.ID, err)
		}
		if t.MchID != c.cfg.MchID {
			return nil, fmt.Errorf("wxpay callback %s: for merchant %q", n.ID, t.MchID)
		}
		if ev.Payment, err = payment(&t); err != nil {
			return nil, err
		}
	case apiv3.OriginalTypeRefund:
		var r apiv3.RefundNotice
		if err := json.Unmarshal(plain, &r); err != nil {
			return nil, fmt.Errorf("wxpay callback %s: %w", n.ID, err)
		}
		if r.MchID != c.cfg.MchID {
			return nil, fmt.Errorf("wxpay callback %s: for merchant %q", n.ID, r.MchID)
		}
		ev.Refund, err = (&apiv3.Refund{OutRefundNo: r.OutRefundNo, RefundID: r.RefundID, OutTradeNo: r.OutTradeNo,
			TransactionID: r.TransactionID, Status: r.RefundStatus, SuccessTime: r.SuccessTime,
			Amount: apiv3.RefundAmount{Refund: r.Amount.Refund, Total: r.Amount.Total}}).CashRefund()
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("wxpay callback %s: resource type %q", n.ID, n.Resource.OriginalType)
	}
	return ev, nil
}

// maxCallback bounds a callback body read by CallbackHandler.
const maxCallback = 64 << 10

// CallbackHandler is the notify URL's handler: it verifies and opens each callback and passes the
// event to handle. It answers 204 when handle returns nil, 500 {"code":"FAIL"} when handle fails
// (the channel retries later) and 400 {"code":"FAIL"} when the callback does not verify (a probe,
// a forgery, a replay). handle must be idempotent: a callback may come more than once.
func (c *Client) CallbackHandler(handle func(ctx context.Context, ev *medpay.CashEvent) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(status int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write(apiv3.CallbackFail(msg))
		}
		if r.Method != http.MethodPost {
			fail(http.StatusMethodNotAllowed, "POST only")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCallback))
		if err != nil {
			fail(http.StatusBadRequest, "body too large")
			return
		}
		ev, err := c.ParseCallback(r.Context(), r.Header, body)
		if err != nil {
			fail(http.StatusBadRequest, "verification failed")
			return
		}
		if err := handle(r.Context(), ev); err != nil {
			fail(http.StatusInternalServerError, "not processed")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
