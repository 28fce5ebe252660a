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
	"time"
	"unicode/utf8"

	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/wire"
)

// Options configure a Worker. Zero fields take the defaults.
type Options struct {
	Now     func() time.Time // clock of Run (time.Now)
	Logger  *slog.Logger     // slog.Default()
	Metrics *Metrics         // nil: no metrics
	// BatchSize bounds the rows a worker holds: claimed and not yet recorded or given back (250).
	BatchSize int
	Lease     time.Duration // how long a claim keeps other workers off a row (30 s, at least 2×Timeout)
	// PerDestination is how many concurrent requests a URL host is given at first, and the floor
	// it falls back to when it fails or answers slowly (2).
	PerDestination int
	// MaxPerDestination is the most concurrent requests a URL host may reach: a host that
	// acknowledges within fastAnswer while more of its notifications wait gains one request for
	// each round of fast answers; a failure or a slow answer halves it (32, and never less than
	// PerDestination; equal to it for a fixed limit).
	MaxPerDestination int
	Timeout           time.Duration // of one attempt, answer included (5 s)
	// PerMerchant bounds the rows one merchant may have queued or in flight (max(PerDestination,
	// BatchSize/5)): a merchant whose endpoints hang holds at most this share of the worker, and
	// the rest stays free for the others.
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

const (
	// fastAnswer: an acknowledgement within this, while the host has more notifications waiting,
	// counts towards one more concurrent request for it.
	fastAnswer = 250 * time.Millisecond
	// slowAnswer: a failed attempt, or an answer that took this long or longer, halves the host's
	// concurrency (down to PerDestination).
	slowAnswer = time.Second
	// claimGap is the least time between two claims of Run; Run also spends at most half of its
	// time listing the destinations (what grows with their number).
	claimGap = 5 * time.Millisecond
	// forgetAfter: a host that held nothing for this long starts again from PerDestination.
	forgetAfter = time.Minute
	// maxRecord bounds the outcomes written in one transaction.
	maxRecord = 256
	// recordWait is how long outcomes may wait for others while requests are in flight, to be
	// written in one transaction: a commit costs more than the rows it carries.
	recordWait = 2 * time.Millisecond
)

// Worker delivers the outbox. Several workers, in one process or many sharing a database, may
// run at once: a row is claimed by one of them at a time.
//
// Rows are claimed per destination (the notify URL's host, kept in the outbox's dest column):
// a claim lists the destinations with due rows (one index seek each) and takes from each at
// most what that host can be given now, so the rows of a host that is busy or hanging are never
// read, let alone claimed and given back. A host's claimed rows wait in its queue for one of its
// slots; its slots adapt (PerDestination to MaxPerDestination) to how it answers. A slot is
// free as soon as the answer has arrived; the outcomes are then written in batches, and a row
// counts as delivered only once its outcome has committed. A crash before that leaves the row
// leased, and it is delivered again when the lease expires: at least once.
type Worker struct {
	db       *sqlstore.DB
	client   *http.Client
	opts     Options
	log      *slog.Logger
	kick     chan struct{}
	pg       bool   // PostgreSQL: a claim and a batch of outcomes are one statement each
	destsSQL string // the destinations with due rows
	claimSQL string // due rows leased: one destination's (SQLite), every planned one's (PostgreSQL)

	mu        sync.Mutex
	dests     map[string]*dest // by host
	owned     map[int64]int    // merchant -> rows queued or in flight
	inHand    int              // rows claimed and not yet recorded or given back
	more      bool             // the last claim left due rows behind: claim again when room frees
	lastDest  string           // where the last claim's round ended: the next starts after it
	scanTook  time.Duration    // how long the last listing of the destinations took
	outcomes  []outcome        // answered, waiting to be recorded
	recording bool             // a goroutine is writing outcomes
	answered  chan struct{}    // an outcome joined outcomes
	flying    int              // requests in flight, all hosts
	wg        sync.WaitGroup   // every delivery goroutine
}

// dest is what the worker knows of one URL host.
type dest struct {
	limit    int       // concurrent requests it may have now
	busy     int       // requests in flight
	queue    []*job    // claimed, waiting for a slot
	streak   int       // fast answers since the limit last changed
	healthy  bool      // the last answer was an acknowledgement
	backlog  bool      // the last claim for it was cut short by its capacity: more rows are due
	merchant int64     // the merchant of the last row claimed for it
	seen     bool      // merchant is known
	idle     time.Time // since when it holds nothing
}

func (d *dest) held() int { return d.busy + len(d.queue) }

// NewWorker returns a worker delivering db's outbox with client (a client of its own when nil).
// The client is copied and set never to follow redirects; its transport (which must then be nil
// or an *http.Transport) is cloned to keep enough idle connections per host for the deliveries
// in flight, with, unless opts.AllowPrivate, a dialer that refuses non-public addresses and no
// proxy.
func NewWorker(db *sqlstore.DB, client *http.Client, opts Options) *Worker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 250
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
	if opts.MaxPerDestination <= 0 {
		opts.MaxPerDestination = 32
	}
	opts.MaxPerDestination = max(opts.MaxPerDestination, opts.PerDestination)
	if opts.PerMerchant <= 0 {
		opts.PerMerchant = max(opts.PerDestination, opts.BatchSize/5)
	}
	w := &Worker{
		db:       db,
		opts:     opts,
		log:      opts.Logger.With("component", "notify"),
		kick:     make(chan struct{}, 1),
		answered: make(chan struct{}, 1),
		dests:    make(map[string]*dest),
		owned:    make(map[int64]int),
	}
	w.pg = db.Dialect() == sqlstore.Postgres
	w.destsSQL, w.claimSQL = claimQueries(db)
	w.client = w.newClient(client)
	return w
}

