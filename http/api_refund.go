package http

import (
	"context"
	"errors"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/payment"
	"github.com/medpay/medpay/wire"
)

// refund is POST /payinsurance/refund (docs/api/refunds.md (refund)).
func (s *Server) refund(ctx context.Context, c *call) (*wire.Message, error) {
	f := wire.NewFields(c.req)
	no := f.String("hosp_out_refund_no", 64, true)
	part := f.Enum("part_refund_type", false, medpay.PartCashOnly, medpay.PartInsuranceOnly)
	cashFee, hasCash := f.UintMax("cash_refund_fee", false, medpay.MaxFee)
	if c.req.Get("cash_refund_fee") != "" && (!hasCash || cashFee == 0 || part != medpay.PartCashOnly) {
		f.Fail("cash_refund_fee", false) // only with CASH_ONLY, and above 0
	}
	f.String("refund_reason", 80, false)
	f.String("cancel_serial_no", 32, false)
	f.String("cancel_bill_no", 32, false)
	f.String("request_content", 16<<10, false)
	notifyURL := f.String("notify_url", 256, false)
	if notifyURL != "" && !httpURL(notifyURL) {
		f.Fail("notify_url", false)
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if notifyURL != "" && !s.cfg.Sandbox && !s.cfg.AllowPrivateNotify {
		if err := notify.CheckURL(ctx, notifyURL, false); err != nil {
			return nil, &wire.FieldError{Field: "notify_url"}
		}
	}
	// The refund allow-list: the hospital's addresses, and in provider mode the provider's too.
	allowed := c.hospital.RefundIPs
	if c.provider != nil {
		allowed = append(append([]string{}, allowed...), c.provider.RefundIPs...)
	}
	if !ipAllowed(c.remoteIP, allowed) {
		return nil, medpay.Errorf(medpay.ErrRefundIP, "caller IP %s is not on the refund allow-list", c.remoteIP)
	}
	o, err := s.findOrder(ctx, c)
	if err != nil {
		return nil, err
	}
	r, err := s.payment.Refund(ctx, &payment.RefundRequest{
		Order: o, HospOutRefund: no, PartRefundType: part, CashRefundFee: cashFee, Fields: businessFields(c.req),
	})
	if err != nil {
		return nil, err
	}
	if o, err = s.store.OrderByRowID(ctx, r.OrderID); err != nil {
		return nil, err
	}
	m := wire.NewMessage()
	payment.SetRefundFields(m, o, r)
	return m, nil
}

// queryRefund is POST /payinsurance/queryrefund (docs/api/refunds.md (queryrefund)).
func (s *Server) queryRefund(ctx context.Context, c *call) (*wire.Message, error) {
	f := wire.NewFields(c.req)
	id := f.String("med_refund_id", 64, false)
	no := f.String("hosp_out_refund_no", 64, false)
	if err := f.Err(); err != nil {
		return nil, err
	}
	var r *medpay.Refund
	var err error
	switch {
	case id != "":
		r, err = s.store.RefundByMedRefundID(ctx, c.hospital.ID, id)
	case no != "":
		r, err = s.store.RefundByNo(ctx, c.hospital.ID, no)
	default:
		return nil, &wire.FieldError{Field: "med_refund_id", Missing: true}
	}
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, medpay.Errorf(medpay.ErrRefundNotFound, "")
	} else if err != nil {
		return nil, err
	}
	o, err := s.store.OrderByRowID(ctx, r.OrderID)
	if err != nil {
		return nil, err
	}
	m := wire.NewMessage()
	payment.SetRefundFields(m, o, r)
	return m, nil
}
