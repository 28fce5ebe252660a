package notify_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// cpuTime is the CPU time (user and system) this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// enqueueMany queues n notifications to url, numbered from prefix, due at at.
func enqueueMany(b *testing.B, db *sqlstore.DB, prefix, url string, merchant int64, n int, at time.Time) {
	ctx := context.Background()
	body := body(b, "BENCH")
	for i := 0; i < n; {
		err := db.WriteTx(ctx, func(tx *sql.Tx) error {
			for j := 0; j < 500 && i+j < n; j++ {
				n := &notify.Notification{NotifyID: fmt.Sprintf("%s%d", prefix, i+j), Kind: notify.KindPay, MerchantID: merchant, URL: url, Body: body}
				if err := notify.Enqueue(ctx, tx, n, at); err != nil {
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
}

// BenchmarkDeliver measures the delivery of b.N queued notifications to a local receiver that
// acknowledges at once, by RunOnce: claims, POSTs, acknowledgement parsing and the recording of
// each attempt.
func BenchmarkDeliver(b *testing.B) {
	for _, engine := range sqlstoretest.Engines() {
		for _, per := range []int{2, 8} {
			b.Run(fmt.Sprintf("%s/per-destination=%d", engine, per), func(b *testing.B) {
				db := sqlstoretest.Open(b, engine)
				rc := newReceiver(b, nil)
				ctx := context.Background()
				enqueueMany(b, db, "N", rc.URL, 0, b.N, t0)
				w := worker(db, notify.Options{PerDestination: per})
				b.ResetTimer()
				start, cpu := time.Now(), cpuTime()
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
				b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
				if rc.count() != b.N {
					b.Fatalf("%d received, want %d", rc.count(), b.N)
				}
			})
		}
	}
}

// runUntilDelivered runs w until want notifications have reached rc, and reports the rate and
// the CPU time per notification.
func runUntilDelivered(b *testing.B, w *notify.Worker, delivered func() int, want int) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	go func() { stopped <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Minute) // a hang, not a measure of speed
	for delivered() < want {
		if time.Now().After(deadline) {
			cancel()
			b.Fatalf("%d of %d delivered", delivered(), want)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	elapsed, used := time.Since(start), cpuTime()-cpu
	cancel()
	if err := <-stopped; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(want)/elapsed.Seconds(), "notifications/s")
	b.ReportMetric(float64(used.Microseconds())/float64(want), "cpu-µs/op")
}

// BenchmarkRunOneHost measures Run delivering b.N notifications, all due, to one receiver that
// acknowledges at once (as loadtest's receiver does): what one fast hospital can be sent.
func BenchmarkRunOneHost(b *testing.B) {
	for _, engine := range sqlstoretest.Engines() {
		b.Run(engine, func(b *testing.B) {
			db := sqlstoretest.Open(b, engine)
			rc := newReceiver(b, nil)
			enqueueMany(b, db, "N", rc.URL, 1, b.N, time.Now().Add(-time.Second))
			w := worker(db, notify.Options{})
			runUntilDelivered(b, w, rc.count, b.N)
		})
	}
}

// BenchmarkRunBesideBacklog measures Run delivering b.N notifications to a fast receiver while
// another hospital's host hangs with a backlog of 20 000 notifications due before them: the
// cost of the claims that must not take the hanging host's rows, which grew with that backlog.
func BenchmarkRunBesideBacklog(b *testing.B) {
	for _, engine := range sqlstoretest.Engines() {
		b.Run(engine, func(b *testing.B) {
			db := sqlstoretest.Open(b, engine)
			release := make(chan struct{})
			defer close(release)
			hang := newReceiver(b, func(_ int, w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
				io.WriteString(w, success)
			})
			var got atomic.Int64
			fast := newReceiver(b, func(_ int, w http.ResponseWriter, r *http.Request) {
				got.Add(1)
				io.WriteString(w, success)
			})
			now := time.Now()
			enqueueMany(b, db, "H", hang.URL, 1, 20000, now.Add(-time.Minute))
			enqueueMany(b, db, "F", fast.URL, 2, b.N, now.Add(-time.Second))
			w := worker(db, notify.Options{Timeout: time.Hour})
			runUntilDelivered(b, w, func() int { return int(got.Load()) }, b.N)
		})
	}
}
