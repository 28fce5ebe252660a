package main

import (
	"bytes"
	"errors"
	"flag"
	"os/exec"
	"strings"
	"testing"
)

// commands lists every command and subcommand of the program.
var commands = [][]string{
	{}, {"help"},
	{"serve"},
	{"merchant"}, {"merchant", "create"}, {"merchant", "list"}, {"merchant", "show"},
	{"provider"}, {"provider", "create"}, {"provider", "list"}, {"provider", "authorize"}, {"provider", "revoke"},
	{"notify"}, {"notify", "list"}, {"notify", "show"}, {"notify", "resend"}, {"notify", "receive"},
	{"reconcile"},
	{"server-key"}, {"server-key", "rotate"},
	{"version"},
	{"token"},
	{"order"}, {"order", "create"}, {"order", "query"}, {"order", "close"},
	{"refund"}, {"refund", "create"}, {"refund", "query"},
	{"sign"}, {"loadtest"}, {"loadtest", "floor"},
	{"sandbox"}, {"sandbox", "persons"}, {"sandbox", "bind"}, {"sandbox", "confirm"}, {"sandbox", "paycode"},
}

// TestHelp runs the real binary: -h and --help print the same usage on stdout, nothing on
// stderr, and exit 0, for every command and subcommand.
func TestHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binary(t)
	for _, c := range commands {
		var outs []string
		for _, h := range []string{"-h", "--help"} {
			cmd := exec.Command(bin, append(append([]string{}, c...), h)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Errorf("medpay %s %s: %v, stderr %q", strings.Join(c, " "), h, err, stderr.String())
				continue
			}
			if stderr.Len() > 0 {
				t.Errorf("medpay %s %s wrote on stderr: %q", strings.Join(c, " "), h, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), "usage:") {
				t.Errorf("medpay %s %s printed %q", strings.Join(c, " "), h, stdout.String())
			}
			outs = append(outs, stdout.String())
		}
		if len(outs) == 2 && outs[0] != outs[1] {
			t.Errorf("medpay %s: -h and --help differ", strings.Join(c, " "))
		}
	}
}

// TestHelpMarksRequiredFlags: the usage says which flags a command cannot do without.
func TestHelpMarksRequiredFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		flags []string
	}{
		{[]string{"merchant", "create"}, []string{"--name", "--city"}},
		{[]string{"provider", "create"}, []string{"--name"}},
		{[]string{"provider", "authorize"}, []string{"--provider", "--merchant"}},
		{[]string{"notify", "receive"}, []string{"--addr"}},
		{[]string{"sign"}, []string{"--key"}},
		{[]string{"order", "create"}, []string{"--total-fee", "--appid", "--mch-id", "--key", "--secret"}},
		{[]string{"refund", "create"}, []string{"--refund-no"}},
	} {
		var out bytes.Buffer
		err := run(t.Context(), append(tc.args, "-h"), func(string) string { return "" }, &out, &out)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, f := range tc.flags {
			i := strings.Index(out.String(), "\n  "+f+" ")
			if i < 0 {
				t.Errorf("medpay %v -h does not list %s", tc.args, f)
				continue
			}
			rest := out.String()[i+1:]
			if !strings.Contains(strings.SplitN(rest, "\n", 3)[1], "required") {
				t.Errorf("medpay %v -h does not mark %s required", tc.args, f)
			}
		}
	}
}

// TestErrorsPrintedOnce: a bad flag is reported once, by main, with a pointer to the help.
func TestErrorsPrintedOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, args := range [][]string{{"serve", "--bogus"}, {"merchant", "create", "--level", "x"}, {"order", "query", "--nope"}, {"frobnicate"}, {"order", "frobnicate"}} {
		cmd := exec.Command(binary(t), args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("medpay %v: %v, want exit status 1", args, err)
		}
		if n := strings.Count(stderr.String(), "medpay:"); n != 1 {
			t.Errorf("medpay %v: the error is printed %d times:\n%s", args, n, stderr.String())
		}
		if stdout.Len() > 0 {
			t.Errorf("medpay %v wrote on stdout: %q", args, stdout.String())
		}
	}
}

func TestVersion(t *testing.T) {
	out := mustCLI(t, "version")
	if !strings.HasPrefix(out, "medpay ") || !strings.Contains(out, "\ngo go1.") {
		t.Errorf("version printed %q", out)
	}
}
