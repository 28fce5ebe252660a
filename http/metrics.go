package http

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	signatures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medpay_api_requests_total",
			Help: "Open API requests by endpoint and outcome (SUCCESS, FAIL for protocol failures, or the err_code).",
		}, []string{"endpoint", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "medpay_api_request_seconds",
			Help:    "Open API request latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"endpoint"}),
		signatures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "medpay_api_signature_failures_total",
			Help: "Requests refused because their signature did not verify.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.signatures)
	return m
}
