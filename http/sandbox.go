package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/payment"
)

// Sandbox helper API (docs/api/sandbox.md (沙箱辅助接口)): JSON in, JSON out, only with --sandbox.

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

type jsonError struct {
	Error   string `json:"error"`
	ErrCode string `json:"err_code,omitempty"`
	Message string `json:"message"`
}

func (s *Server) jsonFail(w http.ResponseWriter, r *http.Request, status int, err error) {
	code := medpay.ErrorCode(err)
	if code == medpay.ErrSystem && status >= 500 {
		s.logger.Error("sandbox", "rid", requestID(r.Context()), "err", err)
	}
	writeJSON(w, status, jsonError{Error: http.StatusText(status), ErrCode: code, Message: medpay.ErrorMessage(err)})
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

type sandboxPerson struct {
	Name     string `json:"name"`
	IDNo     string `json:"id_no"`
	CardNo   string `json:"card_no"`
	CityID   string `json:"city_id"`
	Scenario string `json:"scenario"`
	PIN      string `json:"pin"`
	PsnType  string `json:"psn_type"`
}

// sandboxPersons lists the test persons; ?city_id= and ?scenario= filter.
func (s *Server) sandboxPersons(w http.ResponseWriter, r *http.Request) {
	city, scenario := r.URL.Query().Get("city_id"), r.URL.Query().Get("scenario")
	out := []sandboxPerson{}
	persons, err := s.sandbox.SandboxPersons(r.Context())
	if err != nil {
		s.jsonFail(w, r, http.StatusBadGateway, err)
		return
	}
	for _, p := range persons {
		if (city != "" && p.CityID != city) || (scenario != "" && p.Scenario != scenario) {
			continue
		}
		out = append(out, sandboxPerson{Name: p.Name, IDNo: p.IDNo, CardNo: p.CardNo, CityID: p.CityID,
			Scenario: p.Scenario, PIN: p.PIN, PsnType: p.PsnType})
	}
	writeJSON(w, http.StatusOK, out)
}

// sandboxBind binds a test person's card to an openid, as the bind page does.
func (s *Server) sandboxBind(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppID  string `json:"appid"`
		OpenID string `json:"openid"`
		IDNo   string `json:"id_no"`
	}
	if err := decodeJSON(r, &req); err != nil || req.AppID == "" || req.OpenID == "" || req.IDNo == "" {
		writeJSON(w, http.StatusBadRequest, jsonError{Error: "Bad Request", Message: "body must be {\"appid\",\"openid\",\"id_no\"}"})
		return
	}
	if _, err := s.store.MerchantByAppID(r.Context(), req.AppID); err != nil {
		writeJSON(w, http.StatusNotFound, jsonError{Error: "Not Found", Message: "unknown appid"})
		return
	}
	person, err := s.sandboxPerson(r.Context(), req.IDNo)
	if errors.Is(err, medpay.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, jsonError{Error: "Not Found", Message: "no sandbox person has this id_no (see GET /sandbox/persons)"})
		return
	} else if err != nil {
		s.jsonFail(w, r, http.StatusBadGateway, err)
		return
	}
	// The bureau's sandbox authorisation stands in for the payer's confirmation on its page.
	auth, err := s.sandbox.SandboxPayAuth(r.Context(), person.IDNo, medpay.ScopeBind)
	if err != nil {
		s.jsonFail(w, r, statusFor(err), err)
		return
	}
	b, err := s.payment.BindCard(r.Context(), req.AppID, req.OpenID, medpay.Identity{
		Name: person.Name, IDNo: person.IDNo, CardNo: person.CardNo, CityID: person.CityID}, auth)
	if err != nil {
		s.jsonFail(w, r, statusFor(err), err)
		return
	}
	// The scenario that concerns the cash channel is set on the payer's wallet.
	if err := s.setWalletScenario(r.Context(), req.AppID, req.OpenID, b); err != nil {
		s.jsonFail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"appid": b.AppID, "openid": b.OpenID, "medical_card_no": medpay.MaskCardNo(b.CardNo),
		"user_name": medpay.MaskName(b.Name), "city_id": b.CityID, "card_status": "BOUND", "scenario": person.Scenario,
	})
}

// sandboxConfirm is the payer's confirmation, through the same path as the payment page.
func (s *Server) sandboxConfirm(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PIN    string `json:"pin"`
		OpenID string `json:"openid"` // 扫码付: the payer who scanned the order's code
	}
	if err := decodeJSON(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, jsonError{Error: "Bad Request", Message: "body must be {\"pin\"} or {\"pin\",\"openid\"}"})
		return
	}
	if req.OpenID != "" {
		if _, err := s.payment.Identify(r.Context(), r.PathValue("id"), req.OpenID); err != nil {
			s.jsonFail(w, r, statusFor(err), err)
			return
		}
	}
	o, err := s.payment.Confirm(r.Context(), r.PathValue("id"), req.PIN)
	if errors.Is(err, payment.ErrNoPayer) {
		writeJSON(w, http.StatusConflict, jsonError{Error: "Conflict", Message: "扫码付: name the payer who scanned the code with \"openid\""})
		return
	}
	var pinErr *payment.PINError
	if errors.As(err, &pinErr) {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "Forbidden", "message": pinErr.Error(),
			"remaining": pinErr.Remaining, "blocked_until": pinErr.BlockedUntil})
		return
	}
	if o == nil {
		s.jsonFail(w, r, statusFor(err), err)
		return
	}
	out := map[string]any{
		"med_trans_id": o.MedTransID, "med_trade_state": o.State, "cash_fee": o.CashFee,
		"insurance_fee": o.InsuranceFee, "hifp_pay": o.HifpPay, "acct_pay": o.AcctPay,
		"cash_trade_status": o.CashStatus, "insurance_trade_status": o.InsuranceStatus,
		"trade_status_desc": o.StatusDesc,
	}
	if errors.Is(err, medpay.ErrDeclined) {
		// The payer's wallet declined at the channel: nothing was paid, and the order stays
		// payable until it expires, as after a decline in the channel's cashier.
		out["error"], out["message"] = "Payment Required", "现金支付被拒绝"
		writeJSON(w, http.StatusPaymentRequired, out)
		return
	}
	if err != nil {
		out["err_code"], out["message"] = medpay.ErrorCode(err), medpay.ErrorMessage(err)
		if medpay.ErrorCode(err) == medpay.ErrSystem {
			s.logger.Warn("sandbox confirm", "med_trans_id", o.MedTransID, "err", err)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// scenarioCashDeclined is the sandbox scenario whose payer's wallet declines (docs/api/sandbox.md (场景)).
const scenarioCashDeclined = "cash_declined"

// sandboxPerson finds the test person with ID number idNo, or medpay.ErrNotFound.
func (s *Server) sandboxPerson(ctx context.Context, idNo string) (*medpay.SandboxPerson, error) {
	persons, err := s.sandbox.SandboxPersons(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range persons {
		if strings.EqualFold(p.IDNo, idNo) {
			return &p, nil
		}
	}
	return nil, medpay.ErrNotFound
}

func statusFor(err error) int {
	switch medpay.ErrorCode(err) {
	case medpay.ErrSystem:
		return http.StatusInternalServerError
	case medpay.ErrOrderNotFound:
		return http.StatusNotFound
	}
	return http.StatusUnprocessableEntity
}
