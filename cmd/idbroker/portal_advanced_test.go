package main

import (
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// TestPortalAdvancedSettingsWithARealIdP: a tenant's admin fixes in the
// portal alone what used to need the vendor, against a real SAML IdP and
// the real binary. An IdP that signs with SHA-1 fails the portal's test
// sign-in, whose result links to Accept SHA-1 signatures; turned on
// there, the next test passes. An IdP whose clock is two minutes ahead
// fails the clock check, linked to the allowed clock difference; raised
// to 150 seconds, the next test passes. Encryption turned on in the
// portal puts the key in the SP metadata the IdP reads, and the IdP's
// encrypted assertion passes the test.
func TestPortalAdvancedSettingsWithARealIdP(t *testing.T) {
	t.Parallel()
	u := newUpstreamEnv(t, map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envRedisURL:    ownRedis(t),
	})
	v := newVendorIdP(t)
	v.set(func(v *vendorIdP) {
		v.attrs = []saml.Attribute{strAttr("email", "alice@"+u.domain)}
		v.sigMethod = dsig.RSASHA1SignatureMethod
	})
	conn := u.samlConnection(v, nil)

	var link struct {
		URL string `json:"url"`
	}
	if code := u.b.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": u.tenantID, "intent": "sso"}, &link); code != http.StatusCreated {
		t.Fatalf("POST /portal_links = %d", code)
	}
	jar, _ := cookiejar.New(nil)
	admin := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	read := pageReader(t)
	read(admin.Get(link.URL))
	base := u.b.base + "/portal/sso/" + conn

	// testLogin runs the wizard's Test connection through the IdP and
	// returns the result page.
	testLogin := func(what string) string {
		t.Helper()
		page, at := read(admin.Get(base + "/test/start"))
		if !strings.Contains(page, "SAMLResponse") {
			t.Fatalf("%s: the IdP did not answer (%s):\n%s", what, at, page)
		}
		form := url.Values{}
		for _, m := range regexp.MustCompile(`name="(\w+)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			form.Set(m[1], html.UnescapeString(m[2]))
		}
		acs := html.UnescapeString(regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)[1])
		page, at = read(admin.PostForm(acs, form))
		if !strings.HasSuffix(at, "/test/result") {
			t.Fatalf("%s: the test ended at %s:\n%s", what, at, page)
		}
		return html.UnescapeString(page)
	}
	// save posts the advanced form of the test page with the given
	// values, the others as the page shows them.
	save := func(what string, values url.Values) {
		t.Helper()
		page, _ := read(admin.Get(base + "/test"))
		form := url.Values{
			"csrf_token":         {regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)[1]},
			"version":            {regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(page)[1]},
			"clock_skew_seconds": {regexp.MustCompile(`name="clock_skew_seconds"[^>]*value="(\d+)"`).FindStringSubmatch(page)[1]},
		}
		for _, box := range []string{"allow_sha1", "sign_authn_requests", "encrypt_assertions"} {
			if regexp.MustCompile(`name="` + box + `" checked`).MatchString(page) {
				form.Set(box, "on")
			}
		}
		for k, vs := range values {
			form[k] = vs
		}
		resp, err := admin.PostForm(base+"/advanced", form)
		page, at := read(resp, err)
		if !strings.Contains(at, "/test?advanced=open") {
			t.Fatalf("%s: saving ended at %s:\n%s", what, at, page)
		}
	}
	failedWith := func(page, check, anchor string) {
		t.Helper()
		if !strings.Contains(page, "Test sign-in failed: "+check) || !strings.Contains(page, `/test?advanced=open#`+anchor+`"`) {
			t.Fatalf("the test did not fail its %s check linking to %s:\n%s", check, anchor, page)
		}
	}
	passed := func(what, page string) {
		t.Helper()
		if !strings.Contains(page, "Test sign-in succeeded") || !strings.Contains(page, "alice@"+u.domain) {
			t.Fatalf("%s: the test did not pass:\n%s", what, page)
		}
	}

	refused := testLogin("SHA-1, refused")
	failedWith(refused, "Signature", "adv-allow-sha1")
	// The connector's reason names the API's setting; the admin reads the
	// portal's.
	if strings.Contains(refused, "allow_sha1") || !strings.Contains(refused, "Accept SHA-1 signatures, under Advanced settings") {
		t.Errorf("the SHA-1 refusal is not in the portal's words:\n%s", refused)
	}
	save("accept SHA-1", url.Values{"allow_sha1": {"on"}})
	passed("SHA-1, accepted", testLogin("SHA-1, accepted"))

	// Two minutes ahead: past the default 90 s, within 150 s.
	v.set(func(v *vendorIdP) {
		v.sigMethod = ""
		v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
			ahead := time.Now().Add(2 * time.Minute)
			a.IssueInstant = ahead
			a.Conditions.NotBefore = ahead
			a.Conditions.NotOnOrAfter = ahead.Add(5 * time.Minute)
		}
	})
	failedWith(testLogin("clock ahead"), "Clock skew", "adv-clock-skew")
	save("allow 150 s", url.Values{"clock_skew_seconds": {"150"}})
	passed("clock ahead, allowed", testLogin("clock ahead, allowed"))

	// Encryption: the IdP encrypts once the SP metadata it reads has the
	// key, which the portal's setting puts there.
	v.set(func(v *vendorIdP) { v.mutate, v.encrypt = nil, true })
	md, _ := read(http.Get(u.b.base + "/sso/saml/" + conn + "/metadata"))
	if strings.Contains(md, `use="encryption"`) {
		t.Fatal("the SP metadata offers an encryption key before it was asked for")
	}
	save("encrypt", url.Values{"encrypt_assertions": {"on"}})
	if md, _ = read(http.Get(u.b.base + "/sso/saml/" + conn + "/metadata")); !strings.Contains(md, `use="encryption"`) {
		t.Fatalf("the SP metadata has no encryption key after turning encryption on:\n%s", md)
	}
	passed("encrypted", testLogin("encrypted"))
}
