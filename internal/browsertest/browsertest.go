// Package browsertest gives tests a real headless Chromium driven by
// chromedp. Like internal/testdb, a missing browser skips the test on a
// laptop and fails it when CI=true: in CI a browser test that did not run is
// a broken build, never a pass.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/testdb"
)

// timeout bounds a whole browser test: a hung page must fail the test, not
// stall the suite. It is generous because CI machines are shared: a slow
// test must not fail for being slow: the accessibility walk of every
// portal page took 98 s on a 2-core machine at load 16.
const timeout = 3 * time.Minute

// execPath returns the Chromium (or Chrome) binary the tests use: the one
// named by IDBROKER_TEST_CHROMIUM, else the first of chromium,
// chromium-browser, google-chrome on PATH. It returns "" if there is none.
func execPath() string {
	if p := os.Getenv("IDBROKER_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a fresh headless Chromium with its own profile directory and a
// 1280×900 window, and returns a chromedp context for one tab in it, bounded
// by a 3-minute timeout. The browser is closed when t ends. extra adds to the
// browser's options (IgnoreCertificateErrors for an httptest TLS server).
func New(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := execPath()
	if path == "" {
		testdb.Unavailable(t, "chromium not found on PATH (or IDBROKER_TEST_CHROMIUM)")
		return nil
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root in a container
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.WindowSize(1280, 900),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)

	// chromedp logs from its own goroutines; once t has ended, t.Logf
	// would panic, so the logger goes quiet first.
	l := &logger{t: t}
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(l.logf), chromedp.WithLogf(l.logf))

	// The first Run starts the browser and binds its life to this context:
	// it must carry no timeout (see chromedp.Run).
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		testdb.Unavailable(t, "start %s: %v", path, err)
		return nil
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelBrowser() // closes the browser and waits for it
		cancelAlloc()
		l.stop()
	})
	return ctx
}

// IgnoreCertificateErrors lets the browser of New trust any TLS
// certificate: for pages served by an httptest TLS server, whose
// certificate no CA signed. Chromium still treats such an origin as
// secure (Secure and __Host- cookies are kept).
var IgnoreCertificateErrors = chromedp.Flag("ignore-certificate-errors", true)

// NewTab opens a tab of ctx's browser in a fresh browser context — its own
// cookies and storage, like a second incognito window — so that one test can
// act as several users, or start over signed out. It closes when t ends.
func NewTab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tctx, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("browsertest: new tab: %v", err)
	}
	return tctx
}

// Screenshot saves a full-page PNG of ctx's tab to dir/name and returns its
// path. A failure is logged, not fatal: a screenshot is evidence, not the
// test.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("browsertest: screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Logf("browsertest: screenshot %s: %v", name, err)
		return ""
	}
	return path
}

type logger struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *logger) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("chromedp: "+format, args...)
	}
}

func (l *logger) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// staleNodes are Chromium's answers to an action on a node of a document
// that has just been replaced: chromedp found the node, then a navigation
// (or a late DOM event on a loaded machine) took it away before the action
// reached it. Which one comes depends on the DevTools method that met it.
var staleNodes = []string{"Could not find node with given id", "No node with given id found"}

func isStale(err error) bool {
	for _, m := range staleNodes {
		if strings.Contains(err.Error(), m) {
			return true
		}
	}
	return false
}

// Do runs steps in ctx's tab like chromedp.Do, and runs again a step that
// failed on a node replaced under it. Such a step did nothing in the page
// (its node was not found, so no click or key reached it), and its next
// run selects the node afresh, so a slow machine cannot fail a test by
// the driver's race; any other failure is returned at once.
func Do(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	for _, step := range steps {
		for attempt := 1; ; attempt++ {
			err := chromedp.Do(ctx, step)
			if err == nil {
				break
			}
			if attempt == 5 || !isStale(err) {
				return err
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
