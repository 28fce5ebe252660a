package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// serveMode starts medpay serve with args and returns the mode it announces ("sandbox" or
// "production"), then stops it.
func serveMode(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--addr", freeAddr(t)}, args...)...)
	cmd.Env = append(append(os.Environ(), "MEDPAY_SERVER_KEY="+strings.Repeat("ab", 32)), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if _, rest, ok := strings.Cut(line, "medpay serving on "); ok {
			_, mode, _ := strings.Cut(rest, "(")
			mode, _, _ = strings.Cut(mode, ",")
			return mode
		}
	}
	cmd.Wait()
	t.Fatalf("serve %v did not start: %s", args, stderr.String())
	return ""
}

// TestServeSandboxFlag checks that --sandbox is a boolean flag: given alone it turns the
// sandbox on, and left out the engine decides.
func TestServeSandboxFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	db := filepath.Join(t.TempDir(), "medpay.db")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--db", db}, "sandbox"},
		{[]string{"--sandbox", "--db", db}, "sandbox"},
		{[]string{"--db", db, "--sandbox"}, "sandbox"},
		{[]string{"--sandbox=false", "--db", db}, "production"},
		{[]string{"--db", db, "--sandbox=true"}, "sandbox"},
	}
	if os.Getenv(sqlstoretest.PostgresEnv) != "" {
		dsn := sqlstoretest.DSN(t, sqlstore.Postgres)
		cases = append(cases,
			struct {
				args []string
				want string
			}{[]string{"--db", dsn}, "production"},
			struct {
				args []string
				want string
			}{[]string{"--sandbox", "--db", dsn}, "sandbox"},
		)
	}
	var prod []string
	for _, c := range cases {
		var env []string
		if c.want == "production" {
			// Production mode starts only with remote counterparties.
			if prod == nil {
				prod = counterparties(t)
			}
			env = prod
		}
		if got := serveMode(t, env, c.args...); got != c.want {
			t.Errorf("serve %s: %s mode, want %s", strings.Join(c.args, " "), got, c.want)
		}
	}
}

// TestServeRefusesStrayArguments: '--sandbox true' reads as --sandbox and an argument, and flag
// parsing stops there; serve refuses to start rather than run without the flags that followed.
func TestServeRefusesStrayArguments(t *testing.T) {
	db := filepath.Join(t.TempDir(), "medpay.db")
	// Were the argument let through, serve would run until this context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := run(ctx, []string{"serve", "--db", db, "--sandbox", "true", "--addr", "127.0.0.1:0", "--log-level", "error"},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "true"`) || !strings.Contains(err.Error(), "--sandbox=true") {
		t.Fatalf("serve with a stray argument: %v", err)
	}
	if _, statErr := os.Stat(db); statErr == nil {
		t.Error("the database was created before the arguments were checked")
	}
}

func TestOptBool(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		def  bool
		want bool
	}{
		{nil, "", true, true},
		{nil, "", false, false},
		{[]string{"--sandbox"}, "", false, true},
		{[]string{"--sandbox=false"}, "", true, false},
		{[]string{"--sandbox=no"}, "", true, false},
		{nil, "true", false, true},
		{nil, "off", true, false},
		{[]string{"--sandbox"}, "false", false, true}, // the command line wins
	} {
		fs := newFlags("serve", &strings.Builder{})
		var b optBool
		fs.Var(&b, "sandbox", "")
		fs.String("db", "", "")
		env := func(k string) string {
			if k == "MEDPAY_SANDBOX" {
				return c.env
			}
			return ""
		}
		if err := parseFlags(fs, append(c.args, "--db", "x"), env); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := b.or(c.def); got != c.want {
			t.Errorf("%v env %q default %v: %v", c.args, c.env, c.def, got)
		}
	}
	fs := newFlags("serve", &strings.Builder{})
	var b optBool
	fs.Var(&b, "sandbox", "")
	if err := parseFlags(fs, []string{"--sandbox=maybe"}, func(string) string { return "" }); err == nil {
		t.Error("--sandbox=maybe accepted")
	}
}

// TestServeMetricsElsewhere: /metrics can move to an address of its own, or require a token.
func TestServeMetricsElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	get := func(url, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 && !strings.Contains(string(body), "medpay_notify_pending") {
			t.Errorf("%s: no metrics in %.200s", url, body)
		}
		return resp.StatusCode
	}
	dir := t.TempDir()
	metrics := freeAddr(t)
	p := serve(t, filepath.Join(dir, "a.db"), freeAddr(t), "MEDPAY_METRICS_ADDR="+metrics)
	if code := get(p.url+"/metrics", ""); code != 404 {
		t.Errorf("/metrics on the public address: %d, want 404", code)
	}
	if code := get("http://"+metrics+"/metrics", ""); code != 200 {
		t.Errorf("/metrics on --metrics-addr: %d", code)
	}
	p.stop(t)

	p = serve(t, filepath.Join(dir, "b.db"), freeAddr(t), "MEDPAY_METRICS_TOKEN=m3trics")
	for token, want := range map[string]int{"": 401, "wrong": 401, "m3trics": 200} {
		if code := get(p.url+"/metrics", token); code != want {
			t.Errorf("/metrics with token %q: %d, want %d", token, code, want)
		}
	}
	p.stop(t)
}
