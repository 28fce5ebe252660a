package cash

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// Limits of the channel (TigerBeetle's habit: a bound on everything).
const (
	MaxTotal       int64 = 100_000_000 // fen per order: 100 万元
	PrepayLifetime       = 2 * time.Hour
	codeURLPrefix        = "weixin://wxpay/bizpayurl?pr="
)

var (
	outNoPattern    = regexp.MustCompile(`^[0-9A-Za-z_\-|*]{6,32}$`)
	outRefundNoPat  = regexp.MustCompile(`^[0-9A-Za-z_\-|*@]{1,64}$`)
	errAnswerLost   = errors.New("cash: sandbox scenario: the answer is lost")
	tradeStateDescs = map[string]string{
		apiv3.StateNotPay: "订单未支付", apiv3.StateSuccess: "支付成功", apiv3.StateRefund: "转入退款",
		apiv3.StateClosed: "已关闭", apiv3.StatePayError: "支付失败",
	}
)

// trade is a row of cash_trades.
type trade struct {
	ID                                          int64
	MchID, OutTradeNo, TradeType, AppID         string
	OpenID, Description, Attach, NotifyURL      string
	Total, Refunded                             int64
	Hash, PrepayID, State, TransactionID, Payer string
	AnswerLost                                  bool
	ExpireAt, PaidAt, CreatedAt                 int64
}

const tradeCols = `id, mchid, out_trade_no, trade_type, appid, openid, description, attach, notify_url, total, refunded,
	request_hash, prepay_id, state, COALESCE(transaction_id, ''), payer, answer_lost, expire_at, paid_at, created_at`

type scanner interface{ Scan(...any) error }

func scanTrade(sc scanner) (*trade, error) {
	var t trade
	var lost int
	err := sc.Scan(&t.ID, &t.MchID, &t.OutTradeNo, &t.TradeType, &t.AppID, &t.OpenID, &t.Description, &t.Attach,
		&t.NotifyURL, &t.Total, &t.Refunded, &t.Hash, &t.PrepayID, &t.State, &t.TransactionID, &t.Payer, &lost,
		&t.ExpireAt, &t.PaidAt, &t.CreatedAt)
	t.AnswerLost = lost != 0
	return &t, err
}

// codeURL is the native order's QR content.
func (t *trade) codeURL() string { return codeURLPrefix + t.PrepayID[len(t.PrepayID)-20:] }

// transaction is the trade as APIv3 shows it.
func (t *trade) transaction() *apiv3.Transaction {
	tx := &apiv3.Transaction{AppID: t.AppID, MchID: t.MchID, OutTradeNo: t.OutTradeNo, TradeType: t.TradeType,
		TradeState: t.State, TradeStateDesc: tradeStateDescs[t.State], Attach: t.Attach,
		Amount: &apiv3.TransactionAmount{Total: t.Total, Currency: "CNY", PayerCurrency: "CNY"}}
	if t.OpenID != "" {
		tx.Payer = &apiv3.Payer{OpenID: t.OpenID}
	}
	if t.PaidAt != 0 {
		tx.TransactionID = t.TransactionID
		tx.BankType = "OTHERS"
		tx.SuccessTime = sqlstore.FromMS(t.PaidAt).In(medpay.CST).Format(time.RFC3339)
		tx.Amount.PayerTotal = t.Total
	}
	return tx
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\x00", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func checkText(field, v string, max int, required bool) *apiv3.Error {
	switch {
	case v == "" && required:
		return apiv3.ParamError("body", field, "必填")
	case !utf8.ValidString(v) || utf8.RuneCountInString(v) > max:
		return apiv3.ParamError("body", field, fmt.Sprintf("长度超过 %d 或不是 UTF-8", max))
	}
	return nil
}

// checkNotifyURL accepts an absolute http(s) URL (public hosts only unless the channel allows
// private ones).
func (c *Channel) checkNotifyURL(ctx context.Context, field, raw string) *apiv3.Error {
	if err := notify.CheckURL(ctx, raw, c.allowPrivate); err != nil {
		return apiv3.ParamError("body", field, err.Error())
	}
	return nil
}

