package notify

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
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// Options configure a Worker. Zero fields take the defaults.
type Options struct {
	Now            func() time.Time // clock of Run (time.Now)
	Logger         *slog.Logger     // slog.Default()
	Metrics        *Metrics         // nil: no metrics
	BatchSize      int              // rows claimed at a time, and at most in hand (50)
	Lease          time.Duration    // how long a claim keeps other workers off a row (30 s, at least 2×Timeout)
	PerDestination int              // concurrent requests per URL host (2)
	Timeout        time.Duration    // of one attempt, answer included (5 s)
	// PerMerchant bounds the rows one merchant may have in hand (max(PerDestination,
	// BatchSize/5)): a merchant whose endpoints hang holds at most this share of the worker,
	// and the rest stays free for the others.
	PerMerchant int
	// SignV3 signs a 医保 2.0 callback's headers for its body at each attempt (nil: v3 rows fail).
	SignV3 func(h http.Header, body []byte) error
	// AllowPrivate lets the worker connect to loopback, private and link-local addresses. When
	// false (production), the dialer refuses them after name resolution, whatever CheckURL said
	// earlier (DNS rebinding). Tests and the sandbox set it.
	AllowPrivate bool
}

// AnswerLimit is how much of a hospital's answer is kept in notify_attempts.
const AnswerLimit = 512

// maxExcluded bounds the URLs a claim skips because their host has no free slot.
const maxExcluded = 100

// Worker delivers the outbox. Several workers, in one process or many sharing a database, may
// run at once: a row is claimed by one of them at a time.
type Worker struct {
	db     *sqlstore.DB
	client *http.Client
	opts   Options
	log    *slog.Logger
	kick   chan struct{}

	mu     sync.Mutex
	slots  map[string]int             // host -> busy delivery goroutines
	urls   map[string]map[string]int  // host -> url -> rows in hand
	skip   map[string]map[string]bool // host -> urls given back while the host was busy
	owned  map[int64]int              // merchant -> rows in hand
	inHand int                        // rows claimed and not yet finished
	more   bool                       // the last claim was full: claim again as soon as a slot frees
	wg     sync.WaitGroup             // every delivery goroutine
}

// NewWorker returns a worker delivering db's outbox with client (a client of its own when nil).
// The client is copied and set never to follow redirects; unless opts.AllowPrivate, its
// transport (which must then be nil or an *http.Transport) is cloned with a dialer that refuses
// non-public addresses and no proxy.
func NewWorker(db *sqlstore.DB, client *http.Client, opts Options) *Worker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 50
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	opts.Lease = max(opts.Lease, 2*opts.Timeout)
	if opts.PerDestination <= 0 {
		opts.PerDestination = 2
	}
	if opts.PerMerchant <= 0 {
		opts.PerMerchant = max(opts.PerDestination, opts.BatchSize/5)
	}
	w := &Worker{
		db:    db,
		opts:  opts,
		log:   opts.Logger.With("component", "notify"),
		kick:  make(chan struct{}, 1),
		slots: make(map[string]int),
		urls:  make(map[string]map[string]int),
		skip:  make(map[string]map[string]bool),
		owned: make(map[int64]int),
	}
	w.client = w.newClient(client)
	return w
}

func (w *Worker) newClient(base *http.Client) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if base != nil && w.opts.AllowPrivate {
		return &c
	}
	var t *http.Transport
	switch rt := c.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = rt.Clone()
	default:
		w.log.Warn("notify: custom HTTP transport, non-public addresses are not refused at dial time")
		return &c
	}
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, w.opts.PerDestination)
	if !w.opts.AllowPrivate {
		d := &net.Dialer{Timeout: w.opts.Timeout, KeepAlive: 30 * time.Second, Control: dialControl}
		t.DialContext = d.DialContext
		t.Proxy = nil
	}
	c.Transport = t
	return &c
}

// Kick wakes Run before its next tick, e.g. after a transaction that enqueued a notification
// committed. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, claiming due rows every second or when kicked, without waiting
// for slow destinations: a host whose slots are all busy is skipped until one frees. It returns
// nil after ctx is done and the attempts in flight have ended (a cancelled attempt is not
// counted: its claim is released for another worker).
func (w *Worker) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if _, err := w.dispatch(ctx, w.opts.Now(), nil, nil); err != nil && ctx.Err() == nil {
			w.log.Error("notify: claim", "err", err)
		}
		select {
		case <-ctx.Done():
			w.wg.Wait()
			return nil
		case <-tick.C:
		case <-w.kick:
		}
	}
}

