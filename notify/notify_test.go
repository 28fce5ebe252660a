package notify_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/notify"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
	"github.com/medpay/medpay/wire"
)

const success = `<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>`

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// forEachEngine runs fn as a parallel subtest on a fresh database of every engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	t.Helper()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, sqlstoretest.Open(t, engine))
		})
	}
}

// hit is one request received.
type hit struct {
	method, contentType string
	body                []byte
}

// receiver is a hospital's notify_url. answer decides the answer to hit number n (0-based);
// nil answers SUCCESS.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []hit
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t testing.TB, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.hits)
		rc.hits = append(rc.hits, hit{r.Method, r.Header.Get("Content-Type"), body})
		answer := rc.answer
		rc.mu.Unlock()
		if answer == nil {
			io.WriteString(w, success)
			return
		}
		answer(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.hits)
}

func (rc *receiver) get() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

func (rc *receiver) setAnswer(f func(n int, w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	rc.answer = f
	rc.mu.Unlock()
}

// body builds a signed PAY notification as the order code would.
func body(t testing.TB, notifyID string) []byte {
	m := wire.NewMessage()
	m.Set("return_code", "SUCCESS")
	m.Set("appid", "wx0000000000000001")
	m.Set("mch_id", "1900000001")
	m.Set("nonce_str", wire.Nonce())
	m.Set("notify_type", "PAY")
	m.Set("notify_id", notifyID)
	m.Set("med_trans_id", "MT"+notifyID)
	m.Set("med_trade_state", "SUCCESS")
	m.Set("attach", "医保 & <cash>")
	if err := wire.SignInPlace(m, "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	return m.Bytes()
}

func enqueue(t testing.TB, db *sqlstore.DB, n *notify.Notification, now time.Time) {
	t.Helper()
	if n.Kind == "" {
		n.Kind = notify.KindPay
	}
	if n.Body == nil {
		n.Body = body(t, n.NotifyID)
	}
	err := db.WriteTx(context.Background(), func(tx *sql.Tx) error {
		return notify.Enqueue(context.Background(), tx, n, now)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func worker(db *sqlstore.DB, opts notify.Options) *notify.Worker {
	opts.AllowPrivate = true
	return notify.NewWorker(db, nil, opts)
}

func runOnce(t testing.TB, w *notify.Worker, now time.Time) int {
	t.Helper()
	n, err := w.RunOnce(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func show(t testing.TB, db *sqlstore.DB, id string) (*notify.Row, []notify.Attempt) {
	t.Helper()
	r, atts, err := notify.Show(context.Background(), db, id)
	if err != nil {
		t.Fatal(err)
	}
	return r, atts
}

func TestDeliveredOnSuccess(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		rc := newReceiver(t, nil)
		w := worker(db, notify.Options{})
		b := body(t, "N1")
		enqueue(t, db, &notify.Notification{NotifyID: "N1", MerchantID: 7, OrderID: 9, URL: rc.URL + "/notify", Body: b}, t0)

		if n := runOnce(t, w, t0); n != 1 {
			t.Fatalf("attempted %d, want 1", n)
		}
		hits := rc.get()
		if len(hits) != 1 {
			t.Fatalf("%d hits", len(hits))
		}
		if !bytes.Equal(hits[0].body, b) || hits[0].method != "POST" || hits[0].contentType != "text/xml" {
			t.Fatalf("hit = %s %q %q", hits[0].method, hits[0].contentType, hits[0].body)
		}
		r, atts := show(t, db, "N1")
		if r.State != notify.StateDelivered || r.Attempts != 1 || r.DoneAt.IsZero() || !bytes.Equal(r.Body, b) ||
			r.MerchantID != 7 || r.OrderID != 9 || r.Kind != notify.KindPay {
			t.Fatalf("row = %+v", r)
		}
		if len(atts) != 1 || atts[0].HTTPStatus != 200 || atts[0].Error != "" || atts[0].Answer != success ||
			atts[0].At.Before(t0) || atts[0].At.After(t0.Add(5*time.Second)) {
			t.Fatalf("attempts = %+v", atts)
		}
		// Nothing is sent after the acknowledgement, however late.
		for _, d := range []time.Duration{0, 15 * time.Second, 24 * time.Hour, 30 * 24 * time.Hour} {
			if n := runOnce(t, w, t0.Add(d)); n != 0 {
				t.Fatalf("attempted %d after delivery", n)
			}
		}
		if rc.count() != 1 {
			t.Fatalf("%d hits after delivery", rc.count())
		}
	})
}

func TestEnqueueIsTransactional(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		rc := newReceiver(t, nil)
		boom := errors.New("boom")
		err := db.WriteTx(ctx, func(tx *sql.Tx) error {
			n := &notify.Notification{NotifyID: "N1", Kind: notify.KindPay, URL: rc.URL, Body: body(t, "N1")}
			if err := notify.Enqueue(ctx, tx, n, t0); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if n := runOnce(t, worker(db, notify.Options{}), t0); n != 0 || rc.count() != 0 {
			t.Fatalf("rolled-back notification sent: %d attempts, %d hits", n, rc.count())
		}
		// Invalid notifications are refused.
		for _, n := range []*notify.Notification{
			{NotifyID: "", Kind: notify.KindPay, URL: rc.URL, Body: []byte("<xml/>")},
			{NotifyID: "N2", Kind: "OTHER", URL: rc.URL, Body: []byte("<xml/>")},
			{NotifyID: "N2", Kind: notify.KindPay, URL: "", Body: []byte("<xml/>")},
			{NotifyID: "N2", Kind: notify.KindPay, URL: rc.URL, Body: nil},
			{NotifyID: "N2", Kind: notify.KindPay, URL: rc.URL, Body: []byte("\xff")},
		} {
			err := db.WriteTx(ctx, func(tx *sql.Tx) error { return notify.Enqueue(ctx, tx, n, t0) })
			if !errors.Is(err, notify.ErrInvalid) {
				t.Errorf("Enqueue(%+v) = %v", n, err)
			}
		}
		// A notify_id is unique.
		enqueue(t, db, &notify.Notification{NotifyID: "N3", URL: rc.URL}, t0)
		err = db.WriteTx(ctx, func(tx *sql.Tx) error {
			return notify.Enqueue(ctx, tx, &notify.Notification{NotifyID: "N3", Kind: notify.KindRefund, URL: rc.URL, Body: body(t, "N3")}, t0)
		})
		if !sqlstore.IsUniqueViolation(err) {
			t.Fatalf("duplicate notify_id: %v", err)
		}
	})
}

// failure modes of a hospital: each must be retried on the schedule.
type failure struct {
	name   string
	answer func(n int, w http.ResponseWriter, r *http.Request)
	want   string // in the recorded error
	status int
}

var failures = []failure{
	{"500", func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, success)
	}, "HTTP status 500", 500},
	{"FAIL body", func(_ int, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `<xml><return_code>FAIL</return_code><return_msg>busy</return_msg></xml>`)
	}, "not <xml><return_code>SUCCESS", 200},
	{"plain text", func(_ int, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "SUCCESS")
	}, "not <xml><return_code>SUCCESS", 200},
	{"redirect", func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}, "HTTP status 302", 302},
}

