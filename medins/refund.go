package medins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/sqlstore"
)

// Refunds of 2.0 orders are rows of the refunds table, as the XML API's: the insurance part the
// hospital refunded at the bureau (its refund report) under out_refund_no + insuranceSuffix, the
// cash part the platform refunds from the payer's wallet under out_refund_no itself.
const insuranceSuffix = "/med-ins"

// refundNotify is POST /v3/med-ins/refunds/notify?mix_trade_no=: the hospital reports that the
// bureau refunded the insurance part (6203, done by the hospital). It is recorded once per
// out_refund_no; a repeat with the same content answers 204 again.
func (h *Handler) refundNotify(c *call) (int, any, *apiv3.Error) {
	ctx := c.r.Context()
	var req RefundNotify
	if e := c.decode(&req); e != nil {
		return 0, nil, e
	}
	if e := h.actFor(c, req.SubMchID, "body"); e != nil {
		return 0, nil, e
	}
	mix := c.r.URL.Query().Get("mix_trade_no")
	switch {
	case mix == "":
		return 0, nil, apiv3.ParamError("query", "mix_trade_no", "is required")
	case req.OutRefundNo == "" || len(req.OutRefundNo) > 64:
		return 0, nil, apiv3.ParamError("body", "out_refund_no", "1 to 64 characters")
	}
	if _, err := time.Parse(time.RFC3339, req.RefundTime); err != nil {
		return 0, nil, apiv3.ParamError("body", "refund_time", "must be RFC 3339")
	}
	for _, v := range []int64{req.MedRefundTotalFee, req.MedRefundGovFee, req.MedRefundSelfFee, req.MedRefundOtherFee} {
		if v < 0 || v > medpay.MaxFee {
			return 0, nil, ruleLimit("refund amounts must be 0 to %d fen", medpay.MaxFee)
		}
	}
	if req.MedRefundTotalFee != req.MedRefundGovFee+req.MedRefundSelfFee+req.MedRefundOtherFee {
		return 0, nil, ruleLimit("med_refund_total_fee (%d) must equal med_refund_gov_fee + med_refund_self_fee + med_refund_other_fee (%d)",
			req.MedRefundTotalFee, req.MedRefundGovFee+req.MedRefundSelfFee+req.MedRefundOtherFee)
	}
	if req.MedRefundTotalFee == 0 {
		return 0, nil, ruleLimit("med_refund_total_fee must be more than 0")
	}
	o, e := h.paidOrder(ctx, c.hospital.ID, mix)
	if e != nil {
		return 0, nil, e
	}
	body, _ := json.Marshal(req)
	r, e := h.newRefund(ctx, o, req.OutRefundNo+insuranceSuffix, body, func(prior []*medpay.Refund) (*medpay.Refund, error) {
		var hifp, acct int64
		for _, p := range prior {
			hifp, acct = hifp+p.HifpRefund, acct+p.AcctRefund
		}
		gov := req.MedRefundGovFee + req.MedRefundOtherFee
		if hifp+gov > o.HifpPay || acct+req.MedRefundSelfFee > o.AcctPay {
			return nil, ruleLimit("the refund exceeds what the insurance paid: gov+other %d of %d left, self %d of %d left",
				gov, o.HifpPay-hifp, req.MedRefundSelfFee, o.AcctPay-acct)
		}
		return &medpay.Refund{InsuranceRefundFee: req.MedRefundTotalFee, HifpRefund: gov, AcctRefund: req.MedRefundSelfFee,
			PartRefundType: medpay.PartInsuranceOnly, CashStatus: medpay.RefundLegNone}, nil
	})
	if e != nil || r.State == medpay.RefundSuccess {
		return http.StatusNoContent, nil, e
	}
	hospital := medpay.HospitalAccount(hospitalMchID(o))
	var ts []medpay.Transfer
	if r.HifpRefund > 0 {
		ts = append(ts, medpay.Transfer{From: hospital, To: medpay.BureauFundAccount(o.CityID), Amount: r.HifpRefund})
	}
	if r.AcctRefund > 0 {
		ts = append(ts, medpay.Transfer{From: hospital, To: medpay.PersonalAccount(o.PayOrdID), Amount: r.AcctRefund})
	}
	next := *r
	next.State, next.InsuranceStatus, next.SuccessTime = medpay.RefundSuccess, medpay.RefundLegSuccess, h.cfg.Now()
	move := &sqlstore.OrderMove{State: medpay.StateRefund, StatusDesc: "医保部分已退款", InsuranceStatus: medpay.LegRefund}
	if err := h.cfg.Store.UpdateRefund(ctx, &next, sqlstore.RefundChange{Transfers: ts, Order: move}); err != nil && !errors.Is(err, medpay.ErrConflict) {
		return 0, nil, systemError(err)
	}
	return http.StatusNoContent, nil, nil
}

