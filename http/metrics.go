package http

import (
	"crypto/subtle"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves the registry's metrics, behind the bearer token MetricsToken when set.
func (s *Server) MetricsHandler() http.Handler {
	h := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	if s.cfg.MetricsToken == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

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
