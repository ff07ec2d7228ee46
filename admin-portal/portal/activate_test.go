package portal

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

// TestActivateOnlyTheVersionShown: Activate carries the version of the
// connection its page showed, and a connection changed since (another
// tab, another admin) is not activated: the admin is told to test again.
func TestActivateOnlyTheVersionShown(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	conn, err := h.reg.CreateConnection(ctx, saml.Name, "Acme Okta", connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSignedPEM(t)
	// setSSO is the other tab: it changes the IdP's sign-in URL, keeping
	// a draft a draft.
	setSSO := func(ssoURL string) store.Connection {
		t.Helper()
		entity := "https://idp.acme.example"
		u := connections.Update{Settings: saml.Settings{IdPEntityID: &entity, IdPSSOURL: &ssoURL, IdPCertificatesPEM: &saml.PEMList{cert}}.Request()}
		if cur, err := h.store.Connection(ctx, conn.ID); err != nil {
			t.Fatal(err)
		} else if cur.Status == store.ConnectionDraft {
			draft := store.ConnectionDraft
			u.Status = &draft
		}
		out, err := h.reg.UpdateConnection(ctx, conn.ID, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// tested records a passing test login of the connection as it is.
	tested := func(c store.Connection) {
		t.Helper()
		b, _ := json.Marshal(testResult{OK: true, At: h.clock(), Profile: &testProfile{Email: "alice@acme.example"}})
		if err := h.store.SaveConnectionTest(ctx, store.ConnectionTest{ConnectionID: c.ID, OK: true, ConnUpdatedAt: c.UpdatedAt, Result: b}); err != nil {
			t.Fatal(err)
		}
	}
	status := func() store.ConnectionStatus {
		t.Helper()
		cur, err := h.store.Connection(ctx, conn.ID)
		if err != nil {
			t.Fatal(err)
		}
		return cur.Status
	}
	activations := func() int {
		t.Helper()
		rows, _, err := h.store.AuditEvents(ctx, "connection.activated", store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}

	c := h.open(h.link(ctx, store.IntentSSO))
	testPage := h.url + "/portal/sso/" + conn.ID + "/test"
	activate := h.url + "/portal/sso/" + conn.ID + "/activate"
	// page is the test page as a tab shows it: its CSRF token and the
	// version its Activate form carries.
	page := func() (token, version string) {
		t.Helper()
		resp, body := get(t, c, testPage)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("test page = %d\n%s", resp.StatusCode, body)
		}
		return csrfOf(t, body), versionOf(t, body)
	}
	refused := func(when string, form url.Values, want store.ConnectionStatus, wantRows int) {
		t.Helper()
		resp, body := post(t, c, activate, form)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "changed since you tested it: test again") {
			t.Fatalf("%s: activate = %d, want 409 and the test-again error\n%s", when, resp.StatusCode, body)
		}
		if got := status(); got != want {
			t.Fatalf("%s: status %s after a refused activation, want %s", when, got, want)
		}
		if got := activations(); got != wantRows {
			t.Fatalf("%s: %d connection.activated audit rows, want %d", when, got, wantRows)
		}
	}

	// Tab A tests the first settings and shows Activate.
	tested(setSSO("https://idp.acme.example/sso/one"))
	token, shown := page()
	// Tab B changes the sign-in URL and tests that too, so the connection
	// is "tested" again, but not what tab A showed.
	tested(setSSO("https://idp.acme.example/sso/two"))
	refused("tested in another tab", url.Values{"csrf_token": {token}, "version": {shown}}, store.ConnectionDraft, 0)
	// A form without a version (a page from before) is refused the same way.
	refused("no version", url.Values{"csrf_token": {token}}, store.ConnectionDraft, 0)
	refused("bad version", url.Values{"csrf_token": {token}, "version": {"x"}}, store.ConnectionDraft, 0)

	// The page as it now is activates.
	token, shown = page()
	if resp, body := post(t, c, activate, url.Values{"csrf_token": {token}, "version": {shown}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("activate the current version = %d\n%s", resp.StatusCode, body)
	}
	if got := status(); got != store.ConnectionActive {
		t.Fatalf("status %s after activating, want active", got)
	}

	// An inactive connection needs no new test to be turned back on, so
	// the version is all that stops a tab from turning on settings it
	// never showed.
	_, body := get(t, c, testPage)
	if resp, _ := post(t, c, h.url+"/portal/sso/"+conn.ID+"/deactivate", url.Values{"csrf_token": {csrfOf(t, body)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deactivate = %d", resp.StatusCode)
	}
	token, shown = page()
	setSSO("https://idp.acme.example/sso/three")
	refused("inactive, changed in another tab", url.Values{"csrf_token": {token}, "version": {shown}}, store.ConnectionInactive, 1)
	token, shown = page()
	if resp, body := post(t, c, activate, url.Values{"csrf_token": {token}, "version": {shown}}); resp.StatusCode != http.StatusSeeOther || status() != store.ConnectionActive {
		t.Fatalf("turn back on = %d, status %s\n%s", resp.StatusCode, status(), body)
	}
	if got := activations(); got != 2 {
		t.Fatalf("%d connection.activated audit rows, want 2", got)
	}
}

// versionOf reads the version the Activate form carries.
func versionOf(t *testing.T, body string) string {
	t.Helper()
	const marker = `name="version" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no version field in page:\n%s", body)
	}
	rest := body[i+len(marker):]
	v := rest[:strings.IndexByte(rest, '"')]
	if _, err := strconv.ParseInt(v, 10, 64); err != nil {
		t.Fatalf("version field %q", v)
	}
	return v
}

func selfSignedPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.acme.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestTurningOnOrOffKeepsTheTest: activating a tested connection, or
// turning it off, changes its status and not its settings, so the test
// login stays the test of the connection as it is: the wizard does not
// say the settings "changed since" and ask for a new test. A change of
// settings still does.
func TestTurningOnOrOffKeepsTheTest(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	entity, sso, cert := "https://idp.acme.example", "https://idp.acme.example/sso", selfSignedPEM(t)
	draft := store.ConnectionDraft
	// The wizard's draft: created empty, then filled in as a draft.
	conn, err := h.reg.CreateConnection(ctx, saml.Name, "Acme Okta", connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err = h.reg.UpdateConnection(ctx, conn.ID, connections.Update{Status: &draft,
		Settings: saml.Settings{IdPEntityID: &entity, IdPSSOURL: &sso, IdPCertificatesPEM: &saml.PEMList{cert}}.Request()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(testResult{OK: true, At: h.clock(), Profile: &testProfile{Email: "alice@acme.example"}})
	if err := h.store.SaveConnectionTest(ctx, store.ConnectionTest{ConnectionID: conn.ID, OK: true, ConnUpdatedAt: conn.UpdatedAt, Result: b}); err != nil {
		t.Fatal(err)
	}

	c := h.open(h.link(ctx, store.IntentSSO))
	testPage := h.url + "/portal/sso/" + conn.ID + "/test"
	const stale = "settings changed since"
	page := func(when string, wantStale bool) string {
		t.Helper()
		resp, body := get(t, c, testPage)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: test page = %d\n%s", when, resp.StatusCode, body)
		}
		if got := strings.Contains(body, stale); got != wantStale {
			t.Fatalf("%s: page says %q: %v, want %v\n%s", when, stale, got, wantStale, body)
		}
		return body
	}
	body := page("tested draft", false)
	if resp, body := post(t, c, testPage[:len(testPage)-len("/test")]+"/activate", url.Values{"csrf_token": {csrfOf(t, body)}, "version": {versionOf(t, body)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("activate = %d\n%s", resp.StatusCode, body)
	}
	body = page("just activated", false)
	if !strings.Contains(body, "Last test") {
		t.Fatalf("the test login is gone after activating:\n%s", body)
	}
	if resp, body := post(t, c, h.url+"/portal/sso/"+conn.ID+"/deactivate", url.Values{"csrf_token": {csrfOf(t, body)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deactivate = %d\n%s", resp.StatusCode, body)
	}
	page("just turned off", false)

	// A change of settings is what makes a test stale.
	other := "https://idp.acme.example/sso/two"
	if _, err := h.reg.UpdateConnection(ctx, conn.ID, connections.Update{Settings: saml.Settings{IdPSSOURL: &other}.Request()}, nil); err != nil {
		t.Fatal(err)
	}
	page("settings changed", true)
}

// TestRenameAConnection: the admin names a connection (two Okta
// connections were both "Okta" in the list, with no way to tell them
// apart); a refused name keeps the old one and says why; a rename is not
// a setting, so the last test login stays current.
func TestRenameAConnection(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	entity, sso, cert := "https://idp.acme.example", "https://idp.acme.example/sso", selfSignedPEM(t)
	draft := store.ConnectionDraft
	conn, err := h.reg.CreateConnection(ctx, saml.Name, "Okta", connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if conn, err = h.reg.UpdateConnection(ctx, conn.ID, connections.Update{Status: &draft,
		Settings: saml.Settings{IdPEntityID: &entity, IdPSSOURL: &sso, IdPCertificatesPEM: &saml.PEMList{cert}}.Request()}, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(testResult{OK: true, At: h.clock(), Profile: &testProfile{Email: "alice@acme.example"}})
	if err := h.store.SaveConnectionTest(ctx, store.ConnectionTest{ConnectionID: conn.ID, OK: true, ConnUpdatedAt: conn.UpdatedAt, Result: b}); err != nil {
		t.Fatal(err)
	}
	c := h.open(h.link(ctx, store.IntentSSO))
	base := h.url + "/portal/sso/" + conn.ID
	_, page := get(t, c, base+"/test")

	resp, body := post(t, c, base+"/name", url.Values{"csrf_token": {csrfOf(t, page)}, "name": {"   "}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="conn-name-error"`) {
		t.Fatalf("an empty name = %d, want 422 with the field's error\n%s", resp.StatusCode, body)
	}
	if resp, body = post(t, c, base+"/name", url.Values{"csrf_token": {csrfOf(t, page)}, "name": {"Okta (staff)"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("rename = %d\n%s", resp.StatusCode, body)
	}
	if _, list := get(t, c, h.url+"/portal/sso"); !strings.Contains(list, "Okta (staff)") {
		t.Errorf("the list does not show the new name:\n%s", list)
	}
	if _, page = get(t, c, base+"/test"); strings.Contains(page, "settings changed since") || !strings.Contains(page, "Tested") {
		t.Errorf("renaming made the test stale, or the draft active:\n%s", page)
	}
	rows, _, err := h.store.AuditEvents(ctx, "connection.updated", store.Page{Limit: 10})
	if err != nil || len(rows) != 1 || rows[0].Resource.Name != "Okta (staff)" || rows[0].Actor.Type != "tenant_admin" {
		t.Fatalf("audit rows %+v, %v", rows, err)
	}
}
