package apiv3

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls an APIv3 server as a merchant: it signs every request with the merchant's key
// and verifies every answer with the channel's key before reading it.
type Client struct {
	BaseURL  string // e.g. https://api.mch.weixin.qq.com, or a simulator's base with a path
	MchID    string
	SerialNo string // the serial of the merchant key
	Key      *rsa.PrivateKey
	Verifier *AnswerVerifier // the channel's key
	HTTP     *http.Client    // nil: http.DefaultClient
	Now      func() time.Time
}

// ErrTransport is wrapped when a request got no complete answer (connection refused or reset,
// timeout): whether the server acted is unknown.
var ErrTransport = errors.New("apiv3: no answer")

// ErrUnverified is wrapped when an answer's signature does not verify: its content, success or
// error, must not be believed, and whether the server acted is unknown.
var ErrUnverified = errors.New("apiv3: answer not verified")

// Do sends method path (relative to BaseURL, with its query) with in as the JSON body (nil: no
// body), verifies the answer and decodes a 2XX answer's JSON into out (nil: ignored). A verified
// error answer is returned as an *Error; answers that fail verification wrap ErrUnverified and
// failed exchanges ErrTransport.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if err := c.Authorize(req, body); err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "medpay-apiv3/1") // WeChat Pay asks every caller to name itself
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrTransport, method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return fmt.Errorf("%w: %s %s: reading the answer: %v", ErrTransport, method, path, err)
	}
	if len(answer) > MaxBody {
		return fmt.Errorf("%w: %s %s: answer larger than %d bytes", ErrUnverified, method, path, MaxBody)
	}
	if err := c.Verifier.Verify(ctx, resp.Header, answer); err != nil {
		return fmt.Errorf("%w: %s %s answered %d: %v", ErrUnverified, method, path, resp.StatusCode, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{}
		if json.Unmarshal(answer, e) != nil || e.Code == "" {
			e = &Error{Code: CodeSystemError, Message: strings.TrimSpace(string(answer))}
		}
		e.Status = resp.StatusCode
		return e
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("apiv3: %s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

// Authorize sets req's Authorization header for body (the bytes req will send).
func (c *Client) Authorize(req *http.Request, body []byte) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	a := Authorization{MchID: c.MchID, NonceStr: Nonce(), Timestamp: Timestamp(now()), SerialNo: c.SerialNo}
	sig, err := Sign(c.Key, RequestMessage(req.Method, req.URL.RequestURI(), a.Timestamp, a.NonceStr, body))
	if err != nil {
		return err
	}
	a.Signature = sig
	req.Header.Set("Authorization", a.String())
	return nil
}
