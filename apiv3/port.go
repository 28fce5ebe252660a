package apiv3

import (
	"fmt"
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
