package http

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// Protocol-level return_msg reasons (docs/api/README.md (transport)) that are not field errors.
const (
	msgToken       = "access_token无效或已过期"
	msgTokenAppID  = "access_token与appid不匹配"
	msgSign        = "签名失败"
	msgReplay      = "nonce_str重复"
	msgMethod      = "请使用POST方法"
	msgSystemError = "系统错误"
)

// protocolError is a FAIL at return_code level: never signed.
type protocolError struct{ reason string }

func (e *protocolError) Error() string { return e.reason }

// call is one authenticated open API request.
type call struct {
	rid      string
	req      *wire.Message
	token    *medpay.Token
	signer   *medpay.Merchant // the merchant named by mch_id, whose key signs
	hospital *medpay.Merchant // the hospital or pharmacy acted for
	provider *medpay.Merchant // the service provider, nil in independent mode
	remoteIP string
	raw      []byte // a success answer that is not XML
	rawType  string
	// nonce is the replay check's claim when the endpoint makes it in its own write transaction
	// (apiOpts.claimInWrite); nil when authenticate made it.
	nonce *sqlstore.NonceClaim
}

// openid returns the payer field of the mode: openid, or sub_openid in provider mode.
func (c *call) openidField() string {
	if c.provider != nil {
		return "sub_openid"
	}
	return "openid"
}

// payer returns (appid, openid) naming the payer of this call.
func (c *call) payer() (string, string) {
	if c.provider != nil {
		return c.hospital.AppID, c.req.Get("sub_openid")
	}
	return c.hospital.AppID, c.req.Get("openid")
}

// apiFunc handles an authenticated call and returns the business fields of the answer.
type apiFunc func(ctx context.Context, c *call) (*wire.Message, error)

// endpoint options.
type apiOpts struct {
	// minimal accepts the form real integrations use for the 选用接口: no appid or mch_id, the
	// token naming the app (docs/api/cards.md (getmedinfo)).
	minimal bool
	// claimInWrite defers the replay check's claim to the call's own write transaction (one
	// commit instead of two). Only for endpoints whose handlers write nothing and call no one
	// outside the database before that transaction or sqlstore.Store.ClaimPending; whatever they
	// answer, the claim is made (or found taken) before the answer goes out.
	claimInWrite bool
}

// api wraps an endpoint in the protocol: token, XML, identifiers, signature, replay defence, and
// the layered answer signed with the caller's key.
func (s *Server) api(name string, fn apiFunc, opts apiOpts) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := requestID(r.Context())
		c, err := s.authenticate(r, rid, opts)
		var resp *wire.Message
		if c != nil && c.nonce != nil {
			ctx := sqlstore.WithNonceClaim(r.Context(), c.nonce)
			if err == nil {
				resp, err = fn(ctx, c)
			}
			err = s.settleNonce(ctx, err)
		} else if err == nil {
			resp, err = fn(r.Context(), c)
		}
		outcome := s.respond(w, r, c, resp, err, rid)
		s.metrics.requests.WithLabelValues(name, outcome).Inc()
		s.metrics.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
		attrs := []any{"rid", rid, "endpoint", name, "outcome", outcome, "ms", time.Since(start).Milliseconds()}
		if c != nil && c.signer != nil {
			attrs = append(attrs, "mch_id", c.signer.MchID)
		}
		s.logger.Info("api", attrs...)
	}
}

// rawFunc handles an authenticated call whose success is not XML (billdownload).
type rawFunc func(ctx context.Context, c *call) (body []byte, contentType string, err error)

// apiRaw is api for an endpoint that answers success with a raw body and failure with the
// usual envelope.
func (s *Server) apiRaw(name string, fn rawFunc) http.HandlerFunc {
	return s.api(name, func(ctx context.Context, c *call) (*wire.Message, error) {
		body, ctype, err := fn(ctx, c)
		if err != nil {
			return nil, err
		}
		c.raw, c.rawType = body, ctype
		return nil, nil
	}, apiOpts{})
}

