package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/client"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/wire"
)

// medpay loadtest drives a running platform the way hospitals do, to size a deployment (as pgbench
// sizes PostgreSQL): pre-signed unifiedorder or queryorder calls, or full payment cycles (order,
// the payer's confirmation through the sandbox API, the notification received and acknowledged by
// a built-in receiver). It runs a closed model (-c clients, each sending its next request when the
// last is answered) or an open model (-rate requests per second, whatever the answers' pace;
// latency counts from the intended start, so a slow server cannot hide its queue).

// Loadtest modes.
const (
	modeOrder = "unifiedorder"
	modeQuery = "queryorder"
	modeCycle = "cycle"
)

type loadConfig struct {
	mode       string
	clients    int
	rate       float64
	duration   time.Duration
	requests   int // stop after this many (0: run for duration)
	baseURL    string
	creds      medpay.Credentials
	notifyAddr string
	timeout    time.Duration
	serverPID  int
}

const loadtestUsage = `usage: medpay loadtest [flags]
       medpay loadtest floor [--addr 127.0.0.1:18480]

Drives a running platform the way hospitals do, to size a deployment: pre-signed unifiedorder or
queryorder calls, or full payment cycles (order, the payer's confirmation through the sandbox API,
the notification received and acknowledged by a built-in receiver). Closed model (-c clients,
each sending its next request when the last is answered) or open model (-rate per second). Prints
throughput, latency percentiles, notification lag and errors; with --server-pid, the server's
peak memory and CPU time per request. --db provisions a throw-away hospital; otherwise give the
credentials of one (--appid, --mch-id, --key, --secret).

'medpay loadtest floor' serves the floor instead: a server that only decodes the XML, verifies
the signature and signs an answer, storing nothing (the cost every call must pay). It prints the
loadtest command to run against it (unifiedorder and queryorder modes): what that measures is
this machine's ceiling, to read medpay's figures against. See docs/performance.md.
`

func runLoadtest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "floor" {
		return runLoadtestFloor(ctx, args[1:], getenv, stdout)
	}
	fs := newFlags("loadtest", stdout)
	setUsage(fs, loadtestUsage)
	api := addAPIFlags(fs)
	mode := fs.String("mode", modeOrder, "unifiedorder, queryorder or cycle (order + sandbox confirm + notification)")
	clients := fs.Int("c", 32, "closed model: concurrent clients")
	rate := fs.Float64("rate", 0, "open model: requests (or cycles) per second; 0 uses the closed model")
	duration := fs.Duration("d", 10*time.Second, "how long to run")
	requests := fs.Int("n", 0, "stop after this many requests or cycles (0: run for -d)")
	dsn := fs.String("db", "", "provision a throw-away hospital in this database (SQLite file or postgres:// URL) instead of --appid/--mch-id/--key/--secret")
	serverKey := fs.String("server-key", "", "with --db: the server key (default: the file beside the SQLite database)")
	notifyAddr := fs.String("notify-addr", "127.0.0.1:0", "cycle mode: address of the built-in notify receiver (must be reachable from the server)")
	timeout := fs.Duration("timeout", 30*time.Second, "per request")
	serverPID := fs.Int("server-pid", 0, "a local server's process id: report its peak memory (VmHWM) and CPU time per request")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	cfg := loadConfig{mode: *mode, clients: *clients, rate: *rate, duration: *duration, requests: *requests,
		baseURL: strings.TrimRight(*api.baseURL, "/"), notifyAddr: *notifyAddr, timeout: *timeout, serverPID: *serverPID}
	switch cfg.mode {
	case modeOrder, modeQuery, modeCycle:
	default:
		return fmt.Errorf("--mode must be unifiedorder, queryorder or cycle, not %q", cfg.mode)
	}
	if cfg.clients < 1 || cfg.clients > 10_000 {
		return fmt.Errorf("-c must be 1 to 10000, not %d", cfg.clients)
	}
	if cfg.rate < 0 {
		return fmt.Errorf("-rate must not be negative")
	}
	if *dsn != "" {
		m := &medpay.Merchant{Kind: medpay.KindHospital, Name: "压测医院" + secret.RandomString(4, "0123456789"),
			Cities: []string{"440300"}, Level: 3}
		var buf strings.Builder
		if err := createMerchant(ctx, *dsn, *serverKey, m, nil, "json", &buf); err != nil {
			return fmt.Errorf("provision a hospital: %w", err)
		}
		if err := json.Unmarshal([]byte(buf.String()), &cfg.creds); err != nil {
			return err
		}
	} else {
		cfg.creds = medpay.Credentials{AppID: *api.appid, MchID: *api.mchID, APIKey: *api.key, Secret: *api.secret}
		if cfg.creds.AppID == "" || cfg.creds.MchID == "" || cfg.creds.APIKey == "" || cfg.creds.Secret == "" {
			return errors.New("give --db to provision a hospital, or --appid, --mch-id, --key and --secret of one")
		}
	}
	rep, err := loadtest(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if *api.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(stdout)
	return nil
}

