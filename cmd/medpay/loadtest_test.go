package main

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/internal/testenv"
)

func loadEnv(t testing.TB) (*testenv.Env, loadConfig) {
	t.Helper()
	env := testenv.New(t, testenv.Options{})
	h := env.Hospital(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	env.Pay.Notify = env.Worker.Kick
	go env.Worker.Run(ctx)
	return env, loadConfig{clients: 4, duration: time.Minute, baseURL: env.URL, notifyAddr: "127.0.0.1:0", timeout: 30 * time.Second,
		creds: medpay.Credentials{AppID: h.AppID, MchID: h.MchID, APIKey: h.APIKey, Secret: h.Secret}}
}

// A fixed number of cycles in the closed model: every order is placed, paid and notified, and
// the receiver verified every notification's signature.
func TestLoadtestCycles(t *testing.T) {
	_, cfg := loadEnv(t)
	cfg.mode, cfg.requests = modeCycle, 40
	rep, err := loadtest(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK != 40 || rep.Errors != 0 {
		t.Fatalf("ok %d, errors %d (%v), want 40 and 0", rep.OK, rep.Errors, rep.ErrorKinds)
	}
	if rep.NotifyLag == nil || rep.NotifyLost != 0 {
		t.Fatalf("notifications: lag %v, missing %d", rep.NotifyLag, rep.NotifyLost)
	}
	if rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
		t.Fatalf("latency percentiles out of order: %+v", rep.Latency)
	}
}

// The open model offers requests at a rate and counts failures separately: a wrong key makes
// every answer fail its signature check, which the report must show as errors, not successes.
func TestLoadtestOpenModelCountsErrors(t *testing.T) {
	_, cfg := loadEnv(t)
	cfg.mode, cfg.requests, cfg.rate = modeOrder, 20, 200
	rep, err := loadtest(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Model != "open" || rep.OK != 20 || rep.Errors != 0 {
		t.Fatalf("%+v", rep)
	}
	cfg.creds.APIKey = "00000000000000000000000000000000"
	rep, err = loadtest(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK != 0 || rep.Errors != 20 {
		t.Fatalf("with a wrong key: ok %d, errors %d (%v)", rep.OK, rep.Errors, rep.ErrorKinds)
	}
}

func TestLoadtestQueries(t *testing.T) {
	_, cfg := loadEnv(t)
	cfg.mode, cfg.requests = modeQuery, 30
	rep, err := loadtest(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK != 30 || rep.Errors != 0 {
		t.Fatalf("ok %d, errors %d (%v)", rep.OK, rep.Errors, rep.ErrorKinds)
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	p := percentilesOf(ds)
	if p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 {
		t.Fatalf("%+v", p)
	}
	if (percentilesOf(nil) != percentiles{}) {
		t.Fatal("empty")
	}
}

// processCPU reads this process's own CPU time, which grows while it works.
func TestProcessCPU(t *testing.T) {
	before := processCPU(os.Getpid())
	x := 0
	for i := 0; processCPU(os.Getpid()) <= before; i++ {
		if i > 1e6 {
			t.Fatalf("CPU time stays at %v", before)
		}
		for j := range 100_000 {
			x ^= j
		}
	}
	_ = x
	if processCPU(0) != 0 {
		t.Error("pid 0 must give 0")
	}
}