func (s *Server) authenticate(r *http.Request, rid string, opts apiOpts) (*call, error) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		return nil, &protocolError{msgMethod}
	}
	tok := r.URL.Query().Get("access_token")
	if tok == "" {
		return nil, &protocolError{msgToken}
	}
	t, err := s.store.TokenByHash(ctx, secret.Hash(tok), s.now())
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, &protocolError{msgToken}
	} else if err != nil {
		return nil, err
	}
	req, err := wire.Decode(r.Body)
	if err != nil {
		if errors.Is(err, wire.ErrTooLarge) || errors.Is(err, wire.ErrMalformed) {
			return nil, &protocolError{err.Error()}
		}
		return nil, &protocolError{wire.ErrMalformed.Error()}
	}
	c := &call{rid: rid, req: req, token: t, remoteIP: s.clientIP(r)}

	f := wire.NewFields(req)
	appid, subAppID := req.Get("appid"), req.Get("sub_appid")
	minimal := opts.minimal && appid == "" && req.Get("mch_id") == ""
	if minimal {
		appid, subAppID = t.AppID, t.SubAppID
	} else {
		appid = f.String("appid", 32, true)
		f.String("mch_id", 32, true)
		f.String("sub_appid", 32, false)
	}
	f.String("nonce_str", 32, true)
	f.String("sign", 64, true)
	f.Enum("sign_type", false, wire.SignTypeMD5, wire.SignTypeHMACSHA256)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if appid != t.AppID || subAppID != t.SubAppID {
		return nil, &protocolError{msgTokenAppID}
	}
	if minimal {
		c.signer, err = s.store.MerchantByAppID(ctx, appid)
	} else {
		c.signer, err = s.store.MerchantByMchID(ctx, req.Get("mch_id"))
		if err == nil && c.signer.AppID != appid {
			return nil, &wire.FieldError{Field: "mch_id"}
		}
	}
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, &wire.FieldError{Field: "mch_id"}
	} else if err != nil {
		return nil, err
	}
	if ok, err := s.verifySigner(ctx, c.signer, req); err != nil {
		return nil, err
	} else if !ok {
		s.metrics.signatures.Inc()
		return nil, &protocolError{msgSign}
	}
	// The signature holds: from here on answers are signed, so business failures can be told.
	if opts.claimInWrite {
		c.nonce = &sqlstore.NonceClaim{MchID: c.signer.MchID, Nonce: req.Get("nonce_str"), At: s.now()}
	} else if fresh, err := s.store.ClaimNonce(ctx, c.signer.MchID, req.Get("nonce_str"), s.now()); err != nil {
		return nil, err
	} else if !fresh {
		return nil, &protocolError{msgReplay}
	}
	if err := s.resolveHospital(ctx, c, subAppID, minimal); err != nil {
		return c, err
	}
	if err := s.checkActive(ctx, c); err != nil {
		return c, err
	}
	return c, nil
}

// settleNonce finishes a replay check deferred to the call's write (apiOpts.claimInWrite): a replay
// found there, or by the claim made now for a call that ended without that write, answers as a
// replay found up front did, whatever the call would have answered.
func (s *Server) settleNonce(ctx context.Context, err error) error {
	if !errors.Is(err, sqlstore.ErrReplay) {
		cerr := s.store.ClaimPending(ctx)
		if cerr == nil {
			return err
		}
		if !errors.Is(cerr, sqlstore.ErrReplay) {
			return cerr
		}
	}
	return &protocolError{msgReplay}
}

