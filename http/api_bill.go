package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"time"

	"github.com/medpay/medpay/bill"
	"github.com/medpay/medpay/wire"
)

// billDownload is POST /payinsurance/billdownload (docs/api/bills.md): the hospital's bill of a
// past day as text (or gzip), covering both the cash and the insurance legs.
func (s *Server) billDownload(ctx context.Context, c *call) ([]byte, string, error) {
	f := wire.NewFields(c.req)
	date := f.String("bill_date", 8, true)
	billType := f.Enum("bill_type", true, bill.TypeAll, bill.TypeSuccess, bill.TypeRefund)
	tar := f.Enum("tar_type", false, "GZIP")
	start, _, err := bill.Day(date)
	if date != "" && (err != nil || !start.AddDate(0, 0, 1).Before(s.now().Add(time.Nanosecond))) {
		f.Fail("bill_date", false) // not a date, or not a past day
	}
	if err := f.Err(); err != nil {
		return nil, "", err
	}
	text, err := bill.Generate(ctx, s.store, c.hospital.ID, start, billType)
	if err != nil {
		return nil, "", err
	}
	if tar != "GZIP" {
		return text, "text/plain; charset=utf-8", nil
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(text)
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return b.Bytes(), "application/gzip", nil
}
