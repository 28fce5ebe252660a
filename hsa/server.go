package hsa

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"
)

// Refusal codes of the envelope (see the package doc).
const (
	CodeOK             = 0
	CodeMalformed      = 1001
	CodeUnknownApp     = 1002
	CodeUndecryptable  = 1003
	CodeBadSignature   = 1004
	CodeStaleTimestamp = 1005
	CodeReplay         = 1006
	CodeTooLarge       = 1007
	CodeInternal       = 1500
)

// isEnvelopeCode reports whether code is one of the envelope's own refusals, which the bureau
// signs without the institution's secret.
func isEnvelopeCode(code int) bool { return code >= 1000 && code < 2000 }

// Defaults of the Handler.
const (
	DefaultWindow    = 5 * time.Minute
	DefaultReplayTTL = 10 * time.Minute
	DefaultMaxBody   = 1 << 20
)

// ErrUnknownApp is wrapped by Institutions when no institution has the appId.
var ErrUnknownApp = errors.New("hsa: unknown appId")

// Institution is a caller registered at the bureau.
type Institution struct {
	AppID     string
	AppSecret string
	OrgCodg   string
	PublicKey *ecdsa.PublicKey
}

// Institutions looks up a caller; an error wrapping ErrUnknownApp when there is none.
type Institutions interface {
	Institution(ctx context.Context, appID string) (*Institution, error)
}

// InstitutionMap is an Institutions held in memory, by appId.
type InstitutionMap map[string]*Institution

// Institution implements Institutions.
func (m InstitutionMap) Institution(_ context.Context, appID string) (*Institution, error) {
	if inst, ok := m[appID]; ok {
		return inst, nil
	}
	return nil, ErrUnknownApp
}

// ReplayCache remembers the requests a bureau has accepted.
type ReplayCache interface {
	// Remember records that appID sent signData at now and reports whether the same pair was
	// already recorded in the last 10 minutes (twice the clock window, so every request that
	// can still pass the window is remembered).
	Remember(ctx context.Context, appID, signData string, now time.Time) (replay bool, err error)
}

// MemoryReplay is a ReplayCache in memory, for one process.
type MemoryReplay struct {
	TTL time.Duration // default 10 min

	mu        sync.Mutex
	seen      map[string]time.Time
	lastSweep time.Time
}

// Remember implements ReplayCache.
func (m *MemoryReplay) Remember(_ context.Context, appID, signData string, now time.Time) (bool, error) {
	ttl := m.TTL
	if ttl <= 0 {
		ttl = DefaultReplayTTL
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = make(map[string]time.Time)
	}
	if now.Sub(m.lastSweep) > ttl/10 { // drop expired pairs now and then, not on every call
		for k, at := range m.seen {
			if now.Sub(at) >= ttl {
				delete(m.seen, k)
			}
		}
		m.lastSweep = now
	}
	key := appID + "\x00" + signData
	if at, ok := m.seen[key]; ok && now.Sub(at) < ttl {
		return true, nil
	}
	m.seen[key] = now
	return false, nil
}

// Handler is the bureau's side of the envelope: it opens requests and seals answers.
type Handler struct {
	Institutions Institutions
	BureauKey    *sm2.PrivateKey // signs answers
	Now          func() time.Time
	Window       time.Duration // clock window, default 5 min either way
	Replay       ReplayCache   // default: a MemoryReplay of its own
	MaxBody      int64         // default 1 MiB
	Log          *slog.Logger  // internal errors; default slog.Default()

	once sync.Once
	mem  *MemoryReplay
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) replay() ReplayCache {
	if h.Replay != nil {
		return h.Replay
	}
	h.once.Do(func() { h.mem = &MemoryReplay{} })
	return h.mem
}

