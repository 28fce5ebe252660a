package cash

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/sqlstore"
)

// Local is medpay.CashGateway over a Channel of this process, for the platform that serves the
// channel itself (the sandbox without --cash-url): Go calls as merchant MchID, without
// signatures, JSON or HTTP, the way the platform reaches the in-process bureau simulator. The
// channel's rules are the same as over APIv3 (the same methods of Channel check and record
// everything); only the transport and its authentication are left out.
//
// The channel writes no callbacks for MchID's orders (nobody would POST them anywhere): it
// reports each payment to the function given to OnPaid, by Go call, after the payment's commit.
// A report that never ran (a crash between the channel's commit and the platform's update, or
// no OnPaid yet) is made up by query: the platform's recovery asks QueryPayment about every
// order that waits at the cashier, as it does after a lost callback. Refunds are learnt from
// Refund's answer and QueryRefund, as the platform does with any channel.
type Local struct {
	ch         *Channel
	mchid      string
	key        *rsa.PrivateKey // signs PayParams, which the cashier page checks
	cashierURL string
	paid       atomic.Pointer[func(context.Context, *medpay.CashPayment)]
}

var _ medpay.CashGateway = (*Local)(nil)

// LocalConfig names the merchant a Local acts as.
type LocalConfig struct {
	MchID      string          // registered at the channel (CreateMerchant)
	PrivateKey *rsa.PrivateKey // the merchant's key: PayParams are signed with it for the cashier
	CashierURL string          // where the channel's cashier is served (<base-url>/cash/cashier)
}

// Local returns the in-process gateway of merchant cfg.MchID, which must be registered at the
// channel with cfg.PrivateKey's public key. From then on the channel reports that merchant's
// payments by Go call (OnPaid) instead of callbacks.
func (c *Channel) Local(ctx context.Context, cfg LocalConfig) (*Local, error) {
	if cfg.PrivateKey == nil {
		return nil, errors.New("cash: local gateway without the merchant's key")
	}
	var serial string
	err := c.db.SQL().QueryRowContext(ctx, `SELECT serial_no FROM cash_merchants WHERE mchid = $1`, cfg.MchID).Scan(&serial)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cash: merchant %q is not registered at the channel: %w", cfg.MchID, medpay.ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	if serial != SerialNo(&cfg.PrivateKey.PublicKey) {
		return nil, fmt.Errorf("cash: merchant %q is registered with another key", cfg.MchID)
	}
	l := &Local{ch: c, mchid: cfg.MchID, key: cfg.PrivateKey, cashierURL: cfg.CashierURL}
	if prev, loaded := c.locals.LoadOrStore(cfg.MchID, l); loaded {
		return nil, fmt.Errorf("cash: merchant %q already has a local gateway (%p)", cfg.MchID, prev)
	}
	return l, nil
}

// local is the in-process gateway of mchid, or nil.
func (c *Channel) local(mchid string) *Local {
	if l, ok := c.locals.Load(mchid); ok {
		return l.(*Local)
	}
	return nil
}

// MchID is the merchant the gateway acts as.
func (l *Local) MchID() string { return l.mchid }

// OnPaid sets the function told of each payment of the merchant's orders, right after the
// channel committed it (at the cashier, or through the channel's /sandbox/pay). It runs in the
// paying request; it must be idempotent, and a failure it meets is left to recovery's query.
func (l *Local) OnPaid(fn func(ctx context.Context, p *medpay.CashPayment)) { l.paid.Store(&fn) }

func (l *Local) report(ctx context.Context, t *trade) {
	if fn := l.paid.Load(); fn != nil {
		(*fn)(context.WithoutCancel(ctx), t.payment())
	}
}

// Prepay implements medpay.CashGateway.
func (l *Local) Prepay(ctx context.Context, r medpay.CashPrepayRequest) (*medpay.CashPrepay, error) {
	req := apiv3.PrepayRequest{AppID: r.AppID, MchID: l.mchid, Description: r.Description, OutTradeNo: r.OutTradeNo,
		Attach: r.Attach, NotifyURL: r.NotifyURL, Amount: apiv3.Amount{Total: r.Amount, Currency: "CNY"}}
	if !r.Expire.IsZero() {
		req.TimeExpire = r.Expire.In(medpay.CST).Format(time.RFC3339)
	}
	tradeType := apiv3.TradeNative
	if r.OpenID != "" {
		tradeType, req.Payer = apiv3.TradeJSAPI, &apiv3.Payer{OpenID: r.OpenID}
	}
	ans, err := l.ch.Prepay(ctx, l.mchid, tradeType, &req)
	if err != nil {
		return nil, localError("prepay", err, apiv3.CodeInvalidRequest)
	}
	return &medpay.CashPrepay{OutTradeNo: r.OutTradeNo, PrepayID: ans.PrepayID, CodeURL: ans.CodeURL}, nil
}

// PayParams implements medpay.CashGateway: signed with the merchant's key, as the cashier page
// checks them (it is the payer's browser that carries them there).
func (l *Local) PayParams(appID, prepayID string) (*medpay.CashPayParams, error) {
	p := &medpay.CashPayParams{AppID: appID, TimeStamp: apiv3.Timestamp(l.ch.now()), NonceStr: apiv3.Nonce(),
		Package: "prepay_id=" + prepayID, SignType: "RSA"}
	sig, err := apiv3.Sign(l.key, apiv3.PayMessage(p.AppID, p.TimeStamp, p.NonceStr, p.Package))
	if err != nil {
		return nil, err
	}
	p.PaySign = sig
	return p, nil
}

