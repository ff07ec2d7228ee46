package portal

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// TestGenericIdPsAreNamedInPlainWords: the wizard of a generic SAML or
// OIDC connection says "your identity provider" in its sentences, never
// the label of the choice ("Connect Other SAML 2.0 IdP"); a named IdP is
// named.
func TestGenericIdPsAreNamedInPlainWords(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, choose := get(t, c, h.url+"/portal/sso/new")
	for _, tc := range []struct {
		key  string
		want []string // on the wizard's pages
		not  []string
	}{
		{"saml", []string{"Create the app in your identity provider", "Connect your identity provider", "names your identity provider usually sends"},
			[]string{"in Other SAML", "Connect Other SAML", "beside Other SAML", "usual Other SAML", "through Other SAML", "connect Other SAML"}},
		{"oidc", []string{"Create the app in your identity provider", "Connect your identity provider", "goes through your identity provider"},
			[]string{"in OpenID Connect IdP", "Connect OpenID Connect IdP", "through OpenID Connect IdP", "connect OpenID Connect IdP"}},
		{"okta", []string{"Create the app in Okta", "Connect Okta", "names Okta usually sends", "goes through Okta"}, nil},
		// An OIDC connection of a named IdP stays that IdP's wizard at
		// every step, not the generic one's.
		{"okta-oidc", []string{"Create the app in Okta", "Connect Okta", "Sign-in redirect URIs", "Issuer URI"}, []string{"your identity provider"}},
		{"entra-oidc", []string{"Create the app in Microsoft Entra ID", "Connect Microsoft Entra ID", "App registrations", "Directory (tenant) ID",
			"Cloud-only group display names"}, []string{"your identity provider"}},
		// Entra's group claim sends object ids by default: an admin who
		// follows the wizard must learn how to send names.
		{"entra", []string{"Create the app in Microsoft Entra ID", "Add a group claim", "Cloud-only group display names"}, nil},
	} {
		t.Run(tc.key, func(t *testing.T) {
			resp, body := post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, choose)}, "idp": {tc.key}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("create = %d\n%s", resp.StatusCode, body)
			}
			base := h.url + strings.TrimSuffix(resp.Header.Get("Location"), "/setup")
			var all string
			for _, step := range []string{"setup", "idp", "attributes", "test"} {
				resp, body := get(t, c, base+"/"+step)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s = %d\n%s", step, resp.StatusCode, body)
				}
				all += body
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("the wizard never says %q", w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(all, w) {
					t.Errorf("the wizard says %q", w)
				}
			}
		})
	}
}

// TestTestingAnUnfinishedConnectionSaysWhatIsMissing: "Test connection"
// on a connection whose step 2 is not done answers in the words of the
// step's form, not the API's field names ("missing idp_entity_id,
// idp_sso_url, idp_certificates_pem" was what an admin read).
func TestTestingAnUnfinishedConnectionSaysWhatIsMissing(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, choose := get(t, c, h.url+"/portal/sso/new")
	for _, tc := range []struct {
		key  string
		want string
	}{
		{"saml", "we still need the IdP entity ID, the IdP sign-in URL and the IdP signing certificate."},
		{"okta", "Complete step 2, Connect Okta, then test again."},
		{"oidc", "we still need the issuer URL, the client ID and the client secret."},
	} {
		t.Run(tc.key, func(t *testing.T) {
			resp, body := post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, choose)}, "idp": {tc.key}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("create = %d\n%s", resp.StatusCode, body)
			}
			base := h.url + strings.TrimSuffix(resp.Header.Get("Location"), "/setup")
			resp, body = get(t, c, base+"/test/start")
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != strings.TrimPrefix(base, h.url)+"/test/result" {
				t.Fatalf("test start = %d → %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			_, body = get(t, c, base+"/test/result")
			if !strings.Contains(body, tc.want) {
				t.Errorf("the result page does not say %q:\n%s", tc.want, body)
			}
			for _, api := range []string{"idp_entity_id", "idp_sso_url", "idp_certificates_pem", "client_id", "client_secret"} {
				if strings.Contains(body, api) {
					t.Errorf("the result page names the API field %s", api)
				}
			}
		})
	}
}

