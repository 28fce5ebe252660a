package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/wire"
)

// medpay loadtest floor serves the cost that every open API call must pay and nothing more: it
// decodes the XML, verifies the signature with the one merchant's key and signs an answer, with
// the project's own wire package, and stores nothing. loadtest run against it measures what this
// machine (and the load client sharing it) can do at best; medpay's own figures are read against
// it (issue 13 asks for unifiedorder at 0.6 times the floor's throughput, p99 within twice its p99).
//
// It answers what loadtest's unifiedorder and queryorder modes send: the access token
// (/cgi-bin/token, and /payinsurance/gettoken for a service provider), unifiedorder and queryorder
// (orderquery). Every other path is 404, so the cycle mode does not run against it.

// floorServer is the floor's handler, for one merchant.
type floorServer struct {
	creds medpay.Credentials
	token string
	seq   atomic.Int64
}

func newFloor(creds medpay.Credentials) *floorServer {
	return &floorServer{creds: creds, token: secret.Token()}
}

func (f *floorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/cgi-bin/token":
		f.cgiToken(w, r)
	case "/payinsurance/gettoken":
		f.providerToken(w, r)
	case "/payinsurance/unifiedorder":
		f.api(w, r, f.unifiedOrder)
	case "/payinsurance/queryorder", "/payinsurance/orderquery":
		f.api(w, r, f.queryOrder)
	default:
		http.NotFound(w, r)
	}
}

func (f *floorServer) secretOK(appid, secretText string) bool {
	return appid == f.creds.AppID && subtle.ConstantTimeCompare([]byte(secretText), []byte(f.creds.Secret)) == 1
}

func (f *floorServer) cgiToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if q.Get("grant_type") != "client_credential" || !f.secretOK(q.Get("appid"), q.Get("secret")) {
		json.NewEncoder(w).Encode(map[string]any{"errcode": 40125, "errmsg": "invalid appid or appsecret"})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"access_token": f.token, "expires_in": int(medpay.TokenTTL.Seconds())})
}

func (f *floorServer) providerToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	m := wire.NewMessage()
	m.Set("return_code", "SUCCESS")
	m.Set("return_msg", "OK")
	if !f.secretOK(q.Get("appid"), q.Get("secret")) {
		m.Set("result_code", "FAIL")
		m.Set("err_code", medpay.ErrBadSecret)
		m.Set("err_code_des", medpay.ErrorMessage(medpay.Errorf(medpay.ErrBadSecret, "")))
	} else {
		m.Set("result_code", "SUCCESS")
		m.Set("access_token", f.token)
		m.Set("expires_in", strconv.Itoa(int(medpay.TokenTTL.Seconds())))
	}
	w.Write(m.Bytes())
}

// api is the envelope every call pays for: method, token, XML, signature, and the signed answer.
func (f *floorServer) api(w http.ResponseWriter, r *http.Request, fn func(req, resp *wire.Message)) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fail := func(reason string) {
		m := wire.NewMessage()
		m.Set("return_code", "FAIL")
		m.Set("return_msg", reason)
		w.Write(m.Bytes())
	}
	if r.Method != http.MethodPost {
		fail("请使用POST方法")
		return
	}
	if r.URL.Query().Get("access_token") != f.token {
		fail("access_token无效或已过期")
		return
	}
	req, err := wire.Decode(r.Body)
	if err != nil {
		if !errors.Is(err, wire.ErrTooLarge) {
			err = wire.ErrMalformed
		}
		fail(err.Error())
		return
	}
	if req.Get("appid") != f.creds.AppID || req.Get("mch_id") != f.creds.MchID {
		fail("mch_id参数错误")
		return
	}
	if !wire.Verify(req, f.creds.APIKey) {
		fail("签名失败")
		return
	}
	m := wire.NewMessage()
	m.Set("return_code", "SUCCESS")
	m.Set("return_msg", "OK")
	m.Set("appid", f.creds.AppID)
	m.Set("mch_id", f.creds.MchID)
	m.Set("nonce_str", wire.Nonce())
	m.Set("result_code", "SUCCESS")
	fn(req, m)
	if st := req.Get("sign_type"); st != "" {
		m.Set("sign_type", st)
	}
	if err := wire.SignInPlace(m, f.creds.APIKey); err != nil {
		fail("系统错误")
		return
	}
	w.Write(m.Bytes())
}

func (f *floorServer) unifiedOrder(req, m *wire.Message) {
	id := "F" + strconv.FormatInt(time.Now().UnixMilli(), 10) + strconv.FormatInt(f.seq.Add(1), 10)
	m.Set("med_trans_id", id)
	m.Set("pay_type", req.Get("pay_type"))
	m.Set("cash_fee", req.Get("cash_fee"))
	m.Set("insurance_fee", req.Get("insurance_fee"))
	m.Set("pay_url", "http://floor.invalid/pay/"+id)
	m.Set("pay_appid", "wxmedpay0000000001")
	m.Set("code_url", "http://floor.invalid/pay/"+id+"/qr.png")
}

func (f *floorServer) queryOrder(req, m *wire.Message) {
	m.Set("med_trans_id", req.Get("med_trans_id"))
	m.Set("hosp_out_trade_no", req.Get("hosp_out_trade_no"))
	m.Set("med_trade_state", string(medpay.StateNotPay))
}

const floorUsage = `usage: medpay loadtest floor [--addr 127.0.0.1:18480]

Serves the no-storage floor: a server that only decodes the XML, verifies the signature and signs
an answer, the cost every open API call must pay (built from medpay's own wire package; it
stores nothing and checks no business field). It answers the access token, unifiedorder and
queryorder, for one merchant whose credentials it makes up and prints with the loadtest command
to run against it. What loadtest measures there is this machine's ceiling: compare medpay's
figures with it, taken the same way (same -c, -d, the client on the same cores).
`

func runLoadtestFloor(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("loadtest floor", stdout)
	setUsage(fs, floorUsage)
	addr := fs.String("addr", "127.0.0.1:18480", "listen address")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	creds := medpay.Credentials{AppID: "wxfloor" + secret.RandomString(11, "0123456789abcdef"),
		MchID: "1" + secret.RandomString(9, "0123456789"), APIKey: secret.APIKey(), Secret: secret.AppSecret()}
	srv := &http.Server{Handler: newFloor(creds), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "medpay loadtest floor serving on %s (stores nothing; pid %d)\n", base, os.Getpid())
	fmt.Fprintf(stdout, "run: medpay loadtest --base-url %s --appid %s --mch-id %s --key %s --secret %s\n",
		base, creds.AppID, creds.MchID, creds.APIKey, creds.Secret)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Nothing is kept, so nothing is lost by dropping the calls under way.
	return srv.Close()
}
