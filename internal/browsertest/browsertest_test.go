package browsertest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
)

func TestNewDrivesAPage(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!DOCTYPE html><title>t</title><p id="greeting">hello, browser</p>`))
	}))
	defer ts.Close()

	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("greeting")))
	if err != nil {
		t.Fatal(err)
	}
	if got != "hello, browser" {
		t.Fatalf("text = %q", got)
	}
	path := browsertest.Screenshot(t, ctx, t.TempDir(), "page.png")
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %q: %v", path, err)
	}
}

// TestDoRunsAgainAStepWhoseNodeWasReplaced: a step that failed on a
// replaced node runs again and the steps after it run; any other failure
// stops at once, and so does a stale node that never settles.
func TestDoRunsAgainAStepWhoseNodeWasReplaced(t *testing.T) {
	ctx := browsertest.New(t)
	failing := func(times int, msg string) (chromedp.Action[chromedp.Void], *int) {
		runs := 0
		return chromedp.Func(func(context.Context, *chromedp.Target) error {
			runs++
			if runs <= times {
				return errors.New(msg)
			}
			return nil
		}), &runs
	}
	const stale = "Could not find node with given id (-32000)"

	flaky, flakyRuns := failing(2, stale)
	after, afterRuns := failing(0, "")
	if err := browsertest.Do(ctx, flaky, after); err != nil {
		t.Fatalf("a step whose node was replaced twice: %v", err)
	}
	if *flakyRuns != 3 || *afterRuns != 1 {
		t.Errorf("runs = %d and %d, want 3 and 1", *flakyRuns, *afterRuns)
	}

	broken, brokenRuns := failing(1, "Node is not visible")
	after, afterRuns = failing(0, "")
	if err := browsertest.Do(ctx, broken, after); err == nil || *brokenRuns != 1 || *afterRuns != 0 {
		t.Errorf("another failure: err %v after %d runs and %d of the next step, want it at once", err, *brokenRuns, *afterRuns)
	}

	other, otherRuns := failing(1, "No node with given id found (-32000)")
	if err := browsertest.Do(ctx, other); err != nil || *otherRuns != 2 {
		t.Errorf("the other stale-node message: err %v after %d runs, want success after 2", err, *otherRuns)
	}

	gone, goneRuns := failing(100, stale)
	if err := browsertest.Do(ctx, gone); err == nil || *goneRuns != 5 {
		t.Errorf("a node that never comes back: err %v after %d runs, want an error after 5", err, *goneRuns)
	}
}
