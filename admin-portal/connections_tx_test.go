package adminportal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/audit"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/connections/saml/samltest"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// failAfterAudit is the real store whose AppendAudit, when armed, writes
// the row and then fails: a failure after the change and its row were
// written, before the commit.
type failAfterAudit struct {
	*store.DB
	fail atomic.Bool
}

func (s *failAfterAudit) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	out, err := s.DB.AppendAudit(ctx, e)
	if err == nil && s.fail.Load() {
		return store.AuditEvent{}, errors.New("injected failure after the audit row")
	}
	return out, err
}

// TestConnectionAuditInTransaction: a connection change and its audit row
// commit together or not at all, and the chain stays whole.
func TestConnectionAuditInTransaction(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			fa := &failAfterAudit{DB: st}
			srv := httpserver.New(httpserver.Config{BodyLimit: 1 << 20})
			ts := httptest.NewServer(srv.Handler())
			t.Cleanup(ts.Close)
			mem := sessions.NewMemory()
			reg := connections.NewRegistry(connections.Config{
				Types:  connections.Types{saml.Name: saml.Type{NewKey: samltest.Keys()}},
				Issuer: ts.URL, Store: st, Once: mem, Sessions: mem,
				HTTPClient: safehttp.NewClient(safehttp.Options{AllowPrivate: true}), AllowInsecureURLs: true,
			})
			adminportal.NewAPI(adminportal.APIConfig{Store: fa, Connections: reg, Sessions: mem}).Mount(srv.Echo())
			e := keyedEnv(t, st, ts.URL)
			acme := e.createTenant(map[string]any{"name": "Acme"})
			tctx := store.WithTenant(context.Background(), acme.ID)
			samlSettings := map[string]any{"idp_entity_id": "https://idp.acme.example", "idp_sso_url": "https://idp.acme.example/sso",
				"idp_certificates_pem": idpCertPEM(t)}

			var conn connOut
			e.must(http.StatusCreated, "POST", "/tenants/"+acme.ID+"/connections", map[string]any{"type": "saml", "name": "Okta", "saml": samlSettings}).decode(t, &conn)
			if n := len(e.audits(acme.ID, "connection.created")); n != 1 {
				t.Fatalf("%d connection.created rows, want 1", n)
			}

			fa.fail.Store(true)
			for _, c := range []struct{ method, path string }{
				{"POST", "/tenants/" + acme.ID + "/connections"},
				{"PATCH", "/connections/" + conn.ID},
				{"DELETE", "/connections/" + conn.ID},
			} {
				var body any
				switch c.method {
				case "POST":
					body = map[string]any{"type": "saml", "name": "Entra", "saml": samlSettings}
				case "PATCH":
					body = map[string]any{"name": "Renamed", "status": "inactive"}
				}
				if r := e.call(c.method, c.path, body); r.status != http.StatusInternalServerError {
					t.Fatalf("%s %s with the audit failing: %d %s", c.method, c.path, r.status, r.body)
				}
			}
			fa.fail.Store(false)
			conns, err := st.Connections(tctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(conns) != 1 || conns[0].Name != "Okta" || conns[0].Status != store.ConnectionActive {
				for _, c := range conns {
					t.Logf("connection %s %q %s", c.ID, c.Name, c.Status)
				}
				t.Fatal("failed changes were kept")
			}
			for _, action := range []string{"connection.updated", "connection.deleted"} {
				if n := len(e.audits(acme.ID, action)); n != 0 {
					t.Fatalf("%d %s rows for a change that did not happen", n, action)
				}
			}
			if n := len(e.audits(acme.ID, "connection.created")); n != 1 {
				t.Fatalf("%d connection.created rows after a failed create, want 1", n)
			}
			if evs := e.events(acme.ID, "connection.deactivated"); len(evs) != 0 {
				t.Fatalf("a failed deactivation emitted %d events", len(evs))
			}

			// Successful changes always have their row, and the chain holds.
			e.must(http.StatusOK, "PATCH", "/connections/"+conn.ID, map[string]any{"name": "Renamed"})
			e.must(http.StatusNoContent, "DELETE", "/connections/"+conn.ID, nil)
			upd, del := e.audits(acme.ID, "connection.updated"), e.audits(acme.ID, "connection.deleted")
			if len(upd) != 1 || len(del) != 1 || del[0].Resource.Name != "Renamed" {
				t.Fatalf("rows after success: updated %+v, deleted %+v", upd, del)
			}
			rep, err := audit.Verify(tctx, st)
			if err != nil || !rep.OK() {
				t.Fatalf("audit chain: %+v, %v", rep, err)
			}
		})
	}
}

