package saml

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// idpServer runs crewjam/saml's IdentityProvider over HTTP: the real IdP
// code, in process. It logs in whoever user says, and learns SP metadata
// from the broker's metadata URL, as a real IdP admin would paste it.
type idpServer struct {
	*testIdP
	srv  *httptest.Server
	idp  *saml.IdentityProvider
	user string
	// attrs, when set, are the attributes the IdP sends in place of
	// its default groups.
	attrs []saml.Attribute
	// relayState, when set, is what the IdP posts back as the
	// RelayState it was sent (drop: none at all), as IdPs that lose or
	// replace it do.
	relayState func(sent string) (back string, drop bool)
	// posted is the last form samlLogin posted to the ACS, for a test
	// to post it again as a browser's back button or a replay would.
	posted url.Values
}

func newIdPServer(t *testing.T, keyIndex int) *idpServer {
	s := &idpServer{testIdP: newTestIdP(t, keyIndex), user: "alice"}
	mux := http.NewServeMux()
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	md, _ := url.Parse(s.srv.URL + "/metadata")
	sso, _ := url.Parse(s.srv.URL + "/sso")
	s.entityID, s.ssoURL = md.String(), sso.String()
	s.idp = &saml.IdentityProvider{
		Key: s.key, Signer: s.key, Certificate: s.cert, MetadataURL: *md, SSOURL: *sso,
		SessionProvider:         s,
		ServiceProviderProvider: s,
	}
	mux.HandleFunc("/metadata", s.idp.ServeMetadata)
	mux.HandleFunc("/sso", s.idp.ServeSSO)
	return s
}

func (s *idpServer) GetSession(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest) *saml.Session {
	attrs := []saml.Attribute{{Name: "groups", Values: []saml.AttributeValue{{Type: "xs:string", Value: "Everyone"}}}}
	if s.attrs != nil {
		attrs = s.attrs
	}
	return &saml.Session{
		ID: "sess-" + s.user, CreateTime: time.Now(), ExpireTime: time.Now().Add(time.Hour), Index: "1",
		NameID: "00u-" + s.user, NameIDFormat: string(saml.PersistentNameIDFormat),
		UserEmail: s.user + "@example.com", UserGivenName: strings.ToUpper(s.user[:1]) + s.user[1:], UserSurname: "Example",
		CustomAttributes: attrs,
	}
}

func (s *idpServer) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	// The SP entity id is {issuer}/sso/saml/{conn}; its metadata is beside.
	resp, err := http.Get(id + "/metadata")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, os.ErrNotExist
	}
	b, _ := io.ReadAll(resp.Body)
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(b, &ed); err != nil {
		return nil, err
	}
	return &ed, nil
}

var formField = regexp.MustCompile(`name="(\w+)" value="([^"]*)"`)
var formAction = regexp.MustCompile(`action="([^"]+)"`)

