package saml

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// TestSAMLRelayStateNotReturned: some IdPs answer an AuthnRequest without
// the RelayState they were sent (PingFederate set up to take it from its
// TARGET parameter, AD FS reached through the wrong endpoint, small IdPs
// that do not keep it) or with one of their own. The sign-in is found
// again by the response's InResponseTo, on a connection with or without
// IdP-initiated logins, and still only once; a response to an
// AuthnRequest nobody is waiting for is refused as not matching a
// sign-in, never taken for an IdP-initiated one.
func TestSAMLRelayStateNotReturned(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newIdPServer(t, 0)
	for _, allow := range []bool{false, true} {
		conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Ping", Settings{IdPMetadataURL: ptr(idp.srv.URL + "/metadata"),
			AllowIdPInitiated: ptr(allow)}.Request(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name  string
			relay func(string) (string, bool)
		}{
			{"returned", func(s string) (string, bool) { return s, false }},
			{"dropped", func(string) (string, bool) { return "", true }},
			{"empty", func(string) (string, bool) { return "", false }},
			{"replaced by the IdP's own", func(string) (string, bool) { return "https://app.example.com/after-login", false }},
		} {
			idp.relayState = tt.relay
			resp := samlLogin(t, e, idp, conn, "authreq-1")
			c := e.Last()
			if c.Err != nil || resp.StatusCode != http.StatusOK || c.Res.RequestID != "authreq-1" || c.Res.Profile.Email != "alice@example.com" {
				t.Fatalf("IdP-initiated allowed %v, RelayState %s: %d %+v %v", allow, tt.name, resp.StatusCode, c.Res, c.Err)
			}
		}
		idp.relayState = nil
	}

	// Answers to AuthnRequests nobody waits for: unknown, or one already
	// answered (a replayed response, the RelayState left out).
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Ping", Settings{IdPMetadataURL: ptr(idp.srv.URL + "/metadata"), AllowIdPInitiated: ptr(true)}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cn, _ := e.Reg.Connector(e.Ctx, conn)
	sc := cn.(*samlConnector)
	unknown := idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: "id-nobody-asked", issuedAt: e.Clock.Now()})
	for _, relay := range []string{"", "some-relay"} {
		_, err := sc.finish(e.Ctx, unknown, relay)
		wantErr(t, err, connections.ErrRequestMismatch, `AuthnRequest "id-nobody-asked"`)
	}
	answered := idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: "id-once", issuedAt: e.Clock.Now()})
	// As Begin records it: under the AuthnRequest id, which it sends as
	// the RelayState.
	if err := sc.deps.Once.Put(e.Ctx, pendingKey("id-once"), []byte(`{"c":"`+conn.ID+`","s":"id-once","b":"b"}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if res, err := sc.finish(e.Ctx, answered, ""); err != nil || res.RequestID != "b" {
		t.Fatalf("first answer: %+v, %v", res, err)
	}
	// The same response again: the assertion verifies for the spent
	// login and its id was used, a replay.
	_, err = sc.finish(e.Ctx, answered, "")
	wantErr(t, err, connections.ErrReplay, "already used")
}

// TestSAMLSignaturesByVendor: signatures the IdPs make beyond Okta's,
// Entra's and Google's RSA-SHA256: ECDSA (Keycloak realms with an EC
// key, Shibboleth with an EC credential) on the assertion or the
// response, and RSA-SHA512 (PingFederate, AD FS when chosen).
func TestSAMLSignaturesByVendor(t *testing.T) {
	e := newEnv(t, envOpts{})
	rsaIdP := newTestIdP(t, 0)
	ecIdP := &testIdP{entityID: "https://kc.example.net/realms/acme", ssoURL: "https://kc.example.net/realms/acme/protocol/saml", key: rsaIdP.key}
	ecIdP.ecKey, ecIdP.cert = ecdsaCert(t)
	rsaConn, ecConn := e.samlConn(rsaIdP, nil), e.samlConn(ecIdP, nil)
	for _, tt := range []struct {
		name string
		idp  *testIdP
		o    respOpts
	}{
		{"Keycloak: ecdsa-sha256 on the assertion", ecIdP, respOpts{signAssertion: true, sigMethod: dsig.ECDSASHA256SignatureMethod}},
		{"ecdsa-sha384 on the response", ecIdP, respOpts{signResponse: true, sigMethod: dsig.ECDSASHA384SignatureMethod}},
		{"ecdsa-sha512 on both", ecIdP, respOpts{signResponse: true, signAssertion: true, sigMethod: dsig.ECDSASHA512SignatureMethod}},
		{"PingFederate: rsa-sha512", rsaIdP, respOpts{signAssertion: true, sigMethod: dsig.RSASHA512SignatureMethod}},
		{"rsa-sha384 on the response", rsaIdP, respOpts{signResponse: true, sigMethod: dsig.RSASHA384SignatureMethod}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn := rsaConn
			if tt.idp == ecIdP {
				conn = ecConn
			}
			o := tt.o
			o.inResponseTo, o.issuedAt = "id-req", e.Clock.Now()
			resp := e.postACS(conn, tt.idp.response(t, e.Issuer, conn, o), e.pend(conn, "id-req", "b"))
			if c := e.Last(); c.Err != nil || resp.StatusCode != http.StatusOK || c.Res.Profile.Email != "alice@example.com" {
				t.Fatalf("%d %+v %v", resp.StatusCode, c.Res.Profile, c.Err)
			}
		})
	}
	// ECDSA with SHA-1 is SHA-1 all the same.
	o := respOpts{signAssertion: true, sigMethod: dsig.ECDSASHA1SignatureMethod, inResponseTo: "id-req", issuedAt: e.Clock.Now()}
	e.postACS(ecConn, ecIdP.response(t, e.Issuer, ecConn, o), e.pend(ecConn, "id-req", "b"))
	wantErr(t, e.Last().Err, connections.ErrSignature, "allow_sha1")
}

// TestSAMLEncryptionLayouts: where the IdPs put the EncryptedKey and how
// they describe its transport. OpenSAML (Shibboleth) can place it beside
// the EncryptedData, inside the EncryptedAssertion, referenced by a
// RetrievalMethod or not referenced at all; Shibboleth 4 and later write
// XML Encryption 1.1's rsa-oaep with its MGF stated, which may differ
// from the digest (SHA-256 digest, MGF1 with SHA-1).
func TestSAMLEncryptionLayouts(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	conn := e.samlConn(idp, nil)
	cn, err := e.Reg.Connector(e.Ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	spCert := cn.(*samlConnector).sp.Certificate
	moveKey := func(ref bool) func(d *etree.Document) {
		return func(d *etree.Document) {
			ea := d.FindElement("//EncryptedAssertion")
			ed := ea.FindElement("./EncryptedData")
			ki := ed.FindElement("./KeyInfo")
			ek := ki.FindElement("./EncryptedKey")
			ki.RemoveChild(ek)
			if ref {
				ek.RemoveAttr("Id")
				ek.CreateAttr("Id", "_ek1")
				rm := ki.CreateElement("ds:RetrievalMethod")
				rm.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#EncryptedKey")
				rm.CreateAttr("URI", "#_ek1")
			} else {
				ed.RemoveChild(ki)
			}
			ea.AddChild(ek)
		}
	}
	// rsa-oaep-mgf1p with a SHA-256 digest is, on the wire, XML
	// Encryption 1.1's rsa-oaep with a SHA-256 digest and MGF1-SHA1.
	mgf1SHA1 := func(d *etree.Document) {
		em := d.FindElement("//EncryptedKey/EncryptionMethod")
		em.SelectAttr("Algorithm").Value = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
		m := em.CreateElement("xenc11:MGF")
		m.CreateAttr("xmlns:xenc11", "http://www.w3.org/2009/xmlenc11#")
		m.CreateAttr("Algorithm", "http://www.w3.org/2009/xmlenc11#mgf1sha1")
	}
	oaep := xmlenc.OAEP()
	oaep.DigestMethod, oaep.BlockCipher = xmlenc.SHA256, xmlenc.AES128GCM
	for _, tt := range []struct {
		name   string
		mutate func(*etree.Document)
	}{
		{"EncryptedKey beside the EncryptedData, by RetrievalMethod", moveKey(true)},
		{"EncryptedKey beside the EncryptedData, no KeyInfo", moveKey(false)},
		{"rsa-oaep, SHA-256 digest, MGF1-SHA1 stated", mgf1SHA1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, encryptTo: spCert, encrypter: &oaep, mutateXML: tt.mutate,
				inResponseTo: "id-1", issuedAt: e.Clock.Now()})
			resp := e.postACS(conn, raw, e.pend(conn, "id-1", "b"))
			if c := e.Last(); c.Err != nil || resp.StatusCode != http.StatusOK || c.Res.Profile.Email != "alice@example.com" {
				t.Fatalf("%d %+v %v", resp.StatusCode, c.Res.Profile, c.Err)
			}
		})
	}
}

// ecdsaCert is a P-256 key and its self-signed certificate.
func ecdsaCert(t *testing.T) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "kc.example.net"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return k, c
}

// TestSAMLVendorMetadata: IdP metadata as the IdPs publish it, pasted as
// idp_metadata_xml, is read for the entity, the SSO endpoint the broker
// can use and the signing certificates: AD FS's FederationMetadata.xml
// (signed, default namespace, WS-Federation RoleDescriptors and an SP
// role before the IdP role, an encryption key beside the signing key),
// Shibboleth's (a byte-order mark and a comment, Extensions, SAML 1 and
// SimpleSign endpoints first, two signing keys during a rollover),
// Keycloak's (WantAuthnRequestsSigned, a KeyName, SOAP and Artifact
// endpoints), JumpCloud's with only an HTTP-POST endpoint and IAM
// Identity Center's KeyDescriptor without use.
func TestSAMLVendorMetadata(t *testing.T) {
	e := newEnv(t, envOpts{})
	a, b := newTestIdP(t, 0).cert, newTestIdP(t, 1).cert
	ca, cb := base64.StdEncoding.EncodeToString(a.Raw), base64.StdEncoding.EncodeToString(b.Raw)
	x509Data := func(c string) string {
		return `<KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` + c + `</X509Certificate></X509Data></KeyInfo>`
	}
	adfs := `<?xml version="1.0" encoding="utf-8"?><EntityDescriptor ID="_9f8e" entityID="http://adfs.example.com/adfs/services/trust" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` +
		`<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_9f8e"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>bm90IGNoZWNrZWQ=</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>bm90IGNoZWNrZWQ=</ds:SignatureValue>` + x509Data(ca) + `</ds:Signature>` +
		`<RoleDescriptor xsi:type="fed:ApplicationServiceType" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706" protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706"><KeyDescriptor use="signing">` + x509Data(ca) + `</KeyDescriptor><fed:TargetScopes><EndpointReference xmlns="http://www.w3.org/2005/08/addressing"><Address>https://adfs.example.com/adfs/services/trust/2005/issuedtokenmixedasymmetricbasic256</Address></EndpointReference></fed:TargetScopes></RoleDescriptor>` +
		`<SPSSODescriptor WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><KeyDescriptor use="encryption">` + x509Data(cb) + `</KeyDescriptor><AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://adfs.example.com/adfs/ls/" index="0" isDefault="true"/></SPSSODescriptor>` +
		`<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><KeyDescriptor use="encryption">` + x509Data(cb) + `</KeyDescriptor><KeyDescriptor use="signing">` + x509Data(ca) + `</KeyDescriptor>` +
		`<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://adfs.example.com/adfs/ls/"/><NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</NameIDFormat><NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</NameIDFormat><NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</NameIDFormat>` +
		`<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://adfs.example.com/adfs/ls/"/><SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://adfs.example.com/adfs/ls/"/>` +
		`<Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" FriendlyName="E-Mail Address" xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/></IDPSSODescriptor></EntityDescriptor>`
	wrapped := func(c string) string {
		var s strings.Builder
		for ; len(c) > 64; c = c[64:] {
			s.WriteString("\n                        " + c[:64])
		}
		return s.String() + "\n                        " + c + "\n"
	}
	shib := "\ufeff" + `<?xml version="1.0" encoding="UTF-8"?>
<!-- This is example metadata only. -->
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:shibmd="urn:mace:shibboleth:metadata:1.0" xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" entityID="https://idp.example.org/idp/shibboleth">
    <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol urn:oasis:names:tc:SAML:1.1:protocol urn:mace:shibboleth:1.0">
        <Extensions>
            <shibmd:Scope regexp="false">example.org</shibmd:Scope>
            <mdui:UIInfo><mdui:DisplayName xml:lang="en">Example</mdui:DisplayName></mdui:UIInfo>
        </Extensions>
        <KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + wrapped(cb) + `                    </ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>
        <KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + wrapped(ca) + `                    </ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>
        <KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + cb + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>
        <ArtifactResolutionService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://idp.example.org:8443/idp/profile/SAML2/SOAP/ArtifactResolution" index="2"/>
        <NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</NameIDFormat>
        <SingleSignOnService Binding="urn:mace:shibboleth:1.0:profiles:AuthnRequest" Location="https://idp.example.org/idp/profile/Shibboleth/SSO"/>
        <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.org/idp/profile/SAML2/POST/SSO"/>
        <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST-SimpleSign" Location="https://idp.example.org/idp/profile/SAML2/POST-SimpleSign/SSO"/>
        <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.org/idp/profile/SAML2/Redirect/SSO"/>
    </IDPSSODescriptor>
    <AttributeAuthorityDescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><AttributeService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://idp.example.org:8443/idp/profile/SAML2/SOAP/AttributeQuery"/></AttributeAuthorityDescriptor>
</EntityDescriptor>
`
	const kcSSO = "https://kc.example.com/realms/acme/protocol/saml"
	keycloak := `<md:EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://kc.example.com/realms/acme"><md:IDPSSODescriptor WantAuthnRequestsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
		`<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:KeyName>Jx1kQ</ds:KeyName><ds:X509Data><ds:X509Certificate>` + ca + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
		`<md:ArtifactResolutionService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="` + kcSSO + `/resolve" index="0"></md:ArtifactResolutionService>` +
		`<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat><md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>` +
		`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + kcSSO + `"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + kcSSO + `"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="` + kcSSO + `"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="` + kcSSO + `"/>` +
		`</md:IDPSSODescriptor></md:EntityDescriptor>`
	jumpcloud := strings.Replace(metadataXML("https://sso.jumpcloud.com/saml2/acme", "https://sso.jumpcloud.com/saml2/acme", a), "HTTP-Redirect", "HTTP-POST", 1)
	const awsID = "https://portal.sso.eu-west-1.amazonaws.com/saml/assertion/MDEyMzQ1Njc4OTAx"
	aws := strings.Replace(metadataXML(awsID, awsID, a), ` use="signing"`, "", 1)
	for _, tt := range []struct {
		name, md, entityID, sso, binding string
		certs                            int
		signs                            bool
	}{
		{"AD FS", adfs, "http://adfs.example.com/adfs/services/trust", "https://adfs.example.com/adfs/ls/", BindingRedirect, 1, false},
		{"Shibboleth", shib, "https://idp.example.org/idp/shibboleth", "https://idp.example.org/idp/profile/SAML2/Redirect/SSO", BindingRedirect, 2, false},
		{"Keycloak", keycloak, "https://kc.example.com/realms/acme", kcSSO, BindingRedirect, 1, true},
		{"JumpCloud: HTTP-POST only", jumpcloud, "https://sso.jumpcloud.com/saml2/acme", "https://sso.jumpcloud.com/saml2/acme", BindingPost, 1, false},
		{"IAM Identity Center: no use", aws, awsID, awsID, BindingRedirect, 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := e.Reg.CreateConnection(e.Ctx, Name, tt.name, Settings{IdPMetadataXML: ptr(tt.md)}.Request(), nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := DecodeConfig(conn.Config)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.IdPEntityID != tt.entityID || cfg.IdPSSOURL != tt.sso || cfg.IdPSSOBinding != tt.binding ||
				len(cfg.IdPCertificates) != tt.certs || cfg.SignsRequests() != tt.signs || conn.Status != store.ConnectionActive {
				t.Fatalf("read %q %q %q, %d certificates, signs requests %v, status %s", cfg.IdPEntityID, cfg.IdPSSOURL, cfg.IdPSSOBinding,
					len(cfg.IdPCertificates), cfg.SignsRequests(), conn.Status)
			}
		})
	}
}

// TestSAMLDestinationTypedDifferently: an ACS URL typed into the IdP
// with another letter case in the host or a trailing slash reaches the
// ACS, but SAML compares Destination and Recipient exactly and the
// response is refused. The admin reads which of the two names what
// URL, beside the ACS URL, and that they differ only in case or the
// slash; the library's own message for the Recipient said neither.
func TestSAMLDestinationTypedDifferently(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	conn := e.samlConn(idp, nil)
	acs := acsURL(e.Issuer, conn.ID)
	// The test broker's host is an IP address; HTTP:// stands for a
	// letter case the IdP kept.
	upper := "HTTP://" + strings.TrimPrefix(acs, "http://")
	setRecipient := func(v string) func(*saml.Assertion) {
		return func(a *saml.Assertion) { a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = v }
	}
	for _, tt := range []struct {
		name, what, sent string
		o                respOpts
		slip             bool
	}{
		{"Destination with a trailing slash", "Destination", acs + "/", respOpts{signResponse: true, acs: acs + "/", mutate: setRecipient(acs)}, true},
		{"Recipient with a trailing slash", "SubjectConfirmationData Recipient", acs + "/", respOpts{signAssertion: true, mutate: setRecipient(acs + "/")}, true},
		{"Destination in capitals", "Destination", upper, respOpts{signResponse: true, acs: upper, mutate: setRecipient(acs)}, true},
		{"Recipient of another SP", "SubjectConfirmationData Recipient", "https://other.example/acs", respOpts{signAssertion: true, mutate: setRecipient("https://other.example/acs")}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.inResponseTo, o.issuedAt = "id-req", e.Clock.Now()
			e.postACS(conn, idp.response(t, e.Issuer, conn, o), e.pend(conn, "id-req", "b"))
			err := e.Last().Err
			wantErr(t, err, connections.ErrDestinationMismatch, fmt.Sprintf("%s was %q, expected %q", tt.what, tt.sent, acs))
			if strings.Contains(err.Error(), "only in letter case") != tt.slip {
				t.Fatalf("%v: says a slip of case or slash: %v, want %v", err, !tt.slip, tt.slip)
			}
		})
	}
}

