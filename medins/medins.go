// Package medins serves 医保 2.0 to hospitals (v3.md): the JSON API under /v3/ beside the XML
// API, authenticated with APIv3 signatures (package apiv3), on the same orders, ledger,
// notifications and bills. The hospital uploads its bill to the bureau itself (6201); the
// platform checks the order against the bureau's split, charges the cash part at its cashier,
// settles the insurance part with the bureau on the hospital's behalf (6202) and reverses the
// cash when the bureau cannot settle.
package medins

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// BureauFor returns the bureau acting for the institution registered under orgCodg (the order's
// med_inst_no): in 2.0 the hospital uploaded the order, and the platform queries and settles it
// as the hospital's payment channel. An unknown institution wraps medpay.ErrNotFound.
type BureauFor func(ctx context.Context, orgCodg string) (medpay.Bureau, error)

// Config are the handler's collaborators.
type Config struct {
	Store   *sqlstore.Store
	Bureau  BureauFor
	Cash    medpay.CashChannel // the payer's wallet, as the XML API's cash leg
	BaseURL string             // the platform's public base, for the cashier's address
	Sandbox bool
	Notify  func() // wakes the notification worker after a callback row is written
	Logger  *slog.Logger
	Now     func() time.Time // the business clock (orders, expiry); signatures use the real one
}

// Handler serves /v3/… (and /sandbox/v3/… in the sandbox).
type Handler struct {
	cfg      Config
	key      *rsa.PrivateKey
	signer   *apiv3.Signer
	verifier *apiv3.RequestVerifier
	mux      *http.ServeMux
}

// New loads (or makes, the first time) the platform's APIv3 key and returns the handler.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	pk, err := cfg.Store.PlatformKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("platform key: %w", err)
	}
	key, err := apiv3.ParsePrivateKey([]byte(pk.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("platform key: %w", err)
	}
	// Signatures keep the real clock whatever the business clock (a test's driven one) says, as
	// the other side's do.
	h := &Handler{cfg: cfg, key: key, signer: &apiv3.Signer{Key: key, Serial: pk.KeyID}}
	h.verifier = &apiv3.RequestVerifier{Keys: h.merchantKey, Nonces: dbNonces{cfg.Store}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathOrders, h.api(h.createOrder))
	mux.HandleFunc("GET "+PathByMixTradeNo+"{no}", h.api(h.queryByMix))
	mux.HandleFunc("GET "+PathByOutTradeNo+"{no}", h.api(h.queryByOut))
	mux.HandleFunc("POST "+PathRefundsNotify, h.api(h.refundNotify))
	mux.HandleFunc("POST "+PathJSAPI, h.api(h.createPrepay))
	mux.HandleFunc("GET "+PathJSAPIByOutNo+"{no}", h.api(h.queryPrepay))
	mux.HandleFunc("POST "+PathRefunds, h.api(h.cashRefund))
	mux.HandleFunc("GET "+PathRefunds+"/{no}", h.api(h.queryCashRefund))
	mux.HandleFunc("GET /v3/cashier.js", h.cashierJS)
	mux.HandleFunc("GET /v3/cashier", h.cashierPage)
	mux.Handle("POST /v3/cashier", http.NewCrossOriginProtection().Handler(http.HandlerFunc(h.cashierSubmit)))
	if cfg.Sandbox {
		mux.HandleFunc("POST /sandbox/v3/orders/{no}/confirm", h.sandboxConfirm)
	}
	mux.HandleFunc("/v3/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, apiv3.Errorf(http.StatusNotFound, apiv3.CodeResourceNotExists, "no such resource: %s %s", r.Method, r.URL.Path))
	})
	h.mux = mux
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// PlatformKeyID is the id of the key answers and callbacks are signed with.
func (h *Handler) PlatformKeyID() string { return h.signer.Serial }

// PlatformPublicKey is the public half of the platform's key.
func (h *Handler) PlatformPublicKey() *rsa.PublicKey { return &h.key.PublicKey }

// dbNonces keeps APIv3 nonces in the platform's nonce table, so that every process of a
// deployment refuses a replay. Its window (two hours) covers apiv3.NonceTTL.
type dbNonces struct{ s *sqlstore.Store }

func (n dbNonces) Claim(ctx context.Context, key string, now, _ time.Time) (bool, error) {
	// apiv3 separates the key's parts with NUL, which PostgreSQL text refuses; a space cannot
	// occur in a nonce, and the merchant is a registered one by now.
	return n.s.ClaimNonce(ctx, "v3", strings.ReplaceAll(key, "\x00", " "), now)
}

// merchantKey finds the public key a merchant registered under serial.
func (h *Handler) merchantKey(ctx context.Context, mchid, serial string) (*rsa.PublicKey, error) {
	m, err := h.cfg.Store.MerchantByMchID(ctx, mchid)
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, fmt.Errorf("%w: mchid %s", apiv3.ErrUnknownKey, mchid)
	}
	if err != nil {
		return nil, err
	}
	v3, err := h.cfg.Store.MerchantV3(ctx, m.ID)
	if errors.Is(err, medpay.ErrNotFound) {
		return nil, fmt.Errorf("%w: mchid %s has no APIv3 key", apiv3.ErrUnknownKey, mchid)
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(serial), []byte(v3.SerialNo)) != 1 {
		return nil, fmt.Errorf("%w: serial_no %s", apiv3.ErrUnknownKey, serial)
	}
	return apiv3.ParsePublicKey([]byte(v3.PublicKey))
}

