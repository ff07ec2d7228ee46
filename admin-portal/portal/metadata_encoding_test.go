package portal

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

// TestMetadataFileInUTF16: an AD FS admin who saved FederationMetadata.xml
// with Windows PowerShell's Out-File uploads UTF-16 with a byte-order
// mark. The wizard read it as "not SAML metadata"; it now saves the
// connection from it, as from the same file in UTF-8.
func TestMetadataFileInUTF16(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	conn, err := h.reg.CreateConnection(ctx, saml.Name, "AD FS", connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(selfSignedPEM(t)))
	const entity = "http://adfs.acme.example/adfs/services/trust"
	md := `<?xml version="1.0" encoding="utf-16"?>` + "\r\n" + `<EntityDescriptor entityID="` + entity + `" xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
		`<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` + base64.StdEncoding.EncodeToString(block.Bytes) + `</X509Certificate></X509Data></KeyInfo></KeyDescriptor>` +
		`<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://adfs.acme.example/adfs/ls/"/></IDPSSODescriptor></EntityDescriptor>`
	file := []byte{0xFF, 0xFE}
	for _, r := range utf16.Encode([]rune(md)) {
		file = binary.LittleEndian.AppendUint16(file, r)
	}

	c := h.open(h.link(ctx, store.IntentSSO))
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
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "/attributes") {
		t.Fatalf("upload: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	cur, err := h.store.Connection(ctx, conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := saml.DecodeConfig(cur.Config); cfg.IdPEntityID != entity || cfg.IdPSSOURL != "https://adfs.acme.example/adfs/ls/" || len(cfg.IdPCertificates) != 1 {
		t.Fatalf("saved %q %q, %d certificates", cfg.IdPEntityID, cfg.IdPSSOURL, len(cfg.IdPCertificates))
	}
}

// TestMetadataFileAggregates: an uploaded EntitiesDescriptor holding one
// IdP beside an SP is that IdP's metadata; a federation's, holding many
// IdPs, is refused saying so, where the wizard said it described no
// identity provider at all.
func TestMetadataFileAggregates(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	block, _ := pem.Decode([]byte(selfSignedPEM(t)))
	idp := func(entity string) string {
		return `<EntityDescriptor entityID="` + entity + `"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
			`<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` + base64.StdEncoding.EncodeToString(block.Bytes) + `</X509Certificate></X509Data></KeyInfo></KeyDescriptor>` +
			`<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + entity + `/sso"/></IDPSSODescriptor></EntityDescriptor>`
	}
	const sp = `<EntityDescriptor entityID="https://sp.example"><SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example/acs" index="0"/></SPSSODescriptor></EntityDescriptor>`
	wrap := func(inner string) string {
		return `<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + inner + `</EntitiesDescriptor>`
	}
	for _, tt := range []struct {
		name, md, refusal string
	}{
		{"one IdP beside an SP", wrap(sp + idp("https://idp.acme.example")), ""},
		{"a federation's", wrap(idp("https://idp.one.example") + idp("https://idp.two.example") + sp), "describes 2 identity providers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := h.reg.CreateConnection(ctx, saml.Name, "IdP", connectionsSettingsNone(), nil)
			if err != nil {
				t.Fatal(err)
			}
			c := h.open(h.link(ctx, store.IntentSSO))
			page := h.url + "/portal/sso/" + conn.ID + "/idp"
			_, body := get(t, c, page)
			var form bytes.Buffer
			mw := multipart.NewWriter(&form)
			mw.WriteField("csrf_token", csrfOf(t, body))
			mw.WriteField("method", "file")
			fw, _ := mw.CreateFormFile("metadata_file", "metadata.xml")
			fw.Write([]byte(tt.md))
			mw.Close()
			resp, err := c.Post(page, mw.FormDataContentType(), &form)
			resp, body = readPage(t, resp, err)
			if tt.refusal == "" {
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("upload: %d\n%s", resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tt.refusal) {
				t.Fatalf("upload: %d, want 422 saying %q\n%s", resp.StatusCode, tt.refusal, body)
			}
		})
	}
}
