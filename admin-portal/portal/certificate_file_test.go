package portal

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

// TestCertificateAsTheIdPGivesIt: step 2's "Enter the details by hand"
// takes the IdP's signing certificate in each form an admin console hands
// it out: pasted as PEM with Windows line ends (Entra's "Certificate
// (Base64)"), as bare base64, or as a file, DER (AD FS's export default,
// Entra's "Certificate (Raw)"), PEM with a byte-order mark or UTF-16
// (saved by Windows tools). A DER file had nowhere to go: the form had
// only a text box, and a file with a byte-order mark was "not a PEM
// certificate". A file that is no certificate is refused in words, and
// what was typed stays in the form.
func TestCertificateAsTheIdPGivesIt(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	certPEM := selfSignedPEM(t)
	block, _ := pem.Decode([]byte(certPEM))
	crlf := strings.ReplaceAll(certPEM, "\n", "\r\n")
	bare := base64.StdEncoding.EncodeToString(block.Bytes)
	utf16 := []byte{0xFF, 0xFE}
	for _, r := range crlf {
		utf16 = append(utf16, byte(r), byte(r>>8))
	}
	const entity, ssoURL = "http://adfs.acme.example/adfs/services/trust", "https://adfs.acme.example/adfs/ls/"

	c := h.open(h.link(ctx, store.IntentSSO))
	for _, tc := range []struct {
		name  string
		paste string
		file  []byte
		err   string // in the certificate field's error; "" saves
	}{
		{name: "pasted PEM with CRLF", paste: crlf},
		{name: "pasted bare base64", paste: bare},
		{name: "pasted after a byte-order mark", paste: "\ufeff" + certPEM},
		{name: "DER file", file: block.Bytes},
		{name: "PEM file with CRLF", file: []byte(crlf)},
		{name: "PEM file with a byte-order mark", file: append([]byte("\xef\xbb\xbf"), crlf...)},
		{name: "UTF-16 PEM file", file: utf16},
		{name: "bare base64 file", file: []byte(bare + "\r\n")},
		{name: "not a certificate", file: []byte("\x89PNG\r\n\x1a\n\x00\x00"), err: "This file is not a certificate"},
		{name: "nothing", err: "Paste your IdP's signing certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := h.reg.CreateConnection(ctx, saml.Name, "AD FS", connectionsSettingsNone(), nil)
			if err != nil {
				t.Fatal(err)
			}
			page := h.url + "/portal/sso/" + conn.ID + "/idp"
			_, body := get(t, c, page)
			var form bytes.Buffer
			mw := multipart.NewWriter(&form)
			mw.WriteField("csrf_token", csrfOf(t, body))
			mw.WriteField("method", "manual")
			mw.WriteField("entity_id", entity)
			mw.WriteField("sso_url", ssoURL)
			mw.WriteField("certificate", tc.paste)
			name := "token-signing.cer"
			if tc.file == nil {
				name = "" // what a browser sends for no file chosen
			}
			fw, _ := mw.CreateFormFile("certificate_file", name)
			fw.Write(tc.file)
			mw.Close()
			resp, err := c.Post(page, mw.FormDataContentType(), &form)
			resp, body = readPage(t, resp, err)
			if tc.err != "" {
				if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="certificate-error">`+htmlEscape(tc.err)) {
					t.Fatalf("answer %d, want 422 saying %q:\n%s", resp.StatusCode, tc.err, body)
				}
				if !strings.Contains(body, `value="`+entity+`"`) {
					t.Errorf("the entity ID typed is not kept")
				}
				return
			}
			if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "/attributes") {
				t.Fatalf("answer %d %s:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			cur, err := h.store.Connection(ctx, conn.ID)
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := saml.DecodeConfig(cur.Config)
			if cfg.IdPEntityID != entity || len(cfg.IdPCertificates) != 1 || cfg.IdPCertificates[0].PEM != certPEM {
				t.Fatalf("saved entity %q, certificates %+v", cfg.IdPEntityID, cfg.IdPCertificates)
			}
		})
	}
}

func htmlEscape(s string) string { return strings.ReplaceAll(s, "'", "&#39;") }