// Prepay places a JSAPI (tradeType apiv3.TradeJSAPI, payer required) or native order for mchid.
// The same out_trade_no with the same content answers the first prepay again; other content is
// 400 INVALID_REQUEST.
func (c *Channel) Prepay(ctx context.Context, mchid, tradeType string, req *apiv3.PrepayRequest) (*apiv3.PrepayAnswer, error) {
	if req.MchID != mchid {
		return nil, apiv3.ParamError("body", "mchid", "与请求的商户号不一致")
	}
	if e := checkText("appid", req.AppID, 32, true); e != nil {
		return nil, e
	}
	if e := checkText("description", req.Description, 127, true); e != nil {
		return nil, e
	}
	if e := checkText("attach", req.Attach, 128, false); e != nil {
		return nil, e
	}
	if !outNoPattern.MatchString(req.OutTradeNo) {
		return nil, apiv3.ParamError("body", "out_trade_no", "6 到 32 位数字、大小写字母或 _-|*")
	}
	if req.Amount.Total <= 0 || req.Amount.Total > MaxTotal {
		return nil, apiv3.ParamError("body", "amount.total", fmt.Sprintf("应在 1 到 %d 分之间", MaxTotal))
	}
	if req.Amount.Currency != "" && req.Amount.Currency != "CNY" {
		return nil, apiv3.ParamError("body", "amount.currency", "只支持 CNY")
	}
	openid := ""
	switch tradeType {
	case apiv3.TradeJSAPI:
		if req.Payer == nil || req.Payer.OpenID == "" || len(req.Payer.OpenID) > 128 {
			return nil, apiv3.ParamError("body", "payer.openid", "必填")
		}
		openid = req.Payer.OpenID
	case apiv3.TradeNative:
		if req.Payer != nil {
			return nil, apiv3.ParamError("body", "payer", "Native 下单不传 payer")
		}
	}
	if e := c.checkNotifyURL(ctx, "notify_url", req.NotifyURL); e != nil {
		return nil, e
	}
	now := c.now()
	expire := now.Add(PrepayLifetime)
	if req.TimeExpire != "" {
		t, err := time.Parse(time.RFC3339, req.TimeExpire)
		if err != nil || !t.After(now) {
			return nil, apiv3.ParamError("body", "time_expire", "RFC 3339 格式的将来时间")
		}
		expire = t
	}
	hash := hashOf(tradeType, req.AppID, req.Description, req.Attach, req.NotifyURL, req.TimeExpire, openid, fmt.Sprint(req.Amount.Total))
	prepayID := "wx" + now.In(medpay.CST).Format("02150405") + secret.RandomString(26, "0123456789abcdef")

	var t *trade
	var lose bool
	err := c.db.WriteTx(ctx, func(tx *sql.Tx) error {
		t, lose = nil, false
		ms := sqlstore.MS(now)
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO cash_trades (mchid, out_trade_no, trade_type, appid, openid, description,
			attach, notify_url, total, request_hash, prepay_id, state, expire_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
			ON CONFLICT (mchid, out_trade_no) DO NOTHING RETURNING id`,
			mchid, req.OutTradeNo, tradeType, req.AppID, openid, req.Description, req.Attach, req.NotifyURL,
			req.Amount.Total, hash, prepayID, apiv3.StateNotPay, sqlstore.MS(expire), ms).Scan(&id)
		created := err == nil
		switch {
		case created: // what the answer needs of the row just written
			t = &trade{ID: id, TradeType: tradeType, Hash: hash, PrepayID: prepayID}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		default:
			if t, err = scanTrade(tx.QueryRowContext(ctx, `SELECT `+tradeCols+` FROM cash_trades WHERE mchid = $1 AND out_trade_no = $2`,
				mchid, req.OutTradeNo)); err != nil {
				return err
			}
		}
		if t.Hash != hash {
			return apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "商户订单号 %s 重复，且请求内容与首次不同", req.OutTradeNo)
		}
		// Sandbox scenario: the first answer of a wallet that loses answers is dropped, after
		// the order was recorded.
		if created && openid != "" {
			var flag int
			err := tx.QueryRowContext(ctx, `SELECT lose_answers FROM cash_wallets WHERE payer = $1`, medpay.PayerID(req.AppID, openid)).Scan(&flag)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if flag != 0 {
				lose = true
				_, err = tx.ExecContext(ctx, `UPDATE cash_trades SET answer_lost = 1 WHERE id = $1`, id)
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if lose {
		return nil, errAnswerLost
	}
	if t.TradeType == apiv3.TradeNative {
		return &apiv3.PrepayAnswer{CodeURL: t.codeURL()}, nil
	}
	return &apiv3.PrepayAnswer{PrepayID: t.PrepayID}, nil
}

// Query returns mchid's order out_trade_no.
func (c *Channel) Query(ctx context.Context, mchid, outTradeNo string) (*apiv3.Transaction, error) {
	t, err := c.trade(ctx, mchid, outTradeNo)
	if err != nil {
		return nil, err
	}
	return t.transaction(), nil
}

// Close closes an unpaid order; closing a closed one succeeds, a paid one is 400 ORDERPAID.
func (c *Channel) Close(ctx context.Context, mchid, outTradeNo string) error {
	return c.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, `SELECT state FROM cash_trades WHERE mchid = $1 AND out_trade_no = $2`+c.db.LockRow(), mchid, outTradeNo).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return apiv3.Errorf(http.StatusNotFound, apiv3.CodeOrderNotExist, "订单不存在")
		}
		if err != nil {
			return err
		}
		switch state {
		case apiv3.StateClosed:
			return nil
		case apiv3.StateNotPay:
			_, err = tx.ExecContext(ctx, `UPDATE cash_trades SET state = $3, updated_at = $4 WHERE mchid = $1 AND out_trade_no = $2`,
				mchid, outTradeNo, apiv3.StateClosed, sqlstore.MS(c.now()))
			return err
		}
		return apiv3.Errorf(http.StatusBadRequest, apiv3.CodeOrderPaid, "订单已支付")
	})
}

// PayError is a payer-facing refusal of the cashier: Code is one of the Pay* codes.
type PayError struct {
	Code    string
	Message string // in Chinese, for the payer
}

func (e *PayError) Error() string { return "cash: " + e.Code + ": " + e.Message }

// Refusals of a payment.
const (
	PayNotFound = "ORDER_NOT_EXIST"
	PayClosed   = "ORDER_CLOSED"
	PayExpired  = "ORDER_EXPIRED"
	PayWrongPIN = "WRONG_PIN"
	PayDeclined = "DECLINED"
	PayNoPayer  = "NO_PAYER"
)

// tradeByPrepay finds the order a cashier or the sandbox names, by prepay_id or code_url.
func (c *Channel) tradeByPrepay(ctx context.Context, prepayID, codeURL string) (*trade, error) {
	var row *sql.Row
	if codeURL != "" {
		token, ok := strings.CutPrefix(codeURL, codeURLPrefix)
		if !ok || len(token) != 20 {
			return nil, &PayError{PayNotFound, "二维码无效"}
		}
		row = c.db.SQL().QueryRowContext(ctx, `SELECT `+tradeCols+` FROM cash_trades WHERE trade_type = $1 AND prepay_id LIKE $2`,
			apiv3.TradeNative, "%"+token)
	} else {
		row = c.db.SQL().QueryRowContext(ctx, `SELECT `+tradeCols+` FROM cash_trades WHERE prepay_id = $1`, prepayID)
	}
	t, err := scanTrade(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &PayError{PayNotFound, "订单不存在"}
	}
	return t, err
}

// Pay is the payer paying order t from their wallet with the PIN: JSAPI orders are paid by the
// order's payer; native orders by whoever scans (appid/openid given). Paying a paid order again
// answers it as it is (after the PIN). The order, the wallet and the TRANSACTION.SUCCESS callback
// change in one transaction; the payment of an order of a merchant served in process (Local) is
// reported to it by Go call after the commit instead.
func (c *Channel) Pay(ctx context.Context, t *trade, payerAppID, payerOpenID, pin string) (*apiv3.Transaction, error) {
	paid, err := c.pay(ctx, t.MchID, `id = $1`, t.ID, payerAppID, payerOpenID, pin, true)
	if err != nil {
		return nil, err
	}
	return paid.transaction(), nil
}

// pay is Pay of mchid's order found by where (a condition on cash_trades with its one argument
// key); report says whether a Local merchant's payment is reported to its OnPaid (not when the
// caller is that merchant and takes the answer itself). The order is read, the PIN checked and
// the payment made in one transaction.
func (c *Channel) pay(ctx context.Context, mchid, where string, key any, payerAppID, payerOpenID, pin string, report bool) (*trade, error) {
	now := c.now()
	ms := sqlstore.MS(now)
	var paid *trade
	var fresh bool
	local := c.local(mchid)
	err := c.db.WriteTx(ctx, func(tx *sql.Tx) error {
		paid, fresh = nil, false
		cur, err := scanTrade(tx.QueryRowContext(ctx, `SELECT `+tradeCols+` FROM cash_trades WHERE `+where+c.db.LockRow(), key))
		if errors.Is(err, sql.ErrNoRows) || err == nil && cur.MchID != mchid {
			return &PayError{PayNotFound, "订单不存在"}
		} else if err != nil {
			return err
		}
		payer := medpay.PayerID(cur.AppID, cur.OpenID)
		if cur.TradeType == apiv3.TradeNative {
			if payerOpenID == "" {
				return &PayError{PayNoPayer, "请先登录微信"}
			}
			if payerAppID == "" {
				payerAppID = cur.AppID
			}
			payer = medpay.PayerID(payerAppID, payerOpenID)
		}
		// The PIN first, whatever the order's state: the wallet's (the default one for a payer
		// without a wallet yet).
		if err := checkPIN(ctx, tx, payer, pin); errors.Is(err, medpay.ErrWrongPIN) {
			return &PayError{PayWrongPIN, "支付密码错误，请重试"}
		} else if err != nil {
			return err
		}
		switch {
		case cur.State == apiv3.StateSuccess || cur.State == apiv3.StateRefund:
			paid = cur
			return nil
		case cur.State != apiv3.StateNotPay:
			return &PayError{PayClosed, "订单已关闭"}
		case ms >= cur.ExpireAt:
			return &PayError{PayExpired, "订单已过期"}
		}
		if err := c.wallet.ensureWallet(ctx, tx, payer, ms); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE cash_wallets SET balance = balance - $2, updated_at = $3
			WHERE payer = $1 AND declining = 0 AND balance >= $2`, payer, cur.Total, ms)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return &PayError{PayDeclined, "支付失败：零钱余额不足或账户受限"}
		}
		txID := "42" + now.In(medpay.CST).Format("20060102") + fmt.Sprintf("%018d", cur.ID)
		if cur.TradeType == apiv3.TradeNative {
			cur.OpenID = payerOpenID // the payer is whoever scanned
		}
		res, err = tx.ExecContext(ctx, `UPDATE cash_trades SET state = $2, transaction_id = $3, payer = $4, openid = $7, paid_at = $5, updated_at = $5
			WHERE id = $1 AND state = $6`, cur.ID, apiv3.StateSuccess, txID, payer, ms, apiv3.StateNotPay, cur.OpenID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("cash: order %d changed under the payment (%d rows): %v", cur.ID, n, err)
		}
		cur.State, cur.TransactionID, cur.Payer, cur.PaidAt = apiv3.StateSuccess, txID, payer, ms
		paid, fresh = cur, true
		if local != nil {
			return nil // reported below; a report lost to a crash is found by the merchant's query
		}
		return c.enqueue(ctx, tx, cur.MchID, cur.NotifyURL, "TX-"+txID, apiv3.EventTransactionSuccess, "支付成功",
			apiv3.OriginalTypeTransaction, cur.transaction(), now)
	})
	if err != nil {
		return nil, err
	}
	switch {
	case local == nil:
		c.Kick()
	case fresh && report:
		local.report(ctx, paid)
	}
	return paid, nil
}

