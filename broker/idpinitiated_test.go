package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// idpInitiated posts, in browser b, the unsolicited login of conn the
// test IdP would make, landing in landing (the connection's setting) with
// RelayState relay, and returns the broker's answer.
func (n *node) idpInitiated(t *testing.T, b *http.Client, conn, landing, relay string) *http.Response {
	t.Helper()
	q := url.Values{"conn": {conn}, "landing": {landing}, "relay": {relay}}
	resp, err := b.Get(n.URL + "/test-idp?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// lastEvent is the newest event of type typ.
func (n *node) lastEvent(t *testing.T, typ string) map[string]any {
	t.Helper()
	evs, _, err := n.Store.ListEvents(context.Background(), store.Page{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			var data map[string]any
			if err := json.Unmarshal(evs[i].Data, &data); err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
	t.Fatalf("no %s event", typ)
	return nil
}

// TestIdPInitiatedLandsInTheApplication: an unsolicited login (a dashboard
// tile) signs the user in, opens the broker session, and sends the
// browser to the landing application's initiate_login_uri with iss and
// login_hint, never a code. The application's own authorization request
// is then answered from that session without the IdP, for that tenant
// only. Without a usable landing the login fails with a reason that says
// what to set.
func TestIdPInitiatedLandsInTheApplication(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		acme := n.tenant("Acme", "acme.test", alice("acme.test"))
		other := n.tenant("Other", "other.test", alice("other.test"))
		a := n.app(store.Application{InitiateLoginURI: "https://app.example/login?tile=1"})
		a2 := n.app(store.Application{RedirectURIs: []string{"https://app2.example/cb"}, InitiateLoginURI: "https://app2.example/start"})
		plain := n.app(store.Application{})

		b := browser(t)
		begins := n.idp.Begins()
		resp := n.idpInitiated(t, b, acme.ConnID, a.ID, "")
		loc, err := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || err != nil {
			t.Fatalf("unsolicited login answered %d %v, want 303 to the initiate_login_uri", resp.StatusCode, err)
		}
		q := loc.Query()
		if loc.Host != "app.example" || loc.Path != "/login" || q.Get("tile") != "1" || q.Get("iss") != n.URL ||
			q.Get("login_hint") != "alice@acme.test" || q.Has("code") || q.Has("id_token") {
			t.Fatalf("landed at %s", loc)
		}
		ev := n.lastEvent(t, broker.EventAuthSucceeded)
		if ev["idp_initiated"] != true || ev["client_id"] != a.ID || ev["connection_id"] != acme.ConnID {
			t.Fatalf("authentication.succeeded data %v", ev)
		}

		// The application starts an ordinary request (PKCE, nonce, state):
		// answered from the session, the IdP not visited.
		verifier, challenge := pkce()
		for _, hint := range []url.Values{
			{"login_hint": {"alice@acme.test"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}},
			{"login_hint": {"alice@acme.test"}, "connection": {acme.ConnID}, "prompt": {"none"}},
		} {
			c := code(t, a.authorize(t, b, hint))
			var opts []oauth2.AuthCodeOption
			if hint.Has("code_challenge") {
				opts = append(opts, oauth2.VerifierOption(verifier))
			}
			_, claims := a.exchange(t, c, opts...)
			if claims.Email != "alice@acme.test" || claims.TenantID != acme.ID || claims.ConnectionID != acme.ConnID ||
				!strings.HasPrefix(claims.Sub, "usr_") || claims.SID == "" || claims.SID != ev["session_id"] {
				t.Fatalf("claims %+v (event %v)", claims, ev)
			}
			if ev["user_id"] != claims.Sub {
				t.Fatalf("sub %s, the sign-in's user %v", claims.Sub, ev["user_id"])
			}
		}
		if n.idp.Begins() != begins {
			t.Fatal("the application's request went to the IdP")
		}
		// The session is the tenant's: another tenant's request gets no
		// code from it.
		if loc, err := a.authorize(t, b, url.Values{"tenant": {other.ID}, "prompt": {"none"}}).Location(); err != nil ||
			loc.Query().Get("error") != "login_required" {
			t.Fatalf("tenant=%s from acme's session: %v %v, want login_required", other.ID, loc, err)
		}

		// A RelayState naming an application with an initiate_login_uri
		// chooses it; one naming an application without does not.
		resp = n.idpInitiated(t, browser(t), acme.ConnID, a.ID, a2.ID)
		if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Host != "app2.example" {
			t.Fatalf("RelayState %s: %d %v", a2.ID, resp.StatusCode, loc)
		}
		resp = n.idpInitiated(t, browser(t), acme.ConnID, a.ID, plain.ID)
		if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Host != "app.example" {
			t.Fatalf("RelayState %s: %d %v", plain.ID, resp.StatusCode, loc)
		}

		// Without a landing, the failure says what to set; no session.
		for _, tc := range []struct{ landing, want string }{
			{"", "idp_initiated_client_id"},
			{plain.ID, "no initiate_login_uri"},
			{store.NewID(store.PrefixApplication), "no longer exists"},
		} {
			fresh := browser(t)
			resp := n.idpInitiated(t, fresh, acme.ConnID, tc.landing, "")
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("landing %q: %d, want 403", tc.landing, resp.StatusCode)
			}
			ev := n.lastEvent(t, broker.EventAuthFailed)
			if ev["reason_code"] != broker.ReasonNoRequest || !strings.Contains(ev["reason"].(string), tc.want) {
				t.Fatalf("landing %q: failure %v, want %s mentioning %q", tc.landing, ev, broker.ReasonNoRequest, tc.want)
			}
			if loc, err := a.authorize(t, fresh, url.Values{"login_hint": {"alice@acme.test"}, "prompt": {"none"}}).Location(); err != nil ||
				loc.Query().Get("error") != "login_required" {
				t.Fatalf("landing %q: a failed unsolicited login left a session: %v", tc.landing, loc)
			}
		}
	})
}