// resolveHospital finds the institution acted for and checks the provider's authorisation.
func (s *Server) resolveHospital(ctx context.Context, c *call, subAppID string, minimal bool) error {
	if subAppID == "" {
		if c.signer.Kind == medpay.KindProvider {
			return medpay.Errorf(medpay.ErrNoPermission, "a service provider must name the hospital in sub_appid and sub_mch_id")
		}
		// Only a provider acting for a hospital that authorised it names another institution:
		// from an independent hospital these fields would book its receipts elsewhere.
		for _, k := range []string{"sub_mch_id", "sub_openid"} {
			if c.req.Get(k) != "" {
				return medpay.Errorf(medpay.ErrNoPermission, "%s is for a service provider acting for a hospital", k)
			}
		}
		c.hospital = c.signer
		return nil
	}
	var hosp *medpay.Merchant
	var err error
	if minimal {
		hosp, err = s.store.MerchantByAppID(ctx, subAppID)
	} else {
		f := wire.NewFields(c.req)
		subMch := f.String("sub_mch_id", 32, true)
		if err := f.Err(); err != nil {
			return err
		}
		hosp, err = s.store.MerchantByMchID(ctx, subMch)
		if err == nil && hosp.AppID != subAppID {
			return &wire.FieldError{Field: "sub_mch_id"}
		}
	}
	if errors.Is(err, medpay.ErrNotFound) {
		return &wire.FieldError{Field: "sub_mch_id"}
	} else if err != nil {
		return err
	}
	if c.signer.Kind != medpay.KindProvider {
		return medpay.Errorf(medpay.ErrNoPermission, "mch_id %s is not a service provider", c.signer.MchID)
	}
	ok, err := s.store.IsAuthorized(ctx, c.signer.ID, hosp.ID)
	if err != nil {
		return err
	}
	if !ok {
		return medpay.Errorf(medpay.ErrNoPermission, "hospital %s has not authorised this service provider", hosp.MchID)
	}
	c.provider, c.hospital = c.signer, hosp
	return nil
}

// respond writes the layered answer and returns the outcome label for metrics.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, c *call, resp *wire.Message, err error, rid string) string {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	var pe *protocolError
	var fe *wire.FieldError
	switch {
	case errors.As(err, &pe):
		writeFail(w, pe.reason, rid)
		return "FAIL"
	case errors.As(err, &fe):
		writeFail(w, fe.Error(), rid)
		return "FAIL"
	case c == nil || c.signer == nil:
		// Failed before the caller was known: nothing to sign with.
		s.logger.Error("api failure before authentication", "rid", rid, "err", err)
		writeFail(w, msgSystemError, rid)
		return "FAIL"
	}
	m := wire.NewMessage()
	m.Set("return_code", "SUCCESS")
	m.Set("return_msg", "OK")
	for _, k := range []string{"appid", "mch_id", "sub_appid", "sub_mch_id"} {
		if v := c.req.Get(k); v != "" {
			m.Set(k, v)
		}
	}
	m.Set("nonce_str", wire.Nonce())
	outcome := "SUCCESS"
	if err != nil {
		code := medpay.ErrorCode(err)
		if code == medpay.ErrSystem {
			s.logger.Error("api system error", "rid", rid, "err", err)
		}
		m.Set("result_code", "FAIL")
		m.Set("err_code", code)
		m.Set("err_code_des", medpay.ErrorMessage(err))
		outcome = code
	} else if c.raw != nil {
		w.Header().Set("Content-Type", c.rawType)
		w.Write(c.raw)
		return outcome
	} else {
		m.Set("result_code", "SUCCESS")
		for _, k := range resp.Keys() {
			m.Set(k, resp.Get(k))
		}
	}
	if st := c.req.Get("sign_type"); st != "" {
		m.Set("sign_type", st)
	}
	if err := wire.SignInPlace(m, c.signer.APIKey); err != nil {
		s.logger.Error("sign response", "rid", rid, "err", err)
		writeFail(w, msgSystemError, rid)
		return "FAIL"
	}
	w.Write(m.Bytes())
	return outcome
}

func writeFail(w http.ResponseWriter, reason, rid string) {
	m := wire.NewMessage()
	m.Set("return_code", "FAIL")
	m.Set("return_msg", reason+" rid: "+rid)
	w.Write(m.Bytes())
}

// clientIP is the caller's address as the server sees it; X-Forwarded-For is believed only from
// configured proxies (its last untrusted hop is the client).
func (s *Server) clientIP(r *http.Request) string {
	return clientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.cfg.TrustedProxies)
}
