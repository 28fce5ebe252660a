package notify

import (
	"net"
	"net/http"
	"time"
)

// Client returns an HTTP client for a single delivery outside the worker (the portal's notify
// URL test): it follows no redirect, gives up after timeout and, unless allowPrivate, refuses at
// dial time to connect to a non-public address, as the worker does.
func Client(timeout time.Duration, allowPrivate bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if !allowPrivate {
		d := &net.Dialer{Timeout: timeout, Control: dialControl}
		t.DialContext = d.DialContext
		t.Proxy = nil
	}
	return &http.Client{Timeout: timeout, Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
