package medins

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/payment"
)

// fieldV3 is the key of Order.Fields holding the 2.0 request (without the payer's sensitive
// fields, which are checked and dropped).
const fieldV3 = "v3"

// createOrder is POST /v3/med-ins/orders.
func (h *Handler) createOrder(c *call) (int, any, *apiv3.Error) {
	ctx := c.r.Context()
	var req OrderRequest
	if e := c.decode(&req); e != nil {
		return 0, nil, e
	}
	if e := checkFields(&req, c.provider); e != nil {
		return 0, nil, e
	}
	if e := h.actFor(c, req.SubMchID, "body"); e != nil {
		return 0, nil, e
	}
	if u, err := url.Parse(req.CallbackURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return 0, nil, apiv3.ParamError("body", "callback_url", "must be an absolute http(s) URL")
	}
	if _, err := time.Parse(time.RFC3339, req.MedInsOrderCreateTime); err != nil {
		return 0, nil, apiv3.ParamError("body", "med_ins_order_create_time", "must be RFC 3339")
	}
	if e := h.checkPayer(&req); e != nil {
		return 0, nil, e
	}
	if e := checkAmounts(&req); e != nil {
		return 0, nil, e
	}
	// Drop what must not be kept or returned, then fingerprint the rest for idempotency.
	req.Payer, req.Relative = nil, nil
	stored, _ := json.Marshal(req)
	sum := sha256.Sum256(stored)
	fingerprint := hex.EncodeToString(sum[:])
	if old, err := h.cfg.Store.OrderByTradeNo(ctx, c.hospital.ID, req.OutTradeNo); err == nil {
		if old.Generation != medpay.GenerationV3 || old.Fingerprint != fingerprint {
			return 0, nil, apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "out_trade_no %s was used with other content", req.OutTradeNo)
		}
		return h.answer(old)
	} else if !errors.Is(err, medpay.ErrNotFound) {
		return 0, nil, systemError(err)
	}

	var hifp, acct int64
	if req.MixPayType != CashOnly {
		bu, err := h.cfg.Bureau(ctx, req.MedInstNo)
		if errors.Is(err, medpay.ErrNotFound) {
			return 0, nil, ruleLimit("med_inst_no %s is not an institution registered at the bureau", req.MedInstNo)
		} else if err != nil {
			return 0, nil, systemError(err)
		}
		st, err := bu.Query(ctx, medpay.OrderRef{PayOrdID: req.PayOrderID})
		var be *medpay.Error
		switch {
		case errors.As(err, &be):
			return 0, nil, ruleLimit("pay_order_id %s is not an order of med_inst_no %s at the bureau: %s", req.PayOrderID, req.MedInstNo, be.Message)
		case err != nil:
			return 0, nil, apiv3.Errorf(http.StatusInternalServerError, apiv3.CodeSystemError, "the bureau did not answer the query of pay_order_id %s; try again", req.PayOrderID)
		case st.OrdStas != medpay.OrdUploaded:
			return 0, nil, ruleLimit("pay_order_id %s is not awaiting payment at the bureau (ordStas %d)", req.PayOrderID, st.OrdStas)
		}
		if e := checkSplit(&req, st); e != nil {
			return 0, nil, e
		}
		hifp, acct = req.MedInsGovFee+req.MedInsOtherFee, req.MedInsSelfFee
	}
	var prepay *medpay.Prepay
	if req.PrepayID != "" {
		p, err := h.cfg.Store.PrepayByID(ctx, c.hospital.ID, req.PrepayID)
		if errors.Is(err, medpay.ErrNotFound) {
			return 0, nil, ruleLimit("prepay_id %s is not a JSAPI order of this merchant", req.PrepayID)
		} else if err != nil {
			return 0, nil, systemError(err)
		}
		if p.MixTradeNo != "" {
			return 0, nil, ruleLimit("prepay_id %s belongs to mix_trade_no %s", req.PrepayID, p.MixTradeNo)
		}
		if e := checkPrepay(&req, p); e != nil {
			return 0, nil, e
		}
		prepay = p
	}

	now := h.cfg.Now()
	add, reduce, _ := sums(&req)
	o := &medpay.Order{
		Generation: medpay.GenerationV3, MedTransID: payment.NewMedTransID(now), MerchantID: c.hospital.ID,
		OrderType: req.OrderType, HospOutTradeNo: req.OutTradeNo, HospitalName: req.MedInstName,
		TotalFee: req.TotalFee, CashFee: req.WechatPayCashFee, InsuranceFee: insurance(&req), HifpPay: hifp, AcctPay: acct,
		CashAddFee: add, CashReducedFee: reduce, PayType: payType(req.MixPayType), CityID: req.CityID,
		PayOrdID: req.PayOrderID, PayAuthNo: req.PayAuthNo, Fingerprint: fingerprint,
		State: medpay.StateNotPay, CashStatus: medpay.LegNotPay, InsuranceStatus: medpay.LegNotPay,
		TimeExpire: now.Add(medpay.DefaultExpiry), CreatedAt: now,
		Fields: map[string]string{fieldV3: string(stored), "appid": req.AppID, "mch_id": c.caller.MchID,
			"openid": req.OpenID, "sub_appid": req.SubAppID, "sub_openid": req.SubOpenID, "notify_url": req.CallbackURL,
			"attach": req.Attach, "serial_no": req.SerialNo, "org_no": req.MedInstNo, "hospital_name": req.MedInstName},
	}
	if c.provider {
		o.ProviderID, o.Fields["sub_mch_id"] = c.caller.ID, c.hospital.MchID
	}
	if req.WechatPayCashFee == 0 {
		o.CashStatus = medpay.LegNoPay
	}
	if insurance(&req) == 0 {
		o.InsuranceStatus = medpay.LegNoPay
	}
	o.LoadFields()
	if err := h.cfg.Store.CreateOrder(ctx, o); errors.Is(err, medpay.ErrConflict) {
		return 0, nil, apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "out_trade_no %s is taken", req.OutTradeNo)
	} else if err != nil {
		return 0, nil, systemError(err)
	}
	if prepay != nil {
		// A prepay pays one order: a race for it leaves the loser's order unpayable (it fails at
		// the cashier), never two orders paid from one prepay.
		if err := h.cfg.Store.ClaimPrepay(ctx, prepay.ID, o.MedTransID); err != nil {
			h.cfg.Logger.Warn("v3: prepay claimed by another order", "prepay_id", prepay.PrepayID, "err", err)
		}
	}
	return h.answer(o)
}

