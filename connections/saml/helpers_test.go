package saml

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/connectionstest"
	"github.com/idbroker/idbroker/store"

	"github.com/idbroker/idbroker/connections/saml/samltest"
)

// env is connectionstest's environment serving the SAML type, with this
// package's helpers.
type env struct{ *connectionstest.Env }

type (
	envOpts    = connectionstest.Options
	completion = connectionstest.Completion
)

var backends = connectionstest.Backends

func newEnv(t *testing.T, o envOpts) *env { return newEnvWith(t, o) }

// newEnvTB is newEnv for a fuzz target (testing.F).
func newEnvTB(tb testing.TB) *env { return newEnvWith(tb, envOpts{}) }

func newEnvWith(tb testing.TB, o envOpts) *env {
	return &env{connectionstest.New(tb, connections.Types{Name: Type{NewKey: samltest.Keys()}}, o)}
}

// URLs of a connection (contract section 2), as the IdP side sees them.
func spEntityID(issuer, connID string) string    { return issuer + "/sso/saml/" + connID }
func acsURL(issuer, connID string) string        { return issuer + "/sso/saml/" + connID + "/acs" }
func spMetadataURL(issuer, connID string) string { return issuer + "/sso/saml/" + connID + "/metadata" }

// view is the saml part of conn's View.
func (e *env) view(conn store.Connection) *View {
	e.T.Helper()
	v, err := e.Reg.Describe(conn)
	if err != nil {
		e.T.Fatal(err)
	}
	return v.Details.(*View)
}

// testIdP is a SAML IdP key pair and identity, signing with real
// goxmldsig through crewjam's IdP code.
type testIdP struct {
	entityID string
	ssoURL   string
	key      *rsa.PrivateKey
	cert     *x509.Certificate
	// ecKey, when set, signs instead of key (cert is then its
	// certificate): Keycloak and Shibboleth can sign with ECDSA.
	ecKey *ecdsa.PrivateKey
}

var (
	keyOnce sync.Once
	keys    [3]*rsa.PrivateKey
)

// testKey returns one of a few RSA keys generated once per test binary.
func testKey(i int) *rsa.PrivateKey {
	keyOnce.Do(func() {
		for j := range keys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys[j] = k
		}
	})
	return keys[i]
}

