package loadtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Broker is a running broker as the scenarios see it: its base URL, a
// second node's (for deprovision-propagation; the same one otherwise) and
// an operator API key to set up tenants, applications and directories.
type Broker struct {
	URL, URL2 string
	APIKey    string
	// HTTP is shared by every operation: keep-alive connections over the
	// scenarios' own transport, no redirects followed (the flows step
	// through them themselves).
	HTTP *http.Client
	// AuthorizePath, TokenPath and IntrospectPath are the OpenID
	// Provider's endpoints under URL (idbroker's by default; a peer's for
	// comparisons).
	AuthorizePath, TokenPath, IntrospectPath string
}

// NewBroker checks that the URLs are loopback http URLs, like Run.
func NewBroker(base, base2, apiKey string) (*Broker, error) {
	if base2 == "" {
		base2 = base
	}
	for _, u := range []string{base, base2} {
		if err := checkLoopback(u); err != nil {
			return nil, err
		}
	}
	return &Broker{URL: strings.TrimSuffix(base, "/"), URL2: strings.TrimSuffix(base2, "/"), APIKey: apiKey,
		AuthorizePath: "/authorize", TokenPath: "/oauth/token", IntrospectPath: "/oauth/introspect",
		// The transport bounds each request (30 s): no Client.Timeout, whose
		// timer per request would only add to the driver's cost.
		HTTP: &http.Client{Transport: newTransport(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("loadtest: URL %q must be http://host:port", raw)
	}
	return checkHost(u.Hostname())
}

// statusError is an answer with an unexpected status.
func statusError(resp *http.Response, body []byte, what string) error {
	e := &OpError{Kind: fmt.Sprintf("status %d", resp.StatusCode),
		Err: fmt.Errorf("%s %s: %s", what, resp.Request.URL.Path, truncate(string(body), 300))}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// do sends req and reads the whole answer.
func (b *Broker) do(c *http.Client, req *http.Request) (*http.Response, []byte, error) {
	if c == nil {
		c = b.HTTP
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if b, ok := resp.Body.(wholeBody); ok { // read whole by the transport
		return resp, b.b, nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp, raw, err
}

// jsonCall sends a JSON body (if any) with a bearer token and decodes a
// JSON answer into out, expecting status want.
func (b *Broker) jsonCall(ctx context.Context, method, url, bearer, ctype string, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	if in != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, raw, err := b.do(nil, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return statusError(resp, raw, method)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return &OpError{Kind: "protocol", Err: fmt.Errorf("%s %s: %w", method, url, err)}
		}
	}
	return nil
}

// api calls the operator API.
func (b *Broker) api(ctx context.Context, method, path string, in, out any, want int) error {
	return b.jsonCall(ctx, method, b.URL+"/api/v1"+path, b.APIKey, "application/json", in, out, want)
}

// App is an application registered for a run.
type App struct {
	ClientID, Secret, Redirect string
}

// tenantSetup is what a scenario creates through the operator API.
type tenantSetup struct {
	TenantID, Domain string
}

func (b *Broker) createTenant(ctx context.Context, name string) (tenantSetup, error) {
	domain := "load-" + strings.ToLower(randomString()[:10]) + ".test"
	domain = strings.NewReplacer("_", "x", "-", "x").Replace(domain[:15]) + domain[15:]
	var t struct {
		ID string `json:"id"`
	}
	err := b.api(ctx, "POST", "/tenants", map[string]any{"name": name,
		"domains": []any{map[string]any{"domain": domain, "verified": true}}}, &t, http.StatusCreated)
	return tenantSetup{TenantID: t.ID, Domain: domain}, err
}

func (b *Broker) createApp(ctx context.Context, name string, extra map[string]any) (App, error) {
	redirect := "http://127.0.0.1:9/callback"
	in := map[string]any{"name": name, "redirect_uris": []string{redirect}}
	for k, v := range extra {
		in[k] = v
	}
	var a struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	err := b.api(ctx, "POST", "/applications", in, &a, http.StatusCreated)
	return App{ClientID: a.ClientID, Secret: a.ClientSecret, Redirect: redirect}, err
}

func (b *Broker) createOIDCConnection(ctx context.Context, tenant string, idp *OIDCIdP) (string, error) {
	var c struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	err := b.api(ctx, "POST", "/tenants/"+tenant+"/connections", map[string]any{"type": "oidc", "name": "load",
		"oidc": map[string]any{"issuer": idp.Issuer(), "client_id": idp.ClientID, "client_secret": idp.ClientSecret}}, &c, http.StatusCreated)
	if err == nil && c.Status != "active" {
		err = fmt.Errorf("loadtest: the OIDC connection is %q, not active", c.Status)
	}
	return c.ID, err
}

// directory is a SCIM directory of a run's tenant.
type directory struct {
	Base, Token string
}

func (b *Broker) createDirectory(ctx context.Context, tenant string) (directory, error) {
	var d struct {
		URL   string `json:"scim_base_url"`
		Token string `json:"bearer_token"`
	}
	err := b.api(ctx, "POST", "/tenants/"+tenant+"/directories", map[string]any{"name": "load"}, &d, http.StatusCreated)
	return directory{Base: d.URL, Token: d.Token}, err
}

// scim calls a directory's SCIM endpoint.
func (b *Broker) scim(ctx context.Context, d directory, method, path string, in, out any, want int) error {
	return b.jsonCall(ctx, method, d.Base+path, d.Token, "application/scim+json", in, out, want)
}

// Tokens is a token endpoint answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// token posts a grant to the token endpoint with client_secret_basic.
func (b *Broker) token(ctx context.Context, app App, form url.Values) (Tokens, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", b.URL+b.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return Tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(app.ClientID), url.QueryEscape(app.Secret))
	resp, body, err := b.do(nil, req)
	if err != nil {
		return Tokens{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Tokens{}, statusError(resp, body, "token")
	}
	var t Tokens
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return Tokens{}, &OpError{Kind: "protocol", Err: fmt.Errorf("token answer: %s", truncate(string(body), 200))}
	}
	return t, nil
}

// introspect asks node base whether token is active.
func (b *Broker) introspect(ctx context.Context, base string, app App, token string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+b.IntrospectPath, strings.NewReader("token="+url.QueryEscape(token)))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(app.ClientID), url.QueryEscape(app.Secret))
	resp, body, err := b.do(nil, req)
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, statusError(resp, body, "introspect")
	}
	var r struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return false, &OpError{Kind: "protocol", Err: err}
	}
	return r.Active, nil
}