func TestRetrySchedule(t *testing.T) {
	t.Parallel()
	for _, f := range append(failures, failure{name: "refused"}) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
				rc := newReceiver(t, f.answer)
				url := rc.URL + "/notify"
				if f.name == "refused" {
					l, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					url = "http://" + l.Addr().String() + "/notify"
					l.Close()
				}
				w := worker(db, notify.Options{})
				enqueue(t, db, &notify.Notification{NotifyID: "N1", URL: url}, t0)
				enqueue(t, db, &notify.Notification{NotifyID: "N2", URL: url}, t0.Add(time.Hour*100))

				now := t0
				for attempt := 1; attempt <= notify.MaxAttempts; attempt++ {
					if n := runOnce(t, w, now); n != 1 {
						t.Fatalf("attempt %d at %s: attempted %d", attempt, now.Sub(t0), n)
					}
					r, atts := show(t, db, "N1")
					if len(atts) != attempt || r.Attempts != attempt {
						t.Fatalf("attempt %d: %d recorded, row %d", attempt, len(atts), r.Attempts)
					}
					a := atts[attempt-1]
					if !strings.Contains(a.Error, f.want) || a.HTTPStatus != f.status {
						t.Fatalf("attempt %d recorded %+v, want error with %q and status %d", attempt, a, f.want, f.status)
					}
					if attempt == notify.MaxAttempts {
						if r.State != notify.StateDead || r.DoneAt.IsZero() {
							t.Fatalf("after the last attempt: %+v", r)
						}
						break
					}
					gap := notify.Schedule[attempt-1]
					if r.State != notify.StatePending || !r.NextAt.Equal(now.Add(gap)) {
						t.Fatalf("after attempt %d: state %s next in %s, want %s", attempt, r.State, r.NextAt.Sub(now), gap)
					}
					// Not a moment early.
					if n := runOnce(t, w, now.Add(gap-time.Millisecond)); n != 0 {
						t.Fatalf("attempt %d repeated %s early", attempt, time.Millisecond)
					}
					now = now.Add(gap)
				}
				if f.name != "refused" {
					hits := rc.get()
					if len(hits) != notify.MaxAttempts {
						t.Fatalf("%d hits, want %d", len(hits), notify.MaxAttempts)
					}
					for _, h := range hits {
						if !bytes.Equal(h.body, hits[0].body) || !strings.Contains(string(h.body), "<notify_id><![CDATA[N1]]></notify_id>") {
							t.Fatalf("bodies differ across attempts:\n%s\n%s", h.body, hits[0].body)
						}
					}
				}
				if want := 15*time.Second + 15*time.Second + 30*time.Second + 3*time.Minute + 10*time.Minute + 20*time.Minute +
					3*30*time.Minute + time.Hour + 3*3*time.Hour + 2*6*time.Hour; now.Sub(t0) != want {
					t.Fatalf("last attempt %s after the first, want %s", now.Sub(t0), want)
				}
				// Dead: never attempted again by itself.
				if n := runOnce(t, w, now.Add(99*time.Hour)); n != 1 { // N2 only
					t.Fatalf("attempted %d, want only N2", n)
				}
				if r, _ := show(t, db, "N1"); r.State != notify.StateDead {
					t.Fatalf("state %s", r.State)
				}

				// The operator resends it once the hospital is fixed.
				if f.name == "refused" {
					return
				}
				before := rc.count()
				rc.setAnswer(nil)
				later := now.Add(200 * time.Hour)
				if err := notify.Resend(context.Background(), db, "N1", later); err != nil {
					t.Fatal(err)
				}
				if n := runOnce(t, w, later); n != 2 { // N1 and N2 (its retry is due)
					t.Fatalf("attempted %d after resend", n)
				}
				r, atts := show(t, db, "N1")
				if r.State != notify.StateDelivered || r.Attempts != 1 || r.NotifyID != "N1" || len(atts) != notify.MaxAttempts+1 {
					t.Fatalf("after resend: %+v, %d attempts", r, len(atts))
				}
				hits := rc.get()[before:]
				if len(hits) != 2 {
					t.Fatalf("%d hits after resend", len(hits))
				}
				if !bytes.Equal(hits[0].body, rc.get()[0].body) && !bytes.Equal(hits[1].body, rc.get()[0].body) {
					t.Fatal("resent body differs")
				}
			})
		})
	}
}

