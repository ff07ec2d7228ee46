package main

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleSignInIsRateLimited: the console's sign-in posts from one
// address are limited before anything is checked (each costs a password
// hash, and each made-up email a count the session store keeps a day):
// past the budget the console's own 429 page, with Retry-After.
func TestConsoleSignInIsRateLimited(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))
	b := startBroker(t, map[string]string{envDatabaseURL: db})
	post := func() *http.Response {
		resp, err := http.PostForm(b.base+"/console/signin", url.Values{"email": {"nobody@vendor.example"}, "password": {"x"}, "code": {"123456"}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := range consoleSignInRule.Limit {
		resp := post()
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden { // no CSRF token: refused, but counted
			t.Fatalf("post %d = %d, want 403", i+1, resp.StatusCode)
		}
	}
	resp := post()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("post over the budget = %d, headers %v:\n%s", resp.StatusCode, resp.Header, body)
	}
}
