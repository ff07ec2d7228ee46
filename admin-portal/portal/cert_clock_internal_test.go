package portal

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestPastedCertificateAndClocks: a certificate pasted in the SSO wizard
// whose validity starts a little after our clock's now (an IdP whose
// clock is ahead made it moments ago) is taken, as a response from that
// IdP is, within the largest clock skew a connection allows. Before, it
// was refused as "not valid until 7 December 2026" on 7 December 2026.
// Further ahead, or expired, it is refused with the time and the
// difference, not a bare date.
func TestPastedCertificateAndClocks(t *testing.T) {
	h := newHarness(t)
	now := h.clock()
	for _, tc := range []struct {
		name                string
		notBefore, notAfter time.Duration // from now
		want                []string      // in the message; none: accepted
	}{
		{"valid", -time.Hour, 365 * 24 * time.Hour, nil},
		{"made a second from now", time.Second, 365 * 24 * time.Hour, nil},
		{"made two minutes from now", 2 * time.Minute, 365 * 24 * time.Hour, nil},
		{"valid from in ten minutes", 10 * time.Minute, 365 * 24 * time.Hour,
			[]string{now.Add(10 * time.Minute).UTC().Format("15:04"), "UTC", "10 minutes"}},
		{"valid from in ten days", 10 * 24 * time.Hour, 365 * 24 * time.Hour,
			[]string{now.Add(10 * 24 * time.Hour).UTC().Format("2 January 2006")}},
		{"expired", -48 * time.Hour, -24 * time.Hour, []string{"expired", now.Add(-24 * time.Hour).UTC().Format("2 January 2006")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.portal.checkCertificatePEM(certPEMValid(t, now.Add(tc.notBefore), now.Add(tc.notAfter)))
			if len(tc.want) == 0 {
				if got != "" {
					t.Fatalf("refused: %s", got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("message %q does not say %q", got, w)
				}
			}
		})
	}
}

func certPEMValid(t *testing.T, notBefore, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.example"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