// RunOnce claims the rows due at now (at most BatchSize), attempts them with the per-destination
// limit, records the outcomes and returns when they are done, with the number of attempts made.
// Rows a slow destination could not reach within the lease are released for the next round.
// now drives the schedule: the next attempt after a failure is due at now + the gap.
func (w *Worker) RunOnce(ctx context.Context, now time.Time) (attempted int, err error) {
	var wg sync.WaitGroup
	var n atomic.Int64
	_, err = w.dispatch(ctx, now, &wg, &n)
	wg.Wait()
	return int(n.Load()), err
}

// job is a claimed outbox row.
type job struct {
	id         int64
	notifyID   string
	kind       string
	merchantID int64
	url        string
	host       string
	body       string
	attempts   int
	nextAt     int64
	lease      int64 // lease_until written by the claim: the fencing token of the outcome
	format     string
	giveUpAt   int64
}

// dispatch claims due rows and starts their deliveries, returning how many it claimed. wg and
// n, when not nil, follow the deliveries started (RunOnce waits for them).
func (w *Worker) dispatch(ctx context.Context, now time.Time, wg *sync.WaitGroup, n *atomic.Int64) (int, error) {
	w.mu.Lock()
	room := w.opts.BatchSize - w.inHand
	var full []int64 // merchants holding their whole share
	for m, n := range w.owned {
		if n >= w.opts.PerMerchant {
			full = append(full, m)
		}
	}
	var excluded []string
	for host, busy := range w.slots {
		if busy >= w.opts.PerDestination {
			for u := range w.urls[host] {
				excluded = append(excluded, u)
			}
			for u := range w.skip[host] {
				if w.urls[host][u] == 0 {
					excluded = append(excluded, u)
				}
			}
		}
	}
	w.mu.Unlock()
	if room <= 0 {
		return 0, nil
	}
	sort.Strings(excluded)
	excluded = excluded[:min(len(excluded), maxExcluded)]
	sort.Slice(full, func(i, j int) bool { return full[i] < full[j] })
	full = full[:min(len(full), maxExcluded)]
	jobs, err := w.claim(ctx, now, room, excluded, full)
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	started := time.Now()

	// Share the rows of each host among its free slots; a host without one gets its rows back
	// in the outbox at once.
	var hosts []string
	byHost := make(map[string][]job)
	for _, j := range jobs {
		if _, ok := byHost[j.host]; !ok {
			hosts = append(hosts, j.host)
		}
		byHost[j.host] = append(byHost[j.host], j)
	}
	var release []job
	var queues [][]job
	w.mu.Lock()
	w.more = len(jobs) == room
	// Each merchant keeps at most its share in hand; rows beyond it go back at once. The share
	// is spread over the merchant's hosts (their first rows, then their second...), so that it
	// is spent on requests in flight rather than on rows queued behind a hanging one.
	owned := make(map[int64]int)
	keep := make(map[string][]job, len(hosts))
	for round, more := 0, true; more; round++ {
		more = false
		for _, h := range hosts {
			if round >= len(byHost[h]) {
				continue
			}
			more = true
			j := byHost[h][round]
			if w.owned[j.merchantID]+owned[j.merchantID] >= w.opts.PerMerchant {
				release = append(release, j)
				continue
			}
			owned[j.merchantID]++
			keep[h] = append(keep[h], j)
		}
	}
	byHost = keep
	for _, h := range hosts {
		js := byHost[h]
		if len(js) == 0 {
			continue
		}
		free := w.opts.PerDestination - w.slots[h]
		if free <= 0 {
			release = append(release, js...)
			for _, j := range js {
				owned[j.merchantID]--
			}
			if w.skip[h] == nil {
				w.skip[h] = make(map[string]bool)
			}
			for _, j := range js {
				w.skip[h][j.url] = true
			}
			continue
		}
		k := min(free, len(js))
		w.slots[h] += k
		if w.urls[h] == nil {
			w.urls[h] = make(map[string]int)
		}
		qs := make([][]job, k)
		for i, j := range js {
			qs[i%k] = append(qs[i%k], j)
			w.urls[h][j.url]++
		}
		w.inHand += len(js)
		queues = append(queues, qs...)
	}
	for m, n := range owned {
		if n > 0 {
			w.owned[m] += n
		}
	}
	w.mu.Unlock()
	if len(release) > 0 {
		w.release(ctx, release)
		w.log.Debug("notify: destination busy, rows given back", "rows", len(release))
	}
	for _, q := range queues {
		w.wg.Add(1)
		if wg != nil {
			wg.Add(1)
		}
		go func() {
			defer func() {
				w.freeSlot(q[0].host)
				if wg != nil {
					wg.Done()
				}
				w.wg.Done()
			}()
			w.runQueue(ctx, now, started, q, n)
		}()
	}
	return len(jobs), nil
}

