package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/medpay/medpay/client"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/wire"
)

// fieldsFlag is a repeatable name=value flag: extra request fields.
type fieldsFlag map[string]string

func (f fieldsFlag) String() string { return "" }
func (f fieldsFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want name=value", v)
	}
	f[name] = value
	return nil
}

// textArg reads a flag value given as text or as @file.
func textArg(v string) (string, error) {
	if !strings.HasPrefix(v, "@") {
		return v, nil
	}
	data, err := os.ReadFile(v[1:])
	return string(data), err
}

// orderRef reads --med-trans-id or --trade-no.
func orderRefFlags(fs *flag.FlagSet) (*string, *string) {
	return fs.String("med-trans-id", "", "the platform's order id"), fs.String("trade-no", "", "the hospital's order number (hosp_out_trade_no)")
}

func runOrder(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand("order", orderUsage, args, stdout, stderr)
	if err != nil {
		return err
	}
	args = append([]string{sub}, rest...)
	fs := newFlags("order "+sub, stdout)
	setUsage(fs, orderUsage)
	api := addAPIFlags(fs)
	defer api.keepToken()
	switch sub {
	case "create":
		req := &client.UnifiedOrderRequest{Extra: map[string]string{}}
		fs.StringVar(&req.OpenID, "openid", "", "the payer (independent mode)")
		fs.StringVar(&req.SubOpenID, "sub-openid", "", "the payer under the hospital's appid (service-provider mode)")
		fs.StringVar(&req.OrderType, "type", client.DiagPay, "RegPay (挂号) or DiagPay (诊间)")
		fs.StringVar(&req.HospOutTradeNo, "trade-no", "", "hosp_out_trade_no (default: generated, printed)")
		fs.StringVar(&req.HospitalName, "hospital-name", "", "hospital_name")
		fs.StringVar(&req.Body, "body", "门诊缴费", "description shown to the payer")
		fs.Int64Var(&req.TotalFee, "total-fee", 0, "required: total_fee in fen")
		fs.Int64Var(&req.CashFee, "cash-fee", 0, "cash_fee in fen")
		fs.Int64Var(&req.InsuranceFee, "insurance-fee", 0, "insurance_fee in fen")
		payType := fs.Int("pay-type", 0, "1 cash, 2 insurance, 3 both (default: from the fees)")
		fs.IntVar(&req.AllowFeeChange, "allow-fee-change", 1, "1: accept the bureau's split; 0: fail when it differs")
		fs.StringVar(&req.SpbillCreateIP, "ip", "127.0.0.1", "spbill_create_ip: the payer's IP")
		fs.StringVar(&req.NotifyURL, "notify-url", "", "where the platform sends the result")
		fs.StringVar(&req.ReturnURL, "return-url", "", "where the payer returns")
		fs.StringVar(&req.CityID, "city", "", "city_id (needed when the hospital has several cities)")
		fs.StringVar(&req.SerialNo, "serial-no", "", "serial_no: HIS serial (default: from the trade number)")
		fs.StringVar(&req.OrgNo, "org-no", "H00000000000", "org_no: institution code from the bureau")
		content := fs.String("request-content", "", "request_content: the itemised bill, JSON text or @file")
		fs.StringVar(&req.Attach, "attach", "", "attach: returned in queries and notifications")
		fs.StringVar(&req.UserCardNo, "user-card-no", "", "the payer's ID number, checked against the bound card")
		fs.StringVar(&req.UserName, "user-name", "", "the payer's name, checked against the bound card")
		fs.Var(fieldsFlag(req.Extra), "field", "extra request field name=value (repeatable; empty value removes a field)")
		if err := parseFlags(fs, args[1:], getenv); err != nil {
			return err
		}
		var err error
		if req.RequestContent, err = textArg(*content); err != nil {
			return fmt.Errorf("--request-content: %w", err)
		}
		if req.TotalFee <= 0 {
			return errors.New("--total-fee is required (fen)")
		}
		if req.CashFee == 0 && req.InsuranceFee == 0 {
			req.CashFee = req.TotalFee
		}
		req.PayType = *payType
		if req.PayType == 0 {
			switch {
			case req.InsuranceFee == 0:
				req.PayType = client.PayCash
			case req.CashFee == 0:
				req.PayType = client.PayInsurance
			default:
				req.PayType = client.PayCashInsurance
			}
		}
		if req.HospOutTradeNo == "" {
			req.HospOutTradeNo = "CLI" + time.Now().In(wire.CST).Format("20060102150405") + secret.RandomString(6, "0123456789")
		}
		if req.SerialNo == "" {
			req.SerialNo = req.HospOutTradeNo[max(0, len(req.HospOutTradeNo)-20):]
		}
		req.GmtOutCreate = time.Now()
		c, err := api.client()
		if err != nil {
			return err
		}
		resp, err := c.UnifiedOrder(ctx, req)
		if err != nil {
			return apiError("unifiedorder "+req.HospOutTradeNo, err)
		}
		resp.Raw.Set("hosp_out_trade_no", req.HospOutTradeNo)
		return api.print(stdout, resp.Raw)
	case "query", "close":
		id, no := orderRefFlags(fs)
		if err := parseFlags(fs, args[1:], getenv); err != nil {
			return err
		}
		if (*id == "") == (*no == "") {
			return errors.New("give one of --med-trans-id and --trade-no")
		}
		c, err := api.client()
		if err != nil {
			return err
		}
		ref := &client.OrderRef{MedTransID: *id, HospOutTradeNo: *no}
		var raw *wire.Message
		if args[0] == "query" {
			o, err := c.QueryOrder(ctx, ref)
			if err != nil {
				return apiError("queryorder", err)
			}
			raw = o.Raw
		} else {
			o, err := c.CloseOrder(ctx, ref)
			if err != nil {
				return apiError("closeorder", err)
			}
			raw = o.Raw
		}
		return api.print(stdout, raw)
	}
	return unknownSub("order", orderUsage, sub, stderr)
}

const orderUsage = `usage:
  medpay order create --total-fee FEN [--cash-fee FEN --insurance-fee FEN] (--openid ID | --sub-openid ID) [flags]
  medpay order query (--med-trans-id ID | --trade-no NO) [flags]
  medpay order close (--med-trans-id ID | --trade-no NO) [flags]

Places an order (unifiedorder), queries it (queryorder) or closes it (closeorder).
'medpay order SUBCOMMAND -h' lists the subcommand's flags; --only NAME prints one field of the answer alone.
`
