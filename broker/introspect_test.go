package broker_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// introspectWith asks n about token with the given call (credentials and
// encoding chosen by the caller) and returns the decoded answer.
func introspectWith(t *testing.T, n *node, c oauthCall) map[string]any {
	t.Helper()
	c.method, c.path, c.contentType = "POST", broker.PathIntrospect, "application/x-www-form-urlencoded"
	status, _, body := c.do(t, n.URL)
	if status != 200 {
		t.Fatalf("introspect: status %d: %v", status, body)
	}
	return body
}

// TestIntrospectClientAuth: client_secret_basic (credentials form-encoded
// inside the header, RFC 6749 §2.3.1) and client_secret_post both work.
func TestIntrospectClientAuth(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	tok := a.login(t)
	form := url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}
	for name, c := range map[string]oauthCall{
		"basic":                        {body: form.Encode(), basicID: a.ID, basicSecret: a.Secret},
		"basic encoded":                {body: form.Encode(), rawAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(a.ID)+":"+strings.ReplaceAll(a.Secret, "_", "%5F")))},
		"post":                         {body: form.Encode() + "&client_id=" + a.ID + "&client_secret=" + url.QueryEscape(a.Secret)},
		"basic and the same client_id": {body: form.Encode() + "&client_id=" + a.ID, basicID: a.ID, basicSecret: a.Secret},
	} {
		t.Run(name, func(t *testing.T) {
			if in := introspectWith(t, n, c); in["active"] != true || in["sub"] != tok.Sub {
				t.Fatalf("%v", in)
			}
		})
	}
}

// TestIntrospectAnotherApplicationsAccessToken: a resource server may
// introspect, with its own application's credentials, an access token
// issued to another application (a public one has no secret to introspect
// with), and learns whose it is; a refresh token stays its own client's.
func TestIntrospectAnotherApplicationsAccessToken(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	rs := n.app(store.Application{})
	tok := a.login(t)
	in := introspectWith(t, n, oauthCall{body: url.Values{"token": {tok.AccessToken}}.Encode(), basicID: rs.ID, basicSecret: rs.Secret})
	if in["active"] != true || in["client_id"] != a.ID || in["token_type"] != "Bearer" {
		t.Fatalf("another application's access token: %v, want active, client_id %s, token_type Bearer", in, a.ID)
	}
	in = introspectWith(t, n, oauthCall{body: url.Values{"token": {tok.RefreshToken}}.Encode(), basicID: rs.ID, basicSecret: rs.Secret})
	if in["active"] != false {
		t.Fatalf("another application's refresh token: %v, want inactive", in)
	}
}