// adfsFederationMetadata is AD FS's metadata for idp: its default
// identifier, the NameID formats it lists (email, persistent,
// transient), both SSO bindings.
func adfsFederationMetadata(idp *testIdP) string {
	return `<EntityDescriptor entityID="` + idp.entityID + `" xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
		`<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` + base64.StdEncoding.EncodeToString(idp.cert.Raw) + `</X509Certificate></X509Data></KeyInfo></KeyDescriptor>` +
		`<NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</NameIDFormat><NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</NameIDFormat><NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</NameIDFormat>` +
		`<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + idp.ssoURL + `"/><SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + idp.ssoURL + `"/>` +
		`</IDPSSODescriptor></EntityDescriptor>`
}

// TestSAMLADFSNameIDPolicy: AD FS answers an AuthnRequest whose
// NameIDPolicy names a format other than the one its claim rules issue
// with InvalidNameIDPolicy (MSIS7070). The portal's AD FS steps, like
// most AD FS setups, issue the E-Mail Address as an email NameID, while
// AD FS's metadata lists persistent too, so the broker asked for
// persistent and every sign-in failed. For an AD FS connection (the
// AD FS preset, or AD FS's own entity ID) the broker now asks for no
// particular format (unspecified), which any Name ID rule satisfies; a
// name_id_format set on the connection still wins.
func TestSAMLADFSNameIDPolicy(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	idp.entityID, idp.ssoURL = "http://adfs.example.com/adfs/services/trust", "https://adfs.example.com/adfs/ls/"
	md := adfsFederationMetadata(idp)
	for _, tt := range []struct {
		name   string
		s      Settings
		format saml.NameIDFormat
	}{
		{"the portal's AD FS choice", Settings{IdPMetadataXML: ptr(md), AttributeMapping: &connections.AttributeMapping{Preset: connections.PresetADFS}}, saml.UnspecifiedNameIDFormat},
		{"AD FS's entity ID, generic mapping", Settings{IdPMetadataXML: ptr(md)}, saml.UnspecifiedNameIDFormat},
		{"name_id_format set to email", Settings{IdPMetadataXML: ptr(md), NameIDFormat: ptr(NameIDEmail)}, saml.EmailAddressNameIDFormat},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := e.Reg.CreateConnection(e.Ctx, Name, "AD FS", tt.s.Request(), nil)
			if err != nil {
				t.Fatal(err)
			}
			cn, err := e.Reg.Connector(e.Ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			if err := cn.Begin(e.Ctx, rec, httptest.NewRequest("GET", "/authorize", nil), connections.LoginRequest{RequestID: "authreq-1"}); err != nil {
				t.Fatal(err)
			}
			loc, err := url.Parse(rec.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			var req saml.AuthnRequest
			if err := xml.Unmarshal(inflate(t, loc.Query().Get("SAMLRequest")), &req); err != nil {
				t.Fatal(err)
			}
			asked := saml.UnspecifiedNameIDFormat
			if req.NameIDPolicy != nil && req.NameIDPolicy.Format != nil {
				asked = saml.NameIDFormat(*req.NameIDPolicy.Format)
			}
			// AD FS's answer: its claim rule issues the email address as
			// an email NameID, which satisfies unspecified or email.
			o := respOpts{signAssertion: true, inResponseTo: req.ID, issuedAt: e.Clock.Now(),
				nameID: "alice@example.com", nameIDFormat: string(saml.EmailAddressNameIDFormat)}
			if asked != saml.UnspecifiedNameIDFormat && asked != saml.EmailAddressNameIDFormat {
				o.mutateXML = func(d *etree.Document) {
					r := d.Root()
					for _, c := range r.ChildElements() {
						if c.Tag == "Assertion" {
							r.RemoveChild(c)
						}
					}
					sc := r.FindElement("./Status/StatusCode")
					sc.SelectAttr("Value").Value = saml.StatusRequester
					sc.CreateElement("samlp:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy")
				}
			}
			resp := e.postACS(conn, idp.response(t, e.Issuer, conn, o), loc.Query().Get("RelayState"))
			if c := e.Last(); c.Err != nil || resp.StatusCode != http.StatusOK || c.Res.Profile.Email != "alice@example.com" || c.Res.RequestID != "authreq-1" {
				t.Fatalf("AuthnRequest asked for NameID format %q; AD FS's answer: %d %+v %v", asked, resp.StatusCode, c.Res, c.Err)
			}
			if asked != tt.format {
				t.Fatalf("AuthnRequest asks for NameID format %q, want %q", asked, tt.format)
			}
		})
	}
}

