package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	dsig "github.com/russellhaering/goxmldsig"
)

// This file is the outside-in harness of contract section 2: the real
// binary, configured through /api/v1, signing users in through IdPs the
// test runs and shapes like a tenant's (Okta, Entra ID, Google Workspace,
// ADFS, any SAML 2.0 or OpenID Provider), with a browser that follows what
// the broker and the IdP send it.

// upstream is a broker with one tenant (a verified domain) and one
// confidential application to sign in to.
type upstream struct {
	t        *testing.T
	b        *node
	tenantID string
	domain   string
	clientID string
	secret   string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	return newUpstreamEnv(t, map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
	})
}

// newUpstreamEnv is newUpstream with the broker's environment (another
// database).
func newUpstreamEnv(t *testing.T, env map[string]string) *upstream {
	t.Helper()
	env[envBootstrapAPIKey] = e2eBootstrapKey
	b := startBroker(t, env, "--dev")
	u := &upstream{t: t, b: b, domain: "corp-" + randomHex(t, 4) + ".example"}
	var tn struct{ ID string }
	if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Corp",
		"domains": []map[string]any{{"domain": u.domain, "verified": true}}}, &tn); code != http.StatusCreated {
		t.Fatalf("create tenant: %d", code)
	}
	u.tenantID = tn.ID
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "App",
		"redirect_uris": []string{"https://app.example/cb"}}, &app); code != http.StatusCreated {
		t.Fatalf("create application: %d", code)
	}
	u.clientID, u.secret = app.ClientID, app.ClientSecret
	return u
}

// with is u for subtest t: failures are t's.
func (u *upstream) with(t *testing.T) *upstream {
	c := *u
	c.t = t
	b := *u.b
	b.t = t
	c.b = &b
	return &c
}

// connection creates a connection of the tenant and returns its answer
// (status 201 expected).
func (u *upstream) connection(body map[string]any) map[string]any {
	u.t.Helper()
	var out map[string]any
	if code := u.b.do("POST", "/api/v1/tenants/"+u.tenantID+"/connections", e2eBootstrapKey, body, &out); code != http.StatusCreated {
		u.t.Fatalf("create connection %v: %d %v", body, code, out)
	}
	return out
}

// signInResult is where a sign-in ended: the application's code, or the
// page the broker answered with.
type signInResult struct {
	code   string
	status int
	page   string
	// retryAfter is the last answer's Retry-After.
	retryAfter string
	// acs is the IdP's last POST to the broker (to replay it).
	acs     string
	acsForm url.Values
}

