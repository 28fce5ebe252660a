package payment

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// BindCard verifies a payer's identity with the bureau (1101) and binds the card to (appid,
// openid) under auth, the payer's long-lived authorisation at the bureau (scope bind), which
// must be the same person's: the holder proved it on the bureau's page.
func (s *Service) BindCard(ctx context.Context, appid, openid string, id medpay.Identity, auth *medpay.PayAuth) (*medpay.Binding, error) {
	if auth == nil || auth.PayAuthNo == "" {
		return nil, medpay.Errorf(medpay.ErrIdentityMismatch, "需要参保人在医保电子凭证页面授权")
	}
	p, err := s.Bureau.Identify(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.PsnNo != auth.PsnNo {
		return nil, medpay.Errorf(medpay.ErrIdentityMismatch, "授权的参保人与填写的身份信息不一致")
	}
	// The bureau may answer masked names and numbers: keep what the payer typed, now verified.
	b := &medpay.Binding{AppID: appid, OpenID: openid, PsnNo: p.PsnNo, Name: strings.TrimSpace(id.Name),
		IDNo: strings.ToUpper(strings.TrimSpace(id.IDNo)), CardNo: strings.TrimSpace(id.CardNo), CityID: p.CityID,
		Insutype: p.Insutype, PayAuthNo: auth.PayAuthNo}
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

// MaxBindFailures is the number of identities a bind link may try before it is burnt: a link
// cannot be used to probe the bureau's register.
const MaxBindFailures = 5

// claimLink claims the link of token, or fails with ErrLinkUnusable (or medpay.ErrNotFound).
func (s *Service) claimLink(ctx context.Context, token string) (*sqlstore.BindLink, error) {
	l, err := s.Store.ClaimBindLink(ctx, secret.Hash(token), s.now(), MaxBindFailures)
	if errors.Is(err, medpay.ErrNotFound) {
		if _, err := s.BindLink(ctx, token); err != nil {
			return nil, err
		}
		return nil, ErrLinkUnusable
	}
	return l, err
}

// release gives a claimed link back after a use that did not happen; failed counts it against
// MaxBindFailures.
func (s *Service) release(ctx context.Context, l *sqlstore.BindLink, failed bool) {
	if err := s.Store.ReleaseBindLink(ctx, l, failed); err != nil {
		s.log().Warn("release bind link", "err", err)
	}
	if failed {
		l.Failures++
	}
}

// pendingBind is what a bind link's use has proved before the bureau's authorisation.
type pendingBind struct {
	Identity medpay.Identity `json:"identity"`
	PsnNo    string          `json:"psn_no"`
}

// VerifyForBind is the first step of binding through a link: the bureau verifies the identity
// the payer typed (1101), and the link remembers it while the payer authorises at the bureau
// (AuthURL, scope bind). A refusal by the bureau counts against MaxBindFailures, so the payer
// can correct a typo but not probe the register.
func (s *Service) VerifyForBind(ctx context.Context, token string, id medpay.Identity) (*sqlstore.BindLink, error) {
	l, err := s.claimLink(ctx, token)
	if err != nil {
		return nil, err
	}
	p, err := s.Bureau.Identify(ctx, id)
	if err != nil {
		var refused *medpay.Error
		s.release(ctx, l, errors.As(err, &refused))
		return l, err
	}
	b, _ := json.Marshal(pendingBind{Identity: id, PsnNo: p.PsnNo})
	err = s.Store.SetBindLinkPending(ctx, l, string(b))
	s.release(ctx, l, false) // the link is used up only by the binding itself
	return l, err
}

// CompleteBind is the second step: the bureau's authorisation (authCode, scope bind) must be
// for the person verified in the first, and then the card is bound with its long-lived
// payAuthNo and the link used up.
func (s *Service) CompleteBind(ctx context.Context, token, authCode string) (*medpay.Binding, *sqlstore.BindLink, error) {
	l, err := s.claimLink(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	var pb pendingBind
	if l.Pending == "" || json.Unmarshal([]byte(l.Pending), &pb) != nil {
		s.release(ctx, l, false)
		return nil, l, medpay.Errorf(medpay.ErrIdentityMismatch, "请先填写并核验身份信息")
	}
	auth, err := s.Bureau.Authorize(ctx, authCode)
	if err == nil && auth.PsnNo != pb.PsnNo {
		err = medpay.Errorf(medpay.ErrIdentityMismatch, "授权的参保人与填写的身份信息不一致")
	}
	if err != nil {
		var refused *medpay.Error
		s.release(ctx, l, errors.As(err, &refused))
		return nil, l, err
	}
	b, err := s.BindCard(ctx, l.AppID, l.OpenID, pb.Identity, auth)
	if err != nil {
		var refused *medpay.Error
		s.release(ctx, l, errors.As(err, &refused))
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
		s.release(ctx, l, false)
		return nil, err
	}
	return l, nil
}

// Unbind removes the card bound to (appid, openid); orders placed before keep the card they were
// pre-settled with.
func (s *Service) Unbind(ctx context.Context, appid, openid string) error {
	return s.Store.Unbind(ctx, appid, openid)
}
