package notify

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Formats of an outbox row.
const (
	FormatXML = "xml" // the XML API's signed body, acknowledged by a SUCCESS envelope
	FormatV3  = "v3"  // 医保 2.0's JSON callback, APIv3 headers signed at each attempt, any 2XX
	// FormatV3Probe is a sandbox signature probe: a v3 callback whose signature starts
	// WECHATPAY/SIGNTEST/. It is delivered when the hospital refuses it (4XX/5XX), and ends dead
	// when the hospital accepted it: the record that its endpoint does not verify signatures.
	FormatV3Probe = "v3probe"
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

// signV3 sets a v3 callback's Content-Type and signed Wechatpay-* headers for body; a probe's
// signature is then replaced by a probe's.
func (w *Worker) signV3(h http.Header, body []byte, probe bool) error {
	if w.opts.SignV3 == nil {
		return errors.New("notify: no APIv3 signer configured")
	}
	h.Set("Content-Type", "application/json")
	if err := w.opts.SignV3(h, body); err != nil {
		return err
	}
	if probe {
		h.Set("Wechatpay-Signature", "WECHATPAY/SIGNTEST/"+h.Get("Wechatpay-Signature"))
	}
	return nil
}

// probeJudged is the outcome of a probe answered with status: refused is right.
func probeJudged(status int) (bool, string) {
	if status >= 400 {
		return true, ""
	}
	return false, fmt.Sprintf("the endpoint accepted a signature probe (HTTP %d): it does not verify signatures", status)
}

func (n *Notification) format() string {
	if n.Format == "" {
		return FormatXML
	}
	return n.Format
}