func (w *Worker) newClient(base *http.Client) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var t *http.Transport
	switch rt := c.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = rt.Clone()
	default:
		if !w.opts.AllowPrivate {
			w.log.Warn("notify: custom HTTP transport, non-public addresses are not refused at dial time")
		}
		return &c
	}
	// Every request in flight to a host keeps its connection for the next one: without enough
	// idle connections per host, each request beyond them would open (and close) its own.
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, w.opts.MaxPerDestination)
	if t.MaxIdleConns != 0 {
		t.MaxIdleConns = max(t.MaxIdleConns, 4*w.opts.MaxPerDestination)
	}
	if !w.opts.AllowPrivate {
		d := &net.Dialer{Timeout: w.opts.Timeout, KeepAlive: 30 * time.Second, Control: dialControl}
		t.DialContext = d.DialContext
		t.Proxy = nil
	}
	c.Transport = t
	return &c
}

// claimQueries returns the statements of a claim. SQLite is told which index serves them: its
// planner, without statistics, would rather walk every pending row.
func claimQueries(db *sqlstore.DB) (dests, claim string) {
	by := ""
	if db.Dialect() == sqlstore.SQLite {
		by = " INDEXED BY outbox_pending_dest"
	}
	// A loose index scan: each step seeks the next destination with pending rows, then the first
	// due row of each destination not leased (its rows in hand are all it walks).
	dests = `WITH RECURSIVE d(dest) AS (
		SELECT (SELECT dest FROM outbox` + by + ` WHERE state = 'pending' ORDER BY dest LIMIT 1)
		UNION ALL
		SELECT (SELECT o.dest FROM outbox o` + by + ` WHERE o.state = 'pending' AND o.dest > d.dest ORDER BY o.dest LIMIT 1)
		FROM d WHERE d.dest IS NOT NULL
	)
	SELECT dest, (SELECT o.next_at FROM outbox o` + by + ` WHERE o.state = 'pending' AND o.dest = d.dest
		AND o.next_at <= $1 AND o.lease_until <= $1 ORDER BY o.next_at LIMIT 1)
	FROM d WHERE dest IS NOT NULL`
	const returning = ` RETURNING id, notify_id, kind, merchant_id, url, body, attempts, next_at, format, give_up_at, dest`
	if db.Dialect() == sqlstore.Postgres {
		// Every planned destination ($3) with its count ($4) in one statement, which needs no
		// transaction around it: one round trip.
		claim = `UPDATE outbox SET lease_until = $1 WHERE id IN (
			SELECT c.id FROM unnest($3::text[], $4::bigint[]) AS p(dest, n), LATERAL (
				SELECT id FROM outbox WHERE state = 'pending' AND dest = p.dest AND next_at <= $2 AND lease_until <= $2
				ORDER BY next_at, id LIMIT p.n FOR UPDATE SKIP LOCKED) c)` + returning
		return dests, claim
	}
	claim = `UPDATE outbox SET lease_until = $1 WHERE id IN (
		SELECT id FROM outbox` + by + ` WHERE state = 'pending' AND dest = $3 AND next_at <= $2 AND lease_until <= $2
		ORDER BY next_at, id LIMIT $4` + db.ForUpdate() + `)` + returning
	return dests, claim
}

