package cash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/medpay/medpay"
)

// Unwrap lets callers tell a declined wallet and a wrong PIN from other refusals.
func (e *PayError) Unwrap() error {
	switch e.Code {
	case PayDeclined:
		return medpay.ErrDeclined
	case PayWrongPIN:
		return medpay.ErrWrongPIN
	}
	return nil
}

// SandboxPay pays the JSAPI order of prepayID from its payer's wallet with the PIN, as the
// cashier and POST /sandbox/pay do (a Local merchant is told by its OnPaid); the platform's own
// sandbox confirmation uses Local.SandboxPay, which answers the payment instead.
func (c *Channel) SandboxPay(ctx context.Context, prepayID, pin string) error {
	t, err := c.tradeByPrepay(ctx, prepayID, "")
	if err != nil {
		return err
	}
	_, err = c.Pay(ctx, t, "", "", pin)
	return err
}

// RemoteSandboxPay pays through the POST /sandbox/pay of a channel served at base: a refusal is a
// *PayError, as from SandboxPay. It answers no payment (nil): the helper's answer is not signed,
// so the platform learns the outcome by its gateway's verified query.
func RemoteSandboxPay(base string, hc *http.Client) func(ctx context.Context, prepayID, pin string) (*medpay.CashPayment, error) {
	base = strings.TrimRight(base, "/")
	return func(ctx context.Context, prepayID, pin string) (*medpay.CashPayment, error) {
		body, _ := json.Marshal(map[string]string{"prepay_id": prepayID, "pin": pin})
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/sandbox/pay", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cash sandbox pay: %w: %w", medpay.ErrOutcomeUnknown, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil, nil
		}
		var out struct{ Code, Message string }
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && out.Code != "" {
			return nil, &PayError{out.Code, out.Message}
		}
		return nil, fmt.Errorf("cash sandbox pay: %w: HTTP %d %s", medpay.ErrOutcomeUnknown, resp.StatusCode, out.Code)
	}
}

// RemoteWallets sets the sandbox wallets of a channel served at Base through its
// POST /sandbox/wallets, as the in-process Simulator's SetDeclining does.
type RemoteWallets struct {
	Base string
	HTTP *http.Client
}

// SetDeclining makes payer's wallet (appid/openid) decline payments, or pay again.
func (w RemoteWallets) SetDeclining(ctx context.Context, payer string, declining bool) error {
	appid, openid, _ := strings.Cut(payer, "/")
	body, _ := json.Marshal(map[string]any{"appid": appid, "openid": openid, "declining": declining})
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(w.Base, "/")+"/sandbox/wallets", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.HTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cash sandbox wallets: HTTP %d", resp.StatusCode)
	}
	return nil
}
