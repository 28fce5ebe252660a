package http

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/wire"
)

// issueToken creates and stores a token for (appid, subAppID) and returns it in clear.
func (s *Server) issueToken(r *http.Request, appid, subAppID string) (string, error) {
	tok := secret.Token()
	now := s.now()
	err := s.store.CreateToken(r.Context(), &medpay.Token{
		Hash: secret.Hash(tok), AppID: appid, SubAppID: subAppID,
		IssuedAt: now, ExpiresAt: now.Add(medpay.TokenTTL),
	})
	return tok, err
}

func secretMatches(m *medpay.Merchant, secretText string) bool {
	return subtle.ConstantTimeCompare([]byte(secret.Hash(secretText)), []byte(m.SecretHash)) == 1
}

// cgiToken is GET /cgi-bin/token, the independent-mode token (docs/api/README.md (access_token)).
func (s *Server) cgiToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	fail := func(code int, msg string) {
		json.NewEncoder(w).Encode(map[string]any{"errcode": code, "errmsg": msg + " rid: " + requestID(r.Context())})
	}
	if q.Get("grant_type") != "client_credential" {
		fail(40002, "invalid grant_type")
		return
	}
	m, err := s.store.MerchantByAppID(r.Context(), q.Get("appid"))
	if errors.Is(err, medpay.ErrNotFound) {
		fail(40013, "invalid appid")
		return
	} else if err != nil {
		s.logger.Error("token", "err", err)
		fail(-1, "system error")
		return
	}
	if ok, err := s.secretValid(r.Context(), m, q.Get("secret")); err != nil {
		s.logger.Error("token", "err", err)
		fail(-1, "system error")
		return
	} else if !ok {
		fail(40125, "invalid appsecret")
		return
	}
	tok, err := s.issueToken(r, m.AppID, "")
	if err != nil {
		s.logger.Error("token", "err", err)
		fail(-1, "system error")
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": int(medpay.TokenTTL.Seconds())})
}

// providerToken is GET /payinsurance/gettoken, the service-provider token (docs/api/README.md (access_token, service providers)).
func (s *Server) providerToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rid := requestID(r.Context())
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	f := wire.NewFields(wire.NewMessage())
	for _, k := range []string{"appid", "sub_appid", "secret"} {
		if q.Get(k) == "" {
			f.Fail(k, true)
		}
	}
	if err := f.Err(); err != nil {
		writeFail(w, err.Error(), rid)
		return
	}
	m := wire.NewMessage()
	m.Set("return_code", "SUCCESS")
	m.Set("return_msg", "OK")
	bizFail := func(code string) {
		m.Set("result_code", "FAIL")
		m.Set("err_code", code)
		m.Set("err_code_des", medpay.ErrorMessage(medpay.Errorf(code, "")))
		w.Write(m.Bytes())
	}
	prov, err := s.store.MerchantByAppID(r.Context(), q.Get("appid"))
	if err == nil && prov.Kind == medpay.KindProvider {
		var ok bool
		if ok, err = s.secretValid(r.Context(), prov, q.Get("secret")); err == nil && !ok {
			err = medpay.ErrNotFound
		}
	}
	if err != nil || prov.Kind != medpay.KindProvider {
		bizFail(medpay.ErrBadSecret)
		return
	}
	hosp, err := s.store.MerchantByAppID(r.Context(), q.Get("sub_appid"))
	if err != nil {
		bizFail(medpay.ErrNotAuthorised)
		return
	}
	if ok, err := s.store.IsAuthorized(r.Context(), prov.ID, hosp.ID); err != nil || !ok {
		bizFail(medpay.ErrNotAuthorised)
		return
	}
	tok, err := s.issueToken(r, prov.AppID, hosp.AppID)
	if err != nil {
		s.logger.Error("gettoken", "rid", rid, "err", err)
		writeFail(w, msgSystemError, rid)
		return
	}
	m.Set("result_code", "SUCCESS")
	m.Set("access_token", tok)
	m.Set("expires_in", strconv.Itoa(int(medpay.TokenTTL.Seconds())))
	w.Write(m.Bytes())
}

// callbackIP is GET /cgi-bin/getcallbackip: the addresses the platform calls hospitals from (its
// notifications), in the WeChat open platform's shape. Real clients call it to learn whether a
// cached access token still works, so a bad token answers the platform's token errors.
func (s *Server) callbackIP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	fail := func(code int, msg string) {
		json.NewEncoder(w).Encode(map[string]any{"errcode": code, "errmsg": msg + " rid: " + requestID(r.Context())})
	}
	tok := r.URL.Query().Get("access_token")
	if tok == "" {
		fail(41001, "access_token missing")
		return
	}
	if _, err := s.store.TokenByHash(r.Context(), secret.Hash(tok), s.now()); errors.Is(err, medpay.ErrNotFound) {
		fail(40001, "invalid credential, access_token is invalid or not latest")
		return
	} else if err != nil {
		s.logger.Error("getcallbackip", "err", err)
		fail(-1, "system error")
		return
	}
	ips := s.cfg.CallbackIPs
	if ips == nil {
		ips = []string{}
	}
	json.NewEncoder(w).Encode(map[string]any{"ip_list": ips})
}
