// Package medins is the Go SDK of medpay's 医保 2.0 API (/v3/, v3.md) for hospitals and service
// providers: typed requests, APIv3 request signing, verification of every answer and callback
// with the platform's public key, AES-256-GCM decryption of callbacks, RSA-OAEP encryption of the
// payer's sensitive fields and the cashier's paySign.
//
//	c, err := medins.New(medins.Config{
//		BaseURL: "https://medpay.example.com", MchID: "19…", SerialNo: "…",
//		PrivateKey: merchantPEM, APIv3Key: "…", PlatformPublicKey: platformPEM, PlatformPublicKeyID: "PUB_KEY_ID_…",
//	})
//	prepayID, err := c.Prepay(ctx, &medins.PrepayRequest{…})
//	o, err := c.CreateOrder(ctx, &medins.OrderRequest{…, PrepayID: prepayID})
//	params, err := c.PayParams(appID, prepayID, o.MixTradeNo) // for requestMedicalInsurancePay
//
// Errors the platform answered are *apiv3.Error (Status, Code such as RULE_LIMIT, Message).
// In service-provider mode set SubMchID; it is added to every request.
package medins

import (
	"context"
	"crypto/md5"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/medpay/medpay/apiv3"
)

// Config are a merchant's APIv3 credentials (medpay merchant create --v3).
type Config struct {
	BaseURL             string
	MchID               string
	SerialNo            string // merchant_serial_no
	PrivateKey          string // merchant_private_key (PEM)
	APIv3Key            string // apiv3_key: opens callbacks
	PlatformPublicKey   string // platform_public_key (PEM)
	PlatformPublicKeyID string // platform_public_key_id
	SubMchID            string // the hospital, in service-provider mode
	HTTP                *http.Client
}

// Client calls the 2.0 API as one merchant.
type Client struct {
	cfg      Config
	api      *apiv3.Client
	key      *rsa.PrivateKey
	platform *rsa.PublicKey
	verifier *apiv3.AnswerVerifier // callbacks: a nonce store of their own
}

// New checks the credentials and returns a client.
func New(cfg Config) (*Client, error) {
	key, err := apiv3.ParsePrivateKey([]byte(cfg.PrivateKey))
	if err != nil {
		return nil, err
	}
	pub, err := apiv3.ParsePublicKey([]byte(cfg.PlatformPublicKey))
	if err != nil {
		return nil, err
	}
	if len(cfg.APIv3Key) != apiv3.KeySize {
		return nil, fmt.Errorf("medins: APIv3 key of %d characters, want %d", len(cfg.APIv3Key), apiv3.KeySize)
	}
	if cfg.MchID == "" || cfg.SerialNo == "" || cfg.PlatformPublicKeyID == "" || cfg.BaseURL == "" {
		return nil, errors.New("medins: BaseURL, MchID, SerialNo and PlatformPublicKeyID are required")
	}
	return &Client{cfg: cfg, key: key, platform: pub,
		api: &apiv3.Client{BaseURL: cfg.BaseURL, MchID: cfg.MchID, SerialNo: cfg.SerialNo, Key: key, HTTP: cfg.HTTP,
			Verifier: &apiv3.AnswerVerifier{Key: pub, KeyID: cfg.PlatformPublicKeyID}},
		verifier: &apiv3.AnswerVerifier{Key: pub, KeyID: cfg.PlatformPublicKeyID}}, nil
}

