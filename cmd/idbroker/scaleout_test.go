package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/pquerna/otp/totp"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// cluster is a scale-out deployment as production runs it: nodes of one
// PostgreSQL database and one Redis, all serving the issuer of a
// round-robin load balancer in front of them, which sends every request
// to the next node (no stickiness).
type cluster struct {
	t     *testing.T
	env   map[string]string // every node's environment
	nodes []*node
	lb    *node // the load balancer, as a node: its base is the issuer

	mu   sync.Mutex
	down map[int]bool // nodes the balancer skips (stopped or killed)
	next atomic.Uint64
}

// startCluster starts n brokers (serve --dev, whose built-in SAML IdP
// signs users in) behind a round-robin reverse proxy, on a fresh
// PostgreSQL database and a Redis of the test's own.
func startCluster(t *testing.T, n int, extra map[string]string) *cluster {
	t.Helper()
	return startClusterTLS(t, n, extra, false)
}

// startClusterTLS is startCluster with, when tls is set, a balancer that
// terminates TLS (an https issuer) in front of plain-http nodes; lb's
// client trusts its certificate.
func startClusterTLS(t *testing.T, n int, extra map[string]string, tls bool) *cluster {
	t.Helper()
	return startClusterOpts(t, n, extra, tls, false)
}

// startClusterOpts is startClusterTLS whose nodes, when together is set,
// all start at the same moment on the fresh database.
func startClusterOpts(t *testing.T, n int, extra map[string]string, tls, together bool) *cluster {
	t.Helper()
	rs := sessionstest.StartServer(t)
	c := &cluster{t: t, down: map[int]bool{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u, _ := url.Parse(r.In.Context().Value(pickedKey{}).(*node).base)
			r.SetURL(u)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
	}
	// A node calls the issuer while the others start (serve --dev
	// re-provisions the demo users through it): until one is up the
	// balancer answers 503, as a real one with no healthy backend.
	lb := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := c.pick()
		if n == nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "no node is up yet", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), pickedKey{}, n)))
	}))
	if tls {
		lb.StartTLS()
	} else {
		lb.Start()
	}
	t.Cleanup(lb.Close)
	c.env = productionEnv(t, rs.URL())
	c.env[envIssuer] = lb.URL
	c.env[envTrustedProxies] = "127.0.0.1/32"
	for k, v := range extra {
		c.env[k] = v
	}
	c.mu.Lock()
	c.nodes = make([]*node, n)
	c.mu.Unlock()
	if together {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				b, err := tryStartBroker(t, c.env, "--dev")
				c.setNode(i, b)
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
		}
	} else {
		for i := range n {
			c.setNode(i, startBroker(t, c.env, "--dev"))
		}
	}
	client := lb.Client()
	client.Timeout = 10 * time.Second
	c.lb = &node{t: t, base: lb.URL, output: new(syncBuffer), client: client, done: make(chan struct{})}
	return c
}

// pickedKey carries the node the balancer picked for a request.
type pickedKey struct{}

// setNode puts b in slot i, under the lock pick reads the slots with.
func (c *cluster) setNode(i int, b *node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[i] = b
}

// pick is the next live node in turn, or nil while none has started.
func (c *cluster) pick() *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range len(c.nodes) {
		i := int(c.next.Add(1)-1) % len(c.nodes)
		if c.nodes[i] != nil && !c.down[i] {
			return c.nodes[i]
		}
	}
	for _, n := range c.nodes {
		if n != nil {
			return n
		}
	}
	return nil
}

// output is every node's log, for a test that looks for a line one of
// them printed.
func (c *cluster) output() string {
	var s string
	for _, n := range c.nodes {
		s += n.output.String()
	}
	return s
}