// paidOrder finds a 2.0 order that was paid.
func (h *Handler) paidOrder(ctx context.Context, merchantID int64, mix string) (*medpay.Order, *apiv3.Error) {
	o, err := h.cfg.Store.OrderByMedTransID(ctx, merchantID, mix)
	if errors.Is(err, medpay.ErrNotFound) || (err == nil && o.Generation != medpay.GenerationV3) {
		return nil, apiv3.Errorf(http.StatusNotFound, apiv3.CodeOrderNotExist, "no such order")
	} else if err != nil {
		return nil, systemError(err)
	}
	if o.State != medpay.StateSuccess && o.State != medpay.StateRefund {
		return nil, ruleLimit("mix_trade_no %s is not paid", mix)
	}
	return o, nil
}

// newRefund creates (or finds, for a repeat with the same body) the refund row no of order o.
func (h *Handler) newRefund(ctx context.Context, o *medpay.Order, no string, body []byte,
	build func(prior []*medpay.Refund) (*medpay.Refund, error)) (*medpay.Refund, *apiv3.Error) {
	sum := sha256.Sum256(body)
	fp := hex.EncodeToString(sum[:])
	// A repeat is answered from the refund it repeats, before the amounts are judged again
	// (against prior refunds that now include it).
	if old, err := h.cfg.Store.RefundByNo(ctx, o.MerchantID, no); err == nil {
		if old.Fingerprint != fp || old.OrderID != o.ID {
			return nil, apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "out_refund_no was used with other content")
		}
		return old, nil
	} else if !errors.Is(err, medpay.ErrNotFound) {
		return nil, systemError(err)
	}
	r, err := h.cfg.Store.CreateRefund(ctx, o.ID, func(o2 *medpay.Order, prior []*medpay.Refund) (*medpay.Refund, error) {
		r, err := build(prior)
		if err != nil {
			return nil, err
		}
		r.MedRefundID, r.MerchantID, r.HospOutRefund, r.Fingerprint = payment.NewRefundID(h.cfg.Now()), o.MerchantID, no, fp
		r.Fields = map[string]string{fieldV3: string(body)}
		r.State, r.Step = medpay.RefundProcessing, ""
		if r.InsuranceStatus == "" {
			r.InsuranceStatus = medpay.RefundLegNone
			if r.InsuranceRefundFee > 0 {
				r.InsuranceStatus = medpay.RefundLegProcessing
			}
		}
		if r.CashStatus == "" {
			r.CashStatus = medpay.RefundLegProcessing
		}
		return r, nil
	})
	var ae *apiv3.Error
	switch {
	case errors.As(err, &ae):
		return nil, ae
	case errors.Is(err, medpay.ErrConflict):
		old, err := h.cfg.Store.RefundByNo(ctx, o.MerchantID, no)
		if err != nil {
			return nil, systemError(err)
		}
		if old.Fingerprint != fp || old.OrderID != o.ID {
			return nil, apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "out_refund_no was used with other content")
		}
		return old, nil
	case err != nil:
		return nil, systemError(err)
	}
	return r, nil
}

