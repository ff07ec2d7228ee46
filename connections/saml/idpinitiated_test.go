package saml

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// TestIdPInitiatedLanding: idp_initiated_client_id must name an
// application that has an initiate_login_uri (a field error otherwise, the
// connection unchanged); it is shown, removed by "", and handed to the
// broker with the RelayState for an unsolicited response only.
func TestIdPInitiatedLanding(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			idp := newTestIdP(t, 0)
			bg := context.Background()
			landing, err := e.DB.CreateApplication(bg, store.Application{Name: "CRM", Public: true,
				RedirectURIs: []string{"https://crm.example/cb"}, InitiateLoginURI: "https://crm.example/login"})
			if err != nil {
				t.Fatal(err)
			}
			plain, err := e.DB.CreateApplication(bg, store.Application{Name: "API", Public: true, RedirectURIs: []string{"https://api.example/cb"}})
			if err != nil {
				t.Fatal(err)
			}
			conn := e.samlConn(idp, func(s *Settings) { s.AllowIdPInitiated = ptr(true) })

			for _, tc := range []struct{ id, want string }{
				{store.NewID(store.PrefixApplication), "no application"},
				{"conn_notanapp", "no application"},
				{plain.ID, "no initiate_login_uri"},
			} {
				_, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Settings: Settings{IdPInitiatedClientID: ptr(tc.id)}.Request()}, nil)
				var fe *connections.FieldError
				if !errors.As(err, &fe) || fe.Field != "saml.idp_initiated_client_id" || !strings.Contains(fe.Msg, tc.want) {
					t.Fatalf("landing %s: %v, want a field error of saml.idp_initiated_client_id saying %q", tc.id, err, tc.want)
				}
			}
			if v := e.view(conn); v.IdPInitiatedClientID != "" {
				t.Fatalf("a refused setting was kept: %+v", v)
			}
			conn, err = e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Settings: Settings{IdPInitiatedClientID: ptr(landing.ID)}.Request()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v := e.view(conn); v.IdPInitiatedClientID != landing.ID {
				t.Fatalf("view %+v", v)
			}

			// An unsolicited response hands the landing and the RelayState
			// over; a response to a login this SP started does not.
			resp := e.postACS(conn, idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, issuedAt: e.Clock.Now()}), "tile-relay")
			if got := e.Last(); resp.StatusCode != http.StatusOK || got.Err != nil || got.Res.RequestID != "" ||
				got.Res.IdPInitiatedClientID != landing.ID || got.Res.RelayState != "tile-relay" {
				t.Fatalf("unsolicited: %d %+v", resp.StatusCode, got)
			}
			relay := e.pend(conn, "id-req-1", "broker-req-1")
			resp = e.postACS(conn, idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: "id-req-1", issuedAt: e.Clock.Now()}), relay)
			if got := e.Last(); resp.StatusCode != http.StatusOK || got.Err != nil || got.Res.RequestID != "broker-req-1" ||
				got.Res.IdPInitiatedClientID != "" || got.Res.RelayState != "" {
				t.Fatalf("solicited: %d %+v", resp.StatusCode, got)
			}

			conn, err = e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Settings: Settings{IdPInitiatedClientID: ptr("")}.Request()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v := e.view(conn); v.IdPInitiatedClientID != "" {
				t.Fatalf("\"\" did not remove it: %+v", v)
			}
		})
	}
}

// TestSAMLIdPInitiatedRefusedWithRelayState: a tile click on a connection
// that does not accept IdP-initiated logins is refused as that
// (idp_initiated_not_allowed), also when the IdP adds a RelayState of its
// own (Okta's Default RelayState, Entra's Relay State, a Google Start
// URL); a response to an AuthnRequest whose RelayState is no longer known
// (expired, used) stays a request_mismatch.
func TestSAMLIdPInitiatedRefusedWithRelayState(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	conn := e.samlConn(idp, nil)
	cn, err := e.Reg.Connector(e.Ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	sc := cn.(*samlConnector)
	for _, tt := range []struct {
		name, relay, inResponseTo string
		want                      error
	}{
		{"tile with Okta's Default RelayState", "app_01HZY3", "", connections.ErrIdPInitiated},
		{"tile with a landing URL", "https://app.example.com/home?x=" + strings.Repeat("y", 200), "", connections.ErrIdPInitiated},
		{"tile without RelayState", "", "", connections.ErrIdPInitiated},
		{"answer to a login whose RelayState expired", randomToken(), "id-expired", connections.ErrRequestMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: tt.inResponseTo, issuedAt: e.Clock.Now()})
			_, err := sc.finish(e.Ctx, raw, tt.relay)
			wantErr(t, err, tt.want, "")
		})
	}
}

// TestSAMLAnswerNotPassedOffAsIdPInitiated: on a connection that accepts
// IdP-initiated logins, the answer to an AuthnRequest (InResponseTo set)
// posted without its RelayState, with one that is unknown or spent, is
// refused, not taken for a tile click: otherwise an attacker's own answer,
// posted from a victim's browser without the RelayState that ties it to the
// attacker's browser, would open the attacker's session there.
func TestSAMLAnswerNotPassedOffAsIdPInitiated(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	bg := context.Background()
	landing, err := e.DB.CreateApplication(bg, store.Application{Name: "CRM", Public: true,
		RedirectURIs: []string{"https://crm.example/cb"}, InitiateLoginURI: "https://crm.example/login"})
	if err != nil {
		t.Fatal(err)
	}
	conn := e.samlConn(idp, func(s *Settings) {
		s.AllowIdPInitiated, s.IdPInitiatedClientID = ptr(true), ptr(landing.ID)
	})
	cn, err := e.Reg.Connector(e.Ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	sc := cn.(*samlConnector)
	spent := e.pend(conn, "id-req-spent", "broker-req-spent")
	if _, err := e.Once.Take(bg, pendingKey(spent)); err != nil {
		t.Fatal(err)
	}
	// The Response around a signed assertion is not signed: its
	// InResponseTo can be cut, the assertion's own cannot.
	cut := func(doc *etree.Document) { doc.Root().RemoveAttr("InResponseTo") }
	for _, tt := range []struct {
		name, relay string
		mutateXML   func(*etree.Document)
	}{
		{"no RelayState", "", nil},
		{"an unknown RelayState", randomToken(), nil},
		{"a spent RelayState", spent, nil},
		{"a landing application's client_id", landing.ID, nil},
		{"no RelayState, the Response's InResponseTo cut", "", cut},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: "id-req-attacker", issuedAt: e.Clock.Now(), mutateXML: tt.mutateXML})
			if tt.mutateXML != nil && strings.Contains(string(raw[:200]), "InResponseTo") {
				t.Fatalf("the Response still says InResponseTo: %s", raw[:200])
			}
			res, err := sc.finish(e.Ctx, raw, tt.relay)
			if err == nil || res.Profile.IdPSubject != "" {
				t.Fatalf("an answer to an AuthnRequest was taken for an IdP-initiated login: %+v", res)
			}
		})
	}
}
