package broker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// TestAuthorizationResponsesCarryIss: discovery says authorization
// responses carry iss (RFC 9207), and every one does: a code in the query
// (the registered redirect_uri's own query kept) and posted, and the
// broker's own error after the login step. The errors of the request
// itself are TestBadClientAndRedirect's.
func TestAuthorizationResponsesCarryIss(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{RedirectURIs: []string{"https://app.example/cb?tenant=acme"}})
	a.Redirect = "https://app.example/cb?tenant=acme"

	resp, err := http.Get(n.URL + broker.PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if d["authorization_response_iss_parameter_supported"] != true {
		t.Fatalf("discovery: authorization_response_iss_parameter_supported = %v", d["authorization_response_iss_parameter_supported"])
	}

	loc, err := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}).Location()
	if err != nil {
		t.Fatal(err)
	}
	if q := loc.Query(); q.Get("iss") != n.URL || q.Get("code") == "" || q.Get("state") != "st8" || q.Get("tenant") != "acme" {
		t.Fatalf("code response %v: want code, state, iss %s and the redirect_uri's own tenant=acme", loc, n.URL)
	}

	posted := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}, "response_mode": {"form_post"}})
	body, _ := io.ReadAll(posted.Body)
	posted.Body.Close()
	checkFormPost(t, posted.Header, string(body), strings.ReplaceAll(a.Redirect, "&", "&amp;"), "code", "state", "iss")
	if !strings.Contains(string(body), `name="iss" value="`+n.URL+`"`) {
		t.Fatalf("posted code lacks iss %s: %s", n.URL, body)
	}

	loc, err = a.authorize(t, browser(t), url.Values{"prompt": {"none"}}).Location()
	if err != nil || loc.Query().Get("error") != "login_required" || loc.Query().Get("iss") != n.URL {
		t.Fatalf("login_required: %v %v, want iss %s", loc, err, n.URL)
	}
}
