package connections

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/idbroker/idbroker/store"
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
	conn := e.samlConn(oldKey, func(s *SAMLSettings) {
		s.IdPCertificatesPEM = &PEMList{certPEM(oldKey.cert), certPEM(newKey.cert)}
	})
	cn, err := e.reg.Connector(e.ctx, conn)
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
		{"untrusted key", stranger, true, ErrSignature},
		{"untrusted key, no KeyInfo", stranger, false, ErrSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := respOpts{signAssertion: true, signer: tt.signer, inResponseTo: "id-1", issuedAt: e.clock.Now()}
			if !tt.keyInfo {
				o.mutateXML = stripKeyInfo
			}
			raw := oldKey.response(t, e.issuer, conn, o)
			_, err := sc.finish(e.ctx, raw, e.pend(conn, "id-1", ""))
			wantErr(t, err, tt.want, "")
		})
	}
}

// TestSAMLRolledCertificateRefreshedOnFailure: an IdP that publishes a new
// certificate and signs with it at once (no overlap) costs one failed
// login, not the wait for the periodic refresh: the untrusted signature
// makes the node re-read the metadata URL, at most once per
// MinForcedRefresh.
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
	conn, err := e.reg.CreateConnection(e.ctx, store.ConnectionSAML, "Okta", Settings{SAML: &SAMLSettings{IdPMetadataURL: ptr(md.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	h := e.srv.Config.Handler
	if c := e.acsVia(h, conn, idp, "id-0"); c.err != nil {
		t.Fatal(c.err)
	}

	current.Store(metadataXML(idp.entityID, idp.ssoURL, rolled.cert))
	before := fetches.Load()
	if c := e.acsVia(h, conn, rolled, "id-1"); !errors.Is(c.err, ErrSignature) {
		t.Fatalf("first response with the rolled key: %v", c.err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		c := e.acsVia(h, conn, rolled, "id-retry")
		if c.err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rolled certificate never picked up (%d fetches): %v", fetches.Load()-before, c.err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := fetches.Load() - before; n != 1 {
		t.Fatalf("%d metadata fetches after failed logins, want 1", n)
	}
	// The old key is gone from the metadata, so it is no longer trusted.
	if c := e.acsVia(h, conn, idp, "id-2"); !errors.Is(c.err, ErrSignature) {
		t.Fatalf("retired key: %v", c.err)
	}
	// Junk signatures do not make the broker hammer the IdP...
	for range 3 {
		e.acsVia(h, conn, stranger, "id-3")
	}
	time.Sleep(100 * time.Millisecond)
	if n := fetches.Load() - before; n != 1 {
		t.Fatalf("%d metadata fetches within MinForcedRefresh, want 1", n)
	}
	// ...but after MinForcedRefresh another failure may refresh again.
	e.clock.Add(MinForcedRefresh)
	e.acsVia(h, conn, stranger, "id-4")
	for fetches.Load()-before != 2 {
		if time.Now().After(deadline) {
			t.Fatal("no refresh after MinForcedRefresh")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
