package client

import (
	"bytes"
	"context"
	"errors"

	"github.com/medpay/medpay/wire"
)

// Endpoint paths (docs/api).
const (
	PathUnifiedOrder = "/payinsurance/unifiedorder"
	PathQueryOrder   = "/payinsurance/queryorder"
	PathCloseOrder   = "/payinsurance/closeorder"
	PathRefund       = "/payinsurance/refund"
	PathQueryRefund  = "/payinsurance/queryrefund"
	PathMicroPay     = "/payinsurance/micropay"
	PathGetMedInfo   = "/payinsurance/getmedinfo"
	PathGetBindURL   = "/payinsurance/getbindurl"
	PathBillDownload = "/payinsurance/billdownload"
)

var errNilRequest = errors.New("client: nil request")

// UnifiedOrder places an order and returns where the payer pays (docs/api/orders.md (unifiedorder)).
func (c *Client) UnifiedOrder(ctx context.Context, req *UnifiedOrderRequest) (*UnifiedOrderResponse, error) {
	if req == nil {
		return nil, errNilRequest
	}
	out := new(UnifiedOrderResponse)
	if err := c.call(ctx, PathUnifiedOrder, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// QueryOrder returns an order's current state (docs/api/orders.md (queryorder)). Unknown order: err_code 502.
func (c *Client) QueryOrder(ctx context.Context, req *QueryOrderRequest) (*Order, error) {
	if req == nil {
		return nil, errNilRequest
	}
	out := new(Order)
	if err := c.call(ctx, PathQueryOrder, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CloseOrder closes an unpaid order (docs/api/orders.md (closeorder)): err_code 503 when it was paid, 505 while
// the payer is confirming. Closing a closed order succeeds.
func (c *Client) CloseOrder(ctx context.Context, req *CloseOrderRequest) (*CloseOrderResponse, error) {
	if req == nil {
		return nil, errNilRequest
	}
	out := new(CloseOrderResponse)
	if err := c.call(ctx, PathCloseOrder, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Refund refunds a paid order, fully or in part (docs/api/refunds.md (refund)).
func (c *Client) Refund(ctx context.Context, req *RefundRequest) (*Refund, error) {
	if req == nil {
		return nil, errNilRequest
	}
	out := new(Refund)
	if err := c.call(ctx, PathRefund, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// QueryRefund returns a refund's state (docs/api/refunds.md (queryrefund)). Unknown refund: err_code 508.
func (c *Client) QueryRefund(ctx context.Context, req *QueryRefundRequest) (*Refund, error) {
	if req == nil {
		return nil, errNilRequest
	}
	out := new(Refund)
	if err := c.call(ctx, PathQueryRefund, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// MicroPay charges the payer's scanned payment code (刷码付, docs/api/orders.md (micropay)) and returns the
// order; USERPAYING means the payer must still confirm: poll QueryOrder.
func (c *Client) MicroPay(ctx context.Context, req *MicroPayRequest) (*Order, error) {
	if req == nil {
		return nil, errNilRequest
	}
	out := new(Order)
	if err := c.call(ctx, PathMicroPay, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetMedInfo returns the payer's bound card, masked (docs/api/cards.md (getmedinfo)); err_code 511 when the
// payer has none.
func (c *Client) GetMedInfo(ctx context.Context, req *GetMedInfoRequest) (*MedInfo, error) {
	if req == nil {
		return nil, errNilRequest
	}
	out := new(MedInfo)
	if err := c.call(ctx, PathGetMedInfo, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetBindURL returns a single-use card-binding link for the payer (docs/api/cards.md (getbindurl)).
func (c *Client) GetBindURL(ctx context.Context, req *GetBindURLRequest) (*BindURL, error) {
	if req == nil {
		return nil, errNilRequest
	}
	out := new(BindURL)
	if err := c.call(ctx, PathGetBindURL, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// BillDownload returns the bill of a past day as the platform sends it (docs/api/bills.md): the
// CSV-like text, or gzip bytes with TarType GZIP. A failure comes as the XML envelope and is
// returned as an error (err_code 520: no bill for that day).
func (c *Client) BillDownload(ctx context.Context, req *BillDownloadRequest) ([]byte, error) {
	if req == nil {
		return nil, errNilRequest
	}
	resp, body, err := c.post(ctx, PathBillDownload, req, maxBill)
	if err != nil {
		return nil, err
	}
	if isXML(resp, body) {
		m, err := wire.Decode(bytes.NewReader(body))
		if err != nil {
			return nil, &HTTPError{StatusCode: resp.StatusCode, Body: snippet(body)}
		}
		if err := c.finish(m, resp.Header.Get("X-Request-Id"), nil); err != nil {
			return nil, err
		}
		return nil, &HTTPError{StatusCode: resp.StatusCode, Body: "an XML envelope without a bill: " + snippet(body)}
	}
	if resp.StatusCode != 200 {
		return nil, &HTTPError{StatusCode: resp.StatusCode, Body: snippet(body)}
	}
	return body, nil
}