// signIn runs a browser through /authorize?connection=connID, the IdP
// and back, up to the application's code or the broker's page.
func (u *upstream) signIn(connID string, extra url.Values) signInResult {
	u.t.Helper()
	jar, _ := cookiejar.New(nil)
	var res signInResult
	br := &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "app.example" {
			res.code = r.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	q := url.Values{"client_id": {u.clientID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
		"scope": {"openid email profile groups"}, "state": {"st8"}, "nonce": {"n0nce"}, "connection": {connID}}
	for k, vs := range extra {
		q[k] = vs
	}
	resp, err := br.Get(u.b.base + "/authorize?" + q.Encode())
	for step := 0; ; step++ {
		if err != nil {
			u.t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res.status, res.page, res.retryAfter = resp.StatusCode, string(raw), resp.Header.Get("Retry-After")
		if res.code != "" || step == 4 || !strings.Contains(res.page, "SAMLResponse") {
			return res
		}
		form := url.Values{}
		for _, m := range regexp.MustCompile(`name="(\w+)" value="([^"]*)"`).FindAllStringSubmatch(res.page, -1) {
			form.Set(m[1], html.UnescapeString(m[2]))
		}
		a := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(res.page)
		res.acs, res.acsForm = html.UnescapeString(a[1]), form
		resp, err = br.PostForm(res.acs, form)
	}
}

// post sends the form to the ACS as a fresh browser would.
func (u *upstream) post(acs string, form url.Values) signInResult {
	u.t.Helper()
	var res signInResult
	br := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "app.example" {
			res.code = r.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := br.PostForm(acs, form)
	if err != nil {
		u.t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.status, res.page, res.retryAfter = resp.StatusCode, string(raw), resp.Header.Get("Retry-After")
	return res
}

// claims exchanges code and returns the id_token's claims.
func (u *upstream) claims(code string) map[string]any {
	u.t.Helper()
	rp := &rpClient{t: u.t, node: u.b, clientID: u.clientID, secret: u.secret}
	var tk tokens
	status, raw := rp.post(u.b, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}}, &tk)
	if status != http.StatusOK {
		u.t.Fatalf("code exchange: %d %s", status, raw)
	}
	parts := strings.Split(tk.IDToken, ".")
	if len(parts) != 3 {
		u.t.Fatalf("id_token %q", tk.IDToken)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		u.t.Fatal(err)
	}
	return c
}

// mustSignIn signs in through connID and returns the id_token's claims.
func (u *upstream) mustSignIn(connID string) map[string]any {
	u.t.Helper()
	res := u.signIn(connID, nil)
	if res.code == "" {
		u.t.Fatalf("no code: %d, last failure %v\n%s", res.status, u.lastFailure(), res.page)
	}
	return u.claims(res.code)
}

// lastFailure is the data of the tenant's newest authentication.failed
// event, nil when there is none.
func (u *upstream) lastFailure() map[string]any {
	u.t.Helper()
	var evs struct {
		Data []struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	if code := u.b.do("GET", "/api/v1/events?tenant_id="+u.tenantID+"&limit=100", e2eBootstrapKey, nil, &evs); code != http.StatusOK {
		u.t.Fatalf("events: %d", code)
	}
	var last map[string]any
	for _, e := range evs.Data {
		if e.Type == "authentication.failed" {
			last = e.Data
		}
	}
	return last
}

// failure signs in through connID, expects the generic failure page, and
// returns the reason_code and reason the tenant admin is told.
func (u *upstream) failure(connID string) (code, reason string) {
	u.t.Helper()
	before := u.lastFailure()
	res := u.signIn(connID, nil)
	if res.code != "" {
		u.t.Fatalf("signed in; want a refusal")
	}
	f := u.lastFailure()
	if f == nil || fmt.Sprint(f) == fmt.Sprint(before) {
		u.t.Fatalf("no new authentication.failed (page %d):\n%s", res.status, res.page)
	}
	c, _ := f["reason_code"].(string)
	r, _ := f["reason"].(string)
	return c, r
}

// ---- a SAML IdP shaped like a vendor's ----

// vendorIdP is crewjam/saml's IdentityProvider answering the broker's
// AuthnRequests with what a vendor's IdP sends: its NameID format, its
// attribute names, its choice of what to sign.
type vendorIdP struct {
	t    *testing.T
	idp  *saml.IdentityProvider
	srv  *httptest.Server
	key  *rsa.PrivateKey
	cert *x509.Certificate

	mu sync.Mutex
	// signResponse and signAssertion say what the IdP signs.
	signResponse, signAssertion bool
	nameID, nameIDFormat        string
	attrs                       []saml.Attribute
	// mutate edits the assertion before it is signed.
	mutate func(req *saml.IdpAuthnRequest, a *saml.Assertion)
	// status, when set, makes the IdP answer with this error status and
	// no assertion, unsigned, as IdPs report a sign-in they refused.
	status *saml.Status
	// mutateResp edits the response before it is signed.
	mutateResp func(r *saml.Response)
	// encrypt encrypts the assertion to the SP's encryption certificate,
	// when its metadata publishes one.
	encrypt bool
	// metadata, when set, replaces the metadata the IdP serves.
	metadata func() []byte
	// signer signs instead of the IdP's own key (a rolled key).
	signer     *rsa.PrivateKey
	signerCert *x509.Certificate
	// relayState, when set, is the RelayState the IdP posts back in
	// place of the one it was sent, as IdPs that drop or replace it do.
	relayState func(sent string) string
	// sigMethod, when set, is the signature algorithm (default RSA-SHA256).
	sigMethod string
	// encryptTo, when set, is the certificate the assertion is encrypted
	// to in place of the SP's (an IdP holding another SP's key).
	encryptTo *x509.Certificate
}

func newCert(t *testing.T, key *rsa.PrivateKey, cn string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newVendorIdP(t *testing.T) *vendorIdP {
	t.Helper()
	v := &vendorIdP{t: t, key: newRSAKey(t), signAssertion: true, signResponse: true,
		nameIDFormat: string(saml.PersistentNameIDFormat), nameID: "00u1abcd"}
	v.cert = newCert(t, v.key, "vendor idp", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	mux := http.NewServeMux()
	v.srv = httptest.NewServer(mux)
	t.Cleanup(v.srv.Close)
	md, _ := url.Parse(v.srv.URL + "/metadata")
	sso, _ := url.Parse(v.srv.URL + "/sso")
	v.idp = &saml.IdentityProvider{Key: v.key, Signer: v.key, Certificate: v.cert, MetadataURL: *md, SSOURL: *sso,
		ServiceProviderProvider: v}
	mux.HandleFunc("/sso", v.serveSSO)
	mux.HandleFunc("/metadata", func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		f := v.metadata
		v.mu.Unlock()
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		if f != nil {
			w.Write(f())
			return
		}
		w.Write(v.metadataXML())
	})
	return v
}

func (v *vendorIdP) metadataXML() []byte {
	b, err := xml.Marshal(v.idp.Metadata())
	if err != nil {
		v.t.Fatal(err)
	}
	return b
}

func (v *vendorIdP) set(fn func(v *vendorIdP)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	fn(v)
}

// GetServiceProvider reads the SP metadata the broker publishes beside its
// entity id, as an IdP admin imports it.
func (v *vendorIdP) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	resp, err := http.Get(id + "/metadata")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ed saml.EntityDescriptor
	return &ed, xml.Unmarshal(b, &ed)
}

func (v *vendorIdP) serveSSO(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	req, err := saml.NewIdpAuthnRequest(v.idp, r)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sess := &saml.Session{ID: "s1", CreateTime: time.Now(), ExpireTime: time.Now().Add(time.Hour), Index: "1",
		NameID: v.nameID, NameIDFormat: v.nameIDFormat}
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Assertion.AttributeStatements = []saml.AttributeStatement{{Attributes: v.attrs}}
	if v.mutate != nil {
		v.mutate(req, req.Assertion)
	}
	key, cert := v.key, v.cert
	if v.signer != nil {
		key, cert = v.signer, v.signerCert
	}
	ks := dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key})
	sc := dsig.NewDefaultSigningContext(ks)
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	method := dsig.RSASHA256SignatureMethod
	if v.sigMethod != "" {
		method = v.sigMethod
	}
	if err := sc.SetSignatureMethod(method); err != nil {
		v.t.Error(err)
	}
	assertionEl := req.Assertion.Element()
	if v.signAssertion {
		signed, err := sc.SignEnveloped(assertionEl)
		if err != nil {
			v.t.Error(err)
		}
		req.Assertion.Signature = signed.ChildElements()[len(signed.ChildElements())-1]
		assertionEl = req.Assertion.Element()
	}
	if v.encrypt {
		for _, kd := range req.SPSSODescriptor.KeyDescriptors {
			if kd.Use != "encryption" {
				continue
			}
			der, _ := base64.StdEncoding.DecodeString(kd.KeyInfo.X509Data.X509Certificates[0].Data)
			spCert, err := x509.ParseCertificate(der)
			if err != nil {
				v.t.Error(err)
			}
			if v.encryptTo != nil {
				spCert = v.encryptTo
			}
			doc := etree.NewDocument()
			doc.SetRoot(assertionEl)
			plain, _ := doc.WriteToBytes()
			enc := xmlenc.OAEP()
			enc.BlockCipher = xmlenc.AES256GCM
			data, err := enc.Encrypt(spCert, plain, nil)
			if err != nil {
				v.t.Error(err)
			}
			data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
			assertionEl = etree.NewElement("saml:EncryptedAssertion")
			assertionEl.AddChild(data)
		}
	}
	resp := &saml.Response{Destination: req.ACSEndpoint.Location, ID: fmt.Sprintf("id-%d", time.Now().UnixNano()),
		InResponseTo: req.Request.ID, IssueInstant: time.Now(), Version: "2.0",
		Issuer: &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: v.idp.MetadataURL.String()},
		Status: saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}}}
	if v.mutateResp != nil {
		v.mutateResp(resp)
	}
	respEl := resp.Element()
	if v.status != nil {
		resp.Status = *v.status
		respEl = resp.Element()
	} else {
		respEl.AddChild(assertionEl)
	}
	if v.signResponse && v.status == nil {
		signed, err := sc.SignEnveloped(respEl)
		if err != nil {
			v.t.Error(err)
		}
		resp.Signature = signed.ChildElements()[len(signed.ChildElements())-1]
		respEl = resp.Element()
		respEl.AddChild(assertionEl)
	}
	doc := etree.NewDocument()
	doc.SetRoot(respEl)
	b, err := doc.WriteToBytes()
	if err != nil {
		v.t.Error(err)
	}
	relay := req.RelayState
	if v.relayState != nil {
		relay = v.relayState(relay)
	}
	w.Header().Set("Content-Type", "text/html")
	fmt.Fprintf(w, `<html><form method="post" action="%s"><input type="hidden" name="SAMLResponse" value="%s"><input type="hidden" name="RelayState" value="%s"></form></html>`,
		html.EscapeString(req.ACSEndpoint.Location), base64.StdEncoding.EncodeToString(b), html.EscapeString(relay))
}

