package payment

import (
	"context"

	"github.com/medpay/medpay"
)

// BindCard verifies a payer's identity with the bureau and binds the card to (appid, openid).
func (s *Service) BindCard(ctx context.Context, appid, openid string, id medpay.Identity) (*medpay.Binding, error) {
	p, err := s.Bureau.VerifyIdentity(ctx, id)
	if err != nil {
		return nil, err
	}
	b := &medpay.Binding{AppID: appid, OpenID: openid, PsnNo: p.PsnNo, Name: p.Name, IDNo: p.IDNo,
		CardNo: p.CardNo, CityID: p.CityID, Insutype: p.Insutype}
	if err := s.Store.Bind(ctx, b, s.now()); err != nil {
		return nil, err
	}
	return b, nil
}
