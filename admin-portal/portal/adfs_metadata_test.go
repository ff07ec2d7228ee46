package portal

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

// adfsMetadata is FederationMetadata.xml as AD FS publishes it: signed,
// with WS-Federation RoleDescriptors, an SPSSODescriptor and the
// IDPSSODescriptor, which lists the token-decrypting (encryption)
// certificate beside the token-signing one; a hundred offered claim
// types make it as large as the real one. Saved by Notepad: a byte-order
// mark and CRLF line ends.
func adfsMetadata(signing, encryption string) []byte {
	der := func(p string) string {
		b, _ := pem.Decode([]byte(p))
		return base64.StdEncoding.EncodeToString(b.Bytes)
	}
	key := func(use, cert string) string {
		return `<KeyDescriptor use="` + use + `"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` + der(cert) + `</X509Certificate></X509Data></KeyInfo></KeyDescriptor>`
	}
	var claims strings.Builder
	for i := range 100 {
		fmt.Fprintf(&claims, `<auth:ClaimType Uri="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/c%d" Optional="true" xmlns:auth="http://docs.oasis-open.org/wsfed/authorization/200706"><auth:DisplayName>Claim %d</auth:DisplayName><auth:Description>A claim AD FS offers, one of many.</auth:Description></auth:ClaimType>`+"\r\n", i, i)
	}
	const host = "https://adfs.acme.example"
	md := `<?xml version="1.0" encoding="utf-8"?>` + "\r\n" +
		`<EntityDescriptor ID="_c1a0" entityID="http://adfs.acme.example/adfs/services/trust" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + "\r\n" +
		`<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_c1a0"><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + der(signing) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>` + "\r\n" +
		`<RoleDescriptor xsi:type="fed:SecurityTokenServiceType" protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706">` + key("encryption", encryption) + key("signing", signing) + `<fed:ClaimTypesOffered>` + claims.String() + `</fed:ClaimTypesOffered><fed:PassiveRequestorEndpoint><EndpointReference xmlns="http://www.w3.org/2005/08/addressing"><Address>` + host + `/adfs/ls/</Address></EndpointReference></fed:PassiveRequestorEndpoint></RoleDescriptor>` + "\r\n" +
		`<RoleDescriptor xsi:type="fed:ApplicationServiceType" protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706">` + key("signing", signing) + `</RoleDescriptor>` + "\r\n" +
		`<SPSSODescriptor WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` + key("encryption", encryption) + key("signing", signing) + `<AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + host + `/adfs/ls/" index="0" isDefault="true"/></SPSSODescriptor>` + "\r\n" +
		`<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` + key("encryption", encryption) + key("signing", signing) +
		`<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + host + `/adfs/ls/"/>` +
		`<NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</NameIDFormat><NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</NameIDFormat><NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</NameIDFormat>` +
		`<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + host + `/adfs/ls/"/><SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + host + `/adfs/ls/"/>` +
		`</IDPSSODescriptor></EntityDescriptor>` + "\r\n"
	return append([]byte("\xef\xbb\xbf"), md...)
}

// TestADFSFederationMetadataFile: AD FS's FederationMetadata.xml, all of
// it, uploaded as an AD FS admin saves it, connects the token-signing
// certificate and only it. When that certificate has expired (AD FS's
// auto-rollover is off) the upload is refused saying so: the wizard
// counted the still valid token-decrypting certificate beside it as a
// signing one, saved the connection, and the admin learnt of it only
// from a failing test login.
func TestADFSFederationMetadataFile(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	now := h.clock()
	signing := selfSignedPEM(t)
	encryption := certPEMValid(t, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	expired := certPEMValid(t, now.Add(-400*24*time.Hour), now.Add(-24*time.Hour))
	c := h.open(h.link(ctx, store.IntentSSO))
	for _, tc := range []struct {
		name    string
		signing string
		err     string
	}{
		{"current", signing, ""},
		{"token-signing certificate expired", expired, "The signing certificate in this metadata expired on "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := h.reg.CreateConnection(ctx, saml.Name, "AD FS", connectionsSettingsNone(), nil)
			if err != nil {
				t.Fatal(err)
			}
			file := adfsMetadata(tc.signing, encryption)
			if len(file) < 30<<10 {
				t.Fatalf("the metadata is %d bytes, smaller than AD FS's", len(file))
			}
			page := h.url + "/portal/sso/" + conn.ID + "/idp"
			_, body := get(t, c, page)
			var form bytes.Buffer
			mw := multipart.NewWriter(&form)
			mw.WriteField("csrf_token", csrfOf(t, body))
			mw.WriteField("method", "file")
			fw, _ := mw.CreateFormFile("metadata_file", "FederationMetadata.xml")
			fw.Write(file)
			mw.Close()
			resp, err := c.Post(page, mw.FormDataContentType(), &form)
			resp, body = readPage(t, resp, err)
			if tc.err != "" {
				if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="metadata_file-error">`+tc.err) {
					t.Fatalf("answer %d %s, want 422 saying %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), tc.err, body)
				}
				return
			}
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("answer %d:\n%s", resp.StatusCode, body)
			}
			cur, err := h.store.Connection(ctx, conn.ID)
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := saml.DecodeConfig(cur.Config)
			if cfg.IdPEntityID != "http://adfs.acme.example/adfs/services/trust" || cfg.IdPSSOURL != "https://adfs.acme.example/adfs/ls/" ||
				len(cfg.IdPCertificates) != 1 || cfg.IdPCertificates[0].PEM != signing {
				t.Fatalf("saved entity %q, SSO URL %q, %d certificates", cfg.IdPEntityID, cfg.IdPSSOURL, len(cfg.IdPCertificates))
			}
		})
	}
}
