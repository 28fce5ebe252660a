package apiv3

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/medpay/medpay"
)

// CashRefund puts a refund answer in the cash-channel port's terms; both the APIv3 client and the
// in-process channel answer with it.
func (a *Refund) CashRefund() (*medpay.CashRefund, error) {
	r := &medpay.CashRefund{OutRefundNo: a.OutRefundNo, RefundID: a.RefundID, OutTradeNo: a.OutTradeNo,
		TransactionID: a.TransactionID, Status: a.Status, Amount: a.Amount.Refund, Total: a.Amount.Total}
	if a.SuccessTime != "" {
		at, err := time.Parse(time.RFC3339, a.SuccessTime)
		if err != nil {
			return nil, fmt.Errorf("refund success_time %q: %w", a.SuccessTime, err)
		}
		r.SucceededAt = at
	}
	return r, nil
}

// PortError puts an error answer in the cash-channel port's terms, for the APIv3 client and the
// in-process channel alike: a 5XX, SYSTEM_ERROR and FREQUENCY_LIMITED wrap
// medpay.ErrOutcomeUnknown; not found wraps medpay.ErrNotFound; the codes in conflict wrap
// medpay.ErrConflict. e stays reachable with errors.As. op names the call in the message.
func (e *Error) PortError(op string, conflict ...string) error {
	switch {
	case e.Status >= 500 || e.Code == CodeSystemError || e.Code == CodeFrequencyLimited:
		return fmt.Errorf("%s: %w: %w", op, medpay.ErrOutcomeUnknown, e)
	case e.Status == http.StatusNotFound || e.Code == CodeOrderNotExist || e.Code == CodeResourceNotExists:
		return fmt.Errorf("%s: %w: %w", op, medpay.ErrNotFound, e)
	case slices.Contains(conflict, e.Code):
		return fmt.Errorf("%s: %w: %w", op, medpay.ErrConflict, e)
	}
	return fmt.Errorf("%s: %w", op, e)
}