// TestGroupsOverageWarning: a test sign-in whose profile says the IdP
// left the groups out (Entra ID's group overage) ends on a result page
// that warns the admin in words they can act on: what it means for the
// applications, and the setting to change in Entra ID. A sign-in with
// groups shows no warning.
func TestGroupsOverageWarning(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, choose := get(t, c, h.url+"/portal/sso/new")
	resp, body := post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, choose)}, "idp": {"entra"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create = %d\n%s", resp.StatusCode, body)
	}
	base := h.url + strings.TrimSuffix(resp.Header.Get("Location"), "/setup")
	connID := base[strings.LastIndex(base, "/")+1:]
	conn, err := h.store.Connection(ctx, connID)
	if err != nil {
		t.Fatal(err)
	}
	complete := h.portal.Complete(func(context.Context, http.ResponseWriter, *http.Request, store.Connection, connections.Result, error) {
		t.Fatal("a test login reached the broker")
	})
	warning := []string{
		"This person's groups were left out",
		"your applications receive none of this person's groups from Microsoft Entra ID",
		"give them fewer rights than they should have",
		"Groups assigned to the application",
		"filter the groups the claim sends",
	}
	for _, tc := range []struct {
		name    string
		prof    connections.Profile
		warning bool
	}{
		{"overage", connections.Profile{IdPSubject: "tid:oid", Email: "alice@acme.example", Groups: []string{}, GroupsOverage: true}, true},
		{"groups sent", connections.Profile{IdPSubject: "tid:oid", Email: "alice@acme.example", Groups: []string{"g1"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			complete(ctx, rec, httptest.NewRequest(http.MethodPost, "/sso/saml/"+conn.ID+"/acs", nil), conn,
				connections.Result{RequestID: "portal-test:1", Profile: tc.prof}, nil)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("complete = %d\n%s", rec.Code, rec.Body)
			}
			_, body := get(t, c, base+"/test/result")
			if !strings.Contains(body, "Test sign-in succeeded") {
				t.Fatalf("result page:\n%s", body)
			}
			for _, w := range warning {
				if got := strings.Contains(html.UnescapeString(body), w); got != tc.warning {
					t.Errorf("the page says %q: %v, want %v", w, got, tc.warning)
				}
			}
		})
	}
}

// TestOIDCTestResultShowsTheRefusedClaims: a test sign-in over OIDC that a
// profile rule refused (here an email outside the verified domains) shows
// the claims the IdP sent under "What … sent", as a SAML test shows the
// response; the callback's own parameters alone were "iss = …".
func TestOIDCTestResultShowsTheRefusedClaims(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, choose := get(t, c, h.url+"/portal/sso/new")
	resp, body := post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, choose)}, "idp": {"entra-oidc"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create = %d\n%s", resp.StatusCode, body)
	}
	base := h.url + strings.TrimSuffix(resp.Header.Get("Location"), "/setup")
	conn, err := h.store.Connection(ctx, base[strings.LastIndex(base, "/")+1:])
	if err != nil {
		t.Fatal(err)
	}
	complete := h.portal.Complete(func(context.Context, http.ResponseWriter, *http.Request, store.Connection, connections.Result, error) {
		t.Fatal("a test login reached the broker")
	})
	rec := httptest.NewRecorder()
	refused := fmt.Errorf("%w: the email's domain %q is not one of the organisation's verified domains", connections.ErrDomainNotAllowed, "evil.example")
	complete(ctx, rec, httptest.NewRequest(http.MethodGet, "/sso/oidc/"+conn.ID+"/callback?code=secret-code&state=s&iss=https%3A%2F%2Fidp.example", nil), conn,
		connections.Result{RequestID: "portal-test:1", Profile: connections.Profile{Raw: map[string]any{
			"email": "bob@evil.example", "sub": "00u1", "groups": []any{"Sales"}}}}, refused)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("complete = %d\n%s", rec.Code, rec.Body)
	}
	_, body = get(t, c, base+"/test/result")
	page := html.UnescapeString(body)
	for _, w := range []string{"Test sign-in failed", "iss = https://idp.example", `email = "bob@evil.example"`, `sub = "00u1"`, `groups = ["Sales"]`} {
		if !strings.Contains(page, w) {
			t.Errorf("the result page does not say %q:\n%s", w, page)
		}
	}
	if strings.Contains(page, "secret-code") {
		t.Error("the result page shows the authorization code")
	}
}
