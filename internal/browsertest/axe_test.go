package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
)

// TestAxeFindsViolationsUnderStrictCSP: axe-core runs in a page whose
// policy lets no script run, finds what such a page gets wrong (no lang,
// an unlabelled field) and nothing on a page that gets it right.
func TestAxeFindsViolationsUnderStrictCSP(t *testing.T) {
	pages := map[string]string{
		"/bad":  `<!doctype html><title>t</title><main><input id="q"></main>`,
		"/good": `<!doctype html><html lang="en"><title>Search</title><main><h1>Search</h1><label for="q">Query</label><input id="q"></main></html>`,
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		_, _ = w.Write([]byte(pages[r.URL.Path]))
	}))
	defer ts.Close()
	ctx := browsertest.New(t)
	for path, want := range map[string][]string{"/bad": {"html-has-lang", "label"}, "/good": nil} {
		if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+path)); err != nil {
			t.Fatal(err)
		}
		got, err := browsertest.Axe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, v := range got {
			ids = append(ids, v.ID)
		}
		if strings.Join(ids, " ") != strings.Join(want, " ") {
			t.Errorf("%s: violations %v, want %v", path, got, want)
		}
	}
}
