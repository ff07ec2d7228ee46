package adminportal_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
)

func certExpiringAt(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-400 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestConnectionCertificatesAPI: GET /connections/{id} shows each IdP
// signing certificate with its expiry, flagged within 30 days of it, so the
// tenant admin sees what connection.certificate_expiring announced.
func TestConnectionCertificatesAPI(t *testing.T) {
	b := backends[0]
	e := newConnEnv(t, b.open(t), sessions.NewMemory())
	acme := e.createTenant(map[string]any{"name": "Acme", "domains": []map[string]any{{"domain": "acme.example", "verified": true}}})
	now := time.Now()
	certs := []string{
		certExpiringAt(t, "current", now.AddDate(1, 0, 0)),
		certExpiringAt(t, "soon", now.Add(10*24*time.Hour)),
		certExpiringAt(t, "gone", now.Add(-24*time.Hour)),
	}
	var created struct{ ID string }
	e.must(http.StatusCreated, "POST", "/tenants/"+acme.ID+"/connections", map[string]any{"type": "saml", "name": "Okta", "saml": map[string]any{
		"idp_entity_id": "https://idp.acme.example", "idp_sso_url": "https://idp.acme.example/sso", "idp_certificates_pem": certs}}).decode(t, &created)

	var got struct {
		SAML struct {
			IdPCertificates []struct {
				SHA256   string    `json:"sha256"`
				Subject  string    `json:"subject"`
				NotAfter time.Time `json:"not_after"`
				Expiring bool      `json:"expiring"`
				Expired  bool      `json:"expired"`
			} `json:"idp_certificates"`
		} `json:"saml"`
	}
	e.must(http.StatusOK, "GET", "/connections/"+created.ID, nil).decode(t, &got)
	want := map[string][2]bool{"CN=current": {false, false}, "CN=soon": {true, false}, "CN=gone": {true, true}}
	if len(got.SAML.IdPCertificates) != len(want) {
		t.Fatalf("idp_certificates = %+v", got.SAML.IdPCertificates)
	}
	for _, c := range got.SAML.IdPCertificates {
		w, ok := want[c.Subject]
		if !ok || c.Expiring != w[0] || c.Expired != w[1] || c.NotAfter.IsZero() || len(c.SHA256) != 64 {
			t.Errorf("certificate %+v, want expiring=%v expired=%v", c, w[0], w[1])
		}
	}
	// Another tenant's id space does not reach it.
	globex := e.createTenant(map[string]any{"name": "Globex"})
	var list struct{ Data []struct{ ID string } }
	e.must(http.StatusOK, "GET", "/tenants/"+globex.ID+"/connections", nil).decode(t, &list)
	if len(list.Data) != 0 {
		t.Fatalf("globex lists %d connections", len(list.Data))
	}
}