// runQueue attempts q's rows (one host) in turn, and releases those it cannot start early
// enough to finish within the lease.
func (w *Worker) runQueue(ctx context.Context, now, started time.Time, q []job, n *atomic.Int64) {
	for i, j := range q {
		elapsed := time.Since(started)
		if ctx.Err() != nil || elapsed+w.opts.Timeout > w.opts.Lease-w.opts.Lease/4 {
			w.release(ctx, q[i:])
			w.finished(q[i:]...)
			return
		}
		if w.deliver(ctx, now, elapsed, j) && n != nil {
			n.Add(1)
		}
		w.finished(j)
	}
}

func (w *Worker) freeSlot(host string) {
	w.mu.Lock()
	w.slots[host]--
	if w.slots[host] <= 0 {
		delete(w.slots, host)
	}
	skipped := len(w.skip[host]) > 0
	delete(w.skip, host) // a slot is free: its other URLs may be claimed again
	more := w.more || skipped
	w.mu.Unlock()
	if more {
		w.Kick()
	}
}

func (w *Worker) finished(js ...job) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, j := range js {
		w.inHand--
		if w.owned[j.merchantID]--; w.owned[j.merchantID] <= 0 {
			delete(w.owned, j.merchantID)
		}
		if m := w.urls[j.host]; m != nil {
			m[j.url]--
			if m[j.url] <= 0 {
				delete(m, j.url)
			}
			if len(m) == 0 {
				delete(w.urls, j.host)
			}
		}
	}
}