// Refund refunds part or all of a paid order, once per out_refund_no, never above what was paid;
// the wallet, the order, the refund and its REFUND.SUCCESS callback change in one transaction.
func (c *Channel) Refund(ctx context.Context, mchid string, req *apiv3.RefundRequest) (*apiv3.Refund, error) {
	if !outRefundNoPat.MatchString(req.OutRefundNo) {
		return nil, apiv3.ParamError("body", "out_refund_no", "1 到 64 位数字、大小写字母或 _-|*@")
	}
	if req.OutTradeNo == "" && req.TransactionID == "" {
		return nil, apiv3.ParamError("body", "out_trade_no", "transaction_id 与 out_trade_no 二选一")
	}
	if req.Amount.Refund <= 0 || req.Amount.Total <= 0 {
		return nil, apiv3.ParamError("body", "amount.refund", "必须为正整数")
	}
	if req.Amount.Currency != "CNY" {
		return nil, apiv3.ParamError("body", "amount.currency", "只支持 CNY")
	}
	if e := checkText("reason", req.Reason, 80, false); e != nil {
		return nil, e
	}
	if req.NotifyURL != "" {
		if e := c.checkNotifyURL(ctx, "notify_url", req.NotifyURL); e != nil {
			return nil, e
		}
	}
	hash := hashOf(req.TransactionID, req.OutTradeNo, fmt.Sprint(req.Amount.Refund), fmt.Sprint(req.Amount.Total), req.Reason, req.NotifyURL)
	now := c.now()
	local := c.local(mchid) != nil // learns its refunds by the answer and by query, not callbacks
	var r *apiv3.Refund
	var lose bool
	refund := func(tx *sql.Tx) error {
		r, lose = nil, false
		ms := sqlstore.MS(now)
		// A repeated refund answers as the first one did.
		var tradeID int64
		var prevHash string
		err := tx.QueryRowContext(ctx, `SELECT trade_id, request_hash FROM cash_trade_refunds WHERE mchid = $1 AND out_refund_no = $2`,
			mchid, req.OutRefundNo).Scan(&tradeID, &prevHash)
		if err == nil {
			if prevHash != hash {
				return apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "退款单号 %s 重复，且请求内容与首次不同", req.OutRefundNo)
			}
			r, err = c.refundTx(ctx, tx, mchid, req.OutRefundNo)
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		q := `SELECT ` + tradeCols + ` FROM cash_trades WHERE mchid = $1 AND out_trade_no = $2`
		key := req.OutTradeNo
		if req.TransactionID != "" {
			q, key = `SELECT `+tradeCols+` FROM cash_trades WHERE mchid = $1 AND transaction_id = $2`, req.TransactionID
		}
		t, err := scanTrade(tx.QueryRowContext(ctx, q+c.db.LockRow(), mchid, key))
		if errors.Is(err, sql.ErrNoRows) || (err == nil && req.OutTradeNo != "" && req.TransactionID != "" && t.OutTradeNo != req.OutTradeNo) {
			return apiv3.Errorf(http.StatusNotFound, apiv3.CodeResourceNotExists, "订单不存在")
		}
		if err != nil {
			return err
		}
		if t.State != apiv3.StateSuccess && t.State != apiv3.StateRefund {
			return apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "订单未支付，不能退款")
		}
		if req.Amount.Total != t.Total {
			return apiv3.ParamError("body", "amount.total", fmt.Sprintf("与订单金额 %d 不一致", t.Total))
		}
		res, err := tx.ExecContext(ctx, `UPDATE cash_trades SET refunded = refunded + $2, state = $3, updated_at = $4
			WHERE id = $1 AND refunded + $2 <= total`, t.ID, req.Amount.Refund, apiv3.StateRefund, ms)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "申请退款金额超过订单可退金额（可退 %d 分）", t.Total-t.Refunded)
		}
		if t.Refunded+req.Amount.Refund > t.Total { // second check of what the UPDATE and the CHECK enforce
			return fmt.Errorf("cash: order %d refunded %d of %d fen", t.ID, t.Refunded+req.Amount.Refund, t.Total)
		}
		if err := c.wallet.ensureWallet(ctx, tx, t.Payer, ms); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cash_wallets SET balance = balance + $2, updated_at = $3 WHERE payer = $1`,
			t.Payer, req.Amount.Refund, ms); err != nil {
			return err
		}
		var flag int
		if err := tx.QueryRowContext(ctx, `SELECT lose_answers FROM cash_wallets WHERE payer = $1`, t.Payer).Scan(&flag); err != nil {
			return err
		}
		lose = flag != 0
		refundID := "50" + now.In(medpay.CST).Format("20060102") + secret.RandomString(18, "0123456789")
		if _, err := tx.ExecContext(ctx, `INSERT INTO cash_trade_refunds (mchid, out_refund_no, trade_id, refund_id, amount, reason,
			notify_url, request_hash, status, answer_lost, created_at, success_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
			mchid, req.OutRefundNo, t.ID, refundID, req.Amount.Refund, req.Reason, req.NotifyURL, hash, apiv3.RefundSuccess,
			flag, ms); err != nil {
			return err
		}
		if r, err = c.refundTx(ctx, tx, mchid, req.OutRefundNo); err != nil {
			return err
		}
		if local {
			return nil
		}
		url := req.NotifyURL
		if url == "" {
			url = t.NotifyURL
		}
		notice := &apiv3.RefundNotice{MchID: mchid, OutTradeNo: r.OutTradeNo, TransactionID: r.TransactionID,
			OutRefundNo: r.OutRefundNo, RefundID: r.RefundID, RefundStatus: r.Status, SuccessTime: r.SuccessTime,
			UserReceivedAccount: r.UserReceivedAccount, Amount: apiv3.RefundNoticeAmount{Total: r.Amount.Total,
				Refund: r.Amount.Refund, PayerTotal: r.Amount.PayerTotal, PayerRefund: r.Amount.PayerRefund}}
		return c.enqueue(ctx, tx, mchid, url, "RF-"+refundID, apiv3.EventRefundSuccess, "退款成功", apiv3.OriginalTypeRefund, notice, now)
	}
	err := c.db.WriteTx(ctx, refund)
	if sqlstore.IsUniqueViolation(err) {
		// The same out_refund_no raced in and committed first: answer as a repeat.
		err = c.db.WriteTx(ctx, refund)
	}
	if err != nil {
		return nil, err
	}
	if !local {
		c.Kick()
	}
	if lose {
		return nil, errAnswerLost
	}
	return r, nil
}

