package apiv3

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// MerchantKeys finds the public key a merchant registered under serial: an error wrapping
// ErrUnknownKey when there is none.
type MerchantKeys func(ctx context.Context, mchid, serial string) (*rsa.PublicKey, error)

// ErrUnknownKey is wrapped when a merchant or key serial is not registered.
var ErrUnknownKey = errors.New("apiv3: unknown merchant or key serial")

// RequestVerifier checks merchants' signed requests on the channel's side.
type RequestVerifier struct {
	Keys   MerchantKeys
	Nonces NonceStore       // nil: an in-memory store of its own
	Now    func() time.Time // nil: time.Now

	mem MemoryNonces
}

func (v *RequestVerifier) nonces() NonceStore {
	if v.Nonces != nil {
		return v.Nonces
	}
	return &v.mem
}

func (v *RequestVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Verify checks the Authorization header of a request for method and requestURI (the path and
// query as sent, as in http.Request.RequestURI) with body, and returns the merchant it
// authenticates. The timestamp must be within Window, the signature valid under the merchant's
// registered key, and the nonce unused by that merchant within NonceTTL; the nonce is claimed
// only once the signature is valid, so unauthenticated traffic cannot fill the store. Every
// failure wraps ErrSignature (or ErrUnknownKey).
func (v *RequestVerifier) Verify(ctx context.Context, method, requestURI string, h http.Header, body []byte) (Authorization, error) {
	a, err := ParseAuthorization(h.Get("Authorization"))
	if err != nil {
		return a, err
	}
	now := v.now()
	if err := checkTimestamp(a.Timestamp, now); err != nil {
		return a, err
	}
	if err := checkNonce(a.NonceStr); err != nil {
		return a, err
	}
	pub, err := v.Keys(ctx, a.MchID, a.SerialNo)
	if err != nil {
		return a, err
	}
	if err := Verify(pub, RequestMessage(method, requestURI, a.Timestamp, a.NonceStr, body), a.Signature); err != nil {
		return a, err
	}
	fresh, err := v.nonces().Claim(ctx, "req\x00"+a.MchID+"\x00"+a.NonceStr, now, now.Add(NonceTTL))
	if err != nil {
		return a, fmt.Errorf("%w: nonce store: %v", ErrSignature, err)
	}
	if !fresh {
		return a, fmt.Errorf("%w: nonce %q replayed", ErrSignature, a.NonceStr)
	}
	return a, nil
}

// Signer signs the channel's answers and callbacks with its private key.
type Signer struct {
	Key    *rsa.PrivateKey
	Serial string           // the key's id sent as Wechatpay-Serial, e.g. PUB_KEY_ID_…
	Now    func() time.Time // nil: time.Now
}

// SignHeaders sets the Wechatpay-Timestamp, -Nonce, -Signature and -Serial headers for body.
func (s *Signer) SignHeaders(h http.Header, body []byte) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts, nonce := Timestamp(now()), Nonce()
	sig, err := Sign(s.Key, AnswerMessage(ts, nonce, body))
	if err != nil {
		return err
	}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderNonce, nonce)
	h.Set(HeaderSignature, sig)
	h.Set(HeaderSerial, s.Serial)
	return nil
}

// WriteJSON answers status with v as JSON (no body for 204), signed.
func (s *Signer) WriteJSON(w http.ResponseWriter, status int, v any) error {
	var body []byte
	if status != http.StatusNoContent {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
	}
	if err := s.SignHeaders(w.Header(), body); err != nil {
		return err
	}
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// WriteError answers e's status with its error body, signed.
func (s *Signer) WriteError(w http.ResponseWriter, e *Error) error {
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return s.WriteJSON(w, status, e)
}

// AnswerVerifier checks the channel's signed answers and callbacks on the merchant's side, with
// the channel's public key and its id (the platform public key, PUB_KEY_ID_…).
type AnswerVerifier struct {
	Key    *rsa.PublicKey
	KeyID  string
	Nonces NonceStore       // nil: an in-memory store of its own
	Now    func() time.Time // nil: time.Now

	mem MemoryNonces
}

func (v *AnswerVerifier) nonces() NonceStore {
	if v.Nonces != nil {
		return v.Nonces
	}
	return &v.mem
}

// Verify checks the Wechatpay-* headers of an answer or callback with body: the key id, the
// timestamp window, the signature (probes refused) and the nonce's freshness. Failures wrap
// ErrSignature.
func (v *AnswerVerifier) Verify(ctx context.Context, h http.Header, body []byte) error {
	ts, nonce, sig, serial := h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature), h.Get(HeaderSerial)
	if sig == "" {
		return fmt.Errorf("%w: no %s header", ErrSignature, HeaderSignature)
	}
	if serial != v.KeyID {
		return fmt.Errorf("%w: %s %q is not the channel key %q", ErrSignature, HeaderSerial, serial, v.KeyID)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if err := checkTimestamp(ts, now); err != nil {
		return err
	}
	if err := checkNonce(nonce); err != nil {
		return err
	}
	if err := Verify(v.Key, AnswerMessage(ts, nonce, body), sig); err != nil {
		return err
	}
	fresh, err := v.nonces().Claim(ctx, "ans\x00"+nonce, now, now.Add(NonceTTL))
	if err != nil {
		return fmt.Errorf("%w: nonce store: %v", ErrSignature, err)
	}
	if !fresh {
		return fmt.Errorf("%w: nonce %q replayed", ErrSignature, nonce)
	}
	return nil
}
