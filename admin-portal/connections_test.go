package adminportal_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/connections/saml/samltest"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// newConnEnv is newEnv with the connection routes mounted.
func newConnEnv(t *testing.T, st *store.DB, mem *sessions.Memory) *env {
	t.Helper()
	srv := httpserver.New(httpserver.Config{BodyLimit: 1 << 20})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	reg := connections.NewRegistry(connections.Config{
		Types:  connections.Types{saml.Name: saml.Type{NewKey: samltest.Keys()}, oidc.Name: oidc.New()},
		Issuer: ts.URL, Store: st, Once: mem, Sessions: mem,
		HTTPClient: safehttp.NewClient(safehttp.Options{AllowPrivate: true}), AllowInsecureURLs: true,
	})
	adminportal.NewAPI(adminportal.APIConfig{Store: st, Connections: reg, Sessions: mem}).Mount(srv.Echo())
	reg.Mount(srv.Echo(), func(ctx context.Context, w http.ResponseWriter, r *http.Request, c store.Connection, res connections.Result, err error) {
		w.WriteHeader(http.StatusBadRequest)
	})
	return keyedEnv(t, st, ts.URL)
}

func idpCertPEM(t *testing.T) string {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

type connOut struct {
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	SAML     *struct {
		SPEntityID    string   `json:"sp_entity_id"`
		ACSURL        string   `json:"acs_url"`
		SPMetadataURL string   `json:"sp_metadata_url"`
		Missing       []string `json:"missing"`
	} `json:"saml"`
	OIDC *struct {
		RedirectURI     string `json:"redirect_uri"`
		ClientSecretSet bool   `json:"client_secret_set"`
	} `json:"oidc"`
}

func TestConnectionsAPI(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			mem := sessions.NewMemory()
			e := newConnEnv(t, b.open(t), mem)
			acme := e.createTenant(map[string]any{"name": "Acme", "domains": []map[string]any{{"domain": "acme.example", "verified": true}}})
			globex := e.createTenant(map[string]any{"name": "Globex"})
			base := strings.TrimSuffix(e.url, "/api/v1")

			// A draft: no IdP yet, SP URLs already known.
			var draft connOut
			e.must(http.StatusCreated, "POST", "/tenants/"+acme.ID+"/connections", map[string]any{"type": "saml", "name": "Okta"}).decode(t, &draft)
			if draft.Status != "draft" || draft.TenantID != acme.ID || draft.SAML == nil ||
				draft.SAML.SPEntityID != base+"/sso/saml/"+draft.ID || draft.SAML.ACSURL != base+"/sso/saml/"+draft.ID+"/acs" ||
				draft.SAML.SPMetadataURL != base+"/sso/saml/"+draft.ID+"/metadata" || len(draft.SAML.Missing) == 0 {
				t.Fatalf("draft = %+v", draft)
			}
			resp, err := http.Get(draft.SAML.SPMetadataURL)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("SP metadata: %v %v", resp, err)
			}
			resp.Body.Close()

			// Completing it activates it and emits connection.activated.
			var active connOut
			e.must(http.StatusOK, "PATCH", "/connections/"+draft.ID, map[string]any{"saml": map[string]any{
				"idp_entity_id": "https://idp.acme.example", "idp_sso_url": "https://idp.acme.example/sso",
				"idp_certificates_pem": idpCertPEM(t), "allow_idp_initiated": true}}).decode(t, &active)
			if active.Status != "active" || len(e.events(acme.ID, "connection.activated")) != 1 {
				t.Fatalf("after completion: %+v", active)
			}
			e.must(http.StatusOK, "GET", "/connections/"+draft.ID, nil)

			// An OIDC connection never shows its secret.
			r := e.must(http.StatusCreated, "POST", "/tenants/"+acme.ID+"/connections", map[string]any{
				"type": "oidc", "name": "Google", "oidc": map[string]any{"client_id": "cid", "client_secret": "very-secret"}})
			var oc connOut
			r.decode(t, &oc)
			if strings.Contains(string(r.body), "very-secret") || oc.OIDC == nil || !oc.OIDC.ClientSecretSet ||
				oc.OIDC.RedirectURI != base+"/sso/oidc/"+oc.ID+"/callback" || oc.Status != "draft" {
				t.Fatalf("oidc = %s", r.body)
			}

			// Bad input: precise 400s, nothing stored.
			before, _ := e.st.Connections(store.WithTenant(context.Background(), acme.ID))
			for name, body := range map[string]any{
				"no type":        map[string]any{"name": "x"},
				"bad type":       map[string]any{"type": "ldap", "name": "x"},
				"no name":        map[string]any{"type": "saml"},
				"unknown field":  map[string]any{"type": "saml", "name": "x", "saml": map[string]any{"idp_cert": "x"}},
				"bad cert":       map[string]any{"type": "saml", "name": "x", "saml": map[string]any{"idp_certificates_pem": "nope"}},
				"bad metadata":   map[string]any{"type": "saml", "name": "x", "saml": map[string]any{"idp_metadata_xml": "<a"}},
				"certs type":     map[string]any{"type": "saml", "name": "x", "saml": map[string]any{"idp_certificates_pem": 5}},
				"transient":      map[string]any{"type": "saml", "name": "x", "saml": map[string]any{"name_id_format": "transient"}},
				"entra common":   map[string]any{"type": "oidc", "name": "x", "oidc": map[string]any{"issuer": "https://login.microsoftonline.com/common/v2.0"}},
				"saml with oidc": map[string]any{"type": "saml", "name": "x", "oidc": map[string]any{"client_id": "x"}},
			} {
				r := e.call("POST", "/tenants/"+acme.ID+"/connections", body)
				if r.status != http.StatusBadRequest {
					t.Fatalf("%s: status %d: %s", name, r.status, r.body)
				}
				r.err(t)
			}
			if r := e.call("PATCH", "/connections/"+draft.ID, map[string]any{"status": "draft"}); r.status != 400 {
				t.Fatalf("PATCH status draft = %d", r.status)
			}
			if r := e.call("PATCH", "/connections/"+oc.ID, map[string]any{"status": "active"}); r.status != 400 ||
				!strings.Contains(r.err(t).Message, "issuer") {
				t.Fatalf("activating incomplete OIDC = %d %s", r.status, r.body)
			}
			after, _ := e.st.Connections(store.WithTenant(context.Background(), acme.ID))
			if len(after) != len(before) {
				t.Fatalf("bad input stored connections: %d → %d", len(before), len(after))
			}

			// Cross-tenant: the connection is found by its id only, and
			// tenant-scoped routes of another tenant do not list it.
			var list struct{ Data []connOut }
			e.must(http.StatusOK, "GET", "/tenants/"+globex.ID+"/connections", nil).decode(t, &list)
			if len(list.Data) != 0 {
				t.Fatalf("globex sees %d connections", len(list.Data))
			}
			for _, id := range []string{"conn_unknown", "not-a-conn", "tnt_" + acme.ID} {
				if r := e.call("GET", "/connections/"+id, nil); r.status != 404 {
					t.Fatalf("GET %s = %d", id, r.status)
				}
			}
			if r := e.call("GET", "/connections/"+draft.ID, nil, "Authorization", "Bearer idb_wrong"); r.status != 401 {
				t.Fatalf("wrong key = %d", r.status)
			}

			// Deactivating ends its sessions and emits connection.deactivated.
			mem.Create(context.Background(), sessions.Session{ID: "ses_1", TenantID: acme.ID, UserID: "usr_1", ConnectionID: draft.ID,
				AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
			e.must(http.StatusOK, "PATCH", "/connections/"+draft.ID, map[string]any{"status": "inactive"})
			if _, err := mem.Get(context.Background(), "ses_1"); err == nil {
				t.Fatal("session survived deactivation")
			}
			if len(e.events(acme.ID, "connection.deactivated")) != 1 {
				t.Fatal("no connection.deactivated event")
			}
			// Deleting an active connection deactivates it too, and the
			// event says what it is now (not the "active" it had).
			e.must(http.StatusOK, "PATCH", "/connections/"+draft.ID, map[string]any{"status": "active"})
			e.must(http.StatusNoContent, "DELETE", "/connections/"+draft.ID, nil)
			e.must(http.StatusNotFound, "GET", "/connections/"+draft.ID, nil)
			evs := e.events(acme.ID, "connection.deactivated")
			if len(evs) != 2 {
				t.Fatalf("connection.deactivated events after delete = %d, want 2", len(evs))
			}
			var gone map[string]any
			if err := json.Unmarshal(evs[len(evs)-1].Data, &gone); err != nil {
				t.Fatal(err)
			}
			if gone["status"] != "inactive" || gone["deleted"] != true {
				t.Fatalf("delete event data = %v, want status inactive and deleted true", gone)
			}
			if len(e.audits(acme.ID, "connection.created")) != 2 {
				t.Fatal("connection.created not audited")
			}
		})
	}
}