func selfSigned(t testing.TB, key *rsa.PrivateKey, cn string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func newTestIdP(t testing.TB, keyIndex int) *testIdP {
	return &testIdP{
		entityID: "https://idp.example.net/metadata",
		ssoURL:   "https://idp.example.net/sso",
		key:      testKey(keyIndex),
		cert:     selfSigned(t, testKey(keyIndex), "idp.example.net", time.Now().AddDate(2, 0, 0)),
	}
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// samlConn creates an active SAML connection to idp in the env's tenant.
func (e *env) samlConn(idp *testIdP, mod func(*Settings)) store.Connection {
	e.T.Helper()
	s := &Settings{IdPEntityID: ptr(idp.entityID), IdPSSOURL: ptr(idp.ssoURL), IdPCertificatesPEM: &PEMList{certPEM(idp.cert)}}
	if mod != nil {
		mod(s)
	}
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Okta", s.Request(), nil)
	if err != nil {
		e.T.Fatal(err)
	}
	return conn
}

func ptr[T any](v T) *T { return &v }

// respOpts shapes a crafted SAML response.
type respOpts struct {
	signAssertion bool
	signResponse  bool
	signer        *testIdP // defaults to the idp itself
	sigMethod     string
	inResponseTo  string
	audience      string // default: the connection's SP entity id
	acs           string // Destination and Recipient, default the ACS
	nameID        string
	nameIDFormat  string
	email         string
	issuedAt      time.Time
	// encryptTo encrypts the (signed) assertion to this SP certificate,
	// as an IdP does when the SP metadata lists an encryption key.
	encryptTo *x509.Certificate
	// encrypter is the key transport and cipher, default rsa-oaep-mgf1p
	// with aes128-gcm.
	encrypter *xmlenc.RSA
	mutate    func(a *saml.Assertion)
	mutateXML func(doc *etree.Document)
}

// response builds a SAML Response with crewjam's IdP assertion maker and
// real XML signatures, then applies mutateXML to the signed document.
func (idp *testIdP) response(t testing.TB, issuer string, conn store.Connection, o respOpts) []byte {
	t.Helper()
	if o.signer == nil {
		o.signer = idp
	}
	if o.sigMethod == "" {
		o.sigMethod = dsig.RSASHA256SignatureMethod
	}
	if o.audience == "" {
		o.audience = spEntityID(issuer, conn.ID)
	}
	if o.acs == "" {
		o.acs = acsURL(issuer, conn.ID)
	}
	if o.nameID == "" {
		o.nameID = "00u1abcd"
	}
	if o.nameIDFormat == "" {
		o.nameIDFormat = string(saml.PersistentNameIDFormat)
	}
	if o.email == "" {
		o.email = "alice@example.com"
	}
	if o.issuedAt.IsZero() {
		o.issuedAt = time.Now()
	}
	md, _ := url.Parse(idp.entityID)
	ip := &saml.IdentityProvider{Key: idp.key, Certificate: idp.cert, MetadataURL: *md, Clock: dsig.NewFakeClockAt(o.issuedAt)}
	req := &saml.IdpAuthnRequest{
		IDP:                     ip,
		HTTPRequest:             httptest.NewRequest("POST", idp.ssoURL, nil),
		Request:                 saml.AuthnRequest{ID: o.inResponseTo, IssueInstant: o.issuedAt},
		ServiceProviderMetadata: &saml.EntityDescriptor{EntityID: o.audience},
		SPSSODescriptor:         &saml.SPSSODescriptor{},
		ACSEndpoint:             &saml.IndexedEndpoint{Binding: saml.HTTPPostBinding, Location: o.acs},
		Now:                     o.issuedAt,
	}
	sess := &saml.Session{ID: "s1", CreateTime: o.issuedAt, ExpireTime: o.issuedAt.Add(time.Hour), Index: "1",
		NameID: o.nameID, NameIDFormat: o.nameIDFormat, UserEmail: o.email, UserGivenName: "Alice", UserSurname: "Liddell",
		CustomAttributes: []saml.Attribute{{Name: "groups", Values: []saml.AttributeValue{{Type: "xs:string", Value: "Engineering"}, {Type: "xs:string", Value: "Admins"}}}}}
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
		t.Fatal(err)
	}
	if o.mutate != nil {
		o.mutate(req.Assertion)
	}
	sc := signingContext(t, o.signer, o.sigMethod)
	assertionEl := req.Assertion.Element()
	if o.signAssertion {
		signed, err := sc.SignEnveloped(assertionEl)
		if err != nil {
			t.Fatal(err)
		}
		req.Assertion.Signature = signed.ChildElements()[len(signed.ChildElements())-1]
		assertionEl = req.Assertion.Element()
	}
	if o.encryptTo != nil {
		doc := etree.NewDocument()
		doc.SetRoot(assertionEl)
		plain, err := doc.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		enc := xmlenc.OAEP()
		enc.BlockCipher = xmlenc.AES128GCM
		if o.encrypter != nil {
			enc = *o.encrypter
		}
		data, err := enc.Encrypt(o.encryptTo, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
		assertionEl = etree.NewElement("saml:EncryptedAssertion")
		assertionEl.AddChild(data)
	}
	resp := &saml.Response{
		Destination: o.acs, ID: "id-resp-" + randomToken()[:16], InResponseTo: o.inResponseTo,
		IssueInstant: o.issuedAt, Version: "2.0",
		Issuer: &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: idp.entityID},
		Status: saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
	}
	respEl := resp.Element()
	respEl.AddChild(assertionEl)
	if o.signResponse {
		signed, err := sc.SignEnveloped(respEl)
		if err != nil {
			t.Fatal(err)
		}
		resp.Signature = signed.ChildElements()[len(signed.ChildElements())-1]
		respEl = resp.Element()
		respEl.AddChild(assertionEl)
	}
	doc := etree.NewDocument()
	doc.SetRoot(respEl)
	if o.mutateXML != nil {
		o.mutateXML(doc)
	}
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signingContext(t testing.TB, idp *testIdP, method string) *dsig.SigningContext {
	t.Helper()
	if idp.ecKey != nil {
		sc, err := dsig.NewSigningContext(idp.ecKey, [][]byte{idp.cert.Raw})
		if err != nil {
			t.Fatal(err)
		}
		sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
		if err := sc.SetSignatureMethod(method); err != nil {
			t.Fatal(err)
		}
		return sc
	}
	ks := dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{idp.cert.Raw}, PrivateKey: idp.key})
	sc := dsig.NewDefaultSigningContext(ks)
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := sc.SetSignatureMethod(method); err != nil {
		t.Fatal(err)
	}
	return sc
}

// pend records a started login as Begin would, returning its RelayState.
func (e *env) pend(conn store.Connection, samlReqID, brokerReq string) string {
	e.T.Helper()
	relay := randomToken()
	b := []byte(`{"c":"` + conn.ID + `","s":"` + samlReqID + `","b":"` + brokerReq + `"}`)
	if err := e.Once.Put(context.Background(), pendingKey(relay), b, time.Minute); err != nil {
		e.T.Fatal(err)
	}
	return relay
}

// postACS posts a SAMLResponse to the connection's ACS like a browser.
func (e *env) postACS(conn store.Connection, xmlBytes []byte, relay string) *http.Response {
	e.T.Helper()
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(xmlBytes)}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	resp, err := http.PostForm(e.Srv.URL+"/sso/saml/"+conn.ID+"/acs", form)
	if err != nil {
		e.T.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func wantErr(t *testing.T, err, want error, contains string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not mention %q", err, contains)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// metadataXML is minimal IdP metadata listing certs as signing keys.
func metadataXML(entityID, ssoURL string, certs ...*x509.Certificate) string {
	var kd strings.Builder
	for _, c := range certs {
		kd.WriteString(`<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` +
			base64.StdEncoding.EncodeToString(c.Raw) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`)
	}
	return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="` + entityID + `">` +
		`<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` + kd.String() +
		`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + ssoURL + `"/>` +
		`</md:IDPSSODescriptor></md:EntityDescriptor>`
}