func TestRetryOnTimeout(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		release := make(chan struct{})
		defer close(release)
		rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n < 2 {
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
			io.WriteString(w, success)
		})
		w := worker(db, notify.Options{Timeout: 200 * time.Millisecond})
		enqueue(t, db, &notify.Notification{NotifyID: "N1", URL: rc.URL}, t0)
		now := t0
		for i := 0; i < 2; i++ {
			if n := runOnce(t, w, now); n != 1 {
				t.Fatalf("attempted %d", n)
			}
			r, atts := show(t, db, "N1")
			a := atts[i]
			if !strings.Contains(a.Error, "timeout") || a.HTTPStatus != 0 || a.Latency < 200*time.Millisecond {
				t.Fatalf("attempt %d recorded %+v", i+1, a)
			}
			if r.State != notify.StatePending || !r.NextAt.Equal(now.Add(notify.Schedule[i])) {
				t.Fatalf("after a timeout: %+v", r)
			}
			now = r.NextAt
		}
		if n := runOnce(t, w, now); n != 1 {
			t.Fatalf("attempted %d", n)
		}
		if r, _ := show(t, db, "N1"); r.State != notify.StateDelivered || r.Attempts != 3 {
			t.Fatalf("after success: %+v", r)
		}
	})
}

func TestAnswerIsClipped(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		long := strings.Repeat("医", 400) // 1200 bytes, a character cut at 512
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(503)
			io.WriteString(w, long+"\x00\xff")
		})
		w := worker(db, notify.Options{})
		enqueue(t, db, &notify.Notification{NotifyID: "N1", URL: rc.URL}, t0)
		runOnce(t, w, t0)
		_, atts := show(t, db, "N1")
		if len(atts) != 1 || atts[0].HTTPStatus != 503 || atts[0].Answer != strings.Repeat("医", 170) {
			t.Fatalf("answer %q (%d bytes)", atts[0].Answer, len(atts[0].Answer))
		}
	})
}

