package devmode

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
)

// DevUsers are the people the dev IdP knows. There is no password: this
// IdP exists to show the flow, and is only mounted with --dev.
var DevUsers = []DevUser{
	{Login: "alice", Email: "alice@example.com", Given: "Alice", Family: "Anderson", Groups: []string{"Engineering", "Admins"}},
	{Login: "bob", Email: "bob@example.com", Given: "Bob", Family: "Brown", Groups: []string{"Sales"}},
}

// DevUser is one account of the dev IdP.
type DevUser struct {
	Login, Email, Given, Family string
	Groups                      []string
}

const idpUserCookie = "idb_dev_idp_user"

// testIdP is crewjam/saml's IdentityProvider with a click-a-name login.
type testIdP struct {
	dev *Dev
	idp *saml.IdentityProvider

	// spMu guards sps: each connection's SP metadata as last served and
	// its parsed form, so that a login parses it again only when it
	// changed (a rotated certificate, encryption switched on or off).
	spMu sync.Mutex
	sps  map[string]parsedSP
}

type parsedSP struct {
	raw []byte
	ed  *saml.EntityDescriptor
}

func newTestIdP(d *Dev, key *rsa.PrivateKey, cert *x509.Certificate) *testIdP {
	md, _ := url.Parse(d.Issuer + "/dev/idp/metadata")
	sso, _ := url.Parse(d.Issuer + "/dev/idp/sso")
	t := &testIdP{dev: d}
	t.idp = &saml.IdentityProvider{
		Key: key, Signer: key, Certificate: cert, MetadataURL: *md, SSOURL: *sso,
		SessionProvider: t, ServiceProviderProvider: t,
		ResponseWriter: assertionSignedOnly{},
		// crewjam's default error handler writes to a Logger that is nil
		// unless set: a request it cannot read (no SAMLRequest) panicked.
		OnError: idpError,
	}
	return t
}

// idpError answers a request the dev IdP cannot serve with its status and
// what was wrong: the dev IdP is a test tool, its errors are for the
// developer reading them.
func idpError(w http.ResponseWriter, _ *http.Request, status int, err error) {
	http.Error(w, fmt.Sprintf("dev IdP: %s: %v", http.StatusText(status), err), status)
}

// assertionSignedOnly writes the response the way Entra ID and Okta do by
// default: the assertion is signed (and encrypted when the SP asks), the
// Response around it is not. crewjam's own writer signs both, an RSA
// private-key operation more per login than the IdPs the broker meets,
// which made every measured login pay for a signature no SP needs (the SP
// requires a signature on the assertion or on the response holding it).
type assertionSignedOnly struct{}

func (assertionSignedOnly) WriteResponse(w http.ResponseWriter, req *saml.IdpAuthnRequest) error {
	if req.ACSEndpoint == nil || req.ACSEndpoint.Binding != saml.HTTPPostBinding {
		// No ACS, or another binding: crewjam's writer says why.
		return req.WriteResponse(w)
	}
	if req.AssertionEl == nil {
		if err := req.MakeAssertionEl(); err != nil { // signs the assertion
			return err
		}
	}
	id := make([]byte, 20)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	response := &saml.Response{
		Destination:  req.ACSEndpoint.Location,
		ID:           fmt.Sprintf("id-%x", id),
		InResponseTo: req.Request.ID,
		IssueInstant: req.Now,
		Version:      "2.0",
		Issuer: &saml.Issuer{
			Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity",
			Value:  req.IDP.MetadataURL.String(),
		},
		Status: saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
	}
	el := response.Element()
	el.AddChild(req.AssertionEl)
	req.ResponseEl = el // set, so WriteResponse posts it as it is
	return req.WriteResponse(w)
}

// GetSession implements saml.SessionProvider: the user chosen on the login
// page (remembered in a cookie), or the login page itself.
func (t *testIdP) GetSession(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest) *saml.Session {
	// ForceAuthn (the portal's test logins ask for it) is met by the
	// login page just submitted, which comes back marked fresh.
	forced := req.Request.ForceAuthn != nil && *req.Request.ForceAuthn
	if c, err := r.Cookie(idpUserCookie); err == nil && (!forced || r.URL.Query().Get("fresh") == "1") {
		for _, u := range DevUsers {
			if u.Login == c.Value {
				return sessionFor(u)
			}
		}
	}
	t.dev.render(w, http.StatusOK, "idp_login.html", map[string]any{"Users": DevUsers, "Return": r.URL.RequestURI()})
	return nil
}

func sessionFor(u DevUser) *saml.Session {
	now := time.Now()
	var groups []saml.AttributeValue
	for _, g := range u.Groups {
		groups = append(groups, saml.AttributeValue{Type: "xs:string", Value: g})
	}
	return &saml.Session{
		ID: "dev-" + u.Login, CreateTime: now, ExpireTime: now.Add(8 * time.Hour), Index: u.Login,
		NameID: "dev|" + u.Login, NameIDFormat: string(saml.PersistentNameIDFormat),
		UserName: u.Login, UserEmail: u.Email, UserGivenName: u.Given, UserSurname: u.Family,
		UserCommonName:   u.Given + " " + u.Family,
		CustomAttributes: []saml.Attribute{{Name: "groups", Values: groups}},
	}
}

// GetServiceProvider implements saml.ServiceProviderProvider for the
// broker's own SAML connections: their metadata, straight from the
// registry.
func (t *testIdP) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	connID, ok := strings.CutPrefix(id, t.dev.Issuer+"/sso/saml/")
	if !ok {
		return nil, os.ErrNotExist
	}
	rec := httptest.NewRecorder()
	if err := t.dev.reg.ServeRoute(r.Context(), rec, r, connID, "metadata"); err != nil || rec.Code != http.StatusOK {
		return nil, os.ErrNotExist
	}
	raw := rec.Body.Bytes()
	t.spMu.Lock()
	c, ok := t.sps[connID]
	t.spMu.Unlock()
	if ok && bytes.Equal(c.raw, raw) {
		// crewjam only reads the descriptor, so logins may share it.
		return c.ed, nil
	}
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(raw, &ed); err != nil {
		return nil, err
	}
	t.spMu.Lock()
	if t.sps == nil || len(t.sps) >= 1000 {
		// Dev mode has a handful of connections; the bound only keeps a
		// long-running dev server from growing without end.
		t.sps = map[string]parsedSP{}
	}
	t.sps[connID] = parsedSP{raw: raw, ed: &ed}
	t.spMu.Unlock()
	return &ed, nil
}

// login remembers the chosen user and goes back to the SSO request.
func (t *testIdP) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	user, ret := r.PostForm.Get("user"), r.PostForm.Get("return")
	known := false
	for _, u := range DevUsers {
		known = known || u.Login == user
	}
	// Only back into our own SSO endpoint: no open redirect, even in dev.
	if !known || !strings.HasPrefix(ret, "/dev/idp/sso?") {
		http.Error(w, "unknown user or return URL", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: idpUserCookie, Value: user, Path: "/dev/idp", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, ret+"&fresh=1", http.StatusSeeOther)
}

func (t *testIdP) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: idpUserCookie, Path: "/dev/idp", MaxAge: -1})
	http.Redirect(w, r, "/dev/app", http.StatusSeeOther)
}