// Kick wakes Run before its next tick, e.g. after a transaction that enqueued a notification
// committed. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, claiming due rows every second or when kicked (at most every
// claimGap), without waiting for slow destinations. It returns nil after ctx is done and the
// attempts in flight have ended and been recorded (a cancelled attempt is not counted: its
// claim is released for another worker).
func (w *Worker) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	pause := time.NewTimer(time.Hour)
	defer pause.Stop()
	for {
		if _, err := w.dispatch(ctx, w.opts.Now(), nil); err != nil && ctx.Err() == nil {
			w.log.Error("notify: claim", "err", err)
		}
		// Kicks that come meanwhile make one claim after the pause.
		w.mu.Lock()
		scan := w.scanTook
		w.mu.Unlock()
		pause.Reset(max(claimGap, scan))
		select {
		case <-ctx.Done():
			w.wg.Wait()
			return nil
		case <-pause.C:
		}
		select {
		case <-ctx.Done():
			w.wg.Wait()
			return nil
		case <-tick.C:
			w.sweep(time.Now())
		case <-w.kick:
		}
	}
}

// RunOnce delivers the rows due at now: it claims them (at most BatchSize in hand), attempts
// them within each destination's limit, claims again as slots free, and returns once no due
// row is left that it could claim and every attempt it made is recorded, with the number of
// attempts. Rows a slow destination could not reach within the lease are released. now drives
// the schedule: the next attempt after a failure is due at now + the gap.
func (w *Worker) RunOnce(ctx context.Context, now time.Time) (attempted int, err error) {
	run := &runGroup{signal: make(chan struct{}, 1)}
	for {
		kept, err := w.dispatch(ctx, now, run)
		if err != nil {
			run.wait()
			return run.count(), err
		}
		if run.pending() == 0 {
			if kept == 0 {
				return run.count(), nil
			}
			continue
		}
		<-run.signal // one of its rows is done: room for another claim
	}
}

// runGroup follows the rows of one RunOnce.
type runGroup struct {
	mu        sync.Mutex
	inHand    int
	attempted int
	signal    chan struct{} // a row is done
}

func (r *runGroup) add(n int) {
	r.mu.Lock()
	r.inHand += n
	r.mu.Unlock()
}

func (r *runGroup) done(attempted bool) {
	r.mu.Lock()
	r.inHand--
	if attempted {
		r.attempted++
	}
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

func (r *runGroup) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inHand
}

func (r *runGroup) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempted
}

func (r *runGroup) wait() {
	for r.pending() > 0 {
		<-r.signal
	}
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

	ctx       context.Context // of the Run or RunOnce that claimed it
	claimedAt time.Time       // the now of the claim: the schedule counts from it
	claimed   time.Time       // when it was claimed, by the wall clock: the lease runs from it
	begun     time.Duration   // from claimed to the start of its attempt
	run       *runGroup       // the RunOnce waiting for it, or nil
}

// want is a claim's share of one destination.
type want struct {
	dest string
	n    int
}

