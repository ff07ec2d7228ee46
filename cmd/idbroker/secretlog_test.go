package main

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAccessLogShowsNoLinkToken: the links that carry their credential in
// the path (an operator's enrolment link, valid for days; a portal link)
// are logged with that part redacted, at every level: whoever reads the
// broker's logs (a log pipeline, a support engineer) could otherwise open
// them before the person they were sent to.
func TestAccessLogShowsNoLinkToken(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))
	b := startBroker(t, map[string]string{envDatabaseURL: db, envBootstrapAPIKey: e2eBootstrapKey, envLogLevel: "debug"})

	out, errOut, code := runInProcess("operator", "create", "--email", "ops@vendor.example", "--issuer", b.base, "--database-url", db)
	enrol := regexp.MustCompile(regexp.QuoteMeta(b.base) + `/console/enrol/[A-Za-z0-9_-]+`).FindString(out + errOut)
	if code != exitOK || enrol == "" {
		t.Fatalf("operator create: %d\n%s%s", code, out, errOut)
	}
	var tenant struct{ ID string }
	if st := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Acme"}, &tenant); st != http.StatusCreated {
		t.Fatalf("create tenant: %d", st)
	}
	var link struct{ URL string }
	if st := b.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": tenant.ID, "intent": "sso"}, &link); st != http.StatusCreated {
		t.Fatalf("create portal link: %d", st)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, u := range []string{enrol, enrol + "/qr.png", link.URL, link.URL} { // the second portal visit: a used link
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("GET %s = %d", u, resp.StatusCode)
		}
	}
	logs := b.output.String()
	for _, u := range []string{enrol, link.URL} {
		token := u[strings.LastIndexByte(u, '/')+1:]
		if strings.Contains(logs, token) {
			t.Errorf("the log holds the token of %s:\n%s", u, logs)
		}
	}
	for _, want := range []string{"path=/console/enrol/[redacted]/qr.png", "path=/portal/link/[redacted]"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no access log line with %s:\n%s", want, logs)
		}
	}
}
