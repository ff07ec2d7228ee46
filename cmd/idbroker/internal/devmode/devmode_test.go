package devmode

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"
	samlxml "github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/connections/saml/samltest"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

type harness struct {
	srv *httptest.Server
	st  store.Store
	reg *connections.Registry
	dev *Dev

	mu   sync.Mutex
	last struct {
		res connections.Result
		err error
	}
}

func newHarness(t *testing.T, st store.Store) *harness {
	h := &harness{st: st}
	e := echo.New()
	h.srv = httptest.NewServer(e)
	t.Cleanup(h.srv.Close)
	h.reg = connections.NewRegistry(connections.Config{Types: connections.Types{saml.Name: saml.Type{NewKey: samltest.Keys()}}, Issuer: h.srv.URL, Store: st, Once: sessions.NewMemory(),
		HTTPClient: safehttp.NewClient(safehttp.Options{AllowPrivate: true}), AllowInsecureURLs: true})
	h.reg.Mount(e, func(ctx context.Context, w http.ResponseWriter, r *http.Request, c store.Connection, res connections.Result, err error) {
		h.mu.Lock()
		h.last.res, h.last.err = res, err
		h.mu.Unlock()
		if err != nil {
			http.Error(w, "failed", 400)
			return
		}
		io.WriteString(w, "ok "+res.Profile.Email)
	})
	var err error
	h.dev, err = Seed(context.Background(), st, h.reg, h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	h.dev.Mount(e)
	return h
}

func TestSeedIsIdempotent(t *testing.T) {
	st := storetest.SQLite(t)
	h := newHarness(t, st)
	again, err := Seed(context.Background(), st, h.reg, h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if again.TenantID != h.dev.TenantID || again.ConnectionID != h.dev.ConnectionID || again.AppID != h.dev.AppID {
		t.Fatalf("second seed made new records: %+v vs %+v", again, h.dev)
	}
	ctx := store.WithTenant(context.Background(), h.dev.TenantID)
	conns, _ := st.Connections(ctx)
	apps, _, _ := st.ListApplications(context.Background(), store.Page{Limit: 100})
	tenants, _, _ := st.ListTenants(context.Background(), store.Page{Limit: 100})
	dirs, _ := st.Directories(ctx)
	// The demo app (public) and the client it introspects with.
	if len(conns) != 1 || conns[0].Status != store.ConnectionActive || len(apps) != 2 || !apps[0].Public || apps[1].Public ||
		len(tenants) != 1 || len(dirs) != 1 {
		t.Fatalf("seeded %d connections, %d apps, %d tenants, %d directories", len(conns), len(apps), len(tenants), len(dirs))
	}
	if apps[0].BackchannelLogoutURI != h.srv.URL+"/dev/app/backchannel" {
		t.Fatalf("demo app back-channel logout URI = %q", apps[0].BackchannelLogoutURI)
	}
	if d, err := st.Domain(ctx, Domain); err != nil || !d.Verified {
		t.Fatalf("domain = %+v, %v", d, err)
	}
	// The restarted dev IdP signs with the same key the connection trusts.
	if again.idp.idp.Certificate.SerialNumber.Cmp(h.dev.idp.idp.Certificate.SerialNumber) != 0 {
		t.Fatal("dev IdP key changed across seeds")
	}
}

var (
	fieldRE  = regexp.MustCompile(`name="(\w+)" value="([^"]*)"`)
	actionRE = regexp.MustCompile(`action="([^"]+)"`)
)

func unescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#61;", "=", "&#34;", `"`, "&#47;", "/").Replace(s)
}

// TestDevIdPRoundTrip logs alice in through the dev IdP, at the
// connections level: Begin, the IdP's login page, the signed assertion in
// an unsigned response (as Entra ID and Okta send by default) posted to
// the ACS, the normalised profile.
func TestDevIdPRoundTrip(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			h := newHarness(t, b.Open(t))
			ctx := store.WithTenant(context.Background(), h.dev.TenantID)
			conn, err := h.st.Connection(ctx, h.dev.ConnectionID)
			if err != nil {
				t.Fatal(err)
			}
			cn, err := h.reg.Connector(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			if err := cn.Begin(ctx, rec, httptest.NewRequest("GET", "/", nil), connections.LoginRequest{RequestID: "req-1"}); err != nil {
				t.Fatal(err)
			}
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar}
			resp, err := c.Get(rec.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(page), "alice@example.com") {
				t.Fatalf("IdP login page: %s", page)
			}
			ret := regexp.MustCompile(`name="return" value="([^"]+)"`).FindStringSubmatch(string(page))
			resp, err = c.PostForm(h.srv.URL+"/dev/idp/login", url.Values{"user": {"alice"}, "return": {unescape(ret[1])}})
			if err != nil {
				t.Fatal(err)
			}
			form, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			vals := url.Values{}
			for _, m := range fieldRE.FindAllStringSubmatch(string(form), -1) {
				vals.Set(m[1], unescape(m[2]))
			}
			action := actionRE.FindStringSubmatch(string(form))
			if action == nil || vals.Get("SAMLResponse") == "" {
				t.Fatalf("no SAMLResponse form: %s", form)
			}
			if response, assertion := signatures(t, vals.Get("SAMLResponse")); response != 0 || assertion != 1 {
				t.Fatalf("signatures: %d on the response, %d on the assertion; want 0 and 1", response, assertion)
			}
			resp, err = c.PostForm(unescape(action[1]), vals)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h.mu.Lock()
			res, lerr := h.last.res, h.last.err
			h.mu.Unlock()
			p := res.Profile
			if lerr != nil || resp.StatusCode != 200 || res.RequestID != "req-1" || p.Email != "alice@example.com" ||
				p.IdPSubject != "dev|alice" || p.GivenName != "Alice" || len(p.Groups) != 2 || p.TenantID != h.dev.TenantID {
				t.Fatalf("login = %d %+v %v", resp.StatusCode, res, lerr)
			}
		})
	}
}

