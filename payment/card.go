package payment

import (
	"context"
	"errors"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
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

// BindLinkTTL is the validity of a card-binding link (docs/api/cards.md (getbindurl)).
const BindLinkTTL = 10 * time.Minute

// ErrLinkUnusable means a bind link was used, has expired, or was burnt by failed attempts.
var ErrLinkUnusable = errors.New("bind link used or expired")

// NewBindLink issues a single-use card-binding link for the payer (appid, openid) of hospital m,
// returning to returnURL. It returns the link's token (the last part of bind_url); only its hash
// is stored.
func (s *Service) NewBindLink(ctx context.Context, m *medpay.Merchant, appid, openid, returnURL string) (string, *sqlstore.BindLink, error) {
	now := s.now()
	token := secret.Token()
	l := &sqlstore.BindLink{MerchantID: m.ID, AppID: appid, OpenID: openid, ReturnURL: returnURL,
		CreatedAt: now, ExpiresAt: now.Add(BindLinkTTL)}
	if err := s.Store.CreateBindLink(ctx, secret.Hash(token), l); err != nil {
		return "", nil, err
	}
	return token, l, nil
}

// BindLink returns the link of token, usable or not, or medpay.ErrNotFound.
func (s *Service) BindLink(ctx context.Context, token string) (*sqlstore.BindLink, error) {
	if token == "" {
		return nil, medpay.ErrNotFound
	}
	return s.Store.BindLinkByHash(ctx, secret.Hash(token))
}

// claimLink claims the link of token, or fails with ErrLinkUnusable (or medpay.ErrNotFound).
func (s *Service) claimLink(ctx context.Context, token string) (*sqlstore.BindLink, error) {
	l, err := s.Store.ClaimBindLink(ctx, secret.Hash(token), s.now())
	if errors.Is(err, medpay.ErrNotFound) {
		if _, err := s.BindLink(ctx, token); err != nil {
			return nil, err
		}
		return nil, ErrLinkUnusable
	}
	return l, err
}

// BindCardWithLink binds a card through a single-use link: the link is claimed, the bureau
// verifies the identity, the card is bound to the link's payer. A refusal by the bureau gives the
// link back (counted against sqlstore.MaxBindFailures), so the payer can correct a typo.
func (s *Service) BindCardWithLink(ctx context.Context, token string, id medpay.Identity) (*medpay.Binding, *sqlstore.BindLink, error) {
	l, err := s.claimLink(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	b, err := s.BindCard(ctx, l.AppID, l.OpenID, id)
	if err != nil {
		var refused *medpay.Error
		failed := errors.As(err, &refused)
		if rerr := s.Store.ReleaseBindLink(ctx, l, failed); rerr != nil {
			s.log().Warn("release bind link", "err", rerr)
		}
		if failed {
			l.Failures++
		}
		return nil, l, err
	}
	return b, l, nil
}

// UnbindWithLink removes the card of the link's payer and uses the link up.
func (s *Service) UnbindWithLink(ctx context.Context, token string) (*sqlstore.BindLink, error) {
	l, err := s.claimLink(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := s.Store.Unbind(ctx, l.AppID, l.OpenID); err != nil {
		if rerr := s.Store.ReleaseBindLink(ctx, l, false); rerr != nil {
			s.log().Warn("release bind link", "err", rerr)
		}
		return nil, err
	}
	return l, nil
}

// Unbind removes the card bound to (appid, openid); orders placed before keep the card they were
// pre-settled with.
func (s *Service) Unbind(ctx context.Context, appid, openid string) error {
	return s.Store.Unbind(ctx, appid, openid)
}
