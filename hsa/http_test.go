package hsa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type opFunc = func(ctx context.Context, inst *Institution, data json.RawMessage) (any, error)

// bureau is a Handler served over loopback, with one clock for both sides that tests can move.
type bureau struct {
	t       testing.TB
	srv     *httptest.Server
	handler *Handler
	calls   atomic.Int64 // times op ran
	op      opFunc

	mu       sync.Mutex
	lastPath string
	lastCT   string
}

func newBureau(t testing.TB, op opFunc) *bureau {
	b := &bureau{t: t, op: op}
	inst := instKey(t)
	b.handler = &Handler{
		Institutions: InstitutionMap{testAppID: {AppID: testAppID, AppSecret: testAppSecret, OrgCodg: "H44030100001", PublicKey: &inst.PublicKey}},
		BureauKey:    bureauKey(t),
		Now:          func() time.Time { return testNow },
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	mux := http.NewServeMux()
	mux.HandleFunc(RoutePrefix+"{route}", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.lastPath, b.lastCT = r.URL.Path, r.Header.Get("Content-Type")
		b.mu.Unlock()
		b.handler.Serve(w, r, func(ctx context.Context, inst *Institution, data json.RawMessage) (any, error) {
			b.calls.Add(1)
			return b.op(ctx, inst, data)
		})
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *bureau) client() *Client {
	return &Client{
		BaseURL:    b.srv.URL + "/",
		AppID:      testAppID,
		AppSecret:  testAppSecret,
		PrivateKey: instKey(b.t),
		BureauKey:  &bureauKey(b.t).PublicKey,
		HTTP:       b.srv.Client(),
		Now:        func() time.Time { return testNow },
	}
}

// post sends body as it is and opens the answer as a client would (keyless for envelope refusals).
func (b *bureau) post(body []byte) (int, *Envelope) {
	b.t.Helper()
	resp, err := b.srv.Client().Post(b.srv.URL+RoutePrefix+"pay_order", contentType, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env Envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		b.t.Fatalf("HTTP %d: answer is not an envelope: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, &env
}

func echo(_ context.Context, inst *Institution, data json.RawMessage) (any, error) {
	return map[string]any{"orgCodg": inst.OrgCodg, "echo": data, "ordStas": "4"}, nil
}

func TestCallSuccess(t *testing.T) {
	b := newBureau(t, echo)
	var out struct {
		OrgCodg string         `json:"orgCodg"`
		OrdStas string         `json:"ordStas"`
		Echo    map[string]any `json:"echo"`
	}
	if err := b.client().Call(context.Background(), "pay_order", settleRequest(), &out); err != nil {
		t.Fatal(err)
	}
	if out.OrgCodg != "H44030100001" || out.OrdStas != "4" || out.Echo["orgBizSer"] != "BIZ20261130000001" {
		t.Fatalf("answer %+v", out)
	}
	if _, ok := out.Echo["note"]; ok {
		t.Fatal("the bureau received uncleaned data")
	}
	if b.lastPath != "/org/local/api/hos/pay_order" || b.lastCT != "application/json;charset=UTF-8" {
		t.Fatalf("request went to %s as %s", b.lastPath, b.lastCT)
	}

	// A request whose data cleans away reaches the operation as no data at all.
	b.op = func(_ context.Context, _ *Institution, data json.RawMessage) (any, error) {
		if data != nil {
			return nil, fmt.Errorf("data %s", data)
		}
		return nil, nil
	}
	var none map[string]any
	if err := b.client().Call(context.Background(), "stmt_day", map[string]any{"orgCodg": ""}, &none); err != nil || none != nil {
		t.Fatalf("empty request: %v %v", none, err)
	}
}

func TestCallRefusal(t *testing.T) {
	for name, op := range map[string]opFunc{
		"result": func(context.Context, *Institution, json.RawMessage) (any, error) {
			return map[string]any{"payOrdId": "ORD1", "ordStas": "4"}, &Refusal{Code: 2001, Message: "订单已结算"}
		},
		"refusal's data": func(context.Context, *Institution, json.RawMessage) (any, error) {
			return nil, fmt.Errorf("settle: %w", &Refusal{Code: 2001, Message: "订单已结算", Data: json.RawMessage(`{"payOrdId":"ORD1","ordStas":"4"}`)})
		},
	} {
		b := newBureau(t, op)
		err := b.client().Call(context.Background(), "pay_order", settleRequest(), nil)
		var r *Refusal
		if !errors.As(err, &r) || errors.Is(err, ErrNoAnswer) {
			t.Fatalf("%s: err = %v, want a refusal", name, err)
		}
		if r.Code != 2001 || r.Message != "订单已结算" || string(r.Data) != `{"ordStas":"4","payOrdId":"ORD1"}` {
			t.Fatalf("%s: refusal %+v %s", name, r, r.Data)
		}
	}
	// Without data.
	b := newBureau(t, func(context.Context, *Institution, json.RawMessage) (any, error) {
		return nil, &Refusal{Code: 2002, Message: "无此订单"}
	})
	err := b.client().Call(context.Background(), "query_order_info", settleRequest(), nil)
	var r *Refusal
	if !errors.As(err, &r) || r.Code != 2002 || r.Data != nil {
		t.Fatalf("err = %v", err)
	}
}

// refused runs a call and wants an envelope refusal with code, fn never called.
func refused(t testing.TB, b *bureau, c *Client, data any, code int) {
	t.Helper()
	before := b.calls.Load()
	err := c.Call(context.Background(), "pay_order", data, nil)
	var r *Refusal
	if !errors.As(err, &r) || r.Code != code || errors.Is(err, ErrNoAnswer) {
		t.Fatalf("err = %v, want refusal %d", err, code)
	}
	if b.calls.Load() != before {
		t.Fatal("the operation ran for a refused request")
	}
}

func TestStaleTimestamp(t *testing.T) {
	b := newBureau(t, echo)
	for _, skew := range []time.Duration{-5*time.Minute - time.Second, 5*time.Minute + time.Second, -time.Hour, 24 * time.Hour} {
		c := b.client()
		c.Now = func() time.Time { return testNow.Add(skew) }
		refused(t, b, c, settleRequest(), CodeStaleTimestamp)
	}
	for _, skew := range []time.Duration{-5 * time.Minute, 5 * time.Minute} { // the edges are inside
		c := b.client()
		c.Now = func() time.Time { return testNow.Add(skew) }
		if err := c.Call(context.Background(), "pay_order", settleRequest(), nil); err != nil {
			t.Fatalf("skew %v: %v", skew, err)
		}
	}
}

func TestReplay(t *testing.T) {
	b := newBureau(t, echo)
	env, err := Seal(testAppID, testAppSecret, instKey(t), settleRequest(), nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(env)
	status, first := b.post(body)
	if status != 200 || *first.Code != 0 {
		t.Fatalf("first: HTTP %d code %d %s", status, *first.Code, first.Message)
	}
	status, second := b.post(body)
	if status != 200 || *second.Code != CodeReplay || *second.Success || second.EncData != "" {
		t.Fatalf("second: HTTP %d %+v", status, second)
	}
	if _, err := Open(second, "", &bureauKey(t).PublicKey); err != nil {
		t.Fatalf("replay refusal does not verify: %v", err)
	}
	if b.calls.Load() != 1 {
		t.Fatalf("operation ran %d times", b.calls.Load())
	}
	// Through the client: a proxy that delivers the request twice. The second answer says the
	// bureau already had the request, so the outcome is unknown, not refused.
	c := b.client()
	c.HTTP = &http.Client{Transport: twice{b.srv.Client().Transport}}
	err = c.Call(context.Background(), "pay_order", settleRequest(), nil)
	var r *Refusal
	if !errors.Is(err, ErrNoAnswer) || errors.As(err, &r) {
		t.Fatalf("duplicated delivery: %v", err)
	}
	if b.calls.Load() != 2 {
		t.Fatalf("operation ran %d times", b.calls.Load())
	}
}

// twice sends each request two times and returns the second answer.
type twice struct{ next http.RoundTripper }

func (d twice) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	for i := 0; ; i++ {
		c := r.Clone(r.Context())
		c.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := d.next.RoundTrip(c)
		if i == 1 || err != nil {
			return resp, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestMemoryReplay(t *testing.T) {
	m := &MemoryReplay{}
	ctx := context.Background()
	seen := func(app, sig string, at time.Duration) bool {
		r, err := m.Remember(ctx, app, sig, testNow.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if seen("A", "s1", 0) {
		t.Fatal("first sight is a replay")
	}
	if !seen("A", "s1", 9*time.Minute+59*time.Second) {
		t.Fatal("forgotten within 10 minutes")
	}
	if seen("B", "s1", time.Minute) || seen("A", "s2", time.Minute) {
		t.Fatal("another app or signature counts as a replay")
	}
	if seen("A", "s1", 10*time.Minute) {
		t.Fatal("remembered past 10 minutes")
	}
	seen("C", "s", 30*time.Minute) // sweeps: the pairs seen 20 minutes and more ago go
	if len(m.seen) != 1 {
		t.Fatalf("%d pairs kept", len(m.seen))
	}
}

func TestEnvelopeRefusals(t *testing.T) {
	b := newBureau(t, echo)

	c := b.client()
	c.AppID = "UNKNOWNAPP0000000001"
	refused(t, b, c, settleRequest(), CodeUnknownApp)

	c = b.client()
	c.PrivateKey = otherKey(t)
	refused(t, b, c, settleRequest(), CodeBadSignature)

	// A wrong secret: the bureau cannot decrypt, and the client can still read why.
	c = b.client()
	c.AppSecret = "another-secret-0123456789abcdefX"
	refused(t, b, c, settleRequest(), CodeUndecryptable)

	refused(t, b, b.client(), map[string]any{"blob": strings.Repeat("x", DefaultMaxBody)}, CodeTooLarge)

	for name, body := range map[string]string{
		"not JSON":        `{"appId":`,
		"no appId":        `{"encType":"SM4","signType":"SM2","timestamp":"20261130120000","signData":"AA=="}`,
		"wrong encType":   `{"appId":"` + testAppID + `","encType":"AES","signType":"SM2","timestamp":"20261130120000","signData":"AA=="}`,
		"no signData":     `{"appId":"` + testAppID + `","encType":"SM4","signType":"SM2","timestamp":"20261130120000"}`,
		"bad timestamp":   `{"appId":"` + testAppID + `","encType":"SM4","signType":"SM2","timestamp":"2026-11-30","signData":"AA=="}`,
		"short signature": `{"appId":"` + testAppID + `","encType":"SM4","signType":"SM2","timestamp":"20261130120000","signData":"AA=="}`,
	} {
		status, env := b.post([]byte(body))
		want := CodeMalformed
		if name == "short signature" {
			want = CodeBadSignature
		}
		if status != 200 || env.Code == nil || *env.Code != want || *env.Success {
			t.Errorf("%s: HTTP %d %+v", name, status, env)
			continue
		}
		if _, err := Open(env, "", &bureauKey(t).PublicKey); err != nil {
			t.Errorf("%s: refusal does not verify: %v", name, err)
		}
	}
	resp, err := b.srv.Client().Get(b.srv.URL + RoutePrefix + "pay_order")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: HTTP %d", resp.StatusCode)
	}
	if b.calls.Load() != 0 {
		t.Fatalf("operation ran %d times", b.calls.Load())
	}
}

func TestInternalError(t *testing.T) {
	b := newBureau(t, func(context.Context, *Institution, json.RawMessage) (any, error) {
		return nil, errors.New("database down")
	})
	err := b.client().Call(context.Background(), "pay_order", settleRequest(), nil)
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "1500") {
		t.Fatalf("err = %v", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	finished := make(chan error, 1)
	b := newBureau(t, func(ctx context.Context, inst *Institution, data json.RawMessage) (any, error) {
		entered <- struct{}{}
		<-release // held until the test lets go, whatever the client does
		finished <- ctx.Err()
		return echo(ctx, inst, data)
	})
	c := b.client()
	c.Timeout = 50 * time.Millisecond
	err := c.Call(context.Background(), "pay_order", settleRequest(), nil)
	if !errors.Is(err, ErrNoAnswer) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	<-entered // the bureau did receive it: the outcome is truly unknown
	release <- struct{}{}
	if err := <-finished; err != nil {
		t.Fatalf("the operation's context ended with the caller's: %v", err)
	}
	t.Cleanup(func() { close(release) }) // runs before the server's Close

	// The caller's own cancellation is no answer either.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c.Timeout = 0
	go func() { done <- c.Call(ctx, "pay_order", settleRequest(), nil) }()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, ErrNoAnswer) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestAnswersThatDoNotOpen(t *testing.T) {
	// A bureau signing with a key the client does not expect.
	b := newBureau(t, echo)
	b.handler.BureauKey = otherKey(t)
	for _, data := range []any{settleRequest(), map[string]any{"blob": strings.Repeat("x", DefaultMaxBody)}} {
		if err := b.client().Call(context.Background(), "pay_order", data, nil); !errors.Is(err, ErrNoAnswer) {
			t.Fatalf("answer signed with the wrong key: %v", err)
		}
	}

	// An old answer: the bureau's clock (and the answer) 10 minutes ahead of the client.
	b = newBureau(t, echo)
	b.handler.Window = time.Hour
	b.handler.Now = func() time.Time { return testNow.Add(10 * time.Minute) }
	if err := b.client().Call(context.Background(), "pay_order", settleRequest(), nil); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("stale answer: %v", err)
	}

	// Hostile or broken answers.
	bk := bureauKey(t)
	sealed := func(appID, secret string, ans *Answer) []byte {
		env, err := Seal(appID, secret, bk, map[string]any{"ordStas": "4"}, ans, testNow)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		return b
	}
	otherApp := "FFFF0000FFFF0000FFFF0000FFFF0000"
	noCode, _ := json.Marshal(func() *Envelope {
		e, _ := Seal(testAppID, testAppSecret, bk, map[string]any{"ordStas": "4"}, nil, testNow)
		return e
	}())
	for name, c := range map[string]struct {
		status int
		body   []byte
	}{
		"gateway error page":       {502, []byte("<html>Bad Gateway</html>")},
		"not JSON":                 {200, []byte("OK")},
		"for another app":          {200, sealed(otherApp, testAppSecret, &Answer{0, "成功", true})},
		"keyed with empty secret":  {200, sealed(testAppID, "", &Answer{0, "成功", true})},
		"without code or success":  {200, noCode},
		"good answer but HTTP 503": {503, sealed(testAppID, testAppSecret, &Answer{0, "成功", true})},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			w.Write(c.body)
		}))
		cl := &Client{BaseURL: srv.URL, AppID: testAppID, AppSecret: testAppSecret, PrivateKey: instKey(t), BureauKey: &bk.PublicKey, Now: func() time.Time { return testNow }}
		err := cl.Call(context.Background(), "pay_order", settleRequest(), nil)
		srv.Close()
		var r *Refusal
		if !errors.Is(err, ErrNoAnswer) || errors.As(err, &r) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Nobody listening.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cl := b.client()
	cl.BaseURL, cl.HTTP = url, nil
	if err := cl.Call(context.Background(), "pay_order", settleRequest(), nil); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("connection refused: %v", err)
	}
}
