package broker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestConformance is an outside-in sweep of the broker as an OpenID
// Provider: each row is one requirement of RFC 6749, 7009, 7636, 7662,
// 9207, OpenID Connect Core 1.0 or RP-Initiated Logout 1.0, checked with
// a real HTTP request against a running broker, as a relying party or a
// resource server would see it. docs/reference/oidc.md says what we
// promise; where an RFC leaves the choice to us, the row checks our
// choice as documented there.
func TestConformance(t *testing.T) {
	f := newConformanceFixture(t)
	for _, c := range conformanceChecks {
		t.Run(c.name, func(t *testing.T) {
			f.carry = map[string]string{}
			resp := f.do(t, c.req(t, f))
			c.want.check(t, f, resp)
			if c.then != nil {
				c.then(t, f, resp)
			}
		})
	}
}

// conformanceFixture is one broker, one tenant whose IdP signs alice in,
// confidential applications (a, b, q, bcl) and a public one (pub).
type conformanceFixture struct {
	n       *node
	a, b    *app
	pub     *app
	q       *app // its redirect_uri has a query
	bcl     *app // with a back-channel logout URI, whose tokens go to logouts
	logouts chan string
	skew    *atomic.Int64     // added to the broker's clock (nanoseconds)
	decoded map[string]any    // the last JSON body check decoded
	carry   map[string]string // what a check's req leaves for its then
}

