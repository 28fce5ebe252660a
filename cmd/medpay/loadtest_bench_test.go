package main

import (
	"context"
	"io"
	"testing"

	"github.com/medpay/medpay/internal/testenv"
)

// The three paths of medpay loadtest as benchmarks, against a platform in this process on SQLite
// (or PostgreSQL with MEDPAY_TEST_ENGINE=postgres) with 32 clients: b.N calls or cycles per run.
// cpu-µs/op counts client and server together (and, for queryorder, placing the orders it
// queries); ops/s is loadtest's throughput.
func BenchmarkLoadUnifiedOrder(b *testing.B) { benchLoad(b, modeOrder) }
func BenchmarkLoadQueryOrder(b *testing.B)   { benchLoad(b, modeQuery) }

// BenchmarkLoadCycle: order, the payer's sandbox confirmation, and the notification delivered by
// the worker and acknowledged by loadtest's receiver.
func BenchmarkLoadCycle(b *testing.B) { benchLoad(b, modeCycle) }

func benchLoad(b *testing.B, mode string) {
	_, cfg := loadEnv(b)
	cfg.mode, cfg.clients, cfg.requests = mode, 32, b.N
	b.ResetTimer()
	start := testenv.CPUTime()
	rep, err := loadtest(context.Background(), cfg, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	if rep.Errors != 0 || rep.NotifyLost != 0 {
		b.Fatalf("errors %d %v, notifications missing %d", rep.Errors, rep.ErrorKinds, rep.NotifyLost)
	}
	b.ReportMetric(float64((testenv.CPUTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(rep.Throughput, "ops/s") // the run alone, without queryorder's placing beforehand
	b.ReportMetric(rep.Latency.P99, "p99-ms")
	if rep.NotifyLag != nil {
		b.ReportMetric(rep.NotifyLag.P99, "notify-p99-ms")
	}
}
