package saml

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/idbroker/idbroker/connections"
)

// stripKeyInfo removes the certificate an IdP may put in its signature
// (KeyInfo is outside what the signature covers), as IdPs that sign
// without naming their key do.
func stripKeyInfo(d *etree.Document) {
	for _, sig := range d.FindElements("//Signature") {
		for _, ki := range sig.SelectElements("KeyInfo") {
			sig.RemoveChild(ki)
		}
	}
}

// TestSAMLSeveralCertificates: during a rollover the connection trusts
// the old and the new certificate at once, whether or not the IdP names
// its key in the signature, and still no other.
func TestSAMLSeveralCertificates(t *testing.T) {
	e := newEnv(t, envOpts{})
	oldKey, newKey, stranger := newTestIdP(t, 0), newTestIdP(t, 1), newTestIdP(t, 2)
	conn := e.samlConn(oldKey, func(s *Settings) {
		s.IdPCertificatesPEM = &PEMList{certPEM(oldKey.cert), certPEM(newKey.cert)}
	})
	cn, err := e.Reg.Connector(e.Ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	sc := cn.(*samlConnector)
	for _, tt := range []struct {
		name    string
		signer  *testIdP
		keyInfo bool
		want    error
	}{
		{"old certificate", oldKey, true, nil},
		{"new certificate", newKey, true, nil},
		{"old certificate, no KeyInfo", oldKey, false, nil},
		{"new certificate, no KeyInfo", newKey, false, nil},
		{"untrusted key", stranger, true, connections.ErrSignature},
		{"untrusted key, no KeyInfo", stranger, false, connections.ErrSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := respOpts{signAssertion: true, signer: tt.signer, inResponseTo: "id-1", issuedAt: e.Clock.Now()}
			if !tt.keyInfo {
				o.mutateXML = stripKeyInfo
			}
			raw := oldKey.response(t, e.Issuer, conn, o)
			_, err := sc.finish(e.Ctx, raw, e.pend(conn, "id-1", ""))
			wantErr(t, err, tt.want, "")
		})
	}
}

// TestSAMLRolledCertificateRefreshedOnFailure: an IdP that publishes a new
// certificate and signs with it at once (no overlap) costs one failed
// login, not the wait for the periodic refresh: the untrusted signature
// makes the node re-read the metadata URL, at most once per
// connections.MinForcedRefresh.
func TestSAMLRolledCertificateRefreshedOnFailure(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp, rolled, stranger := newTestIdP(t, 0), newTestIdP(t, 1), newTestIdP(t, 2)
	rolled.entityID, stranger.entityID = idp.entityID, idp.entityID
	var current atomic.Value
	current.Store(metadataXML(idp.entityID, idp.ssoURL, idp.cert))
	var fetches atomic.Int32
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write([]byte(current.Load().(string)))
	}))
	defer md.Close()
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Okta", Settings{IdPMetadataURL: ptr(md.URL)}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := e.Srv.Config.Handler
	if c := e.acsVia(h, conn, idp, "id-0"); c.Err != nil {
		t.Fatal(c.Err)
	}

	current.Store(metadataXML(idp.entityID, idp.ssoURL, rolled.cert))
	before := fetches.Load()
	if c := e.acsVia(h, conn, rolled, "id-1"); !errors.Is(c.Err, connections.ErrSignature) {
		t.Fatalf("first response with the rolled key: %v", c.Err)
	}
	// Generous deadlines: the refresh runs in the background, and a
	// loaded machine can hold it back for seconds.
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		c := e.acsVia(h, conn, rolled, "id-retry")
		if c.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rolled certificate never picked up (%d fetches): %v", fetches.Load()-before, c.Err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := fetches.Load() - before; n != 1 {
		t.Fatalf("%d metadata fetches after failed logins, want 1", n)
	}
	// The old key is gone from the metadata, so it is no longer trusted.
	if c := e.acsVia(h, conn, idp, "id-2"); !errors.Is(c.Err, connections.ErrSignature) {
		t.Fatalf("retired key: %v", c.Err)
	}
	// Junk signatures do not make the broker hammer the IdP...
	for range 3 {
		e.acsVia(h, conn, stranger, "id-3")
	}
	time.Sleep(100 * time.Millisecond)
	if n := fetches.Load() - before; n != 1 {
		t.Fatalf("%d metadata fetches within connections.MinForcedRefresh, want 1", n)
	}
	// ...but after connections.MinForcedRefresh another failure may refresh again.
	e.Clock.Add(connections.MinForcedRefresh)
	e.acsVia(h, conn, stranger, "id-4")
	deadline = time.Now().Add(time.Minute)
	for fetches.Load()-before != 2 {
		if time.Now().After(deadline) {
			t.Fatal("no refresh after connections.MinForcedRefresh")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSAMLMetadataKeyUse: of the IdP metadata's keys, those for signing or
// of unstated use are trusted for signatures; an encryption key is not,
// even when it is the IdP's own.
func TestSAMLMetadataKeyUse(t *testing.T) {
	e := newEnv(t, envOpts{})
	unstated, encryption := newTestIdP(t, 0), newTestIdP(t, 1)
	md := metadataXML(unstated.entityID, unstated.ssoURL, unstated.cert, encryption.cert)
	md = strings.Replace(md, `<md:KeyDescriptor use="signing">`, `<md:KeyDescriptor>`, 1)
	md = strings.Replace(md, `<md:KeyDescriptor use="signing">`, `<md:KeyDescriptor use="encryption">`, 1)
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Key use", Settings{IdPMetadataXML: &md}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := e.Reg.Connector(e.Ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		signer *testIdP
		want   error
	}{
		{"key of unstated use", unstated, nil},
		{"encryption key", encryption, connections.ErrSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := unstated.response(t, e.Issuer, conn, respOpts{signAssertion: true, signer: tt.signer, inResponseTo: "id-1", issuedAt: e.Clock.Now()})
			_, err := cn.(*samlConnector).finish(e.Ctx, raw, e.pend(conn, "id-1", ""))
			wantErr(t, err, tt.want, "")
		})
	}
}

// TestSAMLCertificateCount: a connection trusts at most ten IdP
// certificates, ten included.
func TestSAMLCertificateCount(t *testing.T) {
	var pems []string
	for i := range 11 {
		pems = append(pems, certPEM(selfSigned(t, testKey(0), fmt.Sprintf("idp-%d.example.net", i), time.Now().AddDate(1, 0, 0))))
	}
	for _, tt := range []struct {
		n    int
		want error
	}{{10, nil}, {11, connections.ErrConfig}} {
		certs, err := parseCertificates(strings.Join(pems[:tt.n], "\n"))
		wantErr(t, err, tt.want, "")
		if tt.want == nil && len(certs) != tt.n {
			t.Fatalf("%d certificates read of %d", len(certs), tt.n)
		}
	}
}

// TestSAMLOwnCertificateValidNow: the SP certificate a connection makes for
// itself is valid from before it is made, so an IdP that checks it does
// not refuse the SP's first requests.
func TestSAMLOwnCertificateValidNow(t *testing.T) {
	e := newEnv(t, envOpts{})
	conn := e.samlConn(newTestIdP(t, 0), nil)
	cfg, err := DecodeConfig(conn.Config)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(cfg.SPCertificatePEM))
	if b == nil {
		t.Fatal("no SP certificate")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if now := e.Clock.Now(); cert.NotBefore.After(now) || !cert.NotAfter.After(now.AddDate(5, 0, 0)) {
		t.Fatalf("SP certificate valid %s to %s, now %s", cert.NotBefore, cert.NotAfter, now)
	}
}