// CashierURL implements medpay.CashGateway.
func (l *Local) CashierURL(p *medpay.CashPayParams, returnURL string) (string, bool) {
	if l.cashierURL == "" {
		return "", false
	}
	q := url.Values{"appId": {p.AppID}, "timeStamp": {p.TimeStamp}, "nonceStr": {p.NonceStr},
		"package": {p.Package}, "signType": {p.SignType}, "paySign": {p.PaySign}}
	if returnURL != "" {
		q.Set("redirect_url", returnURL)
	}
	return l.cashierURL + "?" + q.Encode(), true
}

// QueryPayment implements medpay.CashGateway.
func (l *Local) QueryPayment(ctx context.Context, outTradeNo string) (*medpay.CashPayment, error) {
	t, err := l.ch.trade(ctx, l.mchid, outTradeNo)
	if err != nil {
		return nil, localError("query", err)
	}
	return t.payment(), nil
}

// Close implements medpay.CashGateway.
func (l *Local) Close(ctx context.Context, outTradeNo string) error {
	return localError("close", l.ch.Close(ctx, l.mchid, outTradeNo), apiv3.CodeOrderPaid)
}

// Refund implements medpay.CashGateway.
func (l *Local) Refund(ctx context.Context, r medpay.CashRefundRequest) (*medpay.CashRefund, error) {
	req := apiv3.RefundRequest{OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo, Reason: r.Reason, NotifyURL: r.NotifyURL,
		Amount: apiv3.RefundRequestAmount{Refund: r.Amount, Total: r.Total, Currency: "CNY"}}
	ans, err := l.ch.Refund(ctx, l.mchid, &req)
	if err != nil {
		return nil, localError("refund", err)
	}
	return ans.CashRefund()
}

// QueryRefund implements medpay.CashGateway.
func (l *Local) QueryRefund(ctx context.Context, outRefundNo string) (*medpay.CashRefund, error) {
	ans, err := l.ch.QueryRefund(ctx, l.mchid, outRefundNo)
	if err != nil {
		return nil, localError("refund query", err)
	}
	return ans.CashRefund()
}

// errNoCallbacks answers a callback POSTed to the platform while it reaches the channel in
// process: the channel sends it none, so whatever arrives is not from it.
var errNoCallbacks = errors.New("cash: the in-process channel reports payments by Go call; no callback is expected")

// ParseCallback implements medpay.CashGateway: nothing verifies, since the channel posts no
// callbacks for this merchant.
func (l *Local) ParseCallback(context.Context, map[string][]string, []byte) (*medpay.CashEvent, error) {
	return nil, errNoCallbacks
}

// SandboxPay pays the JSAPI order of prepayID from its payer's wallet with the PIN, as the
// cashier does, and answers the payment: it is committed when SandboxPay returns it, so the
// platform carries on without a query (and without a report to OnPaid, which would only tell it
// again). A refusal is a *PayError (errors.Is medpay.ErrWrongPIN, medpay.ErrDeclined); a failure
// that leaves the payment open wraps medpay.ErrOutcomeUnknown.
func (l *Local) SandboxPay(ctx context.Context, prepayID, pin string) (*medpay.CashPayment, error) {
	t, err := l.ch.pay(ctx, l.mchid, `prepay_id = $1`, prepayID, "", "", pin, false)
	var pe *PayError
	switch {
	case errors.As(err, &pe):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("cash sandbox pay: %w: %v", medpay.ErrOutcomeUnknown, err)
	}
	return t.payment(), nil
}

// trade is mchid's order outTradeNo, or a 404 ORDER_NOT_EXIST.
func (c *Channel) trade(ctx context.Context, mchid, outTradeNo string) (*trade, error) {
	t, err := scanTrade(c.db.SQL().QueryRowContext(ctx, `SELECT `+tradeCols+` FROM cash_trades WHERE mchid = $1 AND out_trade_no = $2`, mchid, outTradeNo))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiv3.Errorf(http.StatusNotFound, apiv3.CodeOrderNotExist, "订单不存在")
	}
	return t, err
}

// payment is the trade in the port's terms.
func (t *trade) payment() *medpay.CashPayment {
	p := &medpay.CashPayment{OutTradeNo: t.OutTradeNo, State: t.State, StateDesc: tradeStateDescs[t.State],
		Amount: t.Total, OpenID: t.OpenID}
	if t.PaidAt != 0 {
		p.TransactionID, p.PayerAmount, p.PaidAt = t.TransactionID, t.Total, sqlstore.FromMS(t.PaidAt)
	}
	return p
}

// localError puts a failed call in the port's terms: the channel's answers as the APIv3 client
// puts them (apiv3.Error.PortError); a lost answer (the sandbox scenario) and anything that is not
// the channel's answer (a database failure, a cancelled context: the transaction may have
// committed) wrap medpay.ErrOutcomeUnknown.
func localError(op string, err error, conflict ...string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, errAnswerLost) {
		return fmt.Errorf("cash %s: %w: %w", op, medpay.ErrOutcomeUnknown, err)
	}
	var e *apiv3.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("cash %s: %w: %v", op, medpay.ErrOutcomeUnknown, err)
	}
	return e.PortError("cash "+op, conflict...)
}