// QueryRefund returns mchid's refund out_refund_no.
func (c *Channel) QueryRefund(ctx context.Context, mchid, outRefundNo string) (*apiv3.Refund, error) {
	var r *apiv3.Refund
	err := c.db.WriteTx(ctx, func(tx *sql.Tx) error { // a read; WriteTx for one consistent snapshot on both engines
		var err error
		r, err = c.refundTx(ctx, tx, mchid, outRefundNo)
		return err
	})
	return r, err
}

func (c *Channel) refundTx(ctx context.Context, tx *sql.Tx, mchid, outRefundNo string) (*apiv3.Refund, error) {
	var r apiv3.Refund
	var created, success int64
	err := tx.QueryRowContext(ctx, `SELECT f.refund_id, f.out_refund_no, COALESCE(t.transaction_id, ''), t.out_trade_no,
		f.status, f.amount, t.total, f.created_at, f.success_at
		FROM cash_trade_refunds f JOIN cash_trades t ON t.id = f.trade_id WHERE f.mchid = $1 AND f.out_refund_no = $2`,
		mchid, outRefundNo).Scan(&r.RefundID, &r.OutRefundNo, &r.TransactionID, &r.OutTradeNo, &r.Status,
		&r.Amount.Refund, &r.Amount.Total, &created, &success)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiv3.Errorf(http.StatusNotFound, apiv3.CodeResourceNotExists, "退款单不存在")
	}
	if err != nil {
		return nil, err
	}
	r.Channel, r.UserReceivedAccount, r.FundsAccount = "ORIGINAL", "支付用户零钱", "AVAILABLE"
	r.CreateTime = sqlstore.FromMS(created).In(medpay.CST).Format(time.RFC3339)
	if success != 0 {
		r.SuccessTime = sqlstore.FromMS(success).In(medpay.CST).Format(time.RFC3339)
	}
	r.Amount.PayerTotal, r.Amount.PayerRefund = r.Amount.Total, r.Amount.Refund
	r.Amount.SettlementTotal, r.Amount.SettlementRefund = r.Amount.Total, r.Amount.Refund
	r.Amount.Currency = "CNY"
	return &r, nil
}