// dispatch claims due rows and starts their deliveries, and returns how many rows it kept. run,
// when not nil, follows the rows kept (RunOnce waits for them).
func (w *Worker) dispatch(ctx context.Context, now time.Time, run *runGroup) (int, error) {
	w.mu.Lock()
	room := w.opts.BatchSize - w.inHand
	if room <= 0 {
		w.more = true
	}
	w.mu.Unlock()
	if room <= 0 {
		return 0, nil
	}
	began := time.Now()
	due, err := w.dueDests(ctx, now)
	w.mu.Lock()
	w.scanTook = time.Since(began)
	w.mu.Unlock()
	if err != nil || len(due) == 0 {
		return 0, err
	}
	w.mu.Lock()
	plan := w.plan(due, room)
	w.mu.Unlock()
	if len(plan) == 0 {
		return 0, nil
	}
	jobs, cut, err := w.claim(ctx, now, plan)
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	claimed := time.Now()
	for _, j := range jobs {
		j.ctx, j.claimedAt, j.claimed, j.run = ctx, now, claimed, run
	}

	// Each merchant keeps at most its share; rows beyond it go back at once. The share is spread
	// over the merchant's hosts (their first rows, then their second...), so that it is spent on
	// requests in flight rather than on rows queued behind a hanging one.
	var hosts []string
	byHost := make(map[string][]*job)
	for _, j := range jobs {
		if _, ok := byHost[j.host]; !ok {
			hosts = append(hosts, j.host)
		}
		byHost[j.host] = append(byHost[j.host], j)
	}
	var release, start, expired []*job
	kept := 0
	w.mu.Lock()
	for round, more := 0, true; more; round++ {
		more = false
		for _, h := range hosts {
			if round >= len(byHost[h]) {
				continue
			}
			more = true
			j := byHost[h][round]
			d := w.dest(h)
			d.merchant, d.seen = j.merchantID, true
			if w.owned[j.merchantID] >= w.opts.PerMerchant {
				release = append(release, j)
				continue
			}
			w.owned[j.merchantID]++
			d.queue = append(d.queue, j)
			kept++
		}
	}
	w.inHand += kept
	if run != nil {
		run.add(kept)
	}
	for _, p := range plan {
		if d := w.dests[p.dest]; d != nil {
			d.backlog = cut[p.dest]
		}
	}
	if len(release) > 0 || len(cut) > 0 {
		w.more = true
	}
	for _, h := range hosts {
		s, e := w.startable(w.dests[h])
		start, expired = append(start, s...), append(expired, e...)
	}
	w.mu.Unlock()
	if len(release) > 0 {
		w.release(ctx, release)
		w.log.Debug("notify: merchant holds its share, rows given back", "rows", len(release))
	}
	w.launch(start)
	w.giveBack(expired)
	return kept, nil
}

// dest returns the state of host, new if need be. w.mu is held.
func (w *Worker) dest(host string) *dest {
	d := w.dests[host]
	if d == nil {
		d = &dest{limit: w.opts.PerDestination, idle: time.Now()}
		w.dests[host] = d
	}
	return d
}

// capacity is how many rows host d may hold, queued or in flight: its limit, and as many again
// queued while it answers (none for a host failing or never heard, so that its rows stay free
// for other workers). w.mu is held.
func (w *Worker) capacity(d *dest) int {
	if d == nil {
		return w.opts.PerDestination
	}
	if d.healthy {
		return 2 * d.limit
	}
	return d.limit
}

// plan shares room among the destinations due, in turn from where the last claim stopped: each
// gets what its host can hold and its merchant's share allows. w.mu is held.
func (w *Worker) plan(due []string, room int) []want {
	sort.Strings(due)
	first := sort.SearchStrings(due, w.lastDest+"\x00") // the first after lastDest
	more := false
	var plan []want
	for i := range due {
		h := due[(first+i)%len(due)]
		if room <= 0 {
			more = true
			break
		}
		n := room
		if h != "" { // "": rows written before destinations were recorded
			d := w.dests[h]
			n = min(n, w.capacity(d)-heldBy(d))
			if d != nil && d.seen {
				n = min(n, w.opts.PerMerchant-w.owned[d.merchant])
			}
		}
		if n <= 0 {
			more = true
			continue
		}
		plan = append(plan, want{h, n})
		room -= n
		w.lastDest = h
	}
	w.more = more
	return plan
}

func heldBy(d *dest) int {
	if d == nil {
		return 0
	}
	return d.held()
}

