package saml

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/connections"
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
	e := newEnv(t, envOpts{Once: mem, Sessions: mem})
	idp := newTestIdP(t, 0)

	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Okta", Settings{IdPEntityID: ptr(idp.entityID)}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Status != store.ConnectionDraft || conn.Secrets[SecretSPKey] == "" {
		t.Fatalf("new incomplete connection = %s, key set %v", conn.Status, conn.Secrets[SecretSPKey] != "")
	}
	if n := len(eventsOf(t, e.DB, connections.EventActivated)); n != 0 {
		t.Fatalf("%d activation events for a draft", n)
	}
	v := e.view(conn)
	if strings.Join(v.Missing, ",") != "idp_sso_url,idp_certificates_pem" || v.ACSURL != acsURL(e.Issuer, conn.ID) {
		t.Fatalf("view = %+v", v)
	}
	// Activating an incomplete connection is refused, store untouched.
	if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Status: ptr(store.ConnectionActive)}, nil); !errorsIs(err, connections.ErrConfig) {
		t.Fatalf("activate incomplete: %v", err)
	}
	// Completing it activates it, with one event.
	conn, err = e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Settings: Settings{
		IdPSSOURL: ptr(idp.ssoURL), IdPCertificatesPEM: &PEMList{certPEM(idp.cert)}}.Request()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Status != store.ConnectionActive || len(eventsOf(t, e.DB, connections.EventActivated)) != 1 {
		t.Fatalf("completed connection = %s", conn.Status)
	}
	// An update that changes nothing writes nothing: same version, no
	// hook (the API's audit row), however it is spelled.
	for _, u := range []connections.Update{{}, {Name: ptr("Okta"), Status: ptr(store.ConnectionActive)},
		{Settings: Settings{IdPSSOURL: ptr(idp.ssoURL)}.Request()}} {
		hooked := false
		same, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, u, func(context.Context, store.Connection) error { hooked = true; return nil })
		if err != nil || same.Version != conn.Version || !same.UpdatedAt.Equal(conn.UpdatedAt) || hooked {
			t.Fatalf("no-op update %+v: version %d→%d, hook run %v, err %v", u, conn.Version, same.Version, hooked, err)
		}
	}
	// Deactivating ends the connection's sessions and emits an event.
	for i, c := range []string{conn.ID, conn.ID, "conn_other"} {
		if err := mem.Create(context.Background(), sessions.Session{ID: "ses_" + string(rune('a'+i)), TenantID: e.Tenant, UserID: "usr_1",
			ConnectionID: c, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err = e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Status: ptr(store.ConnectionInactive)}, nil)
	if err != nil || conn.Status != store.ConnectionInactive {
		t.Fatalf("deactivate: %v", err)
	}
	if _, err := mem.Get(context.Background(), "ses_a"); !errorsIs(err, sessions.ErrNotFound) {
		t.Fatalf("session of deactivated connection still live: %v", err)
	}
	if _, err := mem.Get(context.Background(), "ses_c"); err != nil {
		t.Fatalf("another connection's session was revoked: %v", err)
	}
	if len(eventsOf(t, e.DB, connections.EventDeactivated)) != 1 {
		t.Fatal("no connection.deactivated event")
	}
	if _, err := e.Reg.Connector(e.Ctx, conn); !errorsIs(err, connections.ErrConnectionInactive) {
		t.Fatalf("Connector of inactive = %v", err)
	}
	// Reactivating emits activated again; deleting emits deactivated.
	if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Status: ptr(store.ConnectionActive)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Reg.DeleteConnection(e.Ctx, conn.ID, 0, nil); err != nil {
		t.Fatal(err)
	}
	if len(eventsOf(t, e.DB, connections.EventActivated)) != 2 || len(eventsOf(t, e.DB, connections.EventDeactivated)) != 2 {
		t.Fatal("events after reactivate + delete")
	}
	if _, err := e.DB.Connection(e.Ctx, conn.ID); !errorsIs(err, store.ErrNotFound) {
		t.Fatalf("deleted connection still there: %v", err)
	}
}