// TestIntrospectRefreshToken: a refresh token is active while unspent and
// its family and session live, for the client it was issued to only.
func TestIntrospectRefreshToken(t *testing.T) {
	n := sqliteNode(t)
	tn := n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	other := n.app(store.Application{})
	tok := a.login(t)
	ask := func(as *app, token string) map[string]any {
		return introspectWith(t, n, oauthCall{body: "token=" + token + "&token_type_hint=refresh_token", basicID: as.ID, basicSecret: as.Secret})
	}
	in := ask(a, tok.RefreshToken)
	now := time.Now().Unix()
	exp, _ := in["exp"].(float64)
	iat, _ := in["iat"].(float64)
	if in["active"] != true || in["sub"] != tok.Sub || in["client_id"] != a.ID || in["sid"] != tok.SID ||
		in["tenant_id"] != tn.ID || in["token_type"] != "refresh_token" || !strings.Contains(in["scope"].(string), "offline_access") ||
		int64(exp) <= now || int64(iat) > now || int64(iat) < now-60 {
		t.Fatalf("refresh token: %v", in)
	}
	// Introspection does not spend it.
	if in := ask(a, tok.RefreshToken); in["active"] != true {
		t.Fatalf("second introspection: %v", in)
	}
	// Another client learns nothing.
	if in := ask(other, tok.RefreshToken); in["active"] != false || len(in) != 1 {
		t.Fatalf("other client: %v", in)
	}

	refresh := func(rt string) (*oauth2.Token, error) {
		return a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
	}
	t1, err := refresh(tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if in := ask(a, tok.RefreshToken); in["active"] != false {
		t.Fatalf("spent token: %v", in)
	}
	if in := ask(a, t1.RefreshToken); in["active"] != true {
		t.Fatalf("rotated token: %v", in)
	}
	// Reuse of the spent token kills the family.
	if _, err := refresh(tok.RefreshToken); err == nil {
		t.Fatal("spent refresh token accepted")
	}
	if in := ask(a, t1.RefreshToken); in["active"] != false {
		t.Fatalf("token of a revoked family: %v", in)
	}

	// Ending the session ends its refresh tokens.
	tok2 := a.login(t)
	if in := ask(a, tok2.RefreshToken); in["active"] != true {
		t.Fatalf("fresh token: %v", in)
	}
	if err := n.Sess.Revoke(context.Background(), tok2.SID); err != nil {
		t.Fatal(err)
	}
	if in := ask(a, tok2.RefreshToken); in["active"] != false {
		t.Fatalf("token of an ended session: %v", in)
	}
	if in := ask(a, "idbr_"+strings.Repeat("x", 43)); in["active"] != false {
		t.Fatalf("made-up refresh token: %v", in)
	}
}

// TestIntrospectCrossTenant: ending every session of one tenant makes its
// tokens inactive and leaves another tenant's alone.
func TestIntrospectCrossTenant(t *testing.T) {
	n := sqliteNode(t)
	ta := n.tenant("A", "a.test", alice("a.test"))
	n.tenant("B", "b.test", alice("b.test"))
	a := n.app(store.Application{})
	login := func(domain string) *tokenPair {
		tok, c := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@" + domain}})))
		return &tokenPair{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Sub: c.Sub, SID: c.SID}
	}
	tokA, tokB := login("a.test"), login("b.test")
	if _, err := n.Sess.RevokeTenant(context.Background(), ta.ID); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		token  string
		active bool
	}{{tokA.AccessToken, false}, {tokA.RefreshToken, false}, {tokB.AccessToken, true}, {tokB.RefreshToken, true}} {
		if in := a.introspect(t, n, tt.token); in["active"] != tt.active {
			t.Errorf("active = %v, want %v", in["active"], tt.active)
		}
	}
}

// TestIntrospectAnswerIsJSON: the hand-written encoder escapes what
// encoding/json would.
func TestIntrospectAnswerIsJSON(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	tok := a.login(t)
	req, _ := http.NewRequest("POST", n.URL+broker.PathIntrospect, strings.NewReader("token="+tok.AccessToken))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	req.SetBasicAuth(a.ID, a.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
}

// TestTwoNodesRefreshIntrospection: on PostgreSQL and Redis, one node sees
// the refresh tokens another issued, rotated and revoked, at once.
func TestTwoNodesRefreshIntrospection(t *testing.T) {
	pgURL := storetest.PostgresURL(t)
	cipher := storetest.NewCipher(t)
	st1 := storetest.Open(t, pgURL, cipher)
	if err := st1.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	st2 := storetest.Open(t, pgURL, cipher)
	rdb := sessionstest.Redis(t)
	prefix := sessionstest.Prefix(t, rdb)
	r1 := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
	r2 := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
	n1 := newNode(t, st1, r1, r1)
	n2 := newNodeIssuer(t, st2, r2, r2, n1.URL)
	n1.tenant("Acme", "acme.test", alice("acme.test"))
	a := n1.app(store.Application{})
	tok := a.login(t)

	if in := a.introspect(t, n2, tok.RefreshToken); in["active"] != true || in["sid"] != tok.SID {
		t.Fatalf("node 2, fresh refresh token: %v", in)
	}
	t1, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if in := a.introspect(t, n2, tok.RefreshToken); in["active"] != false {
		t.Fatalf("node 2, spent refresh token: %v", in)
	}
	if in := a.introspect(t, n2, t1.RefreshToken); in["active"] != true {
		t.Fatalf("node 2, rotated refresh token: %v", in)
	}
	revoke := oauthCall{"POST", broker.PathRevoke, "application/x-www-form-urlencoded", "token=" + t1.RefreshToken, a.ID, a.Secret, ""}
	if status, _, body := revoke.do(t, n1.URL); status != 200 {
		t.Fatalf("revoke on node 1: %d %v", status, body)
	}
	if in := a.introspect(t, n2, t1.RefreshToken); in["active"] != false {
		t.Fatalf("node 2, revoked refresh token: %v", in)
	}
}
