package client

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ProtocolError is a FAIL at the protocol level (return_code FAIL): the request did not get
// through the platform's checks (token, XML, fields, signature, replay). Such answers are not
// signed. ReturnMsg is the reason without its " rid: ..." suffix, e.g. "签名失败" or
// "参数格式校验错误 total_fee is invalid"; match on its prefix (docs/api/README.md (transport)).
type ProtocolError struct {
	ReturnMsg string
	RequestID string // the platform's request id, for support
}

func (e *ProtocolError) Error() string {
	if e.RequestID == "" {
		return "return_code FAIL: " + e.ReturnMsg
	}
	return "return_code FAIL: " + e.ReturnMsg + " (rid " + e.RequestID + ")"
}

// APIError is a business failure (result_code FAIL) with the err_code of docs/api/errors.md, e.g.
// "503" order already paid. Token endpoints report their errors as APIError too: the provider
// token's 401/402, and /cgi-bin/token's errcode (e.g. "40125") with errmsg as Description.
type APIError struct {
	Code        string
	Description string
	RequestID   string
}

func (e *APIError) Error() string {
	s := "err_code " + e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.RequestID != "" {
		s += " (rid " + e.RequestID + ")"
	}
	return s
}

// ErrBadSignature is returned (wrapped) when an answer's or a notification's signature does not
// verify with the configured key: its content must not be used.
var ErrBadSignature = errors.New("client: signature does not verify")

// HTTPError is an answer that is not the protocol's: an unexpected HTTP status or a body that is
// not the XML envelope (a proxy's error page, a wrong base URL).
type HTTPError struct {
	StatusCode int
	Body       string // the first bytes of the body
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("client: unexpected answer: HTTP %d: %q", e.StatusCode, e.Body)
}

// IsCode reports whether err is an *APIError with err_code code (e.g. "503").
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// Code returns the err_code of an *APIError in err's chain, or "".
func Code(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// IsProtocol reports whether err is a *ProtocolError whose reason starts with prefix ("" matches
// any protocol error).
func IsProtocol(err error, prefix string) bool {
	var e *ProtocolError
	return errors.As(err, &e) && strings.HasPrefix(e.ReturnMsg, prefix)
}

// Protocol-level reasons a caller may want to match with IsProtocol.
const (
	MsgTokenInvalid  = "access_token无效或已过期"
	MsgTokenMismatch = "access_token与appid不匹配"
	MsgBadSignature  = "签名失败"
	MsgBadField      = "参数格式校验错误"
	MsgReplay        = "nonce_str重复"
)

// Retryable reports whether the same request may be sent again as it is (the client signs it
// with a fresh nonce): err_code 505 (being paid), 553/556 (a refund leg failed or is unknown),
// 599 (system error), an HTTP 5xx from something in between, and transport errors (no answer
// read). The business keys (hosp_out_trade_no, hosp_out_refund_no) make such retries safe.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var pe *ProtocolError
	var he *HTTPError
	switch {
	case errors.Is(err, ErrBadSignature):
		return false
	case errors.As(err, &pe):
		return strings.HasPrefix(pe.ReturnMsg, MsgReplay) || strings.HasPrefix(pe.ReturnMsg, "系统错误")
	case errors.As(err, &he):
		return he.StatusCode >= 500
	}
	switch Code(err) {
	case "505", "553", "556", "599":
		return true
	}
	// A transport error (connection refused or reset, timeout): the outcome is unknown, and the
	// business key makes the retry safe.
	var ue *url.Error
	return errors.As(err, &ue)
}

// splitRID splits "reason rid: X" into its parts.
func splitRID(msg string) (reason, rid string) {
	if i := strings.LastIndex(msg, " rid: "); i >= 0 {
		return msg[:i], msg[i+len(" rid: "):]
	}
	return msg, ""
}
