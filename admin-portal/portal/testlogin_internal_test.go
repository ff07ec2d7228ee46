package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// failingTests is a store whose test-login records cannot be written.
type failingTests struct {
	Store
	err error
}

func (f failingTests) SaveConnectionTest(context.Context, store.ConnectionTest) error { return f.err }

// TestUnsavedTestLoginIsAPortalPage: a test login whose result cannot be
// saved ends on the portal's HTML page, with its headers: 503 and
// Retry-After when the database is out of reach, 500 otherwise. It was a
// bare text/plain 503 (without Retry-After) whatever the cause.
func TestUnsavedTestLoginIsAPortalPage(t *testing.T) {
	db := storetest.SQLite(t)
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		retryAfter bool
	}{
		{"database down", fmt.Errorf("save: %w", store.ErrUnavailable), http.StatusServiceUnavailable, true},
		{"bug", errors.New("nil map"), http.StatusInternalServerError, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(Config{Issuer: "https://id.example.com", Store: failingTests{Store: db, err: tc.err}, Product: "Acme HR"})
			if err != nil {
				t.Fatal(err)
			}
			complete := p.Complete(func(context.Context, http.ResponseWriter, *http.Request, store.Connection, connections.Result, error) {
				t.Fatal("a test login reached the broker")
			})
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/sso/saml/conn_x/acs", nil)
			complete(context.Background(), rec, req, store.Connection{ID: "conn_x", TenantID: "tnt_x"},
				connections.Result{RequestID: "portal-test:1"}, connections.ErrSignature)
			hd := rec.Header()
			if rec.Code != tc.status || !strings.HasPrefix(hd.Get("Content-Type"), "text/html") ||
				!strings.Contains(hd.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Fatalf("answer %d %v\n%s", rec.Code, hd, rec.Body)
			}
			if got := hd.Get("Retry-After") != ""; got != tc.retryAfter {
				t.Errorf("Retry-After %q", hd.Get("Retry-After"))
			}
			if !strings.Contains(rec.Body.String(), "start the test again") {
				t.Errorf("the page does not say what to do:\n%s", rec.Body)
			}
		})
	}
}

// TestFailedTestSaysFieldsInTheFormsWords: a test login's failure reason
// names the settings as step 2's form does, not by the API's field
// names, and leaves the names of client authentication methods whole.
func TestFailedTestSaysFieldsInTheFormsWords(t *testing.T) {
	err := fmt.Errorf("%w: the token endpoint https://idp.example/token refused the connection's client credentials (invalid_client); check client_id and client_secret, and that the IdP accepts client_secret_basic or client_secret_post", connections.ErrConfig)
	got := failedTest(time.Now(), err, "")
	want := "The token endpoint https://idp.example/token refused the connection's client credentials (invalid_client); check the client ID and the client secret, and that the IdP accepts client_secret_basic or client_secret_post."
	if got.Reason != want || got.Check != "Configuration" {
		t.Errorf("reason\n %q\nwant\n %q (check %q)", got.Reason, want, got.Check)
	}
}