// checkPayer opens the payer's encrypted fields: they must be readable by the platform key.
func (h *Handler) checkPayer(req *OrderRequest) *apiv3.Error {
	check := func(field, v string) *apiv3.Error {
		if v == "" {
			return nil
		}
		if _, err := apiv3.DecryptSensitive(h.key, v); err != nil {
			return apiv3.ParamError("body", field, "must be RSA-OAEP encrypted for the platform public key named by Wechatpay-Serial")
		}
		return nil
	}
	for _, p := range []struct {
		prefix string
		v      *Payer
	}{{"payer", req.Payer}, {"relative", req.Relative}} {
		if p.v == nil {
			continue
		}
		if e := check(p.prefix+".name", p.v.Name); e != nil {
			return e
		}
		if e := check(p.prefix+".id_digest", p.v.IDDigest); e != nil {
			return e
		}
	}
	return nil
}

func payType(mix string) int {
	switch mix {
	case CashOnly:
		return medpay.PayCash
	case InsuranceOnly:
		return medpay.PayInsurance
	}
	return medpay.PayCashInsurance
}

// view is the order as 2.0 shows it (the answer, the queries and the callback).
func view(o *medpay.Order) (*Order, error) {
	var v Order
	if err := json.Unmarshal([]byte(o.Fields[fieldV3]), &v.OrderRequest); err != nil {
		return nil, err
	}
	v.MixTradeNo = o.MedTransID
	v.MedInsFailReason = ""
	switch o.State {
	case medpay.StateSuccess:
		v.MixPayStatus = MixSuccess
	case medpay.StateRefund:
		v.MixPayStatus = MixRefund
	case medpay.StatePayError, medpay.StateClosed:
		v.MixPayStatus, v.MedInsFailReason = MixFail, o.StatusDesc
	default:
		v.MixPayStatus = MixCreated
	}
	v.SelfPayStatus = legStatus(o.CashStatus, NoSelfPay, SelfCreated, SelfSuccess, SelfRefund, SelfFail)
	v.MedInsPayStatus = legStatus(o.InsuranceStatus, NoMedPay, MedCreated, MedSuccess, MedRefund, MedFail)
	if !o.TimeEnd.IsZero() && (o.State == medpay.StateSuccess || o.State == medpay.StateRefund) {
		v.PaidTime = o.TimeEnd.In(medpay.CST).Format(time.RFC3339)
	}
	v.PassthroughResponseContent = o.ResponseContent
	return &v, nil
}

func legStatus(s, none, created, success, refund, fail string) string {
	switch s {
	case medpay.LegNoPay:
		return none
	case medpay.LegSuccess, medpay.LegPayed:
		return success
	case medpay.LegRefund:
		return refund
	case medpay.LegPayError, medpay.LegClosed:
		return fail
	}
	return created
}

func (h *Handler) answer(o *medpay.Order) (int, any, *apiv3.Error) {
	v, err := view(o)
	if err != nil {
		return 0, nil, systemError(err)
	}
	return http.StatusOK, v, nil
}

// queryByMix is GET /v3/med-ins/orders/mix-trade-no/{mix_trade_no}.
func (h *Handler) queryByMix(c *call) (int, any, *apiv3.Error) {
	if e := h.actFor(c, c.r.URL.Query().Get("sub_mchid"), "query"); e != nil {
		return 0, nil, e
	}
	return h.found(h.cfg.Store.OrderByMedTransID(c.r.Context(), c.hospital.ID, c.r.PathValue("no")))
}

// queryByOut is GET /v3/med-ins/orders/out-trade-no/{out_trade_no}.
func (h *Handler) queryByOut(c *call) (int, any, *apiv3.Error) {
	if e := h.actFor(c, c.r.URL.Query().Get("sub_mchid"), "query"); e != nil {
		return 0, nil, e
	}
	return h.found(h.cfg.Store.OrderByTradeNo(c.r.Context(), c.hospital.ID, c.r.PathValue("no")))
}

func (h *Handler) found(o *medpay.Order, err error) (int, any, *apiv3.Error) {
	if errors.Is(err, medpay.ErrNotFound) || (err == nil && o.Generation != medpay.GenerationV3) {
		return 0, nil, apiv3.Errorf(http.StatusNotFound, apiv3.CodeOrderNotExist, "no such order")
	}
	if err != nil {
		return 0, nil, systemError(err)
	}
	return h.answer(o)
}
