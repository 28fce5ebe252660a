package medins

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	api "github.com/medpay/medpay/client/medins"
	"github.com/medpay/medpay/notify"
)

// Callback event of a paid order (v3.md §4), and its resource's original type (medpay's name:
// the contract does not give one).
const (
	EventSuccess     = api.EventSuccess
	OriginalTypeMix  = "mix_order"
	summarySucceeded = "医保自费混合收款成功"
)

// callback builds o's MEDICAL_INSURANCE.SUCCESS callback, sealed under the APIv3 key of the
// merchant that placed the order (the service provider in provider mode), and returns the
// outbox insert to run in the transaction that makes o paid.
func (h *Handler) callback(ctx context.Context, o *medpay.Order) (func(*sql.Tx) error, error) {
	if o.NotifyURL == "" {
		return nil, nil
	}
	owner := o.MerchantID
	if o.ProviderID != 0 {
		owner = o.ProviderID
	}
	creds, err := h.cfg.Store.MerchantV3(ctx, owner)
	if err != nil {
		return nil, err
	}
	v, err := view(o)
	if err != nil {
		return nil, err
	}
	pt, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	now := h.cfg.Now()
	id := o.MedTransID + "-" + string(o.State)
	n, err := apiv3.NewNotification([]byte(creds.APIv3Key), id, EventSuccess, summarySucceeded, OriginalTypeMix, now, pt)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(n)
	if err != nil {
		return nil, err
	}
	row := &notify.Notification{NotifyID: id, Kind: notify.KindPay, MerchantID: o.MerchantID, OrderID: o.ID,
		URL: o.NotifyURL, Body: body, Format: notify.FormatV3, GiveUpAt: now.Add(creds.RetryWindow)}
	tx, err := h.transactionCallback(ctx, o, creds, now)
	if err != nil {
		return nil, err
	}
	if !h.cfg.Sandbox {
		return func(t *sql.Tx) error {
			if tx != nil {
				if err := notify.Enqueue(ctx, t, tx, now); err != nil {
					return err
				}
			}
			return notify.Enqueue(ctx, t, row, now)
		}, nil
	}
	// The sandbox also sends a signature probe, after the callback, tried once: its outbox row
	// ends delivered when the hospital refused it, dead when it accepted it (v3.md §4).
	probe := *row
	probe.NotifyID, probe.Format, probe.GiveUpAt = id+"-PROBE", notify.FormatV3Probe, now
	return func(t *sql.Tx) error {
		if tx != nil {
			if err := notify.Enqueue(ctx, t, tx, now); err != nil {
				return err
			}
		}
		if err := notify.Enqueue(ctx, t, row, now); err != nil {
			return err
		}
		return notify.Enqueue(ctx, t, &probe, now.Add(time.Millisecond))
	}, nil
}

// SignCallback signs a callback's headers at each attempt (notify.Options.SignV3).
func (h *Handler) SignCallback(hd http.Header, body []byte) error {
	return h.signer.SignHeaders(hd, body)
}

// transactionCallback is the JSAPI order's own TRANSACTION.SUCCESS to its notify_url, as JSAPI
// sends it (v3.md §4), when the order has a cash part; nil otherwise.
func (h *Handler) transactionCallback(ctx context.Context, o *medpay.Order, creds *medpay.MerchantV3, now time.Time) (*notify.Notification, error) {
	v, err := view(o)
	if err != nil || v.PrepayID == "" || o.CashStatus != medpay.LegSuccess {
		return nil, err
	}
	p, err := h.cfg.Store.PrepayByID(ctx, o.MerchantID, v.PrepayID)
	if err != nil {
		return nil, err
	}
	var req PrepayRequest
	if err := json.Unmarshal([]byte(p.Body), &req); err != nil {
		return nil, err
	}
	if req.NotifyURL == "" {
		return nil, nil
	}
	t := apiv3.Transaction{AppID: req.AppID, MchID: req.MchID, OutTradeNo: p.OutTradeNo, TransactionID: o.CashOrderID,
		TradeType: apiv3.TradeJSAPI, TradeState: apiv3.StateSuccess, TradeStateDesc: "支付成功", Attach: req.Attach,
		SuccessTime: o.TimeEnd.In(medpay.CST).Format(time.RFC3339), Payer: req.Payer,
		Amount: &apiv3.TransactionAmount{Total: p.Amount, PayerTotal: p.Amount, Currency: "CNY", PayerCurrency: "CNY"}}
	pt, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	id := "TX-" + o.MedTransID
	n, err := apiv3.NewNotification([]byte(creds.APIv3Key), id, apiv3.EventTransactionSuccess, "支付成功", apiv3.OriginalTypeTransaction, now, pt)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(n)
	if err != nil {
		return nil, err
	}
	return &notify.Notification{NotifyID: id, Kind: notify.KindPay, MerchantID: o.MerchantID, OrderID: o.ID,
		URL: req.NotifyURL, Body: body, Format: notify.FormatV3, GiveUpAt: now.Add(creds.RetryWindow)}, nil
}
