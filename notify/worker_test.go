package notify_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// openTwice opens two handles on one fresh database of engine, as two processes would.
func openTwice(t *testing.T, engine string) (*sqlstore.DB, *sqlstore.DB) {
	t.Helper()
	dsn := sqlstoretest.DSN(t, engine)
	var dbs [2]*sqlstore.DB
	for i := range dbs {
		db, err := sqlstore.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs[0], dbs[1]
}

// TestUnrecordedOutcomeIsDeliveredAgain: the hospital acknowledges, and the worker loses its
// database before the outcome is written (a crash between the answer and the commit). The row
// is then neither delivered nor lost: it stays leased, nobody sends it while the lease lasts,
// and it is delivered again after.
func TestUnrecordedOutcomeIsDeliveredAgain(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			lost, db := openTwice(t, engine)
			rc := newReceiver(t, nil)
			rc.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 0 {
					lost.Close() // before the answer leaves
				}
				io.WriteString(w, success)
			})
			enqueue(t, db, &notify.Notification{NotifyID: "N1", URL: rc.URL}, t0)
			a := worker(lost, notify.Options{})
			if _, err := a.RunOnce(context.Background(), t0); err == nil {
				t.Fatal("RunOnce on a closed database reported no error")
			}
			if rc.count() != 1 {
				t.Fatalf("%d hits", rc.count())
			}
			r, atts := show(t, db, "N1")
			if r.State != notify.StatePending || r.Attempts != 0 || r.LeaseUntil.IsZero() || len(atts) != 0 {
				t.Fatalf("acknowledged but not recorded: state %s, %d attempts, lease %v, %d recorded", r.State, r.Attempts, r.LeaseUntil, len(atts))
			}
			b := worker(db, notify.Options{})
			if n := runOnce(t, b, t0.Add(29*time.Second)); n != 0 {
				t.Fatalf("sent again %d within the lease", n)
			}
			if n := runOnce(t, b, t0.Add(30*time.Second)); n != 1 {
				t.Fatalf("attempted %d after the lease", n)
			}
			r, atts = show(t, db, "N1")
			if r.State != notify.StateDelivered || r.Attempts != 1 || len(atts) != 1 || rc.count() != 2 {
				t.Fatalf("after the lease: state %s, %d attempts, %d recorded, %d hits", r.State, r.Attempts, len(atts), rc.count())
			}
		})
	}
}

// TestOneFailedOutcomeDoesNotCostTheOthers: outcomes answered together are written together;
// when one of them cannot be written (its row is gone), the others are still recorded.
func TestOneFailedOutcomeDoesNotCostTheOthers(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		var arrived sync.WaitGroup
		arrived.Add(3)
		rc := newReceiver(t, nil)
		rc.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
			// The three answers leave together, once all three requests are in.
			if strings.Contains(string(rc.get()[n].body), "[N2]") {
				if _, err := db.SQL().Exec(`DELETE FROM outbox WHERE notify_id = 'N2'`); err != nil {
					t.Error(err)
				}
			}
			arrived.Done()
			arrived.Wait()
			io.WriteString(w, success)
		})
		for _, id := range []string{"N1", "N2", "N3"} {
			enqueue(t, db, &notify.Notification{NotifyID: id, URL: rc.URL}, t0)
		}
		w := worker(db, notify.Options{PerDestination: 3})
		if n := runOnce(t, w, t0); n != 3 {
			t.Fatalf("attempted %d", n)
		}
		for _, id := range []string{"N1", "N3"} {
			if r, atts := show(t, db, id); r.State != notify.StateDelivered || len(atts) != 1 {
				t.Fatalf("%s: state %s, %d attempts recorded", id, r.State, len(atts))
			}
		}
	})
}

// TestFastHostGetsMoreConcurrency: a host that answers fast while more notifications wait for
// it is given more concurrent requests than PerDestination, up to MaxPerDestination.
func TestFastHostGetsMoreConcurrency(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		var inFlight, maxInFlight atomic.Int32
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
			}
			time.Sleep(20 * time.Millisecond) // long enough for requests to overlap
			inFlight.Add(-1)
			io.WriteString(w, success)
		})
		for i := 0; i < 150; i++ {
			enqueue(t, db, &notify.Notification{NotifyID: fmt.Sprintf("N%03d", i), URL: rc.URL}, t0)
		}
		w := worker(db, notify.Options{MaxPerDestination: 8})
		if n := runOnce(t, w, t0); n != 150 {
			t.Fatalf("attempted %d", n)
		}
		if m := maxInFlight.Load(); m <= 2 || m > 8 {
			t.Fatalf("at most %d requests at once, want more than PerDestination (2) and at most 8", m)
		}
	})
}