// strAttr is a SAML attribute with string values.
func strAttr(name string, values ...string) saml.Attribute {
	a := saml.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"}
	for _, v := range values {
		a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
	}
	return a
}

// ---- an OpenID Provider shaped like a vendor's ----

// vendorOP is an OpenID Provider over go-jose: discovery, JWKS, an
// authorize endpoint that signs the user in at once, token and userinfo.
type vendorOP struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey
	kid    string
	issuer string

	mu sync.Mutex
	// discoveryIssuer, when set, is what discovery says the issuer is.
	discoveryIssuer string
	// authMethods is token_endpoint_auth_methods_supported; the token
	// endpoint accepts only these (default both).
	authMethods []string
	// algs is id_token_signing_alg_values_supported (default RS256).
	algs     []string
	claims   map[string]any
	userinfo map[string]any
	// sign, when set, serialises the id_token's claims instead of RS256.
	sign     func(claims map[string]any) string
	codes    map[string]string // code → nonce
	clientID string
	secret   string
	// tokenError, when set, is the OAuth error the token endpoint
	// answers a valid client with.
	tokenError string
	// lastAuthorize is the query of the last authorization request.
	lastAuthorize url.Values
	// issParam is discovery's authorization_response_iss_parameter_supported
	// (RFC 9207), left out when false.
	issParam bool
	// respIss, when set, is the iss the authorization response carries;
	// authorizeError, when set, makes it an error response.
	respIss        string
	authorizeError string
	// tokenContentType, when set, is the media type the token endpoint
	// labels its JSON answer with.
	tokenContentType string
	// sessionAuthTime, when set, is an IdP that answers from a session of
	// its own, begun then, whatever prompt says, and, as Google, puts
	// auth_time in the id_token only when the request carried max_age.
	sessionAuthTime time.Time
	maxAgeCodes     map[string]bool
	// tokenHold, when set, is called (without the lock) by every token
	// request before it is answered: an IdP slow to redeem a code.
	tokenHold func()
	// tokenStatus and jwksStatus, when set, are the status the token
	// endpoint and the JWKS answer with (an IdP that is down), the token
	// endpoint with OAuth's server_error.
	tokenStatus, jwksStatus int
}

