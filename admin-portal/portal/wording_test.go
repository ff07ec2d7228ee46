package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

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
