// Package bill produces a hospital's daily bill (docs/api/bills.md): one row per payment and per
// refund of the day, covering both legs — cash and insurance — then a summary and a checksum.
package bill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/sqlstore"
)

// Bill types.
const (
	TypeAll     = "ALL"
	TypeSuccess = "SUCCESS"
	TypeRefund  = "REFUND"
)

var header = []string{"交易时间", "公众账号ID", "商户号", "子商户号", "医保订单号", "医院订单号", "用户标识",
	"订单类型", "支付类型", "交易状态", "总金额", "现金支付金额", "医保支付金额", "统筹基金支付", "个人账户支付",
	"医保退款单号", "医院退款单号", "现金退款金额", "医保退款金额", "退款状态", "商品名称", "附加数据"}

var summaryHeader = []string{"总交易单数", "总交易额", "总现金支付", "总医保支付", "总退款金额", "总现金退款", "总医保退款"}

// Day is the CST day [start, end) of a yyyyMMdd date.
func Day(date string) (start, end time.Time, err error) {
	start, err = time.ParseInLocation("20060102", date, medpay.CST)
	if err != nil {
		return start, end, err
	}
	return start, start.AddDate(0, 0, 1), nil
}

// Generate writes merchant's bill of the CST day starting at start. It returns medpay error 520
// when the day has no payment or refund of the requested type.
func Generate(ctx context.Context, store *sqlstore.Store, merchantID int64, start time.Time, billType string) ([]byte, error) {
	end := start.AddDate(0, 0, 1)
	var rows [][]string
	var count int
	var total, cash, insurance, refundCash, refundIns, refunded sum
	if billType == TypeAll || billType == TypeSuccess {
		orders, err := store.OrdersPaidBetween(ctx, merchantID, start, end)
		if err != nil {
			return nil, err
		}
		for _, o := range orders {
			rows = append(rows, paymentRow(o))
			count++
			total.add(o.TotalFee)
			cash.add(o.CashFee)
			insurance.add(o.InsuranceFee)
		}
	}
	if billType == TypeAll || billType == TypeRefund {
		refunds, err := store.RefundsSucceededBetween(ctx, merchantID, start, end)
		if err != nil {
			return nil, err
		}
		for _, rr := range refunds {
			rows = append(rows, refundRow(rr.Order, rr.Refund))
			count++
			refundCash.add(rr.Refund.CashRefundFee)
			refundIns.add(rr.Refund.InsuranceRefundFee)
			refunded.add(rr.Refund.CashRefundFee)
			refunded.add(rr.Refund.InsuranceRefundFee)
		}
	}
	if count == 0 {
		return nil, medpay.Errorf(medpay.ErrNoBill, "no %s bill for %s", strings.ToLower(billType), start.Format("20060102"))
	}
	var b bytes.Buffer
	writeRow(&b, header, false)
	for _, r := range rows {
		writeRow(&b, r, true)
	}
	writeRow(&b, summaryHeader, false)
	for _, s := range []sum{total, cash, insurance, refundCash, refundIns, refunded} {
		if s.overflow {
			return nil, errOverflow
		}
	}
	writeRow(&b, []string{fmt.Sprint(count), yuan(total.fen), yuan(cash.fen), yuan(insurance.fen), yuan(refunded.fen),
		yuan(refundCash.fen), yuan(refundIns.fen)}, true)
	sum := sha256.Sum256(b.Bytes())
	b.WriteString("sha256=" + hex.EncodeToString(sum[:]) + "\n")
	return b.Bytes(), nil
}

// errOverflow is returned rather than a bill whose totals wrapped around.
var errOverflow = errors.New("bill: totals overflow int64")

// sum is a bill total that remembers an overflow instead of wrapping around.
type sum struct {
	fen      int64
	overflow bool
}

func (s *sum) add(fen int64) {
	v, ok := medpay.AddFen(s.fen, fen)
	s.fen, s.overflow = v, s.overflow || !ok
}

func yuan(fen int64) string { return medpay.FormatYuan(fen) }

func payer(o *medpay.Order) string {
	if o.SubOpenID != "" {
		return o.SubOpenID
	}
	return o.OpenID
}

func paymentRow(o *medpay.Order) []string {
	return []string{o.TimeEnd.In(medpay.CST).Format("2006-01-02 15:04:05"), o.AppID, o.MchID, o.SubMchID, o.MedTransID,
		o.HospOutTradeNo, payer(o), o.OrderType, fmt.Sprint(o.PayType), "SUCCESS", yuan(o.TotalFee), yuan(o.CashFee),
		yuan(o.InsuranceFee), yuan(o.HifpPay), yuan(o.AcctPay), "", "", "0.00", "0.00", "", o.Body, o.Attach}
}

// refundRow lists a refund. The cash and insurance payment columns are zero so that the summary
// counts each payment once, on the day it was paid; 统筹基金支付 and 个人账户支付 show the funds
// the refund gave back, negative, for reconciliation with the bureau.
func refundRow(o *medpay.Order, r *medpay.Refund) []string {
	return []string{r.SuccessTime.In(medpay.CST).Format("2006-01-02 15:04:05"), o.AppID, o.MchID, o.SubMchID, o.MedTransID,
		o.HospOutTradeNo, payer(o), o.OrderType, fmt.Sprint(o.PayType), "REFUND", yuan(o.TotalFee), "0.00", "0.00",
		yuan(-r.HifpRefund), yuan(-r.AcctRefund), r.MedRefundID, r.HospOutRefund, yuan(r.CashRefundFee),
		yuan(r.InsuranceRefundFee), r.State, o.Body, o.Attach}
}

// writeRow writes comma-separated values; data rows prefix each value with a back-tick (so that
// spreadsheets keep long numbers as text), and a value never carries a comma or a line break.
func writeRow(b *bytes.Buffer, vals []string, tick bool) {
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		if tick {
			b.WriteByte('`')
		}
		b.WriteString(strings.NewReplacer(",", "，", "\n", " ", "\r", " ").Replace(v))
	}
	b.WriteByte('\n')
}
