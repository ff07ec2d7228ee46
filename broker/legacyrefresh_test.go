package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// plantLegacyRefresh stores a refresh token for a's grant in the session
// of claims exactly as the versions before refresh families (before
// migration 0061) issued one: "idbr_{secret}", its grant a one-time
// record under "broker:rt:{hex sha256 of the token}". Such records are in
// Redis when an upgrade starts, and applications hold their tokens.
func plantLegacyRefresh(t *testing.T, once sessions.OnceCache, a *app, c idTokenClaims) string {
	t.Helper()
	tok := "idbr_" + secrets.NewToken("")
	now := time.Now()
	rec, _ := json.Marshal(map[string]any{
		"client_id": a.ID, "scopes": a.Conf.Scopes, "sid": c.SID, "tenant_id": c.TenantID, "sub": c.Sub,
		"family": secrets.NewToken("")[:24], "expires": now.Add(time.Hour).Unix(), "iat": now.Unix(),
	})
	sum := sha256.Sum256([]byte(tok))
	if err := once.Put(context.Background(), "broker:rt:"+hex.EncodeToString(sum[:]), rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLegacyRefreshTokenAfterUpgrade: a refresh token of the versions
// before refresh families refreshes once after the upgrade, into a token
// of this version whose family rotates as usual; presented again it is
// reuse and ends the session; revoking one (RFC 7009) revokes its grant;
// another client's is refused and left to its owner.
func TestLegacyRefreshTokenAfterUpgrade(t *testing.T) {
	for _, be := range []struct {
		name string
		node func(t *testing.T) (*node, sessions.OnceCache)
	}{
		{"sqlite+memory", func(t *testing.T) (*node, sessions.OnceCache) {
			mem := sessions.NewMemory()
			return newNode(t, storetest.SQLite(t), mem, mem), mem
		}},
		{"postgres+redis", func(t *testing.T) (*node, sessions.OnceCache) {
			r := sessionstest.NewRedis(t)
			return newNode(t, storetest.Postgres(t), r, r), r
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			n, once := be.node(t)
			n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{})
			other := n.app(store.Application{})
			login := func() idTokenClaims {
				_, c := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
				return c
			}

			legacy := plantLegacyRefresh(t, once, a, login())
			if code, tok := refreshErr(t, a, "idbr_"+secrets.NewToken("")); code != "invalid_grant" || tok != nil {
				t.Fatalf("an unknown legacy token = %q", code)
			}
			code1, t1 := refreshErr(t, a, legacy)
			if code1 != "" {
				t.Fatalf("refresh of a legacy token = %q, want success", code1)
			}
			if !strings.Contains(t1.RefreshToken, ".") {
				t.Errorf("refreshed into %q, want a token of this version", t1.RefreshToken)
			}
			assertAlive(t, n, a, "access token from a legacy refresh", t1.AccessToken)
			code2, t2 := refreshErr(t, a, t1.RefreshToken)
			if code2 != "" {
				t.Fatalf("refresh of the family it started = %q", code2)
			}
			if code, _ := refreshErr(t, a, legacy); code != "invalid_grant" {
				t.Errorf("the legacy token again = %q, want invalid_grant", code)
			}
			if code, _ := refreshErr(t, a, t2.RefreshToken); code != "invalid_grant" {
				t.Errorf("after the legacy token's reuse, its family's newest token = %q, want invalid_grant", code)
			}
			assertDead(t, n, a, "after the legacy token's reuse", t2.AccessToken)

			// Revoked, its grant ends.
			c := login()
			legacy = plantLegacyRefresh(t, once, a, c)
			code3, t3 := refreshErr(t, a, plantLegacyRefresh(t, once, a, c))
			if code3 != "" {
				t.Fatalf("refresh of a second legacy token = %q", code3)
			}
			if st, code := revokeAs(t, n, a, legacy); st != http.StatusOK {
				t.Fatalf("revoke a legacy token = %d %q", st, code)
			}
			if code, _ := refreshErr(t, a, legacy); code != "invalid_grant" {
				t.Errorf("a revoked legacy token refreshes: %q", code)
			}
			assertDead(t, n, a, "the grant of a revoked legacy token", t3.AccessToken)

			// Another client's token: refused, and still its owner's.
			legacy = plantLegacyRefresh(t, once, a, login())
			if code, _ := refreshErr(t, other, legacy); code != "invalid_grant" {
				t.Errorf("another client's legacy token = %q, want invalid_grant", code)
			}
			if st, code := revokeAs(t, n, other, legacy); st == http.StatusOK {
				t.Errorf("another client revoked a legacy token: %d %q", st, code)
			}
			if code, _ := refreshErr(t, a, legacy); code != "" {
				t.Errorf("the owner's legacy token after another client tried it = %q", code)
			}
		})
	}
}
