package medpay

import (
	"errors"
	"fmt"
)

// Business error codes of the open API (docs/api/errors.md).
const (
	ErrBadSecret          = "401"
	ErrNotAuthorised      = "402"
	ErrDuplicateTradeNo   = "501"
	ErrOrderNotFound      = "502"
	ErrOrderPaid          = "503"
	ErrOrderClosed        = "504"
	ErrOrderPaying        = "505"
	ErrBureauRejected     = "506"
	ErrFeeChanged         = "507"
	ErrRefundNotFound     = "508"
	ErrRefundIP           = "509"
	ErrNoPermission       = "510"
	ErrNoCard             = "511"
	ErrIdentityMismatch   = "512"
	ErrCashFeeZero        = "513"
	ErrAmountInconsistent = "514"
	ErrRefundExceeds      = "515"
	ErrDuplicateRefundNo  = "516"
	ErrAuthCode           = "517"
	ErrNoBill             = "520"
	ErrBureauRefund       = "553"
	ErrCashRefund         = "556"
	ErrSystem             = "599"
)

var codeText = map[string]string{
	ErrBadSecret:          "service provider secret invalid",
	ErrNotAuthorised:      "hospital has not authorised this service provider",
	ErrDuplicateTradeNo:   "hosp_out_trade_no already used with different content",
	ErrOrderNotFound:      "order not found",
	ErrOrderPaid:          "order already paid",
	ErrOrderClosed:        "order closed or expired",
	ErrOrderPaying:        "order is being paid, try again later",
	ErrBureauRejected:     "bureau rejected the settlement",
	ErrFeeChanged:         "settlement differs from the expected split",
	ErrRefundNotFound:     "refund not found",
	ErrRefundIP:           "caller IP not allowed for refunds",
	ErrNoPermission:       "no permission",
	ErrNoCard:             "payer has no bound social-security card",
	ErrIdentityMismatch:   "payer identity does not match the bound card",
	ErrCashFeeZero:        "in cash combine insurance pay mode, cash_fee must be more than 0",
	ErrAmountInconsistent: "amounts inconsistent",
	ErrRefundExceeds:      "refund exceeds the refundable amount",
	ErrDuplicateRefundNo:  "hosp_out_refund_no already used with different content",
	ErrAuthCode:           "auth_code invalid or expired",
	ErrNoBill:             "no bill for that day",
	ErrBureauRefund:       "bureau refund failed or unknown, retry with the same refund number",
	ErrCashRefund:         "cash refund failed or unknown, retry with the same refund number",
	ErrSystem:             "system error, retry with the same business key",
}

// Error is a business failure with a code of docs/api/errors.md and a message for humans.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + " " + e.Message }

// Errorf returns an *Error with code and a formatted message. An empty format uses the code's
// standard description.
func Errorf(code, format string, args ...any) *Error {
	msg := codeText[code]
	if format != "" {
		msg = fmt.Sprintf(format, args...)
	}
	return &Error{Code: code, Message: msg}
}

// ErrorCode returns the code of the first *Error in err's chain, or ErrSystem.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ErrSystem
}

// ErrorMessage returns the human message of the first *Error in err's chain, or the generic text
// for a system error (details of unexpected errors stay in the log).
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return codeText[ErrSystem]
}

// ErrNotFound is returned by stores when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by stores when a unique business key is already taken.
var ErrConflict = errors.New("conflict")
