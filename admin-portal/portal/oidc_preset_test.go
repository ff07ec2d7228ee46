package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/store"
)

// TestOIDCChoiceKeepsItsIdPsAttributes: a connection made from the
// portal's generic OpenID Connect choice leaves the attribute preset to
// its issuer, as one the operator API makes does (an Entra issuer reads
// preferred_username when there is no email claim); it was pinned to the
// generic preset, so an Entra user without a mailbox failed the test
// login for want of an email. Okta's and Entra's own OIDC choices keep
// their IdP's preset, through step 3's Save too.
func TestOIDCChoiceKeepsItsIdPsAttributes(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, choose := get(t, c, h.url+"/portal/sso/new")
	for _, tc := range []struct{ key, preset string }{{"oidc", ""}, {"okta-oidc", "okta"}, {"entra-oidc", "entra"}} {
		t.Run(tc.key, func(t *testing.T) {
			resp, body := post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, choose)}, "idp": {tc.key}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("create = %d\n%s", resp.StatusCode, body)
			}
			base := h.url + strings.TrimSuffix(resp.Header.Get("Location"), "/setup")
			connID := base[strings.LastIndex(base, "/")+1:]
			preset := func(when string) {
				t.Helper()
				conn, err := h.store.Connection(ctx, connID)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := oidc.DecodeConfig(conn.Config)
				if err != nil {
					t.Fatal(err)
				}
				got := ""
				if cfg.AttributeMapping != nil {
					got = cfg.AttributeMapping.Preset
				}
				if got != tc.preset {
					t.Errorf("%s: preset %q, want %q", when, got, tc.preset)
				}
			}
			preset("created")
			_, page := get(t, c, base+"/attributes")
			resp, body = post(t, c, base+"/attributes", url.Values{"csrf_token": {csrfOf(t, page)}, "groups": {"roles"}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("attributes = %d\n%s", resp.StatusCode, body)
			}
			preset("after step 3")
		})
	}
}

// TestEntraIssuerThatNamesNoTenant: Entra's multi-tenant discovery
// document names its issuer with a placeholder,
// https://login.microsoftonline.com/{tenantid}/v2.0, and admins copy it
// as it is, or the common endpoint: step 2 refuses both under the issuer
// field, saying to put the Directory (tenant) ID there, and keeps what
// was typed.
func TestEntraIssuerThatNamesNoTenant(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, choose := get(t, c, h.url+"/portal/sso/new")
	resp, body := post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, choose)}, "idp": {"entra-oidc"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create = %d\n%s", resp.StatusCode, body)
	}
	base := h.url + strings.TrimSuffix(resp.Header.Get("Location"), "/setup")
	for _, iss := range []string{
		"https://login.microsoftonline.com/{tenantid}/v2.0",
		"https://login.microsoftonline.com/common/v2.0",
		"https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration",
	} {
		t.Run(iss, func(t *testing.T) {
			_, page := get(t, c, base+"/idp")
			resp, body := post(t, c, base+"/idp", url.Values{"csrf_token": {csrfOf(t, page)}, "method": {"oidc"},
				"issuer": {iss}, "client_id": {"11111111-2222-3333-4444-555555555555"}, "client_secret": {"s3cret~value"}})
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("answer %d\n%s", resp.StatusCode, body)
			}
			i := strings.Index(body, `id="issuer-error">`)
			if i < 0 {
				t.Fatalf("no error under the issuer:\n%s", body)
			}
			msg := body[i:min(len(body), i+400)]
			if !strings.Contains(msg, "tenant id") {
				t.Errorf("issuer error %q does not say to give the tenant id", msg)
			}
			if !strings.Contains(body, `value="11111111-2222-3333-4444-555555555555"`) {
				t.Errorf("the client ID typed is not kept")
			}
		})
	}
}

// TestConnectionListNamesTheProtocol: with Okta offered over SAML and over
// OpenID Connect, the list of connections says which each is; both rows
// read "Okta".
func TestConnectionListNamesTheProtocol(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	for _, key := range []string{"okta", "okta-oidc"} {
		_, choose := get(t, c, h.url+"/portal/sso/new")
		if resp, body := post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, choose)}, "idp": {key}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("create %s = %d\n%s", key, resp.StatusCode, body)
		}
	}
	_, list := get(t, c, h.url+"/portal/sso")
	for _, want := range []string{"<td>Okta · SAML 2.0</td>", "<td>Okta · OpenID Connect</td>"} {
		if !strings.Contains(list, want) {
			t.Errorf("the list has no %q:\n%s", want, list)
		}
	}
}

// TestOIDCStep2KeepsTheSecret: Entra and Okta show a client secret's
// value once. A step 2 that failed on the issuer used to render the form
// again without the secret, so the admin had to make a new one; now the
// secret is saved on its own while the connection is a draft, the page
// says so, and the next try may leave the field empty.
func TestOIDCStep2KeepsTheSecret(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, choose := get(t, c, h.url+"/portal/sso/new")
	resp, body := post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, choose)}, "idp": {"entra-oidc"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create = %d\n%s", resp.StatusCode, body)
	}
	base := h.url + strings.TrimSuffix(resp.Header.Get("Location"), "/setup")
	connID := base[strings.LastIndex(base, "/")+1:]
	const clientID = "11111111-2222-3333-4444-555555555555"
	for i, tc := range []struct{ issuer, secret string }{
		{"https://login.microsoftonline.com/common/v2.0", "s3cret~value"},
		{"", ""}, // the issuer forgotten: the saved secret still counts
		{"https://login.microsoftonline.com/organizations/v2.0", ""},
	} {
		_, page := get(t, c, base+"/idp")
		resp, body := post(t, c, base+"/idp", url.Values{"csrf_token": {csrfOf(t, page)}, "method": {"oidc"},
			"issuer": {tc.issuer}, "client_id": {clientID}, "client_secret": {tc.secret}})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("try %d: answer %d\n%s", i, resp.StatusCode, body)
		}
		if !strings.Contains(body, `id="issuer-error">`) {
			t.Errorf("try %d: no error under the issuer", i)
		}
		if strings.Contains(body, `id="client_secret-error"`) {
			t.Errorf("try %d: the secret is asked for again", i)
		}
		if !strings.Contains(body, "A secret is saved") {
			t.Errorf("try %d: the page does not say a secret is saved", i)
		}
		if strings.Contains(body, "s3cret~value") {
			t.Errorf("try %d: the secret is in the page", i)
		}
		conn, err := h.store.Connection(ctx, connID)
		if err != nil {
			t.Fatal(err)
		}
		if conn.Status != store.ConnectionDraft {
			t.Errorf("try %d: status %q, want draft", i, conn.Status)
		}
		if conn.Secrets[oidc.SecretClientSecret] == "" {
			t.Errorf("try %d: no secret stored", i)
		}
	}
}