func TestSlowDestinationDoesNotDelayAnother(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		release := make(chan struct{})
		var inFlight, maxInFlight atomic.Int32
		slow := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			<-release
			io.WriteString(w, success)
		})
		fast := newReceiver(t, nil)
		for i := 0; i < 6; i++ {
			enqueue(t, db, &notify.Notification{NotifyID: fmt.Sprintf("S%d", i), URL: slow.URL}, t0)
		}
		for i := 0; i < 4; i++ {
			enqueue(t, db, &notify.Notification{NotifyID: fmt.Sprintf("F%d", i), URL: fast.URL}, t0)
		}
		w := worker(db, notify.Options{})
		done := make(chan int)
		go func() {
			n, err := w.RunOnce(context.Background(), t0)
			if err != nil {
				t.Error(err)
			}
			done <- n
		}()
		if !eventually(func() bool { return fast.count() >= 4 && slow.count() >= 2 }) {
			close(release)
			t.Fatalf("fast got %d of 4 while slow blocks %d", fast.count(), slow.count())
		}
		if n := slow.count(); n != 2 {
			t.Errorf("slow destination got %d concurrent requests, limit 2", n)
		}
		// While it hangs, it has its two slots and no more. (Once it answers, and fast, it may
		// be given more.)
		if m := maxInFlight.Load(); m != 2 {
			t.Fatalf("max concurrent requests to the slow destination %d, want 2", m)
		}
		close(release)
		if n := <-done; n != 10 {
			t.Fatalf("attempted %d, want 10", n)
		}
		rows, err := notify.List(context.Background(), db, notify.Filter{State: notify.StateDelivered})
		if err != nil || len(rows) != 10 {
			t.Fatalf("%d delivered, %v", len(rows), err)
		}
	})
}

func TestRunSkipsBusyDestination(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		release := make(chan struct{})
		slow := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			<-release
			io.WriteString(w, success)
		})
		fast := newReceiver(t, nil)
		for i := 0; i < 3; i++ {
			enqueue(t, db, &notify.Notification{NotifyID: fmt.Sprintf("S%d", i), URL: slow.URL}, time.Now())
		}
		w := worker(db, notify.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error)
		go func() { stopped <- w.Run(ctx) }()
		waitFor(t, func() bool { return slow.count() == 2 }, "slow destination's two slots busy")

		// The slow host holds its two slots; a new notification to another host goes out at once.
		enqueue(t, db, &notify.Notification{NotifyID: "F1", URL: fast.URL}, time.Now())
		w.Kick()
		waitFor(t, func() bool { return fast.count() == 1 }, "fast delivered while slow blocks")
		// Another URL of the busy host waits with the host's third row, unclaimed (free for
		// another worker), while what comes after it for another host goes out.
		enqueue(t, db, &notify.Notification{NotifyID: "S3", URL: slow.URL + "/other"}, time.Now())
		enqueue(t, db, &notify.Notification{NotifyID: "F2", URL: fast.URL}, time.Now())
		w.Kick()
		waitFor(t, func() bool { return fast.count() == 2 }, "F2 delivered while slow blocks")
		for _, id := range []string{"S2", "S3"} {
			if r, atts := show(t, db, id); !r.LeaseUntil.IsZero() || len(atts) != 0 {
				t.Fatalf("%s of the busy host: %+v, %d attempts", id, r, len(atts))
			}
		}
		if n := slow.count(); n != 2 {
			t.Fatalf("slow destination got %d concurrent requests", n)
		}
		close(release)
		waitFor(t, func() bool { return slow.count() == 4 }, "slow's last notifications after its slots free")
		waitFor(t, func() bool {
			rows, _ := notify.List(context.Background(), db, notify.Filter{State: notify.StateDelivered})
			return len(rows) == 6
		}, "all delivered")
		cancel()
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		if slow.count() != 4 || fast.count() != 2 {
			t.Fatalf("hits: slow %d fast %d", slow.count(), fast.count())
		}
	})
}

