package medins

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/secret"
)

// createPrepay is POST /v3/pay/transactions/jsapi: the cash part of a 2.0 order. The platform
// keeps it and charges it at its own cashier together with the 医保 order naming the prepay_id
// (docs/decisions.md: the payer's wallet is the cash leg of both generations).
func (h *Handler) createPrepay(c *call) (int, any, *apiv3.Error) {
	ctx := c.r.Context()
	var req PrepayRequest
	if e := c.decode(&req); e != nil {
		return 0, nil, e
	}
	if e := h.actFor(c, req.SubMchID, "body"); e != nil {
		return 0, nil, e
	}
	switch {
	case req.AppID == "":
		return 0, nil, apiv3.ParamError("body", "appid", "is required")
	case req.MchID != c.caller.MchID:
		return 0, nil, apiv3.ParamError("body", "mchid", "must be the mchid of the Authorization header")
	case req.OutTradeNo == "" || len(req.OutTradeNo) > 32:
		return 0, nil, apiv3.ParamError("body", "out_trade_no", "1 to 32 characters")
	case req.Description == "":
		return 0, nil, apiv3.ParamError("body", "description", "is required")
	case req.Payer == nil || req.Payer.OpenID == "":
		return 0, nil, apiv3.ParamError("body", "payer.openid", "is required")
	case req.Amount.Total <= 0 || req.Amount.Total > medpay.MaxFee:
		return 0, nil, apiv3.ParamError("body", "amount.total", "must be 1 to 10^11 fen")
	case req.Amount.Currency != "" && req.Amount.Currency != "CNY":
		return 0, nil, apiv3.ParamError("body", "amount.currency", "only CNY")
	}
	body, _ := json.Marshal(req)
	p := &medpay.Prepay{MerchantID: c.hospital.ID, OutTradeNo: req.OutTradeNo, Body: string(body), Amount: req.Amount.Total,
		PrepayID: "wx" + h.cfg.Now().In(medpay.CST).Format("02150405") + secret.RandomString(26, "0123456789abcdef"), CreatedAt: h.cfg.Now()}
	err := h.cfg.Store.CreatePrepay(ctx, p)
	if errors.Is(err, medpay.ErrConflict) {
		old, err := h.cfg.Store.PrepayByOutTradeNo(ctx, c.hospital.ID, req.OutTradeNo)
		if err != nil {
			return 0, nil, systemError(err)
		}
		if old.Body != string(body) {
			return 0, nil, apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "out_trade_no %s was used with other content", req.OutTradeNo)
		}
		p = old
	} else if err != nil {
		return 0, nil, systemError(err)
	}
	return http.StatusOK, apiv3.PrepayAnswer{PrepayID: p.PrepayID}, nil
}

// queryPrepay is GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=: the prepay's state
// is its 医保 order's cash leg.
func (h *Handler) queryPrepay(c *call) (int, any, *apiv3.Error) {
	ctx := c.r.Context()
	q := c.r.URL.Query()
	if q.Get("mchid") != c.caller.MchID {
		return 0, nil, apiv3.ParamError("query", "mchid", "must be the mchid of the Authorization header")
	}
	if e := h.actFor(c, q.Get("sub_mchid"), "query"); e != nil {
		return 0, nil, e
	}
	p, err := h.cfg.Store.PrepayByOutTradeNo(ctx, c.hospital.ID, c.r.PathValue("no"))
	if errors.Is(err, medpay.ErrNotFound) {
		return 0, nil, apiv3.Errorf(http.StatusNotFound, apiv3.CodeOrderNotExist, "no such order")
	} else if err != nil {
		return 0, nil, systemError(err)
	}
	var req PrepayRequest
	json.Unmarshal([]byte(p.Body), &req)
	out := PrepayState{AppID: req.AppID, MchID: c.caller.MchID, OutTradeNo: p.OutTradeNo, TradeType: apiv3.TradeJSAPI,
		TradeState: apiv3.StateNotPay, TradeStateDesc: "未支付", Amount: apiv3.Amount{Total: p.Amount, Currency: "CNY"}, MixTradeNo: p.MixTradeNo}
	if p.MixTradeNo != "" {
		o, err := h.cfg.Store.OrderByMedTransID(ctx, c.hospital.ID, p.MixTradeNo)
		if err != nil {
			return 0, nil, systemError(err)
		}
		switch o.CashStatus {
		case medpay.LegSuccess:
			out.TradeState, out.TradeStateDesc, out.TransactionID = apiv3.StateSuccess, "支付成功", o.CashOrderID
			out.SuccessTime = o.TimeEnd.In(medpay.CST).Format("2006-01-02T15:04:05-07:00")
		case medpay.LegRefund:
			out.TradeState, out.TradeStateDesc, out.TransactionID = apiv3.StateRefund, "转入退款", o.CashOrderID
		case medpay.LegPayError, medpay.LegClosed:
			out.TradeState, out.TradeStateDesc = apiv3.StateClosed, "已关闭"
		}
	}
	return http.StatusOK, out, nil
}