// dueDests returns the destinations with rows due at now that no worker holds.
func (w *Worker) dueDests(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := w.db.SQL().QueryContext(ctx, w.destsSQL, sqlstore.MS(now))
	if err != nil {
		return nil, fmt.Errorf("notify: destinations: %w", err)
	}
	defer rows.Close()
	var due []string
	for rows.Next() {
		var d string
		var at sql.NullInt64
		if err := rows.Scan(&d, &at); err != nil {
			return nil, fmt.Errorf("notify: destinations: %w", err)
		}
		if at.Valid {
			due = append(due, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: destinations: %w", err)
	}
	return due, nil
}

// claim leases, until now+Lease, each planned destination's due rows (oldest first, as many as
// planned), and reports the destinations whose claim was cut short by the plan. Rows written
// before destinations were recorded are given theirs.
func (w *Worker) claim(ctx context.Context, now time.Time, plan []want) ([]*job, map[string]bool, error) {
	at := sqlstore.MS(now)
	lease := sqlstore.MS(now.Add(w.opts.Lease))
	var jobs []*job
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			j := &job{lease: lease}
			if err := rows.Scan(&j.id, &j.notifyID, &j.kind, &j.merchantID, &j.url, &j.body, &j.attempts, &j.nextAt, &j.format, &j.giveUpAt, &j.host); err != nil {
				return err
			}
			jobs = append(jobs, j)
		}
		return rows.Err()
	}
	var err error
	if w.pg {
		dests, counts := make([]string, len(plan)), make([]int64, len(plan))
		for i, p := range plan {
			dests[i], counts[i] = p.dest, int64(p.n)
		}
		var rows *sql.Rows
		if rows, err = w.db.SQL().QueryContext(ctx, w.claimSQL, lease, at, dests, counts); err == nil {
			err = scan(rows)
		}
	} else {
		err = w.db.WriteTx(ctx, func(tx *sql.Tx) error {
			jobs = jobs[:0]
			for _, p := range plan {
				rows, err := tx.QueryContext(ctx, w.claimSQL, lease, at, p.dest, p.n)
				if err != nil {
					return err
				}
				if err := scan(rows); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("notify: claim: %w", err)
	}
	claimed := make(map[string]int)
	for _, j := range jobs {
		claimed[j.host]++
		if j.host == "" {
			j.host = hostOf(j.url)
			if j.host != "" {
				// Its lease is held: nobody else writes the row meanwhile. Should this fail, the
				// row is claimed as one without destination again.
				if _, err := w.db.SQL().ExecContext(ctx, `UPDATE outbox SET dest = $1 WHERE id = $2 AND lease_until = $3`, j.host, j.id, j.lease); err != nil {
					w.log.Warn("notify: record a destination", "err", err)
				}
			}
		}
	}
	cut := make(map[string]bool)
	for _, p := range plan {
		if claimed[p.dest] == p.n {
			cut[p.dest] = true
		}
	}
	sort.Slice(jobs, func(a, b int) bool {
		if jobs[a].nextAt != jobs[b].nextAt {
			return jobs[a].nextAt < jobs[b].nextAt
		}
		return jobs[a].id < jobs[b].id
	})
	return jobs, cut, nil
}

// startable takes from d's queue the rows to start now, within its limit, and those to give
// back instead: their Run or RunOnce has ended, or they could no longer finish within the
// lease. w.mu is held.
func (w *Worker) startable(d *dest) (start, expired []*job) {
	if d == nil {
		return nil, nil
	}
	for len(d.queue) > 0 && d.busy < d.limit {
		j := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		since := time.Since(j.claimed)
		if j.ctx.Err() != nil || since+w.opts.Timeout > w.opts.Lease-w.opts.Lease/4 {
			expired = append(expired, j)
			continue
		}
		j.begun = since
		d.busy++
		w.flying++
		start = append(start, j)
	}
	if len(d.queue) == 0 {
		d.queue = nil
		if d.busy == 0 {
			d.idle = time.Now()
		}
	}
	return start, expired
}

func (w *Worker) launch(js []*job) {
	for _, j := range js {
		w.wg.Add(1)
		go w.attempt(j)
	}
}

// attempt delivers j, frees its slot as soon as the answer is in, and has its outcome recorded.
func (w *Worker) attempt(j *job) {
	defer w.wg.Done()
	res := w.post(j.ctx, j)
	if !res.ok && j.ctx.Err() != nil {
		// Shutting down: the failure is ours, not the hospital's. The row goes back uncounted.
		w.mu.Lock()
		d := w.dests[j.host]
		d.busy--
		w.flying--
		start, expired := w.startable(d)
		w.mu.Unlock()
		w.launch(start)
		w.giveBack(append(expired, j))
		return
	}
	o := w.judge(j, res)
	w.mu.Lock()
	d := w.dests[j.host]
	d.busy--
	w.flying--
	w.adapt(d, res)
	w.unown(j)
	w.outcomes = append(w.outcomes, o)
	start, expired := w.startable(d)
	lead := !w.recording
	w.recording = true
	more := w.more
	w.mu.Unlock()
	select {
	case w.answered <- struct{}{}:
	default:
	}
	w.launch(start)
	w.giveBack(expired)
	if more {
		w.Kick()
	}
	if lead {
		w.record()
	}
}

// adapt moves d's limit after an answer: one more request for each round of fast
// acknowledgements while it has more waiting, half as many after a failure or a slow answer.
// w.mu is held.
func (w *Worker) adapt(d *dest, res result) {
	switch {
	case !res.ok || res.latency >= slowAnswer:
		d.limit = max(d.limit/2, w.opts.PerDestination)
		d.streak = 0
	case res.latency < fastAnswer && (len(d.queue) > 0 || d.backlog):
		d.streak++
		if d.streak >= d.limit && d.limit < w.opts.MaxPerDestination {
			d.limit++
			d.streak = 0
		}
	}
	d.healthy = res.ok
}

// unown ends j's count in its merchant's share. w.mu is held.
func (w *Worker) unown(j *job) {
	if w.owned[j.merchantID]--; w.owned[j.merchantID] <= 0 {
		delete(w.owned, j.merchantID)
	}
}

// giveBack releases rows this worker holds without an attempt, and ends their count.
func (w *Worker) giveBack(js []*job) {
	if len(js) == 0 {
		return
	}
	w.release(js[0].ctx, js)
	w.mu.Lock()
	for _, j := range js {
		w.unown(j)
		w.inHand--
	}
	more := w.more
	w.mu.Unlock()
	for _, j := range js {
		if j.run != nil {
			j.run.done(false)
		}
	}
	if more {
		w.Kick()
	}
}

// sweep forgets the hosts that held nothing for forgetAfter.
func (w *Worker) sweep(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for h, d := range w.dests {
		if d.held() == 0 && now.Sub(d.idle) > forgetAfter {
			delete(w.dests, h)
		}
	}
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// release gives claimed rows back without counting an attempt.
func (w *Worker) release(ctx context.Context, js []*job) {
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

// outcome is an attempt to record.
type outcome struct {
	j       *job
	res     result
	at      time.Time
	attempt int
	state   string
	nextAt  time.Time
	doneAt  time.Time
}

// judge makes the outcome of j's attempt answered with res, and logs it.
func (w *Worker) judge(j *job, res result) outcome {
	at := j.claimedAt.Add(j.begun)
	// The schedule counts from the claim, to the second, so that driven clocks see exact gaps.
	base := j.claimedAt.Add(j.begun.Truncate(time.Second))
	o := outcome{j: j, res: res, at: at, attempt: j.attempts + 1, state: StateDelivered, nextAt: at, doneAt: at}
	kind := OutcomeDelivered
	if !res.ok {
		next, dead := nextAfter(o.attempt, base)
		if j.format == FormatV3 || j.format == FormatV3Probe {
			next, dead = nextV3(o.attempt, base, j.giveUpAt)
		}
		if dead {
			o.state, kind = StateDead, OutcomeDead
		} else {
			o.state, o.nextAt, o.doneAt, kind = StatePending, next, time.Time{}, OutcomeRetry
		}
	}
	w.opts.Metrics.observe(kind, res.latency)
	switch kind {
	case OutcomeDelivered:
		if w.log.Enabled(context.Background(), slog.LevelDebug) {
			w.logFor(j, o).Debug("notify: delivered")
		}
	case OutcomeRetry:
		w.logFor(j, o).Info("notify: attempt failed", "err", res.err, "next_at", o.nextAt)
	case OutcomeDead:
		w.logFor(j, o).Warn("notify: dead after the last attempt", "err", res.err)
	}
	return o
}

func (w *Worker) logFor(j *job, o outcome) *slog.Logger {
	return w.log.With("notify_id", j.notifyID, "kind", j.kind, "merchant_id", j.merchantID, "attempt", o.attempt,
		"status", o.res.status, "latency_ms", o.res.latency.Milliseconds())
}

// record writes the outcomes waiting, in batches, until none is left. Only one goroutine
// records at a time; answers that come meanwhile join the next batch.
func (w *Worker) record() {
	wait := time.NewTimer(recordWait)
	defer wait.Stop()
	for {
		// While requests are in flight, their answers are worth waiting for a moment.
		wait.Reset(recordWait)
		w.mu.Lock()
		for len(w.outcomes) < maxRecord && w.flying > 0 {
			w.mu.Unlock()
			select {
			case <-w.answered:
				w.mu.Lock()
				continue
			case <-wait.C:
			}
			w.mu.Lock()
			break
		}
		n := min(len(w.outcomes), maxRecord)
		if n == 0 {
			w.outcomes = nil
			w.recording = false
			w.mu.Unlock()
			return
		}
		batch := w.outcomes[:n:n]
		w.outcomes = w.outcomes[n:]
		w.mu.Unlock()
		w.write(batch)
		w.mu.Lock()
		w.inHand -= n
		more := w.more
		w.mu.Unlock()
		for _, o := range batch {
			if o.j.run != nil {
				o.j.run.done(true)
			}
		}
		if more {
			w.Kick()
		}
	}
}

// write records the outcomes in one transaction: each attempt, and each row's new state unless
// the row's claim was lost (its lease expired and another worker took it, or an operator
// resent it). When that transaction fails, each outcome is tried alone, so that one cannot
// cost the others; an outcome that still fails leaves its row leased, and the row is attempted
// again when the lease expires: at least once.
func (w *Worker) write(batch []outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fenced := make([]bool, len(batch))
	err := w.db.WriteTx(ctx, func(tx *sql.Tx) error { return w.writeOutcomes(ctx, tx, batch, fenced) })
	if err != nil && len(batch) > 1 {
		w.log.Warn("notify: record attempts together, now one by one", "rows", len(batch), "err", err)
		for i := range batch {
			fenced[i] = false
			err := w.db.WriteTx(ctx, func(tx *sql.Tx) error { return w.writeOutcomes(ctx, tx, batch[i:i+1], fenced[i:i+1]) })
			if err != nil {
				w.logFor(batch[i].j, batch[i]).Error("notify: record attempt", "err", err)
			}
		}
	} else if err != nil {
		w.logFor(batch[0].j, batch[0]).Error("notify: record attempt", "err", err)
	}
	for i, f := range fenced {
		if f {
			w.logFor(batch[i].j, batch[i]).Warn("notify: claim lost before the outcome was recorded (lease expired or resent)")
		}
	}
}

// writeOutcomesPG records a batch in one statement (one round trip); the rows it updated are the
// ones not fenced.
const writeOutcomesPG = `WITH v AS (
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::bigint[], $6::bigint[],
			$7::bigint[], $8::int[], $9::bigint[], $10::text[], $11::text[])
		AS v(id, lease, state, attempts, next_at, done_at, at, http_status, latency_ms, answer, error)
	), a AS (
		INSERT INTO notify_attempts (outbox_id, at, http_status, latency_ms, answer, error)
		SELECT id, at, http_status, latency_ms, answer, error FROM v
	)
	UPDATE outbox o SET state = v.state, attempts = v.attempts, next_at = v.next_at, lease_until = 0, done_at = v.done_at
	FROM v WHERE o.id = v.id AND o.lease_until = v.lease
	RETURNING o.id`

func (w *Worker) writeOutcomes(ctx context.Context, tx *sql.Tx, batch []outcome, fenced []bool) error {
	if w.pg {
		n := len(batch)
		ids, leases, nexts, dones, ats, latencies := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		states, answers, errs := make([]string, n), make([]string, n), make([]string, n)
		attempts, statuses := make([]int32, n), make([]int32, n)
		for i, o := range batch {
			ids[i], leases[i], states[i], attempts[i] = o.j.id, o.j.lease, o.state, int32(o.attempt)
			nexts[i], dones[i], ats[i] = sqlstore.MS(o.nextAt), sqlstore.MS(o.doneAt), sqlstore.MS(o.at)
			statuses[i], latencies[i], answers[i], errs[i] = int32(o.res.status), o.res.latency.Milliseconds(), o.res.answer, o.res.err
		}
		rows, err := tx.QueryContext(ctx, writeOutcomesPG, ids, leases, states, attempts, nexts, dones, ats, statuses, latencies, answers, errs)
		if err != nil {
			return err
		}
		defer rows.Close()
		updated := make(map[int64]bool, n)
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			updated[id] = true
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i, o := range batch {
			fenced[i] = !updated[o.j.id]
		}
		return nil
	}
	for i, o := range batch {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notify_attempts (outbox_id, at, http_status, latency_ms, answer, error)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			o.j.id, sqlstore.MS(o.at), o.res.status, o.res.latency.Milliseconds(), o.res.answer, o.res.err); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `UPDATE outbox SET state = $3, attempts = $4, next_at = $5, lease_until = 0, done_at = $6
			WHERE id = $1 AND lease_until = $2`,
			o.j.id, o.j.lease, o.state, o.attempt, sqlstore.MS(o.nextAt), sqlstore.MS(o.doneAt))
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		fenced[i] = n == 0
	}
	return nil
}

// post sends j's body and judges the answer.
func (w *Worker) post(ctx context.Context, j *job) (res result) {
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
