package broker_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// revokeAs posts token to the revocation endpoint as application a and
// returns the status and the error code (empty on success).
func revokeAs(t *testing.T, n *node, a *app, token string) (int, string) {
	t.Helper()
	st, _, body := oauthCall{"POST", broker.PathRevoke, "application/x-www-form-urlencoded",
		url.Values{"token": {token}}.Encode(), a.ID, a.Secret, ""}.do(t, n.URL)
	code, _ := body["error"].(string)
	return st, code
}

// refreshErr refreshes rt as a and returns the OAuth error code ("" when
// it worked) and the new tokens.
func refreshErr(t *testing.T, a *app, rt string) (string, *oauth2.Token) {
	t.Helper()
	tok, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
	if err == nil {
		return "", tok
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("refresh: %v", err)
	}
	return re.ErrorCode, nil
}

// assertAlive: access token active at introspection and at UserInfo.
func assertAlive(t *testing.T, n *node, a *app, what, token string) {
	t.Helper()
	if in := a.introspect(t, n, token); in["active"] != true {
		t.Errorf("%s: introspection %v, want active", what, in)
	}
	if st := userinfoStatus(t, n, token); st != http.StatusOK {
		t.Errorf("%s: userinfo %d, want 200", what, st)
	}
}

// assertDead: access token inactive at introspection, 401 at UserInfo.
func assertDead(t *testing.T, n *node, a *app, what, token string) {
	t.Helper()
	if in := a.introspect(t, n, token); in["active"] != false || len(in) != 1 {
		t.Errorf("%s: introspection %v, want only active:false", what, in)
	}
	if st := userinfoStatus(t, n, token); st != http.StatusUnauthorized {
		t.Errorf("%s: userinfo %d, want 401", what, st)
	}
}

// noLogout fails if a back-channel logout arrives within wait.
func noLogout(t *testing.T, got chan string, wait time.Duration) {
	t.Helper()
	select {
	case <-got:
		t.Error("a back-channel logout was sent; revoking a token ends no session")
	case <-time.After(wait):
	}
}