func newVendorOP(t *testing.T, issuerPath string) *vendorOP {
	t.Helper()
	op := &vendorOP{t: t, key: newRSAKey(t), kid: "k1", codes: map[string]string{}, clientID: "client-1", secret: "s3cr3t+/=&",
		authMethods: []string{"client_secret_basic", "client_secret_post"}, claims: map[string]any{}}
	mux := http.NewServeMux()
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	op.issuer = op.srv.URL + issuerPath
	base := op.srv.URL + strings.TrimSuffix(issuerPath, "/")
	mux.HandleFunc(strings.TrimSuffix(issuerPath, "/")+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		defer op.mu.Unlock()
		iss := op.issuer
		algs := op.algs
		if algs == nil {
			algs = []string{"RS256"}
		}
		if op.discoveryIssuer != "" {
			iss = op.discoveryIssuer
		}
		doc := map[string]any{
			"issuer": iss, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
			"userinfo_endpoint": base + "/userinfo", "jwks_uri": base + "/jwks",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": algs, "code_challenge_methods_supported": []string{"S256"},
			"token_endpoint_auth_methods_supported": op.authMethods,
		}
		if op.issParam {
			doc["authorization_response_iss_parameter_supported"] = true
		}
		json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc(strings.TrimSuffix(issuerPath, "/")+"/jwks", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		defer op.mu.Unlock()
		if op.jwksStatus != 0 {
			http.Error(w, "down for maintenance", op.jwksStatus)
			return
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: op.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc(strings.TrimSuffix(issuerPath, "/")+"/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := randomHex(t, 16)
		op.mu.Lock()
		op.codes[code] = q.Get("nonce")
		if op.maxAgeCodes == nil {
			op.maxAgeCodes = map[string]bool{}
		}
		op.maxAgeCodes[code] = q.Has("max_age")
		op.lastAuthorize = q
		resp := url.Values{"code": {code}, "state": {q.Get("state")}}
		if op.authorizeError != "" {
			resp = url.Values{"error": {op.authorizeError}, "state": {q.Get("state")}}
		}
		if op.respIss != "" {
			resp.Set("iss", op.respIss)
		}
		op.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+resp.Encode(), http.StatusFound)
	})
	mux.HandleFunc(strings.TrimSuffix(issuerPath, "/")+"/token", op.serveToken)
	mux.HandleFunc(strings.TrimSuffix(issuerPath, "/")+"/userinfo", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		defer op.mu.Unlock()
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		info := map[string]any{"sub": op.claims["sub"]}
		for k, v := range op.userinfo {
			info[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(info)
	})
	return op
}

func (op *vendorOP) set(fn func(op *vendorOP)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	fn(op)
}

func (op *vendorOP) serveToken(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	hold := op.tokenHold
	op.mu.Unlock()
	if hold != nil {
		hold()
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	if op.tokenStatus != 0 {
		w.WriteHeader(op.tokenStatus)
		fmt.Fprint(w, `{"error":"server_error","error_description":"IDP-5001: the token service is down for maintenance"}`)
		return
	}
	refuse := func(e string) {
		if e == "invalid_client" {
			w.WriteHeader(http.StatusUnauthorized)
		} else {
			w.WriteHeader(http.StatusBadRequest)
		}
		fmt.Fprintf(w, `{"error":%q}`, e)
	}
	allowed := map[string]bool{}
	for _, m := range op.authMethods {
		allowed[m] = true
	}
	if len(op.authMethods) == 0 {
		// OpenID Connect Discovery: client_secret_basic when unsaid.
		allowed["client_secret_basic"] = true
	}
	id, sec, basic := r.BasicAuth()
	switch {
	case basic && allowed["client_secret_basic"]:
		id, _ = url.QueryUnescape(id)
		sec, _ = url.QueryUnescape(sec)
	case !basic && r.PostForm.Has("client_secret") && allowed["client_secret_post"]:
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		refuse("invalid_client")
		return
	}
	if id != op.clientID || sec != op.secret {
		refuse("invalid_client")
		return
	}
	if op.tokenError != "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":%q,"error_description":"AADSTS54005: OAuth2 Authorization code was already redeemed."}`, op.tokenError)
		return
	}
	nonce, ok := op.codes[r.PostForm.Get("code")]
	maxAge := op.maxAgeCodes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	if !ok || r.PostForm.Get("code_verifier") == "" {
		refuse("invalid_grant")
		return
	}
	now := time.Now()
	c := map[string]any{"iss": op.issuer, "aud": op.clientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": nonce}
	for k, v := range op.claims {
		c[k] = v
	}
	if !op.sessionAuthTime.IsZero() && maxAge {
		c["auth_time"] = op.sessionAuthTime.Unix()
	}
	for k, v := range c {
		if v == nil {
			delete(c, k)
		}
	}
	var idt string
	if op.sign != nil {
		idt = op.sign(c)
	} else {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: op.key, KeyID: op.kid}},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			op.t.Error(err)
		}
		idt, err = jwt.Signed(signer).Claims(c).Serialize()
		if err != nil {
			op.t.Error(err)
		}
	}
	if op.tokenContentType != "" {
		w.Header().Set("Content-Type", op.tokenContentType)
	}
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + randomHex(op.t, 8), "token_type": "Bearer", "expires_in": 300, "id_token": idt})
}

// oidcConnection creates an active OIDC connection to op.
func (u *upstream) oidcConnection(op *vendorOP, extra map[string]any) string {
	u.t.Helper()
	s := map[string]any{"issuer": op.issuer, "client_id": op.clientID, "client_secret": op.secret}
	for k, v := range extra {
		s[k] = v
	}
	out := u.connection(map[string]any{"type": "oidc", "name": "OIDC", "oidc": s})
	id, _ := out["id"].(string)
	if out["status"] != "active" {
		if code := u.b.do("PATCH", "/api/v1/connections/"+id, e2eBootstrapKey, map[string]any{"status": "active"}, &out); code != http.StatusOK {
			u.t.Fatalf("activate %s: %d %v", id, code, out)
		}
	}
	return id
}

// samlConnection creates a SAML connection to v from its metadata XML,
// with extra settings.
func (u *upstream) samlConnection(v *vendorIdP, extra map[string]any) string {
	u.t.Helper()
	s := map[string]any{"idp_metadata_xml": string(v.metadataXML())}
	for k, val := range extra {
		s[k] = val
	}
	if _, ok := s["idp_metadata_url"]; ok {
		delete(s, "idp_metadata_xml")
	}
	out := u.connection(map[string]any{"type": "saml", "name": "SAML", "saml": s})
	id, _ := out["id"].(string)
	if out["status"] != "active" {
		u.t.Fatalf("connection %s is %v", id, out["status"])
	}
	return id
}