// browser follows a login like a browser would: Begin's redirect (or
// form) to the IdP, the IdP's auto-submitting form to the ACS.
func samlLogin(t *testing.T, e *env, idp *idpServer, conn store.Connection, brokerReq string) *http.Response {
	t.Helper()
	ctx := store.WithTenant(context.Background(), conn.TenantID)
	cn, err := e.Reg.Connector(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := cn.Begin(ctx, rec, httptest.NewRequest("GET", "/authorize", nil), connections.LoginRequest{RequestID: brokerReq, LoginHint: idp.user + "@example.com"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := DecodeConfig(conn.Config)
	if err != nil {
		t.Fatal(err)
	}
	// AuthnRequests are signed only when the IdP's metadata or the tenant
	// asks; the assertion is encrypted only when the connection offers
	// its encryption key.
	wantSigned, wantEncrypted := cfg.SignsRequests(), cfg.EncryptAssertions
	// The binding is the IdP's, not whichever the IdP below would take:
	// an IdP with only an HTTP-Redirect endpoint cannot read a POST.
	wantCode := http.StatusFound
	if cfg.IdPSSOBinding == BindingPost {
		wantCode = http.StatusOK
	}
	if rec.Code != wantCode {
		t.Fatalf("Begin answered %d for IdP binding %q, want %d", rec.Code, cfg.IdPSSOBinding, wantCode)
	}
	var idpResp *http.Response
	switch rec.Code {
	case http.StatusFound: // HTTP-Redirect binding
		loc := rec.Header().Get("Location")
		signed := strings.Contains(loc, "Signature=") && strings.Contains(loc, "SigAlg=")
		if !strings.HasPrefix(loc, idp.srv.URL+"/sso?") || signed != wantSigned {
			t.Fatalf("redirect to %q: want an HTTP-Redirect AuthnRequest, signed: %v", loc, wantSigned)
		}
		idpResp, err = http.Get(loc)
	case http.StatusOK: // HTTP-POST binding
		form := url.Values{}
		for _, m := range formField.FindAllStringSubmatch(rec.Body.String(), -1) {
			form.Set(m[1], htmlUnescape(m[2]))
		}
		req, _ := base64.StdEncoding.DecodeString(form.Get("SAMLRequest"))
		if signed := strings.Contains(string(req), "SignatureValue"); signed != wantSigned {
			t.Fatalf("POST AuthnRequest signed %v, want %v:\n%.400s", signed, wantSigned, req)
		}
		idpResp, err = http.PostForm(idp.srv.URL+"/sso", form)
	default:
		t.Fatalf("Begin answered %d", rec.Code)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(idpResp.Body)
	idpResp.Body.Close()
	if idpResp.StatusCode != 200 {
		t.Fatalf("IdP answered %d: %s", idpResp.StatusCode, body)
	}
	form := url.Values{}
	for _, m := range formField.FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	action := formAction.FindStringSubmatch(string(body))
	if action == nil || form.Get("SAMLResponse") == "" {
		t.Fatalf("IdP page has no SAMLResponse form: %s", body)
	}
	if want := acsURL(e.Issuer, conn.ID); htmlUnescape(action[1]) != want {
		t.Fatalf("IdP posts to %q, want %q", action[1], want)
	}
	// The IdP read our SP metadata: with the encryption key offered, the
	// assertion travels encrypted to the connection's own SP key.
	if xmlResp, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse")); err != nil ||
		strings.Contains(string(xmlResp), "EncryptedAssertion") != wantEncrypted || strings.Contains(string(xmlResp), "00u-"+idp.user) == wantEncrypted {
		t.Fatalf("IdP response encrypted: want %v (%v):\n%.400s", wantEncrypted, err, xmlResp)
	}
	if idp.relayState != nil {
		if back, drop := idp.relayState(form.Get("RelayState")); drop {
			form.Del("RelayState")
		} else {
			form.Set("RelayState", back)
		}
	}
	idp.posted = form
	resp, err := http.PostForm(htmlUnescape(action[1]), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&#x2B;", "+", "&amp;", "&", "&#61;", "=", "&#x3D;", "=", "&#47;", "/", "&#34;", `"`, "&quot;", `"`).Replace(s)
}

func TestSAMLEndToEnd(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			idp := newIdPServer(t, 0)
			for _, tc := range []struct {
				binding   string
				signCrypt bool
			}{{BindingRedirect, false}, {BindingPost, false}, {BindingRedirect, true}, {BindingPost, true}} {
				binding := tc.binding
				t.Run(fmt.Sprintf("%s/sign+encrypt=%v", binding, tc.signCrypt), func(t *testing.T) {
					// The IdP is configured from its metadata URL, fetched
					// through the safe client.
					conn, err := e.Reg.CreateConnection(e.Ctx, Name, "IdP "+binding, Settings{IdPMetadataURL: ptr(idp.srv.URL + "/metadata"),
						SignAuthnRequests: ptr(tc.signCrypt), EncryptAssertions: ptr(tc.signCrypt)}.Request(), nil)
					if err != nil {
						t.Fatal(err)
					}
					if conn.Status != store.ConnectionActive {
						t.Fatalf("status = %s, want active", conn.Status)
					}
					if binding == BindingPost {
						conn, err = e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Settings: Settings{
							IdPEntityID: ptr(idp.entityID), IdPSSOURL: ptr(idp.ssoURL), IdPSSOBinding: ptr(BindingPost),
							IdPCertificatesPEM: &PEMList{certPEM(idp.cert)}}.Request()}, nil)
						if err != nil {
							t.Fatal(err)
						}
					}
					resp := samlLogin(t, e, idp, conn, "authreq-"+binding)
					c := e.Last()
					if c.Err != nil || resp.StatusCode != 200 {
						t.Fatalf("login failed: %d %v", resp.StatusCode, c.Err)
					}
					p := c.Res.Profile
					if c.Res.RequestID != "authreq-"+binding || p.Email != "alice@example.com" || p.IdPSubject != "00u-alice" ||
						p.GivenName != "Alice" || p.FamilyName != "Example" || len(p.Groups) != 1 || p.TenantID != e.Tenant ||
						p.ConnectionID != conn.ID || p.ConnectionType != Name || c.Conn.ID != conn.ID {
						t.Fatalf("result = %+v", c.Res)
					}
				})
			}
		})
	}
}