// TestConnectionIfMatch: the connection API gives each version an ETag;
// a change naming an old one is refused with 412 and changes nothing.
func TestConnectionIfMatch(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			mem := sessions.NewMemory()
			e := newConnEnv(t, b.open(t), mem)
			acme := e.createTenant(map[string]any{"name": "Acme"})
			r := e.must(http.StatusCreated, "POST", "/tenants/"+acme.ID+"/connections", map[string]any{"type": "saml", "name": "Okta"})
			var conn connOut
			r.decode(t, &conn)
			v1 := r.header.Get("ETag")
			if v1 != `W/"1"` {
				t.Fatalf("ETag on create = %q", v1)
			}
			if got := e.must(http.StatusOK, "GET", "/connections/"+conn.ID, nil).header.Get("ETag"); got != v1 {
				t.Fatalf("ETag on GET = %q, want %q", got, v1)
			}
			r = e.call("PATCH", "/connections/"+conn.ID, map[string]any{"name": "Okta 2"}, "If-Match", v1)
			if r.status != http.StatusOK || r.header.Get("ETag") != `W/"2"` {
				t.Fatalf("PATCH with the current ETag: %d %q %s", r.status, r.header.Get("ETag"), r.body)
			}
			for _, tc := range []struct{ method, ifMatch string }{
				{"PATCH", v1}, {"DELETE", v1}, {"PATCH", "garbage"},
			} {
				var body any
				if tc.method == "PATCH" {
					body = map[string]any{"name": "Stale"}
				}
				r := e.call(tc.method, "/connections/"+conn.ID, body, "If-Match", tc.ifMatch)
				if r.status != http.StatusPreconditionFailed || r.err(t).Code != "precondition_failed" {
					t.Fatalf("%s with If-Match %s: %d %s", tc.method, tc.ifMatch, r.status, r.body)
				}
			}
			var now connOut
			e.must(http.StatusOK, "GET", "/connections/"+conn.ID, nil).decode(t, &now)
			if now.Name != "Okta 2" {
				t.Fatalf("a refused change was applied: %+v", now)
			}
			upd := e.audits(acme.ID, "connection.updated")
			if n := len(upd); n != 1 {
				t.Fatalf("%d connection.updated rows, want 1", n)
			}
			// The row says what the PATCH changed, not just the status.
			changes := func(e store.AuditEvent) string {
				var cx struct {
					Changes []string
					Status  string
				}
				if err := json.Unmarshal(e.Context, &cx); err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(cx.Changes, " ", cx.Status)
			}
			if got := changes(upd[0]); got != "[name] draft" {
				t.Fatalf("connection.updated context %s", upd[0].Context)
			}
			// Settings are named by field, never recorded: a value may be
			// a secret.
			r = e.call("PATCH", "/connections/"+conn.ID, map[string]any{"name": "Okta 3", "saml": map[string]any{"idp_entity_id": "https://idp.example/e", "allow_idp_initiated": false}})
			if r.status != http.StatusOK {
				t.Fatalf("PATCH settings: %d %s", r.status, r.body)
			}
			if upd := e.audits(acme.ID, "connection.updated"); len(upd) != 2 || changes(upd[0]) != "[name saml.allow_idp_initiated saml.idp_entity_id] draft" ||
				strings.Contains(string(upd[0].Context), "idp.example") {
				t.Fatalf("connection.updated rows %+v", upd)
			}
			v2 := `W/"3"`
			if r := e.call("DELETE", "/connections/"+conn.ID, nil, "If-Match", v2); r.status != http.StatusNoContent {
				t.Fatalf("DELETE with the current ETag: %d %s", r.status, r.body)
			}
		})
	}
}