func TestConnectionSettingsValidation(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	tests := []struct {
		name string
		typ  store.ConnectionType
		s    connections.Settings
		// contains names the check that refused: connections.ErrConfig alone would
		// pass whichever check fired.
		contains string
	}{
		{"unknown type", "ldap", connections.Settings{}, "type must be"},
		{"metadata and manual", Name, Settings{IdPMetadataXML: ptr("<x/>"), IdPSSOURL: ptr("https://idp.example.com/sso")}.Request(), "not both"},
		{"metadata of another IdP than named", Name, Settings{IdPMetadataXML: ptr(metadataXML(idp.entityID, idp.ssoURL, idp.cert)), IdPEntityID: ptr("https://other.example.com")}.Request(), "not \"https://other.example.com\""},
		{"an aggregate without a name", Name, Settings{IdPMetadataXML: ptr(aggregateXML(idp, newTestIdP(t, 1)))}.Request(), "describes 2 IdPs; name yours in idp_entity_id"},
		{"an aggregate without the IdP named", Name, Settings{IdPMetadataXML: ptr(aggregateXML(idp, newTestIdP(t, 1))), IdPEntityID: ptr("https://other.example.com")}.Request(), "none of them"},
		{"xml and url", Name, Settings{IdPMetadataXML: ptr("<x/>"), IdPMetadataURL: ptr("https://x")}.Request(), "idp_metadata_xml or idp_metadata_url"},
		{"bad metadata", Name, Settings{IdPMetadataXML: ptr("not xml")}.Request(), "not XML"},
		{"metadata URL given as the document", Name, Settings{IdPMetadataXML: ptr(" https://login.microsoftonline.com/t/federationmetadata/2007-06/federationmetadata.xml?appid=a\n")}.Request(), "give it as idp_metadata_url"},
		{"metadata with DTD", Name, Settings{IdPMetadataXML: ptr(`<!DOCTYPE x><EntityDescriptor/>`)}.Request(), "DTD"},
		// An admin page's address given for the metadata's: said as such,
		// not as a DTD refused.
		{"a web page for metadata", Name, Settings{IdPMetadataXML: ptr("\n<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>")}.Request(), "web page (HTML), not SAML metadata"},
		{"a web page without doctype", Name, Settings{IdPMetadataXML: ptr(`<HTML><body>Sign in</body></HTML>`)}.Request(), "web page (HTML)"},
		{"bad certificate", Name, Settings{IdPCertificatesPEM: &PEMList{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}}.Request(), "not a valid X.509 certificate"},
		{"private key as certificate", Name, Settings{IdPCertificatesPEM: &PEMList{"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}}.Request(), "PRIVATE KEY"},
		// Begin sends the browser to the SSO URL, by an auto-submitting
		// form for HTTP-POST: a javascript: one would run in our origin.
		// crewjam/saml refuses it while decoding the metadata.
		{"javascript: SSO URL in metadata", Name, Settings{IdPMetadataXML: ptr(metadataXML(idp.entityID, "javascript:alert(1)", idp.cert))}.Request(), "javascript"},
		{"bad SSO URL", Name, Settings{IdPSSOURL: ptr("javascript:alert(1)")}.Request(), "idp_sso_url"},
		{"transient NameID", Name, Settings{NameIDFormat: ptr("transient")}.Request(), "name_id_format"},
		{"skew too large", Name, Settings{ClockSkewSeconds: ptr(3600)}.Request(), "clock_skew_seconds"},
		{"unknown preset", Name, Settings{AttributeMapping: &connections.AttributeMapping{Preset: "ldap"}}.Request(), "preset"},
		{"oidc settings on saml", Name, connections.Settings{"oidc": []byte(`{}`)}, "oidc settings"},
		{"unknown settings field", Name, connections.Settings{Name: []byte(`{"idp_sso_ur1": "https://x"}`)}, `unknown field "idp_sso_ur1"`},
		{"metadata URL to a private address is refused by default", Name, Settings{IdPMetadataURL: ptr("http://169.254.169.254/latest/meta-data")}.Request(), "private or local network"},
	}
	// A registry whose client keeps the default address rule.
	strict := connections.NewRegistry(connections.Config{Types: e.Types, Issuer: e.Issuer, Store: e.DB, Once: e.Once, AllowInsecureURLs: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := strict.CreateConnection(e.Ctx, tt.typ, "x", tt.s, nil)
			wantErr(t, err, connections.ErrConfig, tt.contains)
		})
	}
	conns, _ := e.DB.Connections(e.Ctx)
	if len(conns) != 0 {
		t.Fatalf("refused input left %d connections", len(conns))
	}
	// Several certificates at once (rollover), as one string or a list.
	both := certPEM(idp.cert) + certPEM(newTestIdP(t, 1).cert)
	conn := e.samlConn(idp, func(s *Settings) { s.IdPCertificatesPEM = &PEMList{both} })
	cfg, _ := DecodeConfig(conn.Config)
	if len(cfg.IdPCertificates) != 2 || cfg.IdPCertificates[0].NotAfter.IsZero() {
		t.Fatalf("certificates = %+v", cfg.IdPCertificates)
	}
	var l PEMList
	if err := json.Unmarshal([]byte(`["a","b"]`), &l); err != nil || len(l) != 2 {
		t.Fatal(err)
	}
}

// aggregateXML is a federation's metadata: the IdPs given, under nested
// EntitiesDescriptors, among entities that are not IdPs.
func aggregateXML(idps ...*testIdP) string {
	var b strings.Builder
	b.WriteString(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Name="federation">`)
	b.WriteString(`<md:EntityDescriptor entityID="https://sp.example.org"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>`)
	for i, idp := range idps {
		md := metadataXML(idp.entityID, idp.ssoURL, idp.cert)
		if i%2 == 1 {
			md = `<md:EntitiesDescriptor Name="nested">` + md + `</md:EntitiesDescriptor>`
		}
		b.WriteString(md)
	}
	b.WriteString(`</md:EntitiesDescriptor>`)
	return b.String()
}

// TestMetadataAggregate: a federation publishes all its IdPs in one
// document (hundreds of KB); the connection takes the one idp_entity_id
// names, pasted or from its URL, and a refresh of that URL keeps to it.
func TestMetadataAggregate(t *testing.T) {
	e := newEnv(t, envOpts{})
	var idps []*testIdP
	for i := range 3 {
		idp := newTestIdP(t, i)
		idp.entityID = fmt.Sprintf("https://idp%d.federation.example", i)
		idp.ssoURL = fmt.Sprintf("https://idp%d.federation.example/sso", i)
		idps = append(idps, idp)
	}
	agg := aggregateXML(idps...)
	mdSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(agg)) }))
	defer mdSrv.Close()
	// An empty name beside single-entity metadata (a form's blank field)
	// leaves the metadata's entityID.
	one, err := e.Reg.CreateConnection(e.Ctx, Name, "one", Settings{IdPMetadataXML: ptr(metadataXML(idps[0].entityID, idps[0].ssoURL, idps[0].cert)), IdPEntityID: ptr("")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := DecodeConfig(one.Config); cfg.IdPEntityID != idps[0].entityID {
		t.Fatalf("a blank idp_entity_id beside metadata left %q", cfg.IdPEntityID)
	}
	for name, s := range map[string]Settings{
		"pasted":  {IdPMetadataXML: ptr(agg), IdPEntityID: ptr(idps[1].entityID)},
		"fetched": {IdPMetadataURL: ptr(mdSrv.URL), IdPEntityID: ptr(idps[1].entityID)},
	} {
		conn, err := e.Reg.CreateConnection(e.Ctx, Name, name, s.Request(), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg, _ := DecodeConfig(conn.Config)
		if cfg.IdPEntityID != idps[1].entityID || cfg.IdPSSOURL != idps[1].ssoURL || len(cfg.IdPCertificates) != 1 ||
			cfg.IdPCertificates[0].PEM != certPEM(idps[1].cert) {
			t.Fatalf("%s: took %s at %s, want %s", name, cfg.IdPEntityID, cfg.IdPSSOURL, idps[1].entityID)
		}
		if name == "fetched" && cfg.IdPMetadataURL != mdSrv.URL {
			t.Fatalf("the metadata URL was dropped: %+v", cfg)
		}
	}
	// The refresh reads the aggregate again and keeps to the same IdP.
	e.Clock.Add(13 * time.Hour)
	if err := e.Reg.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	conns, _ := e.DB.Connections(e.Ctx)
	for _, c := range conns {
		if c.ID == one.ID {
			continue
		}
		if cfg, _ := DecodeConfig(c.Config); cfg.IdPEntityID != idps[1].entityID || cfg.IdPSSOURL != idps[1].ssoURL {
			t.Fatalf("after a refresh, %s takes %s", c.Name, cfg.IdPEntityID)
		}
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

	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Refreshing", Settings{IdPMetadataURL: ptr(mdSrv.URL)}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := e.view(conn); len(v.IdPCertificates) != 1 || !v.IdPCertificates[0].Expiring {
		t.Fatalf("expiring not shown: %+v", v.IdPCertificates)
	}
	for range 2 { // idempotent
		if err := e.Reg.Maintain(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(eventsOf(t, e.DB, connections.EventCertificateExpiring)); n != 1 {
		t.Fatalf("%d certificate_expiring events, want 1", n)
	}

	// The IdP rolls its key: new metadata lists the new certificate.
	rolled := newTestIdP(t, 1)
	current.Store(metadataXML(idp.entityID, idp.ssoURL, soon, rolled.cert))
	before := fetches.Load()
	e.Clock.Add(13 * time.Hour) // past MetadataRefresh
	if err := e.Reg.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fetches.Load() == before {
		t.Fatal("metadata not re-read")
	}
	conn, _ = e.DB.Connection(e.Ctx, conn.ID)
	cn, err := e.Reg.Connector(e.Ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	rolled.entityID, rolled.ssoURL = idp.entityID, idp.ssoURL
	raw := rolled.response(t, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: "id-1", issuedAt: e.Clock.Now()})
	if _, err := cn.(*samlConnector).finish(e.Ctx, raw, e.pend(conn, "id-1", "")); err != nil {
		t.Fatalf("response signed with the rolled certificate: %v", err)
	}
	if n := len(eventsOf(t, e.DB, connections.EventCertificateExpiring)); n != 1 {
		t.Fatalf("%d certificate_expiring events after refresh, want still 1", n)
	}
	// The metadata endpoint failing keeps the last good settings.
	current.Store("<broken")
	e.Clock.Add(13 * time.Hour)
	e.Reg.Maintain(context.Background())
	conn2, _ := e.DB.Connection(e.Ctx, conn.ID)
	if cfg, _ := DecodeConfig(conn2.Config); len(cfg.IdPCertificates) != 2 {
		t.Fatalf("a failed refresh changed the certificates: %+v", cfg.IdPCertificates)
	}
}

// TestMetadataRefreshSignedRequests: an IdP whose metadata starts asking
// for signed AuthnRequests (WantAuthnRequestsSigned) is sent them after
// the next refresh of its metadata URL, as after the first read; the
// IdP (crewjam's, which refuses unsigned requests then) signs the user in.
func TestMetadataRefreshSignedRequests(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newIdPServer(t, 0)
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Refreshing", Settings{IdPMetadataURL: ptr(idp.srv.URL + "/metadata")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.view(conn).SignAuthnRequests {
		t.Fatal("requests signed before the IdP asked")
	}
	idp.idp.WantAuthnRequestsSigned = true
	e.Clock.Add(13 * time.Hour) // past MetadataRefresh
	if err := e.Reg.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, _ = e.DB.Connection(e.Ctx, conn.ID)
	if !e.view(conn).SignAuthnRequests {
		t.Fatal("the refreshed metadata asks for signed AuthnRequests; the connection does not sign them")
	}
	e.Clock.Add(-13 * time.Hour) // the IdP's clock is the real one
	if resp := samlLogin(t, e, idp, conn, "authreq-1"); resp.StatusCode != http.StatusOK || e.Last().Err != nil {
		t.Fatalf("login: %d %v", resp.StatusCode, e.Last().Err)
	}

	// And back: the IdP stops asking, the connection stops signing.
	idp.idp.WantAuthnRequestsSigned = false
	e.Clock.Add(26 * time.Hour) // past the refresh after the last one
	if err := e.Reg.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, _ = e.DB.Connection(e.Ctx, conn.ID)
	if e.view(conn).SignAuthnRequests {
		t.Fatal("the IdP no longer asks for signed AuthnRequests; the connection still signs them")
	}
}

// TestSAMLCertificatePasteForms: the IdP certificate, pasted as admins
// copy it — from a Windows file saved with a byte-order mark and CRLF,
// from a web page or a one-line field that lost the line breaks, from
// YAML or XML with indentation — is read, and a response it signs signs
// the user in.
func TestSAMLCertificatePasteForms(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	p := certPEM(idp.cert)
	b64 := base64.StdEncoding.EncodeToString(idp.cert.Raw)
	for name, pasted := range map[string]string{
		"CRLF":                   strings.ReplaceAll(p, "\n", "\r\n"),
		"byte-order mark":        "\ufeff" + strings.ReplaceAll(p, "\n", "\r\n"),
		"one line":               "-----BEGIN CERTIFICATE----- " + b64 + " -----END CERTIFICATE-----",
		"no white space at all":  "-----BEGIN CERTIFICATE-----" + b64 + "-----END CERTIFICATE-----",
		"indented":               "    " + strings.ReplaceAll(strings.TrimSpace(p), "\n", "\n    "),
		"bare base64 with a BOM": "\ufeff" + b64,
	} {
		t.Run(name, func(t *testing.T) {
			conn := e.samlConn(idp, func(s *Settings) { s.IdPCertificatesPEM = &PEMList{pasted} })
			cfg, _ := DecodeConfig(conn.Config)
			if len(cfg.IdPCertificates) != 1 || cfg.IdPCertificates[0].PEM != p {
				t.Fatalf("certificates = %+v", cfg.IdPCertificates)
			}
			cn, err := e.Reg.Connector(e.Ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			raw := idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: "id-1", issuedAt: e.Clock.Now()})
			if res, err := cn.(*samlConnector).finish(e.Ctx, raw, e.pend(conn, "id-1", "")); err != nil || res.Profile.Email != "alice@example.com" {
				t.Fatalf("sign-in = %+v, %v", res.Profile, err)
			}
		})
	}
	// What is not a certificate is still refused, saying what it is.
	for _, pasted := range []string{
		"-----BEGIN RSA PRIVATE KEY----- AAAA -----END RSA PRIVATE KEY-----",
		p + "trailing words",
		"-----BEGIN CERTIFICATE----- not base64! -----END CERTIFICATE-----",
	} {
		_, err := e.Reg.CreateConnection(e.Ctx, Name, "x", Settings{IdPCertificatesPEM: &PEMList{pasted}}.Request(), nil)
		wantErr(t, err, connections.ErrConfig, "")
		if fe, ok := errors.AsType[*connections.FieldError](err); !ok || fe.Field != "saml.idp_certificates_pem" {
			t.Fatalf("%q: %v does not name the field", pasted, err)
		}
	}
}

// TestCertificateExpiryCount: each whole maintenance pass tells
// Config.OnCertificates how many active connections trust only
// certificates that expire within 14 days, or only expired ones: a
// connection with a later certificate beside an expiring one (a rollover
// under way) is fine, and an inactive one counts for nothing.
func TestCertificateExpiryCount(t *testing.T) {
	var got [2]int
	calls := 0
	e := newEnv(t, envOpts{OnCertificates: func(expiring, expired int) { got, calls = [2]int{expiring, expired}, calls+1 }})
	idp := newTestIdP(t, 0)
	now := time.Now()
	soon := selfSigned(t, idp.key, "soon", now.Add(10*24*time.Hour))
	later := selfSigned(t, testKey(1), "later", now.Add(300*24*time.Hour))
	gone := selfSigned(t, idp.key, "gone", now.Add(-24*time.Hour))
	create := func(name string, active bool, certs ...*x509.Certificate) {
		t.Helper()
		conn, err := e.Reg.CreateConnection(e.Ctx, Name, name, Settings{IdPMetadataXML: ptr(metadataXML(idp.entityID, idp.ssoURL, certs...))}.Request(), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := store.ConnectionInactive
		if active {
			want = store.ConnectionActive
		}
		if conn.Status != want {
			if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Status: ptr(want)}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	create("expiring", true, soon)
	create("expiring too", true, soon)
	create("rolling over", true, soon, later)
	create("expired", true, gone)
	create("expired, inactive", false, gone)
	create("fine", true, later)
	if err := e.Reg.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || got != [2]int{2, 1} {
		t.Fatalf("OnCertificates called %d times, last with %v; want once with expiring 2, expired 1", calls, got)
	}
}