func newConformanceFixture(t *testing.T) *conformanceFixture {
	skew := new(atomic.Int64)
	mem := sessions.NewMemory()
	n := newNodeServer(t, storetest.SQLite(t), mem, mem, "", httpserver.Config{}, func(c *broker.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	n.tenant("Acme", "acme.test", alice("acme.test"))
	rcv, logouts := bclReceiver(t)
	return &conformanceFixture{
		skew: skew,
		bcl:  n.app(store.Application{Name: "bcl", BackchannelLogoutURI: rcv.URL}), logouts: logouts,
		n: n,
		a: n.app(store.Application{Name: "a", PostLogoutRedirectURIs: []string{"https://app.example/bye"}}),
		b: n.app(store.Application{Name: "b", RedirectURIs: []string{"https://app2.example/callback"},
			PostLogoutRedirectURIs: []string{"https://app2.example/bye"}}),
		pub: n.app(store.Application{Name: "pub", Public: true, RedirectURIs: []string{"https://app.example/spa"}}),
		q:   n.app(store.Application{Name: "q", RedirectURIs: []string{"https://app.example/cb?tenant=acme"}}),
	}
}

// do sends req as a browser would (following the broker's own redirects,
// stopping at an application) and reads the whole body.
func (f *conformanceFixture) do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := browser(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

// later moves the broker's clock d ahead until the end of t, so that
// the tokens it issued before have expired. (Codes expire by the session
// store's own clock, the TTL they are kept with: not this one.)
func (f *conformanceFixture) later(t *testing.T, d time.Duration) {
	f.skew.Store(int64(d))
	t.Cleanup(func() { f.skew.Store(0) })
}

// signIn signs alice in to a through a fresh browser and redeems the code
// (with PKCE, which a public application must use).
func (f *conformanceFixture) signIn(t *testing.T, a *app, scope string) *oauth2.Token {
	t.Helper()
	verifier, challenge := pkce()
	resp := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}, "scope": {scope},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	tok, err := a.Conf.Exchange(context.Background(), code(t, resp), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

// authCode signs alice in to a with scope "openid email" (or the one
// given) and returns an
// unredeemed code, with the PKCE verifier the request's challenge was
// made from.
func (f *conformanceFixture) authCode(t *testing.T, a *app, scope ...string) (codeValue, verifier string) {
	t.Helper()
	verifier, challenge := pkce()
	sc := "openid email"
	if len(scope) > 0 {
		sc = scope[0]
	}
	resp := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}, "scope": {sc},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	return code(t, resp), verifier
}

// authorizeReq is a's authorization request with extra set over the
// usual parameters (an empty value deletes one).
func authorizeReq(a *app, extra url.Values) *http.Request {
	q := url.Values{
		"client_id": {a.ID}, "redirect_uri": {a.Redirect}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"st8"}, "nonce": {"n0nce"},
	}
	for k, v := range extra {
		if len(v) == 1 && v[0] == "" {
			q.Del(k)
			continue
		}
		q[k] = v
	}
	req, _ := http.NewRequest(http.MethodGet, a.n.URL+broker.PathAuthorize+"?"+q.Encode(), nil)
	return req
}

// form is a form POST to path on the fixture's broker, authenticated with
// Basic credentials when id is not empty.
func (f *conformanceFixture) form(path string, v url.Values, id, secret string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, f.n.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return req
}

// answer is what a check expects of the broker's answer.
type answer struct {
	status int
	// page: an HTML page, no redirect anywhere (RFC 6749 §4.1.2.1: never
	// to a redirect_uri that is not known to be the client's).
	page bool
	// redirectError: a redirect to the application's redirect_uri with
	// this error, the request's state and the issuer (RFC 9207).
	redirectError string
	// jsonError: a JSON body {"error": jsonError}.
	jsonError string
	// headers that must be exactly these values, or start with them
	// where the value ends in "…".
	headers map[string]string
	// json fields that must have these values (after JSON decoding).
	fields map[string]any
}

func (w answer) check(t *testing.T, f *conformanceFixture, resp *http.Response) {
	t.Helper()
	if _, ok := w.fields["issuer"]; ok {
		w.fields["issuer"] = f.n.URL
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	loc := resp.Header.Get("Location")
	if w.status != 0 && resp.StatusCode != w.status {
		t.Errorf("status %d, want %d (location %q, body %.300s)", resp.StatusCode, w.status, loc, body)
	}
	if w.page {
		if loc != "" {
			t.Errorf("redirected to %q, want a page", loc)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("Content-Type %q, want an HTML page", resp.Header.Get("Content-Type"))
		}
	}
	if w.redirectError != "" {
		u, err := url.Parse(loc)
		if resp.StatusCode != http.StatusFound || err != nil || u.Host == "" || u.Host == strings.TrimPrefix(f.n.URL, "http://") {
			t.Fatalf("status %d, location %q: want a redirect to the application", resp.StatusCode, loc)
		}
		q := u.Query()
		if q.Get("error") != w.redirectError || q.Get("state") != "st8" || q.Get("iss") != f.n.URL || q.Get("code") != "" {
			t.Errorf("redirected to %s, want error=%s, state=st8, iss=%s and no code", loc, w.redirectError, f.n.URL)
		}
	}
	for k, v := range w.headers {
		got := strings.Join(resp.Header.Values(k), ", ")
		if prefix, ok := strings.CutSuffix(v, "…"); ok && strings.HasPrefix(got, prefix) {
			continue
		}
		if got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	f.decoded = nil
	if w.jsonError != "" || w.fields != nil {
		if err := json.Unmarshal(body, &f.decoded); err != nil {
			t.Fatalf("body %.300s: %v", body, err)
		}
	}
	if w.jsonError != "" && f.decoded["error"] != w.jsonError {
		t.Errorf("error %v (%v), want %s", f.decoded["error"], f.decoded["error_description"], w.jsonError)
	}
	if w.fields["active"] == false && len(f.decoded) != 1 {
		// RFC 7662 §2.2: nothing about a token that is not active.
		t.Errorf("inactive answer %s says more than active", body)
	}
	for k, v := range w.fields {
		got, _ := json.Marshal(f.decoded[k])
		want, _ := json.Marshal(v)
		if string(got) != string(want) {
			t.Errorf("%s = %s, want %s (body %.300s)", k, got, want, body)
		}
	}
}

// noStore is what every token endpoint answer carries, errors included
// (RFC 6749 §5.1, §5.2).
var noStore = map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache"}

// withNoStore is noStore and more.
func withNoStore(more map[string]string) map[string]string {
	h := map[string]string{}
	for k, v := range noStore {
		h[k] = v
	}
	for k, v := range more {
		h[k] = v
	}
	return h
}

// invalidToken is UserInfo's challenge for a token it refuses (RFC 6750
// §3.1), an error_description after it.
const invalidToken = `Bearer realm="idbroker", error="invalid_token"…`

const basicChallenge = `Basic realm="idbroker", charset="UTF-8"`

// introspectAs asks whether token is active, as app a.
func (f *conformanceFixture) active(t *testing.T, a *app, token string) bool {
	t.Helper()
	return a.introspect(t, f.n, token)["active"] == true
}

type conformanceCheck struct {
	name string
	req  func(t *testing.T, f *conformanceFixture) *http.Request
	want answer
	then func(t *testing.T, f *conformanceFixture, resp *http.Response)
}

var conformanceChecks = []conformanceCheck{
	// Authorization endpoint: errors about the client or its redirect_uri
	// are shown, never redirected (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).
	{name: "authorize/unknown client_id is a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"client_id": {"app_unknown"}})
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "authorize/missing client_id is a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"client_id": {""}})
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "authorize/unregistered redirect_uri is a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"redirect_uri": {"https://evil.example/callback"}})
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "authorize/another application's redirect_uri is a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"redirect_uri": {f.b.Redirect}})
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "authorize/missing redirect_uri is a page (OIDC Core §3.1.2.1 requires it)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"redirect_uri": {""}})
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "authorize/unknown client and unregistered redirect_uri with a protocol error too is a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"redirect_uri": {"https://evil.example/"}, "response_type": {"token"}})
		},
		want: answer{status: http.StatusBadRequest, page: true}},

	// Errors about the request go back to the registered redirect_uri
	// with state and iss (RFC 6749 §4.1.2.1, RFC 9207 §2).
	{name: "authorize/missing response_type",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"response_type": {""}})
		},
		want: answer{redirectError: "invalid_request"}},
	{name: "authorize/response_type=token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"response_type": {"token"}})
		},
		want: answer{redirectError: "unsupported_response_type"}},
	{name: "authorize/response_type=code id_token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"response_type": {"code id_token"}})
		},
		want: answer{redirectError: "unsupported_response_type"}},
	{name: "authorize/scope without openid",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"scope": {"email"}})
		},
		want: answer{redirectError: "invalid_scope"}},
	{name: "authorize/missing scope",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"scope": {""}})
		},
		want: answer{redirectError: "invalid_scope"}},
	{name: "authorize/public client without code_challenge (RFC 7636 §4.4.1)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.pub, url.Values{"login_hint": {"alice@acme.test"}})
		},
		want: answer{redirectError: "invalid_request"}},
	{name: "authorize/code_challenge_method=plain (RFC 7636 §4.4.1)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			_, ch := pkce()
			return authorizeReq(f.pub, url.Values{"code_challenge": {ch}, "code_challenge_method": {"plain"}})
		},
		want: answer{redirectError: "invalid_request"}},
	// RFC 7636 §4.3: without code_challenge_method the method is plain,
	// which the broker does not support (§4.4.1).
	{name: "authorize/code_challenge without a method is plain (RFC 7636 §4.3)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			_, ch := pkce()
			return authorizeReq(f.pub, url.Values{"code_challenge": {ch}})
		},
		want: answer{redirectError: "invalid_request"}},
	{name: "authorize/code_challenge_method without a code_challenge",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"code_challenge_method": {"S256"}})
		},
		want: answer{redirectError: "invalid_request"}},
	{name: "authorize/code_challenge too short (RFC 7636 §4.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.pub, url.Values{"code_challenge": {"abc"}, "code_challenge_method": {"S256"}})
		},
		want: answer{redirectError: "invalid_request"}},
	{name: "authorize/code_challenge_method unknown",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			_, ch := pkce()
			return authorizeReq(f.a, url.Values{"code_challenge": {ch}, "code_challenge_method": {"S512"}})
		},
		want: answer{redirectError: "invalid_request"}},
	{name: "authorize/prompt=none without a session (OIDC Core §3.1.2.6)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"prompt": {"none"}, "login_hint": {"alice@acme.test"}})
		},
		want: answer{redirectError: "login_required"}},
	// OIDC Core §3.1.2.1: with prompt=none the OP displays nothing; an
	// answer it cannot give without the user is an error at the client.
	{name: "authorize/prompt=none without hints or session",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"prompt": {"none"}})
		},
		want: answer{redirectError: "login_required"}},
	{name: "authorize/prompt=none for a domain no tenant verified",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"prompt": {"none"}, "login_hint": {"bob@nobody.test"}})
		},
		want: answer{redirectError: "login_required"}},
	{name: "authorize/prompt=none for an unknown tenant",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"prompt": {"none"}, "tenant": {"tnt_01M99E52CX5ZFW6D5V8AKXK1MR"}})
		},
		want: answer{redirectError: "login_required"}},
	{name: "authorize/prompt=none with conflicting hints",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"prompt": {"none"}, "login_hint": {"alice@acme.test"}, "tenant": {"tnt_01M99E52CX5ZFW6D5V8AKXK1MR"}})
		},
		want: answer{redirectError: "login_required"}},
	{name: "authorize/request object (OIDC Core §6)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"request": {"eyJhbGciOiJub25lIn0.e30."}})
		},
		want: answer{redirectError: "request_not_supported"}},
	{name: "authorize/request_uri (OIDC Core §6)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"request_uri": {"https://app.example/req.jwt"}})
		},
		want: answer{redirectError: "request_uri_not_supported"}},
	// OIDC Core §3.1.2.1: scope values not understood SHOULD be ignored;
	// the token answer then says which were granted (RFC 6749 §5.1).
	{name: "authorize/unknown scope value is ignored",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"login_hint": {"alice@acme.test"}, "scope": {"openid email admin:all"}})
		},
		want: answer{status: http.StatusFound},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			loc, _ := resp.Location()
			c := loc.Query().Get("code")
			if c == "" {
				t.Fatalf("redirected to %s, want a code", loc)
			}
			got := f.tokenForm(t, f.a, url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {f.a.Redirect}})
			if got["scope"] != "openid email" {
				t.Errorf("granted scope %q, want openid email", got["scope"])
			}
		}},
	{name: "authorize/error keeps the redirect_uri's query (RFC 6749 §3.1.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.q, url.Values{"response_type": {"token"}})
		},
		want: answer{redirectError: "unsupported_response_type"},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			loc, _ := resp.Location()
			if loc.Query().Get("tenant") != "acme" || loc.Path != "/cb" {
				t.Errorf("redirected to %s, want the registered query kept", loc)
			}
		}},
	{name: "authorize/code keeps the redirect_uri's query (RFC 6749 §3.1.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.q, url.Values{"login_hint": {"alice@acme.test"}})
		},
		want: answer{status: http.StatusFound},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			loc, _ := resp.Location()
			if q := loc.Query(); q.Get("tenant") != "acme" || q.Get("code") == "" || q.Get("iss") != f.n.URL {
				t.Errorf("redirected to %s, want the registered query kept beside code and iss", loc)
			}
		}},
	// OIDC Core §3.1.2.1: the authorization endpoint MUST support POST.
	{name: "authorize/POST form",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			q := authorizeReq(f.a, url.Values{"login_hint": {"alice@acme.test"}}).URL.Query()
			return f.form(broker.PathAuthorize, q, "", "")
		},
		want: answer{status: http.StatusFound},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			loc, _ := resp.Location()
			if q := loc.Query(); q.Get("code") == "" || q.Get("state") != "st8" || q.Get("iss") != f.n.URL {
				t.Errorf("redirected to %s, want code, state=st8 and iss=%s", loc, f.n.URL)
			}
		}},
	{name: "authorize/POST form with an error",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			q := authorizeReq(f.a, url.Values{"response_type": {"token"}}).URL.Query()
			return f.form(broker.PathAuthorize, q, "", "")
		},
		want: answer{redirectError: "unsupported_response_type"}},
	{name: "authorize/POST form with an unregistered redirect_uri is a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			q := authorizeReq(f.a, url.Values{"redirect_uri": {"https://evil.example/"}}).URL.Query()
			return f.form(broker.PathAuthorize, q, "", "")
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "authorize/code answer carries state and iss (RFC 9207)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return authorizeReq(f.a, url.Values{"login_hint": {"alice@acme.test"}})
		},
		want: answer{status: http.StatusFound},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			loc, _ := resp.Location()
			if q := loc.Query(); q.Get("code") == "" || q.Get("state") != "st8" || q.Get("iss") != f.n.URL {
				t.Errorf("redirected to %s, want code, state=st8 and iss=%s", loc, f.n.URL)
			}
		}},

	// Token endpoint (RFC 6749 §4.1.3, §5, §6; RFC 7636 §4.6).
	{name: "token/code redeemed twice: invalid_grant, and the first tokens are revoked (RFC 6749 §4.1.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.a, "openid offline_access")
			first := f.tokenForm(t, f.a, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.a.Redirect}, "code_verifier": {v}})
			f.carry["at"], f.carry["rt"] = first["access_token"], first["refresh_token"]
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.a.Redirect}, "code_verifier": {v}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			if f.active(t, f.a, f.carry["at"]) || f.active(t, f.a, f.carry["rt"]) {
				t.Error("the tokens of the first redemption are still active")
			}
		}},
	{name: "token/redirect_uri other than the request's",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.a)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {"https://app.example/other"}, "code_verifier": {v}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore}},
	// RFC 6749 §4.1.3 makes redirect_uri REQUIRED here, and §5.2 names a
	// missing required parameter invalid_request.
	{name: "token/redirect_uri missing though the request had one (RFC 6749 §4.1.3)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.a)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"code_verifier": {v}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request", headers: noStore}},
	// RFC 9700 §2.1.1: a code_verifier for a code whose request had no
	// code_challenge is refused, or PKCE downgrades go unnoticed.
	{name: "token/code_verifier without a code_challenge (RFC 9700 §2.1.1)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			resp := f.a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}, "scope": {"openid"}})
			v, _ := pkce()
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {code(t, resp)},
				"redirect_uri": {f.a.Redirect}, "code_verifier": {v}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore}},
	{name: "token/wrong code_verifier (RFC 7636 §4.6)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, _ := f.authCode(t, f.a)
			other, _ := pkce()
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.a.Redirect}, "code_verifier": {other}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore}},
	{name: "token/missing code_verifier after a code_challenge (RFC 7636 §4.6)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, _ := f.authCode(t, f.a)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.a.Redirect}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore}},
	{name: "token/another application's code",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.a)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.a.Redirect}, "code_verifier": {v}}, f.b.ID, f.b.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore}},
	{name: "token/wrong secret over Basic: 401 with the Basic challenge (RFC 6749 §5.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
				"redirect_uri": {f.a.Redirect}}, f.a.ID, "wrong")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client",
			headers: withNoStore(map[string]string{"WWW-Authenticate": basicChallenge})}},
	{name: "token/unknown client over Basic",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
				"redirect_uri": {f.a.Redirect}}, "app_unknown", "s")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client",
			headers: withNoStore(map[string]string{"WWW-Authenticate": basicChallenge})}},
	{name: "token/undecodable Basic credentials",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req := f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
				"redirect_uri": {f.a.Redirect}}, "", "")
			req.Header.Set("Authorization", "Basic !!!")
			return req
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client", headers: withNoStore(map[string]string{"WWW-Authenticate": basicChallenge})}},
	{name: "token/wrong secret in the body",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
				"redirect_uri": {f.a.Redirect}, "client_id": {f.a.ID}, "client_secret": {"wrong"}}, "", "")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client", headers: noStore}},
	{name: "token/confidential client without a secret",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
				"redirect_uri": {f.a.Redirect}, "client_id": {f.a.ID}}, "", "")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client", headers: noStore}},
	{name: "token/no client at all",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
				"redirect_uri": {f.a.Redirect}}, "", "")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client", headers: noStore}},
	{name: "token/JSON body instead of a form (RFC 6749 §4.1.3)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, f.n.URL+broker.PathToken, strings.NewReader(`{"grant_type":"authorization_code","code":"x"}`))
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth(f.a.ID, f.a.Secret)
			return req
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request", headers: noStore}},
	{name: "token/undecodable form",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req := f.form(broker.PathToken, nil, f.a.ID, f.a.Secret)
			req.Body = io.NopCloser(strings.NewReader("grant_type=%zz&code=x"))
			req.ContentLength = -1
			return req
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request", headers: noStore}},
	{name: "token/no Content-Type",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req := f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, f.a.ID, f.a.Secret)
			req.Header.Del("Content-Type")
			return req
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request", headers: noStore}},
	{name: "token/grant_type given twice (RFC 6749 §3.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code", "refresh_token"}, "code": {"x"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request", headers: noStore}},
	{name: "token/the access token is an RFC 9068 JWT",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.a)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.a.Redirect}, "code_verifier": {v}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			at, _ := f.decoded["access_token"].(string)
			head, _, _ := strings.Cut(at, ".")
			b, _ := base64.RawURLEncoding.DecodeString(head)
			var h map[string]any
			if json.Unmarshal(b, &h) != nil || h["typ"] != "at+jwt" {
				t.Errorf("header %s, want typ at+jwt (RFC 9068 §2.1)", b)
			}
			c := jwtClaims(t, at)
			for _, k := range []string{"iss", "exp", "aud", "sub", "client_id", "iat", "jti"} {
				if c[k] == nil {
					t.Errorf("access token lacks %s (RFC 9068 §2.2): %v", k, c)
				}
			}
			if c["iss"] != f.n.URL || c["client_id"] != f.a.ID || c["scope"] != "openid email" {
				t.Errorf("access token claims %v", c)
			}
		}},
	{name: "token/no refresh token without offline_access",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.a)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.a.Redirect}, "code_verifier": {v}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, headers: noStore, fields: map[string]any{"token_type": "Bearer", "scope": "openid email"}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			if f.decoded["refresh_token"] != nil {
				t.Errorf("a refresh token without offline_access: %v", f.decoded)
			}
			for _, k := range []string{"access_token", "id_token", "expires_in", "scope"} {
				if f.decoded[k] == nil {
					t.Errorf("the answer lacks %s", k)
				}
			}
		}},
	{name: "token/public client refreshes with client_id (none)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.pub, "openid offline_access")
			return f.form(broker.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
				"client_id": {f.pub.ID}}, "", "")
		},
		want: answer{status: http.StatusOK, headers: noStore, fields: map[string]any{"token_type": "Bearer"}}},
	{name: "token/public client sending a secret",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.pub)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.pub.Redirect}, "code_verifier": {v}}, f.pub.ID, "made-up")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client", headers: noStore}},
	{name: "token/grant_type=client_credentials",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"client_credentials"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "unsupported_grant_type", headers: noStore}},
	{name: "token/grant_type=password",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "unsupported_grant_type", headers: noStore}},
	{name: "token/grant_type=device_code",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "unsupported_grant_type", headers: noStore}},
	{name: "token/grant_type=token-exchange",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
				"subject_token": {"x"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "unsupported_grant_type", headers: noStore}},
	{name: "token/grant_type=jwt-bearer",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
				"assertion": {"x.y.z"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "unsupported_grant_type", headers: noStore}},
	{name: "token/missing grant_type",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"code": {"x"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request", headers: noStore}},
	{name: "token/unknown code",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"nope"},
				"redirect_uri": {f.a.Redirect}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore}},
	{name: "token/GET is refused",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathToken+"?grant_type=authorization_code&code=x", nil)
			req.SetBasicAuth(f.a.ID, f.a.Secret)
			return req
		},
		want: answer{headers: noStore}},
	{name: "token/body too large: 413 with no-store",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {strings.Repeat("x", 2<<20)}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusRequestEntityTooLarge, jsonError: "invalid_request", headers: noStore}},
	{name: "token/success carries no-store",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.a)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.a.Redirect}, "code_verifier": {v}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, headers: noStore, fields: map[string]any{"token_type": "Bearer"}}},
	{name: "token/public client redeems with client_id and code_verifier (none)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.pub)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.pub.Redirect}, "code_verifier": {v}, "client_id": {f.pub.ID}}, "", "")
		},
		want: answer{status: http.StatusOK, headers: noStore, fields: map[string]any{"token_type": "Bearer"}}},
	{name: "token/client_secret_post",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			c, v := f.authCode(t, f.a)
			return f.form(broker.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {f.a.Redirect}, "code_verifier": {v}, "client_id": {f.a.ID}, "client_secret": {f.a.Secret}}, "", "")
		},
		want: answer{status: http.StatusOK, headers: noStore}},
	{name: "token/refresh wider than granted (RFC 6749 §6)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid email offline_access")
			return f.form(broker.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
				"scope": {"openid email profile offline_access"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_scope", headers: noStore}},
	{name: "token/refresh with an unknown scope",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid email offline_access")
			return f.form(broker.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
				"scope": {"openid admin"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_scope", headers: noStore}},
	{name: "token/refresh narrower than granted",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid email profile offline_access")
			return f.form(broker.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
				"scope": {"openid email"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, headers: noStore, fields: map[string]any{"scope": "openid email"}}},
	// OIDC Core §12.2: a refreshed id_token keeps iss, sub, aud and
	// auth_time, and a nonce, if any, is the first one.
	{name: "token/refreshed id_token (OIDC Core §12.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid offline_access")
			first, _ := json.Marshal(jwtClaims(t, tok.Extra("id_token").(string)))
			f.carry["id"] = string(first)
			return f.form(broker.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, headers: noStore, fields: map[string]any{}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			var first map[string]any
			json.Unmarshal([]byte(f.carry["id"]), &first)
			raw, _ := f.decoded["id_token"].(string)
			if raw == "" {
				return // an id_token on refresh is optional
			}
			next := jwtClaims(t, raw)
			for _, k := range []string{"iss", "sub", "aud", "auth_time", "sid"} {
				if a, b := first[k], next[k]; a == nil || a != b {
					t.Errorf("%s: %v then %v", k, a, b)
				}
			}
			// §12.2 allows the first nonce; the broker sends none, as
			// documented.
			if n, ok := next["nonce"]; ok {
				t.Errorf("nonce %v in a refreshed id_token", n)
			}
		}},
	{name: "token/refresh of another application's token (RFC 6749 §6)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid offline_access")
			f.carry["rt"] = tok.RefreshToken
			return f.form(broker.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, f.b.ID, f.b.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			// Another client's attempt spends nothing of the owner's.
			f.tokenForm(t, f.a, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {f.carry["rt"]}})
		}},
	{name: "token/refresh with an access token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid offline_access")
			return f.form(broker.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.AccessToken}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore}},
	{name: "token/public client refreshes without client_id",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.pub, "openid offline_access")
			return f.form(broker.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, "", "")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client", headers: noStore}},
	{name: "token/refresh of an unknown token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"garbage"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_grant", headers: noStore}},

	// UserInfo (OIDC Core §5.3, RFC 6750 §3).
	{name: "userinfo/no token: 401 Bearer without error (RFC 6750 §3.1)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo, nil)
			return req
		},
		want: answer{status: http.StatusUnauthorized, headers: map[string]string{"WWW-Authenticate": `Bearer realm="idbroker"`}}},
	{name: "userinfo/garbage token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer garbage")
			return req
		},
		want: answer{status: http.StatusUnauthorized, headers: map[string]string{"WWW-Authenticate": invalidToken}}},
	{name: "userinfo/revoked token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid email")
			f.mustRevoke(t, f.a, tok.AccessToken)
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			return req
		},
		want: answer{status: http.StatusUnauthorized, headers: map[string]string{"WWW-Authenticate": invalidToken}}},
	{name: "userinfo/expired token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			f.later(t, 11*time.Minute)
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			return req
		},
		want: answer{status: http.StatusUnauthorized, headers: map[string]string{"WWW-Authenticate": invalidToken}}},
	{name: "userinfo/id_token is not an access token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid email")
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer "+tok.Extra("id_token").(string))
			return req
		},
		want: answer{status: http.StatusUnauthorized, headers: map[string]string{"WWW-Authenticate": invalidToken}}},
	{name: "userinfo/the scheme is case-insensitive (RFC 9110 §11.1)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo, nil)
			req.Header.Set("Authorization", "bearer "+tok.AccessToken)
			return req
		},
		want: answer{status: http.StatusOK}},
	{name: "userinfo/refresh token is not an access token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid offline_access")
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer "+tok.RefreshToken)
			return req
		},
		want: answer{status: http.StatusUnauthorized, headers: map[string]string{"WWW-Authenticate": invalidToken}}},
	{name: "userinfo/POST form-encoded access_token (RFC 6750 §2.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			return f.form(broker.PathUserinfo, url.Values{"access_token": {tok.AccessToken}}, "", "")
		},
		// Claims are not filtered by scope: docs/reference/oidc.md, "The id_token".
		want: answer{status: http.StatusOK, headers: map[string]string{"Cache-Control": "no-store"},
			fields: map[string]any{"email": "alice@acme.test", "given_name": "Alice"}}},
	{name: "userinfo/sub is the id_token's (OIDC Core §5.3.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			f.carry["sub"], _ = jwtClaims(t, tok.Extra("id_token").(string))["sub"].(string)
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			return req
		},
		want: answer{status: http.StatusOK, fields: map[string]any{}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			if f.carry["sub"] == "" || f.decoded["sub"] != f.carry["sub"] {
				t.Errorf("UserInfo sub %v, id_token sub %q", f.decoded["sub"], f.carry["sub"])
			}
		}},
	// OIDC Core leaves open what a token without openid reads; claims
	// are not filtered by scope, as documented, so it reads them all.
	{name: "userinfo/token refreshed without openid reads the profile (documented)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid email offline_access")
			next := f.tokenForm(t, f.a, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"email"}})
			if next["scope"] != "email" {
				t.Fatalf("refreshed scope %q, want email", next["scope"])
			}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer "+next["access_token"])
			return req
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"email": "alice@acme.test", "groups": []string{"eng"}}}},
	{name: "userinfo/token in the query (RFC 6750 §2.3 discourages it)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathUserinfo+"?access_token="+tok.AccessToken, nil)
			return req
		},
		want: answer{status: http.StatusBadRequest, headers: map[string]string{"WWW-Authenticate": `Bearer realm="idbroker", error="invalid_request"…`}}},

	// Introspection (RFC 7662).
	{name: "introspect/garbage token: active false",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathIntrospect, url.Values{"token": {"garbage"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": false}}},
	{name: "introspect/access token under a refresh_token hint (RFC 7662 §2.1)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid email")
			return f.form(broker.PathIntrospect, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"refresh_token"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": true, "token_type": "Bearer", "scope": "openid email"}}},
	{name: "introspect/refresh token under an access_token hint",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid offline_access")
			return f.form(broker.PathIntrospect, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"access_token"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": true, "token_type": "refresh_token"}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			for _, k := range []string{"client_id", "sub", "exp", "iat", "scope", "iss", "aud", "sid", "tenant_id"} {
				if f.decoded[k] == nil {
					t.Errorf("refresh token introspection lacks %s: %v", k, f.decoded)
				}
			}
			if f.decoded["client_id"] != f.a.ID || f.decoded["scope"] != "openid offline_access" {
				t.Errorf("client_id %v, scope %v", f.decoded["client_id"], f.decoded["scope"])
			}
		}},
	{name: "introspect/unknown token_type_hint is ignored",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			return f.form(broker.PathIntrospect, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"saml_assertion"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": true}}},
	{name: "introspect/another application's access token is active (documented)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			return f.form(broker.PathIntrospect, url.Values{"token": {tok.AccessToken}}, f.b.ID, f.b.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": true}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			if f.decoded["client_id"] != f.a.ID {
				t.Errorf("client_id %v, want %s", f.decoded["client_id"], f.a.ID)
			}
		}},
	{name: "introspect/another application's refresh token is inactive",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid offline_access")
			return f.form(broker.PathIntrospect, url.Values{"token": {tok.RefreshToken}}, f.b.ID, f.b.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": false}}},
	{name: "introspect/id_token is not an access token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			return f.form(broker.PathIntrospect, url.Values{"token": {tok.Extra("id_token").(string)}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": false}}},
	{name: "introspect/expired access token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			f.later(t, 11*time.Minute)
			return f.form(broker.PathIntrospect, url.Values{"token": {tok.AccessToken}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": false}}},
	{name: "introspect/revoked access token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			f.mustRevoke(t, f.a, tok.AccessToken)
			return f.form(broker.PathIntrospect, url.Values{"token": {tok.AccessToken}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": false}}},
	{name: "introspect/access token answer fields (RFC 7662 §2.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.pub, "openid email")
			return f.form(broker.PathIntrospect, url.Values{"token": {tok.AccessToken}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": true, "token_type": "Bearer", "scope": "openid email"}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			for _, k := range []string{"client_id", "sub", "exp", "iat", "iss", "aud", "jti"} {
				if f.decoded[k] == nil {
					t.Errorf("access token introspection lacks %s: %v", k, f.decoded)
				}
			}
		}},
	{name: "introspect/no client authentication (RFC 7662 §2.1)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathIntrospect, url.Values{"token": {"garbage"}}, "", "")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client"}},
	{name: "introspect/undecodable Basic credentials",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req := f.form(broker.PathIntrospect, url.Values{"token": {"garbage"}}, "", "")
			req.Header.Set("Authorization", "Basic !!!")
			return req
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client", headers: map[string]string{"WWW-Authenticate": basicChallenge}}},
	{name: "introspect/wrong secret",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathIntrospect, url.Values{"token": {"garbage"}}, f.a.ID, "wrong")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client",
			headers: map[string]string{"WWW-Authenticate": basicChallenge}}},
	{name: "introspect/public client cannot (not advertised)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathIntrospect, url.Values{"token": {"garbage"}, "client_id": {f.pub.ID}}, "", "")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client"}},
	{name: "introspect/client_secret_post",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathIntrospect, url.Values{"token": {"garbage"}, "client_id": {f.a.ID}, "client_secret": {f.a.Secret}}, "", "")
		},
		want: answer{status: http.StatusOK, fields: map[string]any{"active": false}}},
	{name: "introspect/GET is refused (RFC 7662 §2.1: POST)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathIntrospect+"?token=garbage", nil)
			req.SetBasicAuth(f.a.ID, f.a.Secret)
			return req
		},
		want: answer{status: http.StatusMethodNotAllowed}},
	{name: "introspect/token given twice",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathIntrospect, url.Values{"token": {"garbage", "other"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request"}},
	{name: "introspect/missing token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathIntrospect, url.Values{}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request"}},

	// Revocation (RFC 7009).
	{name: "revoke/garbage token: 200 (RFC 7009 §2.2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathRevoke, url.Values{"token": {"garbage"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK}},
	{name: "revoke/access token under a refresh_token hint still revokes (RFC 7009 §2.1)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			f.carry["at"] = tok.AccessToken
			return f.form(broker.PathRevoke, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"refresh_token"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			if f.active(t, f.a, f.carry["at"]) {
				t.Error("the access token is still active")
			}
		}},
	{name: "revoke/refresh token under an access_token hint still revokes",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid offline_access")
			f.carry["rt"] = tok.RefreshToken
			return f.form(broker.PathRevoke, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"access_token"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			if f.active(t, f.a, f.carry["rt"]) {
				t.Error("the refresh token is still active")
			}
		}},
	{name: "revoke/unknown token_type_hint",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			return f.form(broker.PathRevoke, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"saml_assertion"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusOK}},
	{name: "revoke/another application's token: unauthorized_client, nothing revoked",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			f.carry["at"] = tok.AccessToken
			return f.form(broker.PathRevoke, url.Values{"token": {tok.AccessToken}}, f.b.ID, f.b.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "unauthorized_client"},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			if !f.active(t, f.a, f.carry["at"]) {
				t.Error("another application revoked the token")
			}
		}},
	// An id_token is neither an access nor a refresh token: the broker
	// does not revoke that kind (RFC 7009 §2.2.1), and says so rather than
	// answer 200 as if the grant had been revoked.
	{name: "revoke/id_token: unsupported_token_type (RFC 7009 §2.2.1)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			f.carry["at"] = tok.AccessToken
			return f.form(broker.PathRevoke, url.Values{"token": {tok.Extra("id_token").(string)}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "unsupported_token_type"},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			if !f.active(t, f.a, f.carry["at"]) {
				t.Error("the access token was revoked")
			}
		}},
	{name: "revoke/wrong secret over Basic",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathRevoke, url.Values{"token": {"garbage"}}, f.a.ID, "wrong")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client",
			headers: map[string]string{"WWW-Authenticate": basicChallenge}}},
	{name: "revoke/undecodable Basic credentials",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req := f.form(broker.PathRevoke, url.Values{"token": {"garbage"}}, "", "")
			req.Header.Set("Authorization", "Basic !!!")
			return req
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client", headers: map[string]string{"WWW-Authenticate": basicChallenge}}},
	{name: "revoke/no client authentication",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathRevoke, url.Values{"token": {"garbage"}}, "", "")
		},
		want: answer{status: http.StatusUnauthorized, jsonError: "invalid_client"}},
	{name: "revoke/public client with client_id (none)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.pub, "openid")
			return f.form(broker.PathRevoke, url.Values{"token": {tok.AccessToken}, "client_id": {f.pub.ID}}, "", "")
		},
		want: answer{status: http.StatusOK}},
	{name: "revoke/client_secret_post",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathRevoke, url.Values{"token": {"garbage"}, "client_id": {f.a.ID}, "client_secret": {f.a.Secret}}, "", "")
		},
		want: answer{status: http.StatusOK}},
	{name: "revoke/token given twice",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathRevoke, url.Values{"token": {"garbage", "other"}}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request"}},
	{name: "revoke/missing token",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			return f.form(broker.PathRevoke, url.Values{}, f.a.ID, f.a.Secret)
		},
		want: answer{status: http.StatusBadRequest, jsonError: "invalid_request"}},

	// End session (RP-Initiated Logout 1.0 §2, §3).
	{name: "logout/post_logout_redirect_uri not registered: a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {"st8"}}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession+"?"+q.Encode(), nil)
			return req
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "logout/another application's post_logout_redirect_uri: a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {"https://app2.example/bye"}, "state": {"st8"}}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession+"?"+q.Encode(), nil)
			return req
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "logout/client_id other than the id_token_hint's audience: a page (RP-Initiated Logout §2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "client_id": {f.b.ID},
				"post_logout_redirect_uri": {"https://app2.example/bye"}, "state": {"st8"}}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession+"?"+q.Encode(), nil)
			return req
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "logout/post_logout_redirect_uri without id_token_hint or client_id: a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			q := url.Values{"post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"st8"}}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession+"?"+q.Encode(), nil)
			return req
		},
		want: answer{page: true}},
	{name: "logout/unknown client_id with a post_logout_redirect_uri: a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			q := url.Values{"client_id": {"app_unknown"}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"st8"}}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession+"?"+q.Encode(), nil)
			return req
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "logout/client_id and its post_logout_redirect_uri, no session: redirected with state",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			q := url.Values{"client_id": {f.a.ID}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"st8"}}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession+"?"+q.Encode(), nil)
			return req
		},
		want: answer{status: http.StatusFound, headers: map[string]string{"Location": "https://app.example/bye?state=st8"}}},
	{name: "logout/nothing at all: the signed-out page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession, nil)
			return req
		},
		want: answer{status: http.StatusOK, page: true}},
	{name: "logout/id_token_hint the broker did not sign: a page",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			q := url.Values{"id_token_hint": {"eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0."}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"st8"}}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession+"?"+q.Encode(), nil)
			return req
		},
		want: answer{status: http.StatusBadRequest, page: true}},
	{name: "logout/registered post_logout_redirect_uri: redirected with state (RP-Initiated Logout §3)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"st8"}}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession+"?"+q.Encode(), nil)
			return req
		},
		want: answer{status: http.StatusFound},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			if loc := resp.Header.Get("Location"); loc != "https://app.example/bye?state=st8" {
				t.Errorf("redirected to %q, want https://app.example/bye?state=st8", loc)
			}
		}},
	// Discovery: every field is what the rows above found in practice.
	{name: "discovery/advertises what the sweep checks",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathDiscovery, nil)
			return req
		},
		want: answer{status: http.StatusOK, fields: map[string]any{
			"issuer":                                         "", // set in then
			"response_types_supported":                       []string{"code"},
			"response_modes_supported":                       []string{"query", "form_post"},
			"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
			"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
			"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic", "client_secret_post"},
			"revocation_endpoint_auth_methods_supported":     []string{"client_secret_basic", "client_secret_post", "none"},
			"code_challenge_methods_supported":               []string{"S256"},
			"request_parameter_supported":                    false,
			"request_uri_parameter_supported":                false,
			"authorization_response_iss_parameter_supported": true,
			"backchannel_logout_supported":                   true,
			"backchannel_logout_session_supported":           true,
		}},
	},
	{name: "discovery/every claims_supported claim is in the id_token or UserInfo",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathDiscovery, nil)
			return req
		},
		want: answer{status: http.StatusOK, fields: map[string]any{}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			tok := f.signIn(t, f.a, "openid email profile groups")
			seen := jwtClaims(t, tok.Extra("id_token").(string))
			ui := f.do(t, f.form(broker.PathUserinfo, url.Values{"access_token": {tok.AccessToken}}, "", ""))
			var info map[string]any
			if err := json.NewDecoder(ui.Body).Decode(&info); err != nil {
				t.Fatal(err)
			}
			for k, v := range info {
				seen[k] = v
			}
			claims, _ := f.decoded["claims_supported"].([]any)
			if len(claims) == 0 {
				t.Fatal("no claims_supported")
			}
			for _, c := range claims {
				if _, ok := seen[c.(string)]; !ok {
					t.Errorf("claims_supported names %s, which neither the id_token nor UserInfo carries", c)
				}
			}
		}},
	{name: "discovery/scopes_supported are each accepted",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathDiscovery, nil)
			return req
		},
		want: answer{status: http.StatusOK, fields: map[string]any{}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			var scopes []string
			for _, s := range f.decoded["scopes_supported"].([]any) {
				scopes = append(scopes, s.(string))
			}
			tok := f.signIn(t, f.a, strings.Join(scopes, " "))
			if got := tok.Extra("scope"); got != strings.Join(scopes, " ") {
				t.Errorf("scope %v, want %s", got, strings.Join(scopes, " "))
			}
		}},
	// Back-Channel Logout 1.0 §2.4, §2.5: a signed logout+jwt with iss,
	// aud, iat, exp, jti, sub, sid and the event, and no nonce.
	{name: "logout/back-channel logout token (Back-Channel Logout §2.4)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.bcl, "openid")
			f.carry["sid"], _ = jwtClaims(t, tok.Extra("id_token").(string))["sid"].(string)
			q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathEndSession+"?"+q.Encode(), nil)
			return req
		},
		want: answer{status: http.StatusOK, page: true},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			select {
			case raw := <-f.logouts:
				verifyLogoutToken(t, f.n, raw, f.bcl.ID, f.carry["sid"])
				if c := jwtClaims(t, raw); c["exp"] == nil {
					t.Errorf("logout token without exp: %v", c)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no back-channel logout")
			}
		}},
	{name: "discovery/prompt_values_supported and response_modes_supported are each honoured",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.n.URL+broker.PathDiscovery, nil)
			return req
		},
		want: answer{status: http.StatusOK, fields: map[string]any{}},
		then: func(t *testing.T, f *conformanceFixture, resp *http.Response) {
			for _, p := range f.decoded["prompt_values_supported"].([]any) {
				resp := f.do(t, authorizeReq(f.a, url.Values{"login_hint": {"alice@acme.test"}, "prompt": {p.(string)}}))
				loc, _ := resp.Location()
				switch q := loc.Query(); {
				case p == "none" && q.Get("error") != "login_required",
					p != "none" && q.Get("code") == "":
					t.Errorf("prompt=%s answered %d %s", p, resp.StatusCode, loc)
				}
			}
			for _, m := range f.decoded["response_modes_supported"].([]any) {
				resp := f.do(t, authorizeReq(f.a, url.Values{"login_hint": {"alice@acme.test"}, "response_mode": {m.(string)}}))
				body, _ := io.ReadAll(resp.Body)
				loc, _ := resp.Location()
				switch {
				case m == "form_post" && (resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="code"`)),
					m == "query" && (loc == nil || loc.Query().Get("code") == ""):
					t.Errorf("response_mode=%s answered %d %v", m, resp.StatusCode, loc)
				}
			}
		}},
	{name: "logout/POST form (RP-Initiated Logout §2)",
		req: func(t *testing.T, f *conformanceFixture) *http.Request {
			tok := f.signIn(t, f.a, "openid")
			return f.form(broker.PathEndSession, url.Values{"id_token_hint": {tok.Extra("id_token").(string)},
				"post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"st8"}}, "", "")
		},
		want: answer{status: http.StatusFound, headers: map[string]string{"Location": "https://app.example/bye?state=st8"}}},
}

// tokenForm redeems at the token endpoint as a (Basic), failing unless 200,
// and returns the answer's string fields.
func (f *conformanceFixture) tokenForm(t *testing.T, a *app, v url.Values) map[string]string {
	t.Helper()
	resp := f.do(t, f.form(broker.PathToken, v, a.ID, a.Secret))
	var out map[string]any
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("token: status %d, %.300s", resp.StatusCode, body)
	}
	fields := map[string]string{}
	for k, v := range out {
		if s, ok := v.(string); ok {
			fields[k] = s
		}
	}
	return fields
}

// mustRevoke revokes token as a, failing unless 200.
func (f *conformanceFixture) mustRevoke(t *testing.T, a *app, token string) {
	t.Helper()
	resp := f.do(t, f.form(broker.PathRevoke, url.Values{"token": {token}}, a.ID, a.Secret))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: status %d", resp.StatusCode)
	}
}

// jwtClaims decodes a JWT's payload, unverified (the row checks which
// claims it carries; other tests verify signatures).
func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40s", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