// loadReport is what a run measured.
type loadReport struct {
	Mode        string         `json:"mode"`
	Model       string         `json:"model"` // closed or open
	Clients     int            `json:"clients,omitempty"`
	Rate        float64        `json:"rate,omitempty"`
	Seconds     float64        `json:"seconds"`
	OK          int            `json:"ok"`
	Errors      int            `json:"errors"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	Throughput  float64        `json:"throughput_per_s"` // successful requests (or cycles) per second
	Latency     percentiles    `json:"latency_ms"`       // of the calls (cycle: order + confirm)
	NotifyLag   *percentiles   `json:"notify_lag_ms,omitempty"`
	NotifyLost  int            `json:"notify_missing,omitempty"` // cycles whose notification had not arrived at the end
	ServerPeakK int64          `json:"server_peak_rss_kib,omitempty"`
	ServerCPUms float64        `json:"server_cpu_ms_per_op,omitempty"` // the server's CPU time per successful request or cycle
}

type percentiles struct {
	P50, P90, P99, Max float64
}

func (p percentiles) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]float64{"p50": p.P50, "p90": p.P90, "p99": p.P99, "max": p.Max})
}

func percentilesOf(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		i = min(max(i, 0), len(ds)-1)
		return float64(ds[i].Microseconds()) / 1000
	}
	return percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(ds[len(ds)-1].Microseconds()) / 1000}
}

func (r *loadReport) print(w io.Writer) {
	fmt.Fprintf(w, "mode %s, %s model", r.Mode, r.Model)
	if r.Model == "closed" {
		fmt.Fprintf(w, ", %d clients", r.Clients)
	} else {
		fmt.Fprintf(w, ", %.0f/s offered", r.Rate)
	}
	fmt.Fprintf(w, ", %.1f s\n", r.Seconds)
	fmt.Fprintf(w, "ok %d, errors %d, %.0f/s\n", r.OK, r.Errors, r.Throughput)
	fmt.Fprintf(w, "latency ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	if r.NotifyLag != nil {
		fmt.Fprintf(w, "notify lag ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (missing %d)\n",
			r.NotifyLag.P50, r.NotifyLag.P90, r.NotifyLag.P99, r.NotifyLag.Max, r.NotifyLost)
	}
	for k, n := range r.ErrorKinds {
		fmt.Fprintf(w, "  error %-40s %d\n", k, n)
	}
	if r.ServerPeakK > 0 {
		fmt.Fprintf(w, "server peak RSS %.1f MiB\n", float64(r.ServerPeakK)/1024)
	}
	if r.ServerCPUms > 0 {
		fmt.Fprintf(w, "server CPU %.3f ms per request\n", r.ServerCPUms)
	}
}

// loadRun is the state shared by the workers of one run.
type loadRun struct {
	cfg    loadConfig
	http   *http.Client
	token  string
	prefix string // of hosp_out_trade_no, unique per run
	seq    atomic.Int64
	queryN []string // queryorder mode: the orders placed beforehand

	mu        sync.Mutex
	latencies []time.Duration
	errors    map[string]int
	ok        int
	confirmed map[string]time.Time // cycle: med_trans_id → when the confirmation was answered
	arrived   map[string]time.Time // cycle: med_trans_id → when its notification arrived
	lags      []time.Duration
}

func loadtest(ctx context.Context, cfg loadConfig, progress io.Writer) (*loadReport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = cfg.clients*2+16, cfg.clients*2+16
	run := &loadRun{cfg: cfg, http: &http.Client{Transport: tr, Timeout: cfg.timeout},
		prefix: "LT" + strconv.FormatInt(time.Now().UnixMilli(), 36) + secret.RandomString(4, "0123456789"),
		errors: map[string]int{}, confirmed: map[string]time.Time{}, arrived: map[string]time.Time{}}
	c, err := client.New(client.Config{BaseURL: cfg.baseURL, AppID: cfg.creds.AppID, MchID: cfg.creds.MchID,
		APIKey: cfg.creds.APIKey, Secret: cfg.creds.Secret, HTTPClient: run.http})
	if err != nil {
		return nil, err
	}
	if run.token, _, err = c.AccessToken(ctx); err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}

	var notifyURL string
	if cfg.mode == modeCycle {
		stop, u, err := run.receive(cfg.notifyAddr)
		if err != nil {
			return nil, err
		}
		defer stop()
		notifyURL = u
	}
	if cfg.mode == modeQuery {
		// A pool of orders to query, placed before the clock starts.
		n := min(max(cfg.clients*4, 100), 2000)
		for i := 0; i < n; i++ {
			no, err := run.placeOrder(ctx, "http://127.0.0.1:9/notify")
			if err != nil {
				return nil, fmt.Errorf("placing the orders to query: %w", err)
			}
			run.queryN = append(run.queryN, no)
		}
	}

	one := func(ctx context.Context) (time.Duration, error) {
		start := time.Now()
		switch cfg.mode {
		case modeOrder:
			_, err := run.placeOrder(ctx, "http://127.0.0.1:9/notify")
			return time.Since(start), err
		case modeQuery:
			i := int(run.seq.Add(1)) % len(run.queryN)
			err := run.queryOrder(ctx, run.queryN[i]) // before time.Since: operands are evaluated in order
			return time.Since(start), err
		default:
			return run.cycle(ctx, notifyURL, start)
		}
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	done := make(chan struct{})
	cpuBefore := processCPU(cfg.serverPID)
	started := time.Now()
	go run.progress(started, done, progress)
	var issued atomic.Int64
	more := func() bool {
		return runCtx.Err() == nil && (cfg.requests == 0 || issued.Add(1) <= int64(cfg.requests))
	}
	var wg sync.WaitGroup
	if cfg.rate > 0 {
		// Open model: start each request at its scheduled time; latency counts from then.
		interval := time.Duration(float64(time.Second) / cfg.rate)
		next := time.Now()
		for more() {
			wait := time.Until(next)
			if wait > 0 {
				select {
				case <-runCtx.Done():
				case <-time.After(wait):
				}
				if runCtx.Err() != nil {
					break
				}
			}
			sched := next
			next = next.Add(interval)
			wg.Go(func() {
				_, err := one(context.WithoutCancel(runCtx))
				run.record(time.Since(sched), err) // from the scheduled start: queueing counts
			})
		}
	} else {
		for range cfg.clients {
			wg.Go(func() {
				for more() {
					d, err := one(context.WithoutCancel(runCtx))
					run.record(d, err)
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(started)
	serverCPU := processCPU(cfg.serverPID) - cpuBefore
	if cfg.mode == modeCycle {
		// Give the last notifications a little time to arrive before counting them missing.
		run.waitNotifications(10 * time.Second)
	}
	close(done)

	rep := &loadReport{Mode: cfg.mode, Model: "closed", Clients: cfg.clients, Seconds: elapsed.Seconds()}
	if cfg.rate > 0 {
		rep.Model, rep.Clients, rep.Rate = "open", 0, cfg.rate
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	rep.OK = run.ok
	for _, n := range run.errors {
		rep.Errors += n
	}
	if len(run.errors) > 0 {
		rep.ErrorKinds = run.errors
	}
	rep.Throughput = float64(run.ok) / elapsed.Seconds()
	rep.Latency = percentilesOf(run.latencies)
	if cfg.mode == modeCycle {
		lags := slices.Clone(run.lags)
		p := percentilesOf(lags)
		rep.NotifyLag = &p
		for id := range run.confirmed {
			if _, ok := run.arrived[id]; !ok {
				rep.NotifyLost++
			}
		}
	}
	if cfg.serverPID > 0 {
		rep.ServerPeakK = peakRSS(cfg.serverPID)
		if run.ok > 0 && serverCPU > 0 {
			rep.ServerCPUms = float64(serverCPU.Microseconds()) / 1000 / float64(run.ok)
		}
	}
	return rep, nil
}

func (run *loadRun) record(d time.Duration, err error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if err != nil {
		kind := err.Error()
		if len(kind) > 60 {
			kind = kind[:60]
		}
		run.errors[kind]++
		return
	}
	run.ok++
	run.latencies = append(run.latencies, d)
}

// progress prints one line a second until done.
func (run *loadRun) progress(started time.Time, done <-chan struct{}, w io.Writer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := 0
	for {
		select {
		case <-done:
			fmt.Fprintln(w)
			return
		case <-t.C:
		}
		run.mu.Lock()
		ok, errs := run.ok, 0
		for _, n := range run.errors {
			errs += n
		}
		run.mu.Unlock()
		fmt.Fprintf(w, "\r%5.0fs  ok %-8d errors %-6d %6d/s ", time.Since(started).Seconds(), ok, errs, ok-last)
		last = ok
	}
}

// signed returns req signed with a fresh nonce, as XML.
func (run *loadRun) signed(req *wire.Message) ([]byte, error) {
	req.Set("appid", run.cfg.creds.AppID)
	req.Set("mch_id", run.cfg.creds.MchID)
	req.Set("nonce_str", wire.Nonce())
	if err := wire.SignInPlace(req, run.cfg.creds.APIKey); err != nil {
		return nil, err
	}
	return req.Bytes(), nil
}

// call posts a signed body to an open API path and returns the verified answer, or an error
// naming what failed.
func (run *loadRun) call(ctx context.Context, path string, body []byte) (*wire.Message, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		run.cfg.baseURL+path+"?access_token="+url.QueryEscape(run.token), strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := run.http.Do(req)
	if err != nil {
		return nil, errors.New("transport: " + shortErr(err))
	}
	defer resp.Body.Close()
	m, err := wire.Decode(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("HTTP %d, not XML", resp.StatusCode)
	}
	if m.Get("return_code") != "SUCCESS" {
		msg := m.Get("return_msg")
		if i := strings.Index(msg, " rid:"); i >= 0 {
			msg = msg[:i]
		}
		return nil, errors.New("FAIL " + msg)
	}
	if !wire.Verify(m, run.cfg.creds.APIKey) {
		return nil, errors.New("answer signature does not verify")
	}
	if m.Get("result_code") != "SUCCESS" {
		return nil, errors.New("err_code " + m.Get("err_code"))
	}
	return m, nil
}

func shortErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// placeOrder places a cash-only order of 1.00 元 for a payer of its own and returns med_trans_id.
func (run *loadRun) placeOrder(ctx context.Context, notifyURL string) (string, error) {
	n := run.seq.Add(1)
	no := run.prefix + strconv.FormatInt(n, 10)
	req := wire.NewMessage()
	for _, kv := range [][2]string{
		{"openid", "lt-payer-" + no}, {"order_type", "DiagPay"}, {"hosp_out_trade_no", no},
		{"hospital_name", "压测医院"}, {"body", "门诊缴费"}, {"total_fee", "100"}, {"cash_fee", "100"},
		{"insurance_fee", "0"}, {"allow_fee_change", "1"}, {"pay_type", "1"}, {"spbill_create_ip", "127.0.0.1"},
		{"notify_url", notifyURL}, {"city_id", "440300"}, {"serial_no", "LT" + strconv.FormatInt(n%1e9, 10)},
		{"org_no", "H44030000001"}, {"gmt_out_create", time.Now().In(medpay.CST).Format("20060102150405")},
	} {
		req.Set(kv[0], kv[1])
	}
	body, err := run.signed(req)
	if err != nil {
		return "", err
	}
	m, err := run.call(ctx, "/payinsurance/unifiedorder", body)
	if err != nil {
		return "", err
	}
	return m.Get("med_trans_id"), nil
}

func (run *loadRun) queryOrder(ctx context.Context, medTransID string) error {
	req := wire.NewMessage()
	req.Set("med_trans_id", medTransID)
	body, err := run.signed(req)
	if err != nil {
		return err
	}
	_, err = run.call(ctx, "/payinsurance/queryorder", body)
	return err
}

// cycle places an order, confirms it as the payer through the sandbox API, and notes when the
// confirmation was answered; the receiver notes when the notification arrives.
func (run *loadRun) cycle(ctx context.Context, notifyURL string, start time.Time) (time.Duration, error) {
	id, err := run.placeOrder(ctx, notifyURL)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, run.cfg.baseURL+"/sandbox/orders/"+id+"/confirm",
		strings.NewReader(`{"pin":"123456"}`))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := run.http.Do(req)
	if err != nil {
		return 0, errors.New("confirm transport: " + shortErr(err))
	}
	var out struct {
		State string `json:"med_trade_state"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("confirm: HTTP %d", resp.StatusCode)
	}
	if out.State != string(medpay.StateSuccess) {
		return 0, fmt.Errorf("confirm: %s", out.State)
	}
	now := time.Now()
	run.mu.Lock()
	run.confirmed[id] = now
	if at, ok := run.arrived[id]; ok { // the notification beat the confirmation's answer
		run.lags = append(run.lags, max(at.Sub(now), 0))
	}
	run.mu.Unlock()
	return now.Sub(start), nil
}

