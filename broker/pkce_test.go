package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// backends are the two deployments the OAuth rules must hold on, for
// the flow tables: the embedded default and PostgreSQL + Redis.
var backends = []struct {
	name string
	node func(t *testing.T) *node
}{
	{"sqlite+memory", func(t *testing.T) *node { return sqliteNode(t) }},
	{"postgres+redis", func(t *testing.T) *node {
		r := sessionstest.NewRedis(t)
		return newNode(t, storetest.Postgres(t), r, r)
	}},
}

// onBackends runs fn once per backend, each with a node of its own.
func onBackends(t *testing.T, fn func(t *testing.T, n *node)) {
	t.Helper()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { fn(t, be.node(t)) })
	}
}

// TestPKCERules: a code bound to a challenge is redeemed only with its
// verifier; a verifier for a code issued without a challenge is refused
// (it proves nothing, and accepting it would hide a client bug); plain is
// never accepted. Each refused redemption spends the code.
func TestPKCERules(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			n := be.node(t)
			n.tenant("Acme", "acme.test", alice("acme.test"))
			conf := n.app(store.Application{})
			pub := n.app(store.Application{Public: true})
			hint := "alice@acme.test"
			verifier, challenge := pkce()
			other, _ := pkce()
			withChallenge := url.Values{"login_hint": {hint}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			plain := url.Values{"login_hint": {hint}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}}

			for _, tc := range []struct {
				name      string
				app       *app
				authorize url.Values
				opts      []oauth2.AuthCodeOption
			}{
				{"confidential, challenge, no verifier", conf, withChallenge, nil},
				{"confidential, challenge, wrong verifier", conf, withChallenge, []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier + "x")}},
				{"confidential, no challenge, verifier", conf, url.Values{"login_hint": {hint}}, []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}},
				{"public, challenge, no verifier", pub, withChallenge, nil},
				{"public, challenge, wrong verifier", pub, withChallenge, []oauth2.AuthCodeOption{oauth2.VerifierOption(other)}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c := code(t, tc.app.authorize(t, browser(t), tc.authorize))
					_, err := tc.app.Conf.Exchange(context.Background(), c, tc.opts...)
					var re *oauth2.RetrieveError
					// RFC 7636 §4.6 asks for invalid_grant on a mismatch; a
					// verifier missing or unexpected is a malformed request.
					if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" && re.ErrorCode != "invalid_request" {
						t.Fatalf("redeemed, or not an OAuth error: %v", err)
					}
					// The refused attempt spent the code: not even the right
					// verifier redeems it now.
					if _, err := tc.app.Conf.Exchange(context.Background(), c, oauth2.VerifierOption(verifier)); err == nil {
						t.Fatal("code redeemed after a refused attempt")
					}
				})
			}

			// RFC 7636 §4.1: a verifier is 43 to 128 unreserved characters;
			// one of another form is refused even when its hash is the
			// challenge, and spends the code like any refused verifier.
			t.Run("a verifier of the wrong form is refused", func(t *testing.T) {
				for _, v := range []string{strings.Repeat("a", 42), strings.Repeat("a", 129), strings.Repeat("a+/=", 11),
					strings.Repeat("a ", 22), strings.Repeat("é", 22)} {
					sum := sha256.Sum256([]byte(v))
					ch := base64.RawURLEncoding.EncodeToString(sum[:])
					c := code(t, pub.authorize(t, browser(t), url.Values{"login_hint": {hint}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}))
					_, err := pub.Conf.Exchange(context.Background(), c, oauth2.VerifierOption(v))
					var re *oauth2.RetrieveError
					if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
						t.Fatalf("verifier %q (%d bytes): %v, want invalid_grant", v, len(v), err)
					}
				}
				for _, v := range []string{strings.Repeat("a", 43), strings.Repeat("a", 128), strings.Repeat("~._-", 11)} {
					sum := sha256.Sum256([]byte(v))
					ch := base64.RawURLEncoding.EncodeToString(sum[:])
					c := code(t, pub.authorize(t, browser(t), url.Values{"login_hint": {hint}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}))
					pub.exchange(t, c, oauth2.VerifierOption(v))
				}
			})
			t.Run("plain is refused at authorize", func(t *testing.T) {
				for _, a := range []*app{conf, pub} {
					loc, err := a.authorize(t, browser(t), plain).Location()
					if err != nil || loc.Query().Get("error") != "invalid_request" {
						t.Fatalf("plain accepted: %v %v", loc, err)
					}
				}
			})
			t.Run("a challenge no S256 verifier can meet is refused at authorize", func(t *testing.T) {
				for _, ch := range []string{strings.Repeat("a", 42), strings.Repeat("a", 44), challenge[:42] + "=",
					challenge[:42] + "+", challenge[:42] + "/", challenge[:42] + "!", challenge[:42] + "."} {
					bad := url.Values{"login_hint": {hint}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}
					loc, err := pub.authorize(t, browser(t), bad).Location()
					if err != nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
						t.Fatalf("code_challenge %q: %v %v, want invalid_request back at the app", ch, loc, err)
					}
				}
			})
			t.Run("a method without a challenge is refused at authorize", func(t *testing.T) {
				loc, err := conf.authorize(t, browser(t), url.Values{"login_hint": {hint}, "code_challenge_method": {"S256"}}).Location()
				if err != nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
					t.Fatalf("code_challenge_method alone: %v %v, want invalid_request back at the app", loc, err)
				}
			})
			t.Run("public client without a challenge is refused at authorize", func(t *testing.T) {
				loc, err := pub.authorize(t, browser(t), url.Values{"login_hint": {hint}}).Location()
				if err != nil || loc.Query().Get("error") != "invalid_request" {
					t.Fatalf("public client without PKCE: %v %v", loc, err)
				}
			})
			t.Run("the right verifier redeems", func(t *testing.T) {
				for _, a := range []*app{conf, pub} {
					c := code(t, a.authorize(t, browser(t), withChallenge))
					a.exchange(t, c, oauth2.VerifierOption(verifier))
				}
			})
		})
	}
}