// TestRevocation (RFC 7009): revoking either kind of token of application
// B ends B's grant in the broker session, and nothing else. Every access
// token of B in the session is inactive (introspection and UserInfo), its
// refresh tokens answer invalid_grant; application A, signed in through
// the same session, keeps working tokens and a working refresh; nobody
// gets a back-channel logout; the SSO cookie signs B in again at once,
// with working tokens, though that is within the second of the
// revocation (tokens carry whole seconds). Another application cannot
// revoke B's tokens.
func TestRevocation(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		rcv, logouts := bclReceiver(t)
		a := n.app(store.Application{BackchannelLogoutURI: rcv.URL})
		b := n.app(store.Application{BackchannelLogoutURI: rcv.URL})
		br := browser(t)
		tokA, cA := a.exchange(t, code(t, a.authorize(t, br, url.Values{"login_hint": {"alice@acme.test"}})))
		begins := n.idp.Begins()
		tokB, cB := b.exchange(t, code(t, b.authorize(t, br, nil))) // SSO
		tokB2, _ := b.exchange(t, code(t, b.authorize(t, br, nil))) // a second grant of B in the session
		if cA.SID != cB.SID || n.idp.Begins() != begins {
			t.Fatalf("B did not sign in through A's session: %s vs %s", cA.SID, cB.SID)
		}

		// Another application's tokens are not A's to revoke: refused, and
		// they live on.
		for _, tok := range []string{tokB.AccessToken, tokB.RefreshToken} {
			if st, code := revokeAs(t, n, a, tok); st != 400 || code != "unauthorized_client" {
				t.Fatalf("A revoking B's token = %d %s, want 400 unauthorized_client", st, code)
			}
		}
		assertAlive(t, n, b, "B's token after A tried to revoke it", tokB.AccessToken)

		if st, code := revokeAs(t, n, b, tokB.AccessToken); st != 200 {
			t.Fatalf("revoke B's access token = %d %s", st, code)
		}
		revoked := time.Now()
		assertDead(t, n, b, "B's revoked access token", tokB.AccessToken)
		assertDead(t, n, b, "B's other access token in the session", tokB2.AccessToken)
		for _, rt := range []string{tokB.RefreshToken, tokB2.RefreshToken} {
			if in := b.introspect(t, n, rt); in["active"] != false {
				t.Errorf("B's refresh token after the revocation: introspection %v", in)
			}
			if code, _ := refreshErr(t, b, rt); code != "invalid_grant" {
				t.Errorf("B's refresh after the revocation = %q, want invalid_grant", code)
			}
		}
		// A is untouched.
		assertAlive(t, n, a, "A's access token", tokA.AccessToken)
		errCode, fresh := refreshErr(t, a, tokA.RefreshToken)
		if errCode != "" {
			t.Fatalf("A's refresh after B's revocation = %s", errCode)
		}
		assertAlive(t, n, a, "A's refreshed access token", fresh.AccessToken)

		// B signs in again through the SSO cookie: no IdP, working tokens,
		// though still (most likely) within the revocation's second.
		tokB3, cB3 := b.exchange(t, code(t, b.authorize(t, br, url.Values{"prompt": {"none"}})))
		if cB3.SID != cB.SID || n.idp.Begins() != begins {
			t.Fatalf("B's sign-in again did not go through the SSO session")
		}
		t.Logf("signed in again %v after the revocation", time.Since(revoked))
		assertAlive(t, n, b, "B's access token after signing in again", tokB3.AccessToken)
		errCode, again := refreshErr(t, b, tokB3.RefreshToken)
		if errCode != "" {
			t.Fatalf("B's refresh after signing in again = %s", errCode)
		}
		assertAlive(t, n, b, "B's refreshed access token", again.AccessToken)
		assertDead(t, n, b, "B's revoked access token, after B signed in again", tokB.AccessToken)

		// Revoking B's refresh token ends that grant: the access tokens
		// minted with it die too. A still lives.
		if st, code := revokeAs(t, n, b, again.RefreshToken); st != 200 {
			t.Fatalf("revoke B's refresh token = %d %s", st, code)
		}
		assertDead(t, n, b, "B's access token after its refresh token's revocation", again.AccessToken)
		assertDead(t, n, b, "B's earlier access token of the grant", tokB3.AccessToken)
		if code, _ := refreshErr(t, b, again.RefreshToken); code != "invalid_grant" {
			t.Errorf("B's revoked refresh token = %q, want invalid_grant", code)
		}
		assertAlive(t, n, a, "A's access token after B's refresh token's revocation", fresh.AccessToken)

		// Revoked once is enough: again, and garbage, are 200.
		for _, tok := range []string{tokB.AccessToken, again.RefreshToken, "garbage"} {
			if st, code := revokeAs(t, n, b, tok); st != 200 {
				t.Errorf("revoke again = %d %s, want 200", st, code)
			}
		}
		noLogout(t, logouts, 2*time.Second)
	})
}