// autoPostForm reads the first form of an auto-submitting page (the SAML
// HTTP-POST binding): its action and the name and value of each input that
// has both, unescaped. It scans tags with bytes.Index rather than regular
// expressions: the page carries the whole signed response as one base64
// value, and backtracking over it was most of the tool's own CPU.
func autoPostForm(page []byte) (action string, form url.Values, ok bool) {
	rest := page
	for action == "" {
		var tag []byte
		var found bool
		if tag, rest, found = nextTag(rest, "<form"); !found {
			return "", nil, false
		}
		action, _ = attr(tag, "action")
	}
	form = url.Values{}
	for {
		tag, next, found := nextTag(rest, "<input")
		if !found {
			return action, form, true
		}
		rest = next
		name, hasName := attr(tag, "name")
		value, hasValue := attr(tag, "value")
		if hasName && hasValue && name != "" {
			form.Set(name, value)
		}
	}
}

// nextTag finds the next tag starting with open and returns its inside
// (up to the closing '>') and the page after it. Attribute values on
// these pages are escaped by html/template, so a '>' ends the tag.
func nextTag(page []byte, open string) (tag, rest []byte, ok bool) {
	i := bytes.Index(page, []byte(open))
	if i < 0 {
		return nil, nil, false
	}
	page = page[i+len(open):]
	j := bytes.IndexByte(page, '>')
	if j < 0 {
		return nil, nil, false
	}
	return page[:j], page[j+1:], true
}

// attr is the unescaped value of the double-quoted attribute name in tag.
func attr(tag []byte, name string) (string, bool) {
	key := []byte(name + `="`)
	for off := 0; ; {
		i := bytes.Index(tag[off:], key)
		if i < 0 {
			return "", false
		}
		i += off
		start := i + len(key)
		if i > 0 && !isSpace(tag[i-1]) { // a longer attribute ending in name
			off = start
			continue
		}
		end := bytes.IndexByte(tag[start:], '"')
		if end < 0 {
			return "", false
		}
		return html.UnescapeString(string(tag[start : start+end])), true
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// login runs a complete authorization-code login with PKCE as a browser
// would, from /authorize to the code on the application's redirect URI,
// then redeems the code. params route it (connection=, login_hint=, …);
// cookies are the browser's cookies before it starts (an IdP session).
func (b *Broker) login(ctx context.Context, app App, params url.Values, cookies map[string][]*http.Cookie) (Tokens, error) {
	jar, _ := cookiejar.New(nil)
	for u, cs := range cookies {
		pu, _ := url.Parse(u)
		jar.SetCookies(pu, cs)
	}
	c := &http.Client{Transport: b.HTTP.Transport, Jar: jar, Timeout: b.HTTP.Timeout, CheckRedirect: b.HTTP.CheckRedirect}
	verifier := randomString() + randomString()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {app.ClientID}, "redirect_uri": {app.Redirect},
		"scope": {"openid email profile offline_access"}, "state": {randomString()}, "nonce": {randomString()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	for k, v := range params {
		q[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, "GET", b.URL+b.AuthorizePath+"?"+q.Encode(), nil)
	if err != nil {
		return Tokens{}, err
	}
	for step := 0; step < 12; step++ {
		resp, body, err := b.do(c, req)
		if err != nil {
			return Tokens{}, err
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return Tokens{}, &OpError{Kind: "protocol", Err: err}
			}
			if strings.HasPrefix(loc.String(), app.Redirect) {
				code := loc.Query().Get("code")
				if code == "" {
					return Tokens{}, &OpError{Kind: "login refused", Err: fmt.Errorf("redirect without a code: %s", loc.RawQuery)}
				}
				return b.token(ctx, app, url.Values{"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {app.Redirect}, "code_verifier": {verifier}})
			}
			if req, err = http.NewRequestWithContext(ctx, "GET", loc.String(), nil); err != nil {
				return Tokens{}, err
			}
		case resp.StatusCode == http.StatusOK:
			// An auto-submitting form (SAML HTTP-POST binding) is posted.
			rawAction, form, ok := autoPostForm(body)
			if !ok {
				return Tokens{}, &OpError{Kind: "unexpected page", Err: fmt.Errorf("%s: %s", resp.Request.URL.Path, truncate(string(body), 200))}
			}
			action, err := resp.Request.URL.Parse(rawAction)
			if err != nil {
				return Tokens{}, &OpError{Kind: "protocol", Err: err}
			}
			if req, err = http.NewRequestWithContext(ctx, "POST", action.String(), strings.NewReader(form.Encode())); err != nil {
				return Tokens{}, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			return Tokens{}, statusError(resp, body, "login")
		}
	}
	return Tokens{}, &OpError{Kind: "protocol", Err: errors.New("login did not end in 12 steps")}
}
