package apiv3

import (
	"fmt"
	"net/http"
)

// Error codes of the answers (v3.md §1).
const (
	CodeParamError        = "PARAM_ERROR"
	CodeInvalidRequest    = "INVALID_REQUEST"
	CodeSignError         = "SIGN_ERROR"
	CodeRuleLimit         = "RULE_LIMIT"
	CodeNoAuth            = "NO_AUTH"
	CodeOrderNotExist     = "ORDER_NOT_EXIST"
	CodeResourceNotExists = "RESOURCE_NOT_EXISTS"
	CodeFrequencyLimited  = "FREQUENCY_LIMITED"
	CodeSystemError       = "SYSTEM_ERROR"
	CodeOrderPaid         = "ORDERPAID"
	CodeOrderClosed       = "ORDER_CLOSED"
)

// Error is an answer's error body: {"code","message","detail":{"field","location","issue"}},
// with the HTTP status it came with.
type Error struct {
	Status  int          `json:"-"`
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Detail  *ErrorDetail `json:"detail,omitempty"`
}

// ErrorDetail names the offending field of a PARAM_ERROR.
type ErrorDetail struct {
	Field    string `json:"field,omitempty"`
	Location string `json:"location,omitempty"` // "body", "query" or "path"
	Issue    string `json:"issue,omitempty"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("apiv3: %d %s: %s", e.Status, e.Code, e.Message)
	if e.Detail != nil && e.Detail.Field != "" {
		s += fmt.Sprintf(" (%s %s: %s)", e.Detail.Location, e.Detail.Field, e.Detail.Issue)
	}
	return s
}

// Errorf returns an *Error with status, code and a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ParamError is a 400 PARAM_ERROR naming field (in location: "body", "query" or "path").
func ParamError(location, field, issue string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeParamError, Message: field + ": " + issue,
		Detail: &ErrorDetail{Field: field, Location: location, Issue: issue}}
}