func (c *Client) sub(q url.Values) string {
	if c.cfg.SubMchID != "" {
		q.Set("sub_mchid", c.cfg.SubMchID)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Prepay places the JSAPI order for the cash part and returns its prepay_id.
func (c *Client) Prepay(ctx context.Context, req *PrepayRequest) (string, error) {
	r := *req
	r.MchID, r.SubMchID = c.cfg.MchID, c.cfg.SubMchID
	var ans apiv3.PrepayAnswer
	if err := c.api.Do(ctx, http.MethodPost, PathJSAPI, &r, &ans); err != nil {
		return "", err
	}
	return ans.PrepayID, nil
}

// QueryPrepay returns a JSAPI order's state.
func (c *Client) QueryPrepay(ctx context.Context, outTradeNo string) (*PrepayState, error) {
	var out PrepayState
	err := c.api.Do(ctx, http.MethodGet, PathJSAPIByOutNo+url.PathEscape(outTradeNo)+c.sub(url.Values{"mchid": {c.cfg.MchID}}), nil, &out)
	return &out, err
}

// CreateOrder places the 医保 order. Encrypt the payer's name and ID digest with
// EncryptSensitive first.
func (c *Client) CreateOrder(ctx context.Context, req *OrderRequest) (*Order, error) {
	r := *req
	r.SubMchID = c.cfg.SubMchID
	var out Order
	if err := c.api.Do(ctx, http.MethodPost, PathOrders, &r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// QueryByMixTradeNo returns an order by the platform's number.
func (c *Client) QueryByMixTradeNo(ctx context.Context, mixTradeNo string) (*Order, error) {
	var out Order
	err := c.api.Do(ctx, http.MethodGet, PathByMixTradeNo+url.PathEscape(mixTradeNo)+c.sub(url.Values{}), nil, &out)
	return &out, err
}

// QueryByOutTradeNo returns an order by the hospital's number.
func (c *Client) QueryByOutTradeNo(ctx context.Context, outTradeNo string) (*Order, error) {
	var out Order
	err := c.api.Do(ctx, http.MethodGet, PathByOutTradeNo+url.PathEscape(outTradeNo)+c.sub(url.Values{}), nil, &out)
	return &out, err
}

// NotifyRefund reports that the bureau refunded the insurance part (6203 done by the hospital).
func (c *Client) NotifyRefund(ctx context.Context, mixTradeNo string, req *RefundNotify) error {
	r := *req
	r.SubMchID = c.cfg.SubMchID
	return c.api.Do(ctx, http.MethodPost, PathRefundsNotify+"?"+url.Values{"mix_trade_no": {mixTradeNo}}.Encode(), &r, nil)
}

// Refund refunds the cash part, with the same out_refund_no as the insurance refund.
func (c *Client) Refund(ctx context.Context, req *CashRefundRequest) (*CashRefund, error) {
	r := *req
	r.SubMchID = c.cfg.SubMchID
	var out CashRefund
	if err := c.api.Do(ctx, http.MethodPost, PathRefunds, &r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// QueryRefund returns a cash refund.
func (c *Client) QueryRefund(ctx context.Context, outRefundNo string) (*CashRefund, error) {
	var out CashRefund
	err := c.api.Do(ctx, http.MethodGet, PathRefunds+"/"+url.PathEscape(outRefundNo)+c.sub(url.Values{}), nil, &out)
	return &out, err
}

// EncryptSensitive encrypts a payer's field (name, id_digest) for the platform.
func (c *Client) EncryptSensitive(s string) (string, error) {
	return apiv3.EncryptSensitive(c.platform, s)
}

// IDDigest is id_digest: the lower-case MD5 hex of the upper-cased ID number.
func IDDigest(idNo string) string {
	sum := md5.Sum([]byte(strings.ToUpper(idNo)))
	return hex.EncodeToString(sum[:])
}

// PayParams are requestMedicalInsurancePay's parameters (v3.md §3).
type PayParams struct {
	MixTradeNo string `json:"mixTradeNo"`
	AppID      string `json:"appId"`
	TimeStamp  string `json:"timeStamp"`
	NonceStr   string `json:"nonceStr"`
	Package    string `json:"package"`
	SignType   string `json:"signType"`
	PaySign    string `json:"paySign"`
}

// PayParams signs the cashier's parameters for an order (prepayID empty for INSURANCE_ONLY).
func (c *Client) PayParams(appID, prepayID, mixTradeNo string) (*PayParams, error) {
	p := &PayParams{MixTradeNo: mixTradeNo, AppID: appID, TimeStamp: apiv3.Timestamp(time.Now()), NonceStr: apiv3.Nonce(),
		Package: "prepay_id=" + prepayID, SignType: "RSA"}
	sig, err := apiv3.Sign(c.key, []byte(p.AppID+"\n"+p.TimeStamp+"\n"+p.NonceStr+"\n"+p.Package+"\n"))
	if err != nil {
		return nil, err
	}
	p.PaySign = sig
	return p, nil
}

// ParseCallback verifies a MEDICAL_INSURANCE.SUCCESS callback's signature (probes and replays
// refused) and decrypts its order.
func (c *Client) ParseCallback(ctx context.Context, h http.Header, body []byte) (*Order, error) {
	n, pt, err := apiv3.ParseCallback(ctx, c.verifier, []byte(c.cfg.APIv3Key), h, body)
	if err != nil {
		return nil, err
	}
	if n.EventType != EventSuccess {
		return nil, fmt.Errorf("medins: callback event %s", n.EventType)
	}
	var o Order
	if err := json.Unmarshal(pt, &o); err != nil {
		return nil, fmt.Errorf("medins: callback resource: %w", err)
	}
	return &o, nil
}

// ParseTransaction verifies and opens the JSAPI order's TRANSACTION.SUCCESS callback (sent to
// the prepay's notify_url).
func (c *Client) ParseTransaction(ctx context.Context, h http.Header, body []byte) (*apiv3.Transaction, error) {
	n, pt, err := apiv3.ParseCallback(ctx, c.verifier, []byte(c.cfg.APIv3Key), h, body)
	if err != nil {
		return nil, err
	}
	if n.EventType != apiv3.EventTransactionSuccess {
		return nil, fmt.Errorf("medins: callback event %s", n.EventType)
	}
	var t apiv3.Transaction
	if err := json.Unmarshal(pt, &t); err != nil {
		return nil, fmt.Errorf("medins: callback resource: %w", err)
	}
	return &t, nil
}

// CallbackHandler answers the platform's callbacks: 204 once handle accepted the verified order,
// 4XX with {"code":"FAIL"} for anything unverified, 500 when handle fails (the platform retries).
func (c *Client) CallbackHandler(handle func(ctx context.Context, o *Order) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, apiv3.MaxBody+1))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		o, err := c.ParseCallback(r.Context(), r.Header, body)
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write(apiv3.CallbackFail("verification failed"))
			return
		}
		if err := handle(r.Context(), o); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(apiv3.CallbackFail("not processed"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