// TestRevocationCrossTenant: B's revocation of one tenant's user's token
// leaves B's tokens of the same user ID's session in another tenant (and
// that session) alone, and an application cannot revoke tokens issued to
// another in another tenant.
func TestRevocationCrossTenant(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		n.tenant("Globex", "globex.test", alice("globex.test"))
		a := n.app(store.Application{})
		b := n.app(store.Application{})
		acme, _ := b.exchange(t, code(t, b.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
		globex, _ := b.exchange(t, code(t, b.authorize(t, browser(t), url.Values{"login_hint": {"alice@globex.test"}})))
		globexA, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@globex.test"}})))

		if st, code := revokeAs(t, n, a, acme.AccessToken); st != 400 || code != "unauthorized_client" {
			t.Fatalf("A revoking B's Acme token = %d %s, want 400 unauthorized_client", st, code)
		}
		if st, code := revokeAs(t, n, b, acme.AccessToken); st != 200 {
			t.Fatalf("revoke = %d %s", st, code)
		}
		assertDead(t, n, b, "B's revoked Acme token", acme.AccessToken)
		assertAlive(t, n, b, "B's Globex token", globex.AccessToken)
		assertAlive(t, n, a, "A's Globex token", globexA.AccessToken)
		if code, _ := refreshErr(t, b, globex.RefreshToken); code != "" {
			t.Errorf("B's Globex refresh = %s, want it to work", code)
		}
		if in := a.introspect(t, n, acme.AccessToken); in["active"] != false {
			t.Errorf("another application introspecting the revoked token: %v", in)
		}
	})
}

// TestRevokedCodeCannotBeRedeemed: a code issued before its application's
// grant was revoked is refused with invalid_grant; one issued after works.
func TestRevokedCodeCannotBeRedeemed(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		b := n.app(store.Application{})
		br := browser(t)
		tok, _ := b.exchange(t, code(t, b.authorize(t, br, url.Values{"login_hint": {"alice@acme.test"}})))
		pending := code(t, b.authorize(t, br, nil))
		if st, code := revokeAs(t, n, b, tok.AccessToken); st != 200 {
			t.Fatalf("revoke = %d %s", st, code)
		}
		_, err := b.Conf.Exchange(context.Background(), pending)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || !strings.Contains(re.ErrorDescription, "revoked") {
			t.Fatalf("code issued before the revocation: %v, want invalid_grant", err)
		}
		fresh, _ := b.exchange(t, code(t, b.authorize(t, br, nil)))
		assertAlive(t, n, b, "a code's tokens issued after the revocation", fresh.AccessToken)
	})
}

// TestSignInAgainInTheRevocationsSecond: tokens carry iat in whole
// seconds, and a token of the revocation's second counts as revoked. The
// clock is set just past the start of a second before the revocation, so
// that the application signing the user in again at once does so in the
// same second: the broker waits that second out before issuing the code,
// and the new tokens (iat the next second) work, while the revoked ones
// stay dead.
func TestSignInAgainInTheRevocationsSecond(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	mem := sessions.NewMemory()
	n := newNodeServer(t, storetest.SQLite(t), mem, mem, "", httpserver.Config{}, func(c *broker.Config) { c.Now = clock })
	n.tenant("Acme", "acme.test", alice("acme.test"))
	b := n.app(store.Application{})
	br := browser(t)
	old, _ := b.exchange(t, code(t, b.authorize(t, br, url.Values{"login_hint": {"alice@acme.test"}})))

	now := clock()
	offset.Add(int64(time.Unix(now.Unix()+1, 0).Add(20 * time.Millisecond).Sub(now)))
	second := clock().Unix()
	if st, code := revokeAs(t, n, b, old.AccessToken); st != 200 {
		t.Fatalf("revoke = %d %s", st, code)
	}
	fresh, _ := b.exchange(t, code(t, b.authorize(t, br, url.Values{"prompt": {"none"}})))
	in := b.introspect(t, n, fresh.AccessToken)
	if in["active"] != true {
		t.Fatalf("tokens of a sign-in right after the revocation: %v, want active", in)
	}
	if iat, _ := in["iat"].(float64); int64(iat) <= second {
		t.Errorf("new token's iat %d, want after the revocation's second %d", int64(iat), second)
	}
	if code, _ := refreshErr(t, b, fresh.RefreshToken); code != "" {
		t.Errorf("refresh of the new grant = %s", code)
	}
	assertDead(t, n, b, "the revoked token", old.AccessToken)
	if code, _ := refreshErr(t, b, old.RefreshToken); code != "invalid_grant" {
		t.Errorf("refresh of the revoked grant = %q, want invalid_grant", code)
	}
}