// signatures counts the XML signatures of a base64 SAML response: on the
// Response itself and on its Assertion.
func signatures(t *testing.T, b64 string) (response, assertion int) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "Response" {
		t.Fatalf("not a Response: %s", raw)
	}
	response = len(root.SelectElements("Signature"))
	for _, a := range root.SelectElements("Assertion") {
		assertion += len(a.SelectElements("Signature"))
	}
	return response, assertion
}

func TestDevIdPRefusesForeignReturn(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t))
	for _, form := range []url.Values{
		{"user": {"alice"}, "return": {"https://evil.example/"}},
		{"user": {"mallory"}, "return": {"/dev/idp/sso?x=1"}},
	} {
		resp, err := http.PostForm(h.srv.URL+"/dev/idp/login", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("%v = %d", form, resp.StatusCode)
		}
	}
	resp, _ := http.Get(h.srv.URL + "/dev/app")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Sign in") || !strings.Contains(string(b), h.dev.AppID) {
		t.Fatalf("/dev/app = %d %s", resp.StatusCode, b)
	}
}

// TestDevIdPAnswersUnreadableRequests: a request the dev IdP cannot read
// (no SAMLRequest, garbage in it) is a 400 saying so, not a panic.
func TestDevIdPAnswersUnreadableRequests(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t))
	for _, q := range []string{"", "?SAMLRequest=", "?SAMLRequest=%%%", "?SAMLRequest=bm90IGRlZmxhdGVk"} {
		resp, err := http.Get(h.srv.URL + "/dev/idp/sso" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "dev IdP") {
			t.Errorf("GET /dev/idp/sso%s = %d %s", q, resp.StatusCode, b)
		}
	}
}

// TestDevIdPReparsesChangedSPMetadata: the dev IdP reuses the parsed SP
// metadata while the broker serves the same bytes, and parses it again as
// soon as they change (a rotated certificate, encryption switched).
func TestDevIdPReparsesChangedSPMetadata(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t))
	idp := h.dev.idp
	id := h.srv.URL + "/sso/saml/" + h.dev.ConnectionID
	r := httptest.NewRequest("GET", "/dev/idp/sso", nil)
	first, err := idp.GetServiceProvider(r, id)
	if err != nil || first.EntityID != id {
		t.Fatalf("GetServiceProvider = %+v, %v", first, err)
	}
	if again, err := idp.GetServiceProvider(r, id); err != nil || again != first {
		t.Fatalf("unchanged metadata was parsed again (%p, %p, %v)", again, first, err)
	}
	// What the broker serves no longer matches what was parsed.
	idp.spMu.Lock()
	idp.sps[h.dev.ConnectionID] = parsedSP{raw: []byte("<EntityDescriptor/>"), ed: &samlxml.EntityDescriptor{EntityID: "stale"}}
	idp.spMu.Unlock()
	fresh, err := idp.GetServiceProvider(r, id)
	if err != nil || fresh.EntityID != id {
		t.Fatalf("changed metadata: got %+v, %v", fresh, err)
	}
	if _, err := idp.GetServiceProvider(r, "https://elsewhere.example/sso/saml/x"); err == nil {
		t.Fatal("a foreign SP was resolved")
	}
}

// TestSeedRestoresADeletedDemoTenant: the demo tenant deleted through the
// API keeps its domain while it can be restored; the next start restores
// it rather than failing to seed a new one beside it.
func TestSeedRestoresADeletedDemoTenant(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			h := newHarness(t, st)
			ctx := store.WithTenant(context.Background(), h.dev.TenantID)
			if _, err := st.SoftDeleteTenant(ctx); err != nil {
				t.Fatal(err)
			}
			again, err := Seed(context.Background(), st, h.reg, h.srv.URL)
			if err != nil {
				t.Fatalf("seed after the demo tenant was deleted: %v", err)
			}
			if !again.Restored || again.TenantID != h.dev.TenantID || again.ConnectionID != h.dev.ConnectionID || again.AppID != h.dev.AppID {
				t.Fatalf("second seed: %+v, want the first's records, restored", again)
			}
			if tn, err := st.Tenant(ctx); err != nil || tn.Status != store.TenantActive {
				t.Fatalf("demo tenant after the seed: %+v, %v", tn, err)
			}
			if id, err := st.ResolveDomain(context.Background(), Domain); err != nil || id != h.dev.TenantID {
				t.Fatalf("%s routes to %q, %v", Domain, id, err)
			}
			if third, err := Seed(context.Background(), st, h.reg, h.srv.URL); err != nil || third.Restored {
				t.Fatalf("third seed: restored=%v, %v", third != nil && third.Restored, err)
			}
		})
	}
}

// TestDevPagesHaveNoInlineStyleOrScript: the dev pages send a CSP without
// 'unsafe-inline', so an inline <style> or script in them is blocked by
// the browser (the dev IdP's sign-in page rendered unstyled, with a CSP
// error in the console). Their styles and scripts come from /static.
func TestDevPagesHaveNoInlineStyleOrScript(t *testing.T) {
	inline := regexp.MustCompile(`<style|\sstyle=|<script(?:\s[^>]*)?>[^<]|\son[a-z]+=`)
	for _, tmpl := range templates.Templates() {
		if tmpl.Tree == nil {
			continue
		}
		if m := inline.FindString(tmpl.Tree.Root.String()); m != "" {
			t.Errorf("template %s has inline %q", tmpl.Name(), m)
		}
	}
}
