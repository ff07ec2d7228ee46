package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

// samlDraft is a complete SAML connection as the wizard leaves it before
// activation: a draft with the IdP's manual settings.
func samlDraft(t *testing.T, h *harness, ctx context.Context, name string) store.Connection {
	t.Helper()
	entity, sso, cert := "https://idp.acme.example", "https://idp.acme.example/sso", selfSignedPEM(t)
	conn, err := h.reg.CreateConnection(ctx, saml.Name, name, connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	draft := store.ConnectionDraft
	conn, err = h.reg.UpdateConnection(ctx, conn.ID, connections.Update{Status: &draft,
		Settings: saml.Settings{IdPEntityID: &entity, IdPSSOURL: &sso, IdPCertificatesPEM: &saml.PEMList{cert}}.Request()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// samlConfig reads the connection's stored settings.
func samlConfig(t *testing.T, h *harness, ctx context.Context, id string) (store.Connection, saml.Config) {
	t.Helper()
	conn, err := h.store.Connection(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := saml.DecodeConfig(conn.Config)
	if err != nil {
		t.Fatal(err)
	}
	return conn, cfg
}

// advancedForm is the advanced form as the page shows it (every control
// with its current value, a checked box as "on"), with changes applied.
func advancedForm(t *testing.T, page string, changes map[string]string) url.Values {
	t.Helper()
	f := url.Values{"csrf_token": {csrfOf(t, page)}, "version": {versionOf(t, page)}}
	i := strings.Index(page, `action="`)
	for i >= 0 && !strings.Contains(page[i:i+200], `/advanced"`) {
		j := strings.Index(page[i+1:], `action="`)
		if j < 0 {
			t.Fatalf("no advanced form in the page:\n%s", page)
		}
		i += 1 + j
	}
	form := page[i:]
	form = form[:strings.Index(form, "</form>")]
	for _, box := range []string{"allow_sha1", "sign_authn_requests", "encrypt_assertions"} {
		k := strings.Index(form, `name="`+box+`"`)
		if k < 0 {
			t.Fatalf("no %s box", box)
		}
		tag := form[k : k+strings.Index(form[k:], ">")]
		if strings.Contains(tag, " checked") && !strings.Contains(tag, " disabled") {
			f.Set(box, "on")
		}
	}
	k := strings.Index(form, `name="clock_skew_seconds"`)
	rest := form[k:]
	rest = rest[strings.Index(rest, `value="`)+len(`value="`):]
	f.Set("clock_skew_seconds", rest[:strings.IndexByte(rest, '"')])
	f.Set("name_id_format", "")
	if k := strings.Index(form, `" selected>`); k >= 0 {
		v := form[:k]
		f.Set("name_id_format", v[strings.LastIndex(v, `"`)+1:])
	}
	for k, v := range changes {
		if v == "" && k != "name_id_format" {
			f.Del(k)
			continue
		}
		f.Set(k, v)
	}
	return f
}

// TestAdvancedSettingsChangeTheConnection: the advanced section of the
// test page is folded away, shows the connection's settings, and saving
// it changes them as the operator API does (the connection's settings,
// its SP metadata), with an audit row naming the portal session, and
// leaves a draft a draft. An untouched form writes nothing.
func TestAdvancedSettingsChangeTheConnection(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	conn := samlDraft(t, h, ctx, "Acme AD FS")
	link := h.link(ctx, store.IntentSSO)
	c := h.open(link)
	base := h.url + "/portal/sso/" + conn.ID

	_, page := get(t, c, base+"/test")
	for _, w := range []string{`id="advanced-settings">`, "Accept SHA-1 signatures", "Allowed clock difference (seconds)", `value="90"`,
		"Automatic (Persistent)", "Sign-ins started from your identity provider's dashboard (its app tile) are refused", "Acme HR sets this"} {
		if !strings.Contains(html.UnescapeString(page), w) {
			t.Errorf("the test page does not say %q\n%s", w, page)
		}
	}
	if strings.Contains(page, `id="advanced-metadata"`) {
		t.Error("the page asks for the metadata again before encryption is on")
	}

	// An untouched form is no change: no new version, no audit row.
	resp, body := post(t, c, base+"/advanced", advancedForm(t, page, nil))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save untouched = %d\n%s", resp.StatusCode, body)
	}
	if got, _ := samlConfig(t, h, ctx, conn.ID); got.Version != conn.Version {
		t.Fatalf("an untouched form wrote version %d over %d", got.Version, conn.Version)
	}

	resp, body = post(t, c, base+"/advanced", advancedForm(t, page, map[string]string{
		"allow_sha1": "on", "clock_skew_seconds": "150", "encrypt_assertions": "on", "sign_authn_requests": "on", "name_id_format": "email"}))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/sso/"+conn.ID+"/test?advanced=open#advanced" {
		t.Fatalf("save = %d → %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	after, cfg := samlConfig(t, h, ctx, conn.ID)
	if !cfg.AllowSHA1 || cfg.ClockSkewSeconds != 150 || !cfg.EncryptAssertions || !cfg.SignAuthnRequests || cfg.NameIDFormat != saml.NameIDEmail {
		t.Fatalf("stored settings %+v", cfg)
	}
	if after.Status != store.ConnectionDraft {
		t.Fatalf("saving made the draft %s", after.Status)
	}
	// What the API shows of the connection says the same.
	view, err := h.reg.Describe(after)
	if err != nil {
		t.Fatal(err)
	}
	if sv := samlView(view); !sv.AllowSHA1 || sv.ClockSkewSeconds != 150 || !sv.EncryptAssertions || !sv.SignAuthnRequests || sv.NameIDFormat != "email" {
		t.Fatalf("the connection's view: %+v", sv)
	}
	rows, _, err := h.store.AuditEvents(ctx, "connection.updated", store.Page{Limit: 10})
	if err != nil || len(rows) != 1 {
		t.Fatalf("audit rows %+v, %v", rows, err)
	}
	var details struct{ Changes []string }
	if err := json.Unmarshal(rows[0].Context, &details); err != nil {
		t.Fatal(err)
	}
	if rows[0].Actor.Type != "tenant_admin" || !store.HasPrefix(rows[0].Actor.ID, store.PrefixPortalLink) ||
		strings.Join(details.Changes, ",") != "saml.allow_sha1,saml.clock_skew_seconds,saml.encrypt_assertions,saml.name_id_format,saml.sign_authn_requests" {
		t.Fatalf("audit row %+v %s", rows[0].Actor, rows[0].Context)
	}

	// The SP metadata now carries the encryption key and signed requests:
	// the page says to import it again, and offers it.
	resp, page = get(t, c, base+"/test?advanced=open")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("test page = %d", resp.StatusCode)
	}
	for _, w := range []string{`id="advanced-settings" open`, `id="advanced-metadata"`, "import our SP metadata into it again", `href="/portal/sso/` + conn.ID + `/metadata.xml"`,
		`id="sp-metadata-url"`, `value="150"`, `<option value="email" selected>`, "Our SP metadata changed"} {
		if !strings.Contains(page, w) {
			t.Errorf("after turning encryption on the page does not say %q", w)
		}
	}
	_, md := get(t, c, base+"/metadata.xml")
	if !strings.Contains(md, `use="encryption"`) || !strings.Contains(md, `AuthnRequestsSigned="true"`) || !strings.Contains(md, "nameid-format:emailAddress") {
		t.Errorf("the SP metadata has no encryption key, unsigned requests or another NameID format:\n%s", md)
	}

	// Back to automatic and the default allowance; off again.
	resp, body = post(t, c, base+"/advanced", advancedForm(t, page, map[string]string{
		"allow_sha1": "", "clock_skew_seconds": "0", "encrypt_assertions": "", "sign_authn_requests": "", "name_id_format": ""}))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("turn off = %d\n%s", resp.StatusCode, body)
	}
	if _, cfg = samlConfig(t, h, ctx, conn.ID); cfg.AllowSHA1 || cfg.ClockSkew() != saml.DefaultClockSkew || cfg.EncryptAssertions || cfg.SignAuthnRequests || cfg.NameIDFormat != "" {
		t.Fatalf("stored settings after turning off %+v", cfg)
	}
	if _, md = get(t, c, base+"/metadata.xml"); strings.Contains(md, `use="encryption"`) {
		t.Error("the SP metadata keeps the encryption key")
	}
}

// TestAdvancedSettingsRefusals: a value the connection refuses is
// refused with the registry's reason in the form's words, beside its
// field; a page showing an older version of the connection is 409 and
// shows the current settings; a form without the session's token is
// 403; another tenant's connection, and a connection that is not SAML,
// are 404. None of them writes anything.
func TestAdvancedSettingsRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	conn := samlDraft(t, h, ctx, "Acme AD FS")
	otherCtx := h.tenant("Globex", "globex.example")
	other := samlDraft(t, h, otherCtx, "Globex Okta")
	oidcConn, err := h.reg.CreateConnection(ctx, oidc.Name, "Acme OIDC", connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := h.open(h.link(ctx, store.IntentSSO))
	base := h.url + "/portal/sso/" + conn.ID
	_, page := get(t, c, base+"/test")

	for _, tc := range []struct {
		name   string
		to     string
		form   url.Values
		status int
		want   []string
	}{
		{"skew past the largest", base + "/advanced", advancedForm(t, page, map[string]string{"clock_skew_seconds": "500", "allow_sha1": "on"}), http.StatusUnprocessableEntity,
			[]string{`id="adv-clock-skew-error"`, "The allowed clock difference (in seconds) must be between 0 and 180.", `aria-invalid="true"`, `value="500"`, `id="advanced-settings" open`}},
		{"skew not a number", base + "/advanced", advancedForm(t, page, map[string]string{"clock_skew_seconds": "ninety"}), http.StatusUnprocessableEntity,
			[]string{`id="adv-clock-skew-error"`, "Enter a whole number of seconds, for example 90."}},
		{"transient NameIDs", base + "/advanced", advancedForm(t, page, map[string]string{"name_id_format": "transient"}), http.StatusUnprocessableEntity,
			[]string{`id="adv-name-id-error"`, "The NameID format must be persistent, email or unspecified (transient cannot identify a user)."}},
		{"stale version", base + "/advanced", advancedForm(t, page, map[string]string{"allow_sha1": "on", "version": fmt.Sprint(conn.Version - 1)}), http.StatusConflict,
			[]string{errChangedSinceShown}},
		{"no version", base + "/advanced", advancedForm(t, page, map[string]string{"allow_sha1": "on", "version": ""}), http.StatusConflict,
			[]string{errChangedSinceShown}},
		{"no CSRF token", base + "/advanced", advancedForm(t, page, map[string]string{"allow_sha1": "on", "csrf_token": ""}), http.StatusForbidden,
			[]string{"Request refused"}},
		{"another tenant's connection", h.url + "/portal/sso/" + other.ID + "/advanced", advancedForm(t, page, map[string]string{"allow_sha1": "on", "version": fmt.Sprint(other.Version)}), http.StatusNotFound,
			[]string{"Page not found"}},
		{"an OIDC connection", h.url + "/portal/sso/" + oidcConn.ID + "/advanced", advancedForm(t, page, map[string]string{"allow_sha1": "on", "version": fmt.Sprint(oidcConn.Version)}), http.StatusNotFound,
			[]string{"Page not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, c, tc.to, tc.form)
			if resp.StatusCode != tc.status {
				t.Fatalf("= %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			page := html.UnescapeString(body)
			for _, w := range tc.want {
				if !strings.Contains(page, html.UnescapeString(w)) {
					t.Errorf("the answer does not say %q:\n%s", w, page)
				}
			}
			for _, cc := range []struct {
				ctx  context.Context
				conn store.Connection
			}{{ctx, conn}, {otherCtx, other}} {
				got, cfg := samlConfig(t, h, cc.ctx, cc.conn.ID)
				if got.Version != cc.conn.Version || cfg.AllowSHA1 || cfg.ClockSkewSeconds != 0 || cfg.NameIDFormat != "" {
					t.Fatalf("%s changed: version %d, %+v", cc.conn.ID, got.Version, cfg)
				}
			}
		})
	}
	if rows, _, err := h.store.AuditEvents(ctx, "connection.updated", store.Page{Limit: 10}); err != nil || len(rows) != 0 {
		t.Fatalf("audit rows after refusals: %+v, %v", rows, err)
	}
	// An OIDC connection's test page has no such section.
	if _, body := get(t, c, h.url+"/portal/sso/"+oidcConn.ID+"/test"); strings.Contains(body, "Advanced settings") {
		t.Error("an OIDC connection's page shows the SAML advanced settings")
	}
}

// TestFailedTestLinksToTheSetting: a test sign-in refused for a SHA-1
// signature, or for dates outside the allowed clock difference, ends on a
// result page that links to the setting that changes it, opened; the
// reason names the setting in the form's words, not the API's. Other
// failures, an OIDC connection's, and a setting already at its limit
// link nowhere.
func TestFailedTestLinksToTheSetting(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	conn := samlDraft(t, h, ctx, "Acme AD FS")
	oidcConn, err := h.reg.CreateConnection(ctx, oidc.Name, "Acme OIDC", connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := h.open(h.link(ctx, store.IntentSSO))
	complete := h.portal.Complete(func(context.Context, http.ResponseWriter, *http.Request, store.Connection, connections.Result, error) {
		t.Fatal("a test login reached the broker")
	})
	// The refusals as the SAML connector words them.
	sha1 := fmt.Errorf("%w: signature method http://www.w3.org/2000/09/xmldsig#rsa-sha1 (SHA-1) is not supported; have the IdP sign with SHA-256 (AD FS: the relying party trust's Advanced tab), or have SHA-1 accepted on this connection (its allow_sha1 setting: Accept SHA-1 signatures under Advanced settings in the setup portal, or the operator API)", connections.ErrSignature)
	late := fmt.Errorf("%w: NotOnOrAfter was 2026-01-01T10:00:00Z, now is 2026-01-01T10:05:00Z (skew 1m30s)", connections.ErrExpired)
	wrongCert := fmt.Errorf("%w: the response was signed with a certificate this connection does not trust", connections.ErrSignature)
	for _, tc := range []struct {
		name    string
		conn    store.Connection
		err     error
		skew    int
		anchor  string
		setting string
	}{
		{"SHA-1", conn, sha1, 0, "adv-allow-sha1", "Accept SHA-1 signatures"},
		{"clock", conn, late, 0, "adv-clock-skew", "Allowed clock difference"},
		{"clock at the largest allowance", conn, late, 180, "", ""},
		{"untrusted certificate", conn, wrongCert, 0, "", ""},
		{"OIDC clock", oidcConn, late, 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.conn
			if tc.conn.Type == saml.Name {
				skew := tc.skew
				draft := store.ConnectionDraft
				target, err = h.reg.UpdateConnection(ctx, tc.conn.ID, connections.Update{Status: &draft, Settings: saml.Settings{ClockSkewSeconds: &skew}.Request()}, nil)
				if err != nil {
					t.Fatal(err)
				}
			}
			rec := httptest.NewRecorder()
			complete(ctx, rec, httptest.NewRequest(http.MethodPost, "/sso/saml/"+target.ID+"/acs", nil), target,
				connections.Result{RequestID: "portal-test:1"}, tc.err)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("complete = %d\n%s", rec.Code, rec.Body)
			}
			_, body := get(t, c, h.url+"/portal/sso/"+target.ID+"/test/result")
			if !strings.Contains(body, "Test sign-in failed") {
				t.Fatalf("result page:\n%s", body)
			}
			href := `href="/portal/sso/` + target.ID + `/test?advanced=open#` + tc.anchor + `"`
			if got := strings.Contains(body, `id="fix-setting"`); got != (tc.anchor != "") {
				t.Fatalf("the page links to a setting: %v\n%s", got, body)
			}
			if tc.anchor == "" {
				return
			}
			if !strings.Contains(body, href) || !strings.Contains(body, tc.setting) {
				t.Fatalf("the page does not link %s to %s:\n%s", tc.setting, href, body)
			}
			if tc.anchor == "adv-allow-sha1" && (!strings.Contains(html.UnescapeString(body), sha1Hint) || strings.Contains(body, "not signed with a certificate this connection trusts")) {
				t.Errorf("the SHA-1 refusal has the certificate's hint:\n%s", body)
			}
			if strings.Contains(body, "allow_sha1") || strings.Contains(body, "clock_skew_seconds") {
				t.Errorf("the page names the API's setting:\n%s", body)
			}
			// The link opens the section, at the setting.
			_, page := get(t, c, h.url+"/portal/sso/"+target.ID+"/test?advanced=open")
			if !strings.Contains(page, `id="advanced-settings" open`) || !strings.Contains(page, `id="`+tc.anchor+`"`) {
				t.Errorf("the link's page does not show the setting opened:\n%s", page)
			}
		})
	}
}

// TestAdvancedSettingsOfAnIdPThatWantsSignedRequests: when the IdP's
// metadata asks for signed requests (WantAuthnRequestsSigned), they are
// signed whatever the admin chose: the box is shown ticked and disabled,
// saying why, and a save (which a disabled box is absent from) leaves the
// admin's own choice as it was. AD FS's automatic NameID format is
// unspecified, and the page says so.
func TestAdvancedSettingsOfAnIdPThatWantsSignedRequests(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	md := strings.Replace(string(adfsMetadata(selfSignedPEM(t), selfSignedPEM(t))), "<IDPSSODescriptor ", `<IDPSSODescriptor WantAuthnRequestsSigned="true" `, 1)
	conn, err := h.reg.CreateConnection(ctx, saml.Name, "Acme AD FS", connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	draft := store.ConnectionDraft
	if conn, err = h.reg.UpdateConnection(ctx, conn.ID, connections.Update{Status: &draft, Settings: saml.Settings{IdPMetadataXML: &md}.Request()}, nil); err != nil {
		t.Fatal(err)
	}
	c := h.open(h.link(ctx, store.IntentSSO))
	base := h.url + "/portal/sso/" + conn.ID
	_, page := get(t, c, base+"/test")
	text := html.UnescapeString(page)
	for _, w := range []string{`name="sign_authn_requests" checked disabled`, "They are signed whatever you choose here: the metadata of your identity provider asks for signed requests.", "Automatic (Unspecified)"} {
		if !strings.Contains(text, w) {
			t.Errorf("the page does not say %q", w)
		}
	}
	if resp, body := post(t, c, base+"/advanced", advancedForm(t, page, map[string]string{"allow_sha1": "on"})); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save = %d\n%s", resp.StatusCode, body)
	}
	after, cfg := samlConfig(t, h, ctx, conn.ID)
	if !cfg.AllowSHA1 || cfg.SignAuthnRequests || !cfg.IdPWantsSignedRequests || after.Status != store.ConnectionDraft {
		t.Fatalf("after saving: %s, %+v", after.Status, cfg)
	}
}
