package http

import (
	"context"
	"crypto/subtle"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/wire"
)

// The open API's side of onboarding: rotated keys keep working for their overlap, and a suspended
// merchant is refused.

// verifySigner checks req's signature with the signer's API key, then with its retired keys still
// in their overlap. On success the signer's key becomes the one that verified, so that the answer
// is signed with the key the caller holds.
func (s *Server) verifySigner(ctx context.Context, m *medpay.Merchant, req *wire.Message) (bool, error) {
	if wire.Verify(req, m.APIKey) {
		return true, nil
	}
	retired, err := s.store.RetiredKeys(ctx, m.ID, s.now())
	if err != nil {
		return false, err
	}
	for _, k := range retired {
		if wire.Verify(req, k.APIKey) {
			m.APIKey = k.APIKey
			return true, nil
		}
	}
	return false, nil
}

// secretValid reports whether secretText is the merchant's app secret, or a retired one within its
// overlap; comparisons are constant-time.
func (s *Server) secretValid(ctx context.Context, m *medpay.Merchant, secretText string) (bool, error) {
	if secretMatches(m, secretText) {
		return true, nil
	}
	retired, err := s.store.RetiredKeys(ctx, m.ID, s.now())
	if err != nil {
		return false, err
	}
	h := []byte(secret.Hash(secretText))
	ok := false
	for _, k := range retired {
		if subtle.ConstantTimeCompare(h, []byte(k.SecretHash)) == 1 {
			ok = true
		}
	}
	return ok, nil
}

// checkActive refuses a call when the signer or the institution acted for is suspended (510).
func (s *Server) checkActive(ctx context.Context, c *call) error {
	hospital := c.signer.ID
	if c.hospital != nil {
		hospital = c.hospital.ID
	}
	id, err := s.store.SuspendedOf(ctx, c.signer.ID, hospital)
	if err != nil || id == 0 {
		return err
	}
	mch := c.signer.MchID
	if c.hospital != nil && id == c.hospital.ID {
		mch = c.hospital.MchID
	}
	return medpay.Errorf(medpay.ErrNoPermission, "merchant %s is suspended by the platform", mch)
}