// cashRefund is POST /v3/refund/domestic/refunds: the cash part of a paid 2.0 order, found by
// its JSAPI out_trade_no, refunded to the payer's wallet.
func (h *Handler) cashRefund(c *call) (int, any, *apiv3.Error) {
	ctx := c.r.Context()
	var req CashRefundRequest
	if e := c.decode(&req); e != nil {
		return 0, nil, e
	}
	if e := h.actFor(c, req.SubMchID, "body"); e != nil {
		return 0, nil, e
	}
	switch {
	case req.OutTradeNo == "":
		return 0, nil, apiv3.ParamError("body", "out_trade_no", "is required")
	case req.OutRefundNo == "" || len(req.OutRefundNo) > 64:
		return 0, nil, apiv3.ParamError("body", "out_refund_no", "1 to 64 characters")
	case req.Amount.Refund <= 0 || req.Amount.Refund > medpay.MaxFee:
		return 0, nil, apiv3.ParamError("body", "amount.refund", "must be more than 0")
	}
	p, err := h.cfg.Store.PrepayByOutTradeNo(ctx, c.hospital.ID, req.OutTradeNo)
	if errors.Is(err, medpay.ErrNotFound) || (err == nil && p.MixTradeNo == "") {
		return 0, nil, apiv3.Errorf(http.StatusNotFound, apiv3.CodeResourceNotExists, "out_trade_no %s has no paid 医保 order", req.OutTradeNo)
	} else if err != nil {
		return 0, nil, systemError(err)
	}
	o, e := h.paidOrder(ctx, c.hospital.ID, p.MixTradeNo)
	if e != nil {
		return 0, nil, e
	}
	if o.CashStatus != medpay.LegSuccess && o.CashStatus != medpay.LegRefund {
		return 0, nil, ruleLimit("the cash part of %s was not paid", o.MedTransID)
	}
	if req.Amount.Total != o.CashFee {
		return 0, nil, ruleLimit("amount.total (%d) must equal the cash paid (%d)", req.Amount.Total, o.CashFee)
	}
	body, _ := json.Marshal(req)
	r, e := h.newRefund(ctx, o, req.OutRefundNo, body, func(prior []*medpay.Refund) (*medpay.Refund, error) {
		var cash int64
		for _, p := range prior {
			if p.State != medpay.RefundFail {
				cash += p.CashRefundFee
			}
		}
		if cash+req.Amount.Refund > o.CashFee {
			return nil, ruleLimit("amount.refund (%d) exceeds the cash not yet refunded (%d)", req.Amount.Refund, o.CashFee-cash)
		}
		return &medpay.Refund{CashRefundFee: req.Amount.Refund, PartRefundType: medpay.PartCashOnly}, nil
	})
	if e != nil {
		return 0, nil, e
	}
	if r.State != medpay.RefundSuccess {
		appid, openid := o.Payer()
		rc, err := h.cfg.Cash.Refund(ctx, r.CashSerial(), o.ChargeSerial(), r.CashRefundFee)
		if errors.Is(err, medpay.ErrOutcomeUnknown) {
			rc, err = h.cfg.Cash.QueryRefund(ctx, r.CashSerial())
		}
		if err != nil {
			return 0, nil, apiv3.Errorf(http.StatusInternalServerError, apiv3.CodeSystemError, "the cash refund did not complete; retry with the same out_refund_no")
		}
		next := *r
		next.State, next.CashStatus, next.CashRefundID, next.SuccessTime = medpay.RefundSuccess, medpay.RefundLegSuccess, rc.ID, h.cfg.Now()
		move := &sqlstore.OrderMove{State: medpay.StateRefund, StatusDesc: "现金部分已退款", CashStatus: medpay.LegRefund}
		ts := []medpay.Transfer{{From: medpay.HospitalAccount(hospitalMchID(o)), To: medpay.PayerWalletAccount(medpay.PayerID(appid, openid)), Amount: r.CashRefundFee}}
		if err := h.cfg.Store.UpdateRefund(ctx, &next, sqlstore.RefundChange{Transfers: ts, Order: move}); err != nil {
			if !errors.Is(err, medpay.ErrConflict) {
				return 0, nil, systemError(err)
			}
			if next2, err := h.cfg.Store.RefundByNo(ctx, o.MerchantID, req.OutRefundNo); err == nil {
				next = *next2
			}
		}
		r = &next
	}
	return http.StatusOK, cashRefundView(r, req.OutTradeNo, o.CashFee), nil
}

func cashRefundView(r *medpay.Refund, outTradeNo string, total int64) *CashRefund {
	v := &CashRefund{RefundID: r.MedRefundID, OutRefundNo: r.HospOutRefund, OutTradeNo: outTradeNo, Channel: "ORIGINAL",
		Status: apiv3.RefundProcessing, CreateTime: r.CreatedAt.In(medpay.CST).Format(time.RFC3339),
		Amount: apiv3.Amount{Total: total, Currency: "CNY"}, Refund: r.CashRefundFee}
	if r.State == medpay.RefundSuccess {
		v.Status, v.SuccessTime = apiv3.RefundSuccess, r.SuccessTime.In(medpay.CST).Format(time.RFC3339)
	}
	return v
}

// queryCashRefund is GET /v3/refund/domestic/refunds/{out_refund_no}.
func (h *Handler) queryCashRefund(c *call) (int, any, *apiv3.Error) {
	ctx := c.r.Context()
	if e := h.actFor(c, c.r.URL.Query().Get("sub_mchid"), "query"); e != nil {
		return 0, nil, e
	}
	r, err := h.cfg.Store.RefundByNo(ctx, c.hospital.ID, c.r.PathValue("no"))
	if errors.Is(err, medpay.ErrNotFound) || (err == nil && r.Fields[fieldV3] == "") {
		return 0, nil, apiv3.Errorf(http.StatusNotFound, apiv3.CodeResourceNotExists, "no such refund")
	} else if err != nil {
		return 0, nil, systemError(err)
	}
	var req CashRefundRequest
	if err := json.Unmarshal([]byte(r.Fields[fieldV3]), &req); err != nil {
		return 0, nil, systemError(fmt.Errorf("refund %s: %w", r.MedRefundID, err))
	}
	return http.StatusOK, cashRefundView(r, req.OutTradeNo, req.Amount.Total), nil
}
