package saml

import (
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/connections"
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
	_, err = sc.finish(e.Ctx, answered, "")
	wantErr(t, err, connections.ErrRequestMismatch, "already used")
}