// TestNodeWithAnotherMasterKeyRefusesToStart: a node added to a running
// deployment with a master key other than the deployment's (a typo, a
// secret manager's stale version) must refuse to start, saying which
// setting is wrong and what every node needs, before it serves or seals
// anything.
func TestNodeWithAnotherMasterKeyRefusesToStart(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	env := maps.Clone(c.env)
	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	env[envMasterKey] = base64.StdEncoding.EncodeToString(other)
	env[envListen] = freeAddr(t)
	_, stderr, code := runBinary(t, env, "serve")
	if code == 0 {
		t.Fatalf("a node with another master key exited 0:\n%s", stderr)
	}
	ours, _ := secrets.ParseMasterKey(testMasterKey)
	theirs, _ := secrets.ParseMasterKey(env[envMasterKey])
	for _, want := range []string{envMasterKey + " does not open", "every node", envMasterKeyPrevious, theirs.String()} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, stderr)
		}
	}
	// The running node logged the id to compare it with.
	if !strings.Contains(c.nodes[0].output.String(), "config.master_key_id="+ours.String()) {
		t.Errorf("the deployment's node does not log its master key's id %s:\n%.2000s", ours, c.nodes[0].output)
	}
}

// TestScaleOutRoundRobin runs the flows of every surface through three
// nodes behind a round-robin load balancer that sends each request to the
// next node, so that every step of a flow lands on another node than the
// step before: nothing may depend on stickiness.
func TestScaleOutRoundRobin(t *testing.T) {
	t.Parallel()
	var logouts atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { logouts.Add(1) }))
	defer rcv.Close()
	c := startCluster(t, 3, nil)
	rp := newRPClient(t, c.lb, "Round robin", map[string]any{"backchannel_logout_uri": rcv.URL})
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := c.lb.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d, %+v; want the dev tenant", code, tenants)
	}
	tenantID := tenants.Data[0].ID

	t.Run("sign-in, refresh and logout", func(t *testing.T) {
		rp.t = t
		tok := rp.login("alice@example.com") // authorize, IdP, ACS and code exchange on the next node each
		for range 3 {
			var next tokens
			if code := rp.refreshInto(c.lb, tok.RefreshToken, &next); code != http.StatusOK {
				t.Fatalf("refresh through the balancer = %d", code)
			}
			tok = next
		}
		for i, n := range c.nodes {
			if !rp.active(n, tok.AccessToken) {
				t.Errorf("node %d: the fresh access token is inactive", i)
			}
		}
		br := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := br.Get(c.nodes[0].base + "/oauth/logout?" + url.Values{"id_token_hint": {tok.IDToken}, "client_id": {rp.clientID}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for i, n := range c.nodes {
			if rp.active(n, tok.AccessToken) {
				t.Errorf("node %d: the access token is active after logout on node 0", i)
			}
		}
		// One back-channel logout, however many nodes run dispatchers.
		var list struct {
			Data []struct{ Status string } `json:"data"`
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if code := c.lb.do("GET", "/api/v1/tenants/"+tenantID+"/logouts?status=succeeded", e2eBootstrapKey, nil, &list); code != http.StatusOK {
				t.Fatalf("GET logouts = %d", code)
			}
			if len(list.Data) > 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(list.Data) != 1 || logouts.Load() != 1 {
			t.Errorf("back-channel logouts: %d succeeded, %d received; want 1", len(list.Data), logouts.Load())
		}

		// The SSO session of a browser signs it in again on every node
		// without the IdP.
		sso := &rpClient{t: t, node: c.lb, clientID: rp.clientID, secret: rp.secret}
		sso.jar, _ = cookiejar.New(nil)
		sso.login("alice@example.com")
		var idp atomic.Int32
		count := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasPrefix(r.URL.Path, "/dev/idp") {
				idp.Add(1)
			}
			return http.DefaultTransport.RoundTrip(r)
		})
		for range len(c.nodes) {
			sso.authorizeVia(count, "alice@example.com")
		}
		if idp.Load() != 0 {
			t.Errorf("SSO through the balancer went to the IdP %d times, want 0", idp.Load())
		}
	})

	t.Run("races across nodes", func(t *testing.T) {
		rp.t = t
		// One code presented on two nodes at once: exactly one exchange.
		code := rp.authorize("alice@example.com")
		statuses := race(2, func(i int) int {
			s, _ := rp.post(c.nodes[i+1], "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {"https://app.example/cb"}}, nil)
			return s
		})
		if count(statuses, http.StatusOK) != 1 {
			t.Errorf("one code on two nodes at once: %v; want exactly one 200", statuses)
		}
		// One refresh token presented on two nodes at once: exactly one wins.
		tok := rp.login("alice@example.com")
		statuses = race(2, func(i int) int { return rp.refreshInto(c.nodes[i], tok.RefreshToken, &tokens{}) })
		if count(statuses, http.StatusOK) > 1 {
			t.Errorf("one refresh token on two nodes at once: %v; want at most one 200", statuses)
		}
	})

	t.Run("upstream OIDC and SAML", func(t *testing.T) {
		u := &upstream{t: t, b: c.lb, domain: "corp-" + randomHex(t, 4) + ".example"}
		var tn struct{ ID string }
		if code := c.lb.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Corp",
			"domains": []map[string]any{{"domain": u.domain, "verified": true}}}, &tn); code != http.StatusCreated {
			t.Fatalf("create tenant: %d", code)
		}
		u.tenantID, u.clientID, u.secret = tn.ID, rp.clientID, rp.secret
		// state, nonce and PKCE are kept where the callback's node finds them
		op := newVendorOP(t, "/")
		op.set(func(op *vendorOP) {
			op.claims = map[string]any{"sub": "00u1", "email": "bob@" + u.domain, "email_verified": true}
		})
		oidcID := u.oidcConnection(op, nil)
		v := newVendorIdP(t)
		v.set(func(v *vendorIdP) {
			v.nameID = "00u2"
			v.attrs = []saml.Attribute{strAttr("email", "carol@"+u.domain)}
		})
		samlID := u.samlConnection(v, nil)
		// The IdP's answer (its code and the broker's state), replayed on
		// any node, signs nobody in.
		jar, _ := cookiejar.New(nil)
		var callback, appCode string
		br := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if strings.HasSuffix(r.URL.Path, "/callback") {
				callback = r.URL.String()
			}
			if r.URL.Host == "app.example" {
				appCode = r.URL.Query().Get("code")
				return http.ErrUseLastResponse
			}
			return nil
		}}
		q := url.Values{"client_id": {u.clientID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
			"scope": {"openid email"}, "state": {"st8"}, "connection": {oidcID}}
		resp, err := br.Get(c.lb.base + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if appCode == "" || callback == "" {
			t.Fatalf("OIDC sign-in: code %q, callback %q", appCode, callback)
		}
		for i, n := range c.nodes {
			appCode = ""
			resp, err := br.Get(strings.Replace(callback, c.lb.base, n.base, 1))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if appCode != "" {
				t.Errorf("node %d signed the user in again from a replayed OIDC callback", i)
			}
		}
		for range 3 {
			if c := u.mustSignIn(oidcID); c["email"] != "bob@"+u.domain {
				t.Errorf("OIDC sign-in: claims %v", c)
			}
			res := u.signIn(samlID, nil)
			if res.code == "" {
				t.Fatalf("SAML sign-in: %d, last failure %v", res.status, u.lastFailure())
			}
			// The response, consumed, is refused on every node.
			for i, n := range c.nodes {
				if again := u.post(strings.Replace(res.acs, c.lb.base, n.base, 1), res.acsForm); again.code != "" {
					t.Errorf("node %d accepted a SAML response consumed on another node", i)
				}
			}
		}
	})

	t.Run("portal", func(t *testing.T) {
		link := func(intent string) string {
			var l struct{ URL string }
			if code := c.lb.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": tenantID, "intent": intent}, &l); code != http.StatusCreated {
				t.Fatalf("POST portal_links = %d", code)
			}
			return strings.TrimPrefix(l.URL, c.lb.base)
		}
		// A link opened at the same moment on every node starts one session.
		path := link("sso")
		jars := make([]http.CookieJar, len(c.nodes))
		statuses := race(len(c.nodes), func(i int) int {
			jars[i], _ = cookiejar.New(nil)
			cl := &http.Client{Jar: jars[i], Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := cl.Get(c.nodes[i].base + path)
			if err != nil {
				t.Error(err)
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		})
		if count(statuses, http.StatusSeeOther) != 1 || count(statuses, http.StatusGone) != len(c.nodes)-1 {
			t.Fatalf("one link opened on %d nodes at once: %v; want one session (303), the others 410", len(c.nodes), statuses)
		}
		var jar http.CookieJar
		for i, s := range statuses {
			if s == http.StatusSeeOther {
				jar = jars[i]
			}
		}
		// The session, its pages and its CSRF token hold on every node.
		cl := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		get := func(base, path string) (int, string) {
			resp, err := cl.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(raw)
		}
		var page string
		for i := range c.nodes {
			var code int
			if code, page = get(c.lb.base, "/portal/sso"); code != http.StatusOK {
				t.Fatalf("portal page through the balancer (%d) = %d", i, code)
			}
		}
		csrf := csrfFieldRE.FindStringSubmatch(page)
		if csrf == nil {
			t.Fatalf("no CSRF token on the portal page:\n%s", page)
		}
		kept := jar.Cookies(mustURL(t, c.lb.base+"/portal"))
		resp, err := cl.PostForm(c.lb.base+"/portal/signout", url.Values{"csrf_token": {csrf[1]}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("portal sign-out through the balancer = %d", resp.StatusCode)
		}
		// Signed out on one node is signed out on all: the old cookie,
		// sent again, opens nothing.
		jar, _ = cookiejar.New(nil)
		jar.SetCookies(mustURL(t, c.lb.base+"/portal"), kept)
		cl.Jar = jar
		for i, n := range c.nodes {
			if code, _ := get(n.base, "/portal/sso"); code == http.StatusOK {
				t.Errorf("node %d: the portal session works after its sign-out", i)
			}
		}
		// A session's intent holds on every node.
		path = link("dsync")
		jar, _ = cookiejar.New(nil)
		cl = &http.Client{Jar: jar, Timeout: 10 * time.Second}
		if code, _ := get(c.lb.base, path); code != http.StatusOK {
			t.Fatalf("dsync link = %d", code)
		}
		for i, n := range c.nodes {
			if code, _ := get(n.base, "/portal/sso"); code == http.StatusOK {
				t.Errorf("node %d: a dsync session reaches the SSO pages", i)
			}
			if code, _ := get(n.base, "/portal/dsync"); code != http.StatusOK {
				t.Errorf("node %d: a dsync session's own page = %d", i, code)
			}
		}
	})

	t.Run("console", func(t *testing.T) {
		m := devOperatorRE.FindStringSubmatch(c.output())
		if m == nil {
			t.Fatal("no dev operator credentials in the nodes' logs")
		}
		type visitor struct {
			cl   *http.Client
			csrf string
		}
		vs := make([]visitor, 2)
		for i := range vs {
			jar, _ := cookiejar.New(nil)
			vs[i].cl = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := vs[i].cl.Get(c.nodes[i].base + "/console/signin")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			f := csrfFieldRE.FindSubmatch(raw)
			if f == nil {
				t.Fatalf("no CSRF field on the sign-in page:\n%s", raw)
			}
			vs[i].csrf = string(f[1])
		}
		// One TOTP code presented on two nodes at once signs in once.
		code, err := totp.GenerateCode(m[3], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		statuses := race(2, func(i int) int {
			form := url.Values{"csrf_token": {vs[i].csrf}, "email": {m[1]}, "password": {m[2]}, "code": {code}}
			resp, err := vs[i].cl.PostForm(c.nodes[i].base+"/console/signin", form)
			if err != nil {
				t.Error(err)
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		})
		if count(statuses, http.StatusSeeOther) != 1 {
			t.Fatalf("one TOTP code on two nodes at once: %v; want one sign-in (303)", statuses)
		}
		var cl *http.Client
		for i, s := range statuses {
			if s == http.StatusSeeOther {
				cl = vs[i].cl
			}
		}
		tenantsPage := func(n *node) (int, string) {
			resp, err := cl.Get(n.base + "/console/tenants")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(raw)
		}
		var page string
		for i, n := range c.nodes {
			var code int
			if code, page = tenantsPage(n); code != http.StatusOK {
				t.Fatalf("node %d: the console session = %d", i, code)
			}
		}
		f := csrfFieldRE.FindStringSubmatch(page)
		if f == nil {
			t.Fatalf("no CSRF field on the tenants page")
		}
		kept := cl.Jar.Cookies(mustURL(t, c.lb.base+"/console"))
		resp, err := cl.PostForm(c.nodes[1].base+"/console/signout", url.Values{"csrf_token": {f[1]}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("console sign-out = %d", resp.StatusCode)
		}
		// The old cookie, sent again, opens nothing on any node.
		jar, _ := cookiejar.New(nil)
		jar.SetCookies(mustURL(t, c.lb.base+"/console"), kept)
		cl.Jar = jar
		for i, n := range c.nodes {
			if code, _ := tenantsPage(n); code == http.StatusOK {
				t.Errorf("node %d: the console session works after its sign-out on node 1", i)
			}
		}
		// Failed sign-ins count on every node together: the fifth locks
		// the operator out, whichever nodes the five reached (the first
		// was the code presented twice above).
		for i := range 4 {
			n := c.nodes[i%len(c.nodes)]
			resp, err := vs[0].cl.Get(n.base + "/console/signin")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			f := csrfFieldRE.FindSubmatch(raw)
			if f == nil {
				t.Fatalf("no CSRF field on the sign-in page")
			}
			resp, err = vs[0].cl.PostForm(n.base+"/console/signin", url.Values{"csrf_token": {string(f[1])}, "email": {m[1]}, "password": {"not-the-password"}, "code": {"000000"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := map[bool]int{true: http.StatusTooManyRequests, false: http.StatusUnauthorized}[i == 3]; resp.StatusCode != want {
				t.Errorf("failed sign-in %d (node %d) = %d, want %d", i+2, i%len(c.nodes), resp.StatusCode, want)
			}
		}
	})

	t.Run("signing key rotated while nodes run", func(t *testing.T) {
		rp.t = t
		before := claimHeaderKID(t, rp.login("alice@example.com").AccessToken)
		if out, errOut, code := runBinary(t, c.env, "keys", "rotate", "--overlap", "1h"); code != 0 {
			t.Fatalf("keys rotate = %d\n%s\n%s", code, out, errOut)
		}
		// The nodes reload their keys every 30 s, each at its own moment:
		// sign in until a token of the new key comes; every node must
		// accept it then, and publish its key.
		for deadline := time.Now().Add(time.Minute); ; {
			tok := rp.login("alice@example.com")
			kid := claimHeaderKID(t, tok.AccessToken)
			if kid == before {
				if time.Now().After(deadline) {
					t.Fatal("no token of the new keys a minute after the rotation")
				}
				continue
			}
			for i, n := range c.nodes {
				if !rp.active(n, tok.AccessToken) {
					t.Errorf("node %d: a token of the key rotated in is inactive", i)
				}
				resp, err := n.client.Get(n.base + "/.well-known/jwks.json")
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(raw), kid) {
					t.Errorf("node %d: the JWKS lacks %s, a key tokens are signed with", i, kid)
				}
			}
			break
		}
	})

	t.Run("a node killed mid-flow", func(t *testing.T) {
		rp.t = t
		victim := 1
		var sent atomic.Int32
		kill := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if sent.Add(1) == 2 { // the flow has begun on the nodes
				c.nodes[victim].cmd.Process.Kill()
				<-c.nodes[victim].done
				c.setDown(victim, true)
			}
			return http.DefaultTransport.RoundTrip(r)
		})
		code := rp.authorizeVia(kill, "alice@example.com")
		var tok tokens
		if status, raw := rp.post(c.lb, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {"https://app.example/cb"}}, &tok); status != http.StatusOK {
			t.Fatalf("code exchange with node %d dead = %d %s", victim, status, raw)
		}
		// Restarted where it was, it serves the sessions made meanwhile.
		env := maps.Clone(c.env)
		env[envListen] = strings.TrimPrefix(c.nodes[victim].base, "http://")
		c.setNode(victim, startBroker(t, env, "--dev"))
		c.setDown(victim, false)
		if !rp.active(c.nodes[victim], tok.AccessToken) {
			t.Error("the restarted node does not know the session made while it was down")
		}
		var next tokens
		if status := rp.refreshInto(c.nodes[victim], tok.RefreshToken, &next); status != http.StatusOK {
			t.Errorf("refresh on the restarted node = %d", status)
		}
	})
}

// TestRateLimitsAcrossNodes: a limit counts the requests of every node,
// whichever node each lands on, and the one over it is a 429 with the
// contract's headers.
// (An hour's budget: the bucket refills one request every 400 s, never
// while the test runs, however slow the machine.)
func TestRateLimitsAcrossNodes(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, map[string]string{envRateLimitLogin: "9/1h"})
	rp := newRPClient(t, c.lb, "Limited", nil)
	br := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"client_id": {rp.clientID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}
	for i := 1; i <= 10; i++ {
		resp, err := br.Get(c.lb.base + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case i <= 9 && resp.StatusCode == http.StatusTooManyRequests:
			t.Fatalf("request %d of 9 allowed an hour, 3 per node, = 429", i)
		case i == 10 && (resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("X-RateLimit-Limit") != "9" || resp.Header.Get("X-RateLimit-Remaining") != "0"):
			t.Fatalf("request 10 of 9 allowed, over three nodes = %d, headers %v; want 429 with Retry-After and X-RateLimit-*", resp.StatusCode, resp.Header)
		}
	}
}

func (c *cluster) setDown(i int, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[i] = down
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// race runs f(0)…f(n-1) at the same moment and returns their statuses.
func race(n int, f func(i int) int) []int {
	out := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func count(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// claimHeaderKID is the kid in a JWT's header.
func claimHeaderKID(t *testing.T, jwt string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestScaleOutBehindTLS: the balancer terminates TLS, so the issuer is
// https while the nodes serve plain http: the cookies of the SSO session,
// the portal and the console are Secure (and __Host- where the surface
// says so), and every surface still works with each request on the next
// node.
func TestScaleOutBehindTLS(t *testing.T) {
	t.Parallel()
	c := startClusterTLS(t, 3, nil, true)
	rp := newRPClient(t, c.lb, "TLS", nil)
	jar, _ := cookiejar.New(nil)
	rp.jar = jar
	code := rp.authorizeVia(c.lb.client.Transport, "alice@example.com")
	var tk tokens
	if status, raw := rp.post(c.lb, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}}, &tk); status != http.StatusOK {
		t.Fatalf("code exchange = %d %s", status, raw)
	}
	for i, n := range c.nodes {
		if !rp.active(n, tk.AccessToken) {
			t.Errorf("node %d: the access token is inactive", i)
		}
	}
	// The SSO session (a Secure cookie) signs the browser in again on
	// every node, without the IdP.
	var idp atomic.Int32
	viaLB := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasPrefix(r.URL.Path, "/dev/idp") {
			idp.Add(1)
		}
		return c.lb.client.Transport.RoundTrip(r)
	})
	for range len(c.nodes) {
		rp.authorizeVia(viaLB, "alice@example.com")
	}
	if idp.Load() != 0 {
		t.Errorf("SSO through the TLS balancer went to the IdP %d times, want 0", idp.Load())
	}

	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := c.lb.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d", code)
	}
	var link struct{ URL string }
	if code := c.lb.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": tenants.Data[0].ID, "intent": "sso"}, &link); code != http.StatusCreated {
		t.Fatalf("POST portal_links = %d", code)
	}
	pj, _ := cookiejar.New(nil)
	portal := &http.Client{Jar: pj, Transport: c.lb.client.Transport, Timeout: 10 * time.Second}
	for i := range len(c.nodes) + 1 {
		path := "/portal/sso"
		if i == 0 {
			path = strings.TrimPrefix(link.URL, c.lb.base)
		}
		resp, err := portal.Get(c.lb.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("portal %s through the TLS balancer (%d) = %d", path, i, resp.StatusCode)
		}
	}
	cks := pj.Cookies(mustURL(t, c.lb.base+"/portal"))
	if len(cks) == 0 || !strings.HasPrefix(cks[0].Name, "__Host-") {
		t.Errorf("portal cookies on an https issuer: %v; want __Host-", cks)
	}

	m := devOperatorRE.FindStringSubmatch(c.output())
	if m == nil {
		t.Fatal("no dev operator credentials in the nodes' logs")
	}
	cj, _ := cookiejar.New(nil)
	console := &http.Client{Jar: cj, Transport: c.lb.client.Transport, Timeout: 10 * time.Second}
	resp, err := console.Get(c.lb.base + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	f := csrfFieldRE.FindSubmatch(raw)
	if f == nil {
		t.Fatalf("no CSRF field on the sign-in page: %d", resp.StatusCode)
	}
	totpCode, err := totp.GenerateCode(m[3], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err = console.PostForm(c.lb.base+"/console/signin", url.Values{"csrf_token": {string(f[1])}, "email": {m[1]}, "password": {m[2]}, "code": {totpCode}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i := range len(c.nodes) {
		resp, err := console.Get(c.lb.base + "/console/tenants")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/console/tenants" {
			t.Fatalf("console through the TLS balancer (%d) = %d at %s", i, resp.StatusCode, resp.Request.URL.Path)
		}
	}
}

// TestDevNodesStartTogether: several `serve --dev` nodes started at the
// same moment on one fresh PostgreSQL database (a demo of a scale-out
// deployment) all start, and seed one demo between them: one tenant, one
// connection to the built-in IdP, one demo application and introspection
// client, one dev operator whose credentials one node prints and which
// sign in. Before, all but one node could exit on the seed's conflict, or
// seed a second connection and applications beside the first.
func TestDevNodesStartTogether(t *testing.T) {
	t.Parallel()
	c := startClusterOpts(t, 3, nil, false, true)
	nodes := c.nodes
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := nodes[0].do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d, %d tenants; want the one demo tenant", code, len(tenants.Data))
	}
	var conns struct {
		Data []struct{ ID string } `json:"data"`
	}
	if code := nodes[0].do("GET", "/api/v1/tenants/"+tenants.Data[0].ID+"/connections", e2eBootstrapKey, nil, &conns); code != http.StatusOK || len(conns.Data) != 1 {
		t.Errorf("the demo tenant has %d connections (%d), want 1", len(conns.Data), code)
	}
	var apps struct {
		Data []struct{ Name string } `json:"data"`
	}
	if code := nodes[0].do("GET", "/api/v1/applications", e2eBootstrapKey, nil, &apps); code != http.StatusOK || len(apps.Data) != 2 {
		t.Errorf("%d applications (%d): %+v; want the demo app and its introspection client", len(apps.Data), code, apps.Data)
	}
	printed := 0
	for _, n := range nodes {
		if devOperatorRE.MatchString(n.output.String()) {
			printed++
			consoleSession(t, n) // the credentials printed sign in
		}
	}
	if printed != 1 {
		t.Errorf("%d nodes printed dev operator credentials, want 1", printed)
	}
	// The demo user signs in through the one connection, each request
	// on the next node (each node's built-in IdP signs with the key the
	// connection trusts).
	rp := newRPClient(t, c.lb, "App", nil)
	for range len(nodes) {
		if tok := rp.login("alice@example.com"); claim(t, tok.IDToken, "connection_id") != conns.Data[0].ID {
			t.Errorf("signed in through %s, want %s", claim(t, tok.IDToken, "connection_id"), conns.Data[0].ID)
		}
	}
}
