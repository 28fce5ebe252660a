package http

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/wire"
)

// unsigned lists the fields that are not business content (left out of the idempotency check).
var unsigned = map[string]bool{"nonce_str": true, "sign": true, "sign_type": true}

// businessFields copies every business field of a request.
func businessFields(m *wire.Message) map[string]string {
	out := make(map[string]string, len(m.Keys()))
	for _, k := range m.Keys() {
		if !unsigned[k] {
			out[k] = m.Get(k)
		}
	}
	return out
}

// parsePlace reads and checks the fields of unifiedorder (docs/api/orders.md (unifiedorder)).
func (s *Server) parsePlace(ctx context.Context, c *call) (*payment.PlaceRequest, error) {
	return s.parseOrder(ctx, c, false)
}

// parseOrder reads the order fields of unifiedorder, or of micropay (docs/api/orders.md (micropay)): there
// the payer field is optional (the payment code names the payer) and there is no notify_url or
// return_url.
func (s *Server) parseOrder(ctx context.Context, c *call, micropay bool) (*payment.PlaceRequest, error) {
	f := wire.NewFields(c.req)
	if c.provider != nil {
		f.String("sub_openid", 128, !micropay)
		f.String("openid", 128, false)
	} else {
		f.String("openid", 128, !micropay)
	}
	r := &payment.PlaceRequest{Merchant: c.hospital, Fields: businessFields(c.req)}
	if c.provider != nil {
		r.ProviderID = c.provider.ID
	}
	r.OrderType = f.Enum("order_type", true, medpay.OrderRegPay, medpay.OrderDiagPay)
	r.HospOutTradeNo = f.String("hosp_out_trade_no", 64, true)
	f.String("hospital_name", 128, true)
	f.String("body", 128, true)
	r.TotalFee = f.Uint64("total_fee", true)
	if c.req.Get("total_fee") != "" && r.TotalFee == 0 {
		f.Fail("total_fee", false)
	}
	r.CashFee = f.Uint64("cash_fee", true)
	r.InsuranceFee = f.Uint64("insurance_fee", true)
	r.CashAddFee = f.Uint64("cash_add_fee", false)
	f.String("cash_add_wording", 64, false)
	r.CashReducedFee = f.Uint64("cash_reduced_fee", false)
	f.String("cash_reduced_wording", 64, false)
	r.AllowFeeChange = atoi(f.Enum("allow_fee_change", true, "0", "1"))
	r.PayType = atoi(f.Enum("pay_type", true, "1", "2", "3"))
	if ip := f.String("spbill_create_ip", 64, true); ip != "" && net.ParseIP(ip) == nil {
		f.Fail("spbill_create_ip", false)
	}
	var notifyURL string
	if !micropay {
		notifyURL = f.String("notify_url", 256, true)
		if notifyURL != "" && !httpURL(notifyURL) {
			f.Fail("notify_url", false)
		}
		if ret := f.String("return_url", 256, false); ret != "" && !httpURL(ret) {
			f.Fail("return_url", false)
		}
	}
	r.CityID = f.String("city_id", 32, false)
	f.Enum("user_card_type", false, "1")
	r.UserCardNo = f.String("user_card_no", 32, false)
	r.UserName = f.String("user_name", 32, false)
	f.String("serial_no", 20, true)
	f.String("org_no", 32, true)
	f.Time("gmt_out_create", true)
	f.String("request_content", 16<<10, false)
	f.String("bill_no", 20, false)
	f.String("channel_no", 32, false)
	f.String("is_dept", 32, false)
	f.String("attach", 127, false)
	now := s.now()
	if t, ok := f.Time("time_expire", false); ok {
		if !t.After(now) || t.After(now.Add(medpay.DefaultExpiry)) {
			f.Fail("time_expire", false)
		}
		r.TimeExpire = t
	}
	if r.CityID == "" {
		if len(c.hospital.Cities) == 1 {
			r.CityID = c.hospital.Cities[0]
		} else {
			f.Fail("city_id", true)
		}
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if !micropay && !s.cfg.Sandbox && !s.cfg.AllowPrivateNotify {
		if err := notify.CheckURL(ctx, notifyURL, false); err != nil {
			return nil, &wire.FieldError{Field: "notify_url"}
		}
	}
	return r, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func httpURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (s *Server) unifiedOrder(ctx context.Context, c *call) (*wire.Message, error) {
	r, err := s.parsePlace(ctx, c)
	if err != nil {
		return nil, err
	}
	o, err := s.payment.Place(ctx, r)
	if err != nil {
		return nil, err
	}
	m := wire.NewMessage()
	m.Set("med_trans_id", o.MedTransID)
	m.Set("pay_type", strconv.Itoa(o.PayType))
	m.Set("cash_fee", strconv.FormatInt(o.CashFee, 10))
	m.Set("insurance_fee", strconv.FormatInt(o.InsuranceFee, 10))
	m.Set("pay_url", s.payURL(o))
	m.Set("pay_appid", s.cfg.PayAppID)
	m.Set("code_url", s.payURL(o)+"/qr.png")
	return m, nil
}

func (s *Server) payURL(o *medpay.Order) string { return s.cfg.BaseURL + "/pay/" + o.MedTransID }

// findOrder reads the order named by med_trans_id or hosp_out_trade_no, expiring it if due.
func (s *Server) findOrder(ctx context.Context, c *call) (*medpay.Order, error) {
	f := wire.NewFields(c.req)
	id := f.String("med_trans_id", 64, false)
	no := f.String("hosp_out_trade_no", 64, false)
	if err := f.Err(); err != nil {
		return nil, err
	}
	var o *medpay.Order
	var err error
	switch {
	case id != "":
		o, err = s.store.OrderByMedTransID(ctx, c.hospital.ID, id)
	case no != "":
		o, err = s.store.OrderByTradeNo(ctx, c.hospital.ID, no)
	default:
		return nil, &wire.FieldError{Field: "med_trans_id", Missing: true}
	}
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, medpay.Errorf(medpay.ErrOrderNotFound, "")
	} else if err != nil {
		return nil, err
	}
	return s.payment.Refresh(ctx, o)
}

func (s *Server) queryOrder(ctx context.Context, c *call) (*wire.Message, error) {
	o, err := s.findOrder(ctx, c)
	if err != nil {
		return nil, err
	}
	m := wire.NewMessage()
	payment.SetOrderFields(m, o)
	return m, nil
}

func (s *Server) closeOrder(ctx context.Context, c *call) (*wire.Message, error) {
	o, err := s.findOrder(ctx, c)
	if err != nil {
		return nil, err
	}
	if o, err = s.payment.Close(ctx, o); err != nil {
		return nil, err
	}
	m := wire.NewMessage()
	m.Set("med_trans_id", o.MedTransID)
	m.Set("hosp_out_trade_no", o.HospOutTradeNo)
	m.Set("med_trade_state", string(o.State))
	return m, nil
}
