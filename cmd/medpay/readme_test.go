package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// walkthrough returns the shell blocks of the README's section headed heading, in order.
func walkthrough(t *testing.T, heading string) []string {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "\n## "+heading)
	if i < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	text = text[i+1:]
	if j := strings.Index(text[3:], "\n## "); j >= 0 {
		text = text[:j+3]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 2 {
		t.Fatalf("the README's %q has %d shell blocks", heading, len(blocks))
	}
	return blocks
}

// lineWaiter collects a process's output lines and lets a test wait for one.
type lineWaiter struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced on every new line
	done  bool
}

func newLineWaiter(t *testing.T, r io.Reader) *lineWaiter {
	w := &lineWaiter{more: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if testing.Verbose() {
				t.Log(sc.Text())
			}
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			close(w.more)
			w.more = make(chan struct{})
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.done = true
		close(w.more)
		w.mu.Unlock()
	}()
	return w
}

// between returns the lines from index from up to (not including) to.
func (w *lineWaiter) between(from, to int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines[from:min(to, len(w.lines))]...)
}

// wait returns the first line from index from on that contains all of want, and its index.
func (w *lineWaiter) wait(t *testing.T, from int, want ...string) (string, int) {
	t.Helper()
	deadline := time.After(2 * time.Minute) // only against a hang: the normal path waits on lines
	for {
		w.mu.Lock()
		for i := from; i < len(w.lines); i++ {
			ok := true
			for _, s := range want {
				ok = ok && strings.Contains(w.lines[i], s)
			}
			if ok {
				w.mu.Unlock()
				return w.lines[i], i
			}
		}
		more, done := w.more, w.done
		w.mu.Unlock()
		if done {
			t.Fatalf("output ended without a line containing %q", want)
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("no line containing %q", want)
		}
	}
}

// TestREADMEWalkthrough runs the README's walkthrough as written, in a directory of its own with
// the medpay binary: the platform and the notification receiver as background terminals, the
// other blocks in one shell, and checks that both notifications arrive, signed and verified.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	if err := os.Symlink(binary(t), filepath.Join(dir, "medpay")); err != nil {
		t.Fatal(err)
	}
	addr, notifyAddr := freeAddr(t), freeAddr(t)
	env := []string{"MEDPAY_ADDR=" + addr, "MEDPAY_BASE_URL=http://" + addr}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MEDPAY_") {
			env = append(env, kv)
		}
	}
	start := func(script string) *lineWaiter {
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir, cmd.Env = dir, env
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		})
		return newLineWaiter(t, out)
	}

	// One shell plays the second terminal: each block is sent, then a marker echoed when it ends.
	sh := exec.Command("bash")
	sh.Dir, sh.Env = dir, env
	stdin, _ := sh.StdinPipe()
	out, _ := sh.StdoutPipe()
	sh.Stderr = sh.Stdout
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); sh.Wait() })
	shell := newLineWaiter(t, out)
	seen := 0
	// As in a terminal, "!" in double quotes is history expansion.
	if _, err := io.WriteString(stdin, "set -o history -o histexpand\n"); err != nil {
		t.Fatal(err)
	}

	var receiver *lineWaiter
	blocks := walkthrough(t, "Walkthrough")
	cardBlocks := len(blocks)
	blocks = append(blocks, walkthrough(t, "Card binding")...)
	for n, block := range blocks {
		block = strings.ReplaceAll(block, "127.0.0.1:9999", notifyAddr)
		var kept []string
		for _, line := range strings.Split(block, "\n") {
			if !strings.HasPrefix(line, "go build ") { // the test brings the binary
				kept = append(kept, line)
			}
		}
		block = strings.Join(kept, "\n")
		switch {
		case strings.Contains(block, "./medpay serve"):
			srv := start("exec " + strings.TrimSpace(block))
			srv.wait(t, 0, "medpay serving on http://"+addr)
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		case strings.Contains(block, "notify receive"):
			receiver = start(block)
			receiver.wait(t, 0, "listening for notifications on http://"+notifyAddr)
		default:
			marker := "__block_done__"
			if _, err := io.WriteString(stdin, block+"\necho "+marker+" $?\n"); err != nil {
				t.Fatal(err)
			}
			line, i := shell.wait(t, seen, marker)
			if line != marker+" 0" {
				t.Fatalf("block %d failed (%s):\n%s", n+1, line, block)
			}
			if n >= cardBlocks { // the signed XML calls of the shell function: each must succeed
				calls, succeeded := 0, 0
				for _, l := range strings.Split(block, "\n") {
					if strings.HasPrefix(l, "call ") {
						calls++
					}
				}
				for _, l := range shell.between(seen, i) {
					if strings.Contains(l, "<result_code><![CDATA[SUCCESS]]></result_code>") {
						succeeded++
					}
				}
				if succeeded != calls {
					t.Fatalf("block %d: %d of its %d calls succeeded:\n%s\n%s", n+1, succeeded, calls, block, strings.Join(shell.between(seen, i), "\n"))
				}
			}
			seen = i + 1
		}
	}
	if receiver == nil {
		t.Fatal("the walkthrough starts no notification receiver")
	}
	_, i := receiver.wait(t, 0, "PAY notification", "signature verified")
	receiver.wait(t, i, "med_trade_state", "SUCCESS")
	receiver.wait(t, i, "REFUND notification", "signature verified")
	if _, err := os.Stat(filepath.Join(dir, "hospital.env")); err != nil {
		t.Errorf("the walkthrough's credentials file: %v", err)
	}
}
