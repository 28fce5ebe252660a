package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/medpay/medpay/wire"
)

// Notification kinds (notify_type).
const (
	NotifyPay    = "PAY"
	NotifyRefund = "REFUND"
)

// Notification is one verified notification from the platform (docs/api/notifications.md). Delivery is at
// least once: the same NotifyID can arrive again, and the handler must be idempotent on it.
type Notification struct {
	NotifyType string // NotifyPay or NotifyRefund
	NotifyID   string // stable across retries of the same notification
	AppID      string
	MchID      string
	SubAppID   string // service-provider mode: the hospital
	SubMchID   string
	Order      *Order        // the order's query fields: set for PAY
	Refund     *Refund       // the refund's fields: set for REFUND
	Raw        *wire.Message // the whole verified notification
}

// maxNotification bounds a notification body.
const maxNotification = 64 << 10

// NotificationHandler returns the handler for the notify_url. It reads the POSTed XML, checks its
// signature with key (the hospital's API key; the service provider's in provider mode), decodes
// it into a Notification and calls fn. It answers the SUCCESS envelope only when fn returns nil;
// when fn fails it answers a FAIL envelope with status 500, so the platform sends the
// notification again later. A body that is not a notification or whose signature does not
// verify is answered 400 and fn is not called.
func NotificationHandler(key string, fn func(ctx context.Context, n *Notification) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			answer(w, http.StatusMethodNotAllowed, "FAIL", "POST only")
			return
		}
		n, err := ParseNotification(http.MaxBytesReader(w, r.Body, maxNotification), key)
		if err != nil {
			answer(w, http.StatusBadRequest, "FAIL", err.Error())
			return
		}
		if err := fn(r.Context(), n); err != nil {
			answer(w, http.StatusInternalServerError, "FAIL", "notification not processed")
			return
		}
		answer(w, http.StatusOK, "SUCCESS", "OK")
	})
}

func answer(w http.ResponseWriter, status int, code, msg string) {
	m := wire.NewMessage()
	m.Set("return_code", code)
	m.Set("return_msg", msg)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	w.Write(m.Bytes())
}

// ErrNotNotification is wrapped by ParseNotification's errors for a body that is not a
// notification.
var ErrNotNotification = errors.New("client: not a notification")

// ParseNotification reads one notification body, verifies its signature with key and decodes it.
// NotificationHandler uses it; it is exported for servers that route notifications themselves.
func ParseNotification(body io.Reader, key string) (*Notification, error) {
	m, err := wire.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotNotification, err)
	}
	if !wire.Verify(m, key) {
		return nil, fmt.Errorf("%w: notification", ErrBadSignature)
	}
	if m.Get("return_code") != "SUCCESS" || m.Get("notify_id") == "" {
		return nil, fmt.Errorf("%w: return_code %q, notify_id %q", ErrNotNotification, m.Get("return_code"), m.Get("notify_id"))
	}
	n := &Notification{
		NotifyType: m.Get("notify_type"), NotifyID: m.Get("notify_id"),
		AppID: m.Get("appid"), MchID: m.Get("mch_id"), SubAppID: m.Get("sub_appid"), SubMchID: m.Get("sub_mch_id"),
		Raw: m,
	}
	switch n.NotifyType {
	case NotifyPay:
		n.Order = &Order{Raw: m}
		err = decodeFields(m, n.Order)
	case NotifyRefund:
		n.Refund = &Refund{Raw: m}
		err = decodeFields(m, n.Refund)
	default:
		err = fmt.Errorf("%w: notify_type %q", ErrNotNotification, n.NotifyType)
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}
