package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the binary the process tests built (tens of megabytes) when they end.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
