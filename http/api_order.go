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
	// The payer field is optional: without it the order is paid by 扫码付, and the payer who
	// scans its code_url is identified on the payment page.
	f := wire.NewFields(c.req)
	if c.provider != nil {
		f.String("sub_openid", 128, false)
	}
	f.String("openid", 128, false)
	r := &payment.PlaceRequest{Merchant: c.hospital, Fields: businessFields(c.req)}
	if c.provider != nil {
		r.ProviderID = c.provider.ID
	}
	r.OrderType = f.Enum("order_type", true, medpay.OrderRegPay, medpay.OrderDiagPay)
	r.HospOutTradeNo = f.String("hosp_out_trade_no", 64, true)
	f.String("hospital_name", 128, true)
	f.String("body", 128, true)
	r.TotalFee = amount(f, "total_fee", true)
	if c.req.Get("total_fee") != "" && r.TotalFee == 0 {
		f.Fail("total_fee", false)
	}
	r.CashFee = amount(f, "cash_fee", true)
	r.InsuranceFee = amount(f, "insurance_fee", true)
	r.CashAddFee = amount(f, "cash_add_fee", false)
	f.String("cash_add_wording", 64, false)
	r.CashReducedFee = amount(f, "cash_reduced_fee", false)
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
	f.Enum("user_card_type", false, userCardTypes...)
	r.UserCardNo = f.String("user_card_no", 32, false)
	r.UserName = f.String("user_name", 32, false)
	f.String("serial_no", 32, true)
	f.String("org_no", 32, true)
	f.Time("gmt_out_create", true)
	f.String("request_content", 16<<10, false)
	f.String("bill_no", 32, false)
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

// userCardTypes are the certificate types of the national medical-insurance platform (人员证件类型):
// 1 居民身份证 (户口簿), 2 军官证, 3 武警警官证, 4 香港 and 5 澳门 passports or 来往内地通行证,
// 6 台湾居民来往大陆通行证, 7 外国人永久居留证, 8 外国人护照, 9 残疾人证, 10 军烈属证明,
// 11 外国人就业证, 12 外国专家证, 13 外国人常驻记者证, 14 台港澳人员就业证, 15 回国(来华)定居专家证,
// 90 社会保障卡, 99 其他身份证件; written with or without the national code's leading zero.
var userCardTypes = func() []string {
	var out []string
	for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 90, 99} {
		out = append(out, strconv.Itoa(n))
		if n < 10 {
			out = append(out, "0"+strconv.Itoa(n))
		}
	}
	return out
}()

// amount reads an amount in fen: above medpay.MaxFee it is invalid, so no sum can overflow.
func amount(f *wire.Fields, name string, required bool) int64 {
	v, _ := f.UintMax(name, required, medpay.MaxFee)
	return v
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
