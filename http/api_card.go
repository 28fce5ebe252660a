package http

import (
	"context"
	"errors"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/wire"
)

// The card-binding 选用接口 (docs/api/cards.md). Both accept the full form and the minimal
// one (openid, nonce_str, sign; the token names the app).

// payerOpenID reads the payer field of the call's mode (openid, or sub_openid for a service
// provider), required.
func payerOpenID(c *call) (string, error) {
	f := wire.NewFields(c.req)
	openid := f.String(c.openidField(), 128, true)
	return openid, f.Err()
}

// getBindURL issues a card-binding link for the payer (docs/api/cards.md (getbindurl)).
func (s *Server) getBindURL(ctx context.Context, c *call) (*wire.Message, error) {
	f := wire.NewFields(c.req)
	f.String(c.openidField(), 128, true)
	ret := f.String("url", 256, true)
	if ret != "" && !httpURL(ret) {
		f.Fail("url", false)
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	appid, openid := c.payer()
	token, _, err := s.payment.NewBindLink(ctx, c.hospital, appid, openid, ret)
	if err != nil {
		return nil, err
	}
	m := wire.NewMessage()
	m.Set("bind_url", s.bindURL(token))
	return m, nil
}

func (s *Server) bindURL(token string) string { return s.cfg.BaseURL + "/bind/" + token }

// getMedInfo answers the payer's bound card (docs/api/cards.md (getmedinfo)): the card number in full, since
// the hospital is authorised and passes it on; the name masked. Unbound is err 511.
func (s *Server) getMedInfo(ctx context.Context, c *call) (*wire.Message, error) {
	if _, err := payerOpenID(c); err != nil {
		return nil, err
	}
	appid, openid := c.payer()
	b, err := s.store.BindingFor(ctx, appid, openid)
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, medpay.Errorf(medpay.ErrNoCard, "")
	} else if err != nil {
		return nil, err
	}
	m := wire.NewMessage()
	m.Set("medical_card_no", b.CardNo)
	m.Set("user_name", medpay.MaskName(b.Name))
	m.Set("city_id", b.CityID)
	m.Set("card_status", "BOUND")
	return m, nil
}
