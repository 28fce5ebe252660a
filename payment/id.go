package payment

import (
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
)

// NewMedTransID returns a platform order id: a date prefix for humans and operators, then 20
// random digits (about 66 bits) so that ids cannot be guessed or enumerated.
func NewMedTransID(now time.Time) string {
	return "M" + now.In(medpay.CST).Format("20060102") + secret.RandomString(20, "0123456789")
}

// NewRefundID returns a platform refund id.
func NewRefundID(now time.Time) string {
	return "R" + now.In(medpay.CST).Format("20060102") + secret.RandomString(20, "0123456789")
}
