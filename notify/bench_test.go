package notify_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// BenchmarkDeliver measures the delivery of b.N queued notifications to a local receiver that
// acknowledges at once: claims, POSTs, acknowledgement parsing and the recording of each attempt.
func BenchmarkDeliver(b *testing.B) {
	for _, engine := range sqlstoretest.Engines() {
		for _, per := range []int{2, 8} {
			b.Run(fmt.Sprintf("%s/per-destination=%d", engine, per), func(b *testing.B) {
				db := sqlstoretest.Open(b, engine)
				rc := newReceiver(b, nil)
				ctx := context.Background()
				body := body(b, "BENCH")
				for i := 0; i < b.N; {
					err := db.WriteTx(ctx, func(tx *sql.Tx) error {
						for j := 0; j < 500 && i+j < b.N; j++ {
							n := &notify.Notification{NotifyID: fmt.Sprintf("N%d", i+j), Kind: notify.KindPay, URL: rc.URL, Body: body}
							if err := notify.Enqueue(ctx, tx, n, t0); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
					i += 500
				}
				w := worker(db, notify.Options{PerDestination: per})
				b.ResetTimer()
				start := time.Now()
				done := 0
				for done < b.N {
					n, err := w.RunOnce(ctx, t0)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						b.Fatalf("nothing attempted with %d of %d done", done, b.N)
					}
					done += n
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "notifications/s")
				if rc.count() != b.N {
					b.Fatalf("%d received, want %d", rc.count(), b.N)
				}
			})
		}
	}
}
