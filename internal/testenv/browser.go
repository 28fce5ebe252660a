package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BrowserEnv names the Chromium executable for browser tests (e.g. MEDPAY_TEST_BROWSER=chromium);
// without it browser tests are reported as skipped, never as passed.
const BrowserEnv = "MEDPAY_TEST_BROWSER"

// Browser is a headless Chromium with a phone-sized window, for one test.
type Browser struct {
	t   testing.TB
	Ctx context.Context
}

// NewBrowser starts Chromium for t, stopped at cleanup; the whole test has a minute.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	return NewBrowserFor(t, 60*time.Second)
}

// NewBrowserFor is NewBrowser for a longer walk through many pages, bounded by limit.
func NewBrowserFor(t testing.TB, limit time.Duration) *Browser {
	t.Helper()
	exe := os.Getenv(BrowserEnv)
	if exe == "" {
		t.Skip(BrowserEnv + " not set (e.g. " + BrowserEnv + "=chromium)")
	}
	if _, err := exec.LookPath(exe); err != nil {
		t.Fatalf("%s=%s: %v", BrowserEnv, exe, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// The machine's network is closed: no background connections.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(390, 844), // a phone
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, limit)
	t.Cleanup(cancel3)
	return &Browser{t: t, Ctx: ctx}
}

// Do runs actions, failing the test on error.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

// Text returns the text of the element sel, without surrounding white space.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("%s: %v", sel, err)
	}
	return strings.TrimSpace(v)
}
