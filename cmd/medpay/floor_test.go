package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// TestLoadtestFloor runs 'medpay loadtest floor', then loadtest against it with the command it
// printed, unchanged: unifiedorder and queryorder succeed, every answer's signature verified by
// the client; a wrong key is refused by the floor's own verification.
func TestLoadtestFloor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- run(ctx, []string{"loadtest", "floor", "--addr", "127.0.0.1:0"}, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	defer func() {
		cancel()
		go io.Copy(io.Discard, pr)
		if err := <-served; err != nil {
			t.Errorf("floor: %v", err)
		}
	}()
	var command []string
	lines := bufio.NewScanner(pr)
	for command == nil && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "run: medpay "); ok {
			command = strings.Fields(rest)
		}
	}
	if command == nil {
		t.Fatalf("the floor printed no command to run (%v)", lines.Err())
	}
	go io.Copy(io.Discard, pr)

	loadtest := func(args ...string) loadReport {
		t.Helper()
		var out strings.Builder
		args = append(append(append([]string{}, command...), "-c", "8", "--json"), args...)
		if err := run(ctx, args, func(string) string { return "" }, &out, io.Discard); err != nil {
			t.Fatalf("medpay %s: %v", strings.Join(args, " "), err)
		}
		var rep loadReport
		if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		return rep
	}
	for _, mode := range []string{modeOrder, modeQuery} {
		if rep := loadtest("--mode", mode, "-n", "300"); rep.OK != 300 || rep.Errors != 0 {
			t.Errorf("%s against the floor: ok %d, errors %d (%v)", mode, rep.OK, rep.Errors, rep.ErrorKinds)
		}
	}
	keyAt := -1
	for i, a := range command {
		if a == "--key" {
			keyAt = i + 1
		}
	}
	if keyAt < 0 || keyAt >= len(command) {
		t.Fatalf("no --key in %v", command)
	}
	command[keyAt] = "00000000000000000000000000000000"
	rep := loadtest("--mode", modeOrder, "-n", "20", "-d", time.Minute.String())
	if rep.OK != 0 || rep.Errors != 20 || rep.ErrorKinds["FAIL 签名失败"] != 20 {
		t.Errorf("with a wrong key: ok %d, errors %d (%v)", rep.OK, rep.Errors, rep.ErrorKinds)
	}
}