// claim leases up to limit due rows to this worker until now+Lease, leaving out the URLs
// excluded and the merchants full. The rows are taken in turn across merchants (each one's
// oldest first, then each one's second...), so one merchant's backlog cannot fill a claim while
// others have notifications due. The row lock sits on the middle select, whose conditions
// PostgreSQL checks again on a row another worker changed meanwhile (the window cannot be
// locked).
func (w *Worker) claim(ctx context.Context, now time.Time, limit int, excluded []string, full []int64) ([]job, error) {
	at := sqlstore.MS(now)
	lease := sqlstore.MS(now.Add(w.opts.Lease))
	args := []any{lease, at, limit}
	var skip string
	if len(excluded) > 0 {
		ph := make([]string, len(excluded))
		for i, u := range excluded {
			args = append(args, u)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		skip = " AND url NOT IN (" + strings.Join(ph, ", ") + ")"
	}
	if len(full) > 0 {
		ph := make([]string, len(full))
		for i, m := range full {
			args = append(args, m)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		skip += " AND merchant_id NOT IN (" + strings.Join(ph, ", ") + ")"
	}
	q := `UPDATE outbox SET lease_until = $1 WHERE id IN (
		SELECT id FROM outbox WHERE id IN (
			SELECT id FROM (
				SELECT id, next_at, ROW_NUMBER() OVER (PARTITION BY merchant_id ORDER BY next_at, id) AS turn
				FROM outbox WHERE state = 'pending' AND next_at <= $2 AND lease_until <= $2` + skip + `
			) due ORDER BY turn, next_at, id LIMIT $3
		) AND state = 'pending' AND next_at <= $2 AND lease_until <= $2` + w.db.ForUpdate() + `)
		RETURNING id, notify_id, kind, merchant_id, url, body, attempts, next_at, format, give_up_at`
	var jobs []job
	err := w.db.WriteTx(ctx, func(tx *sql.Tx) error {
		jobs = jobs[:0]
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			j := job{lease: lease}
			if err := rows.Scan(&j.id, &j.notifyID, &j.kind, &j.merchantID, &j.url, &j.body, &j.attempts, &j.nextAt, &j.format, &j.giveUpAt); err != nil {
				return err
			}
			j.host = hostOf(j.url)
			jobs = append(jobs, j)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("notify: claim: %w", err)
	}
	sort.Slice(jobs, func(a, b int) bool {
		if jobs[a].nextAt != jobs[b].nextAt {
			return jobs[a].nextAt < jobs[b].nextAt
		}
		return jobs[a].id < jobs[b].id
	})
	return jobs, nil
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// release gives claimed rows back without counting an attempt.
func (w *Worker) release(ctx context.Context, js []job) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := w.db.WriteTx(ctx, func(tx *sql.Tx) error {
		for _, j := range js {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET lease_until = 0 WHERE id = $1 AND lease_until = $2`, j.id, j.lease); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// The leases expire by themselves.
		w.log.Warn("notify: release claims", "rows", len(js), "err", err)
	}
}

// result is the outcome of one POST.
type result struct {
	status  int
	latency time.Duration
	answer  string
	err     string
	ok      bool
}

// deliver makes one attempt of j, elapsed after the claim made at now, and records it. It
// reports whether an attempt was made (false when ctx ended first).
func (w *Worker) deliver(ctx context.Context, now time.Time, elapsed time.Duration, j job) bool {
	res := w.post(ctx, j)
	if !res.ok && ctx.Err() != nil {
		// Shutting down: the failure is ours, not the hospital's.
		w.release(ctx, []job{j})
		return false
	}
	at := now.Add(elapsed)
	// The schedule counts from the claim, to the second, so that driven clocks see exact gaps.
	base := now.Add(elapsed.Truncate(time.Second))
	attempt := j.attempts + 1
	state, nextAt, doneAt := StateDelivered, at, at
	outcome := OutcomeDelivered
	if !res.ok {
		next, dead := nextAfter(attempt, base)
		if j.format == FormatV3 || j.format == FormatV3Probe {
			next, dead = nextV3(attempt, base, j.giveUpAt)
		}
		if dead {
			state, outcome = StateDead, OutcomeDead
		} else {
			state, nextAt, doneAt, outcome = StatePending, next, time.Time{}, OutcomeRetry
		}
	}
	w.opts.Metrics.observe(outcome, res.latency)
	log := w.log.With("notify_id", j.notifyID, "kind", j.kind, "merchant_id", j.merchantID, "attempt", attempt,
		"status", res.status, "latency_ms", res.latency.Milliseconds())
	switch outcome {
	case OutcomeDelivered:
		log.Debug("notify: delivered")
	case OutcomeRetry:
		log.Info("notify: attempt failed", "err", res.err, "next_at", nextAt)
	case OutcomeDead:
		log.Warn("notify: dead after the last attempt", "err", res.err)
	}

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var fenced bool
	err := w.db.WriteTx(rctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(rctx, `INSERT INTO notify_attempts (outbox_id, at, http_status, latency_ms, answer, error)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			j.id, sqlstore.MS(at), res.status, res.latency.Milliseconds(), res.answer, res.err); err != nil {
			return err
		}
		r, err := tx.ExecContext(rctx, `UPDATE outbox SET state = $3, attempts = $4, next_at = $5, lease_until = 0, done_at = $6
			WHERE id = $1 AND lease_until = $2`,
			j.id, j.lease, state, attempt, sqlstore.MS(nextAt), sqlstore.MS(doneAt))
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		fenced = n == 0
		return err
	})
	switch {
	case err != nil:
		// The lease expires and the row is attempted again: at least once.
		log.Error("notify: record attempt", "err", err)
	case fenced:
		log.Warn("notify: claim lost before the outcome was recorded (lease expired or resent)")
	}
	return true
}

// post sends j's body and judges the answer.
func (w *Worker) post(ctx context.Context, j job) (res result) {
	// The latency clock starts before the deadline is set, so a timed-out attempt never measures
	// less than the timeout.
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	defer func() {
		res.latency = time.Since(start)
		res.err = clean(res.err, 1024)
	}()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, j.url, strings.NewReader(j.body))
	if err != nil {
		res.err = err.Error()
		return res
	}
	req.Header.Set("Content-Type", "text/xml")
	if j.format == FormatV3 || j.format == FormatV3Probe {
		if err := w.signV3(req.Header, []byte(j.body), j.format == FormatV3Probe); err != nil {
			res.err = err.Error()
			return res
		}
	}
	req.Header.Set("User-Agent", "medpay-notify/1")
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = RedactURL(ue.URL) // the error is logged and kept in notify_attempts
		}
		res.err = describe(err, rctx, ctx, w.opts.Timeout)
		return res
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxBodySize+1))
	resp.Body.Close()
	res.status = resp.StatusCode
	res.answer = clean(string(body), AnswerLimit)
	switch {
	case err != nil:
		res.err = "reading the answer: " + describe(err, rctx, ctx, w.opts.Timeout)
	case j.format == FormatV3Probe:
		res.ok, res.err = probeJudged(resp.StatusCode)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		res.err = fmt.Sprintf("HTTP status %d", resp.StatusCode)
	case j.format != FormatV3 && !acknowledged(body):
		res.err = "the answer is not <xml><return_code>SUCCESS</return_code>...</xml>"
	default:
		res.ok = true
	}
	return res
}

func describe(err error, rctx, ctx context.Context, timeout time.Duration) string {
	if errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Sprintf("timeout after %s: %v", timeout, err)
	}
	return err.Error()
}

// acknowledged reports whether body is the hospital's SUCCESS envelope.
func acknowledged(body []byte) bool {
	m, err := wire.Decode(bytes.NewReader(body))
	return err == nil && m.Get("return_code") == "SUCCESS"
}

// clean cuts s to at most limit bytes on a character boundary and makes it storable as text on
// every engine (valid UTF-8, no NUL).
func clean(s string, limit int) string {
	if len(s) > limit {
		s = s[:limit]
		// Drop the bytes of a character cut in the middle.
		for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
			if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}