// TestSAMLGroupsOverageEndToEnd: crewjam's IdP, answering as Entra ID
// does for a user in too many groups (the groups.link attribute, no
// groups), through the real SP-initiated round trip: the profile says
// the groups were left out.
func TestSAMLGroupsOverageEndToEnd(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newIdPServer(t, 0)
	idp.attrs = []saml.Attribute{{Name: "http://schemas.microsoft.com/claims/groups.link",
		Values: []saml.AttributeValue{{Type: "xs:string", Value: "https://graph.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/users/0b7a/getMemberObjects"}}}}
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Entra", Settings{IdPMetadataURL: ptr(idp.srv.URL + "/metadata")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := samlLogin(t, e, idp, conn, "authreq-overage")
	c := e.Last()
	if c.Err != nil || resp.StatusCode != 200 {
		t.Fatalf("login failed: %d %v", resp.StatusCode, c.Err)
	}
	if p := c.Res.Profile; !p.GroupsOverage || len(p.Groups) != 0 || p.Email != "alice@example.com" {
		t.Fatalf("profile %+v", p)
	}
}

func TestSAMLMetadataEndpoint(t *testing.T) {
	e := newEnv(t, envOpts{})
	// A draft connection (no IdP yet) already publishes SP metadata.
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Draft", connections.Settings{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Status != store.ConnectionDraft {
		t.Fatalf("status = %s", conn.Status)
	}
	resp, err := http.Get(e.Srv.URL + "/sso/saml/" + conn.ID + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ed saml.EntityDescriptor
	if resp.StatusCode != 200 || xml.Unmarshal(b, &ed) != nil {
		t.Fatalf("metadata: %d %s", resp.StatusCode, b)
	}
	sp := ed.SPSSODescriptors[0]
	if ed.EntityID != spEntityID(e.Issuer, conn.ID) || len(sp.AssertionConsumerServices) != 1 ||
		sp.AssertionConsumerServices[0].Binding != saml.HTTPPostBinding || sp.AssertionConsumerServices[0].Location != acsURL(e.Issuer, conn.ID) ||
		*sp.AuthnRequestsSigned || !*sp.WantAssertionsSigned || len(sp.KeyDescriptors) != 1 || sp.KeyDescriptors[0].Use != "signing" ||
		sp.NameIDFormats[0] != saml.PersistentNameIDFormat || strings.Contains(string(b), "Artifact") {
		t.Fatalf("metadata not as expected:\n%s", b)
	}
	// A tenant that opts in signs AuthnRequests and offers encryption;
	// an IdP whose metadata says WantAuthnRequestsSigned gets signed ones.
	spMeta := func(c store.Connection) saml.SPSSODescriptor {
		t.Helper()
		resp, err := http.Get(e.Srv.URL + "/sso/saml/" + c.ID + "/metadata")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ed saml.EntityDescriptor
		if err := xml.NewDecoder(resp.Body).Decode(&ed); err != nil {
			t.Fatal(err)
		}
		return ed.SPSSODescriptors[0]
	}
	opted, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Settings: Settings{
		SignAuthnRequests: ptr(true), EncryptAssertions: ptr(true)}.Request()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	uses := func(sp saml.SPSSODescriptor) string {
		var u []string
		for _, kd := range sp.KeyDescriptors {
			u = append(u, kd.Use)
		}
		sort.Strings(u)
		return strings.Join(u, ",")
	}
	if sp := spMeta(opted); !*sp.AuthnRequestsSigned || uses(sp) != "encryption,signing" {
		t.Fatalf("opted in: AuthnRequestsSigned %v, keys %q", *sp.AuthnRequestsSigned, uses(sp))
	}
	idp := newTestIdP(t, 0)
	md := strings.Replace(metadataXML("https://idp.example/wants", "https://idp.example/sso", idp.cert),
		`<md:IDPSSODescriptor `, `<md:IDPSSODescriptor WantAuthnRequestsSigned="true" `, 1)
	wants, err := e.Reg.CreateConnection(e.Ctx, Name, "Wants signed", Settings{IdPMetadataXML: &md}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sp := spMeta(wants); !*sp.AuthnRequestsSigned || uses(sp) != "signing" {
		t.Fatalf("IdP wants signed requests: AuthnRequestsSigned %v, keys %q", *sp.AuthnRequestsSigned, uses(sp))
	}
	for _, path := range []string{"/sso/saml/conn_nope/metadata", "/sso/saml/not-an-id/metadata"} {
		resp, _ := http.Get(e.Srv.URL + path)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("%s = %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestACSUnknownInactiveAndCrossTenant(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	conn := e.samlConn(idp, nil)
	raw := idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: "id-1", issuedAt: e.Clock.Now()})

	// Unknown connection: CompleteFunc gets connections.ErrNotFound, never a 500.
	resp := e.postACS(store.Connection{ID: "conn_unknown"}, raw, "x")
	if c := e.Last(); resp.StatusCode != 400 || !errorsIs(c.Err, connections.ErrNotFound) {
		t.Fatalf("unknown: %d %v", resp.StatusCode, c.Err)
	}
	// Malformed input: 4xx through CompleteFunc, each reported as such.
	for _, body := range []string{"SAMLResponse=%%%", "SAMLResponse=bm90IHhtbA==&RelayState=" + e.pend(conn, "id-1", "b"),
		"RelayState=x", strings.Repeat("a", MaxACSBodyBytes+10)} {
		var r *http.Response
		c := e.Completion(func() {
			var err error
			r, err = http.Post(e.Srv.URL+"/sso/saml/"+conn.ID+"/acs", "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
		})
		if r.StatusCode != 400 || !errorsIs(c.Err, connections.ErrMalformed) {
			t.Fatalf("malformed %.20q: %d %v", body, r.StatusCode, c.Err)
		}
	}
	// Another tenant's connection, same IdP: its ACS refuses an assertion
	// addressed to conn (audience), and conn's RelayState does not open it.
	other := e.NewTenant("Globex", "globex.example")
	octx := store.WithTenant(context.Background(), other)
	connB, err := e.Reg.CreateConnection(octx, Name, "Globex IdP", Settings{
		IdPEntityID: ptr(idp.entityID), IdPSSOURL: ptr(idp.ssoURL), IdPCertificatesPEM: &PEMList{certPEM(idp.cert)}}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	relay := e.pend(conn, "id-1", "b")
	resp = e.postACS(connB, raw, relay)
	if c := e.Last(); resp.StatusCode != 400 || !errorsIs(c.Err, connections.ErrRequestMismatch) {
		t.Fatalf("cross-connection RelayState: %d %v", resp.StatusCode, c.Err)
	}
	rawB := idp.response(t, e.Issuer, connB, respOpts{signAssertion: true, inResponseTo: "id-2", issuedAt: e.Clock.Now()})
	resp = e.postACS(conn, rawB, e.pend(conn, "id-2", "b"))
	if c := e.Last(); resp.StatusCode != 400 || !(errorsIs(c.Err, connections.ErrAudienceMismatch) || errorsIs(c.Err, connections.ErrDestinationMismatch)) {
		t.Fatalf("cross-tenant audience: %d %v", resp.StatusCode, c.Err)
	}
	// Tenant B's context cannot read, change or delete tenant A's connection.
	if _, err := e.DB.Connection(octx, conn.ID); !errorsIs(err, store.ErrNotFound) {
		t.Fatalf("cross-tenant read: %v", err)
	}
	if _, err := e.Reg.UpdateConnection(octx, conn.ID, connections.Update{Name: ptr("pwned")}, nil); !errorsIs(err, connections.ErrNotFound) {
		t.Fatalf("cross-tenant update: %v", err)
	}
	if err := e.Reg.DeleteConnection(octx, conn.ID, 0, nil); !errorsIs(err, connections.ErrNotFound) {
		t.Fatalf("cross-tenant delete: %v", err)
	}

	// Inactive: refused with connections.ErrConnectionInactive.
	if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Status: ptr(store.ConnectionInactive)}, nil); err != nil {
		t.Fatal(err)
	}
	resp = e.postACS(conn, raw, e.pend(conn, "id-1", "b"))
	if c := e.Last(); resp.StatusCode != 400 || !errorsIs(c.Err, connections.ErrConnectionInactive) {
		t.Fatalf("inactive: %d %v", resp.StatusCode, c.Err)
	}
}