// call is an authenticated request: the caller and, in provider mode, the hospital it acts for.
type call struct {
	r        *http.Request
	body     []byte
	caller   *medpay.Merchant
	hospital *medpay.Merchant // the caller itself when independent
	provider bool
}

// api authenticates a request (401 SIGN_ERROR) and answers what fn returns, signed.
func (h *Handler) api(fn func(c *call) (int, any, *apiv3.Error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(apiv3.HeaderRequestID, secret.RandomString(24, "0123456789abcdef"))
		body, err := io.ReadAll(io.LimitReader(r.Body, apiv3.MaxBody+1))
		if err != nil || len(body) > apiv3.MaxBody {
			h.writeError(w, apiv3.Errorf(http.StatusBadRequest, apiv3.CodeInvalidRequest, "body unreadable or larger than %d bytes", apiv3.MaxBody))
			return
		}
		a, err := h.verifier.Verify(r.Context(), r.Method, r.RequestURI, r.Header, body)
		if err != nil {
			if !errors.Is(err, apiv3.ErrSignature) && !errors.Is(err, apiv3.ErrUnknownKey) {
				h.cfg.Logger.Error("v3: verify", "err", err)
				h.writeError(w, apiv3.Errorf(http.StatusInternalServerError, apiv3.CodeSystemError, "system error"))
				return
			}
			h.writeError(w, apiv3.Errorf(http.StatusUnauthorized, apiv3.CodeSignError, "%v", err))
			return
		}
		caller, err := h.cfg.Store.MerchantByMchID(r.Context(), a.MchID)
		if err != nil {
			h.fail(w, err)
			return
		}
		c := &call{r: r, body: body, caller: caller, hospital: caller, provider: caller.Kind == medpay.KindProvider}
		status, out, e := fn(c)
		if e != nil {
			h.writeError(w, e)
			return
		}
		if err := h.signer.WriteJSON(w, status, out); err != nil {
			h.cfg.Logger.Error("v3: answer", "err", err)
		}
	}
}

// decode reads the JSON body into v (400 PARAM_ERROR when malformed).
func (c *call) decode(v any) *apiv3.Error {
	dec := json.NewDecoder(bytes.NewReader(c.body))
	if err := dec.Decode(v); err != nil {
		return apiv3.Errorf(http.StatusBadRequest, apiv3.CodeParamError, "body is not the expected JSON: %v", err)
	}
	return nil
}

// actFor resolves the hospital of a provider's call (sub_mchid, authorised: else 403 NO_AUTH);
// an independent hospital may not name one.
func (h *Handler) actFor(c *call, subMchID, location string) *apiv3.Error {
	if !c.provider {
		if subMchID != "" && subMchID != c.caller.MchID {
			return apiv3.ParamError(location, "sub_mchid", "only a service provider names a sub_mchid")
		}
		return nil
	}
	if subMchID == "" {
		return apiv3.ParamError(location, "sub_mchid", "is required in service-provider mode")
	}
	m, err := h.cfg.Store.MerchantByMchID(c.r.Context(), subMchID)
	if errors.Is(err, medpay.ErrNotFound) {
		return apiv3.Errorf(http.StatusForbidden, apiv3.CodeNoAuth, "sub_mchid %s is not a merchant", subMchID)
	}
	if err != nil {
		return systemError(err)
	}
	ok, err := h.cfg.Store.IsAuthorized(c.r.Context(), c.caller.ID, m.ID)
	if err != nil {
		return systemError(err)
	}
	if !ok || m.Kind == medpay.KindProvider {
		return apiv3.Errorf(http.StatusForbidden, apiv3.CodeNoAuth, "sub_mchid %s has not authorised this service provider", subMchID)
	}
	c.hospital = m
	return nil
}

func systemError(err error) *apiv3.Error {
	slog.Error("v3", "err", err)
	return apiv3.Errorf(http.StatusInternalServerError, apiv3.CodeSystemError, "system error")
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, medpay.ErrNotFound) {
		h.writeError(w, apiv3.Errorf(http.StatusUnauthorized, apiv3.CodeSignError, "unknown mchid"))
		return
	}
	h.writeError(w, systemError(err))
}

func (h *Handler) writeError(w http.ResponseWriter, e *apiv3.Error) {
	if w.Header().Get(apiv3.HeaderRequestID) == "" {
		w.Header().Set(apiv3.HeaderRequestID, secret.RandomString(24, "0123456789abcdef"))
	}
	if err := h.signer.WriteError(w, e); err != nil {
		h.cfg.Logger.Error("v3: answer", "err", err)
	}
}
