package broker_test

import (
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestAuthorizeWhileRedisIsDown: an authorization request that cannot be
// recorded because the session store is down goes back to the application
// as temporarily_unavailable (OAuth's word for an outage, which a client
// may retry), never as server_error, with the request's state.
func TestAuthorizeWhileRedisIsDown(t *testing.T) {
	srv := sessionstest.StartServer(t)
	c := srv.Client(t) // the first failure is the answer
	r := sessions.NewRedis(c, sessions.RedisOptions{})
	n := newNodeServer(t, storetest.Postgres(t), r, r, "", httpserver.Config{})
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	srv.Kill()

	resp := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("status %d, no redirect to the application: %v", resp.StatusCode, err)
	}
	q := loc.Query()
	if q.Get("error") != "temporarily_unavailable" || q.Get("state") == "" || q.Get("code") != "" {
		t.Fatalf("redirected to %s; want error=temporarily_unavailable with the state", loc)
	}
}