// eventually polls cond until it holds, and reports false only when it never did within a
// minute: a guard against a hang, generous enough for a busy machine, not a measure of speed.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	if !eventually(cond) {
		t.Fatalf("timed out waiting: %s", what)
	}
}

// signalHandler is a slog handler that sends on c each time a record with message msg is logged.
type signalHandler struct {
	msg string
	c   chan struct{}
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *signalHandler) WithGroup(string) slog.Handler            { return h }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.c <- struct{}{}:
		default:
		}
	}
	return nil
}

func TestLeaseAndFencing(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		release := make(chan struct{})
		rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				<-release
				io.WriteString(w, `<xml><return_code>FAIL</return_code></xml>`)
				return
			}
			io.WriteString(w, success)
		})
		a := worker(db, notify.Options{Lease: 30 * time.Second})
		b := worker(db, notify.Options{Lease: 30 * time.Second})
		enqueue(t, db, &notify.Notification{NotifyID: "N1", URL: rc.URL}, t0)
		done := make(chan int)
		go func() { done <- runOnce(t, a, t0) }()
		waitFor(t, func() bool { return rc.count() == 1 }, "first attempt in flight")
		// While a holds the lease, b leaves the row alone.
		if n := runOnce(t, b, t0.Add(29*time.Second)); n != 0 {
			t.Fatalf("b attempted %d of a leased row", n)
		}
		if err := notify.Resend(context.Background(), db, "N1", t0.Add(time.Second)); !errors.Is(err, notify.ErrInFlight) {
			t.Fatalf("resend in flight: %v", err)
		}
		// Once the lease has expired (a crashed a), b takes over and delivers.
		if n := runOnce(t, b, t0.Add(30*time.Second)); n != 1 {
			t.Fatalf("b attempted %d after the lease", n)
		}
		// a's late failure must not undo b's delivery.
		close(release)
		if n := <-done; n != 1 {
			t.Fatalf("a attempted %d", n)
		}
		r, atts := show(t, db, "N1")
		if r.State != notify.StateDelivered || r.Attempts != 1 || len(atts) != 2 {
			t.Fatalf("row %+v with %d attempts recorded", r, len(atts))
		}
	})
}