// TestSAMLErrorStatusesReachTheAdmin: IdPs answer a sign-in they refuse
// with an error status and no assertion, often unsigned (Shibboleth,
// AD FS, Keycloak): the wrong password (AuthnFailed), a user the
// application is not granted to (RequestDenied), no session for a
// passive request (NoPassive). The sign-in fails as idp_error with the
// second-level status and the IdP's message, tied to the sign-in it
// answers, so the tenant admin reads why.
func TestSAMLErrorStatusesReachTheAdmin(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	conn := e.samlConn(idp, nil)
	for _, tt := range []struct {
		top, second, message string
		signed               bool
	}{
		{saml.StatusResponder, "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed", "Invalid username or password.", false},
		{saml.StatusRequester, "urn:oasis:names:tc:SAML:2.0:status:RequestDenied", "User is not assigned to this application", true},
		{saml.StatusResponder, "urn:oasis:names:tc:SAML:2.0:status:NoPassive", "", false},
	} {
		t.Run(tt.second, func(t *testing.T) {
			o := respOpts{inResponseTo: "id-req", issuedAt: e.Clock.Now(), mutateXML: func(d *etree.Document) {
				r := d.Root()
				for _, c := range r.ChildElements() {
					if c.Tag == "Assertion" {
						r.RemoveChild(c)
					}
				}
				sc := r.FindElement("./Status/StatusCode")
				sc.SelectAttr("Value").Value = tt.top
				sc.CreateElement("samlp:StatusCode").CreateAttr("Value", tt.second)
				if tt.message != "" {
					r.FindElement("./Status").CreateElement("samlp:StatusMessage").SetText(tt.message)
				}
			}}
			raw := idp.response(t, e.Issuer, conn, o)
			if tt.signed {
				raw = idp.errorResponse(t, e.Issuer, conn, "id-req", tt.top, tt.second, tt.message)
			}
			resp := e.postACS(conn, raw, e.pend(conn, "id-req", "authreq-1"))
			c := e.Last()
			want := "SAML status " + tt.top + " / " + tt.second
			if tt.message != "" {
				want += fmt.Sprintf(": %q", tt.message)
			}
			wantErr(t, c.Err, connections.ErrIdPError, want)
			if c.Res.RequestID != "authreq-1" || resp.StatusCode == http.StatusOK {
				t.Fatalf("%d, request %q: the failure must name the sign-in it answers", resp.StatusCode, c.Res.RequestID)
			}
		})
	}
}

