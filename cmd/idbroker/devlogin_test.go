package main

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/testdb"
)

// TestDevLogin is the Quick start as a test: `serve --dev`, open /dev/app,
// sign in as alice@example.com through the broker's email page and the
// built-in SAML IdP, and get the normalised claims back. It runs on both
// deployments, so the whole wiring — broker, connections, sessions (cached,
// in process or Redis), signing, store — is exercised in the real binary.
func TestDevLogin(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testDevLogin(t, map[string]string{
			envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		})
	})
	t.Run("postgres+redis", func(t *testing.T) {
		t.Parallel()
		testDevLogin(t, map[string]string{
			envDatabaseURL: testdb.PostgresURL(t),
			envRedisURL:    ownRedis(t),
			envMasterKey:   testMasterKey,
		})
	})
}

func testDevLogin(t *testing.T, env map[string]string) {
	b := startBroker(t, env, "--dev")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	readPage := pageReader(t)
	// The first-run page links everything; the console's dev operator was
	// printed once, with its authenticator key.
	if page, _ := readPage(c.Get(b.base + "/")); !strings.Contains(page, `href="/console"`) || !strings.Contains(page, `href="/dev/app"`) {
		t.Errorf("GET / is not the first-run page:\n%s", page)
	}
	if out := b.output.String(); !strings.Contains(out, "console operator created") || !strings.Contains(out, "totp_secret=") {
		t.Errorf("the dev operator's credentials were not logged:\n%s", out)
	}
	claims := devSignIn(t, c, b, nil)
	sub, _ := claims["sub"].(string)
	if claims["iss"] != b.base || claims["email"] != "alice@example.com" || claims["connection_type"] != "saml" ||
		!strings.HasPrefix(sub, "usr_") {
		t.Errorf("claims = %v, want alice@example.com through SAML, issued by %s", claims, b.base)
	}
	// The sign-in's completion at the ACS and the demo app's code exchange
	// were measured for the demo tenant (the per-tenant metrics are fed by
	// the same measurements as GET /tenants/{id}/slo).
	metrics, _ := readPage(c.Get(b.base + "/metrics"))
	for _, kind := range []string{"sign_in", "token"} {
		re := regexp.MustCompile(`idbroker_tenant_requests_total\{kind="` + kind + `",outcome="ok",tenant="tnt_\w+"\} 1\b`)
		if !re.MatchString(metrics) {
			t.Errorf("no %s measured for the demo tenant:\n%s", kind, grepLines(metrics, "idbroker_tenant_requests_total"))
		}
	}
	// No OTEL_* variable: no tracing, so no log line names a trace.
	if out := b.output.String(); strings.Contains(out, "trace_id") {
		t.Errorf("log lines carry trace ids with tracing off:\n%s", out)
	}
	b.stop()
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// pageReader returns a func that reads an answer's body and final URL.
func pageReader(t *testing.T) func(resp *http.Response, err error) (page, at string) {
	return func(resp *http.Response, err error) (page, at string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(body), resp.Request.URL.String()
	}
}

// devSignIn signs alice@example.com in to the demo app of a `serve --dev`
// broker, through the broker's email page, the built-in SAML IdP and the
// ACS, with browser c, and returns the id_token claims the app shows.
// header is sent with the first request (and, as a browser would, with
// the redirects that follow it).
func devSignIn(t *testing.T, c *http.Client, b *node, header http.Header) map[string]any {
	t.Helper()
	acs, form := devIdPAnswer(t, c, b, header)
	// ACS → broker → code → /dev/app/callback, which shows the claims.
	page, at := pageReader(t)(c.PostForm(acs, form))
	m := regexp.MustCompile(`(?s)<pre[^>]*>(.*)</pre>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no claims at %s:\n%s", at, page)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &claims); err != nil {
		t.Fatalf("no claims at %s (%v):\n%s", at, err, page)
	}
	return claims
}

// devIdPAnswer starts alice@example.com's sign-in to the demo app of a
// `serve --dev` broker with browser c, as devSignIn does, and stops at the
// built-in IdP's answer: the ACS URL and the form (SAMLResponse,
// RelayState) a browser would post there.
func devIdPAnswer(t *testing.T, c *http.Client, b *node, header http.Header) (acs string, form url.Values) {
	t.Helper()
	readPage := pageReader(t)
	attr := func(page, re string) string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(page)
		if m == nil {
			return ""
		}
		return html.UnescapeString(m[1])
	}
	resolve := func(at, ref string) string {
		base, err := url.Parse(at)
		if err != nil {
			t.Fatal(err)
		}
		r, err := url.Parse(ref)
		if err != nil {
			t.Fatal(err)
		}
		return base.ResolveReference(r).String()
	}

	// Sign in: the broker asks for the work email.
	req, err := http.NewRequest(http.MethodGet, b.base+"/dev/app/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	page, at := readPage(c.Do(req))
	action, id := attr(page, `action="([^"]+)"`), attr(page, `name="id" value="([^"]+)"`)
	if action == "" || id == "" {
		t.Fatalf("no email page at %s:\n%s", at, page)
	}
	// alice@example.com is routed by her verified domain to the dev IdP.
	page, at = readPage(c.PostForm(resolve(at, action), url.Values{"id": {id}, "email": {"alice@example.com"}}))
	ret := attr(page, `name="return" value="([^"]+)"`)
	if ret == "" {
		t.Fatalf("no dev IdP page at %s:\n%s", at, page)
	}
	// Picking alice yields the auto-submitting SAMLResponse form.
	page, at = readPage(c.PostForm(b.base+"/dev/idp/login", url.Values{"user": {"alice"}, "return": {ret}}))
	form = url.Values{}
	for _, m := range regexp.MustCompile(`name="(\w+)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	acs = attr(page, `action="([^"]+)"`)
	if acs == "" || form.Get("SAMLResponse") == "" {
		t.Fatalf("no SAMLResponse at %s:\n%s", at, page)
	}
	return resolve(at, acs), form
}
