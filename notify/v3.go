package notify

import (
	"errors"
	"net/http"
	"time"
)

// Formats of an outbox row.
const (
	FormatXML = "xml" // the XML API's signed body, acknowledged by a SUCCESS envelope
	FormatV3  = "v3"  // 医保 2.0's JSON callback, APIv3 headers signed at each attempt, any 2XX
)

// nextV3 is when a failed v3 callback is tried again: backoff doubling from 1 s, and no more
// once giveUpAt has passed (v3.md §4: WeChat retries for 30 s, then the hospital queries).
func nextV3(attempt int, t time.Time, giveUpAt int64) (time.Time, bool) {
	gap := time.Second << min(attempt-1, 20)
	next := t.Add(gap)
	if attempt >= MaxAttempts || next.UnixMilli() > giveUpAt {
		return time.Time{}, true
	}
	return next, false
}

// signV3 sets a v3 callback's Content-Type and signed Wechatpay-* headers for body.
func (w *Worker) signV3(h http.Header, body []byte) error {
	if w.opts.SignV3 == nil {
		return errors.New("notify: no APIv3 signer configured")
	}
	h.Set("Content-Type", "application/json")
	return w.opts.SignV3(h, body)
}

func (n *Notification) format() string {
	if n.Format == "" {
		return FormatXML
	}
	return n.Format
}