func TestTwoWorkersDeliverOnce(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dsn := sqlstoretest.DSN(t, engine)
			var dbs []*sqlstore.DB
			for i := 0; i < 2; i++ { // two processes
				db, err := sqlstore.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				dbs = append(dbs, db)
			}
			var mu sync.Mutex
			seen := make(map[string]int)
			var rcs []*receiver
			for i := 0; i < 3; i++ {
				rc := newReceiver(t, nil)
				rc.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
					h := rc.get()[n]
					m, err := wire.Decode(bytes.NewReader(h.body))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					seen[m.Get("notify_id")]++
					mu.Unlock()
					io.WriteString(w, success)
				})
				rcs = append(rcs, rc)
			}
			const total = 300
			for i := 0; i < total; i++ {
				enqueue(t, dbs[0], &notify.Notification{NotifyID: fmt.Sprintf("N%03d", i), URL: rcs[i%3].URL}, t0)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			var byWorker [4]int
			for i := 0; i < 4; i++ {
				w := worker(dbs[i%2], notify.Options{BatchSize: 7, PerDestination: 3})
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						n, err := w.RunOnce(ctx, t0)
						if err != nil && ctx.Err() == nil {
							t.Error(err)
							return
						}
						byWorker[i] += n
						var left int
						if err := dbs[0].SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE state = 'pending'`).Scan(&left); err != nil {
							return
						}
						if left == 0 {
							return
						}
					}
				}()
			}
			wg.Wait()
			if ctx.Err() != nil {
				t.Fatal("workers did not finish in time")
			}
			t.Logf("attempts by worker: %v", byWorker)
			for i, n := range byWorker {
				if n == 0 {
					t.Errorf("worker %d attempted nothing: the test did not run the workers side by side", i)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != total {
				t.Fatalf("%d notifications received, want %d", len(seen), total)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("%s received %d times", id, n)
				}
			}
			var attempts int
			dbs[0].SQL().QueryRow(`SELECT COUNT(*) FROM notify_attempts`).Scan(&attempts)
			if attempts != total {
				t.Fatalf("%d attempts recorded, want %d", attempts, total)
			}
		})
	}
}

func TestOperatorFunctions(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fail := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		ok := newReceiver(t, nil)
		enqueue(t, db, &notify.Notification{NotifyID: "A1", MerchantID: 1, OrderID: 10, URL: ok.URL}, t0)
		enqueue(t, db, &notify.Notification{NotifyID: "A2", MerchantID: 1, OrderID: 11, URL: fail.URL}, t0)
		enqueue(t, db, &notify.Notification{NotifyID: "A3", MerchantID: 1, OrderID: 11, RefundID: 5, Kind: notify.KindRefund, URL: fail.URL}, t0)
		enqueue(t, db, &notify.Notification{NotifyID: "B1", MerchantID: 2, OrderID: 20, URL: fail.URL}, t0)
		enqueue(t, db, &notify.Notification{NotifyID: "B2", MerchantID: 2, OrderID: 21, URL: ok.URL}, t0.Add(time.Hour))
		w := worker(db, notify.Options{})
		runOnce(t, w, t0)
		// Make the failures dead by hand (the schedule is tested elsewhere).
		if _, err := db.SQL().Exec(`UPDATE outbox SET state = 'dead', done_at = $1 WHERE notify_id IN ('A2', 'B1')`, sqlstore.MS(t0)); err != nil {
			t.Fatal(err)
		}

		list := func(f notify.Filter) []string {
			t.Helper()
			rows, err := notify.List(ctx, db, f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range rows {
				ids = append(ids, r.NotifyID)
			}
			return ids
		}
		for _, c := range []struct {
			f    notify.Filter
			want string
		}{
			{notify.Filter{}, "B2 B1 A3 A2 A1"},
			{notify.Filter{MerchantID: 1}, "A3 A2 A1"},
			{notify.Filter{MerchantID: 1, OrderID: 11}, "A3 A2"},
			{notify.Filter{State: notify.StateDead}, "B1 A2"},
			{notify.Filter{State: notify.StatePending}, "B2 A3"},
			{notify.Filter{State: notify.StateDelivered}, "A1"},
			{notify.Filter{Limit: 2}, "B2 B1"},
		} {
			if got := strings.Join(list(c.f), " "); got != c.want {
				t.Errorf("List(%+v) = %s, want %s", c.f, got, c.want)
			}
		}
		if _, err := notify.List(ctx, db, notify.Filter{State: "lost"}); err == nil {
			t.Error("unknown state accepted")
		}
		r, atts := show(t, db, "A3")
		if r.Kind != notify.KindRefund || r.RefundID != 5 || len(atts) != 1 || atts[0].HTTPStatus != 500 {
			t.Fatalf("show A3: %+v %+v", r, atts)
		}
		if _, _, err := notify.Show(ctx, db, "nope"); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("show unknown: %v", err)
		}
		if err := notify.Resend(ctx, db, "nope", t0); !errors.Is(err, medpay.ErrNotFound) {
			t.Fatalf("resend unknown: %v", err)
		}
		now := t0.Add(2 * time.Hour)
		n, err := notify.ResendDead(ctx, db, 1, now)
		if err != nil || n != 1 {
			t.Fatalf("ResendDead(1) = %d, %v", n, err)
		}
		if got := strings.Join(list(notify.Filter{State: notify.StateDead}), " "); got != "B1" {
			t.Fatalf("dead after ResendDead(1): %s", got)
		}
		r, _ = show(t, db, "A2")
		if r.State != notify.StatePending || r.Attempts != 0 || !r.NextAt.Equal(now) || !r.DoneAt.IsZero() {
			t.Fatalf("resent row %+v", r)
		}
		if n, err := notify.ResendDead(ctx, db, 0, now); err != nil || n != 1 {
			t.Fatalf("ResendDead(0) = %d, %v", n, err)
		}
		// Resend of a delivered one sends it again with the same body.
		if err := notify.Resend(ctx, db, "A1", now); err != nil {
			t.Fatal(err)
		}
		before := ok.count()
		fail.setAnswer(nil)
		if n := runOnce(t, w, now); n != 5 {
			t.Fatalf("attempted %d after resends", n)
		}
		if got := strings.Join(list(notify.Filter{State: notify.StateDelivered}), " "); got != "B2 B1 A3 A2 A1" {
			t.Fatalf("delivered: %s", got)
		}
		hits := ok.get()[before:]
		var again bool
		for _, h := range hits {
			again = again || bytes.Equal(h.body, ok.get()[0].body)
		}
		if !again {
			t.Fatal("A1 not resent verbatim")
		}
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		reg := prometheus.NewRegistry()
		now := t0.Add(time.Minute)
		m, err := notify.NewMetrics(reg, db, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		fail := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		ok := newReceiver(t, nil)
		enqueue(t, db, &notify.Notification{NotifyID: "A", URL: ok.URL}, t0)
		enqueue(t, db, &notify.Notification{NotifyID: "B", URL: fail.URL}, t0)
		enqueue(t, db, &notify.Notification{NotifyID: "C", URL: fail.URL}, t0.Add(10*time.Second))
		enqueue(t, db, &notify.Notification{NotifyID: "D", URL: fail.URL}, t0.Add(time.Hour))
		w := notify.NewWorker(db, nil, notify.Options{AllowPrivate: true, Metrics: m})
		runOnce(t, w, t0.Add(10*time.Second))
		db.SQL().Exec(`UPDATE outbox SET state = 'dead' WHERE notify_id = 'C'`)

		got := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, metric := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range metric.GetLabel() {
					name += "/" + l.GetValue()
				}
				switch {
				case metric.GetCounter() != nil:
					got[name] = metric.GetCounter().GetValue()
				case metric.GetGauge() != nil:
					got[name] = metric.GetGauge().GetValue()
				case metric.GetHistogram() != nil:
					got[name] = float64(metric.GetHistogram().GetSampleCount())
				}
			}
		}
		want := map[string]float64{
			"medpay_notify_attempts_total/delivered":   1,
			"medpay_notify_attempts_total/retry":       2,
			"medpay_notify_attempts_total/dead":        0,
			"medpay_notify_attempt_duration_seconds":   3,
			"medpay_notify_pending":                    2, // B and D
			"medpay_notify_dead":                       1,
			"medpay_notify_oldest_pending_age_seconds": 60, // B, created at t0
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		// Metrics of a second worker registry do not clash (no globals).
		if _, err := notify.NewMetrics(prometheus.NewRegistry(), db, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		url          string
		public, priv bool // accepted without / with allowPrivate
	}{
		{"https://8.8.8.8/notify", true, true},
		{"http://8.8.8.8:8080/notify?x=1", true, true},
		{"http://[2001:4860:4860::8888]/n", true, true},
		{"http://127.0.0.1:8080/notify", false, true},
		{"http://localhost/notify", false, true},
		{"http://10.1.2.3/notify", false, true},
		{"http://172.16.0.1/notify", false, true},
		{"http://192.168.1.1/notify", false, true},
		{"http://169.254.169.254/latest/meta-data", false, true},
		{"http://0.0.0.0/", false, true},
		{"http://[::1]/", false, true},
		{"http://[::]/", false, true},
		{"http://[fe80::1]/", false, true},
		{"http://[fc00::1]/", false, true},
		{"http://[::ffff:127.0.0.1]/", false, true},
		{"http://224.0.0.1/", false, true},
		{"ftp://8.8.8.8/", false, false},
		{"file:///etc/passwd", false, false},
		{"javascript:alert(1)", false, false},
		{"/notify", false, false},
		{"", false, false},
		{"http://user:pw@8.8.8.8/", false, false},
		{"http://", false, false},
		{"https://8.8.8.8/" + strings.Repeat("a", 600), false, false},
	} {
		if err := notify.CheckURL(ctx, c.url, false); (err == nil) != c.public {
			t.Errorf("CheckURL(%q, false) = %v", c.url, err)
		} else if err != nil && !errors.Is(err, notify.ErrURLNotAllowed) {
			t.Errorf("CheckURL(%q) error does not wrap ErrURLNotAllowed: %v", c.url, err)
		}
		if err := notify.CheckURL(ctx, c.url, true); (err == nil) != c.priv {
			t.Errorf("CheckURL(%q, true) = %v", c.url, err)
		}
	}
}

func TestDialerRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	db := sqlstoretest.OpenSQLite(t)
	rc := newReceiver(t, nil)
	// A name that resolves to loopback passes no check at dial time (DNS rebinding).
	url := strings.Replace(rc.URL, "127.0.0.1", "localhost", 1)
	enqueue(t, db, &notify.Notification{NotifyID: "N1", URL: url}, t0)
	w := notify.NewWorker(db, nil, notify.Options{})
	if n := runOnce(t, w, t0); n != 1 {
		t.Fatalf("attempted %d", n)
	}
	r, atts := show(t, db, "N1")
	if rc.count() != 0 || r.State != notify.StatePending || !strings.Contains(atts[0].Error, "non-public") {
		t.Fatalf("hits %d, row %+v, attempts %+v", rc.count(), r, atts)
	}
	// The same worker with a caller's client keeps the check.
	w = notify.NewWorker(db, &http.Client{Transport: &http.Transport{}}, notify.Options{})
	if n := runOnce(t, w, r.NextAt); n != 1 || rc.count() != 0 {
		t.Fatalf("attempted %d, hits %d", n, rc.count())
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://h.example/notify":               "https://h.example/notify",
		"https://h.example/notify?token=abc&x=1": "https://h.example/notify?***",
		"https://h.example:8443/n?":              "https://h.example:8443/n",
		"http://h.example/n?t=1#frag":            "http://h.example/n?***",
		"http://user:pw@h.example/n":             "http://h.example/n",
		"http://[2001:db8::1]/n?k=v":             "http://[2001:db8::1]/n?***",
		"http://h.example/%zz":                   "(unparsable URL)",
	} {
		if got := notify.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFailureKeepsURLQuerySecret: a failed attempt's error, recorded and logged, does not carry
// the notify URL's query string.
func TestFailureKeepsURLQuerySecret(t *testing.T) {
	t.Parallel()
	db := sqlstoretest.OpenSQLite(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/notify?token=s3cret-t0ken"
	l.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	w := worker(db, notify.Options{Logger: slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	enqueue(t, db, &notify.Notification{NotifyID: "N1", URL: url}, t0)
	runOnce(t, w, t0)
	_, atts := show(t, db, "N1")
	mu.Lock()
	defer mu.Unlock()
	if len(atts) != 1 || atts[0].Error == "" || strings.Contains(atts[0].Error, "s3cret") || strings.Contains(logs.String(), "s3cret") {
		t.Fatalf("attempt error %q, logs:\n%s", atts[0].Error, logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestFairAcrossMerchants: a merchant whose many endpoints all hang, with more notifications due
// than a claim holds, cannot delay another merchant's notification: the victim's is delivered
// while every one of the hanging requests is still hanging, and the hanging merchant never holds
// more than its share of the worker.
func TestFairAcrossMerchants(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		release := make(chan struct{})
		var inFlight, maxInFlight, answered atomic.Int32
		var hang []*receiver
		for i := 0; i < 20; i++ {
			hang = append(hang, newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				n := inFlight.Add(1)
				for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
				inFlight.Add(-1)
				answered.Add(1)
				io.WriteString(w, success)
			}))
		}
		delivered := make(chan int32, 1)
		victim := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			select {
			case delivered <- answered.Load():
			default:
			}
			io.WriteString(w, success)
		})
		now := time.Now()
		// 60 notifications of merchant 1, due before the victim's, more than a claim of 50.
		for i := 0; i < 60; i++ {
			enqueue(t, db, &notify.Notification{NotifyID: fmt.Sprintf("A%02d", i), MerchantID: 1, URL: hang[i%20].URL}, now.Add(-time.Minute))
		}
		enqueue(t, db, &notify.Notification{NotifyID: "V1", MerchantID: 2, URL: victim.URL}, now)
		// Attempts never time out within the test: only fairness can let the victim through. A
		// worker holding 50 rows gives a merchant a share of 10.
		w := worker(db, notify.Options{Timeout: 10 * time.Minute, BatchSize: 50})
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error)
		go func() { stopped <- w.Run(ctx) }()
		defer func() {
			close(release)
			cancel()
			<-stopped
		}()
		select {
		case n := <-delivered:
			if n != 0 {
				t.Errorf("the victim was delivered after %d hanging requests ended", n)
			}
		case <-time.After(time.Minute): // a hang, not a measure of speed
			t.Fatalf("the victim's notification was not delivered while merchant 1 hangs (%d requests in flight)", inFlight.Load())
		}
		// Merchant 1 fills its share of 10 (50 / 5) and no more.
		waitFor(t, func() bool { return inFlight.Load() == 10 }, "merchant 1 holding its share")
		w.Kick()
		if m := maxInFlight.Load(); m != 10 {
			t.Errorf("merchant 1 held %d requests at once, want its share of 10", m)
		}
	})
}
