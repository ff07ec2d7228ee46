package saml

import (
	"errors"
	"net/http"
	"net/http/httptest"
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