// TestHangingHostIsContained: a host that answered fast, and so was given more requests, starts
// hanging: it never holds more than MaxPerDestination requests, and its failures bring it back
// to PerDestination.
func TestHangingHostIsContained(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		const fast, hanging = 40, 12
		var w *notify.Worker
		var hangs, maxHangs, limitAtHang atomic.Int32
		rc := newReceiver(t, nil)
		host := strings.TrimPrefix(rc.URL, "http://")
		rc.setAnswer(func(n int, rw http.ResponseWriter, r *http.Request) {
			if n < fast {
				io.WriteString(rw, success)
				return
			}
			if n == fast {
				limitAtHang.Store(int32(w.LimitOf(host)))
			}
			h := hangs.Add(1)
			for m := maxHangs.Load(); h > m && !maxHangs.CompareAndSwap(m, h); m = maxHangs.Load() {
			}
			<-r.Context().Done() // until the worker gives up
			hangs.Add(-1)
		})
		for i := 0; i < fast+hanging; i++ {
			enqueue(t, db, &notify.Notification{NotifyID: fmt.Sprintf("N%03d", i), URL: rc.URL}, t0)
		}
		w = worker(db, notify.Options{MaxPerDestination: 8, Timeout: 300 * time.Millisecond})
		if n := runOnce(t, w, t0); n != fast+hanging {
			t.Fatalf("attempted %d", n)
		}
		if l := limitAtHang.Load(); l <= 2 {
			t.Fatalf("limit %d after %d fast answers, want it grown beyond 2", l, fast)
		}
		if m := maxHangs.Load(); m > 8 {
			t.Fatalf("%d requests hung at once, more than MaxPerDestination (8)", m)
		}
		if l := w.LimitOf(host); l != 2 {
			t.Fatalf("limit %d after the timeouts, want PerDestination (2)", l)
		}
		rows, err := notify.List(context.Background(), db, notify.Filter{State: notify.StatePending})
		if err != nil || len(rows) != hanging {
			t.Fatalf("%d pending (%v), want the %d that timed out", len(rows), err, hanging)
		}
	})
}

// TestDeliveriesKeepConnections: deliveries to one host, many at once, reuse their connections
// instead of opening one per request, with the client serve gives the worker.
func TestDeliveriesKeepConnections(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		var conns atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			time.Sleep(time.Millisecond)
			io.WriteString(w, success)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		const total = 300
		for i := 0; i < total; i++ {
			enqueue(t, db, &notify.Notification{NotifyID: fmt.Sprintf("N%03d", i), URL: srv.URL}, t0)
		}
		w := notify.NewWorker(db, &http.Client{}, notify.Options{AllowPrivate: true, MaxPerDestination: 16})
		if n := runOnce(t, w, t0); n != total {
			t.Fatalf("attempted %d", n)
		}
		// A request may dial while another's connection frees up (the transport then keeps
		// both), so the bound is loose; without reuse it is one connection per delivery or so.
		if n := conns.Load(); n > 32 {
			t.Fatalf("%d connections for %d deliveries, at most 16 in flight", n, total)
		}
	})
}

// TestRowsWithoutDestination: rows written before the outbox recorded destinations are
// delivered, and given theirs.
func TestRowsWithoutDestination(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		rc := newReceiver(t, nil)
		for i := 0; i < 3; i++ {
			_, err := db.SQL().Exec(`INSERT INTO outbox (notify_id, merchant_id, kind, url, body, state, next_at, created_at)
				VALUES ($1, 1, 'PAY', $2, $3, 'pending', $4, $4)`,
				fmt.Sprintf("OLD%d", i), rc.URL+"/notify", string(body(t, fmt.Sprintf("OLD%d", i))), sqlstore.MS(t0))
			if err != nil {
				t.Fatal(err)
			}
		}
		w := worker(db, notify.Options{})
		if n := runOnce(t, w, t0); n != 3 {
			t.Fatalf("attempted %d", n)
		}
		want := strings.TrimPrefix(rc.URL, "http://")
		for i := 0; i < 3; i++ {
			var dest, state string
			if err := db.SQL().QueryRow(`SELECT dest, state FROM outbox WHERE notify_id = $1`, fmt.Sprintf("OLD%d", i)).Scan(&dest, &state); err != nil {
				t.Fatal(err)
			}
			if dest != want || state != notify.StateDelivered {
				t.Fatalf("OLD%d: dest %q, state %s", i, dest, state)
			}
		}
	})
}
