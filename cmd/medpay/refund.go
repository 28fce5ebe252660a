package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/medpay/medpay/client"
)

func runRefund(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand("refund", refundUsage, args, stdout, stderr)
	if err != nil {
		return err
	}
	args = append([]string{sub}, rest...)
	fs := newFlags("refund "+sub, stdout)
	setUsage(fs, refundUsage)
	api := addAPIFlags(fs)
	defer api.keepToken()
	switch sub {
	case "create":
		req := &client.RefundRequest{Extra: map[string]string{}}
		fs.StringVar(&req.MedTransID, "med-trans-id", "", "the paid order's platform id")
		fs.StringVar(&req.HospOutTradeNo, "trade-no", "", "the paid order's hosp_out_trade_no")
		fs.StringVar(&req.HospOutRefundNo, "refund-no", "", "required: hosp_out_refund_no: the hospital's refund number (reuse it to retry)")
		fs.StringVar(&req.PartRefundType, "part", "", "empty: all that remains; CASH_ONLY; INSURANCE_ONLY")
		fs.Int64Var(&req.CashRefundFee, "cash-refund-fee", 0, "with --part CASH_ONLY: the cash to refund in fen (default all remaining)")
		fs.StringVar(&req.RefundReason, "reason", "", "refund_reason")
		fs.StringVar(&req.NotifyURL, "notify-url", "", "where the REFUND notification goes (none without it; never the payment's notify_url)")
		fs.StringVar(&req.CancelSerialNo, "cancel-serial-no", "", "cancel_serial_no for the bureau")
		fs.StringVar(&req.CancelBillNo, "cancel-bill-no", "", "cancel_bill_no for the bureau")
		content := fs.String("request-content", "", "request_content for the bureau's reversal, text or @file")
		fs.Var(fieldsFlag(req.Extra), "field", "extra request field name=value (repeatable)")
		if err := parseFlags(fs, args[1:], getenv); err != nil {
			return err
		}
		var err error
		if req.RequestContent, err = textArg(*content); err != nil {
			return fmt.Errorf("--request-content: %w", err)
		}
		if (req.MedTransID == "") == (req.HospOutTradeNo == "") {
			return errors.New("give one of --med-trans-id and --trade-no")
		}
		if req.HospOutRefundNo == "" {
			return errors.New("--refund-no is required (the hospital's refund number; the same number retries the same refund)")
		}
		c, err := api.client()
		if err != nil {
			return err
		}
		r, err := c.Refund(ctx, req)
		if err != nil {
			if client.Retryable(err) {
				err = fmt.Errorf("%w; run the same command again (same --refund-no) and check with 'medpay refund query'", err)
			}
			return apiError("refund "+req.HospOutRefundNo, err)
		}
		return api.print(stdout, r.Raw)
	case "query":
		id := fs.String("med-refund-id", "", "the platform's refund id")
		no := fs.String("refund-no", "", "the hospital's refund number (hosp_out_refund_no)")
		if err := parseFlags(fs, args[1:], getenv); err != nil {
			return err
		}
		if (*id == "") == (*no == "") {
			return errors.New("give one of --med-refund-id and --refund-no")
		}
		c, err := api.client()
		if err != nil {
			return err
		}
		r, err := c.QueryRefund(ctx, &client.QueryRefundRequest{MedRefundID: *id, HospOutRefundNo: *no})
		if err != nil {
			return apiError("queryrefund", err)
		}
		return api.print(stdout, r.Raw)
	}
	return unknownSub("refund", refundUsage, sub, stderr)
}

const refundUsage = `usage:
  medpay refund create (--med-trans-id ID | --trade-no NO) --refund-no NO [--part CASH_ONLY|INSURANCE_ONLY] [flags]
  medpay refund query (--med-refund-id ID | --refund-no NO) [flags]

Refunds a paid order (whole, the cash in parts, or the insured part alone) and queries a refund.
'medpay refund SUBCOMMAND -h' lists the subcommand's flags.
`