// Serve opens the request and calls fn with the caller and its data (nil when the request has
// none). fn's result is sealed into the answer, code 0 and success true; when fn returns a
// *Refusal, into a refusal with that code and message (with encrypted data when the result, or
// else the Refusal's Data, is not nil). A request that does not open is refused with a signed
// envelope refusal and fn is not called. Any other error of fn is an internal error: HTTP 500,
// code 1500, logged. fn's context is not cancelled when the caller hangs up: an operation
// that has started runs to its end, as at a real bureau, and the caller finds out by querying.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, inst *Institution, data json.RawMessage) (any, error)) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	limit := h.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.refuse(w, "", CodeTooLarge, fmt.Sprintf("body over %d bytes", limit))
			return
		}
		h.refuse(w, "", CodeMalformed, "body could not be read")
		return
	}
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		h.refuse(w, "", CodeMalformed, "body is not a JSON envelope")
		return
	}
	switch {
	case env.AppID == "":
		h.refuse(w, "", CodeMalformed, "appId is missing")
		return
	case env.EncType != EncType || env.SignType != SignType:
		h.refuse(w, env.AppID, CodeMalformed, "encType must be SM4 and signType SM2")
		return
	case env.SignData == "":
		h.refuse(w, env.AppID, CodeMalformed, "signData is missing")
		return
	}
	ts, err := env.Time()
	if err != nil {
		h.refuse(w, env.AppID, CodeMalformed, "timestamp is not yyyyMMddHHmmss")
		return
	}
	ctx := r.Context()
	inst, err := h.Institutions.Institution(ctx, env.AppID)
	if errors.Is(err, ErrUnknownApp) {
		h.refuse(w, env.AppID, CodeUnknownApp, "unknown appId")
		return
	}
	if err != nil {
		h.internal(w, env.AppID, "institution lookup", err)
		return
	}
	data, err := Open(&env, inst.AppSecret, inst.PublicKey)
	switch {
	case errors.Is(err, ErrUndecryptable):
		h.refuse(w, env.AppID, CodeUndecryptable, "encData does not decrypt with the institution's key")
		return
	case errors.Is(err, ErrBadSignature):
		h.refuse(w, env.AppID, CodeBadSignature, "signData does not verify with the institution's public key")
		return
	case err != nil:
		h.refuse(w, env.AppID, CodeMalformed, "envelope does not open")
		return
	}
	now := h.now()
	window := h.Window
	if window <= 0 {
		window = DefaultWindow
	}
	if skew := now.Sub(ts); skew > window || skew < -window {
		h.refuse(w, env.AppID, CodeStaleTimestamp, fmt.Sprintf("timestamp %s is more than %v from the bureau's clock", env.Timestamp, window))
		return
	}
	replay, err := h.replay().Remember(ctx, env.AppID, env.SignData, now)
	if err != nil {
		h.internal(w, env.AppID, "replay cache", err)
		return
	}
	if replay {
		h.refuse(w, env.AppID, CodeReplay, "request already received (same signData)")
		return
	}

	result, err := fn(context.WithoutCancel(ctx), inst, data)
	ans := &Answer{Code: CodeOK, Message: "成功", Success: true}
	var refusal *Refusal
	switch {
	case errors.As(err, &refusal):
		ans = &Answer{Code: refusal.Code, Message: refusal.Message}
		if result == nil && refusal.Data != nil {
			result = refusal.Data
		}
	case err != nil:
		h.internal(w, env.AppID, "operation", err)
		return
	}
	out, err := Seal(inst.AppID, inst.AppSecret, h.BureauKey, result, ans, h.now())
	if err != nil {
		h.internal(w, env.AppID, "seal answer", err)
		return
	}
	writeEnvelope(w, http.StatusOK, out)
}

// refuse answers an envelope refusal, signed without an institution's secret.
func (h *Handler) refuse(w http.ResponseWriter, appID string, code int, message string) {
	h.refuseStatus(w, http.StatusOK, appID, code, message)
}

func (h *Handler) refuseStatus(w http.ResponseWriter, status int, appID string, code int, message string) {
	env, err := Seal(appID, "", h.BureauKey, nil, &Answer{Code: code, Message: message}, h.now())
	if err != nil {
		h.logger().Error("hsa: cannot sign a refusal", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeEnvelope(w, status, env)
}

func (h *Handler) internal(w http.ResponseWriter, appID, what string, err error) {
	h.logger().Error("hsa: internal error", "appId", appID, "during", what, "err", err)
	h.refuseStatus(w, http.StatusInternalServerError, appID, CodeInternal, "internal error")
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

func writeEnvelope(w http.ResponseWriter, status int, env *Envelope) {
	b, _ := json.Marshal(env)
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(b)
}
