package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"time"
)

// runVersion prints the module version and the revision the binary was built from, as the Go
// toolchain recorded them.
func runVersion(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("version", stdout)
	setUsage(fs, "usage: medpay version\n\nPrints the module version, the VCS revision and time the binary was built from, and the Go version.\n")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	fmt.Fprint(stdout, versionText())
	return nil
}

func versionText() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "medpay (no build information)\n"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	s := map[string]string{}
	for _, kv := range info.Settings {
		s[kv.Key] = kv.Value
	}
	out := fmt.Sprintf("medpay %s\n", version)
	if rev := s["vcs.revision"]; rev != "" {
		if s["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		out += fmt.Sprintf("revision %s\n", rev)
		if t, err := time.Parse(time.RFC3339, s["vcs.time"]); err == nil {
			out += fmt.Sprintf("committed %s\n", showTime(t)+" China time")
		}
	}
	out += fmt.Sprintf("go %s\n", info.GoVersion)
	return out
}
