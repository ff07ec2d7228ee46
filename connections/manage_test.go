package connections

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

func eventsOf(t *testing.T, db store.Store, typ string) []store.Event {
	t.Helper()
	evs, _, err := db.ListEvents(context.Background(), store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func TestConnectionLifecycle(t *testing.T) {
	mem := sessions.NewMemory()
	e := newEnv(t, envOpts{once: mem, sessions: mem})
	idp := newTestIdP(t, 0)

	conn, err := e.reg.CreateConnection(e.ctx, store.ConnectionSAML, "Okta", Settings{SAML: &SAMLSettings{IdPEntityID: ptr(idp.entityID)}})
	if err != nil {
		t.Fatal(err)
	}
	if conn.Status != store.ConnectionDraft || conn.Secrets[SecretSPKey] == "" {
		t.Fatalf("new incomplete connection = %s, key set %v", conn.Status, conn.Secrets[SecretSPKey] != "")
	}
	if n := len(eventsOf(t, e.db, EventActivated)); n != 0 {
		t.Fatalf("%d activation events for a draft", n)
	}
	v, _ := Describe(e.issuer, conn, e.clock.Now())
	if strings.Join(v.SAML.Missing, ",") != "idp_sso_url,idp_certificates_pem" || v.SAML.ACSURL != acsURL(e.issuer, conn.ID) {
		t.Fatalf("view = %+v", v.SAML)
	}
	// Activating an incomplete connection is refused, store untouched.
	if _, err := e.reg.UpdateConnection(e.ctx, conn.ID, Update{Status: ptr(store.ConnectionActive)}); !errorsIs(err, ErrConfig) {
		t.Fatalf("activate incomplete: %v", err)
	}
	// Completing it activates it, with one event.
	conn, err = e.reg.UpdateConnection(e.ctx, conn.ID, Update{Settings: Settings{SAML: &SAMLSettings{
		IdPSSOURL: ptr(idp.ssoURL), IdPCertificatesPEM: &PEMList{certPEM(idp.cert)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if conn.Status != store.ConnectionActive || len(eventsOf(t, e.db, EventActivated)) != 1 {
		t.Fatalf("completed connection = %s", conn.Status)
	}
	// Deactivating ends the connection's sessions and emits an event.
	for i, c := range []string{conn.ID, conn.ID, "conn_other"} {
		if err := mem.Create(context.Background(), sessions.Session{ID: "ses_" + string(rune('a'+i)), TenantID: e.tenant, UserID: "usr_1",
			ConnectionID: c, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err = e.reg.UpdateConnection(e.ctx, conn.ID, Update{Status: ptr(store.ConnectionInactive)})
	if err != nil || conn.Status != store.ConnectionInactive {
		t.Fatalf("deactivate: %v", err)
	}
	if _, err := mem.Get(context.Background(), "ses_a"); !errorsIs(err, sessions.ErrNotFound) {
		t.Fatalf("session of deactivated connection still live: %v", err)
	}
	if _, err := mem.Get(context.Background(), "ses_c"); err != nil {
		t.Fatalf("another connection's session was revoked: %v", err)
	}
	if len(eventsOf(t, e.db, EventDeactivated)) != 1 {
		t.Fatal("no connection.deactivated event")
	}
	if _, err := e.reg.Connector(e.ctx, conn); !errorsIs(err, ErrConnectionInactive) {
		t.Fatalf("Connector of inactive = %v", err)
	}
	// Reactivating emits activated again; deleting emits deactivated.
	if _, err := e.reg.UpdateConnection(e.ctx, conn.ID, Update{Status: ptr(store.ConnectionActive)}); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.DeleteConnection(e.ctx, conn.ID); err != nil {
		t.Fatal(err)
	}
	if len(eventsOf(t, e.db, EventActivated)) != 2 || len(eventsOf(t, e.db, EventDeactivated)) != 2 {
		t.Fatal("events after reactivate + delete")
	}
	if _, err := e.db.Connection(e.ctx, conn.ID); !errorsIs(err, store.ErrNotFound) {
		t.Fatalf("deleted connection still there: %v", err)
	}
}

func TestConnectionSettingsValidation(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	tests := []struct {
		name string
		typ  store.ConnectionType
		s    Settings
		// contains names the check that refused: ErrConfig alone would
		// pass whichever check fired.
		contains string
	}{
		{"unknown type", "ldap", Settings{}, "type must be"},
		{"metadata and manual", store.ConnectionSAML, Settings{SAML: &SAMLSettings{IdPMetadataXML: ptr("<x/>"), IdPEntityID: ptr("x")}}, "not both"},
		{"xml and url", store.ConnectionSAML, Settings{SAML: &SAMLSettings{IdPMetadataXML: ptr("<x/>"), IdPMetadataURL: ptr("https://x")}}, "idp_metadata_xml or idp_metadata_url"},
		{"bad metadata", store.ConnectionSAML, Settings{SAML: &SAMLSettings{IdPMetadataXML: ptr("not xml")}}, "not XML"},
		{"metadata with DTD", store.ConnectionSAML, Settings{SAML: &SAMLSettings{IdPMetadataXML: ptr(`<!DOCTYPE x><EntityDescriptor/>`)}}, "DTD"},
		{"bad certificate", store.ConnectionSAML, Settings{SAML: &SAMLSettings{IdPCertificatesPEM: &PEMList{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}}}, "malformed certificate"},
		{"private key as certificate", store.ConnectionSAML, Settings{SAML: &SAMLSettings{IdPCertificatesPEM: &PEMList{"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}}}, "PRIVATE KEY"},
		// Begin sends the browser to the SSO URL, by an auto-submitting
		// form for HTTP-POST: a javascript: one would run in our origin.
		// crewjam/saml refuses it while decoding the metadata.
		{"javascript: SSO URL in metadata", store.ConnectionSAML, Settings{SAML: &SAMLSettings{IdPMetadataXML: ptr(metadataXML(idp.entityID, "javascript:alert(1)", idp.cert))}}, "javascript"},
		{"bad SSO URL", store.ConnectionSAML, Settings{SAML: &SAMLSettings{IdPSSOURL: ptr("javascript:alert(1)")}}, "idp_sso_url"},
		{"transient NameID", store.ConnectionSAML, Settings{SAML: &SAMLSettings{NameIDFormat: ptr("transient")}}, "name_id_format"},
		{"skew too large", store.ConnectionSAML, Settings{SAML: &SAMLSettings{ClockSkewSeconds: ptr(3600)}}, "clock_skew_seconds"},
		{"unknown preset", store.ConnectionSAML, Settings{SAML: &SAMLSettings{AttributeMapping: &AttributeMapping{Preset: "ldap"}}}, "preset"},
		{"oidc settings on saml", store.ConnectionSAML, Settings{OIDC: &OIDCSettings{}}, "oidc settings"},
		{"metadata URL to a private address is refused by default", store.ConnectionSAML, Settings{SAML: &SAMLSettings{IdPMetadataURL: ptr("http://169.254.169.254/latest/meta-data")}}, "address not allowed"},
		{"scopes without openid", store.ConnectionOIDC, Settings{OIDC: &OIDCSettings{Scopes: &[]string{"email"}}}, "openid"},
		{"unreachable issuer", store.ConnectionOIDC, Settings{OIDC: &OIDCSettings{Issuer: ptr("http://127.0.0.1:1"), ClientID: ptr("c"), ClientSecret: ptr("s")}}, "discovery"},
	}
	// A registry whose client keeps the default address rule.
	strict := NewRegistry(Config{Issuer: e.issuer, Store: e.db, Once: e.once, AllowInsecureURLs: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := strict.CreateConnection(e.ctx, tt.typ, "x", tt.s)
			wantErr(t, err, ErrConfig, tt.contains)
		})
	}
	conns, _ := e.db.Connections(e.ctx)
	if len(conns) != 0 {
		t.Fatalf("refused input left %d connections", len(conns))
	}
	// Several certificates at once (rollover), as one string or a list.
	both := certPEM(idp.cert) + certPEM(newTestIdP(t, 1).cert)
	conn := e.samlConn(idp, func(s *SAMLSettings) { s.IdPCertificatesPEM = &PEMList{both} })
	cfg, _ := DecodeSAMLConfig(conn.Config)
	if len(cfg.IdPCertificates) != 2 || cfg.IdPCertificates[0].NotAfter.IsZero() {
		t.Fatalf("certificates = %+v", cfg.IdPCertificates)
	}
	var l PEMList
	if err := json.Unmarshal([]byte(`["a","b"]`), &l); err != nil || len(l) != 2 {
		t.Fatal(err)
	}
}

// TestMetadataRefreshAndCertificateExpiry rolls the IdP's certificate in
// its metadata: the next maintenance pass trusts the new one without an
// admin, and a certificate near expiry is announced once.
func TestMetadataRefreshAndCertificateExpiry(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	soon := selfSigned(t, idp.key, "soon", time.Now().Add(10*24*time.Hour))
	var current atomic.Value
	current.Store(metadataXML(idp.entityID, idp.ssoURL, soon))
	var fetches atomic.Int32
	mdSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write([]byte(current.Load().(string)))
	}))
	defer mdSrv.Close()

	conn, err := e.reg.CreateConnection(e.ctx, store.ConnectionSAML, "Refreshing", Settings{SAML: &SAMLSettings{IdPMetadataURL: ptr(mdSrv.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := Describe(e.issuer, conn, e.clock.Now())
	if len(v.SAML.IdPCertificates) != 1 || !v.SAML.IdPCertificates[0].Expiring {
		t.Fatalf("expiring not shown: %+v", v.SAML.IdPCertificates)
	}
	for range 2 { // idempotent
		if err := e.reg.Maintain(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(eventsOf(t, e.db, EventCertificateExpiring)); n != 1 {
		t.Fatalf("%d certificate_expiring events, want 1", n)
	}

	// The IdP rolls its key: new metadata lists the new certificate.
	rolled := newTestIdP(t, 1)
	current.Store(metadataXML(idp.entityID, idp.ssoURL, soon, rolled.cert))
	before := fetches.Load()
	e.clock.Add(13 * time.Hour) // past MetadataRefresh
	if err := e.reg.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fetches.Load() == before {
		t.Fatal("metadata not re-read")
	}
	conn, _ = e.db.Connection(e.ctx, conn.ID)
	cn, err := e.reg.Connector(e.ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	rolled.entityID, rolled.ssoURL = idp.entityID, idp.ssoURL
	raw := rolled.response(t, e.issuer, conn, respOpts{signAssertion: true, inResponseTo: "id-1", issuedAt: e.clock.Now()})
	if _, err := cn.(*samlConnector).finish(e.ctx, raw, e.pend(conn, "id-1", "")); err != nil {
		t.Fatalf("response signed with the rolled certificate: %v", err)
	}
	if n := len(eventsOf(t, e.db, EventCertificateExpiring)); n != 1 {
		t.Fatalf("%d certificate_expiring events after refresh, want still 1", n)
	}
	// The metadata endpoint failing keeps the last good settings.
	current.Store("<broken")
	e.clock.Add(13 * time.Hour)
	e.reg.Maintain(context.Background())
	conn2, _ := e.db.Connection(e.ctx, conn.ID)
	if cfg, _ := DecodeSAMLConfig(conn2.Config); len(cfg.IdPCertificates) != 2 {
		t.Fatalf("a failed refresh changed the certificates: %+v", cfg.IdPCertificates)
	}
}
