package notify

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medpay/medpay/sqlstore"
)

// Outcomes of an attempt, the label of medpay_notify_attempts_total.
const (
	OutcomeDelivered = "delivered" // acknowledged with SUCCESS
	OutcomeRetry     = "retry"     // failed, another attempt is scheduled
	OutcomeDead      = "dead"      // failed, it was the last attempt
)

// Metrics are the worker's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	attempts *prometheus.CounterVec
	latency  prometheus.Histogram
}

// NewMetrics registers the notification metrics on reg: the attempts by outcome and their
// latency, counted by the workers given these Metrics, and the outbox gauges (pending, dead,
// age of the oldest pending) read from db at each scrape. now is the clock (time.Now when nil).
func NewMetrics(reg prometheus.Registerer, db *sqlstore.DB, now func() time.Time) (*Metrics, error) {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medpay_notify_attempts_total",
			Help: "Notification delivery attempts by outcome (delivered, retry, dead).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "medpay_notify_attempt_duration_seconds",
			Help:    "Duration of notification delivery attempts.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	for _, o := range []string{OutcomeDelivered, OutcomeRetry, OutcomeDead} {
		m.attempts.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{m.attempts, m.latency, &outboxCollector{db: db, now: now}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(outcome).Inc()
	m.latency.Observe(d.Seconds())
}

var (
	descPending = prometheus.NewDesc("medpay_notify_pending", "Notifications waiting for delivery.", nil, nil)
	descDead    = prometheus.NewDesc("medpay_notify_dead", "Notifications parked as dead.", nil, nil)
	descOldest  = prometheus.NewDesc("medpay_notify_oldest_pending_age_seconds",
		"Age of the oldest notification waiting for delivery (0 when none).", nil, nil)
)

// outboxCollector reads the outbox gauges from the database at scrape time.
type outboxCollector struct {
	db  *sqlstore.DB
	now func() time.Time
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descDead
	ch <- descOldest
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pending, dead int64
	var oldest sql.NullInt64
	err := c.db.SQL().QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0),
		MIN(CASE WHEN state = 'pending' THEN created_at END)
		FROM outbox WHERE state IN ('pending', 'dead')`).Scan(&pending, &dead, &oldest)
	if err != nil {
		for _, d := range []*prometheus.Desc{descPending, descDead, descOldest} {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	age := 0.0
	if oldest.Valid {
		age = max(0, c.now().Sub(sqlstore.FromMS(oldest.Int64)).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(dead))
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age)
}
