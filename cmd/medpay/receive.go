package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/medpay/medpay/wire"
)

const receiveUsage = `usage: medpay notify receive --addr ADDR [--key KEY] [--count N] [--json]

Listens for notifications as a hospital's notify_url would, and prints each one that arrives: the
time (China time), where from, whether its signature verifies with --key (the hospital's API key,
MEDPAY_KEY), and its fields. A notification that verifies (or any, without --key) is answered
SUCCESS, so the platform stops sending it; one whose signature fails is answered FAIL, and the
platform tries again later. Delivery is at least once: a notify_id seen before is marked "again".

Use http://ADDR/ (any path) as notify_url. With --count N it stops after N notifications answered
SUCCESS.
`

func notifyReceive(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("notify receive", stdout)
	setUsage(fs, receiveUsage)
	addr := fs.String("addr", "", "required: listen address, e.g. 127.0.0.1:9999")
	key := fs.String("key", "", "the API key that signs the notifications (verifies them)")
	count := fs.Int("count", 0, "stop after this many notifications answered SUCCESS (0: run until interrupted)")
	asJSON := fs.Bool("json", false, "print each notification as one JSON object per line")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *addr == "" {
		return errors.New("notify receive: --addr is required (e.g. --addr 127.0.0.1:9999)")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		ok   int
		done = make(chan struct{})
	)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		reply := func(status int, code, msg string) {
			m := wire.NewMessage()
			m.Set("return_code", code)
			m.Set("return_msg", msg)
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			w.WriteHeader(status)
			w.Write(m.Bytes())
		}
		if err != nil || r.Method != http.MethodPost {
			reply(http.StatusBadRequest, "FAIL", "POST a notification")
			return
		}
		m, err := wire.Decode(bytes.NewReader(body))
		mu.Lock()
		defer mu.Unlock()
		at := showTime(time.Now())
		if err != nil {
			fmt.Fprintf(stdout, "%s from %s: not a notification (%v)\n", at, r.RemoteAddr, err)
			reply(http.StatusBadRequest, "FAIL", "not XML")
			return
		}
		verdict, accept := "not verified (no --key)", true
		if *key != "" {
			if wire.Verify(m, *key) {
				verdict = "signature verified"
			} else {
				verdict, accept = "SIGNATURE DOES NOT VERIFY with --key: answered FAIL", false
			}
		}
		id := m.Get("notify_id")
		again := ""
		if seen[id] {
			again = " (again)"
		}
		if *asJSON {
			keys := append([]string{"received_at", "signature"}, m.Keys()...)
			extra := map[string]string{"received_at": time.Now().In(wire.CST).Format(time.RFC3339), "signature": verdict}
			printJSONObject(stdout, keys, func(k string) string {
				if v, ok := extra[k]; ok {
					return v
				}
				return m.Get(k)
			})
		} else {
			fmt.Fprintf(stdout, "── %s notification %s%s at %s (China time) from %s: %s\n", m.Get("notify_type"), id, again, at, r.RemoteAddr, verdict)
			printAnswer(stdout, m, false)
			fmt.Fprintln(stdout)
		}
		if !accept {
			reply(http.StatusBadRequest, "FAIL", "signature does not verify")
			return
		}
		reply(http.StatusOK, "SUCCESS", "OK")
		seen[id] = true
		ok++
		if *count > 0 && ok == *count {
			close(done)
		}
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if !*asJSON {
		fmt.Fprintf(stdout, "listening for notifications on http://%s/ (Ctrl-C to stop)\n", listenURLHost(ln.Addr()))
	}
	select {
	case err = <-errc:
		return err
	case <-ctx.Done():
	case <-done:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

// listenURLHost is the host:port to reach a listener bound to addr: a wildcard address is shown
// as the loopback one.
func listenURLHost(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
}
