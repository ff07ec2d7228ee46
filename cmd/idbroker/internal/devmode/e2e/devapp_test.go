// Package e2e drives `serve --dev`'s demo end to end through the real
// broker: /dev/app → broker /authorize → email page → SAML to the dev IdP →
// ACS → broker → /dev/app shows the normalised id_token claims.
package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestDevAppLoginThroughBroker(t *testing.T) {
	issuer, dev, _ := startDev(t)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(u string) (string, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Request.URL.String()
	}
	post := func(u string, v url.Values) (string, string) {
		t.Helper()
		resp, err := c.PostForm(u, v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Request.URL.String()
	}
	abs := func(at, ref string) string {
		base, _ := url.Parse(at)
		r, _ := url.Parse(unescape(ref))
		return base.ResolveReference(r).String()
	}

	// Sign in → the broker asks for the work email.
	page, at := get(issuer + "/dev/app/login")
	action := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(page)
	if action == nil || id == nil || !strings.Contains(page, "email") {
		t.Fatalf("no email page at %s: %s", at, page)
	}
	// alice@example.com → the dev IdP's login page.
	page, at = post(abs(at, action[1]), url.Values{"id": {unescape(id[1])}, "email": {"alice@example.com"}})
	ret := regexp.MustCompile(`name="return" value="([^"]+)"`).FindStringSubmatch(page)
	if ret == nil {
		t.Fatalf("no dev IdP page at %s: %s", at, page)
	}
	// Pick alice → auto-submitting SAMLResponse form.
	page, at = post(issuer+"/dev/idp/login", url.Values{"user": {"alice"}, "return": {unescape(ret[1])}})
	vals := url.Values{}
	for _, m := range regexp.MustCompile(`name="(\w+)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		vals.Set(m[1], unescape(m[2]))
	}
	acs := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)
	if acs == nil || vals.Get("SAMLResponse") == "" {
		t.Fatalf("no SAMLResponse at %s: %s", at, page)
	}
	// The ACS → broker → code → /dev/app/callback → claims.
	page, at = post(unescape(acs[1]), vals)
	m := regexp.MustCompile(`(?s)<pre[^>]*>(.*)</pre>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no claims at %s: %s", at, page)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(unescape(m[1])), &claims); err != nil {
		t.Fatalf("claims %q: %v", m[1], err)
	}
	if claims["email"] != "alice@example.com" || claims["tenant_id"] != dev.TenantID || claims["connection_id"] != dev.ConnectionID ||
		claims["connection_type"] != "saml" || claims["idp_subject"] != "dev|alice" || claims["iss"] != issuer ||
		!strings.HasPrefix(claims["sub"].(string), "usr_") {
		t.Fatalf("claims = %v", claims)
	}
}

func unescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#61;", "=", "&#34;", `"`, "&#47;", "/", "&#39;", "'", "&lt;", "<", "&gt;", ">", "&quot;", `"`).Replace(s)
}
