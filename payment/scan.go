package payment

import (
	"context"
	"errors"

	"github.com/medpay/medpay"
)

// 扫码付 (wire-api.md §4.1, code_url): an order placed without openid is paid by whoever scans
// its QR code at the window. The payer who opens the page is identified there (a bind link, or in
// the sandbox the openid the page is given), and the pre-settlement is made at that moment with
// their bound card; only then can they confirm with the PIN.

// ErrNoPayer is returned by Confirm for an order whose payer has not been identified yet.
var ErrNoPayer = errors.New("the payer of this order has not been identified")

// HasPayer reports whether the order names its payer (always, except a 扫码付 order not yet
// scanned).
func HasPayer(o *medpay.Order) bool {
	_, openid := o.Payer()
	return openid != ""
}

// Identify makes openid (under the order's app: sub_appid in provider mode, else appid) the
// payer of a 扫码付 order and pre-settles it with their bound card. The same payer again is
// answered the order as it is; another payer, once one is set, is refused (512). The errors of
// the pre-settlement are those of unifiedorder (511, 512, 506, 507), and leave the order
// without a payer for another to scan.
func (s *Service) Identify(ctx context.Context, medTransID, openid string) (*medpay.Order, error) {
	if openid == "" {
		return nil, ErrNoPayer
	}
	for conflicts := 0; conflicts <= MaxConflicts; conflicts++ {
		o, err := s.payable(ctx, medTransID)
		if err != nil || o.State != medpay.StateNotPay {
			return o, err
		}
		if HasPayer(o) {
			if _, cur := o.Payer(); cur != openid {
				return nil, medpay.Errorf(medpay.ErrIdentityMismatch, "this order is being paid by another payer")
			}
			return o, nil
		}
		claimed := *o
		claimed.Fields = make(map[string]string, len(o.Fields)+1)
		for k, v := range o.Fields {
			claimed.Fields[k] = v
		}
		if o.SubAppID != "" {
			claimed.Fields["sub_openid"] = openid
		} else {
			claimed.Fields["openid"] = openid
		}
		claimed.LoadFields()
		if claimed.PayType != medpay.PayCash {
			m, err := s.Store.MerchantByID(ctx, o.MerchantID)
			if err != nil {
				return nil, err
			}
			r := &PlaceRequest{Merchant: m, CityID: o.CityID, UserCardNo: o.Fields["user_card_no"], UserName: o.Fields["user_name"]}
			if err := s.preSettle(ctx, r, &claimed); err != nil {
				return nil, err
			}
		}
		setLegs(&claimed)
		err = s.Store.SetPayer(ctx, &claimed)
		if errors.Is(err, medpay.ErrConflict) {
			continue // another payer, or the hospital closing it: look again
		}
		if err != nil {
			return nil, err
		}
		return &claimed, nil
	}
	return nil, errTooManyConflicts
}