// receive serves the notify receiver on addr and returns its stop function and URL.
func (run *loadRun) receive(addr string) (func(), string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--notify-addr: %w", err)
	}
	h := client.NotificationHandler(run.cfg.creds.APIKey, func(_ context.Context, n *client.Notification) error {
		if n.Order == nil {
			return nil
		}
		now := time.Now()
		run.mu.Lock()
		defer run.mu.Unlock()
		if _, seen := run.arrived[n.Order.MedTransID]; seen {
			return nil // a repeat: delivery is at least once
		}
		run.arrived[n.Order.MedTransID] = now
		if at, ok := run.confirmed[n.Order.MedTransID]; ok {
			run.lags = append(run.lags, max(now.Sub(at), 0))
		}
		return nil
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, "http://" + ln.Addr().String() + "/notify", nil
}

// waitNotifications waits up to limit for every confirmed cycle's notification.
func (run *loadRun) waitNotifications(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		run.mu.Lock()
		missing := 0
		for id := range run.confirmed {
			if _, ok := run.arrived[id]; !ok {
				missing++
			}
		}
		run.mu.Unlock()
		if missing == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processCPU reads a local process's CPU time (user and system) from /proc; 0 when unknown.
// It measures the server's cost per request even when other work shares the machine.
func processCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces: utime and
	// stime are the 12th and 13th, in clock ticks (100 a second on Linux).
	_, rest, ok := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// peakRSS reads a local process's peak resident set (VmHWM, KiB) from /proc; 0 when unknown.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
