package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the binary the process tests built (tens of megabytes) when they end.
// The developer commands' token cache goes to a directory of the run's own, not the user's.
func TestMain(m *testing.M) {
	cache, err := os.MkdirTemp("", "medpay-cache")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", cache)
	code := m.Run()
	os.RemoveAll(cache)
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