// enqueue writes a callback into the outbox within tx.
func (c *Channel) enqueue(ctx context.Context, tx *sql.Tx, mchid, url, eventID, eventType, summary, originalType string, resource any, now time.Time) error {
	body, err := json.Marshal(resource)
	if err != nil {
		return err
	}
	ms := sqlstore.MS(now)
	_, err = tx.ExecContext(ctx, `INSERT INTO cash_callbacks (event_id, mchid, url, event_type, summary, original_type, resource,
		next_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, eventID, mchid, url, eventType, summary, originalType, string(body), ms)
	return err
}

// WalletSettings are the sandbox's knobs on a payer's wallet; nil fields are left alone.
type WalletSettings struct {
	Balance     *int64  `json:"balance,omitempty"`
	Declining   *bool   `json:"declining,omitempty"`
	LoseAnswers *bool   `json:"lose_answers,omitempty"`
	PIN         *string `json:"pin,omitempty"`
}

// SetWallet applies s to payer's wallet (created with the defaults first).
func (c *Channel) SetWallet(ctx context.Context, payer string, s WalletSettings) error {
	if s.Balance != nil {
		if err := c.wallet.SetBalance(ctx, payer, *s.Balance); err != nil {
			return err
		}
	}
	if s.Declining != nil {
		if err := c.wallet.SetDeclining(ctx, payer, *s.Declining); err != nil {
			return err
		}
	}
	if s.PIN != nil {
		if err := c.wallet.SetPIN(ctx, payer, *s.PIN); err != nil {
			return err
		}
	}
	if s.LoseAnswers != nil {
		v := 0
		if *s.LoseAnswers {
			v = 1
		}
		return c.wallet.update(ctx, payer, `UPDATE cash_wallets SET lose_answers = $2, updated_at = $3 WHERE payer = $1`, v)
	}
	return nil
}