// errorResponse is a signed Response carrying only an error status.
func (idp *testIdP) errorResponse(t *testing.T, issuer string, conn store.Connection, inResponseTo, top, second, message string) []byte {
	t.Helper()
	st := saml.Status{StatusCode: saml.StatusCode{Value: top, StatusCode: &saml.StatusCode{Value: second}}}
	if message != "" {
		st.StatusMessage = &saml.StatusMessage{Value: message}
	}
	resp := &saml.Response{Destination: acsURL(issuer, conn.ID), ID: "id-err-" + randomToken()[:16], InResponseTo: inResponseTo,
		IssueInstant: time.Now(), Version: "2.0", Issuer: &saml.Issuer{Value: idp.entityID}, Status: st}
	signed, err := signingContext(t, idp, dsig.RSASHA256SignatureMethod).SignEnveloped(resp.Element())
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(signed)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSAMLMetadataEncodings: IdP metadata not in UTF-8. An AD FS admin
// saving FederationMetadata.xml with Windows PowerShell's Out-File gets
// UTF-16 with a byte-order mark; Java-based IdPs may declare ISO-8859-1.
// Both were refused with Go's own words ("invalid UTF-8", "CharsetReader
// is nil"); they are now read, a DTD in them is still refused, and an
// encoding that cannot be decoded is named.
func TestSAMLMetadataEncodings(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	withOrg := func(decl, org string) string {
		md := metadataXML(idp.entityID, idp.ssoURL, idp.cert)
		return decl + strings.Replace(md, "</md:EntityDescriptor>",
			`<md:Organization><md:OrganizationName xml:lang="fr">`+org+`</md:OrganizationName><md:OrganizationDisplayName xml:lang="fr">`+org+
				`</md:OrganizationDisplayName><md:OrganizationURL xml:lang="fr">https://idp.example.net/</md:OrganizationURL></md:Organization></md:EntityDescriptor>`, 1)
	}
	utf16 := func(s string, big bool) []byte {
		var order binary.AppendByteOrder = binary.LittleEndian
		b := []byte{0xFF, 0xFE}
		if big {
			order, b = binary.BigEndian, []byte{0xFE, 0xFF}
		}
		for _, r := range utf16.Encode([]rune(s)) {
			b = order.AppendUint16(b, r)
		}
		return b
	}
	latin1 := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r)) // every rune here is below 256
		}
		return b
	}
	for _, tt := range []struct {
		name     string
		md       []byte
		contains string // "" = accepted
	}{
		{"UTF-16LE with BOM and its declaration (Out-File)", utf16(withOrg(`<?xml version="1.0" encoding="utf-16"?>`+"\r\n", "Université"), false), ""},
		{"UTF-16BE with BOM", utf16(withOrg("", "Université"), true), ""},
		{"ISO-8859-1 declared, Latin-1 bytes", latin1(withOrg(`<?xml version="1.0" encoding="ISO-8859-1"?>`, "Université")), ""},
		{"windows-1252 declared, ASCII", []byte(withOrg(`<?xml version='1.0' encoding='windows-1252' standalone='yes'?>`, "Universite")), ""},
		{"US-ASCII declared", []byte(withOrg(`<?xml version="1.0" encoding="US-ASCII"?>`, "Universite")), ""},
		{"UTF-8 with BOM and declaration", []byte("\ufeff" + withOrg(`<?xml version="1.0" encoding="UTF-8"?>`, "Université")), ""},
		{"UTF-16 with a DTD", utf16(`<!DOCTYPE x [<!ENTITY e "e">]>`+withOrg("", "U"), false), "DTD"},
		{"an encoding not read here", []byte(withOrg(`<?xml version="1.0" encoding="x-made-up"?>`, "Universit\xe9")), `"x-made-up" character encoding`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Served from a metadata URL, byte for byte: pasted, it
			// travels in a JSON string, which holds UTF-8 only (the
			// portal's file upload converts it first).
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/samlmetadata+xml")
				w.Write(tt.md)
			}))
			defer srv.Close()
			conn, err := e.Reg.CreateConnection(e.Ctx, Name, "IdP", Settings{IdPMetadataURL: ptr(srv.URL + "/FederationMetadata.xml")}.Request(), nil)
			if tt.contains != "" {
				wantErr(t, err, connections.ErrConfig, tt.contains)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg, _ := DecodeConfig(conn.Config); cfg.IdPEntityID != idp.entityID || cfg.IdPSSOURL != idp.ssoURL || len(cfg.IdPCertificates) != 1 {
				t.Fatalf("read %q %q, %d certificates", cfg.IdPEntityID, cfg.IdPSSOURL, len(cfg.IdPCertificates))
			}
		})
	}
}
