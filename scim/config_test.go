package scim_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// TestNewTakesAnHTTPSIssuer: production issuers are https; the tests
// otherwise only ever pass httptest's http one.
func TestNewTakesAnHTTPSIssuer(t *testing.T) {
	st := backends[0].open(t)
	srv, err := scim.New(scim.Config{Issuer: "https://id.example.com/", Store: st, Sessions: sessions.NewMemory()})
	if err != nil {
		t.Fatalf("https issuer refused: %v", err)
	}
	if got, want := srv.BaseURL("dir_1"), "https://id.example.com/scim/v2/dir_1"; got != want {
		t.Fatalf("BaseURL = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "ftp://id.example.com", "https://", "id.example.com"} {
		if _, err := scim.New(scim.Config{Issuer: bad, Store: st, Sessions: sessions.NewMemory()}); err == nil {
			t.Errorf("issuer %q accepted", bad)
		}
	}
}

// recordingRevoker is the node's own Revoker as cmd/idbroker passes it:
// the server must use it, not build another over the store.
type recordingRevoker struct {
	next scim.Revoker
	mu   sync.Mutex
	got  []store.Revocation
}

func (r *recordingRevoker) Apply(ctx context.Context, revs ...store.Revocation) ([]sessions.Session, error) {
	r.mu.Lock()
	r.got = append(r.got, revs...)
	r.mu.Unlock()
	return r.next.Apply(ctx, revs...)
}

// TestConfiguredRevokerAndLoggerAreUsed: a deprovisioning goes through
// the Revoker and is logged to the Logger given in Config.
func TestConfiguredRevokerAndLoggerAreUsed(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		ss := sessions.NewMemory()
		inner, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: ss})
		if err != nil {
			t.Fatal(err)
		}
		rev := &recordingRevoker{next: inner}
		var logMu sync.Mutex
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))

		en := newEnvWith(t, st, scim.Config{Sessions: ss, Revoker: rev, Logger: logger})

		id := en.do("POST", "/Users", userBody("bob@acme.test", nil)).want(t, http.StatusCreated).str("id")
		en.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)

		rev.mu.Lock()
		got := rev.got
		rev.mu.Unlock()
		if len(got) != 1 || got[0].Kind != store.RevokeUser || got[0].SubjectID != id || got[0].TenantID != en.tenant {
			t.Fatalf("the configured Revoker applied %+v, want one revocation of %s", got, id)
		}
		logMu.Lock()
		defer logMu.Unlock()
		if !strings.Contains(logs.String(), "scim deprovisioned user") || !strings.Contains(logs.String(), id) {
			t.Fatalf("the configured Logger got %q", logs.String())
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// newEnvWith is newEnv with the Config's other fields set.
func newEnvWith(t *testing.T, st *store.DB, cfg scim.Config) *env {
	t.Helper()
	e := echo.New()
	hs := httptest.NewServer(e)
	t.Cleanup(hs.Close)
	cfg.Issuer, cfg.Store = hs.URL, st
	if cfg.Sessions == nil {
		cfg.Sessions = sessions.NewMemory()
	}
	srv, err := scim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Mount(e)
	en := &env{t: t, st: st, sessions: cfg.Sessions, srv: srv, http: hs}
	en.tenant, en.dir, en.token = en.newDirectory("Acme")
	return en
}

// TestMaxResultsBounds: MaxResults is taken when within (0, 1000] and
// is 1000 otherwise, as the directory's ServiceProviderConfig says.
func TestMaxResultsBounds(t *testing.T) {
	st := backends[0].open(t)
	for _, tc := range []struct{ set, want int }{{0, 1000}, {-1, 1000}, {1, 1}, {500, 500}, {1000, 1000}, {1001, 1000}, {5000, 1000}} {
		en := newEnvWith(t, st, scim.Config{MaxResults: tc.set})
		spc := en.do("GET", "/ServiceProviderConfig", nil).want(t, http.StatusOK).body
		if doc := lookup(spc, "documentationUri"); doc != nil {
			t.Errorf("documentationUri %v: the broker serves no such page", doc)
		}
		got := lookup(spc, "filter.maxResults")
		if n, _ := got.(float64); int(n) != tc.want {
			t.Errorf("MaxResults %d: maxResults %v, want %d", tc.set, got, tc.want)
		}
	}
}

// TestLocationAndTypeErrors: a created resource's answer says where it
// lives and no other answer carries a Location; a JSON value of the wrong
// type for the whole body is refused naming the body.
func TestLocationAndTypeErrors(t *testing.T) {
	en := newEnvWith(t, backends[0].open(t), scim.Config{})
	created := en.do("POST", "/Users", userBody("bob@acme.test", nil)).want(t, http.StatusCreated)
	id := created.str("id")
	if got, want := created.header.Get("Location"), en.srv.BaseURL(en.dir)+"/Users/"+id; got != want {
		t.Fatalf("201 Location = %q, want %q", got, want)
	}
	if got := en.do("GET", "/Users/"+id, nil).want(t, http.StatusOK).header.Get("Location"); got != "" {
		t.Fatalf("200 carries Location %q", got)
	}
	for _, tc := range []struct{ method, path, body, names string }{
		{"POST", "/Users", `["not", "an", "object"]`, "the body"},
	} {
		r := en.do(tc.method, tc.path, tc.body).want(t, http.StatusBadRequest)
		if d := r.str("detail"); !strings.HasPrefix(d, tc.names+" must not be") {
			t.Errorf("%s %s: detail %q, want it to name %s", tc.method, tc.body, d, tc.names)
		}
	}
}
